"""Money: cost accrual per instance (booked in the store, shared by every process), uptime, storage billed
while stopped, and spend today, this month and by day / provider / project in the user's time zone."""

from __future__ import annotations

import logging
import math
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, tzinfo
from itertools import pairwise
from types import MappingProxyType
from typing import Literal

from computehub_tui.clock import Clock
from computehub_tui.domain.models import Capabilities, Instance, InstanceStatus
from computehub_tui.domain.pricing import plausible_rate
from computehub_tui.engine.projects import ProjectService
from computehub_tui.engine.safe_store import SafeStore
from computehub_tui.store import CostState, InstanceSpend, Observation, SpendRow
from computehub_tui.store.costs import HOUR_S

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


SpendDimension = Literal["day", "provider", "project"]
SPEND_DIMENSIONS: tuple[SpendDimension, ...] = ("day", "provider", "project")


@dataclass(frozen=True, slots=True)
class SpendLine:
    """Spend of one group: ``keys`` holds one value per dimension asked for, in order (a day as
    ``YYYY-MM-DD`` in the user's zone, a provider name, a project name or None for no project)."""

    keys: tuple[str | None, ...]
    usd: float


class CostService:
    """What each instance has cost so far and since when it bills its full price. The store does the
    booking (idempotent across processes); this service keeps the latest answers for quick reads."""

    def __init__(self, store: SafeStore, clock: Clock, zone: tzinfo | None, *,
                 capabilities: Callable[[str], Capabilities], projects: ProjectService) -> None:
        self._store = store
        self._clock = clock
        self._capabilities = capabilities
        self._projects = projects
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

    def billing_while_stopped(self, instance: Instance) -> bool:
        """True when ``instance`` is stopped (or exited) and its provider still bills its storage: it costs
        money while doing nothing (the instance list flags it)."""
        return (instance.status in (InstanceStatus.STOPPED, InstanceStatus.EXITED)
                and self._capabilities(instance.provider).bills_storage_while_stopped
                and (plausible_rate(instance) or 0.0) > 0)

    def rate_now(self, instance: Instance) -> float | None:
        """What ``instance`` is billed per hour now: its plausible current price, except that a stopped one
        costs nothing where the provider does not bill stopped storage; None when not believable."""
        rate = plausible_rate(instance)
        if rate and not instance.status.is_billing_compute and not self.billing_while_stopped(instance):
            return 0.0
        return rate

    def burn_rate(self, instances: Iterable[Instance]) -> float:
        """What these instances cost per hour right now (implausible rates left out)."""
        return sum(rate for instance in instances if (rate := self.rate_now(instance)) is not None)

    async def spend_by(self, dimensions: Sequence[SpendDimension], since: float,
                       until: float | None = None) -> list[SpendLine]:
        """Spend booked in the hours that began in ``[since, until)`` (until: now), summed per group of
        ``dimensions`` and sorted by them. An hour counts on the day (in the user's zone) it began."""
        end = self._clock.now() + 1 if until is None else until
        rows = await self._store.call(self._store.store.spend_rows(since, end)) or []
        totals: dict[tuple[str | None, ...], float] = defaultdict(float)
        for row in rows:
            totals[tuple(self._group_of(row, dimension) for dimension in dimensions)] += row.usd
        return [SpendLine(keys, usd) for keys, usd in sorted(totals.items(), key=lambda item: _sort_key(item[0]))]

    def _group_of(self, row: SpendRow, dimension: SpendDimension) -> str | None:
        if dimension == "day":
            return datetime.fromtimestamp(row.hour_start, self.zone).date().isoformat()
        if dimension == "provider":
            return row.instance_key.split(":", 1)[0]
        return self._projects.project_for(row.instance_key, row.label)

    async def spent_over(self, key: str, since: float) -> list[tuple[float, float]]:
        """``(time, USD booked so far)`` for ``key`` from ``since`` to now, from the books (see ``booked_curve``);
        empty when the store cannot be read."""
        spend = await self._store.call(self._store.store.instance_spend(key, since))
        return [] if spend is None else booked_curve(spend, since, self._clock.now())

    async def load(self) -> None:
        """The books as the store has them (before the first poll answers)."""
        states = await self._store.call(self._store.store.cost_states())
        self._merge(states or {})
        await self.refresh_spend()

    async def accrue(self, instances: Iterable[Instance], now: float) -> None:
        """Book what these instances have cost since they were last booked, by any process."""
        observations = [
            Observation(i.key, i.status.is_billing_compute, self.rate_now(i), _last_started_hint(i, now))
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


def booked_curve(spend: InstanceSpend, start: float, end: float) -> list[tuple[float, float]]:
    """The cumulative USD booked over ``[start, end]`` as ``(time, usd)`` points: exact at each booked hour's
    edges, linear inside an hour (the books keep hours, not polls), flat where nothing was booked."""
    points: list[tuple[float, float]] = []
    total = spend.before
    for hour, usd in spend.hours:
        booked_end = min(hour + HOUR_S, spend.booked_until if spend.booked_until is not None else hour + HOUR_S)
        points += [(float(hour), total), (max(float(hour), booked_end), total + usd)]
        total += usd
    return [(start, _value_at(points, start, spend.before)),
            *((at, usd) for at, usd in points if start < at < end),
            (end, _value_at(points, end, spend.before))]


def _value_at(points: Sequence[tuple[float, float]], at: float, before: float) -> float:
    """The polyline through ``points`` at ``at``: ``before`` ahead of it, its last value after it."""
    if not points or at <= points[0][0]:
        return before
    for (left, low), (right, high) in pairwise(points):
        if at <= right:
            return low if right == left else low + (high - low) * (at - left) / (right - left)
    return points[-1][1]


def _sort_key(keys: tuple[str | None, ...]) -> tuple[tuple[bool, str], ...]:
    """None (no project) after every name."""
    return tuple((key is None, key or "") for key in keys)


def _last_started_hint(instance: Instance, now: float) -> float | None:
    """The provider's own "last started" time, where it has one and it is believable."""
    started = instance.running_since
    if started is None or not math.isfinite(started):
        return None
    if started < now - MAX_UPTIME_S:
        return None
    return min(started, now)
