"""Defensive readers for provider JSON: a wrong type or a non-finite number becomes None or empty,
and provider text is made safe for a terminal as it is read."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import httpx

from computehub_tui.domain import bounds
from computehub_tui.domain.text import LABEL_LIMIT, clean_text, show_controls
from computehub_tui.providers.base import ProtocolError

UNREADABLE_JSON = (ValueError, RecursionError)
"""What parsing a body that is not JSON raises (JSONDecodeError and UnicodeDecodeError are
ValueErrors; absurd nesting is a RecursionError)."""
LOG_CHAR_LIMIT = 2_000_000
"""Most log text kept for one request (the newest part)."""
TRUNCATED = "(truncated)"
_NULL_WORDS = frozenset({"null", "none", "nil", "undefined", "n/a"})


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


def as_dicts(value: Any) -> list[dict[str, Any]]:
    """The objects in a list that should hold objects; anything else counts as empty."""
    return [item for item in value if isinstance(item, dict)] if isinstance(value, list) else []


def list_field(payload: Any, key: str, provider: str) -> list[Any]:
    """``payload[key]`` as a list, empty when absent or null; ProtocolError when the reply is not an
    object or the field is not a list, since then the reply means something we do not understand."""
    if not isinstance(payload, dict):
        raise ProtocolError(provider, f"expected a JSON object with {key!r}")
    value = payload.get(key)
    if value is None:
        return []
    if not isinstance(value, list):
        raise ProtocolError(provider, f"expected a list in {key!r}, got {type(value).__name__}")
    return value


def first_float(fields: Mapping[str, Any], *keys: str) -> float | None:
    """The first finite number among ``keys`` (APIs spell some fields several ways)."""
    return next((number for number in (as_float(fields.get(key)) for key in keys) if number is not None), None)


def first_text(fields: Mapping[str, Any], *keys: str) -> str:
    """The first non-empty text among ``keys``, as one safe line."""
    return next((text for text in (as_text(fields.get(key)) for key in keys) if text), "")


def implausible_gpu_count(value: Any) -> bool:
    """A GPU count that is stated but outside 1..MAX_GPUS_PER_MACHINE (its row is dropped and counted)."""
    return value is not None and bounds.gpu_count(as_float(value)) is None


def json_or_none(response: httpx.Response) -> Any:
    """The reply's JSON, or None when the body is not JSON (an error page, plain text, nothing)."""
    try:
        return response.json()
    except UNREADABLE_JSON:
        return None


def as_text(value: Any, limit: int = LABEL_LIMIT) -> str:
    """Provider text as one safe line (see ``clean_text``); "" for null or a non-text value."""
    return clean_text(value, limit)


def as_state(value: Any) -> str:
    """A status word; "" when the provider sent none, including as the text "null" or "None"."""
    text = clean_text(value, 60)
    return "" if text.lower() in _NULL_WORDS else text


def log_text(text: str, tail_lines: int, limit: int = LOG_CHAR_LIMIT) -> str:
    """Container log text for a terminal: the last ``tail_lines`` lines and at most ``limit``
    characters, every control shown visibly; "(truncated)" heads it where the start was cut."""
    cut = len(text) > limit
    text = text[-limit:]
    ending = "\n" if text.endswith("\n") else ""
    # Split on newlines only: \r, \f and other breaks are content to show, not line ends.
    lines = text.removesuffix("\n").split("\n")
    tail_lines = max(1, tail_lines)
    if len(lines) > tail_lines:
        lines, cut = lines[-tail_lines:], True
    shown = show_controls("\n".join(lines) + ending)
    return f"{TRUNCATED}\n{shown}" if cut else shown
