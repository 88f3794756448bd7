"""Everything the CLI writes goes through here: controls made visible, secrets masked, JSON and CSV safe."""

from __future__ import annotations

import csv
import io
import json
import math
import sys
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from computehub_tui.cli.exits import PROG
from computehub_tui.domain.secret import redact
from computehub_tui.domain.text import clean_text, show_controls

if TYPE_CHECKING:
    from _typeshed import SupportsWrite

MESSAGE_LIMIT = 1000
"""Longest stderr line; provider error bodies can be megabytes."""
CELL_LIMIT = 1000
FORMULA_PREFIXES = ("=", "+", "-", "@")
"""A spreadsheet runs a cell starting with one of these as a formula (CSV injection)."""


def emit(text: str, stream: SupportsWrite[str] | None = None) -> None:
    """The one place the CLI writes to the terminal: whatever provider text slipped through the
    adapters is shown (␛, ␍, <U+202E>), never obeyed, and no registered secret gets out."""
    (stream or sys.stdout).write(show_controls(redact(text)))


def out(text: str = "") -> None:
    emit(text + "\n")


def one_line(text: str, limit: int = MESSAGE_LIMIT) -> str:
    collapsed = " ".join(text.split())
    return collapsed if len(collapsed) <= limit else collapsed[: limit - 1] + "…"


def note(text: str) -> None:
    """One line on stderr (progress, DEMO labels, "cancelled")."""
    emit(one_line(text) + "\n", sys.stderr)


def warn(text: str) -> None:
    note(f"warning: {text}")


def fail(message: str, code: int) -> int:
    note(f"{PROG}: error: {message}")
    return code


def print_json(value: Any) -> None:
    # ensure_ascii escapes every control, C1 and bidi character as \uXXXX: the bytes stay plain ASCII.
    out(json.dumps(_finite(value), indent=2, ensure_ascii=True, allow_nan=False))


def _finite(value: Any) -> Any:
    """NaN and infinities are not JSON; an unknown number is null."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, Mapping):
        return {key: _finite(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(item) for item in value]
    return value


def csv_text(fieldnames: Sequence[str], rows: Iterable[Mapping[str, Any]]) -> str:
    """CSV with one-line cells; text starting like a formula gets a leading ' so spreadsheets show it."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(fieldnames), lineterminator="\n")
    writer.writeheader()
    writer.writerows({name: _csv_cell(value) for name, value in row.items()} for row in rows)
    return buffer.getvalue()


def _csv_cell(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return ""
    if not isinstance(value, str):
        return value
    cell = clean_text(value, CELL_LIMIT)
    return f"'{cell}" if cell.startswith(FORMULA_PREFIXES) else cell


@dataclass(frozen=True, slots=True)
class Column:
    title: str
    limit: int | None = None
    """Widest a cell may be (longer text ends in …); None: as wide as the widest cell (IDs)."""
    right: bool = False


def table(columns: Sequence[Column], rows: Iterable[Sequence[str]]) -> list[str]:
    """Aligned plain-text lines, header first; each column as wide as its widest cell."""
    cells = [[clean_text(cell, column.limit or CELL_LIMIT) for column, cell in zip(columns, row, strict=True)]
             for row in rows]
    widths = [max([len(column.title), *(len(row[i]) for row in cells)]) for i, column in enumerate(columns)]
    lines = []
    for row in [[column.title for column in columns], *cells]:
        padded = [cell.rjust(width) if column.right else cell.ljust(width)
                  for column, cell, width in zip(columns, row, widths, strict=True)]
        lines.append(" ".join(padded).rstrip())
    return lines
