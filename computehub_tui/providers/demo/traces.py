"""Deterministic GPU-usage traces for simulated instances: training, idle, bursty, VRAM held."""

from __future__ import annotations

import hashlib
import math
import struct
from dataclasses import dataclass
from enum import Enum


def noise(*parts: object) -> float:
    """A stable pseudo-random number in [0, 1) for the given key parts."""
    digest = hashlib.blake2b(repr(parts).encode(), digest_size=8).digest()
    return struct.unpack("<Q", digest)[0] / 2**64


class TraceKind(str, Enum):
    TRAINING = "training"
    """Steady 90–100 % with high VRAM."""
    IDLE_AFTER = "idle-after"
    """Trains for a while, then drops to ~0 % and releases most VRAM."""
    BURSTY = "bursty"
    """Inference: bursts of load separated by quiet spells."""
    VRAM_HELD = "vram-held"
    """0 % utilisation but VRAM held (an idle notebook with a model loaded)."""


@dataclass(frozen=True, slots=True)
class GpuReading:
    util: float
    vram_used_gb: float
    temp_c: float


def gpu_reading(
    kind: TraceKind, seed: str, gpu_index: int, seconds_running: float, vram_total_gb: float,
    idle_after_s: float = 300.0,
) -> GpuReading:
    """Usage of one GPU ``seconds_running`` after the container started."""
    bucket = int(seconds_running // 5)
    jitter = noise(seed, gpu_index, bucket)
    warmup = min(1.0, seconds_running / 45.0)
    if kind is TraceKind.TRAINING:
        util = (92 + 8 * jitter) * warmup
        vram = vram_total_gb * (0.78 + 0.04 * gpu_index % 3 * 0.01) * warmup
    elif kind is TraceKind.IDLE_AFTER:
        if seconds_running < idle_after_s:
            util = (88 + 10 * jitter) * warmup
            vram = vram_total_gb * 0.7 * warmup
        else:
            util = 1.5 * jitter
            vram = vram_total_gb * 0.05
    elif kind is TraceKind.BURSTY:
        burst_on = noise(seed, "burst", int(seconds_running // 20)) < 0.45
        util = (55 + 45 * jitter) if burst_on else 4 * jitter
        vram = vram_total_gb * (0.55 + 0.05 * math.sin(seconds_running / 60))
    else:
        util = 0.0
        vram = vram_total_gb * 0.72 * warmup
    temp = 34 + util * 0.45 + 3 * noise(seed, "temp", gpu_index, bucket)
    return GpuReading(round(min(util, 100.0), 1), round(max(vram, 0.0), 2), round(temp, 1))
