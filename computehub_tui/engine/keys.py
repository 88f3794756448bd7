"""Provider API keys as engine calls: bind, replace, remove and test, sealed in the real database."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, Self

from computehub_tui.clock import Clock
from computehub_tui.domain.models import PROVIDER_NAMES
from computehub_tui.domain.secret import Secret
from computehub_tui.engine.key_sources import COMMAND_TIMEOUT_S, KeyIndirection, read_indirect_key
from computehub_tui.notify.channels import SECRET_NAMES, secrets_from_environment
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
CHANNEL_SECRETS_OWNER = "alerts"
"""Channel secrets (telegram_token, smtp_password, webhook_secret) are sealed under this owner, one field each."""

ProviderFactory = Callable[[str, Secret], Provider]
"""Builds a real provider adapter for a key (on a client the session owns)."""


class ProviderSlots(Protocol):
    """Where a real session polls its providers (the Hub): a bound key attaches one, a removed key detaches it."""

    def set_provider(self, name: str, provider: Provider) -> None: ...

    def remove_provider(self, name: str) -> None: ...


@dataclass(frozen=True, slots=True)
class KeyBinding:
    provider: str
    source: str
    """"environment", "file", "command", "vault" or "" when not bound."""
    masked: str = ""
    updated_at: float | None = None

    @property
    def bound(self) -> bool:
        return bool(self.source)


@dataclass(frozen=True, slots=True)
class BindResult:
    binding: KeyBinding
    verdict: str | None
    """What testing the new key said (ok, invalid key, unreachable, …); None where nothing can test it."""
    attached: bool
    """The session now polls the provider with this key."""


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
    """Keys live sealed in the real database (never the demo one). A provider's environment variable
    wins, then the config's ``api_key_file`` / ``api_key_command`` (read once per service), then the vault.

    The real database is opened once, on first use, and stays open until ``aclose``: a real session
    adopts that same connection as its store, so a process never holds two connections to it.
    """

    def __init__(self, data_dir: Path, clock: Clock, provider_factory: ProviderFactory | None = None, *,
                 passphrase: str | None = None, environ: Mapping[str, str] | None = None,
                 actor: str = "user", indirections: Mapping[str, KeyIndirection] | None = None,
                 command_timeout_s: float = COMMAND_TIMEOUT_S) -> None:
        self.data_dir = data_dir
        self.clock = clock
        self.provider_factory = provider_factory
        self.passphrase = passphrase
        self.environ = environ
        self.actor = actor
        """Who the audit log says changed a key: ``user`` in the app, ``cli`` for a command."""
        self.indirections = dict(indirections or {})
        """Providers whose key the config says to read from a file or a command."""
        self.command_timeout_s = command_timeout_s
        self._indirect_keys: dict[str, Secret] = {}
        self._store: Store | None = None
        self._opening = asyncio.Lock()
        self._slots: ProviderSlots | None = None

    # -- lifecycle --------------------------------------------------------------------------

    async def store(self) -> Store:
        """The real database, opened on first use."""
        async with self._opening:
            if self._store is None:
                self._store = await Store.open(self.data_dir / DATABASE_NAME)
            return self._store

    def attach_to(self, slots: ProviderSlots) -> None:
        """From now on binding a key attaches its provider to ``slots`` and removing it detaches it."""
        self._slots = slots

    async def aclose(self) -> None:
        """Close the real database (its connection thread would keep the process alive). Safe to call twice."""
        async with self._opening:
            store, self._store = self._store, None
        if store is not None:
            await store.close()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    # -- reads ------------------------------------------------------------------------------

    async def bindings(self) -> list[KeyBinding]:
        store = await self.store()
        stored = {provider: updated for provider, field, updated in await store.list_secrets()
                  if field == API_KEY_FIELD}
        vault = await self._vault(create=False) if stored else None
        result = []
        for provider in PROVIDER_NAMES:
            configured = await self._configured_key(provider)
            if configured is not None:
                result.append(KeyBinding(provider, configured[1], configured[0].masked))
            elif provider in stored and vault is not None:
                blob = await store.get_secret(provider, API_KEY_FIELD)
                secret = vault.unseal(provider, API_KEY_FIELD, blob or b"")
                result.append(KeyBinding(provider, "vault", secret.masked, stored[provider]))
            else:
                result.append(KeyBinding(provider, ""))
        return result

    async def resolve(self) -> dict[str, tuple[Secret, str]]:
        """Every usable key with its source: environment, then file or command, then vault.
        Raises ConfigError when a configured key file or command gives no key."""
        keys: dict[str, tuple[Secret, str]] = {}
        store = await self.store()
        stored = [provider for provider, field, _ in await store.list_secrets() if field == API_KEY_FIELD]
        if stored:
            vault = await self._vault(create=False)
            for provider in stored:
                blob = await store.get_secret(provider, API_KEY_FIELD)
                if blob is not None:
                    keys[provider] = (vault.unseal(provider, API_KEY_FIELD, blob), "vault")
        for provider in PROVIDER_NAMES:
            configured = await self._configured_key(provider)
            if configured is not None:
                keys[provider] = configured
        return keys

    async def _configured_key(self, provider: str) -> tuple[Secret, str] | None:
        """The key that wins over the vault, with its source: the environment's, else the config's file
        or command (run once per service: it may prompt a password manager)."""
        env_key = key_from_environment(provider, self.environ)
        if env_key is not None:
            return env_key, "environment"
        indirection = self.indirections.get(provider)
        if indirection is None:
            return None
        if provider not in self._indirect_keys:
            self._indirect_keys[provider] = await read_indirect_key(indirection, self.command_timeout_s)
        return self._indirect_keys[provider], indirection.kind

    def _overridden(self, provider: str) -> bool:
        """Whether a key outside the vault binds ``provider``, so the stored key is not what is polled."""
        return provider in self.indirections or key_from_environment(provider, self.environ) is not None

    async def stored_key(self, provider: str) -> Secret | None:
        blob = await (await self.store()).get_secret(provider, API_KEY_FIELD)
        if blob is None:
            return None
        vault = await self._vault(create=False)
        return vault.unseal(provider, API_KEY_FIELD, blob)

    # -- engine calls -----------------------------------------------------------------------

    async def bind(self, provider: str, key: str) -> BindResult:
        """Seal and store ``key`` for ``provider`` (replacing any stored one), test it where adapters can
        be built, and attach the provider when this is a real session's service."""
        if provider not in PROVIDER_NAMES:
            raise ValueError(f"unknown provider {provider!r}")
        key = key.strip()
        if not key or any(ch.isspace() for ch in key):
            raise ValueError("paste only the key itself (no spaces)")
        secret = Secret(key)
        vault = await self._vault(create=True)
        blob = vault.seal(provider, API_KEY_FIELD, key)
        store = await self.store()
        replacing = await store.get_secret(provider, API_KEY_FIELD) is not None
        now = self.clock.now()
        await store.put_secret(provider, API_KEY_FIELD, blob, now)
        await store.audit(now, self.actor, "replace-key" if replacing else "bind-key", provider, secret.masked)
        verdict = await self.test(provider, key) if self.provider_factory is not None else None
        attached = False
        # An environment variable or a key file / command still wins over the stored key: then what is
        # polled does not change.
        if self._slots is not None and self.provider_factory is not None and not self._overridden(provider):
            self._slots.set_provider(provider, self.provider_factory(provider, secret))
            attached = True
        return BindResult(KeyBinding(provider, "vault", secret.masked, now), verdict, attached)

    async def replace(self, provider: str, key: str) -> BindResult:
        """``bind`` over the stored key; refuses when there is none, so a typo cannot add a provider."""
        if await (await self.store()).get_secret(provider, API_KEY_FIELD) is None:
            raise ValueError(f"no stored {provider} key to replace")
        return await self.bind(provider, key)

    async def remove(self, provider: str) -> bool:
        """Delete the stored key and stop polling the provider (unless a key outside the vault binds it).
        True when a key was deleted."""
        store = await self.store()
        removed = await store.delete_secret(provider, API_KEY_FIELD)
        if removed:
            await store.audit(self.clock.now(), self.actor, "remove-key", provider)
            if self._slots is not None and not self._overridden(provider):
                self._slots.remove_provider(provider)
        return removed

    async def test(self, provider: str, key: str | None = None) -> str:
        """Verdict for ``key`` (or the bound key): ok / invalid key / rate-limited / unreachable / …"""
        if key:
            secret: Secret | None = Secret(key)
        else:
            configured = await self._configured_key(provider)
            secret = configured[0] if configured is not None else await self.stored_key(provider)
        if secret is None:
            return "no key bound"
        if self.provider_factory is None:
            raise RuntimeError("this key service cannot build providers")
        return await connection_verdict(self.provider_factory(provider, secret))

    async def set_passphrase(self, new_passphrase: str | None) -> str | None:
        """Protect the vault with ``new_passphrase`` (None or empty removes protection); stored keys
        stay readable. Returns the key-derivation function now in use."""
        vault = await self._vault(create=True)
        await asyncio.to_thread(vault.change_passphrase, new_passphrase or None)
        await (await self.store()).audit(self.clock.now(), self.actor,
                                         "set-passphrase" if new_passphrase else "remove-passphrase", "vault")
        self.passphrase = new_passphrase or None
        return vault.kdf_name

    # -- alert channel secrets --------------------------------------------------------------

    async def channel_secrets(self) -> dict[str, Secret]:
        """The alert channels' secrets by name: the vault's, each overridden by its environment variable."""
        store = await self.store()
        stored = [field for owner, field, _ in await store.list_secrets()
                  if owner == CHANNEL_SECRETS_OWNER and field in SECRET_NAMES]
        found: dict[str, Secret] = {}
        if stored:
            vault = await self._vault(create=False)
            for name in stored:
                blob = await store.get_secret(CHANNEL_SECRETS_OWNER, name)
                if blob is not None:
                    found[name] = vault.unseal(CHANNEL_SECRETS_OWNER, name, blob)
        found.update(secrets_from_environment(os.environ if self.environ is None else self.environ))
        return found

    async def set_channel_secret(self, name: str, value: str | None) -> None:
        """Seal ``value`` as channel secret ``name``; None (or empty) deletes it."""
        if name not in SECRET_NAMES:
            raise ValueError(f"unknown channel secret {name!r}")
        store = await self.store()
        now = self.clock.now()
        if not value or not value.strip():
            if await store.delete_secret(CHANNEL_SECRETS_OWNER, name):
                await store.audit(now, self.actor, "remove-secret", name)
            return
        secret = Secret(value.strip())
        vault = await self._vault(create=True)
        await store.put_secret(CHANNEL_SECRETS_OWNER, name, vault.seal(CHANNEL_SECRETS_OWNER, name, secret.reveal()),
                               now)
        await store.audit(now, self.actor, "set-secret", name, secret.masked)

    async def _vault(self, *, create: bool) -> Vault:
        # Deriving a passphrase key takes a quarter second of CPU: keep it off the event loop.
        return await asyncio.to_thread(Vault.open, self.data_dir, self.passphrase, create=create)
