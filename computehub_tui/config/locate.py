"""Where each key of a TOML file is written: dotted key → line number, for error messages."""

from __future__ import annotations

import re

_HEADER = re.compile(r"^\s*\[\[?\s*([^\[\]]+?)\s*\]\]?\s*(?:#.*)?$")
_KEY = re.compile(r"""^\s*((?:[A-Za-z0-9_-]+|"[^"]*"|'[^']*')(?:\s*\.\s*(?:[A-Za-z0-9_-]+|"[^"]*"|'[^']*'))*)\s*=""")
_INLINE_KEY = re.compile(r"""(?:^|[{,])\s*([A-Za-z0-9_-]+|"[^"]*"|'[^']*')\s*=""")


def key_lines(text: str) -> dict[str, int]:
    """Every table and key that starts a line, with the 1-based line it is on. Keys inside an
    inline table on that line are listed too (``ui.keys.monitor``). Lines inside multi-line strings
    and arrays are skipped, so a value that looks like ``x = 1`` there is not taken for a key."""
    found: dict[str, int] = {}
    table: tuple[str, ...] = ()
    open_string = ""
    depth = 0
    for number, line in enumerate(text.splitlines(), start=1):
        if open_string:
            if open_string in line:
                open_string = ""
            continue
        if depth > 0:
            depth += _bracket_balance(line)
            continue
        header = _HEADER.match(line)
        if header:
            table = _split(header.group(1))
            found.setdefault(".".join(table), number)
            continue
        key = _KEY.match(line)
        if not key:
            continue
        dotted = (*table, *_split(key.group(1)))
        found.setdefault(".".join(dotted), number)
        value = line[key.end():]
        for inner in _INLINE_KEY.finditer(value[value.find("{"):] if "{" in value else ""):
            found.setdefault(".".join((*dotted, _unquote(inner.group(1)))), number)
        for quote in ('"""', "'''"):
            if value.count(quote) % 2 == 1:
                open_string = quote
        if not open_string:
            depth = max(0, _bracket_balance(value))
    return found


def _split(dotted: str) -> tuple[str, ...]:
    parts = re.findall(r"""[A-Za-z0-9_-]+|"[^"]*"|'[^']*'""", dotted)
    return tuple(_unquote(part) for part in parts)


def _unquote(part: str) -> str:
    return part[1:-1] if part[:1] in "\"'" else part


def _bracket_balance(text: str) -> int:
    """Opened minus closed brackets outside strings and comments (good enough for arrays)."""
    balance, quote = 0, ""
    for char in text:
        if quote:
            if char == quote:
                quote = ""
        elif char in "\"'":
            quote = char
        elif char == "#":
            break
        elif char in "[{":
            balance += 1
        elif char in "]}":
            balance -= 1
    return balance
