"""Live GPU metrics: a bounded in-memory history per instance for sparklines, the store's copy, chart
history at the resolution that fits its window, and how the SSH sampler is doing for each instance."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Literal

from computehub_tui.clock import Clock
from computehub_tui.domain.models import Instance, InstanceStatus, MetricSample
from computehub_tui.engine.maintenance import RetentionSettings
from computehub_tui.engine.safe_store import SafeStore
from computehub_tui.engine.sampler_state import SamplerState
from computehub_tui.store.rollups import ROLLUP_1H, ROLLUP_1M, Rollup

METRIC_HISTORY_SAMPLES = 720
"""Samples kept in memory per instance for sparklines (an hour at the default 5 s)."""
RAW_CHART_MAX_S = 2 * 3600.0
MINUTE_CHART_MAX_S = 2 * 86_400.0
"""Charts of windows up to these read raw samples, then one-minute rows; longer ones read hourly rows."""

Resolution = Literal["raw", "1m", "1h"]
_ROLLUPS: dict[Resolution, Rollup] = {"1m": ROLLUP_1M, "1h": ROLLUP_1H}
_FINER: dict[Resolution, Resolution] = {"1h": "1m", "1m": "raw"}


def resolution_for(window_s: float, retention: RetentionSettings) -> Resolution:
    """The coarsest resolution a chart of ``window_s`` needs, within what the retention keeps."""
    if window_s <= min(RAW_CHART_MAX_S, retention.metrics_raw_s):
        return "raw"
    if window_s <= min(MINUTE_CHART_MAX_S, retention.metrics_1m_s):
        return "1m"
    return "1h"


@dataclass(frozen=True, slots=True)
class MetricWindow:
    """A chart's points: samples (raw) or rollup rows as samples of their mean values, oldest first."""

    resolution: Resolution
    samples: tuple[MetricSample, ...]


class MetricsService:
    def __init__(self, store: SafeStore, *, clock: Clock, retention: RetentionSettings,
                 samples_kept: int = METRIC_HISTORY_SAMPLES) -> None:
        self._store = store
        self._clock = clock
        self.retention = retention
        self._kept = samples_kept
        self._history: dict[str, tuple[MetricSample, ...]] = {}
        """Each value is replaced by a new tuple on every sample, so a reader never sees one change."""
        self._sampler_states: dict[str, SamplerState] = {}

    def history(self, key: str) -> Sequence[MetricSample]:
        return self._history.get(key, ())

    def sampler_state(self, key: str) -> SamplerState | None:
        """How sampling ``key`` over SSH goes (last success, or the failure and when it is retried); None
        when the SSH sampler does not sample it."""
        return self._sampler_states.get(key)

    def set_sampler_state(self, key: str, state: SamplerState | None) -> None:
        if state is None:
            self._sampler_states.pop(key, None)
        else:
            self._sampler_states[key] = state

    def sampled_keys(self) -> list[str]:
        return list(self._sampler_states)

    def record(self, key: str, sample: MetricSample) -> bool:
        """Keep ``sample`` in ``key``'s history unless it is not newer than the last one; True if kept."""
        history = self._history.get(key, ())
        if history and history[-1].time >= sample.time:
            return False
        self._history[key] = (*history[-(self._kept - 1):], sample) if self._kept > 1 else (sample,)
        return True

    def take(self, instances: Iterable[Instance]) -> list[tuple[str, MetricSample]]:
        """Keep each running instance's new sample (an old or repeated one is ignored); returns what was new."""
        samples = []
        for instance in instances:
            sample = instance.metrics
            if sample is None or instance.status is not InstanceStatus.RUNNING:
                continue
            if self.record(instance.key, sample):
                samples.append((instance.key, sample))
        return samples

    async def save(self, samples: list[tuple[str, MetricSample]]) -> None:
        if samples:
            await self._store.call(self._store.store.add_metric_samples(samples))

    async def chart(self, key: str, window_s: float) -> MetricWindow:
        """``key``'s history over the last ``window_s`` at the resolution that fits it (see
        ``resolution_for``). The newest stretch that is not rolled up yet (the job runs hourly) comes at
        the next finer resolution, so a chart always reaches the present."""
        resolution = resolution_for(window_s, self.retention)
        cursor = self._clock.now() - window_s
        points: list[MetricSample] = []
        level: Resolution | None = resolution
        while level is not None:
            found = await self._read(key, level, cursor)
            points.extend(found)
            if found and level != "raw":
                cursor = found[-1].time + _ROLLUPS[level].seconds
            level = _FINER.get(level)
        return MetricWindow(resolution, tuple(points))

    async def _read(self, key: str, level: Resolution, since: float) -> list[MetricSample]:
        store = self._store.store
        if level == "raw":
            return await self._store.call(store.metric_history(key, since)) or []
        return await self._store.call(store.metric_rollups(key, since, _ROLLUPS[level])) or []
