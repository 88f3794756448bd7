"""Provider API keys: bind, replace, remove (encrypted in the store) and test with a cheap call."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from computehub_tui.clock import Clock
from computehub_tui.domain.models import PROVIDER_NAMES
from computehub_tui.domain.secret import Secret
from computehub_tui.providers.base import (
    AuthError,
    Provider,
    ProviderError,
    RateLimitedError,
    UnavailableError,
)
from computehub_tui.store import Store
from computehub_tui.vault import Vault, key_from_environment

DATABASE_NAME = "computehub.db"
API_KEY_FIELD = "api_key"

ProviderFactory = Callable[[str, Secret], Provider]
"""Builds a real provider adapter for a key (on a client the session owns)."""


@dataclass(frozen=True, slots=True)
class KeyBinding:
    provider: str
    source: str
    """"environment", "vault" or "" when not bound."""
    masked: str = ""
    updated_at: float | None = None

    @property
    def bound(self) -> bool:
        return bool(self.source)


async def connection_verdict(provider: Provider) -> str:
    """One word or short phrase for a "test connection" button."""
    try:
        await provider.check_auth()
    except AuthError:
        return "invalid key"
    except RateLimitedError:
        return "rate-limited"
    except UnavailableError as error:
        return "TLS error" if "TLS" in error.message else "unreachable"
    except ProviderError as error:
        return f"error: {error.message}"
    return "ok"


class KeyService:
    """Keys live sealed in the real database (never the demo one); environment variables win."""

    def __init__(self, data_dir: Path, clock: Clock, provider_factory: ProviderFactory | None = None, *,
                 passphrase: str | None = None, environ: Mapping[str, str] | None = None) -> None:
        self.data_dir = data_dir
        self.clock = clock
        self.provider_factory = provider_factory
        self.passphrase = passphrase
        self.environ = environ

    async def bindings(self) -> list[KeyBinding]:
        async with await Store.open(self.data_dir / DATABASE_NAME) as store:
            stored = {provider: updated for provider, field, updated in await store.list_secrets()
                      if field == API_KEY_FIELD}
            vault = await self._vault(create=False) if stored else None
            result = []
            for provider in PROVIDER_NAMES:
                env_key = key_from_environment(provider, self.environ)
                if env_key is not None:
                    result.append(KeyBinding(provider, "environment", env_key.masked))
                elif provider in stored and vault is not None:
                    blob = await store.get_secret(provider, API_KEY_FIELD)
                    secret = vault.unseal(provider, API_KEY_FIELD, blob or b"")
                    result.append(KeyBinding(provider, "vault", secret.masked, stored[provider]))
                else:
                    result.append(KeyBinding(provider, ""))
            return result

    async def resolve(self) -> dict[str, tuple[Secret, str]]:
        """Every usable key with its source; the environment wins over the vault."""
        keys: dict[str, tuple[Secret, str]] = {}
        async with await Store.open(self.data_dir / DATABASE_NAME) as store:
            stored = [provider for provider, field, _ in await store.list_secrets() if field == API_KEY_FIELD]
            if stored:
                vault = await self._vault(create=False)
                for provider in stored:
                    blob = await store.get_secret(provider, API_KEY_FIELD)
                    if blob is not None:
                        keys[provider] = (vault.unseal(provider, API_KEY_FIELD, blob), "vault")
        for provider in PROVIDER_NAMES:
            env_key = key_from_environment(provider, self.environ)
            if env_key is not None:
                keys[provider] = (env_key, "environment")
        return keys

    async def stored_key(self, provider: str) -> Secret | None:
        async with await Store.open(self.data_dir / DATABASE_NAME) as store:
            blob = await store.get_secret(provider, API_KEY_FIELD)
            if blob is None:
                return None
            vault = await self._vault(create=False)
            return vault.unseal(provider, API_KEY_FIELD, blob)

    async def bind(self, provider: str, key: str) -> KeyBinding:
        """Seal and store ``key`` for ``provider`` (replacing any stored one)."""
        if provider not in PROVIDER_NAMES:
            raise ValueError(f"unknown provider {provider!r}")
        key = key.strip()
        if not key or any(ch.isspace() for ch in key):
            raise ValueError("paste only the key itself (no spaces)")
        vault = await self._vault(create=True)
        blob = vault.seal(provider, API_KEY_FIELD, key)
        async with await Store.open(self.data_dir / DATABASE_NAME) as store:
            await store.put_secret(provider, API_KEY_FIELD, blob, self.clock.now())
            await store.audit(self.clock.now(), "user", "bind-key", provider, Secret(key).masked)
        return KeyBinding(provider, "vault", Secret(key).masked, self.clock.now())

    async def remove(self, provider: str) -> bool:
        async with await Store.open(self.data_dir / DATABASE_NAME) as store:
            removed = await store.delete_secret(provider, API_KEY_FIELD)
            if removed:
                await store.audit(self.clock.now(), "user", "remove-key", provider)
            return removed

    async def test(self, provider: str, key: str | None = None) -> str:
        """Verdict for ``key`` (or the bound key): ok / invalid key / rate-limited / unreachable / …"""
        secret = Secret(key) if key else key_from_environment(provider, self.environ) or await self.stored_key(provider)
        if secret is None:
            return "no key bound"
        if self.provider_factory is None:
            raise RuntimeError("this key service cannot build providers")
        return await connection_verdict(self.provider_factory(provider, secret))

    async def provider_for(self, provider: str) -> Provider | None:
        """A live adapter for the currently bound key, or None when no key is bound."""
        secret = key_from_environment(provider, self.environ) or await self.stored_key(provider)
        if secret is None or self.provider_factory is None:
            return None
        return self.provider_factory(provider, secret)

    async def set_passphrase(self, new_passphrase: str | None) -> str | None:
        """Protect the vault with ``new_passphrase`` (None or empty removes protection); stored keys
        stay readable. Returns the key-derivation function now in use."""
        vault = await self._vault(create=True)
        await asyncio.to_thread(vault.change_passphrase, new_passphrase or None)
        async with await Store.open(self.data_dir / DATABASE_NAME) as store:
            await store.audit(self.clock.now(), "user", "set-passphrase" if new_passphrase else "remove-passphrase",
                              "vault")
        self.passphrase = new_passphrase or None
        return vault.kdf_name

    async def _vault(self, *, create: bool) -> Vault:
        # Deriving a passphrase key takes a quarter second of CPU: keep it off the event loop.
        return await asyncio.to_thread(Vault.open, self.data_dir, self.passphrase, create=create)
