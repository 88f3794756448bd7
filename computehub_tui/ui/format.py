"""Small text formatters shared by the widgets: money, ages, durations, sparklines."""

from __future__ import annotations

from collections.abc import Sequence

BARS = "▁▂▃▄▅▆▇█"


def money(value: float, decimals: int = 2) -> str:
    return f"${value:,.{decimals}f}"


def rate(value: float) -> str:
    """An hourly price with precision where it matters: $0.125 and $12.40."""
    return f"${value:.3f}" if value < 10 else f"${value:.2f}"


def age(seconds: float) -> str:
    """Compact age: 42s, 5m, 3h, 2d."""
    seconds = max(0.0, seconds)
    if seconds < 90:
        return f"{seconds:.0f}s"
    if seconds < 90 * 60:
        return f"{seconds / 60:.0f}m"
    if seconds < 36 * 3600:
        return f"{seconds / 3600:.0f}h"
    return f"{seconds / 86400:.0f}d"


def duration(seconds: float) -> str:
    """Uptime style: 2h10m, 5m30s, 3d4h."""
    seconds = int(max(0.0, seconds))
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days}d{hours}h"
    if hours:
        return f"{hours}h{minutes:02d}m"
    if minutes:
        return f"{minutes}m{secs:02d}s"
    return f"{secs}s"


def spark(values: Sequence[float | None], width: int, low: float = 0.0, high: float = 100.0) -> str:
    """A one-line sparkline on a fixed scale (unlike Textual's Sparkline, which auto-scales),
    right-aligned so the newest sample is always at the right edge. None draws a gap."""
    if width <= 0:
        return ""
    recent = list(values)[-width:]
    span = (high - low) or 1.0
    bars = "".join(
        " " if v is None else BARS[min(len(BARS) - 1, max(0, int((v - low) / span * len(BARS))))]
        for v in recent
    )
    return bars.rjust(width)


def level_style(percent: float | None) -> str:
    """Colour for a utilisation reading: idle GPUs are the ones that waste money."""
    if percent is None:
        return "dim"
    if percent < 10:
        return "bold red"
    if percent < 50:
        return "yellow"
    return "green"
