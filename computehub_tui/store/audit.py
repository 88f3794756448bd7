"""The audit log: who did what to which target, when, and how it ended."""

from __future__ import annotations

import aiosqlite

from computehub_tui.domain.history import AuditEntry
from computehub_tui.store.connection import StoreConnection


class AuditStore(StoreConnection):
    async def audit(
        self,
        at: float,
        actor: str,
        action: str,
        target: str,
        detail: str = "",
        outcome: str = "ok",
    ) -> None:
        async with self._transaction("write the audit log") as db:
            await db.execute(
                "INSERT INTO audit_log (at, actor, action, target, detail, outcome) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                (at, actor, action, target, detail, outcome),
            )

    async def audit_log(self, limit: int = 100, *, since: float | None = None,
                        actor: str | None = None) -> list[AuditEntry]:
        """The newest ``limit`` entries, newest first; from ``since`` on, and by ``actor`` if given
        (``rule`` means every rule, ``rule:NAME`` one)."""
        if limit <= 0:
            return []
        where = ["at >= ?"]
        params: list[float | str] = [float("-inf") if since is None else since]
        if actor == "rule":
            where.append("actor LIKE 'rule:%'")
        elif actor is not None:
            where.append("actor = ?")
            params.append(actor)
        rows = await self._fetch(
            "read the audit log",
            f"SELECT at, actor, action, target, detail, outcome FROM audit_log WHERE {' AND '.join(where)} "
            "ORDER BY at DESC, id DESC LIMIT ?",
            (*params, limit),
        )
        return [AuditEntry(*row) for row in rows]


async def delete_audit_entries_before(db: aiosqlite.Connection, cutoff: float) -> None:
    """Drop entries older than ``cutoff``; call inside a write transaction."""
    await db.execute("DELETE FROM audit_log WHERE at < ?", (cutoff,))
