"""Automation's tables: rule states, the pause flag, the action journal, pending warnings, the automation lease and
launch records."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from computehub_tui.store.connection import StoreConnection

PAUSED_FLAG = "automation.paused"

JOURNAL_IN_FLIGHT = "in-flight"
"""Written before the action is sent; a row still in this state after a restart is reconciled, not repeated."""
JOURNAL_DONE = "done"
JOURNAL_FAILED = "failed"
"""The last attempt failed; it may be retried (with backoff) inside its cooldown window."""
JOURNAL_HELD = "held"
"""Given up until the window closes (retries spent, or an outcome that could not be confirmed)."""
JOURNAL_DRY_RUN = "dry-run"
JOURNAL_STATES = (JOURNAL_IN_FLIGHT, JOURNAL_DONE, JOURNAL_FAILED, JOURNAL_HELD, JOURNAL_DRY_RUN)

_JOURNAL_COLUMNS = ("idem_key, rule, target, action, opened_at, closes_at, state, attempts, last_attempt_at, result, "
                    "evidence, dry_run")


@dataclass(frozen=True, slots=True)
class RuleState:
    """What the store keeps of one rule, by name: the user's switches and its firing record."""

    name: str
    enabled: bool = True
    mode: str | None = None
    """``live`` / ``dry-run`` as the user set it; None: the file's or the configured default."""
    last_fired: float | None = None
    fire_count: int = 0


@dataclass(frozen=True, slots=True)
class JournalEntry:
    """One firing of ``rule`` on ``target`` within one cooldown window ``[opened_at, closes_at)``."""

    idem_key: str
    rule: str
    target: str
    action: str
    opened_at: float
    closes_at: float
    state: str
    attempts: int
    last_attempt_at: float
    result: str = ""
    evidence: str = ""
    dry_run: bool = False

    @staticmethod
    def key_for(rule: str, target: str, action: str, opened_at: float) -> str:
        """The idempotency key: the same rule, target, action and window is one firing, never two."""
        return json.dumps([rule, target, action, round(opened_at, 3)], separators=(",", ":"))


@dataclass(frozen=True, slots=True)
class PendingWarning:
    """A ``WARN`` that has been announced: the action runs at ``due_at`` if the condition still holds. A cancelled
    one (``cancelled_until`` set) is kept so its rule does not warn again before then."""

    warning_id: str
    rule: str
    target: str
    action: str
    due_at: float
    evidence: str = ""
    cancelled_until: float | None = None


@dataclass(frozen=True, slots=True)
class LeaseClaim:
    """Who asks for the lease: a process-unique holder id, its host name and pid."""

    holder: str
    host: str
    pid: int


@dataclass(frozen=True, slots=True)
class LeaseHolder:
    holder: str
    host: str
    pid: int
    acquired_at: float
    renewed_at: float
    expires_at: float


@dataclass(frozen=True, slots=True)
class LaunchRecord:
    """What an instance was launched from (offer and spec as JSON objects), for relaunch and migrate."""

    instance_key: str
    offer: dict[str, Any]
    spec: dict[str, Any]
    launched_at: float


class AutomationStore(StoreConnection):
    # -- rule states ----------------------------------------------------------------------------

    async def rule_states(self) -> dict[str, RuleState]:
        rows = await self._fetch("read rule states",
                                 "SELECT name, enabled, mode, last_fired, fire_count FROM rule_states")
        return {name: RuleState(name, bool(enabled), mode, last_fired, count)
                for name, enabled, mode, last_fired, count in rows}

    async def set_rule_switches(self, name: str, *, enabled: bool | None = None, mode: str | None = None,
                                clear_mode: bool = False) -> None:
        """Set ``name``'s enabled flag and/or mode (``clear_mode``: back to the default), keeping the rest."""
        async with self._transaction(f"save the state of rule {name}") as db:
            await db.execute("INSERT OR IGNORE INTO rule_states (name) VALUES (?)", (name,))
            if enabled is not None:
                await db.execute("UPDATE rule_states SET enabled = ? WHERE name = ?", (int(enabled), name))
            if mode is not None or clear_mode:
                await db.execute("UPDATE rule_states SET mode = ? WHERE name = ?", (mode, name))

    async def record_rule_fired(self, name: str, at: float) -> None:
        async with self._transaction(f"record a firing of rule {name}") as db:
            await db.execute("INSERT OR IGNORE INTO rule_states (name) VALUES (?)", (name,))
            await db.execute("UPDATE rule_states SET last_fired = ?, fire_count = fire_count + 1 WHERE name = ?",
                             (at, name))

    # -- flags ----------------------------------------------------------------------------------

    async def flag(self, name: str) -> str | None:
        rows = await self._fetch(f"read {name}", "SELECT value FROM automation_flags WHERE name = ?", (name,))
        return rows[0][0] if rows else None

    async def flags_named(self, prefix: str) -> dict[str, str]:
        """Every flag whose name starts with ``prefix``, by name."""
        rows = await self._fetch(f"read {prefix}* flags",
                                 "SELECT name, value FROM automation_flags WHERE substr(name, 1, ?) = ?",
                                 (len(prefix), prefix))
        return {name: value for name, value in rows}

    async def set_flag(self, name: str, value: str | None, at: float) -> None:
        """Set ``name`` to ``value``; None removes it."""
        async with self._transaction(f"save {name}") as db:
            if value is None:
                await db.execute("DELETE FROM automation_flags WHERE name = ?", (name,))
            else:
                await db.execute("INSERT OR REPLACE INTO automation_flags (name, value, set_at) VALUES (?, ?, ?)",
                                 (name, value, at))

    # -- the action journal ---------------------------------------------------------------------

    async def journal_open(self, entry: JournalEntry) -> bool:
        """Write ``entry`` unless a row with its idempotency key exists; True when this call wrote it."""
        async with self._transaction("open a journal row") as db:
            cursor = await db.execute(
                f"INSERT OR IGNORE INTO action_journal ({_JOURNAL_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                _journal_row(entry))
            return cursor.rowcount > 0

    async def journal_update(self, idem_key: str, *, state: str, at: float, result: str = "",
                             attempted: bool = False) -> None:
        """Move a row to ``state``; ``attempted`` counts one more attempt made at ``at``."""
        if state not in JOURNAL_STATES:
            raise ValueError(f"unknown journal state {state!r}")
        async with self._transaction("update a journal row") as db:
            await db.execute(
                "UPDATE action_journal SET state = ?, result = ?, "
                "attempts = attempts + ?, last_attempt_at = CASE WHEN ? THEN ? ELSE last_attempt_at END "
                "WHERE idem_key = ?",
                (state, result, int(attempted), int(attempted), at, idem_key))

    async def journal_open_windows(self, now: float) -> list[JournalEntry]:
        """Every row whose cooldown window has not closed at ``now``, oldest first."""
        return await self._journal_where("closes_at > ? ORDER BY opened_at", (now,))

    async def journal_in_flight(self) -> list[JournalEntry]:
        """Rows written before an action whose result never came (a crash, a kill): to reconcile."""
        return await self._journal_where("state = ? ORDER BY opened_at", (JOURNAL_IN_FLIGHT,))

    async def journal_recent(self, limit: int = 100) -> list[JournalEntry]:
        return await self._journal_where("1 ORDER BY last_attempt_at DESC LIMIT ?", (max(0, limit),))

    async def journal_firings_since(self, since: float, actions: Iterable[str]) -> int:
        """Live (not dry-run) firings of ``actions`` opened at or after ``since``."""
        names = json.dumps(sorted(set(actions)))
        rows = await self._fetch("count journal rows",
                                 "SELECT COUNT(*) FROM action_journal WHERE opened_at >= ? AND dry_run = 0 "
                                 "AND action IN (SELECT value FROM json_each(?))", (since, names))
        return int(rows[0][0])

    async def _journal_where(self, clause: str, params: tuple[Any, ...]) -> list[JournalEntry]:
        rows = await self._fetch("read the action journal",
                                 f"SELECT {_JOURNAL_COLUMNS} FROM action_journal WHERE {clause}", params)
        return [JournalEntry(row[0], row[1], row[2], row[3], row[4], row[5], row[6], row[7], row[8], row[9], row[10],
                             bool(row[11])) for row in rows]

    # -- pending warnings -----------------------------------------------------------------------

    async def save_warning(self, warning: PendingWarning, now: float) -> None:
        """Write ``warning`` (new, snoozed or cancelled); cancels that ended before ``now`` are dropped."""
        async with self._transaction(f"save a warning of rule {warning.rule}") as db:
            await db.execute("DELETE FROM rule_warnings WHERE cancelled_until <= ?", (now,))
            await db.execute(
                "INSERT OR REPLACE INTO rule_warnings (warning_id, rule, target, action, due_at, evidence, "
                "cancelled_until) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (warning.warning_id, warning.rule, warning.target, warning.action, warning.due_at, warning.evidence,
                 warning.cancelled_until))

    async def delete_warnings(self, warning_ids: Iterable[str]) -> None:
        async with self._transaction("drop pending warnings") as db:
            await db.executemany("DELETE FROM rule_warnings WHERE warning_id = ?", [(i,) for i in warning_ids])

    async def rule_warnings(self, now: float) -> list[PendingWarning]:
        """Pending warnings and the cancels still in force at ``now``, by due time."""
        rows = await self._fetch("read pending warnings",
                                 "SELECT warning_id, rule, target, action, due_at, evidence, cancelled_until "
                                 "FROM rule_warnings WHERE cancelled_until IS NULL OR cancelled_until > ? "
                                 "ORDER BY due_at, warning_id", (now,))
        return [PendingWarning(*row) for row in rows]

    # -- the lease ------------------------------------------------------------------------------

    async def claim_lease(self, name: str, claim: LeaseClaim, now: float, ttl_s: float,
                          holder_gone: Callable[[LeaseHolder], bool]) -> LeaseHolder:
        """Take or renew lease ``name`` for ``claim`` when it is free, ours, expired, or its holder is gone
        (``holder_gone``: e.g. same host and its pid is dead). Returns whoever holds it afterwards. One
        write transaction, so two processes claiming at once cannot both win."""
        async with self._transaction(f"claim the {name} lease") as db:
            cursor = await db.execute(
                "SELECT holder, host, pid, acquired_at, renewed_at, expires_at FROM automation_lease WHERE name = ?",
                (name,))
            row = await cursor.fetchone()
            current = None if row is None else LeaseHolder(*row)
            if current is not None and current.holder != claim.holder and current.expires_at > now \
                    and not holder_gone(current):
                return current
            acquired = current.acquired_at if current is not None and current.holder == claim.holder else now
            taken = LeaseHolder(claim.holder, claim.host, claim.pid, acquired, now, now + ttl_s)
            await db.execute(
                "INSERT OR REPLACE INTO automation_lease (name, holder, host, pid, acquired_at, renewed_at, "
                "expires_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (name, taken.holder, taken.host, taken.pid, taken.acquired_at, taken.renewed_at, taken.expires_at))
            return taken

    async def release_lease(self, name: str, holder: str) -> None:
        """Give lease ``name`` up if ``holder`` holds it."""
        async with self._transaction(f"release the {name} lease") as db:
            await db.execute("DELETE FROM automation_lease WHERE name = ? AND holder = ?", (name, holder))

    async def lease_holder(self, name: str) -> LeaseHolder | None:
        rows = await self._fetch(f"read the {name} lease",
                                 "SELECT holder, host, pid, acquired_at, renewed_at, expires_at FROM automation_lease "
                                 "WHERE name = ?", (name,))
        return LeaseHolder(*rows[0]) if rows else None

    # -- launch records -------------------------------------------------------------------------

    async def record_launch(self, record: LaunchRecord) -> None:
        async with self._transaction(f"record the launch of {record.instance_key}") as db:
            await db.execute(
                "INSERT OR REPLACE INTO launch_records (instance_key, offer, spec, launched_at) VALUES (?, ?, ?, ?)",
                (record.instance_key, json.dumps(record.offer), json.dumps(record.spec), record.launched_at))

    async def launch_records(self) -> dict[str, LaunchRecord]:
        rows = await self._fetch("read launch records",
                                 "SELECT instance_key, offer, spec, launched_at FROM launch_records")
        return {key: LaunchRecord(key, json.loads(offer), json.loads(spec), at) for key, offer, spec, at in rows}


def _journal_row(entry: JournalEntry) -> tuple[Any, ...]:
    return (entry.idem_key, entry.rule, entry.target, entry.action, entry.opened_at, entry.closes_at, entry.state,
            entry.attempts, entry.last_attempt_at, entry.result, entry.evidence, int(entry.dry_run))
