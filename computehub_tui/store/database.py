"""The ``Store``: every concern's tables (instances, costs, metrics and rollups, projects, …) on one connection."""

from __future__ import annotations

from computehub_tui.store.audit import AuditStore, delete_audit_entries_before
from computehub_tui.store.automation import AutomationStore
from computehub_tui.store.costs import CostStore
from computehub_tui.store.instances import InstanceStore
from computehub_tui.store.metrics import MetricStore, delete_metric_samples_before
from computehub_tui.store.offers import OfferStore
from computehub_tui.store.outbox import OutboxStore, delete_alerts_before
from computehub_tui.store.prices import PriceStore, delete_price_stats_before
from computehub_tui.store.projects import ProjectStore
from computehub_tui.store.rollups import ROLLUP_1H, ROLLUP_1M, RollupStore, delete_rollups_before
from computehub_tui.store.secrets import SecretStore
from computehub_tui.store.status_history import StatusHistoryStore, delete_status_changes_before


class Store(InstanceStore, CostStore, OfferStore, PriceStore, MetricStore, RollupStore, ProjectStore, AuditStore,
            SecretStore, AutomationStore, StatusHistoryStore, OutboxStore):
    """The app's database. Open with ``await Store.open(path)``; close with ``await store.close()``.

    One writer connection per process: every concern's methods share the connection and its lock
    (see ``StoreConnection``), so a process never holds two write transactions against itself.
    """

    async def prune(self, now: float, *, metrics_keep_s: float, metrics_1m_keep_s: float, metrics_1h_keep_s: float,
                    prices_keep_s: float, audit_keep_s: float) -> None:
        """Roll metric samples up into minutes and hours, drop samples, rollups, price stats and audit
        entries older than their retention (status changes and finished alerts with the audit log), then give the space
        back."""
        await self.roll_up(now, raw_keep_s=metrics_keep_s, minutes_keep_s=metrics_1m_keep_s)
        async with self._transaction("prune old history") as db:
            await delete_metric_samples_before(db, now - metrics_keep_s)
            await delete_rollups_before(db, ROLLUP_1M, now - metrics_1m_keep_s)
            await delete_rollups_before(db, ROLLUP_1H, now - metrics_1h_keep_s)
            await delete_price_stats_before(db, now - prices_keep_s)
            await delete_audit_entries_before(db, now - audit_keep_s)
            await delete_status_changes_before(db, now - audit_keep_s)
            await delete_alerts_before(db, now - audit_keep_s)
        await self._incremental_vacuum()
