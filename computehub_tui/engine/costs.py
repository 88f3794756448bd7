"""Money: cost accrual per instance (booked in the store, shared by every process), uptime, and spend
today and this month in the user's time zone."""

from __future__ import annotations

import logging
import math
from collections.abc import Iterable, Mapping
from datetime import datetime, tzinfo
from types import MappingProxyType

from computehub_tui.clock import Clock
from computehub_tui.domain.models import Instance
from computehub_tui.domain.pricing import plausible_rate
from computehub_tui.engine.safe_store import SafeStore
from computehub_tui.store import CostState, Observation

log = logging.getLogger(__name__)

MAX_UPTIME_S = 400 * 86400.0
"""A provider start time further back than this is not believed."""


def day_start(at: float, zone: tzinfo | None) -> float:
    """Midnight before ``at`` in ``zone`` (None: this machine's local time)."""
    moment = datetime.fromtimestamp(at, zone)
    return moment.replace(hour=0, minute=0, second=0, microsecond=0).timestamp()


def month_start(at: float, zone: tzinfo | None) -> float:
    moment = datetime.fromtimestamp(at, zone)
    return moment.replace(day=1, hour=0, minute=0, second=0, microsecond=0).timestamp()


class CostService:
    """What each instance has cost so far and since when it bills its full price. The store does the
    booking (idempotent across processes); this service keeps the latest answers for quick reads."""

    def __init__(self, store: SafeStore, clock: Clock, zone: tzinfo | None = None) -> None:
        self._store = store
        self._clock = clock
        self.zone = zone
        """The user's time zone for "today" and "this month"; None is this machine's local time."""
        self._states: Mapping[str, CostState] = MappingProxyType({})
        self._unbelievable: set[str] = set()
        """Instances whose implausible price was logged once already."""
        self.spend_today = 0.0
        self.spend_this_month = 0.0

    def cost_so_far(self, key: str) -> float:
        """USD booked for ``key`` by every process so far (as of this process's last poll of it)."""
        state = self._states.get(key)
        return state.usd if state else 0.0

    def running_since(self, instance: Instance | None) -> float | None:
        """When ``instance`` last entered a billing-compute state; None if it is not in one, or that
        moment is unknown (see ``Hub.uptime``)."""
        if instance is None or not instance.status.is_billing_compute:
            return None
        state = self._states.get(instance.key)
        return state.running_since if state else None

    def uptime(self, instance: Instance | None) -> float | None:
        since = self.running_since(instance)
        return None if since is None else max(0.0, self._clock.now() - since)

    @staticmethod
    def burn_rate(instances: Iterable[Instance]) -> float:
        """What these instances cost per hour right now (implausible rates left out)."""
        return sum(rate for instance in instances if (rate := plausible_rate(instance)) is not None)

    async def load(self) -> None:
        """The books as the store has them (before the first poll answers)."""
        states = await self._store.call(self._store.store.cost_states())
        self._merge(states or {})
        await self.refresh_spend()

    async def accrue(self, instances: Iterable[Instance], now: float) -> None:
        """Book what these instances have cost since they were last booked, by any process."""
        observations = [
            Observation(i.key, i.status.is_billing_compute, plausible_rate(i), _last_started_hint(i, now))
            for i in instances
        ]
        for observation in observations:
            if observation.rate_hour is None and observation.key not in self._unbelievable:
                self._unbelievable.add(observation.key)
                log.warning("not booking cost for %s: its hourly price is not believable", observation.key)
        states = await self._store.call(self._store.store.accrue(observations, now))
        if states:
            self._merge(states)
            await self.refresh_spend()

    async def record_transition(self, key: str, billing: bool) -> None:
        """This app started or stopped ``key`` (its uptime and full-price billing start or end now)."""
        state = await self._store.call(self._store.store.record_transition(key, billing, self._clock.now()))
        if state is not None:
            self._merge({key: state})

    async def refresh_spend(self) -> None:
        now = self._clock.now()
        today = await self._store.call(self._store.store.spend_between(day_start(now, self.zone), now + 1))
        month = await self._store.call(self._store.store.spend_between(month_start(now, self.zone), now + 1))
        if today is not None:
            self.spend_today = today
        if month is not None:
            self.spend_this_month = month

    def _merge(self, states: Mapping[str, CostState]) -> None:
        if states:
            self._states = MappingProxyType({**self._states, **states})


def _last_started_hint(instance: Instance, now: float) -> float | None:
    """The provider's own "last started" time, where it has one and it is believable."""
    started = instance.running_since
    if started is None or not math.isfinite(started):
        return None
    if started < now - MAX_UPTIME_S:
        return None
    return min(started, now)
