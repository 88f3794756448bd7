"""Status history: every instance's observed status changes, written in the transaction that saves a poll."""

from __future__ import annotations

from collections.abc import Sequence

import aiosqlite

from computehub_tui.domain.models import Instance, InstanceStatus
from computehub_tui.domain.status_timeline import StatusChange
from computehub_tui.store.connection import StoreConnection

MAX_CHANGES_READ = 2000
"""Newest changes one history read returns: an instance flapping every poll cannot flood a chart."""

_LATEST_PER_KEY = """
    SELECT c.instance_key, c.at, c.status, c.previous FROM instance_status_changes AS c
    JOIN (SELECT instance_key, max(at) AS at FROM instance_status_changes {where} GROUP BY instance_key) AS m
    ON m.instance_key = c.instance_key AND m.at = c.at
"""
_INSERT_CHANGE = """
    INSERT OR IGNORE INTO instance_status_changes (instance_key, at, status, previous) VALUES (?, ?, ?, ?)
"""


class StatusHistoryStore(StoreConnection):
    async def status_changes(self, key: str, since: float) -> list[StatusChange]:
        """``key``'s changes from ``since`` on, oldest first, led by the last one at or before ``since`` (the status
        the window opens with); at most the newest ``MAX_CHANGES_READ``."""
        rows = await self._fetch(
            "read status history",
            "SELECT instance_key, at, status, previous FROM (SELECT * FROM instance_status_changes "
            "WHERE instance_key = ? AND at >= coalesce((SELECT max(at) FROM instance_status_changes "
            "WHERE instance_key = ? AND at <= ?), ?) ORDER BY at DESC LIMIT ?) ORDER BY at",
            (key, key, since, since, MAX_CHANGES_READ),
        )
        return [_change(*row) for row in rows]

    async def current_statuses(self) -> dict[str, StatusChange]:
        """Each known instance's latest change: its current status and since when."""
        rows = await self._fetch("read current statuses", _LATEST_PER_KEY.format(where=""))
        return {row[0]: _change(*row) for row in rows}


async def record_status_changes(db: aiosqlite.Connection, provider: str, instances: Sequence[Instance],
                                seen_at: float) -> dict[str, StatusChange]:
    """Record how ``provider``'s instances changed status since the last look by any process: each one whose
    status differs from its latest change (or that is new), and each one gone from the list (terminated).
    Call inside the write transaction that saves the poll, so two processes never record one change twice.
    Returns each listed instance's latest change (its current status and since when)."""
    latest = await _latest_for_provider(db, provider)
    present = {instance.key: instance.status for instance in instances}
    gone = {key: InstanceStatus.TERMINATED for key in latest if key not in present}
    first_running = {instance.key: _first_running_at(instance, seen_at) for instance in instances
                     if instance.key not in latest}
    changes = [
        StatusChange(key, first_running.get(key) or seen_at, status, last.status if last else None)
        for key, status in (present | gone).items()
        if _changed(last := latest.get(key), status, seen_at)
    ]
    await db.executemany(_INSERT_CHANGE, [
        (change.instance_key, change.at, change.status.value, change.previous.value if change.previous else None)
        for change in changes
    ])
    latest.update((change.instance_key, change) for change in changes)
    return {key: latest[key] for key in present if key in latest}


async def delete_status_changes_before(db: aiosqlite.Connection, cutoff: float) -> None:
    """Drop changes older than ``cutoff``, except each live instance's latest (it still says since when the
    instance has had its status); call inside a write transaction."""
    await db.execute(
        "DELETE FROM instance_status_changes WHERE at < ? AND (status = ? OR at < (SELECT max(at) "
        "FROM instance_status_changes AS newer WHERE newer.instance_key = instance_status_changes.instance_key))",
        (cutoff, InstanceStatus.TERMINATED.value),
    )


async def _latest_for_provider(db: aiosqlite.Connection, provider: str) -> dict[str, StatusChange]:
    # Keys are "provider:id": the range [provider + ":", provider + ";") is exactly that provider's keys.
    rows = await db.execute_fetchall(_LATEST_PER_KEY.format(where="WHERE instance_key >= ? AND instance_key < ?"),
                                     (f"{provider}:", f"{provider};"))
    return {row[0]: _change(*row) for row in rows}


def _first_running_at(instance: Instance, seen_at: float) -> float | None:
    """When an instance first seen running has been running since, where its provider says (bounded at parse
    time); the poll's time otherwise."""
    since = instance.running_since
    if instance.status is InstanceStatus.RUNNING and since is not None and since <= seen_at:
        return since
    return None


def _changed(last: StatusChange | None, status: InstanceStatus, seen_at: float) -> bool:
    if last is None:
        return status is not InstanceStatus.TERMINATED
    return last.status is not status and seen_at > last.at  # an older look than the latest one changes nothing


def _change(key: str, at: float, status: str, previous: str | None) -> StatusChange:
    return StatusChange(key, float(at), _status(status), None if previous is None else _status(previous))


def _status(value: str) -> InstanceStatus:
    try:
        return InstanceStatus(value)
    except ValueError:
        return InstanceStatus.UNKNOWN
