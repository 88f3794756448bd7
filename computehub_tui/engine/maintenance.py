"""Retention: metric samples rolled up into minutes and hours, and every history pruned, at start and then hourly."""

from __future__ import annotations

from dataclasses import dataclass

from computehub_tui.clock import Clock
from computehub_tui.engine.safe_store import SafeStore

PRUNE_INTERVAL_S = 3600.0
HOUR = 3600.0
DAY = 86_400.0


@dataclass(frozen=True, slots=True)
class RetentionSettings:
    """How long each kind of history is kept (``[retention]``)."""

    metrics_raw_s: float = 4 * HOUR
    metrics_1m_s: float = 7 * DAY
    metrics_1h_s: float = 90 * DAY
    price_history_s: float = 90 * DAY
    audit_s: float = 365 * DAY


class MaintenanceService:
    """Rolls metrics up and keeps the database to its retention; a failed run is a store failure like any other."""

    def __init__(self, store: SafeStore, clock: Clock, retention: RetentionSettings) -> None:
        self._store = store
        self._clock = clock
        self.retention = retention

    async def prune_once(self) -> None:
        await self._store.call(self._store.store.prune(
            self._clock.now(), metrics_keep_s=self.retention.metrics_raw_s,
            metrics_1m_keep_s=self.retention.metrics_1m_s, metrics_1h_keep_s=self.retention.metrics_1h_s,
            prices_keep_s=self.retention.price_history_s, audit_keep_s=self.retention.audit_s))

    async def run(self) -> None:
        """A supervised job: roll up and prune now, then once an hour."""
        while True:
            await self.prune_once()
            await self._clock.sleep(PRUNE_INTERVAL_S)
