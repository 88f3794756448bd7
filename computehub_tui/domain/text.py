"""Text from strangers made safe for a terminal: no escape sequences, controls or bidi tricks."""

from __future__ import annotations

import math
import re
import unicodedata
from functools import lru_cache

LABEL_LIMIT = 200
"""Default bound for one provider string (label, location, GPU name, status message)."""

_ESCAPE_SEQUENCE = re.compile(
    r"""
      \x1b\[[0-?]*[ -/]*[@-~]?          # CSI (ESC [ … final), e.g. colours, ESC[2J
    | \x1b\][^\x07\x1b\x9c]*(?:\x07|\x1b\\|\x9c)?   # OSC (window title, OSC 52 clipboard, links)
    | \x1b[PX^_][^\x1b\x9c]*(?:\x1b\\|\x9c)?        # DCS, SOS, PM, APC
    | \x1b[ -/]*[0-~]?                  # any other ESC sequence (ESC c reset, ESC 7, …)
    | \x9b[0-?]*[ -/]*[@-~]?            # 8-bit CSI
    | \x9d[^\x07\x9c\x1b]*(?:\x07|\x9c|\x1b\\)?     # 8-bit OSC
    | [\x90\x98\x9e\x9f][^\x9c\x1b]*(?:\x9c|\x1b\\)?  # 8-bit DCS, SOS, PM, APC
    """,
    re.VERBOSE,
)
_WHITESPACE = re.compile(r"\s+")
_PLAIN_MULTILINE = re.compile(r"[\x20-\x7e\n\t]*")
_LINE_BREAKS = frozenset("\t\n\r\v\f")
_DROPPED_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"})
"""Controls, format characters (bidi overrides, zero-width), surrogates, private and unassigned
code points, line and paragraph separators: none of them belong in a label."""


@lru_cache(maxsize=4096)
def _is_dropped(char: str) -> bool:
    return unicodedata.category(char) in _DROPPED_CATEGORIES


def clean_text(value: object, limit: int = LABEL_LIMIT) -> str:
    """One line of provider text, safe to show anywhere: escape sequences removed, every control,
    bidi and format character dropped, whitespace collapsed, at most ``limit`` characters.

    Accepts text and finite numbers (some APIs send ids or names as numbers); anything else
    (None, dicts, lists, booleans) becomes "".
    """
    if isinstance(value, bool) or value is None:
        return ""
    if isinstance(value, int):
        text = str(value) if abs(value) < 10**30 else ""
    elif isinstance(value, float):
        text = repr(value) if math.isfinite(value) else ""
    elif isinstance(value, str):
        text = value
    else:
        return ""
    # Bound the work before the regex runs: a 100 MB label must not cost 100 MB of scanning.
    text = text[: limit * 4 + 64]
    if text.isascii() and text.isprintable():
        cleaned = text
    else:
        text = _ESCAPE_SEQUENCE.sub("", text)
        cleaned = "".join(" " if char in _LINE_BREAKS else char for char in text
                          if char in _LINE_BREAKS or not _is_dropped(char))
    cleaned = _WHITESPACE.sub(" ", cleaned).strip()
    if len(cleaned) > limit:
        cleaned = cleaned[: max(0, limit - 1)].rstrip() + "…"
    return cleaned


def show_controls(text: str) -> str:
    """Multi-line text (container logs) with its content kept but every control made visible:
    ESC becomes ␛, other C0 controls their Unicode control pictures, C1, bidi and format
    characters ``<U+202E>``. Newlines and tabs stay, so lines and indentation survive.

    Also the last guard before the CLI writes to a terminal: whatever slipped through is shown,
    never obeyed."""
    if _PLAIN_MULTILINE.fullmatch(text):
        return text
    return "".join(_visible(char) for char in text)


def _visible(char: str) -> str:
    if char in "\n\t":
        return char
    code = ord(char)
    if code < 0x20:
        return chr(0x2400 + code)  # ␀ … ␟, ESC is ␛
    if code == 0x7F:
        return "␡"
    if _is_dropped(char):
        return f"<U+{code:04X}>"
    return char

