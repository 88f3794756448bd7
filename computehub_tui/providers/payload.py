"""Defensive readers for provider JSON: a wrong type or a non-finite number becomes None or empty,
and provider text is made safe for a terminal as it is read."""

from __future__ import annotations

import math
from typing import Any

from computehub_tui.domain.text import LABEL_LIMIT, clean_text


def as_float(value: Any) -> float | None:
    """A finite number, or None for anything else (null, text, NaN, Infinity, huge integers)."""
    if isinstance(value, bool) or value is None:
        return None
    try:
        number = float(value)
    except (TypeError, ValueError, OverflowError):
        return None
    return number if math.isfinite(number) else None


def as_int(value: Any) -> int | None:
    number = as_float(value)
    return None if number is None else int(number)


def as_dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def as_text(value: Any, limit: int = LABEL_LIMIT) -> str:
    """Provider text as one safe line (see ``clean_text``); "" for null or a non-text value."""
    return clean_text(value, limit)
