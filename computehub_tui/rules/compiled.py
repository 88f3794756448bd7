"""The runner's fast path: every rule over every instance in one tick, on bit masks shared across rules."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from computehub_tui.rules.evaluate import Normal, evaluate, normalize, predicate, scan_window
from computehub_tui.rules.fields import FIELDS, FieldSpec, Scope
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
    Truth,
    Verdict,
)

Masks = tuple[int, int]
"""(TRUE, UNKNOWN) as bit masks over the tick's instances (bit i is instances[i]); the rest is FALSE."""
Node = Callable[["_Tick", int], Masks]
"""A compiled condition: its masks over the candidate instances it is given (a mask too)."""
LeafKey = tuple[str, str, Scalar | tuple[Scalar, ...], float | None]

_BITS = bytes.maketrans(b"\x00\x01", b"01")
_WINDOW_COST, _SCALAR_COST = 1, 0


@dataclass(frozen=True, slots=True)
class Match:
    """A rule whose condition is TRUE now: for an instance (``key``), or once for the account (``key`` None)."""

    rule: Rule
    key: str | None
    verdict: Verdict


@dataclass
class _Tick:
    """One tick's facts and what the rules have already worked out from them (shared by every rule)."""

    instances: Sequence[InstanceFacts]
    account: AccountFacts
    now: float
    columns: dict[str, list[Normal]] = field(default_factory=dict)
    unknown: dict[str, int] = field(default_factory=dict)
    leaves: dict[LeafKey, Masks] = field(default_factory=dict)
    windows: dict[LeafKey, dict[int, Truth]] = field(default_factory=dict)

    def column(self, spec: FieldSpec) -> list[Normal]:
        column = self.columns.get(spec.name)
        if column is None:
            column = self.columns[spec.name] = [normalize(spec, facts.values.get(spec.name))
                                                for facts in self.instances]
            self.unknown[spec.name] = _mask([value is None for value in column])
        return column


def _mask(flags: list[bool]) -> int:
    return int(bytes(flags).translate(_BITS)[::-1] or b"0", 2)


def _indices(mask: int) -> list[int]:
    return [index for index, bit in enumerate(bin(mask)[:1:-1]) if bit == "1"]


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
    holds = predicate(op, value)
    return [actual is not None and bool(holds(actual)) for actual in column]


def _scalar_leaf(comparison: Comparison) -> Node:
    spec = FIELDS[comparison.field]
    key: LeafKey = (comparison.field, comparison.op, comparison.value, None)
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
    spec = FIELDS[comparison.field]
    window_s = comparison.window_s
    assert window_s is not None
    key: LeafKey = (comparison.field, comparison.op, comparison.value, window_s)

    def window_leaf(tick: _Tick, candidates: int) -> Masks:
        known = tick.windows.setdefault(key, {})
        true_mask = unknown_mask = 0
        for index in _indices(candidates):
            truth = known.get(index)
            if truth is None:
                series = tick.instances[index].series.get(spec.name)
                truth = known[index] = (Truth.UNKNOWN if series is None else
                                        scan_window(series, spec, comparison.op, comparison.value, window_s,
                                                    tick.now).truth)
            if truth is Truth.TRUE:
                true_mask |= 1 << index
            elif truth is Truth.UNKNOWN:
                unknown_mask |= 1 << index
        return true_mask, unknown_mask
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
    _nodes: dict[str, Node] = field(repr=False, compare=False, default_factory=dict)
    """Each instance-scope rule's compiled condition, by rule name."""

    def evaluate_all(self, instances: Sequence[InstanceFacts], account: AccountFacts, now: float) -> list[Match]:
        """Only the TRUE ones, in rule order: account rules once (``key`` None), instance rules per instance in
        ``instances`` order. Each Match carries the full Verdict (evidence) from ``evaluate``."""
        tick = _Tick(instances, account, now)
        everyone = (1 << len(instances)) - 1
        matches: list[Match] = []
        for rule in self.rules:
            if rule.account_scope:
                verdict = evaluate(rule.condition, None, account, now)
                if verdict.truth is Truth.TRUE:
                    matches.append(Match(rule, None, verdict))
                continue
            true_mask, _ = self._nodes[rule.name](tick, everyone)
            for index in _indices(true_mask):
                facts = instances[index]
                matches.append(Match(rule, facts.key, evaluate(rule.condition, facts, account, now)))
        return matches


def compile_rules(rule_set: RuleSet | Sequence[Rule]) -> CompiledRules:
    """Compile once per rule file change; the result is immutable and safe to share."""
    rules = tuple(rule_set.rules if isinstance(rule_set, RuleSet) else rule_set)
    return CompiledRules(rules, {rule.name: _compile(rule.condition)[0] for rule in rules if not rule.account_scope})
