"""The fast path keeps each instance's samples from tick to tick: over many ticks of appended samples (and series
that are not), random rules on random gappy, jittery, partly unknown series find exactly what the evaluator finds."""

from __future__ import annotations

import math
import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest

from computehub_tui.rules import compiled, windows
from computehub_tui.rules.compiled import CompiledRules, compile_rules
from computehub_tui.rules.evaluate import evaluate
from computehub_tui.rules.model import AccountFacts, InstanceFacts, RuleSet, Series, Truth, Value
from computehub_tui.rules.parser import parse_rules

NUMBER_LEVELS = (0.0, 2.0, 5.0, 7.0, 50.0, 95.0)
STATUSES = ("running", "exited", "provisioning")
WINDOWS = ("30s", "1m", "2m", "5m", "10m", "15m")
ACCOUNT = AccountFacts({"spend_today": 60.0})


def random_comparison(rng: random.Random) -> str:
    window = f" FOR {rng.choice(WINDOWS)}" if rng.random() < 0.8 else ""
    if rng.random() < 0.25:
        choice = rng.choice(('== "running"', '!= "exited"', 'in ["exited", "provisioning"]', 'not in ["running"]',
                             '~ "run*"', '~ "*ing"'))
        return f"status {choice}{window}"
    name = rng.choice(("gpu_util", "gpu_util", "gpu_util_avg", "vram_used_pct"))
    op = rng.choice(("<", "<", "<=", ">", ">=", "==", "!=", "in", "not in"))
    if op in ("in", "not in"):
        return f"{name} {op} [{rng.choice(NUMBER_LEVELS):g}, {rng.choice(NUMBER_LEVELS):g}]{window}"
    return f"{name} {op} {rng.choice(NUMBER_LEVELS + (1.0, 6.0, 60.0)):g}{window}"


def random_condition(rng: random.Random, depth: int = 0) -> str:
    roll = rng.random()
    if depth >= 2 or roll < 0.4:
        return random_comparison(rng)
    if roll < 0.55:
        return f"not ({random_condition(rng, depth + 1)})"
    joiner = " AND " if roll < 0.8 else " or "
    return "(" + joiner.join(random_condition(rng, depth + 1) for _ in range(rng.randint(2, 3))) + ")"


def random_rules(rng: random.Random, count: int) -> RuleSet:
    lines = [f'rule "r{n}": IF {random_condition(rng)} THEN notify toast' for n in range(count)]
    lines.append('rule "a": IF spend_today > 50 AND gpu_util < 5 FOR 2m THEN stop')
    result = parse_rules("\n".join(lines))
    assert result.ok, [error.render() for error in result.errors]
    return result


@dataclass
class Timeline:
    """One instance's samples of every field, oldest first, sampled every ``interval_s`` with jitter, gaps,
    unknown and odd values, and now and then a sample from a clock that runs ahead."""

    interval_s: float
    points: dict[str, list[tuple[float, Value]]]


def odd(rng: random.Random) -> Value:
    return rng.choice((None, None, math.nan, math.inf, True, 3, "7", 2.5))


def timeline(rng: random.Random, start: float, end: float) -> Timeline:
    interval = rng.choice((5.0, 5.0, 15.0, 60.0))
    jitter = rng.choice((0.0, 0.0, 0.02, 0.3)) * interval
    points: dict[str, list[tuple[float, Value]]] = {name: [] for name in ("gpu_util", "gpu_util_avg",
                                                                         "vram_used_pct", "status")}
    levels: dict[str, Value] = {name: rng.choice(NUMBER_LEVELS) for name in points}
    levels["status"] = rng.choice(STATUSES)
    at = start + rng.uniform(0.0, interval)
    while at <= end:
        if rng.random() < 0.02:
            at += interval * rng.choice((2.0, 3.0, 3.5, 6.0))  # a missed poll, or a gap
            continue
        for name, samples in points.items():
            if rng.random() < 0.06:
                levels[name] = rng.choice(STATUSES) if name == "status" else rng.choice(NUMBER_LEVELS)
            value = odd(rng) if rng.random() < 0.01 else levels[name]
            if name != "status" and isinstance(value, float) and rng.random() < 0.3:
                value = value + rng.choice((-0.5, 0.0, 0.5))
            samples.append((at + rng.uniform(-jitter, jitter) if jitter else at, value))
        at += interval
    for samples in points.values():
        samples.sort(key=lambda point: point[0])
    return Timeline(interval, points)


def series_at(rng: random.Random, line: Timeline, now: float, floor_s: float) -> dict[str, Series]:
    """What the facts builder gives at ``now``: points up to now (with the odd sample just ahead of it), from the
    window's floor on or whole, at an interval estimate that drifts (and now and then jumps)."""
    interval = line.interval_s * rng.choice((1.0, 1.0, 0.97, 1.04, 0.4, 5.0) if rng.random() < 0.3 else (1.0,))
    found = {}
    for name, samples in line.points.items():
        visible = [point for point in samples if point[0] <= now + (interval if rng.random() < 0.1 else 0.0)]
        if rng.random() < 0.7:
            visible = [point for point in visible if point[0] >= now - floor_s - 4 * interval]
        elif rng.random() < 0.1:
            visible = visible[len(visible) // 2:]  # a front cut later than any window starts
        found[name] = Series(tuple(visible), interval)
    return found


def fleet_at(rng: random.Random, lines: dict[str, Timeline], now: float, floor_s: float) -> list[InstanceFacts]:
    fleet = []
    for key, line in lines.items():
        series = series_at(rng, line, now, floor_s)
        if rng.random() < 0.05:
            series.pop("gpu_util")
        newest = {name: one.points[-1][1] if one.points else None for name, one in series.items()}
        fleet.append(InstanceFacts(key, newest, series))
    rng.shuffle(fleet)  # the order of instances is not the same from tick to tick
    return fleet


def expected(rules: RuleSet, fleet: list[InstanceFacts], now: float) -> set[tuple[str, str | None]]:
    found = set()
    for rule in rules.rules:
        for facts in [None] if rule.account_scope else fleet:
            if evaluate(rule.condition, facts, ACCOUNT, now).truth is Truth.TRUE:
                found.add((rule.name, None if facts is None else facts.key))
    return found


def found(rules: CompiledRules, fleet: list[InstanceFacts], now: float) -> set[tuple[str, str | None]]:
    return {(match.rule.name, match.key) for match in rules.evaluate_all(fleet, ACCOUNT, now)}


@pytest.mark.parametrize("seed", range(4))
def test_over_many_ticks_the_fast_path_finds_exactly_what_the_evaluator_finds(seed: int) -> None:
    rng = random.Random(seed)
    rules = random_rules(rng, 24)
    fast = compile_rules(rules)
    now = 50_000.0
    lines = {f"vast:{n}": timeline(rng, now - rng.uniform(300.0, 1500.0), now + 3000.0) for n in range(30)}
    matched = 0
    for _ in range(25):
        now += rng.choice((5.0, 5.0, 15.0, 15.0, 60.0, 0.0, 200.0))
        if rng.random() < 0.1:  # a relaunch under the same key: another history, not samples appended
            lines[rng.choice(list(lines))] = timeline(rng, now - 600.0, now + 3000.0)
        fleet = fleet_at(rng, lines, now, 900.0)
        want = expected(rules, fleet, now)
        assert found(fast, fleet, now) == want, now
        matched += len(want)
    assert matched > 100  # the random rules do match, so agreement says something


def test_a_clock_that_goes_back_and_an_instance_that_comes_back_are_read_anew() -> None:
    rng = random.Random(7)
    rules = random_rules(rng, 24)
    fast = compile_rules(rules)
    lines = {f"vast:{n}": timeline(rng, 0.0, 4000.0) for n in range(30)}
    for now in (2000.0, 2005.0, 1500.0, 2500.0, 1000.0, 3000.0):
        fleet = fleet_at(rng, lines, now, 900.0)
        assert found(fast, fleet, now) == expected(rules, fleet, now), now
        del lines[next(iter(lines))]
        lines[f"vast:{now}"] = timeline(rng, 0.0, 4000.0)


# -- what is kept, and what is read again -----------------------------------------------------------------------------


def idle(end: float, start: float = 0.0) -> Series:
    return Series(tuple((float(at), 1.0) for at in range(int(start), int(end) + 1, 15)), 15.0)


def counting(monkeypatch: pytest.MonkeyPatch, owner: object, name: str) -> list[tuple[Any, ...]]:
    calls: list[tuple[Any, ...]] = []
    original: Callable[..., object] = getattr(owner, name)

    def count(*args: Any) -> object:
        calls.append(args)
        return original(*args)

    monkeypatch.setattr(owner, name, count)
    return calls


def test_a_tick_reads_only_the_samples_added_since_the_last(monkeypatch: pytest.MonkeyPatch) -> None:
    rules = compile_rules(parse_rules('rule "a": IF gpu_util < 5 FOR 30m THEN stop\n'
                                      'rule "b": IF gpu_util < 10 FOR 10m THEN stop'))
    read = counting(monkeypatch, windows, "normalize_all")
    first = rules.evaluate_all([InstanceFacts("vast:1", {}, {"gpu_util": idle(3600.0)})], ACCOUNT, 3600.0)
    assert [match.rule.name for match in first] == ["a", "b"]
    assert sum(len(args[1]) for args in read) == 121  # the 30 minutes back from now
    kept = rules._memory.tracks[("vast:1", "gpu_util")]
    read.clear()
    later = rules.evaluate_all([InstanceFacts("vast:1", {}, {"gpu_util": idle(3630.0, 60.0)})], ACCOUNT, 3630.0)
    assert [match.rule.name for match in later] == ["a", "b"]
    assert rules._memory.tracks[("vast:1", "gpu_util")] is kept
    assert sum(len(args[1]) for args in read) == 2  # the two new ones


def test_a_series_without_the_last_sample_read_where_it_was_is_read_anew() -> None:
    rule_set = parse_rules('rule "a": IF gpu_util < 5 FOR 30m THEN stop')
    rules = compile_rules(rule_set)
    assert rules.evaluate_all([InstanceFacts("vast:1", {}, {"gpu_util": idle(3600.0)})], ACCOUNT, 3600.0)
    # The same key with another history (a relaunch): other sample times, a busy sample 10 minutes ago.
    points = [(at + 7.0, value) for at, value in idle(3615.0).points]
    points[-40] = (points[-40][0], 90.0)
    relaunched = [InstanceFacts("vast:1", {}, {"gpu_util": Series(tuple(points), 15.0)})]
    assert expected(rule_set, relaunched, 3622.0) == set()
    assert rules.evaluate_all(relaunched, ACCOUNT, 3622.0) == []


def test_a_comparison_shared_by_rules_is_read_once_per_instance_and_only_where_the_rest_may_hold(
        monkeypatch: pytest.MonkeyPatch) -> None:
    read = counting(monkeypatch, windows.Track, "newest_fail")
    rules = compile_rules(parse_rules('rule "a": IF status == "running" AND gpu_util < 5 FOR 30m THEN stop\n'
                                      'rule "b": IF gpu_util < 5 FOR 10m AND status == "running" THEN notify toast'))
    busy = Series(tuple((float(at), 0.0 if at < 3000 else 90.0) for at in range(0, 3601, 15)), 15.0)
    fleet = [InstanceFacts(f"vast:{n}", {"status": "running" if n in (3, 4) else "exited"},
                           {"gpu_util": busy if n == 4 else idle(3600.0)}) for n in range(10)]
    matches = rules.evaluate_all(fleet, ACCOUNT, 3600.0)
    assert [(match.rule.name, match.key) for match in matches] == [("a", "vast:3"), ("b", "vast:3")]
    # Only the running idle one is read back; the running busy one is settled by its newest sample.
    assert len(read) == 1


def test_instances_that_are_gone_are_forgotten(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(compiled, "SWEEP_TICKS", 2)
    rules = compile_rules(parse_rules('rule "a": IF gpu_util < 5 FOR 30m THEN stop'))
    rules.evaluate_all([InstanceFacts(f"vast:{n}", {}, {"gpu_util": idle(3600.0)}) for n in range(5)], ACCOUNT,
                       3600.0)
    assert len(rules._memory.tracks) == 5
    rules.evaluate_all([InstanceFacts("vast:0", {}, {"gpu_util": idle(3615.0)})], ACCOUNT, 3615.0)
    assert list(rules._memory.tracks) == [("vast:0", "gpu_util")]


def test_whole_numbers_for_times_values_intervals_and_now_are_judged_as_the_evaluator_judges_them() -> None:
    rule_set = parse_rules('rule "a": IF gpu_util < 5 FOR 1m THEN stop\nrule "b": IF gpu_util >= 1 FOR 2m THEN stop\n'
                           'rule "c": IF not gpu_util > 0 FOR 30s THEN stop')
    rules = compile_rules(rule_set)
    fleet = [InstanceFacts(f"vast:{n}", {}, {"gpu_util": Series(tuple((at + 0.5, n) for at in range(0, 301, 15)), 15)})
             for n in range(3)]
    for now in (300, 301, 345, 400):
        assert found(rules, fleet, now) == expected(rule_set, fleet, now), now
    assert found(rules, fleet, 300) == {("a", "vast:0"), ("a", "vast:1"), ("a", "vast:2"), ("b", "vast:1"),
                                        ("b", "vast:2"), ("c", "vast:0")}


def test_a_track_keeps_the_longest_window_and_not_much_more() -> None:
    rule_set = parse_rules('rule "a": IF gpu_util < 5 FOR 10m THEN stop')
    rules = compile_rules(rule_set)
    whole = idle(20_000.0)
    for now in range(3600, 20_001, 15):
        fleet = [InstanceFacts("vast:1", {}, {"gpu_util": Series(whole.points[:now // 15 + 1], 15.0)})]
        assert [match.rule.name for match in rules.evaluate_all(fleet, ACCOUNT, float(now))] == ["a"]
    kept = rules._memory.tracks[("vast:1", "gpu_util")]
    assert len(kept.times) <= 600 // 15 + 1 + windows.DROP_CHUNK
    assert kept.base > 0  # samples were dropped, and every tick above still found the window held


def test_a_number_among_text_samples_is_unknown_however_it_arrives() -> None:
    rule_set = parse_rules('rule "a": IF status != "exited" FOR 1m THEN stop\n'
                           'rule "b": IF gpu_util < 5 FOR 1m THEN stop')
    rules = compile_rules(rule_set)
    statuses: list[tuple[float, Value]] = [(float(at), "running") for at in range(0, 301, 15)]
    utils: list[tuple[float, Value]] = [(float(at), 1.0) for at in range(0, 301, 15)]
    for now, status, util in ((300.0, None, None), (315.0, 2.5, "2"), (330.0, "running", 1.0)):
        if status is not None:
            statuses.append((now, status))
            utils.append((now, util))
        fleet = [InstanceFacts("vast:1", {}, {"status": Series(tuple(statuses), 15.0),
                                              "gpu_util": Series(tuple(utils), 15.0)})]
        assert found(rules, fleet, now) == expected(rule_set, fleet, now), now
    assert found(rules, fleet, 330.0) == set()
