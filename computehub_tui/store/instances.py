"""Instances: each provider's last polled instances, which ones have gone since, and their status changes."""

from __future__ import annotations

import json
import logging

from computehub_tui.domain.models import Instance
from computehub_tui.domain.status_timeline import StatusChange
from computehub_tui.store._codec import SnapshotDecodeError, decode_instance, encode_instance
from computehub_tui.store.connection import StoreConnection
from computehub_tui.store.status_history import record_status_changes

log = logging.getLogger(__name__)

_UPSERT_INSTANCE = """
    INSERT INTO instances (key, provider, status, snapshot, first_seen, last_seen, gone_at)
    VALUES (?, ?, ?, ?, ?, ?, NULL)
    ON CONFLICT (key) DO UPDATE SET
        provider = excluded.provider,
        status = excluded.status,
        snapshot = excluded.snapshot,
        last_seen = excluded.last_seen,
        gone_at = NULL
"""
_MARK_MISSING_INSTANCES_GONE = """
    UPDATE instances SET gone_at = ?
    WHERE provider = ? AND gone_at IS NULL AND key NOT IN (SELECT value FROM json_each(?))
"""


class InstanceStore(StoreConnection):
    async def save_instances(
        self, provider: str, instances: list[Instance], seen_at: float
    ) -> dict[str, StatusChange]:
        """Upsert ``provider``'s instances; its instances missing from the list are marked gone. Status changes
        are recorded on the way (see ``status_history``); returns each instance's current status and since when."""
        foreign = sorted({i.provider for i in instances if i.provider != provider})
        if foreign:
            raise ValueError(f"save_instances({provider!r}) got instances of {', '.join(foreign)}")
        rows = [
            (i.key, provider, i.status.value, encode_instance(i), seen_at, seen_at)
            for i in instances
        ]
        present_keys = json.dumps([i.key for i in instances])
        async with self._transaction(f"save {provider} instances") as db:
            await db.executemany(_UPSERT_INSTANCE, rows)
            await db.execute(_MARK_MISSING_INSTANCES_GONE, (seen_at, provider, present_keys))
            return await record_status_changes(db, provider, instances, seen_at)

    async def load_instances(self) -> list[Instance]:
        """Every instance not marked gone, as last saved (without live metrics)."""
        rows = await self._fetch(
            "load instances",
            "SELECT key, snapshot FROM instances WHERE gone_at IS NULL ORDER BY provider, key",
        )
        instances: list[Instance] = []
        for key, snapshot in rows:
            try:
                instances.append(decode_instance(snapshot))
            except SnapshotDecodeError as error:
                # Only a cache of the last poll, which the next poll rewrites: skip, don't fail.
                log.warning("skipping stored instance %s: %s", key, error)
        return instances
