"""Live GPU metrics: a bounded in-memory history per instance for sparklines, and the store's copy."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from computehub_tui.domain.models import Instance, InstanceStatus, MetricSample
from computehub_tui.engine.safe_store import SafeStore

METRIC_HISTORY_SAMPLES = 720
"""Samples kept in memory per instance for sparklines (an hour at the default 5 s)."""


class MetricsService:
    def __init__(self, store: SafeStore, samples_kept: int = METRIC_HISTORY_SAMPLES) -> None:
        self._store = store
        self._kept = samples_kept
        self._history: dict[str, tuple[MetricSample, ...]] = {}
        """Each value is replaced by a new tuple on every sample, so a reader never sees one change."""

    def history(self, key: str) -> Sequence[MetricSample]:
        return self._history.get(key, ())

    def take(self, instances: Iterable[Instance]) -> list[tuple[str, MetricSample]]:
        """Keep each running instance's new sample (an old or repeated one is ignored); returns what was new."""
        samples = []
        for instance in instances:
            sample = instance.metrics
            if sample is None or instance.status is not InstanceStatus.RUNNING:
                continue
            history = self._history.get(instance.key, ())
            if history and history[-1].time >= sample.time:
                continue
            self._history[instance.key] = (*history[-(self._kept - 1):], sample) if self._kept > 1 else (sample,)
            samples.append((instance.key, sample))
        return samples

    async def save(self, samples: list[tuple[str, MetricSample]]) -> None:
        if samples:
            await self._store.call(self._store.store.add_metric_samples(samples))
