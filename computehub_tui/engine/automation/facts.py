"""What rules see: InstanceFacts and AccountFacts built from the engine's live data, metrics, costs and health."""

from __future__ import annotations

import bisect
import itertools
import math
import statistics
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from computehub_tui.domain.idle import STALE_AFTER_S, idle_readout
from computehub_tui.domain.models import Instance, InstanceStatus, MetricSample, Offer, known
from computehub_tui.domain.status_timeline import StatusChange
from computehub_tui.engine.costs import CostService
from computehub_tui.engine.events import HealthState
from computehub_tui.engine.health import HealthBook
from computehub_tui.engine.live import LiveData
from computehub_tui.engine.metrics import MetricsService
from computehub_tui.engine.projects import ProjectService
from computehub_tui.engine.status_history import StatusHistoryService
from computehub_tui.rules.model import AccountFacts, InstanceFacts, Series, Value

STATUS_STEP_INTERVALS = 2
"""Status series points are this many poll intervals apart: well inside the three-interval gap that restarts a
``FOR`` window, and half the points of one per poll."""
UNBOUNDED_STATUS_S = 86_400.0
"""How far back a status series goes when no window bounds it (facts built for every field)."""
INTERVAL_SAMPLES = 20
"""How many recent gaps between samples estimate an instance's sample interval."""

MetricReader = Callable[[MetricSample], Value]

METRIC_FIELDS: Mapping[str, MetricReader] = {
    "gpu_util": lambda s: max(_utils(s), default=None),
    "gpu_util_min": lambda s: min(_utils(s), default=None),
    "gpu_util_avg": lambda s: statistics.fmean(_utils(s)) if _utils(s) else None,
    "vram_used_pct": lambda s: s.vram_pct,
    "vram_used_gb": lambda s: sum(known(s.vram_used_gb)) if known(s.vram_used_gb) else None,
    "gpu_temp": lambda s: s.max_gpu_temp,
    "power_w": lambda s: s.total_power_w,
    "cpu_util": lambda s: s.cpu_pct,
}
"""Instance fields read from a metric sample, each also kept as a series for ``FOR`` windows."""


def _utils(sample: MetricSample) -> list[float]:
    return [u for u in known(sample.gpu_util) if 0.0 <= u <= 100.0]


@dataclass(slots=True)
class _StatusGrid:
    """One instance's status series: ``status`` at ``anchor + n * step`` for n in ``[next_n - len(points), next_n)``."""

    anchor: float
    status: str
    step: float
    points: list[tuple[float, Value]]
    next_n: int = 0


class MetricPoints:
    """Each (instance, field)'s points, computed once per sample, and each instance's status series, extended as
    polls come: a tick builds the new points only."""

    def __init__(self) -> None:
        self._points: dict[tuple[str, str], list[tuple[float, Value]]] = {}
        self._status: dict[str, _StatusGrid] = {}

    def window(self, key: str, name: str, history: Sequence[MetricSample], since: float) -> tuple[tuple[float, Value],
                                                                                                   ...]:
        """``name``'s points from ``history`` (oldest first) at or after ``since``."""
        points = self._points.setdefault((key, name), [])
        last = points[-1][0] if points else float("-inf")
        new = []
        for sample in reversed(history):
            if sample.time <= last:
                break
            new.append(sample)
        read = METRIC_FIELDS[name]
        points.extend((sample.time, read(sample)) for sample in reversed(new))
        held = bisect.bisect_left(points, history[0].time if history else float("inf"), key=lambda point: point[0])
        if held:
            del points[:held]  # what the history itself no longer holds
        start = bisect.bisect_left(points, since, key=lambda point: point[0])
        return tuple(points[start:])

    def status_window(self, key: str, since_change: StatusChange, observed: float, since: float,
                      interval_s: float) -> tuple[tuple[float, Value], ...]:
        """``key``'s status from ``since`` on: the status of ``since_change`` from its time until ``observed`` (the
        last poll), a point every few poll intervals, and one at ``observed``."""
        anchor, status, step = since_change.at, since_change.status.value, STATUS_STEP_INTERVALS * interval_s
        grid = self._status.get(key)
        if grid is None or (grid.anchor, grid.status, grid.step) != (anchor, status, step):
            grid = self._status[key] = _StatusGrid(anchor, status, step, [])
        first_n = int((since - anchor) // step) if since > anchor else 0
        held_from = grid.next_n - len(grid.points)
        if first_n < held_from:  # a longer window than before: built again from its start
            grid.points.clear()
            grid.next_n = first_n
        elif first_n > held_from:
            del grid.points[:first_n - held_from]
        grid.next_n = max(grid.next_n, first_n)
        last_n = int((observed - anchor) // step)
        grid.points.extend((anchor + n * step, status) for n in range(grid.next_n, last_n + 1))
        grid.next_n = max(grid.next_n, last_n + 1)
        points = tuple(grid.points)
        if not points or points[-1][0] < observed:
            points = (*points, (observed, status))
        if since < anchor - interval_s and since_change.previous is not None:
            # The poll before the change saw the previous status: a window reaching back to it does not hold, as
            # a metric window does not over the last busy sample before an idle stretch.
            points = ((anchor - interval_s, since_change.previous.value), *points)
        return points

    def keep(self, keys: set[str]) -> None:
        """Forget every instance but ``keys``."""
        self._points = {pair: points for pair, points in self._points.items() if pair[0] in keys}
        self._status = {key: grid for key, grid in self._status.items() if key in keys}


@dataclass(frozen=True, slots=True)
class FactSources:
    """The engine parts facts are read from (all in memory: building facts does no I/O)."""

    live: LiveData
    health: HealthBook
    metrics: MetricsService
    costs: CostService
    projects: ProjectService
    statuses: StatusHistoryService
    is_stale: Callable[[str], bool]
    poll_interval_s: float
    pricing_of: Callable[[str], str | None]
    """An instance's pricing kind (``on-demand`` / ``interruptible``) where its launch was recorded."""
    max_sample_interval_s: float = math.inf
    """An instance's sample interval is never longer: gaps in the history (no process ran, metrics were missing)
    must not stretch it, or a window would hold on a sample or two and a long gap would not count as missing."""


class FactsBuilder:
    """Builds one tick's facts. ``price_change_24h`` and ``project_spend_today`` come from ``set_price_changes``
    and ``set_project_spend``, which the runner refreshes from the store before it builds."""

    def __init__(self, sources: FactSources) -> None:
        self._sources = sources
        self._price_change: Mapping[tuple[str, str], float] = {}
        self._project_spend: Mapping[str | None, float] | None = None
        """None until first read: unknown, not zero."""
        self._points = MetricPoints()

    def set_price_changes(self, changes: Mapping[tuple[str, str], float]) -> None:
        """Percent change over 24 h of the per-GPU median price, by (provider, gpu)."""
        self._price_change = dict(changes)

    def set_project_spend(self, spend: Mapping[str | None, float]) -> None:
        """Spend today by project (None: instances in no project)."""
        self._project_spend = dict(spend)

    def fresh(self, provider: str) -> bool:
        """False when ``provider`` is failing or its instance data is older than two polls."""
        health = self._sources.health.get(provider)
        return health is not None and health.state is HealthState.OK and not self._sources.is_stale(provider)

    def _status_series(self, instance: Instance, since: float, points: MetricPoints) -> Series:
        """``instance``'s status from ``since`` on, for ``status == x FOR 20m``: its current status from when the
        store first recorded it (by any process, so a restart does not start the window over) until this process
        last polled its provider. Nothing when the record disagrees with the instance (not polled yet) or this
        process has not polled its provider."""
        statuses, interval = self._sources.statuses, self._sources.poll_interval_s
        change, observed = statuses.current(instance.key), statuses.observed_at(instance.provider)
        if change is None or change.status is not instance.status or observed is None or observed < change.at:
            return Series((), interval)
        since = max(since, observed - UNBOUNDED_STATUS_S)
        return Series(points.status_window(instance.key, change, observed, since, interval), interval)

    def running_since(self, instance: Instance) -> float | None:
        """Since when ``instance`` has been running: the later of its provider's start time and when a poll first
        saw it running (a restart between two polls shows only in the first); None when it is not running."""
        if instance.status is not InstanceStatus.RUNNING:
            return None
        seen = (instance.running_since, self._sources.statuses.status_since(instance))
        return max((at for at in seen if at is not None), default=None)

    def account(self) -> AccountFacts:
        sources = self._sources
        instances = sources.live.instances
        return AccountFacts({
            "spend_today": sources.costs.spend_today,
            "spend_month": sources.costs.spend_this_month,
            "burn_rate": sources.costs.burn_rate(instances),
            "running_count": float(sum(1 for i in instances if i.status is InstanceStatus.RUNNING)),
        }, fresh=all(self.fresh(name) for name in sources.live.providers))

    def instances(self, now: float, windows: Mapping[str, float] | None = None, *,
                  private: bool = False) -> list[InstanceFacts]:
        """Every instance's facts. ``windows`` (field → longest ``FOR`` window the rules read it over) says
        which series to build and how far back; None builds every series over all the history held.
        ``private`` builds without the engine's point cache: for a caller on another thread (a preview)."""
        points = MetricPoints() if private else self._points
        facts = [self.instance(instance, now, windows, points) for instance in self._sources.live.instances
                 if instance.status is not InstanceStatus.TERMINATED]
        if not private:
            points.keep({f.key for f in facts})
        return facts

    def instance(self, instance: Instance, now: float, windows: Mapping[str, float] | None = None,
                 points: MetricPoints | None = None) -> InstanceFacts:
        points = points or self._points
        sources = self._sources
        history = sources.metrics.history(instance.key)
        interval = min(sample_interval(history, sources.poll_interval_s), sources.max_sample_interval_s)
        latest = history[-1] if history and now - history[-1].time <= STALE_AFTER_S else None
        project = sources.projects.project_of(instance)
        values: dict[str, Value] = {
            "status": instance.status.value,
            "provider": instance.provider,
            "gpu": instance.gpu,
            "gpu_count": float(instance.gpu_count),
            "label": instance.label,
            "project": project,
            "pricing": instance.pricing.value if instance.pricing else sources.pricing_of(instance.key),
            "cost_per_hour": sources.costs.rate_now(instance),
            "cost_so_far": sources.costs.cost_so_far(instance.key),
            "uptime": sources.costs.uptime(instance),
            "idle_for": _idle_for(history, now, instance.gpu_count),
            "price_change_24h": self._price_change.get((instance.provider, instance.gpu)),
            "project_spend_today": None if self._project_spend is None else self._project_spend.get(project, 0.0),
        }
        for name, read in METRIC_FIELDS.items():
            values[name] = read(latest) if latest is not None else None
        series: dict[str, Series] = {}
        for name in METRIC_FIELDS:
            if windows is None or name in windows:
                since = _series_start(now, windows, name, interval)
                series[name] = Series(points.window(instance.key, name, history, since), interval)
        if windows is None or "status" in windows:
            since = _series_start(now, windows, "status", sources.poll_interval_s)
            series["status"] = self._status_series(instance, since, points)
        return InstanceFacts(instance.key, values, series, fresh=self.fresh(instance.provider))


def _series_start(now: float, windows: Mapping[str, float] | None, name: str, interval_s: float) -> float:
    """The oldest sample a window can need: its start, less the gaps that may precede its first sample."""
    if windows is None:
        return float("-inf")
    return now - windows[name] - 4 * interval_s


def sample_interval(history: Sequence[MetricSample], fallback_s: float) -> float:
    """The instance's sampling interval: the lower quartile of the gaps between its recent samples (the poll
    interval until it has some). Not the median: a machine whose data is missing half the time would stretch
    the interval over its gaps, and a short ``FOR`` window would then hold on a single sample."""
    times = [sample.time for sample in history[-(INTERVAL_SAMPLES + 1):]]
    gaps = sorted(later - earlier for earlier, later in itertools.pairwise(times) if later > earlier)
    return gaps[(len(gaps) - 1) // 4] if gaps else fallback_s


def _idle_for(history: Sequence[MetricSample], now: float, gpu_count: int) -> float | None:
    readout = idle_readout(history, now, gpu_count)
    if readout.state == "busy":
        return 0.0
    return readout.idle_for_s if readout.state == "idle" else None


def price_changes(offers: Sequence[Offer], day_ago_per_gpu: Mapping[tuple[str, str], float]) -> dict[tuple[str, str],
                                                                                                      float]:
    """Percent change of the median per-GPU price of each (provider, gpu) now against ``day_ago_per_gpu``."""
    now_prices: dict[tuple[str, str], list[float]] = {}
    for offer in offers:
        if offer.available and offer.gpu_count > 0:
            now_prices.setdefault((offer.provider, offer.gpu), []).append(offer.price_per_gpu_hour)
    return {key: 100.0 * (statistics.median(prices) - day_ago_per_gpu[key]) / day_ago_per_gpu[key]
            for key, prices in now_prices.items() if day_ago_per_gpu.get(key, 0.0) > 0}
