"""Durations as people write them ("30s", "15m", "2h", "90d", "1w") and back."""

from __future__ import annotations

import math
import re

UNIT_SECONDS: dict[str, float] = {"s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, "w": 7 * 86400.0}
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw])\s*$", re.IGNORECASE)


class DurationError(ValueError):
    """Text that is not a duration such as ``"30m"`` or ``"90d"``."""


def parse_duration(text: str) -> float:
    """Seconds in ``text``: a number and one unit of s, m, h, d or w (``"2d"`` → 172800.0)."""
    match = _DURATION.match(text)
    if match is None:
        raise DurationError(f"{text!r} is not a duration; write a number and a unit, e.g. 30s, 15m, 2h, 90d, 1w")
    seconds = float(match.group(1)) * UNIT_SECONDS[match.group(2).lower()]
    if not math.isfinite(seconds):
        raise DurationError(f"{text!r} is too long")
    return seconds


def format_duration(seconds: float) -> str:
    """The largest whole unit that states ``seconds`` exactly: 172800 → "2d", 90 → "90s"."""
    for unit in ("w", "d", "h", "m"):
        size = UNIT_SECONDS[unit]
        if seconds >= size and seconds % size == 0:
            return f"{int(seconds // size)}{unit}"
    return f"{seconds:g}s"
