"""Secrets at rest: the vault's ciphertext per provider and field, never plaintext."""

from __future__ import annotations

from computehub_tui.store.connection import StoreConnection

_UPSERT_SECRET = """
    INSERT INTO secrets (provider, field, blob, updated_at) VALUES (?, ?, ?, ?)
    ON CONFLICT (provider, field) DO UPDATE SET
        blob = excluded.blob,
        updated_at = excluded.updated_at
"""


class SecretStore(StoreConnection):
    async def put_secret(self, provider: str, field: str, blob: bytes, at: float) -> None:
        """Store an encrypted blob from the vault; refuses ``str`` so plaintext cannot slip in."""
        if not isinstance(blob, (bytes, bytearray, memoryview)):
            raise TypeError(
                f"put_secret needs the vault's ciphertext bytes, got {type(blob).__name__}"
            )
        async with self._transaction(f"save the {provider} {field}", durable=True) as db:
            await db.execute(_UPSERT_SECRET, (provider, field, bytes(blob), at))

    async def get_secret(self, provider: str, field: str) -> bytes | None:
        rows = await self._fetch(
            "read a secret",
            "SELECT blob FROM secrets WHERE provider = ? AND field = ?",
            (provider, field),
        )
        return bytes(rows[0][0]) if rows else None

    async def delete_secret(self, provider: str, field: str) -> bool:
        """True when a secret was deleted."""
        async with self._transaction(f"delete the {provider} {field}", durable=True) as db:
            cursor = await db.execute(
                "DELETE FROM secrets WHERE provider = ? AND field = ?", (provider, field)
            )
            return cursor.rowcount > 0

    async def list_secrets(self) -> list[tuple[str, str, float]]:
        """``(provider, field, updated_at)`` of every stored secret; never the blobs."""
        rows = await self._fetch(
            "list secrets",
            "SELECT provider, field, updated_at FROM secrets ORDER BY provider, field",
        )
        return [(provider, field, updated_at) for provider, field, updated_at in rows]
