"""Live GPU metrics: a bounded in-memory history per instance for sparklines, the store's copy, and how the
SSH sampler is doing for each instance."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from computehub_tui.domain.models import Instance, InstanceStatus, MetricSample
from computehub_tui.engine.safe_store import SafeStore
from computehub_tui.engine.sampler_state import SamplerState

METRIC_HISTORY_SAMPLES = 720
"""Samples kept in memory per instance for sparklines (an hour at the default 5 s)."""


class MetricsService:
    def __init__(self, store: SafeStore, samples_kept: int = METRIC_HISTORY_SAMPLES) -> None:
        self._store = store
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
