"""Why a send failed, as one safe line: no secret, no control character, bounded; and server retry delays."""

from __future__ import annotations

import math
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

from computehub_tui.domain.secret import redact
from computehub_tui.domain.text import clean_text

REASON_LIMIT = 300
MAX_RETRY_AFTER_S = 3600.0
"""A server asking for a longer pause is told no: the alert would be stale by then."""


def one_line(text: object, limit: int = REASON_LIMIT) -> str:
    """``text`` made safe for a delivery log, a CLI line or a log record."""
    return redact(clean_text(text, limit))


def retry_after_seconds(value: object, now: float) -> float | None:
    """A Retry-After value (delay seconds or an HTTP date) as seconds from ``now``, clamped; None if unreadable."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int | float):
        seconds = float(value)
    else:
        text = str(value).strip()
        try:
            seconds = float(text)
        except ValueError:
            try:
                when = parsedate_to_datetime(text)
            except (TypeError, ValueError, IndexError):
                return None
            if when.tzinfo is None:
                when = when.replace(tzinfo=UTC)
            seconds = when.timestamp() - now
    if not math.isfinite(seconds):
        return None
    return min(MAX_RETRY_AFTER_S, max(0.0, seconds))


def utc_text(timestamp: float) -> str:
    return datetime.fromtimestamp(timestamp, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
