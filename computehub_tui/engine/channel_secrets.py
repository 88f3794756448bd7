"""Alert channels' secrets by name (telegram_token, smtp_password, webhook_secret): the environment wins over the vault."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Mapping

from computehub_tui.domain.secret import Secret
from computehub_tui.engine.keys import KeyService
from computehub_tui.vault import Vault

SECRET_OWNER = "alerts"
"""The ``provider`` column of a channel secret's row in the store's secrets table (and its vault AAD)."""
TELEGRAM_TOKEN = "telegram_token"
SECRET_ENV: Mapping[str, str] = {
    TELEGRAM_TOKEN: "COMPUTEHUB_TELEGRAM_TOKEN",
    "smtp_password": "COMPUTEHUB_SMTP_PASSWORD",
    "webhook_secret": "COMPUTEHUB_WEBHOOK_SECRET",
}


class ChannelSecrets:
    """Seals, reads and forgets channel secrets in the real database, through the key service's store, vault
    passphrase, environment and actor (so the audit log says who changed one)."""

    def __init__(self, keys: KeyService) -> None:
        self._keys = keys

    async def put(self, name: str, value: str) -> Secret:
        """Seal ``value`` as secret ``name`` (replacing any); returns it wrapped."""
        _check_name(name)
        value = value.strip()
        if not value or any(char.isspace() for char in value):
            raise ValueError("paste only the secret itself (no spaces)")
        secret = Secret(value)
        vault = await self._vault(create=True)
        store = await self._keys.store()
        now = self._keys.clock.now()
        await store.put_secret(SECRET_OWNER, name, vault.seal(SECRET_OWNER, name, value), now)
        await store.audit(now, self._keys.actor, "set-secret", name, secret.masked)
        return secret

    async def get(self, name: str) -> tuple[Secret, str] | None:
        """Secret ``name`` and where it came from ("environment" or "vault"); None when neither has it."""
        _check_name(name)
        environ = os.environ if self._keys.environ is None else self._keys.environ
        from_env = environ.get(SECRET_ENV[name], "").strip()
        if from_env:
            return Secret(from_env), "environment"
        blob = await (await self._keys.store()).get_secret(SECRET_OWNER, name)
        if blob is None:
            return None
        vault = await self._vault(create=False)
        return vault.unseal(SECRET_OWNER, name, blob), "vault"

    async def resolve(self) -> dict[str, Secret]:
        """Every channel secret that is set, by name (what a channel factory takes)."""
        found = {name: await self.get(name) for name in SECRET_ENV}
        return {name: value[0] for name, value in found.items() if value is not None}

    async def remove(self, name: str) -> bool:
        """Forget the stored secret ``name``; True when one was deleted."""
        _check_name(name)
        store = await self._keys.store()
        removed = await store.delete_secret(SECRET_OWNER, name)
        if removed:
            await store.audit(self._keys.clock.now(), self._keys.actor, "remove-secret", name)
        return removed

    async def _vault(self, *, create: bool) -> Vault:
        # Deriving a passphrase key takes a quarter second of CPU: keep it off the event loop.
        return await asyncio.to_thread(Vault.open, self._keys.data_dir, self._keys.passphrase, create=create)


def _check_name(name: str) -> None:
    if name not in SECRET_ENV:
        raise ValueError(f"unknown channel secret {name!r} (known: {', '.join(SECRET_ENV)})")
