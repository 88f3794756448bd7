"""What the Monitor pane and the instance detail read about metrics and spend: the one place that
knows which Hub calls supply them."""

from __future__ import annotations

from collections.abc import Sequence

from computehub_tui.domain.models import MetricSample
from computehub_tui.engine.hub import Hub
from computehub_tui.engine.sampler_state import SamplerStatus


def recent_history(hub: Hub, key: str) -> Sequence[MetricSample]:
    """The in-memory samples the Monitor pane draws (newest last); cheap, read on every repaint."""
    return hub.metric_history(key)


async def history_for_window(hub: Hub, key: str, window_s: float) -> list[MetricSample]:
    """Samples over the last ``window_s`` for a chart, at the resolution that fits the window (raw, then
    one-minute, then hourly means)."""
    return list((await hub.metric_chart(key, window_s)).samples)


def gpu_power_w(sample: MetricSample) -> Sequence[float | None]:
    """Each GPU's power draw in W (empty when the source reports none)."""
    return sample.gpu_power_w


def sample_problem(hub: Hub, key: str) -> str:
    """Why ``key``'s metrics are partial or missing (a sample's error, the SSH sampler's state); "" when
    nothing is wrong or nothing says."""
    state = hub.metrics.sampler_state(key)
    if state is not None and state.status is SamplerStatus.FAILED:
        return state.message
    history = hub.metric_history(key)
    return history[-1].error or "" if history else ""


async def spend_for_window(hub: Hub, key: str, window_s: float) -> list[tuple[float, float]]:
    """(time, USD booked so far) over the last ``window_s`` for the $ chart: the books, hour by hour."""
    return await hub.costs.spent_over(key, hub.clock.now() - window_s)
