"""The alert outbox: alerts by key, their groups, and one delivery per alert and channel with its own retry state."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import aiosqlite

from computehub_tui.domain.alerts import (
    DEAD,
    FIRING,
    QUEUED,
    RETRYING,
    SENDING,
    SENT,
    AlertRow,
    DeliveryRow,
)
from computehub_tui.store.connection import StoreConnection

_DELIVERY_COLUMNS = ("delivery_id, alert_key, channel, kind, severity, title, body, fields, buttons, created_at, state, "
                     "attempts, next_attempt_at, last_error, claimed_by, claimed_at, sent_at, recipients, fallback_of")
_ALERT_COLUMNS = ("alert_key, kind, severity, title, body, state, first_at, last_at, last_sent_at, acked_by, acked_at, "
                  "pending_digest, channels")


class OutboxStore(StoreConnection):
    # -- alerts ---------------------------------------------------------------------------------

    async def alert(self, key: str) -> AlertRow | None:
        rows = await self._fetch("read an alert", f"SELECT {_ALERT_COLUMNS} FROM alerts WHERE alert_key = ?", (key,))
        return _alert(rows[0]) if rows else None

    async def alerts_where(self, *, state: str | None = None, pending_digest: bool | None = None) -> list[AlertRow]:
        clauses: list[str] = ["1"]
        params: list[object] = []
        if state is not None:
            clauses.append("state = ?")
            params.append(state)
        if pending_digest is not None:
            clauses.append("pending_digest = ?")
            params.append(int(pending_digest))
        rows = await self._fetch("read alerts", f"SELECT {_ALERT_COLUMNS} FROM alerts WHERE {' AND '.join(clauses)} "
                                                "ORDER BY first_at", params)
        return [_alert(row) for row in rows]

    async def put_alert(self, alert: AlertRow) -> None:
        async with self._transaction("save an alert") as db:
            await db.execute(f"INSERT OR REPLACE INTO alerts ({_ALERT_COLUMNS}) VALUES "
                             "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", _alert_values(alert))

    async def acknowledge_alert(self, key: str, by: str, at: float) -> bool:
        """Stop the repeats of a firing alert; False when no such alert fires."""
        async with self._transaction("acknowledge an alert") as db:
            cursor = await db.execute("UPDATE alerts SET acked_by = ?, acked_at = ? WHERE alert_key = ? AND state = ?",
                                      (by, at, key, FIRING))
            return cursor.rowcount > 0

    async def group_state(self, group: str) -> tuple[float, float | None] | None:
        """(last_sent_at, digest_due_at) of ``group``; None when nothing of it was ever sent."""
        rows = await self._fetch("read an alert group",
                                 "SELECT last_sent_at, digest_due_at FROM alert_groups WHERE group_key = ?", (group,))
        return (rows[0][0], rows[0][1]) if rows else None

    async def set_group_state(self, group: str, last_sent_at: float, digest_due_at: float | None) -> None:
        async with self._transaction("save an alert group") as db:
            await db.execute("INSERT OR REPLACE INTO alert_groups (group_key, last_sent_at, digest_due_at) "
                             "VALUES (?, ?, ?)", (group, last_sent_at, digest_due_at))

    async def take_repeat(self, key: str, last_sent_at: float, now: float) -> bool:
        """Claim the repeat of firing alert ``key`` last sent at ``last_sent_at``: True for exactly one caller when
        several processes find it due at once."""
        async with self._transaction("claim an alert repeat") as db:
            cursor = await db.execute("UPDATE alerts SET last_sent_at = ? WHERE alert_key = ? AND last_sent_at = ? "
                                      "AND state = ?", (now, key, last_sent_at, FIRING))
            return cursor.rowcount > 0

    async def take_digest(self, group: str, due_at: float, now: float) -> bool:
        """Claim ``group``'s digest that fell due at ``due_at`` (True for exactly one caller); its interval starts
        again at ``now``."""
        async with self._transaction("claim an alert digest") as db:
            cursor = await db.execute("UPDATE alert_groups SET digest_due_at = NULL, last_sent_at = ? "
                                      "WHERE group_key = ? AND digest_due_at = ?", (now, group, due_at))
            return cursor.rowcount > 0

    async def due_digests(self) -> list[tuple[str, float]]:
        rows = await self._fetch("read due digests", "SELECT group_key, digest_due_at FROM alert_groups "
                                                     "WHERE digest_due_at IS NOT NULL ORDER BY digest_due_at")
        return [(group, due) for group, due in rows]

    # -- deliveries -----------------------------------------------------------------------------

    async def enqueue(self, rows: Iterable[DeliveryRow], alert: AlertRow | None = None) -> None:
        """Write ``rows`` (and the alert they carry) in one transaction: written before anything is sent."""
        async with self._transaction("queue alert deliveries") as db:
            if alert is not None:
                await db.execute(f"INSERT OR REPLACE INTO alerts ({_ALERT_COLUMNS}) VALUES "
                                 "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", _alert_values(alert))
            await db.executemany(
                f"INSERT OR IGNORE INTO deliveries ({_DELIVERY_COLUMNS}) VALUES "
                "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", [_delivery_values(row) for row in rows])

    async def claim_deliveries(self, claimant: str, now: float, lease_s: float, channel: str,
                               limit: int) -> list[DeliveryRow]:
        """Take up to ``limit`` of ``channel``'s due rows for ``claimant``: queued or retrying rows whose time
        has come, and rows a claimant took more than ``lease_s`` ago and never marked (it died). One write
        transaction, so two workers never take the same row."""
        async with self._transaction("claim alert deliveries") as db:
            cursor = await db.execute(
                f"UPDATE deliveries SET state = ?, claimed_by = ?, claimed_at = ? WHERE delivery_id IN ("
                "SELECT delivery_id FROM deliveries WHERE channel = ? AND ("
                "(state IN (?, ?) AND next_attempt_at <= ?) OR (state = ? AND claimed_at <= ?)) "
                f"ORDER BY next_attempt_at, created_at LIMIT ?) RETURNING {_DELIVERY_COLUMNS}",
                (SENDING, claimant, now, channel, QUEUED, RETRYING, now, SENDING, now - lease_s, max(0, limit)))
            rows = await cursor.fetchall()
        return sorted((_delivery(row) for row in rows), key=lambda row: (row.next_attempt_at, row.created_at))

    async def release_orphans(self, gone: Callable[[str], bool]) -> int:
        """Put rows claimed by a claimant that is known to be gone (``gone``: its process died) back in the
        queue at once, without waiting for the lease. Returns how many."""
        claimants = [row[0] for row in await self._fetch(
            "read delivery claimants", "SELECT DISTINCT claimed_by FROM deliveries WHERE state = ?", (SENDING,))]
        dead = [claimant for claimant in claimants if claimant is not None and gone(claimant)]
        if not dead:
            return 0
        async with self._transaction("release orphaned deliveries") as db:
            cursor = await db.execute(
                "UPDATE deliveries SET state = ?, claimed_by = NULL, claimed_at = NULL "
                "WHERE state = ? AND claimed_by IN (SELECT value FROM json_each(?))", (QUEUED, SENDING, json.dumps(dead)))
            return cursor.rowcount

    async def mark_sent(self, delivery_id: str, claimant: str, at: float) -> bool:
        """True when the row was still ours (a worker whose claim expired and was taken over loses)."""
        return await self._mark(delivery_id, claimant, "state = ?, sent_at = ?, attempts = attempts + 1, "
                                                       "last_error = ''", (SENT, at))

    async def mark_retry(self, delivery_id: str, claimant: str, next_attempt_at: float, error: str,
                         recipients: Sequence[str] | None = None) -> bool:
        """Schedule another attempt; ``recipients`` narrows who still needs the message."""
        return await self._mark(
            delivery_id, claimant, "state = ?, next_attempt_at = ?, last_error = ?, attempts = attempts + 1, "
                                   "recipients = COALESCE(?, recipients)",
            (RETRYING, next_attempt_at, error, None if recipients is None else json.dumps(list(recipients))))

    async def mark_dead(self, delivery_id: str, claimant: str, error: str, at: float) -> bool:
        return await self._mark(delivery_id, claimant, "state = ?, last_error = ?, attempts = attempts + 1, "
                                                       "next_attempt_at = ?", (DEAD, error, at))

    async def postpone(self, delivery_id: str, claimant: str, next_attempt_at: float) -> bool:
        """Give a claimed row back unsent (its channel is paused, or quiet hours began), not counting an attempt."""
        return await self._mark(delivery_id, claimant, "state = ?, next_attempt_at = ?", (QUEUED, next_attempt_at))

    async def _mark(self, delivery_id: str, claimant: str, assignments: str, params: tuple[Any, ...]) -> bool:
        async with self._transaction("update an alert delivery") as db:
            cursor = await db.execute(
                f"UPDATE deliveries SET {assignments}, claimed_by = NULL, claimed_at = NULL "
                "WHERE delivery_id = ? AND state = ? AND claimed_by = ?", (*params, delivery_id, SENDING, claimant))
            return cursor.rowcount > 0

    async def delivery(self, delivery_id: str) -> DeliveryRow | None:
        rows = await self._fetch("read a delivery", f"SELECT {_DELIVERY_COLUMNS} FROM deliveries WHERE delivery_id = ?",
                                 (delivery_id,))
        return _delivery(rows[0]) if rows else None

    async def deliveries(self, limit: int = 100, channel: str | None = None) -> list[DeliveryRow]:
        """The newest deliveries first."""
        rows = await self._fetch(
            "read the delivery log",
            f"SELECT {_DELIVERY_COLUMNS} FROM deliveries WHERE (? IS NULL OR channel = ?) "
            "ORDER BY created_at DESC, delivery_id DESC LIMIT ?", (channel, channel, max(0, limit)))
        return [_delivery(row) for row in rows]

    async def next_delivery_due(self, lease_s: float, channel: str) -> float | None:
        """When ``channel``'s earliest unsent row becomes due (a claimed row: when its claim expires)."""
        rows = await self._fetch(
            "read the next delivery due",
            "SELECT MIN(CASE WHEN state = ? THEN claimed_at + ? ELSE next_attempt_at END) FROM deliveries "
            "WHERE channel = ? AND state IN (?, ?, ?)", (SENDING, lease_s, channel, QUEUED, RETRYING, SENDING))
        return rows[0][0] if rows and rows[0][0] is not None else None



async def delete_alerts_before(db: aiosqlite.Connection, before: float) -> None:
    """Forget finished deliveries (sent or dead) created before ``before``, and alerts that stopped firing then."""
    await db.execute("DELETE FROM deliveries WHERE created_at < ? AND state IN (?, ?)", (before, SENT, DEAD))
    await db.execute("DELETE FROM alerts WHERE last_at < ? AND state != ?", (before, FIRING))


def _delivery_values(row: DeliveryRow) -> tuple[Any, ...]:
    return (row.delivery_id, row.alert_key, row.channel, row.kind, row.severity, row.title, row.body,
            json.dumps(dict(row.fields or {})), json.dumps([list(button) for button in row.buttons]), row.created_at,
            row.state, row.attempts, row.next_attempt_at, row.last_error, row.claimed_by, row.claimed_at, row.sent_at,
            None if row.recipients is None else json.dumps(list(row.recipients)), row.fallback_of)


def _delivery(row: Sequence[Any]) -> DeliveryRow:
    (delivery_id, alert_key, channel, kind, severity, title, body, fields, buttons, created_at, state, attempts,
     next_attempt_at, last_error, claimed_by, claimed_at, sent_at, recipients, fallback_of) = row
    return DeliveryRow(
        delivery_id=delivery_id, channel=channel, alert_key=alert_key, kind=kind, title=title, state=state,
        attempts=attempts, next_attempt_at=next_attempt_at, last_error=last_error, created_at=created_at,
        sent_at=sent_at, severity=severity, body=body, fields={str(k): str(v) for k, v in json.loads(fields).items()},
        buttons=tuple((str(label), str(data)) for label, data in json.loads(buttons)), claimed_by=claimed_by,
        claimed_at=claimed_at, recipients=None if recipients is None else tuple(json.loads(recipients)),
        fallback_of=fallback_of)


def _alert_values(alert: AlertRow) -> tuple[Any, ...]:
    return (alert.alert_key, alert.kind, alert.severity, alert.title, alert.body, alert.state, alert.first_at,
            alert.last_at, alert.last_sent_at, alert.acked_by, alert.acked_at, int(alert.pending_digest),
            None if alert.channels is None else json.dumps(list(alert.channels)))


def _alert(row: Sequence[Any]) -> AlertRow:
    (key, kind, severity, title, body, state, first_at, last_at, last_sent_at, acked_by, acked_at, pending,
     channels) = row
    return AlertRow(key, kind, severity, title, body, state, first_at, last_at, last_sent_at, acked_by, acked_at,
                    bool(pending), None if channels is None else tuple(json.loads(channels)))
