"""Field values in words (``$51.20``, ``31m``, ``2.0%``) and notify templates filled from them."""

from __future__ import annotations

import math
import re
from collections.abc import Mapping

from computehub_tui.domain.text import clean_text
from computehub_tui.rules.fields import FIELDS, Kind, Unit
from computehub_tui.rules.model import Value

MESSAGE_LIMIT = 500
UNKNOWN = "unknown"
_PLACEHOLDER = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]{0,63})\}")
_TEMPLATE_SCAN_LIMIT = 4 * MESSAGE_LIMIT


def format_duration_words(seconds: float) -> str:
    """A duration as people read it: 45s, 31m, 2h 05m, 3d 4h."""
    seconds = max(0.0, seconds)
    if seconds < 60:
        return f"{seconds:.0f}s"
    minutes = int(seconds // 60)
    if minutes < 60:
        return f"{minutes}m"
    hours, minutes = divmod(minutes, 60)
    if hours < 24:
        return f"{hours}h {minutes:02d}m" if minutes else f"{hours}h"
    days, hours = divmod(hours, 24)
    return f"{days}d {hours}h" if hours else f"{days}d"


def format_number(unit: Unit, value: float) -> str:
    if unit is Unit.PERCENT:
        return f"{value:.1f}%"
    if unit is Unit.DOLLARS:
        return f"${value:,.2f}"
    if unit is Unit.DOLLARS_PER_HOUR:
        return f"${value:,.2f}/h"
    if unit is Unit.SECONDS:
        return format_duration_words(value)
    if unit is Unit.GIGABYTES:
        return f"{value:,.1f} GB"
    if unit is Unit.CELSIUS:
        return f"{value:.0f}°C"
    if unit is Unit.WATTS:
        return f"{value:,.0f} W"
    return f"{value:,.0f}" if value == int(value) else f"{value:,.2f}"


def format_value(field_name: str, value: Value) -> str:
    """One field's value for people: by its unit, ``unknown`` when there is none, text made safe."""
    spec = FIELDS.get(field_name)
    if isinstance(value, bool) or value is None:
        return UNKNOWN
    if isinstance(value, int | float):
        if not math.isfinite(value) or spec is None or spec.kind is not Kind.NUMBER:
            return UNKNOWN if not math.isfinite(value) else f"{value:g}"
        return format_number(spec.unit, float(value))
    return clean_text(value) or UNKNOWN


def render_message(template: str, values: Mapping[str, Value]) -> str:
    """``template`` with each ``{field}`` replaced by that field's value (``{spend_today}`` → ``$51.20``);
    a field with no value reads ``unknown``, a name that is not a field stays as written. One safe line,
    at most MESSAGE_LIMIT characters."""

    def fill(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in FIELDS:
            return match.group(0)
        return format_value(name, values.get(name))

    return clean_text(_PLACEHOLDER.sub(fill, template[:_TEMPLATE_SCAN_LIMIT]), MESSAGE_LIMIT)
