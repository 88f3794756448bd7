"""Trace files for rule replay: CSV rows of instance status and GPU readings parsed into checked, bounded rows."""

from __future__ import annotations

import csv
import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from computehub_tui.domain.bounds import (
    EARLIEST_TIMESTAMP,
    MAX_DURATION_S,
    MAX_GPUS_PER_MACHINE,
    MAX_PERCENT,
    MAX_TEMPERATURE_C,
    MAX_VRAM_GB_PER_GPU,
    MIN_TEMPERATURE_C,
)
from computehub_tui.domain.models import PROVIDER_NAMES, InstanceStatus, MetricSample, PricingKind
from computehub_tui.domain.text import clean_text

REQUIRED_COLUMNS = ("t", "instance", "status", "gpu_util", "vram_used_gb", "vram_total_gb", "gpu_temp",
                    "cost_per_hour")
OPTIONAL_COLUMNS = ("provider", "gpu", "label", "project", "pricing")
MAX_ROWS = 500_000
"""A week of one-minute samples for fifty machines; a bigger file is not a hand-made trace."""
MAX_COST_PER_HOUR = 1_000.0
"""More than any rented machine costs: a bigger number is a typo, not a price."""
NAME_LIMIT = 64
TEXT_LIMIT = 120
STATUSES = frozenset(status.value for status in InstanceStatus)
UNKNOWN_READINGS = frozenset({"[n/a]", "n/a"})
"""What nvidia-smi writes for a reading it does not have: unknown, like an empty item."""
PRICINGS = frozenset(kind.value for kind in PricingKind)


class TraceError(ValueError):
    """A trace that cannot be replayed: ``line`` is the 1-based line of the file (0 when the file as a whole)."""

    def __init__(self, line: int, message: str) -> None:
        super().__init__(message)
        self.line = line
        self.message = message

    def render(self, name: str) -> str:
        return f"{name}:{self.line}: {self.message}" if self.line else f"{name}: {self.message}"


@dataclass(frozen=True, slots=True)
class TraceRow:
    """One reading of one instance at ``t`` (seconds since the Unix epoch or since the trace's start)."""

    line: int
    t: float
    instance: str
    status: str
    sample: MetricSample
    cost_per_hour: float | None
    provider: str | None = None
    gpu: str = ""
    label: str = ""
    project: str | None = None
    pricing: str | None = None


@dataclass(frozen=True, slots=True)
class Trace:
    """A whole trace, rows in time order. ``absolute``: its ``t`` were ISO-8601 times (else seconds from start)."""

    rows: tuple[TraceRow, ...]
    absolute: bool

    @property
    def instances(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(row.instance for row in self.rows))

    @property
    def times(self) -> tuple[float, ...]:
        return tuple(sorted({row.t for row in self.rows}))


def parse_trace(text: str) -> Trace:
    """Every row checked; the first bad one raises TraceError with its line (never skipped)."""
    reader = csv.reader(text.splitlines())
    try:
        header = [clean_text(name, NAME_LIMIT).casefold() for name in next(reader)]
    except StopIteration:
        raise TraceError(0, "is empty; a trace starts with a header line: " + ",".join(REQUIRED_COLUMNS)) from None
    _check_header(header)
    rows: list[TraceRow] = []
    absolute: bool | None = None
    seen: set[tuple[str, float]] = set()
    for cells in reader:
        line = reader.line_num
        if not any(cell.strip() for cell in cells):
            continue
        if len(rows) >= MAX_ROWS:
            raise TraceError(line, f"more than {MAX_ROWS} rows; split the trace")
        if len(cells) != len(header):
            raise TraceError(line, f"has {len(cells)} fields, the header has {len(header)}")
        row, is_absolute = _row(line, dict(zip(header, cells, strict=True)))
        if absolute is not None and is_absolute != absolute:
            raise TraceError(line, "mixes ISO-8601 times and seconds from start in column t")
        absolute = is_absolute
        if (row.instance, row.t) in seen:
            raise TraceError(line, f"a second row for instance {row.instance!r} at the same t")
        seen.add((row.instance, row.t))
        rows.append(row)
    if not rows:
        raise TraceError(0, "has a header but no rows")
    rows.sort(key=lambda row: row.t)
    return Trace(tuple(rows), bool(absolute))


def _check_header(header: Sequence[str]) -> None:
    known = set(REQUIRED_COLUMNS) | set(OPTIONAL_COLUMNS) | {""}
    for name in header:
        if name not in known:
            raise TraceError(1, f"unknown column {name!r} (columns: {', '.join(REQUIRED_COLUMNS + OPTIONAL_COLUMNS)})")
    missing = [name for name in REQUIRED_COLUMNS if name not in header]
    if missing:
        raise TraceError(1, f"missing column{'s' if len(missing) > 1 else ''} {', '.join(missing)}")
    named = [name for name in header if name]  # an unnamed column (a trailing comma) is ignored
    if len(set(named)) != len(named):
        raise TraceError(1, "a column is named twice")


def _row(line: int, cells: dict[str, str]) -> tuple[TraceRow, bool]:
    try:
        t, absolute = _time(cells["t"])
        instance = clean_text(cells["instance"], NAME_LIMIT)
        if not instance:
            raise ValueError("instance is empty")
        if instance == "account":
            raise ValueError("instance 'account' is reserved for account rules; rename it")
        status = _choice("status", cells["status"], STATUSES, required=True)
        utils = _numbers("gpu_util", cells["gpu_util"], 0.0, MAX_PERCENT)
        used = _numbers("vram_used_gb", cells["vram_used_gb"], 0.0, MAX_VRAM_GB_PER_GPU * MAX_GPUS_PER_MACHINE)
        total = _numbers("vram_total_gb", cells["vram_total_gb"], 0.0, MAX_VRAM_GB_PER_GPU * MAX_GPUS_PER_MACHINE)
        temps = _numbers("gpu_temp", cells["gpu_temp"], MIN_TEMPERATURE_C, MAX_TEMPERATURE_C)
        cost = _numbers("cost_per_hour", cells["cost_per_hour"], 0.0, MAX_COST_PER_HOUR)
        if len(cost) > 1:
            raise ValueError("cost_per_hour is one number, not a list")
        provider = _choice("provider", cells.get("provider", ""), frozenset(PROVIDER_NAMES))
        pricing = _choice("pricing", cells.get("pricing", ""), PRICINGS)
    except ValueError as error:
        raise TraceError(line, str(error)) from None
    sample = MetricSample(t, utils, used, total, temps)
    project = clean_text(cells.get("project", ""), TEXT_LIMIT) or None
    return TraceRow(line, t, instance, status or "unknown", sample, cost[0] if cost else None, provider,
                    clean_text(cells.get("gpu", ""), TEXT_LIMIT), clean_text(cells.get("label", ""), TEXT_LIMIT),
                    project, pricing), absolute


def _time(cell: str) -> tuple[float, bool]:
    text = cell.strip()
    if not text:
        raise ValueError("t is empty")
    try:
        seconds = float(text)
    except ValueError:
        seconds = None
    if seconds is not None:
        if not math.isfinite(seconds) or not 0.0 <= seconds <= MAX_DURATION_S:
            raise ValueError(f"t {clean_text(text, 40)!r} is not a number of seconds from start (0 to 20 years)")
        return seconds, False
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(f"t {clean_text(text, 40)!r} is neither seconds from start nor an ISO-8601 time") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    stamp = moment.timestamp()
    if stamp < EARLIEST_TIMESTAMP:
        raise ValueError(f"t {clean_text(text, 40)!r} is before 2000")
    return stamp, True


def _numbers(name: str, cell: str, low: float, high: float) -> tuple[float | None, ...]:
    """``;``-joined numbers (one per GPU); an empty cell is unknown, an empty item one unknown GPU."""
    text = cell.strip()
    if not text:
        return ()
    items = text.split(";")
    if len(items) > MAX_GPUS_PER_MACHINE:
        raise ValueError(f"{name} lists {len(items)} values; at most {MAX_GPUS_PER_MACHINE} (one per GPU)")
    values: list[float | None] = []
    for item in items:
        item = item.strip()
        if not item or item.casefold() in UNKNOWN_READINGS:
            values.append(None)
            continue
        try:
            value = float(item)
        except ValueError:
            raise ValueError(f"{name} {clean_text(item, 40)!r} is not a number") from None
        if not math.isfinite(value) or not low <= value <= high:
            raise ValueError(f"{name} {clean_text(item, 40)!r} is outside {low:g} to {high:g}")
        values.append(value)
    return tuple(values)


def _choice(name: str, cell: str, allowed: frozenset[str], *, required: bool = False) -> str | None:
    text = clean_text(cell, NAME_LIMIT).casefold()
    if not text:
        if required:
            raise ValueError(f"{name} is empty")
        return None
    if text not in allowed:
        raise ValueError(f"{name} {text!r} is not one of {', '.join(sorted(allowed))}")
    return text
