"""How long `rules replay` takes over a day of 10-second polls of 10 machines, against the same replay that also
builds every field no rule reads (how replay built its facts before), measured in the same run.

    python -m bench.replay_speed [--hours 24] [--machines 10] [--runs 3]
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import time
from unittest import mock

from computehub_tui.engine.automation import replay as replay_module
from computehub_tui.rules.parser import parse_rules
from computehub_tui.rules.trace import Trace, parse_trace

RULES = """rule "idle-stop": IF gpu_util < 5 FOR 30m AND status == "running" THEN stop; notify telegram
rule "hot": IF gpu_temp > 85 FOR 5m THEN notify webhook
rule "cap": IF spend_today > 50 THEN stop_all
"""
HEADER = "t,instance,status,gpu_util,vram_used_gb,vram_total_gb,gpu_temp,cost_per_hour"
POLL_S = 10


def fleet_trace(machines: int, hours: float, seed: int = 1) -> Trace:
    """Machine ``i`` trains (90-100 %) for ``2 (i + 1)`` hours, then idles at 0 %."""
    rnd = random.Random(seed)
    lines = [HEADER]
    for t in range(0, int(hours * 3600), POLL_S):
        for i in range(machines):
            util = 0 if t > 7200 * (i + 1) else 90 + rnd.random() * 10
            lines.append(f"{t},box-{i},running,{util:.0f},30,40,{60 + rnd.random() * 10:.0f},1.1")
    return parse_trace("\n".join(lines))


async def timed(trace: Trace, *, every_field: bool) -> tuple[float, int]:
    rules = parse_rules(RULES)
    started = time.perf_counter()
    if every_field:
        original = replay_module.TraceFacts.__init__

        def building_all(self: replay_module.TraceFacts, *args: object, **kwargs: object) -> None:
            original(self, *args, **{**kwargs, "reads_idle_for": True})  # type: ignore[arg-type]

        with mock.patch.object(replay_module.TraceFacts, "__init__", building_all):
            result = await replay_module.replay(rules, trace)
    else:
        result = await replay_module.replay(rules, trace)
    return time.perf_counter() - started, len(result.firings)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hours", type=float, default=24.0)
    parser.add_argument("--machines", type=int, default=10)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    trace = fleet_trace(args.machines, args.hours)
    ticks = len(trace.times)
    ours, baseline = [], []
    for _ in range(args.runs):  # interleaved, so load on the machine falls on both alike
        seconds, fired = asyncio.run(timed(trace, every_field=False))
        ours.append(seconds)
        seconds, fired_baseline = asyncio.run(timed(trace, every_field=True))
        baseline.append(seconds)
        if fired != fired_baseline:
            raise SystemExit(f"the two replays disagree: {fired} firings against {fired_baseline}")
    print(f"{args.machines} machines, {args.hours:g} h of {POLL_S} s polls: {ticks:,} ticks, {fired} firings")
    for name, runs in (("replay", ours), ("baseline (every field built)", baseline)):
        median = statistics.median(runs)
        print(f"  {name:<30} median {median:6.2f} s  ({median / ticks * 1000:.2f} ms/tick; runs "
              f"{', '.join(f'{r:.2f}' for r in runs)})")


if __name__ == "__main__":
    main()
