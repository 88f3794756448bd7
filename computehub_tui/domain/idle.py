"""The idle readout: whether an instance's GPUs are idle, busy or unknown, in words that explain why."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from computehub_tui.domain.models import MetricSample, known

IDLE_BELOW_PCT = 5.0
"""A GPU under this utilisation does no useful work."""
STALE_AFTER_S = 180.0
"""A latest sample older than this says nothing about now: the instance is unknown."""
MAX_GPUS = 64
"""Bound on the GPUs one readout counts (a hostile sample or instance may claim 1e9)."""
BUSY_LISTED = 3

IdleState = Literal["idle", "busy", "unknown"]


@dataclass(frozen=True, slots=True)
class IdleReadout:
    """One instance's verdict, the sentence that explains it and its GPUs counted by state."""

    state: IdleState
    text: str
    busy_gpus: int = 0
    idle_gpus: int = 0
    unknown_gpus: int = 0
    idle_for_s: float | None = None

    @property
    def gpus(self) -> int:
        return self.busy_gpus + self.idle_gpus + self.unknown_gpus

    @property
    def idle_share(self) -> float:
        """The share of this instance's GPUs that are known to be idle (what its idle money is)."""
        return self.idle_gpus / self.gpus if self.gpus else 0.0


def idle_readout(samples: Sequence[MetricSample], now: float, gpu_count: int = 0, *,
                 idle_below_pct: float = IDLE_BELOW_PCT, stale_after_s: float = STALE_AFTER_S) -> IdleReadout:
    """Judge the newest of ``samples`` (oldest first). ``gpu_count`` is how many GPUs the instance has:
    a GPU the sample does not report is unknown. Unknown never counts as idle."""
    gpus = min(MAX_GPUS, max(0, gpu_count))
    if not samples:
        return IdleReadout("unknown", "unknown: no samples yet", unknown_gpus=gpus)
    latest = samples[-1]
    gpus = max(gpus, min(MAX_GPUS, len(latest.gpu_util)))
    age_s = now - latest.time
    if age_s > stale_after_s:
        return IdleReadout("unknown", f"unknown: no samples for {span(age_s)}", unknown_gpus=gpus)
    utils = _utils(latest, gpus)
    busy = [(n, u) for n, u in enumerate(utils) if u is not None and u >= idle_below_pct]
    idle = sum(1 for u in utils if u is not None and u < idle_below_pct)
    unknown = gpus - len(busy) - idle
    if busy:
        listed = ", ".join(f"GPU{n} {u:.0f} %" for n, u in busy[:BUSY_LISTED])
        more = f" (+{len(busy) - BUSY_LISTED} more)" if len(busy) > BUSY_LISTED else ""
        return IdleReadout("busy", f"busy: {listed}{more}", len(busy), idle, unknown)
    if unknown or not gpus:
        what = "no GPU utilisation reported" if unknown == gpus else f"{unknown} of {gpus} GPUs report no utilisation"
        return IdleReadout("unknown", f"unknown: {what}", 0, idle, unknown)
    idle_for = now - _idle_since(samples, gpus, idle_below_pct)
    vram = _vram(latest)
    return IdleReadout("idle", f"idle {span(idle_for)}: all GPUs < {idle_below_pct:g} %{vram}", 0, idle, 0,
                       idle_for)


def _utils(sample: MetricSample, gpus: int) -> list[float | None]:
    reported: list[float | None] = [u if u is not None and 0.0 <= u <= 100.0 else None
                                    for u in sample.gpu_util[:gpus]]
    return reported + [None] * (gpus - len(reported))


def _idle_since(samples: Sequence[MetricSample], gpus: int, idle_below_pct: float) -> float:
    """When the unbroken run of all-idle samples that ends with the newest one began."""
    since = samples[-1].time
    for sample in reversed(samples):
        utils = _utils(sample, gpus)
        if any(u is None or u >= idle_below_pct for u in utils):
            break
        since = sample.time
    return since


def _vram(sample: MetricSample) -> str:
    if not sample.vram_used_gb or not sample.vram_total_gb:
        return ""
    used, total = sum(known(sample.vram_used_gb)), sum(known(sample.vram_total_gb))
    return f", VRAM {used:.1f} / {total:.0f} GB" if total > 0 else ""


def span(seconds: float) -> str:
    """A readout's duration: 40 s, 23 m, 2 h 05 m, 3 d 4 h."""
    whole = int(max(0.0, seconds))
    if whole < 60:
        return f"{whole} s"
    if whole < 3600:
        return f"{whole // 60} m"
    if whole < 86400:
        return f"{whole // 3600} h {whole % 3600 // 60:02d} m"
    return f"{whole // 86400} d {whole % 86400 // 3600} h"


@dataclass(frozen=True, slots=True)
class FleetIdle:
    """GPUs across the fleet by state, and what the idle ones cost per hour."""

    busy_gpus: int = 0
    idle_gpus: int = 0
    unknown_gpus: int = 0
    idle_cost_hour: float = 0.0


def fleet_idle(readouts: Sequence[tuple[IdleReadout, float | None]]) -> FleetIdle:
    """Sum each instance's readout with its $/h (None for an implausible rate, left out of the money):
    an instance's idle money is its $/h times its share of idle GPUs."""
    return FleetIdle(
        busy_gpus=sum(readout.busy_gpus for readout, _ in readouts),
        idle_gpus=sum(readout.idle_gpus for readout, _ in readouts),
        unknown_gpus=sum(readout.unknown_gpus for readout, _ in readouts),
        idle_cost_hour=sum(rate * readout.idle_share for readout, rate in readouts if rate is not None),
    )
