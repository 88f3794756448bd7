"""Packed metric readings: every reading round-trips at its kept precision, unknown stays unknown (never 0),
and absurd values (NaN, infinities, 1e308, negatives, a billion GPUs) are bounded where they enter."""

from __future__ import annotations

import math

import pytest

from computehub_tui.domain.models import MetricSample
from computehub_tui.store._codec import (
    CPU_PERCENT,
    PERCENT,
    POWER,
    SAMPLE_LAYOUT,
    TEMPERATURE,
    VRAM,
    MetricDecodeError,
    decode_metric_sample,
    encode_metric_sample,
    pack,
    to_units,
    to_values,
    unpack,
)

T0 = 1_790_000_000.0


def round_trip(sample: MetricSample) -> MetricSample:
    return decode_metric_sample(encode_metric_sample(sample))


def test_a_sample_with_unknown_readings_keeps_them_unknown_and_its_shape() -> None:
    sample = MetricSample(T0 + 0.125, gpu_util=(None, 0.0, 100.0), vram_used_gb=(0.0, None),
                          vram_total_gb=(80.0, 80.0, 80.0), gpu_temp_c=(None,), cpu_pct=None, ram_pct=0.0,
                          gpu_power_w=(0.0, None, 700.5), gpu_names=("H100", "H100", "H100"), source="ssh",
                          error="GPU 1 unreadable")
    assert round_trip(sample) == sample
    assert round_trip(MetricSample(T0)) == MetricSample(T0)


@pytest.mark.parametrize(("reading", "value", "kept"), [
    (PERCENT, 97.25, 97.2), (PERCENT, 12.36, 12.4), (PERCENT, 0.04, 0.0),  # 0.1 %
    (VRAM, 79.1, 80998 / 1024), (VRAM, 0.0004, 0.0), (VRAM, 512.0, 512.0),  # whole MiB, up to 512 GiB
    (TEMPERATURE, 61.4, 61.0), (TEMPERATURE, -40.0, -40.0), (TEMPERATURE, 150.0, 150.0),  # 1 °C
    (POWER, 88.56, 88.6), (POWER, 2000.0, 2000.0),  # 0.1 W
    (CPU_PERCENT, 3150.05, 3150.0),  # Docker-style CPU % counts each core as 100 %
])
def test_each_reading_keeps_the_precision_that_matters(reading: object, value: float, kept: float) -> None:
    layout = (reading,)
    ((back,),) = to_values(layout, unpack(layout, pack(layout, to_units(layout, ((value,),)))))  # type: ignore[arg-type]
    assert back == pytest.approx(kept, abs=1e-9)


@pytest.mark.parametrize("absurd", [math.nan, math.inf, -math.inf, 1e308, -5.0, 100.1])
def test_an_absurd_utilisation_is_kept_as_unknown_not_as_zero_or_a_clamped_figure(absurd: float) -> None:
    back = round_trip(MetricSample(T0, gpu_util=(absurd, 50.0), cpu_pct=absurd, ram_pct=absurd))
    assert back.gpu_util == (None, 50.0)
    assert back.ram_pct is None
    assert back.cpu_pct == (None if absurd > 204_800 or not absurd >= 0 else absurd)


@pytest.mark.parametrize(("field", "absurd"), [
    ("vram_used_gb", 1e9), ("vram_total_gb", -1.0), ("gpu_temp_c", 1e308), ("gpu_temp_c", -300.0),
    ("gpu_power_w", 1e6), ("gpu_power_w", math.nan),
])
def test_absurd_per_gpu_readings_are_unknown(field: str, absurd: float) -> None:
    back = round_trip(MetricSample(T0, **{field: (absurd, 1.0)}))  # type: ignore[arg-type]
    assert getattr(back, field) == (None, 1.0)


def test_a_billion_gpus_are_bounded_to_a_real_machine() -> None:
    back = round_trip(MetricSample(T0, gpu_util=(50.0,) * 1_000_000))
    assert back.gpu_util == (50.0,) * 64


def test_a_sample_packs_into_a_few_bytes_per_gpu() -> None:
    four_gpus = MetricSample(T0, gpu_util=(50.0,) * 4, vram_used_gb=(10.0,) * 4, vram_total_gb=(24.0,) * 4,
                             gpu_temp_c=(60.0,) * 4, gpu_power_w=(300.0,) * 4, cpu_pct=20.0, ram_pct=30.0)
    _, readings, *_ = encode_metric_sample(four_gpus)
    assert len(readings) == len(SAMPLE_LAYOUT) + 4 * (2 + 4 + 4 + 1 + 2) + 4 + 2


@pytest.mark.parametrize("damaged", [b"", b"\x04", b"\x04\x00\x00\x00\x00\x00\x00\x01\x02"])
def test_damaged_readings_raise_a_decode_error(damaged: bytes) -> None:
    with pytest.raises(MetricDecodeError):
        unpack(SAMPLE_LAYOUT, damaged)
