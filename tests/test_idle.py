"""The idle readout: idle, busy and unknown instances, mixed GPUs, and the fleet's idle money."""

from __future__ import annotations

import pytest

from computehub_tui.domain.idle import IdleReadout, fleet_idle, idle_readout, span
from computehub_tui.domain.models import MetricSample

NOW = 10_000.0


def sample(at: float, *utils: float, used: tuple[float, ...] = (), total: tuple[float, ...] = ()) -> MetricSample:
    return MetricSample(at, gpu_util=utils, vram_used_gb=used, vram_total_gb=total)


def test_an_idle_instance_says_how_long_and_why() -> None:
    samples = [sample(NOW - 1800, 90.0), *(sample(NOW - 1380 + 60 * n, 1.0, used=(1.2,), total=(24.0,))
                                           for n in range(24))]
    readout = idle_readout(samples, NOW, 1)
    assert readout.state == "idle"
    assert readout.text == "idle 23 m: all GPUs < 5 %, VRAM 1.2 / 24 GB"
    assert (readout.idle_gpus, readout.busy_gpus, readout.unknown_gpus) == (1, 0, 0)


def test_a_busy_instance_names_the_busy_gpus() -> None:
    readout = idle_readout([sample(NOW - 5, 0.0, 87.0)], NOW, 2)
    assert readout.state == "busy" and readout.text == "busy: GPU1 87 %"
    assert (readout.busy_gpus, readout.idle_gpus, readout.unknown_gpus) == (1, 1, 0)


def test_no_recent_sample_is_unknown_never_idle() -> None:
    readout = idle_readout([sample(NOW - 240, 0.0)], NOW, 1)
    assert readout.state == "unknown" and readout.text == "unknown: no samples for 4 m"
    assert readout.idle_gpus == 0 and readout.unknown_gpus == 1
    assert idle_readout([], NOW, 2) == IdleReadout("unknown", "unknown: no samples yet", unknown_gpus=2)


def test_an_unreported_gpu_keeps_the_instance_from_counting_as_idle() -> None:
    # Two GPUs idle, the third unreported (MIG reports no utilisation): not idle, and not busy either.
    readout = idle_readout([sample(NOW - 5, 1.0, 2.0)], NOW, 3)
    assert readout.state == "unknown" and readout.text == "unknown: 1 of 3 GPUs report no utilisation"
    assert (readout.idle_gpus, readout.unknown_gpus) == (2, 1)


def test_a_busy_gpu_wins_over_unknown_ones_and_absurd_readings_are_unknown() -> None:
    readout = idle_readout([sample(NOW, 1e308, 50.0, -5.0)], NOW, 3)
    assert readout.state == "busy" and readout.text == "busy: GPU1 50 %"
    assert readout.unknown_gpus == 2


def test_the_idle_run_restarts_at_the_last_busy_sample() -> None:
    samples = [sample(NOW - 600, 1.0), sample(NOW - 300, 60.0), sample(NOW - 120, 1.0), sample(NOW, 0.0)]
    assert idle_readout(samples, NOW, 1).idle_for_s == 120


def test_a_huge_gpu_count_is_bounded() -> None:
    assert idle_readout([], NOW, 10**9).unknown_gpus == 64


def test_the_fleet_counts_gpus_and_prices_only_the_idle_share() -> None:
    half_idle = idle_readout([sample(NOW, 0.0, 90.0)], NOW, 2)
    idle = idle_readout([sample(NOW, 0.0)], NOW, 1)
    unknown = idle_readout([], NOW, 4)
    fleet = fleet_idle([(half_idle, 2.0), (idle, 0.5), (unknown, 8.0), (idle, None)])
    assert (fleet.busy_gpus, fleet.idle_gpus, fleet.unknown_gpus) == (1, 3, 4)
    assert fleet.idle_cost_hour == pytest.approx(1.0 + 0.5)


@pytest.mark.parametrize(("seconds", "text"), [(40, "40 s"), (1380, "23 m"), (7500, "2 h 05 m"),
                                               (3 * 86400 + 4 * 3600, "3 d 4 h")])
def test_spans_read_naturally(seconds: float, text: str) -> None:
    assert span(seconds) == text
