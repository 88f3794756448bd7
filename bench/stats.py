"""Small statistics for latency samples: nearest-rank percentiles, median, max."""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence


def percentile(samples: Sequence[float], fraction: float) -> float:
    """Nearest-rank percentile: the smallest sample with at least ``fraction`` of samples <= it."""
    if not samples:
        raise ValueError("no samples")
    ordered = sorted(samples)
    rank = max(1, math.ceil(fraction * len(ordered)))
    return ordered[rank - 1]


def latency_summary(samples: Sequence[float]) -> dict[str, float | int]:
    return {
        "n": len(samples),
        "p50": percentile(samples, 0.50),
        "p95": percentile(samples, 0.95),
        "max": max(samples),
        "mean": statistics.fmean(samples),
    }


def run_summary(samples: Sequence[float]) -> dict[str, float | int]:
    return {"n": len(samples), "median": statistics.median(samples), "max": max(samples),
            "min": min(samples)}
