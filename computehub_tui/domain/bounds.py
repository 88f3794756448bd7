"""Plausibility bounds for provider numbers: what no real machine, price or reading can exceed."""

from __future__ import annotations

import math

MAX_GPUS_PER_MACHINE = 64
"""The largest real single machines carry 8–16 GPUs; 64 leaves room and stops billion-GPU rows."""

MIN_PRICE_PER_GPU_HOUR = 0.005
MAX_PRICE_PER_GPU_HOUR = 40.0
"""No marketplace GPU rents for more than this per hour; anything above is a broken listing."""
MIN_PRICE_PER_PFLOP_HOUR = 0.1
"""Ten times below the cheapest real dense PFLOP-hour: a 64×H100 machine for $1/h is a lie."""
MAX_STORAGE_PRICE_HOUR = 50.0
"""What a stopped machine's disk can cost per hour (a petabyte at cloud list prices is ~$30/h)."""
MAX_STORAGE_PRICE_GB_MONTH = 5.0

MAX_VRAM_GB_PER_GPU = 512.0
MAX_RAM_GB = 32_768.0
MAX_DISK_GB = 2_000_000.0
MAX_VCPUS = 2_048.0
MAX_BANDWIDTH_MBPS = 1_000_000.0
MAX_CUDA_VERSION = 99.0

EARLIEST_TIMESTAMP = 946_684_800.0
"""2000-01-01 UTC: no rented GPU machine started before it."""
MAX_CLOCK_SKEW_S = 86_400.0
"""A provider's clock may run ahead of ours, but not by more than a day."""
MAX_DURATION_S = 20 * 365 * 86_400.0

MAX_GPU_POWER_W = 2_000.0
"""The hungriest GPUs draw about 1,000 W (B200, MI355X); twice that is a broken reading."""

MIN_TEMPERATURE_C = -40.0
MAX_TEMPERATURE_C = 150.0
MAX_PERCENT = 100.0
MAX_CPU_PERCENT = 100.0 * MAX_VCPUS
"""Docker-style CPU% counts every core as 100%."""


def within(value: float | None, low: float, high: float) -> float | None:
    """``value`` if it is a finite number in ``[low, high]``, else None (unknown)."""
    if value is None or not math.isfinite(value) or not low <= value <= high:
        return None
    return value


def gpu_count(value: float | None) -> int | None:
    """A whole GPU count from 1 to MAX_GPUS_PER_MACHINE, else None."""
    count = within(value, 1, MAX_GPUS_PER_MACHINE)
    return None if count is None or count != int(count) else int(count)


def reliability(value: float | None) -> float | None:
    """A reliability score in 0..1; anything else is unknown."""
    return within(value, 0.0, 1.0)


def is_plausible_price(price_hour: float, gpus: int) -> bool:
    """Whether a whole-machine $/h is one that ``gpus`` GPUs could really rent for."""
    per_gpu = price_hour / max(1, gpus)
    return math.isfinite(per_gpu) and MIN_PRICE_PER_GPU_HOUR <= per_gpu <= MAX_PRICE_PER_GPU_HOUR


def billed_price(price_hour: float | None, gpus: int) -> float | None:
    """What a running instance bills per hour, or None if the figure is absurd (negative, too big).

    Zero is a real bill (a stopped or free machine), so only the upper bound is per GPU."""
    return within(price_hour, 0.0, MAX_PRICE_PER_GPU_HOUR * max(1, gpus))


def storage_price_hour(value: float | None) -> float | None:
    return within(value, 0.0, MAX_STORAGE_PRICE_HOUR)


def timestamp(value: float | None, now: float) -> float | None:
    """A Unix time between 2000-01-01 and a day after ``now``, else None."""
    return within(value, EARLIEST_TIMESTAMP, now + MAX_CLOCK_SKEW_S)


def duration(value: float | None) -> float | None:
    """Seconds from zero to twenty years, else None."""
    return within(value, 0.0, MAX_DURATION_S)


def percent(value: float | None, ceiling: float = MAX_PERCENT) -> float | None:
    return within(value, 0.0, ceiling)


def temperature_c(value: float | None) -> float | None:
    return within(value, MIN_TEMPERATURE_C, MAX_TEMPERATURE_C)


def gpu_power_w(value: float | None) -> float | None:
    return within(value, 0.0, MAX_GPU_POWER_W)


def vram_gb(value: float | None) -> float | None:
    """One GPU's memory (used or total) in GB, 0 to MAX_VRAM_GB_PER_GPU, else None."""
    return within(value, 0.0, MAX_VRAM_GB_PER_GPU)


def size_or_zero(value: float | None, ceiling: float) -> float:
    """A size (GB, vCPUs, Mb/s) in ``[0, ceiling]``; 0.0, meaning unknown, for anything else."""
    return within(value, 0.0, ceiling) or 0.0
