"""``nvidia-smi --query-gpu=… --format=csv`` output read by header name into bounded per-GPU readings."""

from __future__ import annotations

import csv
import re
from dataclasses import dataclass

from computehub_tui.domain import bounds
from computehub_tui.domain.models import MetricSample
from computehub_tui.domain.text import clean_text

QUERY_FIELDS = ("index", "uuid", "name", "utilization.gpu", "memory.used", "memory.total", "temperature.gpu",
                "power.draw")
QUERY_ARGV = ("nvidia-smi", f"--query-gpu={','.join(QUERY_FIELDS)}", "--format=csv")
"""What the sampler runs on the host; the parser does not rely on this order."""

METRIC_FIELDS = ("utilization.gpu", "memory.used", "memory.total", "temperature.gpu", "power.draw")
NAME_LIMIT = 80
MESSAGE_LIMIT = 200
MIB_PER_GIB = 1024.0

_NUMBER = re.compile(r"([-+]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?)\s*([A-Za-z%°]*)")
_UNKNOWN_WORDS = frozenset({"", "n/a", "na", "err!", "unknown", "unknown error", "not supported",
                            "insufficient permissions", "gpu is lost", "requested functionality has been deprecated"})
_HEADER_UNIT = re.compile(r"^(?P<name>[^\[]+?)\s*(?:\[(?P<unit>[^\]]*)\])?$")
_FAILURE_MARKERS = ("has failed", "no devices were found", "couldn't communicate", "command not found",
                    "not found", "unable to", "failed to initialize")


class NvidiaSmiError(ValueError):
    """The output is no usable nvidia-smi CSV (driver down, no GPU, not nvidia-smi at all).

    ``str(error)`` is one readable line starting "nvidia-smi failed: "."""

    def __init__(self, reason: str) -> None:
        super().__init__(f"nvidia-smi failed: {clean_text(reason, MESSAGE_LIMIT) or 'no output'}")


@dataclass(frozen=True, slots=True)
class GpuStats:
    """One GPU as nvidia-smi reported it; every reading None when unknown (never 0)."""

    index: int
    name: str = ""
    uuid: str = ""
    util_pct: float | None = None
    vram_used_gb: float | None = None
    vram_total_gb: float | None = None
    temp_c: float | None = None
    power_w: float | None = None

    @property
    def readable(self) -> bool:
        return any(value is not None for value in (self.util_pct, self.vram_used_gb, self.vram_total_gb,
                                                   self.temp_c, self.power_w))


@dataclass(frozen=True, slots=True)
class NvidiaSmiReading:
    """Every GPU of one host, by index; ``error`` describes what a partial reading is missing."""

    gpus: tuple[GpuStats, ...]
    error: str | None = None

    def sample(self, at: float) -> MetricSample:
        """The reading as a metric sample from SSH, per-GPU tuples aligned by position."""
        return MetricSample(
            time=at,
            gpu_util=tuple(gpu.util_pct for gpu in self.gpus),
            vram_used_gb=tuple(gpu.vram_used_gb for gpu in self.gpus),
            vram_total_gb=tuple(gpu.vram_total_gb for gpu in self.gpus),
            gpu_temp_c=tuple(gpu.temp_c for gpu in self.gpus),
            gpu_power_w=tuple(gpu.power_w for gpu in self.gpus),
            gpu_names=tuple(gpu.name for gpu in self.gpus),
            source="ssh",
            error=self.error,
        )


def parse_nvidia_smi(text: str) -> NvidiaSmiReading:
    """Read nvidia-smi's CSV by its header names (any order, extra columns, any driver's units).

    Raises NvidiaSmiError when there is no header with a known metric or no GPU row at all."""
    lines = [line.strip() for line in text.lstrip("\ufeff").splitlines() if line.strip()]
    if not lines:
        raise NvidiaSmiError("no output")
    header_at = next((n for n, line in enumerate(lines) if _looks_like_header(line)), None)
    if header_at is None:
        raise NvidiaSmiError(_failure_reason(lines))
    columns = [_column_name(cell) for cell in _cells(lines[header_at])]
    problems = [clean_text(line, MESSAGE_LIMIT) for line in lines[:header_at]]
    gpus: list[GpuStats] = []
    for position, line in enumerate(lines[header_at + 1:]):
        gpu, problem = _row(columns, _cells(line), position)
        if gpu is not None:
            gpus.append(gpu)
        if problem:
            problems.append(problem)
    if not gpus:
        raise NvidiaSmiError("; ".join(problems) or "no GPU rows")
    gpus.sort(key=lambda gpu: gpu.index)
    return NvidiaSmiReading(tuple(gpus), clean_text("; ".join(problems), MESSAGE_LIMIT) or None)


def _cells(line: str) -> list[str]:
    return next(csv.reader([line], skipinitialspace=True), [])


def _column_name(cell: str) -> tuple[str, str]:
    match = _HEADER_UNIT.match(cell.strip())
    if match is None:
        return cell.strip().lower(), ""
    return match["name"].strip().lower(), (match["unit"] or "").strip()


def _looks_like_header(line: str) -> bool:
    names = {_column_name(cell)[0] for cell in _cells(line)}
    return bool(names & set(METRIC_FIELDS))


def _failure_reason(lines: list[str]) -> str:
    for line in lines:
        if any(marker in line.lower() for marker in _FAILURE_MARKERS):
            return line
    return f"unexpected output: {lines[0]}"


def _row(columns: list[tuple[str, str]], cells: list[str], position: int) -> tuple[GpuStats | None, str]:
    """One GPU from one CSV row, and what was wrong with it ("" if nothing)."""
    names = [name for name, _ in columns]
    if len(cells) > len(columns) and "name" in names:
        # GPU names are free text and nvidia-smi does not quote them: a comma in one splits it.
        at, extra = names.index("name"), len(cells) - len(columns)
        cells = [*cells[:at], ",".join(cells[at:at + extra + 1]), *cells[at + extra + 1:]]
    if len(cells) != len(columns):
        return None, f"GPU row {position} unreadable: {clean_text(','.join(cells), 80)}"
    values = {name: (cell.strip(), unit) for (name, unit), cell in zip(columns, cells, strict=True)}
    index = _whole_number(values.get("index", ("", ""))[0])
    gpu = GpuStats(
        index=position if index is None else index,
        name=clean_text(values.get("name", ("", ""))[0], NAME_LIMIT),
        uuid=clean_text(values.get("uuid", ("", ""))[0], NAME_LIMIT),
        util_pct=bounds.percent(_number(values.get("utilization.gpu"))),
        vram_used_gb=bounds.vram_gb(_gib(values.get("memory.used"))),
        vram_total_gb=bounds.vram_gb(_gib(values.get("memory.total"))),
        temp_c=bounds.temperature_c(_number(values.get("temperature.gpu"))),
        power_w=bounds.gpu_power_w(_number(values.get("power.draw"))),
    )
    if not gpu.readable:
        return gpu, f"GPU {gpu.index} unreadable"
    return gpu, ""


def _whole_number(text: str) -> int | None:
    return int(text) if text.isdigit() and len(text) <= 3 else None


def _reading(cell: tuple[str, str] | None) -> tuple[float, str] | None:
    """A cell's number and unit (the cell's own, else the header's), or None for unknown."""
    if cell is None:
        return None
    text, header_unit = cell
    if text.strip("[]").strip().lower() in _UNKNOWN_WORDS or text.startswith("["):
        return None
    match = _NUMBER.fullmatch(text)
    if match is None:
        return None
    return float(match[1]), match[2] or header_unit


def _number(cell: tuple[str, str] | None) -> float | None:
    reading = _reading(cell)
    return None if reading is None else reading[0]


def _gib(cell: tuple[str, str] | None) -> float | None:
    """Memory in GiB: nvidia-smi reports MiB (MiB / 1024, the unit a "24 GB" card is sold in)."""
    reading = _reading(cell)
    if reading is None:
        return None
    value, unit = reading
    if unit.lower() in ("gib", "gb"):
        return value
    if unit.lower() in ("kib", "kb"):
        return value / MIB_PER_GIB / MIB_PER_GIB
    return value / MIB_PER_GIB
