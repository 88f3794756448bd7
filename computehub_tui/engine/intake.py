"""What becomes of a provider's answer: it replaces the live data and feeds health, metrics, costs, price
history and the store, then is announced on the bus."""

from __future__ import annotations

from collections.abc import Sequence

from computehub_tui.domain.models import Instance, Offer
from computehub_tui.engine.costs import CostService
from computehub_tui.engine.events import EventBus, InstancesUpdated, MetricsSampled, OffersUpdated, SpendUpdated
from computehub_tui.engine.health import HealthBook
from computehub_tui.engine.history import HistoryService
from computehub_tui.engine.live import LiveData
from computehub_tui.engine.metrics import MetricsService
from computehub_tui.engine.projects import ProjectService
from computehub_tui.engine.safe_store import SafeStore
from computehub_tui.engine.status_history import StatusHistoryService


class PollIntake:
    def __init__(self, live: LiveData, health: HealthBook, metrics: MetricsService, costs: CostService,
                 history: HistoryService, store: SafeStore, bus: EventBus, projects: ProjectService,
                 statuses: StatusHistoryService) -> None:
        self._live = live
        self._projects = projects
        self._health = health
        self._metrics = metrics
        self._costs = costs
        self._history = history
        self._store = store
        self._bus = bus
        self._statuses = statuses

    async def offers(self, provider: str, offers: Sequence[Offer], implausible: int, at: float) -> None:
        """``offers`` (already plausible) fetched at ``at``; ``implausible`` were dropped."""
        self._live.set_offers(provider, offers, implausible)
        self._health.succeeded(provider, "offers", at)
        await self._history.record(offers, at)
        await self._store.save_offers(provider, offers, at)
        self._bus.publish(OffersUpdated(provider, len(offers), at))

    async def instances(self, provider: str, instances: Sequence[Instance], at: float) -> None:
        self._live.set_instances(provider, instances)
        samples = self._metrics.take(instances)
        # Another process (the CLI's `project set`, a daemon) may have moved instances between projects.
        await self._projects.load()
        # Saved before booking: spend is grouped by the stored instance's label, so a booking read before its
        # instance was saved would count under no project.
        await self._statuses.save(provider, instances, at)
        await self._costs.accrue(instances, at)
        await self._metrics.save(samples)
        # Last: whoever sees this poll's time in health also finds its books and history written.
        self._health.succeeded(provider, "instances", at)
        self._bus.publish(InstancesUpdated(provider, len(instances), at))
        if samples:
            self._bus.publish(MetricsSampled(at, tuple(key for key, _ in samples)))
        self._bus.publish(SpendUpdated(self._costs.burn_rate(self._live.instances), self._costs.spend_today,
                                       self._costs.spend_this_month))
