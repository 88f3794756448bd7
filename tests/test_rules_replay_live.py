"""Replay and the live engine agree: one scripted fleet run through the real Hub (polls, metrics, the runner on a
real store) and, recorded poll by poll as a trace, through ``rules replay``; the firings must be the same."""

from __future__ import annotations

import argparse
import dataclasses
import json
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace

import pytest
from rules_support import Machines, rule, rules, session

from computehub_tui.cli.rules_replay import replay_history_command
from computehub_tui.domain.models import Instance, InstanceStatus, MetricSample
from computehub_tui.engine.automation.replay import replay, stored_trace
from computehub_tui.engine.events import RuleFired
from computehub_tui.rules.trace import REQUIRED_COLUMNS, parse_trace
from computehub_tui.store import Store

RULES = rules(
    rule("idle", 'IF gpu_util < 5 FOR 30m AND status == "running" THEN notify telegram'),
    rule("down", 'IF status == "exited" FOR 5m THEN notify email'),
    rule("warm", "IF gpu_temp > 50 AND vram_used_gb >= 1 THEN notify webhook"),
)


def scene(machines: Machines, minute: int) -> None:
    """Busy 10 min, idle 40, no samples for 5 (a provider gap), idle 40, exited 8, then idle again."""
    if minute < 10:
        machines.util["1"] = 80.0
    elif minute < 50 or 55 <= minute < 95 or minute >= 103:
        machines.util["1"] = 0.0
    else:
        machines.util["1"] = None
    status = InstanceStatus.EXITED if 95 <= minute < 103 else InstanceStatus.RUNNING
    if machines.machines["1"].status is not status:
        machines.set("1", status)


async def test_replay_of_a_recorded_fleet_fires_exactly_when_the_live_runner_did(tmp_path: Path) -> None:
    machines = Machines()
    machines.add("1", util=80.0)
    rows = [",".join(REQUIRED_COLUMNS)]
    async with session(tmp_path / "db", machines, RULES) as s:
        for minute in range(140):
            await s.clock.advance(60.0)
            scene(machines, minute)
            await s.poll()
            machine, util = machines.machines["1"], machines.util["1"]
            sampled = machine.status is InstanceStatus.RUNNING and util is not None
            readings = f"{util},1.0,24.0,60.0" if sampled else ",,,"
            rows.append(f"{datetime.fromtimestamp(s.clock.now(), UTC).isoformat()},vast:1,{machine.status.value},"
                        f"{readings},1.0")
        live = sorted((event.at, event.rule, event.target) for event in s.of(RuleFired))
    replayed = await replay(RULES, parse_trace("\n".join(rows) + "\n"))
    assert sorted((f.t, f.rule, f.instance) for f in replayed.firings) == live
    assert {name for _, name, _ in live} == {"idle", "down", "warm"}  # every rule fired at least once


async def test_rules_replay_since_reads_the_hubs_stored_history(tmp_path: Path,
                                                               capsys: pytest.CaptureFixture[str]) -> None:
    # 10 busy minutes, then 50 idle ones, polled by the real Hub into a real store; `rules replay --since 2h`
    # reads that history back: the first idle sample is at minute 11 (the first poll is at +60 s), so the window
    # is all idle at minute 41 and the cooldown holds it until minute 56.
    machines = Machines()
    machines.add("1", util=80.0)
    rules_file = tmp_path / "idle.rules"
    rules_file.write_text('rule "idle": IF gpu_util < 5 FOR 30m AND status == "running" THEN stop\n')
    async with session(tmp_path / "db", machines, rules()) as s:
        start = s.clock.now()
        await s.minutes(60, lambda minute: machines.util.__setitem__("1", 80.0 if minute < 10 else 0.0))
        args = argparse.Namespace(file=rules_file, since=7200.0, json=True, explain=None)
        code = await replay_history_command(args, SimpleNamespace(hub=s.hub))  # type: ignore[arg-type]
        assert s.calls("stop") == []  # nothing was executed
    out = capsys.readouterr().out
    assert code == 0
    assert [(datetime.fromisoformat(item["t"]).timestamp() - start, item["instance"], item["actions"])
            for item in map(json.loads, out.splitlines())] == [(minute * 60, "vast:1", ["stop"]) for minute in (41, 56)]


async def test_a_stored_status_without_samples_holds_between_its_changes(tmp_path: Path) -> None:
    # Sampled once a minute while running (+0 .. +540), stopped at +600 and saved only then (the store keeps the
    # change); one poll a minute saw it stopped since. `status == "stopped" FOR 20m` holds from +600 on every
    # repeated poll: it fires at +1800 and, 15 minutes on, at +2700 (the replay ends at +3000).
    start = 1_790_000_000.0
    store = await Store.open(tmp_path / "db.sqlite")
    try:
        machine = Instance(provider="vast", instance_id="7", status=InstanceStatus.RUNNING, provider_status="running",
                           gpu_count=1, price_hour=0.5, label="trainer", gpu="RTX 4090")
        for minute in range(10):
            await store.save_instances("vast", [machine], start + 60 * minute)
            await store.add_metric_samples([("vast:7", MetricSample(start + 60 * minute, (90.0,), (3.0,), (24.0,)))])
        stopped = dataclasses.replace(machine, status=InstanceStatus.STOPPED, provider_status="stopped")
        await store.save_instances("vast", [stopped], start + 600)
        trace = await stored_trace(store, start - 60, start + 3000, poll_s=5.0)
    finally:
        await store.close()
    assert trace is not None
    result = await replay(rules(rule("parked", 'IF status == "stopped" FOR 20m THEN notify toast')), trace)
    assert [f.t - start for f in result.firings] == [1800.0, 2700.0]
