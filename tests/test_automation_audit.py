"""One audit row per rule firing: rule, instance, the values that made it true, action, result and time."""

from __future__ import annotations

from pathlib import Path

from computehub_tui.domain.models import InstanceStatus, LaunchSpec
from computehub_tui.providers.base import UnavailableError
from tests.rules_support import Machines, offer, rule, rules, session
from tests.waiting import until

IDLE_STOP = rule("idle-stop", 'IF gpu_util < 5 FOR 30m AND status == "running" THEN stop; notify telegram "idle"')


async def test_a_stop_and_a_notify_are_one_audit_row_each(tmp_path: Path) -> None:
    machines = Machines()
    machines.add("1", util=0.0)
    async with session(tmp_path / "db", machines, rules(IDLE_STOP)) as s:
        await s.minutes(31)
        assert s.calls("stop") == ["1"]
        rows = await s.hub.store.audit_log()
        assert sorted((r.actor, r.action, r.target, r.outcome) for r in rows) == [
            ("rule:idle-stop", "fired notify telegram", "vast:1", "ok"),
            ("rule:idle-stop", "fired stop", "vast:1", "ok")]
        stop = next(r for r in rows if r.action == "fired stop")
        assert "gpu_util=0.0% < 5.0% for " in stop.detail and "stop vast:1: done" in stop.detail
        [firing] = [j for j in await s.hub.rules.recent_firings() if j.action == "stop"]
        assert stop.at == firing.last_attempt_at


async def test_a_migration_is_one_row_not_a_launch_and_a_destroy_besides(tmp_path: Path) -> None:
    move = rule("cheaper", "IF cost_per_hour > $2.0 THEN migrate(max_price=1.8)")
    machines = Machines()
    machines.offers = [offer("dear", 3.0, machine_id=1), offer("cheap", 1.5, machine_id=2)]
    async with session(tmp_path / "db", machines, rules(move)) as s:
        await s.poll()
        old = (await s.hub.launch(machines.offers[0], LaunchSpec(image="vllm/vllm"), refresh=False)).partition(":")[2]
        machines.set(old, InstanceStatus.RUNNING)
        await s.minutes(1)
        await until(lambda: len(machines.machines) == 2)
        [new] = [i for i in machines.machines if i != old]
        machines.set(new, InstanceStatus.RUNNING)
        await s.minutes(2)
        assert s.calls("destroy") == [old]
        rows = [r for r in await s.hub.store.audit_log() if r.actor.startswith("rule:")]
        assert [(r.action, r.target, r.outcome) for r in rows] == [("fired migrate", f"vast:{old}", "ok")]
        assert f"migrated vast:{old} to vast:{new}" in rows[0].detail


async def test_a_held_failure_is_one_row_per_attempt_and_no_extra_alert_row(tmp_path: Path) -> None:
    stop = rule("stop-running", 'IF status == "running" THEN stop')
    machines = Machines()
    machines.add("1")
    machines.fail["stop"] = UnavailableError("vast", "502 from the API")
    async with session(tmp_path / "db", machines, rules(stop), max_retries=0) as s:
        await s.poll()
        rows = await s.hub.store.audit_log()
        assert [(r.action, r.outcome) for r in rows] == [("fired stop", "held")]
        assert "502 from the API" in rows[0].detail
