"""`python -m bench.rules_eval [--no-poll]`: 100 rules x 1,000 instances evaluated per tick by the compiled fast
path, beside the naive evaluator (each rule on each instance) and one poll cycle, measured in the same run."""

from __future__ import annotations

import asyncio
import math
import random
import statistics
import sys
import time
from bisect import bisect_left, bisect_right
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from computehub_tui.rules.compiled import CompiledRules, Match, compile_rules
from computehub_tui.rules.evaluate import evaluate
from computehub_tui.rules.model import AccountFacts, InstanceFacts, RuleSet, Series, Truth, Value
from computehub_tui.rules.parser import parse_rules

RULES = 100
INSTANCES = 1_000
INTERVAL_S = 5.0
"""The poll interval: one sample per instance and field every 5 s, a little late or early each time."""
JITTER_S = 0.05
UPTIME_S = (1800.0, 3600.0)
"""Each instance has run for 30 to 60 minutes: its series hold that much."""
LONGEST_WINDOW_S = 3600.0
"""The longest FOR window of the rules; metric series are cut as the facts builder cuts them (window + 4 samples)."""
TICKS = 40
"""Consecutive ticks, one poll apart: each sees one new sample per series, in facts built anew (as the runner's)."""
BASELINE_TICKS = 3
"""The last ticks, also judged by the naive evaluator; the run fails if the two find different matches."""
POLL_CYCLES = 3
TARGET_MS = 50.0
NOW = 1_800_000_000.0
"""The first tick; the history runs up to it and TICKS - 1 polls past it."""
WINDOWS = ("5m", "10m", "15m", "20m", "30m", "45m", "1h")
PROVIDERS = ("vast", "runpod", "lambda", "tensordock")
METRICS = ("gpu_util", "gpu_util_avg", "vram_used_pct", "gpu_temp")


def rule_text(rng: random.Random) -> str:
    """100 rules after the recipes, thresholds and windows varied as users would vary them."""
    def window() -> str:
        return rng.choice(WINDOWS)

    def idle() -> str:
        return f"gpu_util < {rng.choice((2, 3, 5, 8, 10))} FOR {window()}"

    makers: list[tuple[int, Callable[[], str]]] = [
        (28, lambda: f'IF {idle()} AND status == "running" THEN WARN 5m stop; notify toast'),
        (10, lambda: f'IF {idle()} AND vram_used_pct < {rng.choice((5, 10, 20))} FOR {window()} AND status == '
                     '"running" THEN stop'),
        (6, lambda: f'IF {idle()} AND vram_used_pct >= {rng.choice((50, 80))} FOR {window()} THEN notify telegram'),
        (6, lambda: f'IF gpu_util_avg < {rng.choice((5, 10, 15))} FOR {window()} AND label != "keep" THEN '
                    "notify toast"),
        (8, lambda: f'IF status == "exited" AND pricing == "on-demand" AND provider == "{rng.choice(PROVIDERS)}" '
                    "THEN restart"),
        (8, lambda: f'IF status == "provisioning" FOR {rng.choice(("5m", "10m", "15m", "20m"))} THEN relaunch'),
        (8, lambda: f'IF status in ["exited", "stopped"] AND pricing == "interruptible" AND gpu ~ '
                    f'"{rng.choice(("*A100*", "*H100*", "RTX*", "*4090"))}" THEN relaunch'),
        (8, lambda: f'IF price_change_24h > {rng.choice((10, 20, 30))}% AND gpu ~ "*A100*" AND cost_per_hour > '
                    f'${rng.choice((1.0, 1.5, 2.0))} AND provider not in ["lambda"] THEN migrate(provider="runpod", '
                    "max_price=1.8)"),
        (6, lambda: f'IF spend_today > ${rng.choice((50, 100, 200))} THEN stop_all; notify email '
                    '"daily cap hit: {spend_today}"'),
        (4, lambda: f"IF spend_today > ${rng.choice((50, 100))} AND cost_per_hour > ${rng.choice((1.0, 2.0))} AND "
                    f'(gpu_util < 20 FOR {window()} or status == "provisioning") THEN stop'),
        (8, lambda: f"IF gpu_temp > {rng.choice((80, 85, 90))} FOR {window()} THEN notify webhook"),
    ]
    rules = [make() for count, make in makers for _ in range(count)]
    return "\n".join(f'rule "bench-{n}": {rule}' for n, rule in enumerate(rules))


@dataclass
class Machine:
    """One instance's whole timeline (oldest first, up to the last tick); each tick sees it up to that tick."""

    key: str
    values: dict[str, Value]
    times: list[float]
    metrics: dict[str, list[tuple[float, Value]]]
    statuses: list[tuple[float, Value]]


def machine(rng: random.Random, n: int, end: float) -> Machine:
    """Busy with checkpoint dips (65 %), idle since a while (15 %, some holding VRAM), gappy, exited,
    provisioning (no metrics yet), or on a provider that went down (unknown samples at the end)."""
    kind = rng.choices(("busy", "idle", "gappy", "exited", "provisioning", "down"), weights=(65, 15, 5, 6, 6, 3))[0]
    provider = PROVIDERS[n % len(PROVIDERS)]
    phase = PROVIDERS.index(provider) * 1.25
    started = NOW - rng.uniform(*UPTIME_S)
    idle_since = rng.uniform(started, NOW)
    stops_at = rng.uniform(started + 600.0, NOW) if kind == "exited" else math.inf
    down_since = NOW - rng.uniform(30.0, 300.0) if kind == "down" else math.inf
    holds_vram = rng.random() < 0.5
    dip_phase = rng.randrange(10)
    gaps = [(at, at + rng.uniform(120.0, 420.0)) for at in (rng.uniform(started, NOW) for _ in range(3))]
    times = [at + rng.uniform(-JITTER_S, JITTER_S)
             for at in (math.floor(started / INTERVAL_S) * INTERVAL_S + phase + INTERVAL_S * k
                        for k in range(int((end - started) // INTERVAL_S) + 1)) if at <= end]
    metrics: dict[str, list[tuple[float, Value]]] = {name: [] for name in METRICS}
    statuses: list[tuple[float, Value]] = []
    for at in times:
        status = "exited" if at >= stops_at else "provisioning" if kind == "provisioning" else "running"
        statuses.append((at, status))
        if status != "running" or (kind == "gappy" and any(lo <= at < hi for lo, hi in gaps)):
            continue
        if kind == "idle" and at >= idle_since:
            util = rng.choice((0.0, 0.0, 1.0, 3.0))
            vram = rng.uniform(85.0, 95.0) if holds_vram else rng.uniform(1.0, 4.0)
        elif int(at // 60) % 10 == dip_phase:  # a one-minute checkpoint dip every ten minutes
            util, vram = 0.0, rng.uniform(60.0, 95.0)
        else:
            util, vram = rng.uniform(55.0, 100.0), rng.uniform(40.0, 95.0)
        sample: dict[str, Value] = {"gpu_util": util, "gpu_util_avg": util * rng.uniform(0.6, 1.0),
                                    "vram_used_pct": vram, "gpu_temp": 38.0 + 0.5 * util + rng.uniform(-3.0, 3.0)}
        for name, value in sample.items():
            unknown = at >= down_since or rng.random() < 0.003
            metrics[name].append((at, None if unknown else value))
    gpu = rng.choice(("A100 SXM4 80GB", "H100 SXM", "RTX 4090", "RTX A6000"))
    values: dict[str, Value] = {
        "provider": provider, "gpu": gpu, "pricing": rng.choice(("on-demand", "interruptible")),
        "label": rng.choice(("keep", "train", "sweep-3", "")), "cost_per_hour": rng.choice((0.4, 1.2, 2.2)),
        "price_change_24h": rng.choice((0.0, 5.0, 25.0, 40.0))}
    return Machine(f"{provider}:{n}", values, times, metrics, statuses)


def _time(point: tuple[float, Value]) -> float:
    return point[0]


def sample_interval(times: Sequence[float]) -> float:
    """As the facts builder estimates it: the lower quartile of the last 20 gaps (so it moves a little every tick)."""
    gaps = sorted(later - earlier for earlier, later in zip(times[-21:], times[-20:], strict=False) if later > earlier)
    return gaps[(len(gaps) - 1) // 4] if gaps else INTERVAL_S


def facts_at(fleet: Sequence[Machine], now: float) -> list[InstanceFacts]:
    """Every instance's facts as the runner's facts builder gives them at ``now``: new tuples every tick, metric
    series from the longest window (and four samples more) on, the observed statuses whole."""
    facts = []
    for one in fleet:
        newest = bisect_right(one.times, now)
        interval = sample_interval(one.times[max(0, newest - 21):newest])
        series: dict[str, Series] = {}
        values = dict(one.values)
        for name, points in one.metrics.items():
            end = bisect_right(points, now, key=_time)
            start = bisect_left(points, now - LONGEST_WINDOW_S - 4 * interval, hi=end, key=_time)
            series[name] = Series(tuple(points[start:end]), interval)
            recent = end > 0 and now - points[end - 1][0] <= 2 * INTERVAL_S
            values[name] = points[end - 1][1] if recent else None
        statuses = one.statuses[:newest]
        series["status"] = Series(tuple(statuses), INTERVAL_S)
        values["status"] = statuses[-1][1] if statuses else None
        facts.append(InstanceFacts(one.key, values, series))
    return facts


def fixture(seed: int = 11) -> tuple[RuleSet, list[Machine], AccountFacts]:
    rng = random.Random(seed)
    rules = parse_rules(rule_text(rng))
    if not rules.ok or len(rules.rules) != RULES:
        raise RuntimeError("the bench rules do not parse: " + "; ".join(e.render() for e in rules.errors[:3]))
    end = NOW + (TICKS - 1) * INTERVAL_S
    return rules, [machine(rng, n, end) for n in range(INSTANCES)], AccountFacts({"spend_today": 120.0})


def naive_tick(rules: RuleSet, fleet: list[InstanceFacts], account: AccountFacts,
               now: float) -> set[tuple[str, str | None]]:
    """The baseline: ``evaluate`` for every rule on every instance (account rules once)."""
    found = set()
    for rule in rules.rules:
        for facts in ([None] if rule.account_scope else fleet):
            if evaluate(rule.condition, facts, account, now).truth is Truth.TRUE:
                found.add((rule.name, None if facts is None else facts.key))
    return found


def timed(run: Callable[[], Any]) -> tuple[float, float, Any]:
    """Wall and process CPU seconds of one call, and its result."""
    wall, cpu = time.perf_counter(), time.process_time()
    result = run()
    return time.perf_counter() - wall, time.process_time() - cpu, result


def run_ticks(compiled: CompiledRules, rules: RuleSet, machines: list[Machine],
              account: AccountFacts) -> dict[str, Any]:
    """TICKS consecutive ticks on one compiled rule set (as the runner keeps it); the first is the cold one."""
    walls, cpus, naive_walls, naive_cpus, matches = [], [], [], [], []
    for tick in range(TICKS):
        now = NOW + tick * INTERVAL_S
        fleet = facts_at(machines, now)
        wall, cpu, found = timed(lambda: compiled.evaluate_all(fleet, account, now))  # noqa: B023
        walls.append(wall)
        cpus.append(cpu)
        matches.append(len(found))
        if tick >= TICKS - BASELINE_TICKS:
            naive_wall, naive_cpu, expected = timed(lambda: naive_tick(rules, fleet, account, now))  # noqa: B023
            naive_walls.append(naive_wall)
            naive_cpus.append(naive_cpu)
            check(found, expected, now)
    return {"cold_tick_s": walls[0], "tick_s": walls[1:], "tick_cpu_s": cpus[1:], "naive_s": naive_walls,
            "naive_cpu_s": naive_cpus, "matches": statistics.median(matches)}


def check(found: list[Match], expected: set[tuple[str, str | None]], now: float) -> None:
    got = {(match.rule.name, match.key) for match in found}
    if got != expected:
        raise RuntimeError(f"at {now}: the fast path and the evaluator disagree on {len(got ^ expected)} matches")


def measure(with_poll: bool) -> dict[str, Any]:
    rules, machines, account = fixture()
    result: dict[str, Any] = {"rules": RULES, "instances": INSTANCES, "interval_s": INTERVAL_S,
                              "samples_per_series": statistics.median(len(one.times) for one in machines),
                              **run_ticks(compile_rules(rules), rules, machines, account)}
    if with_poll:
        from bench.poll_cycle import measure_side

        result["poll_cycle"] = asyncio.run(measure_side("together", POLL_CYCLES, None))
    return result


def median_ms(values: list[float]) -> float:
    return statistics.median(values) * 1000.0


def describe(result: dict[str, Any]) -> list[str]:
    tick, naive = result["tick_s"], result["naive_s"]
    head = (f"{result['rules']} rules x {result['instances']:,} instances, samples every {result['interval_s']:g} s "
            f"(median {result['samples_per_series']:g} per instance), {result['matches']:,.0f} matches per tick")
    compiled = (f"compiled tick   median {median_ms(tick):8.1f} ms wall, {median_ms(result['tick_cpu_s']):.1f} ms "
                f"CPU; max {max(tick) * 1000:.1f} ms over {len(tick)} ticks one poll apart (target ≤ {TARGET_MS:g})")
    cold = f"first tick      {result['cold_tick_s'] * 1000:8.1f} ms wall (after start-up or a rule file change)"
    baseline = (f"naive evaluate  median {median_ms(naive):8.1f} ms wall, {median_ms(result['naive_cpu_s']):.1f} ms "
                "CPU (baseline, same run, same facts)")
    lines = [head, compiled, cold, baseline]
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
