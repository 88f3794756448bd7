"""FOR windows for the fast path: one run of samples per instance and field answers every threshold and window."""

from __future__ import annotations

import math
import operator
from bisect import bisect_left, bisect_right
from dataclasses import dataclass, field
from itertools import accumulate

from computehub_tui.rules.evaluate import GAP_INTERVALS, normalize, predicate
from computehub_tui.rules.fields import FieldSpec, Kind
from computehub_tui.rules.model import Scalar, Series, Truth, Value

FIRST_CHUNK = 8
"""Samples read one by one before the whole run is built: a busy GPU fails an idle comparison within them."""


def _time(point: tuple[float, Value]) -> float:
    return point[0]


def newest_index(series: Series, now: float) -> int:
    """The index of the newest sample at or before ``now`` (-1 if none)."""
    index = len(series.points) - 1
    while index >= 0 and series.points[index][0] > now:
        index -= 1
    return index


@dataclass(slots=True)
class Run:
    """One instance's samples of one field, newest first, cut at the first unknown sample or gap: the
    same samples ``scan_window`` reads, so a window over them has the same truth."""

    times: tuple[float, ...]
    """Descending."""
    values: tuple[float | str, ...]
    """Normalised: finite floats, or casefolded text."""
    stop_time: float | None
    """When the sample that cut the run was taken (unknown, or the far side of a gap); None if nothing cut it."""
    interval_s: float
    longest_step_s: float
    """The longest time between two samples of the run (at most GAP_INTERVALS intervals)."""
    _highs: list[float] | None = None
    _negated_lows: list[float] | None = None
    _breaks: dict[tuple[str, Scalar | tuple[Scalar, ...]], int] = field(default_factory=dict)

    def first_break(self, op: str, value: Scalar | tuple[Scalar, ...]) -> int:
        """How many of the newest samples hold ``op value`` before the first that does not."""
        if op in ("<", "<="):
            if self._highs is None:
                self._highs = list(accumulate(self.values, max))  # type: ignore[type-var, arg-type]
            return (bisect_left if op == "<" else bisect_right)(self._highs, value)  # type: ignore[arg-type]
        if op in (">", ">="):
            if self._negated_lows is None:
                self._negated_lows = list(accumulate(map(operator.neg, self.values), max))  # type: ignore[arg-type]
            return (bisect_left if op == ">" else bisect_right)(self._negated_lows, -value)  # type: ignore[operator]
        found = self._breaks.get((op, value))
        if found is None:
            holds = predicate(op, value)
            found = next((index for index, actual in enumerate(self.values) if not holds(actual)), len(self.values))
            self._breaks[(op, value)] = found
        return found


def build_run(series: Series, spec: FieldSpec, now: float, limit_s: float) -> Run:
    """The run back to ``now - limit_s`` (the longest window any rule asks of this field)."""
    points, interval = series.points, series.interval_s
    newest = newest_index(series, now)
    if newest < 0:
        return Run((), (), None, interval, 0.0)
    start = bisect_left(points, now - limit_s, hi=newest + 1, key=_time)
    segment = points[start:newest + 1][::-1]
    times, raw = (tuple(part) for part in zip(*segment)) if segment else ((), ())
    values, cut = _known_prefix(spec, raw)
    cut = min(cut, _first_gap(times, GAP_INTERVALS * interval))
    stop_time = times[cut] if cut < len(times) else None
    kept = times[:cut]
    longest_step = max(map(operator.sub, kept[:-1], kept[1:]), default=0.0)
    return Run(kept, values[:cut], stop_time, interval, longest_step)


def _known_prefix(spec: FieldSpec, raw: tuple[Value, ...]) -> tuple[tuple[float | str, ...], int]:
    """The values up to the first unknown one, normalised, and where that one is (len when none)."""
    if None in raw:
        raw = raw[:raw.index(None)]
    kinds = set(map(type, raw))
    if spec.kind is Kind.NUMBER and kinds <= {float} and math.isfinite(sum(raw)):  # type: ignore[arg-type]
        return raw, len(raw)  # type: ignore[return-value]
    if spec.kind is Kind.TEXT and kinds <= {str}:
        return tuple(map(str.casefold, raw)), len(raw)  # type: ignore[arg-type]
    values: list[float | str] = []
    for value in raw:
        normal = normalize(spec, value)
        if normal is None:
            break
        values.append(normal)
    return tuple(values), len(values)


def _first_gap(times: tuple[float, ...], max_gap: float) -> int:
    """The index of the first sample (newest first) that lies beyond a gap, or len when there is none."""
    if len(times) < 2 or max(map(operator.sub, times[:-1], times[1:])) <= max_gap:
        return len(times)
    return next(index + 1 for index in range(len(times) - 1) if times[index] - times[index + 1] > max_gap)


def run_truth(run: Run, op: str, value: Scalar | tuple[Scalar, ...], window_s: float, now: float) -> Truth:
    """``op value FOR window_s`` over ``run``. Only for a series whose newest sample is recent (the caller
    settles stale ones as UNKNOWN first)."""
    start = now - window_s
    broken = run.first_break(op, value)
    if broken < len(run.times):
        if run.times[broken] >= start:
            return Truth.FALSE
    elif run.stop_time is not None and run.stop_time >= start:
        return Truth.UNKNOWN
    inside = bisect_right(run.times, -start, 0, broken, key=operator.neg)
    if inside == 0 or run.times[inside - 1] > start + run.interval_s:
        return Truth.UNKNOWN
    return Truth.TRUE


@dataclass(frozen=True, slots=True)
class Hold:
    """How long a comparison has held on one instance, read back from its newest sample; every window of
    every rule with that comparison is answered from it."""

    block: float
    """When the newest sample that breaks it was taken (-inf if none in the run)."""
    failed: bool
    """The break is a sample that fails the comparison (FALSE), not an unknown sample or a gap (UNKNOWN)."""
    oldest: float | None
    """The oldest sample of the unbroken stretch since."""
    regular: bool
    """No two samples of the run are more than one interval apart: a stretch that reaches back past a
    window's start then covers it."""
    interval_s: float


def quick_hold(series: Series, spec: FieldSpec, op: str, value: Scalar | tuple[Scalar, ...], now: float) -> Hold | None:
    """The Hold from the newest FIRST_CHUNK samples alone, when a failing sample among them settles it (a busy
    GPU fails an idle comparison within a sample or two); None when the run must be read."""
    points, interval = series.points, series.interval_s
    max_gap = GAP_INTERVALS * interval
    holds = predicate(op, value)
    index = newest_index(series, now)
    lowest = max(-1, index - FIRST_CHUNK)
    later: float | None = None
    longest = 0.0
    while index > lowest:
        at, raw = points[index]
        if later is not None:
            step = later - at
            if step > max_gap:
                return None
            longest = max(longest, step)
        actual = raw if type(raw) is float and raw - raw == 0.0 else normalize(spec, raw)
        if actual is None:
            return None
        if not holds(actual):
            return Hold(at, True, later, longest <= interval * (1 + 1e-9), interval)
        later = at
        index -= 1
    return None


def hold_of(run: Run, op: str, value: Scalar | tuple[Scalar, ...]) -> Hold:
    """The Hold of ``op value`` over ``run``."""
    broken, count = run.first_break(op, value), len(run.times)
    regular = run.longest_step_s <= run.interval_s * (1 + 1e-9)
    if broken < count:
        return Hold(run.times[broken], True, run.times[broken - 1] if broken else None, regular, run.interval_s)
    block = -math.inf if run.stop_time is None else run.stop_time
    return Hold(block, False, run.times[-1] if count else None, regular, run.interval_s)


def hold_truth(hold: Hold, start: float) -> Truth | None:
    """A window from ``start`` to now judged from ``hold`` (as ``run_truth`` would), or None when only
    ``run_truth`` can say whether the samples cover its start."""
    if hold.block >= start:
        return Truth.FALSE if hold.failed else Truth.UNKNOWN
    if hold.oldest is None:
        return Truth.UNKNOWN
    if hold.oldest >= start:
        return Truth.TRUE if hold.oldest <= start + hold.interval_s else Truth.UNKNOWN
    return Truth.TRUE if hold.regular else None
