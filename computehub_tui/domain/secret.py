"""A secret wrapper that never prints its value, and redaction of known secrets from any text."""

from __future__ import annotations

import base64
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


FRAGMENT = 8
"""An echoed run of this many characters of a secret (prefix, middle or suffix) is masked."""

_lock = threading.Lock()
_known: set[str] = set()
_fragments: frozenset[str] = frozenset()
"""Every FRAGMENT-long window of every registered secret and of its encoded forms."""
_quarters: frozenset[str] = frozenset()
"""Their quarter-length windows: a cheap first pass, since any FRAGMENT-long match contains one
starting at a multiple of QUARTER."""
QUARTER = FRAGMENT // 2


def register_secret(value: str) -> None:
    """Remember a value so ``redact`` and the logging formatter hide it everywhere."""
    global _fragments, _quarters
    if len(value) < 6:
        return
    with _lock:
        if value in _known:
            return
        _known.add(value)
        forms = _encoded_forms(value)
        _fragments = _fragments | _windows(forms, FRAGMENT)
        _quarters = _quarters | _windows(forms, QUARTER)


def _windows(forms: list[str], size: int) -> frozenset[str]:
    return frozenset(form[start:start + size] for form in forms for start in range(len(form) - size + 1))


def _encoded_forms(value: str) -> list[str]:
    """The secret as a server might echo it: itself, hex, and base64 (standard and URL-safe) at
    each of the three byte alignments, so it is found inside a longer encoded string such as a
    Basic ``user:key`` header. A phrase with spaces (a passphrase) is matched only whole: its
    fragments are ordinary words."""
    raw = value.encode()
    forms = [raw.hex(), raw.hex().upper()]
    if not any(char.isspace() for char in value):
        forms.append(value)
    for offset in range(3):
        # Characters that mix in bits of the unknown neighbours are cut off both ends.
        first = -(-8 * offset // 6)
        last = 8 * (offset + len(raw)) // 6
        for encode in (base64.b64encode, base64.urlsafe_b64encode):
            forms.append(encode(bytes(offset) + raw).decode()[first:last])
    return [form for form in forms if len(form) >= FRAGMENT]


def redact(text: str) -> str:
    """Mask every registered secret in ``text``: whole, as any run of FRAGMENT or more of its
    characters, or in hex or base64."""
    if not _known:
        return text
    with _lock:
        known = sorted(_known, key=len, reverse=True)
        fragments, quarters = _fragments, _quarters
    for value in known:
        if value in text:
            text = text.replace(value, _MASK)
    return _mask_fragments(text, fragments, quarters) if len(text) >= FRAGMENT else text


def _mask_fragments(text: str, fragments: frozenset[str], quarters: frozenset[str]) -> str:
    candidates: list[int] = []
    for block in range(0, len(text) - QUARTER + 1, QUARTER):
        if text[block:block + QUARTER] in quarters:
            candidates.extend(range(max(0, block - QUARTER + 1), block + 1))
    spans: list[list[int]] = []
    for start in sorted(set(candidates)):
        if text[start:start + FRAGMENT] in fragments:
            if spans and start <= spans[-1][1]:
                spans[-1][1] = start + FRAGMENT
            else:
                spans.append([start, start + FRAGMENT])
    if not spans:
        return text
    pieces: list[str] = []
    done = 0
    for start, end in spans:
        pieces += [text[done:start], _MASK]
        done = end
    pieces.append(text[done:])
    return "".join(pieces)


class RedactingFormatter(logging.Formatter):
    """A handler-level formatter: it sees the final text of every record, tracebacks included."""

    def format(self, record: logging.LogRecord) -> str:
        return redact(super().format(record))
