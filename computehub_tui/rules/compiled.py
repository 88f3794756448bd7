"""The runner's fast path: every rule over every instance in one tick, on bit masks shared across rules."""

from __future__ import annotations

import math
from bisect import bisect_right
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from itertools import compress
from operator import and_, attrgetter, itemgetter, le, not_
from typing import NamedTuple

from computehub_tui.rules.evaluate import GAP_INTERVALS, Normal, evaluate, predicate
from computehub_tui.rules.fields import FIELDS, FieldSpec, Kind, Scope
from computehub_tui.rules.model import (
    AccountFacts,
    AllOf,
    AnyOf,
    Comparison,
    Condition,
    InstanceFacts,
    Negation,
    Rule,
    RuleSet,
    Scalar,
    Series,
    Truth,
    Verdict,
)
from computehub_tui.rules.windows import Track, failing_test, newest_index, normalize_all, track

Masks = tuple[int, int]
"""(TRUE, UNKNOWN) as bit masks over the tick's instances (bit i is instances[i]); the rest is FALSE."""
Node = Callable[["_Tick", int], Masks]
"""A compiled condition: its masks over the candidate instances it is given (a mask too)."""
LeafKey = tuple[str, str, Scalar | tuple[Scalar, ...]]
"""A comparison without its position: identical ones in different rules share their work."""

_BITS = bytes.maketrans(b"\x00\x01", b"01")
_FLAGS = bytes.maketrans(b"01", b"\x00\x01")
_WINDOW_COST, _SCALAR_COST = 1, 0
_NO_SAMPLE: tuple[float, None] = (-math.inf, None)
_NO_SERIES = Series((), math.nan)
_POINTS, _INTERVAL = attrgetter("points"), attrgetter("interval_s")
_NEWEST, _TIME, _VALUE = itemgetter(-1), itemgetter(0), itemgetter(1)
SWEEP_TICKS = 64
"""How often a compiled rule set forgets the samples it keeps of instances that are gone."""


class Match(NamedTuple):
    """A rule whose condition is TRUE now: for an instance (``key``), or once for the account (``key`` None).

    ``verdict`` (the evidence, from ``evaluate``) is worked out on each read: a tick finds every match, but the
    runner needs the evidence only of those it acts on or logs, so the tick does not pay for the rest (read it
    once and keep it)."""

    rule: Rule
    key: str | None
    facts: InstanceFacts | None
    account: AccountFacts
    now: float

    @property
    def verdict(self) -> Verdict:
        return evaluate(self.rule.condition, self.facts, self.account, self.now)


@dataclass
class _Newest:
    """Every instance's newest sample of one field: its value (None when unknown), its age, and the mask of
    instances whose window is unknown before reading further (no series, no recent sample, unknown value; their
    values and ages are not read)."""

    values: list[Normal]
    ages: list[float]
    unknown: int


@dataclass
class _Memory:
    """What the ticks of one compiled rule set keep from one to the next: each (instance, field)'s samples."""

    tracks: dict[tuple[str, str], Track] = field(default_factory=dict)
    ticks: int = 0

    def after_tick(self, instances: Sequence[InstanceFacts]) -> None:
        """Now and then, forget instances that are gone."""
        self.ticks += 1
        if self.ticks % SWEEP_TICKS == 0:
            keys = {facts.key for facts in instances}
            self.tracks = {pair: kept for pair, kept in self.tracks.items() if pair[0] in keys}


@dataclass
class _Broken:
    """One comparison over the instances it has been asked of (``asked``), each with the newest sample that breaks
    it (failing it, or a cut: unknown, or a gap), sorted newest first, so any window's FALSE and UNKNOWN masks are
    a binary search away: every window of every rule with that comparison is answered from it."""

    asked: int = 0
    found: list[tuple[float, int, bool]] = field(default_factory=list)
    """(when, instance index, the break is a sample failing the comparison)."""
    negated_times: list[float] = field(default_factory=list)
    failed_masks: list[int] = field(default_factory=list)
    """failed_masks[k]: the instances among the k newest breaks whose break is a failing sample."""
    cut_masks: list[int] = field(default_factory=list)

    def add(self, found: list[tuple[float, int, bool]], asked: int) -> None:
        self.asked |= asked
        self.found.extend(found)
        self.found.sort(reverse=True)
        self.negated_times = [-at for at, _, _ in self.found]
        failed = cut = 0
        self.failed_masks, self.cut_masks = [0], [0]
        for _, index, fails in self.found:
            if fails:
                failed |= 1 << index
            else:
                cut |= 1 << index
            self.failed_masks.append(failed)
            self.cut_masks.append(cut)

    def since(self, start: float) -> Masks:
        """(FALSE, UNKNOWN): the instances whose break is at or after ``start``."""
        count = bisect_right(self.negated_times, -start)
        return self.failed_masks[count], self.cut_masks[count]


@dataclass
class _Tick:
    """One tick's facts and what the rules have already worked out from them (shared by every rule)."""

    instances: Sequence[InstanceFacts]
    account: AccountFacts
    now: float
    limits: Mapping[str, float]
    """The longest window any rule asks of each field."""
    memory: _Memory
    columns: dict[str, list[Normal]] = field(default_factory=dict)
    unknown: dict[str, int] = field(default_factory=dict)
    leaves: dict[LeafKey, Masks] = field(default_factory=dict)
    masks: dict[tuple[object, ...], int] = field(default_factory=dict)
    newest: dict[str, _Newest] = field(default_factory=dict)
    tracks: dict[str, list[tuple[Track, int] | None]] = field(default_factory=dict)
    """By field, by instance index: each track read up to now, and its newest cut."""
    broken: dict[LeafKey, _Broken] = field(default_factory=dict)
    uncovered: dict[tuple[str, float], list[int]] = field(default_factory=dict)

    def column(self, spec: FieldSpec) -> list[Normal]:
        column = self.columns.get(spec.name)
        if column is None:
            column = self.columns[spec.name] = normalize_all(spec, [facts.values.get(spec.name)
                                                                    for facts in self.instances])
            self.unknown[spec.name] = _mask([value is None for value in column])
        return column

    def newest_of(self, spec: FieldSpec) -> _Newest:
        found = self.newest.get(spec.name)
        if found is None:
            now, gap = float(self.now), GAP_INTERVALS  # float: its methods are mapped over floats and ints
            series = [facts.series.get(spec.name, _NO_SERIES) for facts in self.instances]
            points = list(map(_POINTS, series))
            if () in points:
                points = [one or (_NO_SAMPLE,) for one in points]
            newest = list(map(_NEWEST, points))
            times = list(map(_TIME, newest))
            if times and max(times) > now:  # a clock ahead of ours: the newest sample at or before now
                for index in [index for index, at in enumerate(times) if at > now]:
                    at_most = newest_index(series[index], now)
                    newest[index] = points[index][at_most] if at_most >= 0 else _NO_SAMPLE
                    times[index] = newest[index][0]
            ages = list(map(now.__sub__, times))
            intervals = list(map(_INTERVAL, series))
            recent = list(map(and_, map(le, ages, map(gap.__mul__, intervals)),
                              map(and_, map(math.isfinite, intervals), map(0.0.__lt__, intervals))))
            values = normalize_all(spec, list(map(_VALUE, newest)))
            unknown = _mask(list(map(not_, recent))) | _mask([value is None for value in values])
            found = self.newest[spec.name] = _Newest(values, ages, unknown)
        return found

    def mask(self, key: tuple[object, ...], flags: Callable[[], list[bool]]) -> int:
        found = self.masks.get(key)
        if found is None:
            found = self.masks[key] = _mask(flags())
        return found

    def tracks_of(self, spec: FieldSpec) -> list[tuple[Track, int] | None]:
        """Each instance's ``track`` of ``spec`` where this tick has read it already."""
        tracks = self.tracks.get(spec.name)
        if tracks is None:
            tracks = self.tracks[spec.name] = [None] * len(self.instances)
        return tracks

    def track(self, index: int, spec: FieldSpec) -> tuple[Track, int]:
        """Instance ``index``'s samples of ``spec``, read up to now (once a tick), and the newest cut in them."""
        tracks = self.tracks_of(spec)
        found = tracks[index]
        if found is None:
            facts = self.instances[index]
            series = facts.series[spec.name]
            pair = (facts.key, spec.name)
            kept = self.memory.tracks[pair] = track(self.memory.tracks.get(pair), series, spec, self.now,
                                                    self.now - self.limits[spec.name])
            found = tracks[index] = (kept, kept.cut(series.interval_s))
        return found

    def breaks(self, spec: FieldSpec, op: str, value: Scalar | tuple[Scalar, ...], asked: int) -> _Broken:
        """``op value``'s breaks over (at least) the instances ``asked``."""
        broken = self.broken.setdefault((spec.name, op, value), _Broken())
        new = asked & ~broken.asked
        if new:
            target, track_of, tracks = (op, value), self.track, self.tracks_of(spec)
            failing = failing_test(target, spec.kind is Kind.NUMBER)
            found = []
            for index in _indices(new):
                kept, cut = tracks[index] or track_of(index, spec)
                fail = kept.newest_fail(target, failing)
                found.append((kept.time_of(max(fail, cut)), index, fail > cut))
            broken.add(found, new)
        return broken

    def not_covered(self, spec: FieldSpec, window_s: float, asked: int) -> int:
        """The instances among ``asked`` whose samples do not cover the last ``window_s``."""
        checked = self.uncovered.setdefault((spec.name, window_s), [0, 0])
        start = self.now - window_s
        for index in _indices(asked & ~checked[0]):
            kept, _ = self.track(index, spec)
            if kept.uncovered(start, self.instances[index].series[spec.name].interval_s):
                checked[1] |= 1 << index
        checked[0] |= asked
        return checked[1] & asked


def _mask(flags: list[bool]) -> int:
    return int(bytes(flags).translate(_BITS)[::-1] or b"0", 2)


def _indices(mask: int) -> list[int]:
    """The set bits of ``mask``, lowest first (done in C: this runs for every rule every tick)."""
    flags = bin(mask)[:1:-1].encode("ascii").translate(_FLAGS)
    return list(compress(range(len(flags)), flags))


def _flags(op: str, value: Scalar | tuple[Scalar, ...], column: list[Normal]) -> list[bool]:
    """``op value`` over a column, written out per operator: this is the loop every rule's tick runs."""
    expected = value.casefold() if isinstance(value, str) else value
    if op == "==":
        return [actual == expected for actual in column]
    if op == "!=":
        return [actual is not None and actual != expected for actual in column]
    if op in ("<", "<=", ">", ">="):
        limit = float(expected)  # type: ignore[arg-type]
        if op == "<":
            return [actual is not None and actual < limit for actual in column]  # type: ignore[operator]
        if op == "<=":
            return [actual is not None and actual <= limit for actual in column]  # type: ignore[operator]
        if op == ">":
            return [actual is not None and actual > limit for actual in column]  # type: ignore[operator]
        return [actual is not None and actual >= limit for actual in column]  # type: ignore[operator]
    # in, not in, ~: a column holds few distinct values (statuses, GPU names), so each is judged once.
    holds = predicate(op, value)
    verdicts: dict[Normal, bool] = {actual: bool(holds(actual)) for actual in set(column) if actual is not None}
    verdicts[None] = False
    return list(map(verdicts.__getitem__, column))


def _scalar_leaf(comparison: Comparison) -> Node:
    spec = FIELDS[comparison.field]
    key: LeafKey = (comparison.field, comparison.op, comparison.value)
    if spec.scope is Scope.ACCOUNT:
        def account_leaf(tick: _Tick, candidates: int) -> Masks:
            masks = tick.leaves.get(key)
            if masks is None:
                truth = evaluate(comparison, None, tick.account, tick.now).truth
                masks = tick.leaves[key] = (-1 if truth is Truth.TRUE else 0, -1 if truth is Truth.UNKNOWN else 0)
            return masks[0] & candidates, masks[1] & candidates
        return account_leaf

    def instance_leaf(tick: _Tick, candidates: int) -> Masks:
        masks = tick.leaves.get(key)
        if masks is None:
            column = tick.column(spec)
            masks = tick.leaves[key] = (_mask(_flags(comparison.op, comparison.value, column)),
                                        tick.unknown[spec.name])
        return masks[0] & candidates, masks[1] & candidates
    return instance_leaf


def _window_leaf(comparison: Comparison) -> Node:
    """A FOR comparison: settled from each instance's newest sample where that is enough (a busy GPU fails an
    idle window at once), else from the newest sample that breaks it and whether the samples cover the window."""
    spec = FIELDS[comparison.field]
    op, value = comparison.op, comparison.value
    assert comparison.window_s is not None
    window_s = float(comparison.window_s)

    def window_leaf(tick: _Tick, candidates: int) -> Masks:
        newest = tick.newest_of(spec)
        holds_now = tick.mask(("newest", spec.name, op, value), lambda: _flags(op, value, newest.values))
        too_old = tick.mask(("older than", spec.name, window_s), lambda: list(map(window_s.__lt__, newest.ages)))
        unknown_mask = (newest.unknown | too_old) & candidates
        open_mask = candidates & holds_now & ~unknown_mask
        if not open_mask:
            return 0, unknown_mask
        failed, cut = tick.breaks(spec, op, value, open_mask).since(tick.now - window_s)
        cut &= open_mask
        open_mask &= ~(failed | cut)
        uncovered = tick.not_covered(spec, window_s, open_mask)
        return open_mask & ~uncovered, unknown_mask | cut | uncovered
    return window_leaf


def _all_of(parts: list[Node]) -> Node:
    def all_of(tick: _Tick, candidates: int) -> Masks:
        true_mask, unknown_mask = candidates, 0
        for part in parts:
            possible = true_mask | unknown_mask
            if not possible:
                break
            part_true, part_unknown = part(tick, possible)
            true_mask &= part_true
            unknown_mask = possible & (part_true | part_unknown) & ~true_mask
        return true_mask, unknown_mask
    return all_of


def _any_of(parts: list[Node]) -> Node:
    def any_of(tick: _Tick, candidates: int) -> Masks:
        true_mask = unknown_mask = 0
        for part in parts:
            open_mask = candidates & ~true_mask
            if not open_mask:
                break
            part_true, part_unknown = part(tick, open_mask)
            true_mask |= part_true
            unknown_mask = (unknown_mask | part_unknown) & ~true_mask
        return true_mask, unknown_mask
    return any_of


def _negation(part: Node) -> Node:
    def negation(tick: _Tick, candidates: int) -> Masks:
        part_true, part_unknown = part(tick, candidates)
        return candidates & ~part_true & ~part_unknown, part_unknown
    return negation


def _compile(condition: Condition) -> tuple[Node, int]:
    """A condition as a Node, and its cost: windows are the dear part, so AND tries them last (Kleene AND
    commutes) and only over the instances the cheap parts left possible."""
    if isinstance(condition, Comparison):
        if condition.window_s is None:
            return _scalar_leaf(condition), _SCALAR_COST
        return _window_leaf(condition), _WINDOW_COST
    if isinstance(condition, Negation):
        part, cost = _compile(condition.part)
        return _negation(part), cost
    compiled = [_compile(part) for part in condition.parts]
    cost = max(part_cost for _, part_cost in compiled)
    if isinstance(condition, AllOf):
        return _all_of([node for node, _ in sorted(compiled, key=lambda item: item[1])]), cost
    assert isinstance(condition, AnyOf)
    return _any_of([node for node, _ in compiled]), cost


@dataclass(frozen=True)
class CompiledRules:
    """A rule set ready to run every tick: ``evaluate_all`` gives the same truths as ``evaluate`` per rule per
    instance (tests compare them), much faster."""

    rules: tuple[Rule, ...]
    _nodes: tuple[Node | None, ...] = field(repr=False, compare=False, default=())
    """Each rule's compiled condition, in ``rules`` order (None for account rules, judged once by ``evaluate``)."""
    _limits: dict[str, float] = field(repr=False, compare=False, default_factory=dict)
    """The longest FOR window on each field, over every rule."""
    _memory: _Memory = field(repr=False, compare=False, default_factory=_Memory)
    """The samples each tick read, for the next: the runner's series only ever have samples appended between
    ticks, so a tick reads the new ones; a series that is not the last one plus new samples is read anew."""

    def evaluate_all(self, instances: Sequence[InstanceFacts], account: AccountFacts, now: float) -> list[Match]:
        """Only the TRUE ones, in rule order: account rules once (``key`` None), instance rules per instance in
        ``instances`` order. A Match's ``verdict`` is ``evaluate``'s, worked out when read."""
        tick = _Tick(instances, account, now, self._limits, self._memory)
        everyone = (1 << len(instances)) - 1
        matches: list[Match] = []
        for rule, node in zip(self.rules, self._nodes, strict=True):
            if node is None:
                match = Match(rule, None, None, account, now)
                if match.verdict.truth is Truth.TRUE:
                    matches.append(match)
                continue
            true_mask, _ = node(tick, everyone)
            matches.extend([Match(rule, instances[index].key, instances[index], account, now)
                            for index in _indices(true_mask)])
        self._memory.after_tick(instances)
        return matches


def compile_rules(rule_set: RuleSet | Sequence[Rule]) -> CompiledRules:
    """Compile once per rule file change and keep the result: its ticks carry each instance's samples from one
    to the next, so it serves one caller's ticks at a time (the runner's, under its lock)."""
    rules = tuple(rule_set.rules if isinstance(rule_set, RuleSet) else rule_set)
    limits: dict[str, float] = {}
    for rule in rules:
        for comparison in _comparisons(rule):
            if comparison.window_s is not None:
                limits[comparison.field] = max(limits.get(comparison.field, 0.0), comparison.window_s)
    nodes = tuple(None if rule.account_scope else _compile(rule.condition)[0] for rule in rules)
    return CompiledRules(rules, nodes, limits)


def _comparisons(rule: Rule) -> list[Comparison]:
    found: list[Comparison] = []
    pending: list[Condition] = [rule.condition]
    while pending:
        condition = pending.pop()
        if isinstance(condition, Comparison):
            found.append(condition)
        elif isinstance(condition, Negation):
            pending.append(condition.part)
        else:
            pending.extend(condition.parts)
    return found
