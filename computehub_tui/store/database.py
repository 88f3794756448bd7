"""The ``Store``: every concern's tables (instances, costs, offers, prices, metrics, audit, secrets) on one connection."""

from __future__ import annotations

from computehub_tui.store.audit import AuditStore, delete_audit_entries_before
from computehub_tui.store.costs import CostStore
from computehub_tui.store.instances import InstanceStore
from computehub_tui.store.metrics import MetricStore, delete_metric_samples_before
from computehub_tui.store.offers import OfferStore
from computehub_tui.store.prices import PriceStore, delete_price_stats_before
from computehub_tui.store.secrets import SecretStore


class Store(InstanceStore, CostStore, OfferStore, PriceStore, MetricStore, AuditStore, SecretStore):
    """The app's database. Open with ``await Store.open(path)``; close with ``await store.close()``.

    One writer connection per process: every concern's methods share the connection and its lock
    (see ``StoreConnection``), so a process never holds two write transactions against itself.
    """

    async def prune(self, now: float, *, metrics_keep_s: float, prices_keep_s: float, audit_keep_s: float) -> None:
        """Drop metric samples, price stats and audit entries older than their retention, then give space back."""
        async with self._transaction("prune old history") as db:
            await delete_metric_samples_before(db, now - metrics_keep_s)
            await delete_price_stats_before(db, now - prices_keep_s)
            await delete_audit_entries_before(db, now - audit_keep_s)
        await self._incremental_vacuum()
