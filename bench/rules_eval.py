"""`python -m bench.rules_eval [--no-poll]`: 100 rules x 1,000 instances evaluated per tick by the compiled fast
path, beside the naive evaluator (each rule on each instance) and one poll cycle, measured in the same run."""

from __future__ import annotations

import asyncio
import random
import statistics
import sys
import time
from collections.abc import Sequence
from typing import Any

from computehub_tui.rules.compiled import compile_rules
from computehub_tui.rules.evaluate import evaluate
from computehub_tui.rules.model import AccountFacts, InstanceFacts, RuleSet, Series, Truth, Value
from computehub_tui.rules.parser import parse_rules

RULES = 100
INSTANCES = 1_000
INTERVAL_S = 15.0
HISTORY_S = 2 * 3600.0
"""Two hours at 15 s: 480 samples per series, the longest window the rules use."""
TICKS = 15
BASELINE_TICKS = 3
POLL_CYCLES = 3
TARGET_MS = 50.0
NOW = 1_800_000_000.0
WINDOWS = ("5m", "10m", "15m", "30m", "45m", "1h", "90m", "2h")


def rule_text(rng: random.Random) -> str:
    """100 rules after the recipes, thresholds and windows varied as users would vary them."""
    def window() -> str:
        return rng.choice(WINDOWS)

    makers = [
        (40, lambda: f'IF gpu_util < {rng.choice((2, 3, 5, 8, 10))} FOR {window()} AND status == "running" '
                     "THEN WARN 5m stop; notify toast"),
        (10, lambda: f"IF gpu_util_avg < {rng.choice((5, 10, 15))} FOR {window()} AND vram_used_pct < "
                     f"{rng.choice((10, 20, 30))} THEN notify telegram"),
        (8, lambda: f'IF status == "exited" AND pricing == "on-demand" AND provider == '
                    f'"{rng.choice(("vast", "runpod", "lambda", "tensordock"))}" THEN restart'),
        (8, lambda: f'IF status == "provisioning" FOR {rng.choice(("10m", "15m", "20m", "30m"))} THEN relaunch'),
        (8, lambda: f'IF status in ["exited", "stopped"] AND pricing == "interruptible" AND gpu ~ '
                    f'"{rng.choice(("*A100*", "*H100*", "RTX*", "*4090"))}" THEN relaunch'),
        (10, lambda: f'IF price_change_24h > {rng.choice((10, 20, 30))}% AND gpu ~ "*A100*" AND cost_per_hour > '
                     f'${rng.choice((1.0, 1.5, 2.0))} THEN migrate(provider="runpod", max_price=1.8)'),
        (6, lambda: f'IF spend_today > ${rng.choice((50, 100, 200))} THEN stop_all; notify email '
                    '"daily cap hit: {spend_today}"'),
        (10, lambda: f"IF gpu_temp > {rng.choice((80, 85, 90))} FOR {window()} THEN notify webhook"),
    ]
    rules = [make() for count, make in makers for _ in range(count)]
    return "\n".join(f'rule "bench-{n}": {rule}' for n, rule in enumerate(rules))


def series(points: Sequence[tuple[float, Value]]) -> Series:
    return Series(tuple(points), INTERVAL_S)


def machine(rng: random.Random, n: int) -> InstanceFacts:
    """One instance: busy with checkpoint dips (70 %), idle for a while (15 %), gappy, exited or provisioning."""
    kind = rng.choices(("busy", "idle", "gappy", "exited", "provisioning"), weights=(70, 15, 5, 5, 5))[0]
    idle_since = NOW - rng.uniform(0, HISTORY_S)
    checkpoint_phase = rng.randrange(10)
    times = [NOW - HISTORY_S + INTERVAL_S * k for k in range(int(HISTORY_S // INTERVAL_S) + 1)]
    util: list[tuple[float, Value]] = []
    for at in times:
        if kind == "idle" and at >= idle_since:
            value: Value = rng.choice((0.0, 0.0, 1.0, 2.0))
        elif kind in ("exited", "provisioning"):
            value = 0.0
        else:
            # A one-minute checkpoint dip every 10 minutes, not at the same time on every machine.
            value = 0.0 if int(at // 60) % 10 == checkpoint_phase else rng.uniform(60, 100)
        if kind == "gappy" and int(at // 600) % 3 == 0:
            continue
        util.append((at, None if rng.random() < 0.003 else value))
    status = "exited" if kind == "exited" else "provisioning" if kind == "provisioning" else "running"
    temps: list[tuple[float, Value]] = [(at, 85.0 if isinstance(load, float) and load > 80 else 60.0)
                                        for at, load in util]
    return InstanceFacts(
        key=f"{rng.choice(('vast', 'runpod', 'lambda'))}:{n}",
        values={"status": status, "provider": rng.choice(("vast", "runpod", "lambda", "tensordock")),
                "gpu": rng.choice(("A100 SXM4 80GB", "H100 SXM", "RTX 4090", "RTX A6000")),
                "pricing": rng.choice(("on-demand", "interruptible")), "gpu_util": util[-1][1] if util else None,
                "gpu_util_avg": util[-1][1] if util else None, "vram_used_pct": rng.choice((5.0, 45.0, 90.0)),
                "gpu_temp": temps[-1][1] if temps else None, "cost_per_hour": rng.choice((0.4, 1.2, 2.2)),
                "price_change_24h": rng.choice((0.0, 5.0, 25.0, 40.0))},
        series={"gpu_util": series(util), "gpu_util_avg": series(util), "gpu_temp": series(temps),
                "status": series([(at, status) for at in times])},
    )


def fixture(seed: int = 11) -> tuple[RuleSet, list[InstanceFacts], AccountFacts]:
    rng = random.Random(seed)
    rules = parse_rules(rule_text(rng))
    if not rules.ok or len(rules.rules) != RULES:
        raise RuntimeError("the bench rules do not parse: " + "; ".join(e.render() for e in rules.errors[:3]))
    return rules, [machine(rng, n) for n in range(INSTANCES)], AccountFacts({"spend_today": 120.0})


def naive_tick(rules: RuleSet, fleet: list[InstanceFacts], account: AccountFacts) -> set[tuple[str, str | None]]:
    """The baseline: ``evaluate`` for every rule on every instance (account rules once)."""
    found = set()
    for rule in rules.rules:
        for facts in ([None] if rule.account_scope else fleet):
            if evaluate(rule.condition, facts, account, NOW).truth is Truth.TRUE:
                found.add((rule.name, None if facts is None else facts.key))
    return found


def timed(run: Any, times: int) -> tuple[list[float], list[float], Any]:
    """Wall and process CPU seconds of each of ``times`` calls, and the last result."""
    walls, cpus, result = [], [], None
    for _ in range(times):
        wall, cpu = time.perf_counter(), time.process_time()
        result = run()
        walls.append(time.perf_counter() - wall)
        cpus.append(time.process_time() - cpu)
    return walls, cpus, result


def measure(with_poll: bool) -> dict[str, Any]:
    rules, fleet, account = fixture()
    compiled = compile_rules(rules)
    fast_s, fast_cpu_s, matches = timed(lambda: compiled.evaluate_all(fleet, account, NOW), TICKS)
    naive_s, naive_cpu_s, expected = timed(lambda: naive_tick(rules, fleet, account), BASELINE_TICKS)
    found = {(match.rule.name, match.key) for match in matches}
    if found != expected:
        raise RuntimeError(f"the fast path and the evaluator disagree on {len(found ^ expected)} matches")
    result: dict[str, Any] = {"rules": RULES, "instances": INSTANCES, "samples_per_series": len(
        fleet[0].series["status"].points), "matches": len(matches), "tick_s": fast_s, "tick_cpu_s": fast_cpu_s, "naive_s": naive_s,
        "naive_cpu_s": naive_cpu_s}
    if with_poll:
        from bench.poll_cycle import measure_side

        result["poll_cycle"] = asyncio.run(measure_side("together", POLL_CYCLES, None))
    return result


def median_ms(values: list[float]) -> float:
    return statistics.median(values) * 1000.0


def describe(result: dict[str, Any]) -> list[str]:
    tick, naive = result["tick_s"], result["naive_s"]
    head = (f"{result['rules']} rules x {result['instances']:,} instances, {result['samples_per_series']} samples "
            f"per series, {result['matches']:,} matches per tick")
    compiled = (f"compiled tick   median {median_ms(tick):8.1f} ms wall, {median_ms(result['tick_cpu_s']):.1f} ms "
                f"CPU; max {max(tick) * 1000:.1f} ms (target ≤ {TARGET_MS:g})")
    baseline = (f"naive evaluate  median {median_ms(naive):8.1f} ms wall, {median_ms(result['naive_cpu_s']):.1f} ms "
                "CPU (baseline, same run)")
    lines = [head, compiled, baseline]
    poll = result.get("poll_cycle")
    if poll is not None:
        lines.append(f"one poll cycle  median {median_ms(poll['wall_s']):8.1f} ms wall (1,000 demo instances on 3 "
                     "providers at 50 ms, bench/poll_cycle.py)")
    return lines


def main(argv: list[str]) -> int:
    if argv[:1] == ["--child"]:
        from bench.child import emit

        emit(measure(with_poll=False))
        return 0
    print("\n".join(describe(measure(with_poll="--no-poll" not in argv))))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
