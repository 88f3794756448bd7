"""The runner's fast path agrees with the evaluator; notify templates; recipes parse."""

from __future__ import annotations

import math
import random

import pytest

from computehub_tui.rules import compiled
from computehub_tui.rules.compiled import compile_rules
from computehub_tui.rules.evaluate import evaluate
from computehub_tui.rules.messages import MESSAGE_LIMIT, render_message
from computehub_tui.rules.model import AccountFacts, InstanceFacts, RuleSet, Series, Truth, Value
from computehub_tui.rules.parser import parse_rules
from computehub_tui.rules.recipes import RECIPES

CONDITIONS = (
    'gpu_util < 5 FOR 30m AND status == "running"',
    'gpu_util < 10 FOR 10m AND status == "running"',
    "gpu_util < 5 FOR 30m",
    'status == "exited" AND pricing == "interruptible"',
    'status == "provisioning" FOR 20m',
    'cost_per_hour > $2 AND gpu ~ "A100*"',
    'not (gpu_util >= 50 or provider in ["vast", "lambda"])',
    'gpu_util_avg <= 20 FOR 5m or vram_used_pct > 90',
    'label != "keep" and not gpu_temp > 80',
    'provider not in ["runpod"] and gpu_count in [1, 2] and uptime > 1h',
    "spend_today > 50 AND cost_per_hour > 1",
    "project_spend_today > $10 or price_change_24h > 20%",
    'not status == "running" FOR 10m',
    "gpu_util > 80 FOR 5m AND power_w >= 200",
)
ACCOUNT_RULE = 'rule "cap": IF spend_today > 50 THEN stop_all'


def rule_file() -> RuleSet:
    text = "\n".join(f'rule "r{n}": IF {condition} THEN notify toast' for n, condition in enumerate(CONDITIONS))
    result = parse_rules(text + "\n" + ACCOUNT_RULE)
    assert result.ok, [error.render() for error in result.errors]
    return result


def maybe(rng: random.Random, value: Value) -> Value:
    return None if rng.random() < 0.1 else value


def random_series(rng: random.Random, now: float, values: tuple[Value, ...]) -> Series:
    points = []
    at = now - rng.choice((600, 1800, 3600))
    level = rng.choice(values)
    while at <= now:
        if rng.random() < 0.05:
            level = rng.choice(values)
        if rng.random() > 0.02:  # a dropped sample now and then; sometimes a gap
            points.append((at, maybe(rng, level) if rng.random() < 0.05 else level))
        at += 15.0 if rng.random() > 0.01 else 90.0
    if rng.random() < 0.1 and isinstance(values[0], float):  # odd values the facts builder should not send
        index = rng.randrange(len(points))
        points[index] = (points[index][0], rng.choice((math.nan, math.inf, True, 3)))
    if rng.random() < 0.05:
        points.append((now + 60.0, values[0]))  # a sample from the future (clock skew)
    if rng.random() < 0.05:
        points = points[:-10]  # stale
    return Series(tuple(points), 15.0)


def random_fleet(rng: random.Random, count: int, now: float) -> list[InstanceFacts]:
    fleet = []
    for n in range(count):
        status = rng.choice(("running", "running", "exited", "provisioning", "stopped"))
        util = rng.choice((0.0, 3.0, 8.0, 40.0, 95.0))
        values: dict[str, Value] = {
            "status": maybe(rng, status), "provider": rng.choice(("vast", "runpod", "lambda", "tensordock")),
            "gpu": rng.choice(("A100 SXM", "a100 pcie", "RTX 4090", "H100")), "gpu_count": rng.choice((1, 2, 4)),
            "label": rng.choice(("keep", "job", "")), "pricing": rng.choice(("on-demand", "interruptible")),
            "gpu_util": maybe(rng, util), "gpu_util_avg": maybe(rng, util / 2), "vram_used_pct": maybe(rng, 50.0),
            "gpu_temp": maybe(rng, rng.choice((60.0, 85.0))), "power_w": maybe(rng, rng.choice((100.0, 300.0))),
            "cost_per_hour": maybe(rng, rng.choice((0.5, 1.5, 2.5))), "uptime": maybe(rng, rng.choice((60.0, 9000.0))),
            "project_spend_today": maybe(rng, rng.choice((5.0, 20.0))), "price_change_24h": maybe(rng, 25.0),
        }
        series = {"gpu_util": random_series(rng, now, (0.0, 2.0, 7.0, 60.0, 95.0, None)),
                  "gpu_util_avg": random_series(rng, now, (1.0, 15.0, 30.0)),
                  "status": random_series(rng, now, ("running", "provisioning", "exited"))}
        if rng.random() < 0.1:
            series.pop("gpu_util")
        fleet.append(InstanceFacts(f"vast:{n}", values, series))
    return fleet


@pytest.mark.parametrize("seed", range(6))
def test_the_fast_path_finds_exactly_what_the_evaluator_finds(seed: int) -> None:
    rng = random.Random(seed)
    now = 100_000.0
    rules = rule_file()
    fleet = random_fleet(rng, 150, now)
    account = AccountFacts({"spend_today": rng.choice((10.0, 60.0, None))})
    expected = set()
    for rule in rules.rules:
        targets = [None] if rule.account_scope else fleet
        for facts in targets:
            if evaluate(rule.condition, facts, account, now).truth is Truth.TRUE:
                expected.add((rule.name, None if facts is None else facts.key))
    matches = compile_rules(rules).evaluate_all(fleet, account, now)
    assert {(match.rule.name, match.key) for match in matches} == expected
    assert len(expected) > 20  # the random fleet does exercise the rules
    assert all(match.verdict.truth is Truth.TRUE and match.verdict.evidence for match in matches)
    order = [rules.rules.index(match.rule) for match in matches]
    assert order == sorted(order)


def test_account_rules_match_once_without_an_instance_and_only_true_is_returned() -> None:
    rules = compile_rules(parse_rules(ACCOUNT_RULE + '\nrule "idle": IF gpu_util < 5 THEN stop'))
    fleet = [InstanceFacts(f"vast:{n}", {"gpu_util": float(n)}) for n in range(10)]
    matches = rules.evaluate_all(fleet, AccountFacts({"spend_today": 51.0}), 0.0)
    assert [(match.rule.name, match.key) for match in matches] == [
        ("cap", None), *[("idle", f"vast:{n}") for n in range(5)]]
    assert rules.evaluate_all(fleet, AccountFacts({"spend_today": None}), 0.0)[0].rule.name == "idle"
    assert rules.evaluate_all([], AccountFacts({}), 0.0) == []


def test_one_track_of_samples_answers_every_threshold_and_window(monkeypatch: pytest.MonkeyPatch) -> None:
    built: list[float] = []
    track = compiled.track

    def counting(*args: object) -> object:
        built.append(args[4])  # type: ignore[arg-type]
        return track(*args)  # type: ignore[arg-type]

    monkeypatch.setattr(compiled, "track", counting)
    text = "\n".join(f'rule "r{n}": IF gpu_util {op} {limit} FOR {window} THEN stop'
                     for n, (op, limit, window) in enumerate([("<", 5, "10m"), ("<", 10, "30m"), ("<=", 3, "45m"),
                                                               (">", -1, "5m"), (">=", 0, "1h")]))
    idle = Series(tuple((float(at), 1.0) for at in range(0, 3601, 15)), 15.0)
    matches = compile_rules(parse_rules(text)).evaluate_all([InstanceFacts("vast:1", {}, {"gpu_util": idle})],
                                                             AccountFacts({}), 3600.0)
    assert [match.rule.name for match in matches] == ["r0", "r1", "r2", "r3", "r4"]
    assert built == [0.0]  # one track, from as far back as the longest window


def test_nan_in_a_column_is_unknown_on_the_fast_path_too() -> None:
    rules = compile_rules(parse_rules('rule "a": IF not gpu_util < 5 THEN stop\nrule "b": IF gpu_util != 5 THEN stop'))
    fleet = [InstanceFacts("vast:1", {"gpu_util": math.nan}), InstanceFacts("vast:2", {"gpu_util": 50.0})]
    assert [(m.rule.name, m.key) for m in rules.evaluate_all(fleet, AccountFacts({}), 0.0)] == [
        ("a", "vast:2"), ("b", "vast:2")]


# -- notify templates ------------------------------------------------------------------------------------------------


def test_templates_fill_fields_by_unit_and_leave_other_names_alone() -> None:
    values: dict[str, Value] = {"spend_today": 51.2, "gpu_util": 2.0, "uptime": 7500.0, "label": "train-1",
                                "cost_per_hour": 1.8, "gpu_temp": None, "vram_used_gb": 40.25}
    assert render_message("daily cap hit: {spend_today}", values) == "daily cap hit: $51.20"
    assert render_message("{label} at {gpu_util} for {uptime}, {cost_per_hour}", values) == \
        "train-1 at 2.0% for 2h 05m, $1.80/h"
    assert render_message("{gpu_temp} {power_w} {vram_used_gb}", values) == "unknown unknown 40.2 GB"
    assert render_message("{name} {x y} {} {{label}}", values) == "{name} {x y} {} {train-1}"


def test_templates_are_made_safe_and_bounded() -> None:
    hostile: dict[str, Value] = {"label": "\x1b]52;c;aGk=\x07[@click=app.quit]q[/]\u202e\nnext", "spend_today": math.inf}
    shown = render_message("{label} {spend_today}\x1b[2J", hostile)
    assert shown == "[@click=app.quit]q[/] next unknown"
    assert len(render_message("{label}" * 10_000, {"label": "x" * 200})) == MESSAGE_LIMIT


# -- recipes ---------------------------------------------------------------------------------------------------------


def test_every_recipe_parses_clean_under_its_own_name() -> None:
    result = parse_rules("\n".join(recipe.text for recipe in RECIPES))
    assert result.ok, [error.render() for error in result.errors]
    assert [rule.name for rule in result.rules] == [recipe.name for recipe in RECIPES]
    assert [recipe.title for recipe in RECIPES] == ["Idle stop", "Crash restart", "Daily spend cap",
                                                    "Stuck provisioning", "Spot refill", "Price-rise migration"]
    assert all(recipe.description for recipe in RECIPES)
    cap = result.rules[2]
    assert cap.account_scope and cap.may_act_on_fleet
