"""A secret wrapper that never prints its value, and redaction of known secrets from any text."""

from __future__ import annotations

import logging
import threading

_MASK = "••••"


class Secret:
    """Holds a credential; ``repr``/``str`` are masked so tracebacks and logs cannot leak it.

    Call ``reveal()`` only at the point where the value goes on the wire.
    """

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value.strip()
        register_secret(self._value)

    def reveal(self) -> str:
        return self._value

    @property
    def masked(self) -> str:
        """``••••last4`` for display; short secrets show no characters at all."""
        return f"{_MASK}{self._value[-4:]}" if len(self._value) >= 12 else _MASK

    def __bool__(self) -> bool:
        return bool(self._value)

    def __repr__(self) -> str:
        return f"Secret('{self.masked}')"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(("secret", self._value))

    def __reduce__(self) -> str:
        raise TypeError("secrets cannot be pickled")


_lock = threading.Lock()
_known: set[str] = set()


def register_secret(value: str) -> None:
    """Remember a value so ``redact`` and the logging formatter hide it everywhere."""
    if len(value) >= 6:
        with _lock:
            _known.add(value)


def redact(text: str) -> str:
    """Replace every registered secret in ``text`` with a mask."""
    if not _known:
        return text
    with _lock:
        known = sorted(_known, key=len, reverse=True)
    for value in known:
        if value in text:
            text = text.replace(value, _MASK)
    return text


class RedactingFormatter(logging.Formatter):
    """A handler-level formatter: it sees the final text of every record, tracebacks included."""

    def format(self, record: logging.LogRecord) -> str:
        return redact(super().format(record))
