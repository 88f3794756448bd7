"""FOR windows for the fast path: each instance's samples of a field kept from tick to tick, read once each."""

from __future__ import annotations

import math
import operator
from bisect import bisect_left
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import lru_cache
from itertools import compress

from computehub_tui.rules.evaluate import GAP_INTERVALS, Normal, normalize, predicate
from computehub_tui.rules.fields import FieldSpec, Kind
from computehub_tui.rules.model import Scalar, Series, Value

Target = tuple[str, Scalar | tuple[Scalar, ...]]
"""A comparison's operator and value: what a sample holds or fails."""

NOTABLE_STEP = 0.5
"""Steps longer than this share of a gap (GAP_INTERVALS intervals, at the interval the track was built with)
are kept, so a gap can be found at any interval down to that share of it."""
DROP_CHUNK = 64
"""Samples older than every window are forgotten once there are this many."""
_CATCH_UP = 64
"""New samples looked for one by one from the end of a series before a binary search."""
_FAILS: dict[str, Callable[[float], Callable[[float], bool]]] = {
    "<": lambda limit: limit.__le__, "<=": lambda limit: limit.__lt__,
    ">": lambda limit: limit.__ge__, ">=": lambda limit: limit.__gt__}
"""For a number field: the test of a sample that fails ``op limit``, as a C-level bound method."""


def _time(point: tuple[float, Value]) -> float:
    return point[0]


def newest_index(series: Series, now: float) -> int:
    """The index of the newest sample at or before ``now`` (-1 if none)."""
    index = len(series.points) - 1
    while index >= 0 and series.points[index][0] > now:
        index -= 1
    return index


@dataclass(slots=True)
class Track:
    """One instance's samples of one field, oldest first, from the oldest any window reaches to the newest at or
    before the last tick. Samples are numbered from the first one read (``base`` is the number of ``times[0]``),
    so what was found stays valid while samples are appended and old ones dropped.

    Nothing here depends on the sample interval, which the facts builder estimates anew each tick, but
    ``notable``: a track read at under half or over four times the interval it was built at is built again."""

    times: list[float]
    values: list[Normal]
    """Normalised; None is unknown."""
    base: int
    last: tuple[float, Value]
    """The newest sample read, to find it again in the next tick's series."""
    origin: tuple[float, Value]
    """The series' oldest sample when the track was built."""
    complete_from: float
    """The track holds every sample of its series from this time on (the floor it was built at, or the series'
    start if that was later)."""
    notable_s: float
    notable: list[tuple[int, float]]
    """(number of the older sample, length) of every step between samples longer than ``notable_s``."""
    unknown_at: int = -1
    """The number of the newest unknown sample (-1: none)."""
    fails: dict[Target, tuple[int, int]] = field(default_factory=dict)
    """(number of the newest sample failing it or -1, how many samples it has read) by comparison."""

    @property
    def end(self) -> int:
        return self.base + len(self.times)

    def time_of(self, number: int) -> float:
        """When sample ``number`` was taken; -inf for one dropped as older than every window (or for -1)."""
        return self.times[number - self.base] if number >= self.base else -math.inf

    def newest_fail(self, target: Target, failing: Callable[[float | str], bool]) -> int:
        """The number of the newest sample that fails ``target`` (-1: none; ``failing`` is its ``failing_test``),
        for a track whose newest sample holds it (the caller checks that first, on every instance at once).
        Reads only samples not read for it before, and none before the newest unknown one: that one breaks every
        window first."""
        fail, read = self.fails.get(target, (-1, self.base))
        end = self.base + len(self.times)
        low = max(read, self.unknown_at + 1, self.base)
        if low < end - 1:
            flags = list(map(failing, self.values[low - self.base:-1]))  # type: ignore[arg-type]
            if True in flags:
                fail = low + len(flags) - 1 - flags[::-1].index(True)
        if read != end:
            self.fails[target] = (fail, end)
        return fail

    def cut(self, interval_s: float) -> int:
        """The number of the newest sample that breaks every window before comparisons are read: an unknown
        one, or the older side of a gap longer than GAP_INTERVALS intervals (-1: none)."""
        gap = GAP_INTERVALS * interval_s
        for older, length in reversed(self.notable):
            if older < self.unknown_at:
                break
            if length > gap:
                return max(older, self.unknown_at)
        return self.unknown_at

    def uncovered(self, start: float, interval_s: float) -> bool:
        """Whether the oldest sample at or after ``start`` is more than an interval after it (or there is none):
        then the samples do not cover a window from ``start``."""
        index = bisect_left(self.times, start)
        return index == len(self.times) or self.times[index] > start + interval_s


@lru_cache(maxsize=4096)
def failing_test(target: Target, number_spec: bool) -> Callable[[float | str], bool]:
    """Whether a known, normalised sample fails ``target`` (for a number field and an order, a C-level method)."""
    op, value = target
    if number_spec and op in _FAILS:
        return _FAILS[op](float(value))  # type: ignore[arg-type, return-value]
    holds = predicate(op, value)
    return lambda actual: not holds(actual)


def track(previous: Track | None, series: Series, spec: FieldSpec, now: float, floor: float) -> Track:
    """``series`` read up to ``now`` into ``previous`` when it only has samples appended since (the facts builder's
    series do), else into a new track from ``floor`` (the start of the longest window) on."""
    points = series.points
    interval = series.interval_s
    if previous is not None and previous.last[0] <= now and _fits(previous, interval):
        if len(points) > 1 and points[-2] is previous.last and points[-1][0] <= now and _same_start(
                previous, points, floor):  # the common case: the one sample a poll adds, kept by the facts builder
            _append_one(previous, points[-1], spec)
            _drop_before(previous, floor)
            return previous
        read = _resume_at(previous, points, floor)
        if read >= 0:
            _append(previous, points, read + 1, newest_index(series, now) + 1, spec)
            _drop_before(previous, floor)
            return previous
    start = bisect_left(points, floor, key=_time)
    origin = points[0] if points else (math.inf, None)
    fresh = Track([], [], 0, (-math.inf, None), origin, max(floor, origin[0]), NOTABLE_STEP * GAP_INTERVALS * interval,
                  [])
    _append(fresh, points, start, newest_index(series, now) + 1, spec)
    return fresh


def _fits(previous: Track, interval_s: float) -> bool:
    """Whether ``notable`` still holds every gap at this interval, and not many more steps than that."""
    return previous.notable_s <= GAP_INTERVALS * interval_s <= 8 * previous.notable_s


def _same_start(previous: Track, points: tuple[tuple[float, Value], ...], floor: float) -> bool:
    """Whether a window sees the same oldest samples in ``points`` as in ``previous``: the series starts where it
    did, or both it and the track start at or before the floor."""
    first = points[0]
    return first is previous.origin or first == previous.origin or (
        first[0] <= floor and previous.complete_from <= floor)


def _resume_at(previous: Track, points: tuple[tuple[float, Value], ...], floor: float) -> int:
    """The index in ``points`` of the newest sample ``previous`` read, or -1 when the series is not the one it
    read with samples appended: it does not start the same (``_same_start``), or that sample is not where it
    was."""
    if not points or not _same_start(previous, points, floor):
        return -1
    last = previous.last
    index = len(points) - 1
    lowest = max(-1, index - _CATCH_UP)
    while index > lowest and points[index][0] > last[0]:
        index -= 1
    if index == lowest:
        index = bisect_left(points, last[0], key=_time)
    if 0 <= index < len(points) and points[index] == last and (
            len(previous.times) < 2 or index == 0 or points[index - 1][0] == previous.times[-2]):
        return index
    return -1


def _append(target: Track, points: tuple[tuple[float, Value], ...], start: int, stop: int, spec: FieldSpec) -> None:
    """Read ``points[start:stop]`` (newer than all the track holds) into it."""
    if start >= stop:
        return
    if stop - start == 1 and target.times:
        _append_one(target, points[start], spec)
        return
    segment = points[start:stop]
    times = [at for at, _ in segment]
    values = normalize_all(spec, [value for _, value in segment])
    first = target.end
    notable_s = target.notable_s
    if target.times and times[0] - target.times[-1] > notable_s:
        target.notable.append((first - 1, times[0] - target.times[-1]))
    if len(times) > 1:
        steps = list(map(operator.sub, times[1:], times[:-1]))
        target.notable.extend((first + index, steps[index])
                              for index in compress(range(len(steps)), map(notable_s.__lt__, steps)))
    if None in values:
        target.unknown_at = first + len(values) - 1 - values[::-1].index(None)
    target.times.extend(times)
    target.values.extend(values)
    target.last = segment[-1]


def _append_one(target: Track, point: tuple[float, Value], spec: FieldSpec) -> None:
    """``_append`` of the one sample a poll adds, the common case, without building lists."""
    at, raw = point
    value = normalize(spec, raw)
    if value is None:
        target.unknown_at = target.end
    step = at - target.times[-1]
    if step > target.notable_s:
        target.notable.append((target.end - 1, step))
    target.times.append(at)
    target.values.append(value)
    target.last = point


def normalize_all(spec: FieldSpec, raw: list[Value]) -> list[Normal]:
    """``normalize`` over many values, with the common cases (finite floats, text, None) kept inline."""
    kinds = set(map(type, raw))
    if spec.kind is Kind.NUMBER and kinds <= {float} and math.isfinite(sum(raw)):  # type: ignore[arg-type]
        return raw  # type: ignore[return-value]
    if spec.kind is Kind.TEXT and kinds <= {str}:
        return list(map(str.casefold, raw))  # type: ignore[arg-type]
    if spec.kind is Kind.NUMBER:
        return [value if type(value) is float and value - value == 0.0 else None if value is None
                else normalize(spec, value) for value in raw]
    return [value.casefold() if type(value) is str else None for value in raw]


def _drop_before(target: Track, floor: float) -> None:
    """Forget samples older than every window, DROP_CHUNK at a time (so this is rare and cheap)."""
    if len(target.times) <= DROP_CHUNK or target.times[DROP_CHUNK - 1] >= floor:
        return
    index = bisect_left(target.times, floor)
    del target.times[:index]
    del target.values[:index]
    target.base += index
    target.notable = [(older, length) for older, length in target.notable if older >= target.base]
