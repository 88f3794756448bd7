"""Conditions judged over facts in three-valued logic, with FOR windows, evidence and reasons."""

from __future__ import annotations

import fnmatch
import math
import operator
import re
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache

from computehub_tui.rules.fields import FIELDS, FieldSpec, Kind, Scope
from computehub_tui.rules.messages import format_duration_words, format_value
from computehub_tui.rules.model import (
    AccountFacts,
    AllOf,
    Comparison,
    Condition,
    InstanceFacts,
    Negation,
    Scalar,
    Series,
    Truth,
    Value,
    Verdict,
)

Normal = float | str | None
"""A value ready to compare: a finite float, a casefolded string, or None for unknown."""
Predicate = Callable[[float | str], bool]

GAP_INTERVALS = 3.0
"""A gap longer than this many sample intervals restarts a FOR window."""

_ORDER = {"<": operator.lt, "<=": operator.le, ">": operator.gt, ">=": operator.ge}
_NOT = {Truth.TRUE: Truth.FALSE, Truth.FALSE: Truth.TRUE, Truth.UNKNOWN: Truth.UNKNOWN}


def normalize(spec: FieldSpec, raw: Value) -> Normal:
    """A fact as the comparison sees it: numbers finite, text casefolded, anything else unknown."""
    if spec.kind is Kind.NUMBER:
        if isinstance(raw, bool) or not isinstance(raw, int | float) or not math.isfinite(raw):
            return None
        return float(raw)
    return raw.casefold() if isinstance(raw, str) else None


@lru_cache(maxsize=256)
def _glob(pattern: str) -> re.Pattern[str]:
    # fnmatch.translate escapes everything but * ? [...], so a pattern cannot smuggle in a regex.
    return re.compile(fnmatch.translate(pattern.casefold()))


@lru_cache(maxsize=4096)
def predicate(op: str, value: Scalar | tuple[Scalar, ...]) -> Predicate:
    """``op value`` as a function of a normalised fact (text compares case-insensitively)."""
    def fold(item: Scalar) -> Scalar:
        return item.casefold() if isinstance(item, str) else item

    if op in ("in", "not in"):
        members = frozenset(fold(item) for item in value) if isinstance(value, tuple) else frozenset()
        return members.__contains__ if op == "in" else (lambda actual: actual not in members)
    assert not isinstance(value, tuple)
    expected = fold(value)
    if op == "~":
        return _glob(str(value)).match  # type: ignore[return-value]
    if op == "==":
        return lambda actual: actual == expected
    if op == "!=":
        return lambda actual: actual != expected
    compare = _ORDER[op]
    return lambda actual: compare(actual, expected)


def evaluate(condition: Condition, instance: InstanceFacts | None, account: AccountFacts, now: float) -> Verdict:
    """The truth of ``condition`` now, with the values that decided it and, unless TRUE, why not.

    Kleene logic: ``false and unknown`` is false, ``true or unknown`` is true, ``not unknown`` is unknown.
    Values are judged as given: ``fresh`` is the runner's business (it holds back NEVER_WHILE_STALE actions);
    the facts builder turns what it does not know into None."""
    if isinstance(condition, Comparison):
        return judge(condition, instance, account, now)
    if isinstance(condition, Negation):
        inner = evaluate(condition.part, instance, account, now)
        truth = _NOT[inner.truth]
        reason = "" if truth is Truth.TRUE else (inner.reason or "not " + evidence_text(inner))
        return Verdict(truth, inner.evidence, reason)
    verdicts = []
    decisive = Truth.FALSE if isinstance(condition, AllOf) else Truth.TRUE
    for part in condition.parts:
        verdict = evaluate(part, instance, account, now)
        if verdict.truth is decisive:
            return verdict
        verdicts.append(verdict)
    if any(verdict.truth is Truth.UNKNOWN for verdict in verdicts):
        unknown = [verdict for verdict in verdicts if verdict.truth is Truth.UNKNOWN]
        return Verdict(Truth.UNKNOWN, _evidence(unknown), "; ".join(v.reason for v in unknown if v.reason))
    if isinstance(condition, AllOf):
        return Verdict(Truth.TRUE, _evidence(verdicts))
    return Verdict(Truth.FALSE, _evidence(verdicts), "; ".join(v.reason for v in verdicts if v.reason))


def _evidence(verdicts: list[Verdict]) -> tuple[tuple[str, str], ...]:
    return tuple(item for verdict in verdicts for item in verdict.evidence)


def evidence_text(verdict: Verdict) -> str:
    """The evidence in one line for the audit log: ``gpu_util=2.0% < 5.0% for 31m, status=running``."""
    return ", ".join(f"{name}={seen}" for name, seen in verdict.evidence)


def judge(comparison: Comparison, instance: InstanceFacts | None, account: AccountFacts, now: float) -> Verdict:
    """One comparison: its current value, or with ``window_s`` its series over the window."""
    spec = FIELDS[comparison.field]
    if comparison.window_s is not None:
        return _judge_window(comparison, spec, instance, now)
    if spec.scope is Scope.ACCOUNT:
        raw = account.values.get(spec.name)
    elif instance is None:
        return Verdict(Truth.UNKNOWN, reason=f"{spec.name} needs an instance")
    else:
        raw = instance.values.get(spec.name)
    actual = normalize(spec, raw)
    if actual is None:
        return Verdict(Truth.UNKNOWN, ((spec.name, "unknown"),), f"{spec.name} is unknown")
    holds = predicate(comparison.op, comparison.value)(actual)
    seen = _seen(comparison, raw)
    return Verdict(Truth.TRUE if holds else Truth.FALSE, ((spec.name, seen),),
                   "" if holds else f"{spec.name}={seen}")


def _seen(comparison: Comparison, raw: Value) -> str:
    shown = format_value(comparison.field, raw)
    if FIELDS[comparison.field].kind is Kind.TEXT or isinstance(comparison.value, tuple):
        return shown
    return f"{shown} {comparison.op} {format_value(comparison.field, comparison.value)}"


@dataclass(frozen=True, slots=True)
class WindowResult:
    truth: Truth
    held_s: float = 0.0
    """How far back the comparison has held without a break (TRUE: at least the window)."""
    extreme: Value = None
    """The value closest to breaking it (the highest for < and <=, the lowest for > and >=; else the newest)."""
    reason: str = ""


def _judge_window(comparison: Comparison, spec: FieldSpec, instance: InstanceFacts | None, now: float) -> Verdict:
    series = instance.series.get(spec.name) if instance is not None else None
    assert comparison.window_s is not None
    if series is None:
        return Verdict(Truth.UNKNOWN, ((spec.name, "no samples"),), f"no {spec.name} samples")
    result = scan_window(series, spec, comparison.op, comparison.value, comparison.window_s, now, measure_hold=True)
    if result.truth is not Truth.TRUE:
        return Verdict(result.truth, ((spec.name, result.reason),), result.reason)
    seen = f"{_seen(comparison, result.extreme)} for {format_duration_words(result.held_s)}"
    return Verdict(Truth.TRUE, ((spec.name, seen),))


def scan_window(series: Series, spec: FieldSpec, op: str, value: Scalar | tuple[Scalar, ...], window_s: float,
                now: float, measure_hold: bool = False) -> WindowResult:
    """Did ``op value`` hold on every sample of the last ``window_s``, with samples covering all of it?

    Read from the newest sample back; the first thing that breaks the window decides: a sample that fails the
    comparison (FALSE), an unknown sample, a gap longer than GAP_INTERVALS intervals (the window restarts
    after it), or too little history (all UNKNOWN: a data gap never counts as idle). TRUE needs the oldest
    sample in the window no later than one interval after the window's start. ``measure_hold`` reads on past
    the window to say how long a TRUE comparison has held (the runner's fast path does not need it)."""
    interval = series.interval_s
    name = spec.name
    if not (math.isfinite(interval) and interval > 0):
        return WindowResult(Truth.UNKNOWN, reason=f"{name} has no sample interval")
    holds = predicate(op, value)
    points = series.points
    index = len(points) - 1
    while index >= 0 and points[index][0] > now:
        index -= 1
    if index < 0:
        return WindowResult(Truth.UNKNOWN, reason=f"no {name} samples")
    max_gap = GAP_INTERVALS * interval
    start = now - window_s
    later = points[index][0]
    if now - later > max_gap:
        return WindowResult(Truth.UNKNOWN, reason=f"no {name} samples for {format_duration_words(now - later)}")
    extreme: Value = None
    worse = _ORDER.get(op)
    oldest = None
    while index >= 0:
        at, raw = points[index]
        if at < start:
            break
        if later - at > max_gap:
            return _not_covered(name, now - later, window_s)
        actual = normalize(spec, raw)
        if actual is None:
            return WindowResult(Truth.UNKNOWN, now - later, reason=f"{name} unknown {format_duration_words(now - at)} ago")
        if not holds(actual):
            return WindowResult(Truth.FALSE, now - later,
                                reason=f"{name}={format_value(name, raw)} {format_duration_words(now - at)} ago")
        if extreme is None or (worse is not None and worse(extreme, actual)):
            extreme = actual if spec.kind is Kind.NUMBER else raw
        oldest = later = at
        index -= 1
    if oldest is None or oldest > start + interval:
        return _not_covered(name, 0.0 if oldest is None else now - oldest, window_s)
    if measure_hold:
        oldest = _held_since(points, index, oldest, spec, holds, max_gap)
    return WindowResult(Truth.TRUE, now - oldest, extreme)


def _held_since(points: tuple[tuple[float, Value], ...], index: int, oldest: float, spec: FieldSpec,
                holds: Predicate, max_gap: float) -> float:
    """How far before the window the comparison went on holding, for the evidence ("for 41m")."""
    while index >= 0:
        at, raw = points[index]
        actual = normalize(spec, raw)
        if oldest - at > max_gap or actual is None or not holds(actual):
            break
        oldest = at
        index -= 1
    return oldest


def _not_covered(name: str, covered_s: float, window_s: float) -> WindowResult:
    return WindowResult(Truth.UNKNOWN, covered_s, reason=f"{name} samples cover "
                        f"{format_duration_words(covered_s)} of {format_duration_words(window_s)}")
