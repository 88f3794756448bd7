"""The issue's scenarios: the rule runner on a Hub with a real store, a scripted provider and a manual clock.

Each rule is built by hand next to its text in the rule language; at merge these switch to ``parse_rules``.
"""

from __future__ import annotations

from pathlib import Path

from computehub_tui.domain.models import InstanceStatus, LaunchSpec
from computehub_tui.engine.events import RuleFired, RuleNotify
from computehub_tui.store.automation import JOURNAL_DONE
from tests.rules_support import Machines, offer, rule, rules, session

IDLE_STOP = rule("idle-stop", 'rule "idle-stop": IF gpu_util < 5 FOR 30m AND status == "running" THEN stop')


async def test_idle_stop_fires_after_the_window_and_not_one_sample_before(tmp_path: Path) -> None:
    machines = Machines()
    machines.add("1", util=80.0)
    async with session(tmp_path / "db", machines, rules(IDLE_STOP)) as s:
        await s.minutes(5)
        machines.util["1"] = 0.0
        await s.minutes(30)  # idle samples at 0, 1, … 29 minutes: the window is not covered yet
        assert s.calls("stop") == []
        await s.minutes(1)  # the 30th minute of idling
        assert s.calls("stop") == ["1"]
        fired = s.of(RuleFired)
        assert [(f.rule, f.target, f.action, f.ok, f.dry_run) for f in fired] == [
            ("idle-stop", "vast:1", "stop", True, False)]
        assert "gpu_util=0.0% < 5.0% for 30m" in fired[0].evidence and "status=running" in fired[0].evidence


async def test_a_restart_reads_the_window_back_from_the_store(tmp_path: Path) -> None:
    machines = Machines()
    machines.add("1", util=0.0)
    async with session(tmp_path / "db", machines, rules(IDLE_STOP)) as s:
        await s.minutes(20)
    async with session(tmp_path / "db", machines, rules(IDLE_STOP)) as s:  # the daemon restarted
        assert len(s.hub.metric_history("vast:1")) == 20
        await s.minutes(10)
        assert s.calls("stop") == ["1"]  # 30 minutes idle across the restart, not 30 more


async def test_a_training_trace_with_short_zero_dips_is_never_stopped(tmp_path: Path) -> None:
    machines = Machines()
    machines.add("1", util=95.0)
    async with session(tmp_path / "db", machines, rules(IDLE_STOP)) as s:
        # Checkpointing: 0 % for 4 minutes out of every 20, for two hours.
        await s.minutes(120, lambda minute: machines.util.__setitem__("1", 0.0 if minute % 20 < 4 else 95.0))
        assert s.calls("stop") == []


async def test_zero_use_with_vram_held_is_reported_and_stopped_only_if_the_rule_says_so(tmp_path: Path) -> None:
    report = rule("idle-vram", 'IF gpu_util < 5 FOR 30m THEN notify toast "idle, VRAM held"')
    careful = rule("careful-stop", "IF gpu_util < 5 FOR 30m AND vram_used_pct < 10 THEN stop")
    machines = Machines()
    machines.add("1", util=0.0)
    machines.vram_used["1"] = 20.0  # of 24 GB: a model is loaded
    async with session(tmp_path / "db", machines, rules(report, careful)) as s:
        await s.minutes(40)
        assert s.calls("stop") == []
        notes = [n for n in s.of(RuleNotify) if n.channel == "toast"]
        assert [(n.rule, n.target) for n in notes] == [("idle-vram", "vast:1")]
    machines = Machines()
    machines.add("1", util=0.0)
    machines.vram_used["1"] = 20.0
    async with session(tmp_path / "db2", machines, rules(IDLE_STOP)) as s:
        await s.minutes(31)
        assert s.calls("stop") == ["1"]  # this rule does not care about VRAM


async def test_a_data_gap_never_counts_as_idle(tmp_path: Path) -> None:
    machines = Machines()
    machines.add("1", util=0.0)
    async with session(tmp_path / "db", machines, rules(IDLE_STOP)) as s:
        await s.minutes(10)
        machines.util["1"] = None  # ten minutes without samples
        await s.minutes(10)
        machines.util["1"] = 0.0
        await s.minutes(15)  # 35 minutes since the first idle sample, but the gap restarted the window
        assert s.calls("stop") == []
        await s.minutes(15)
        assert s.calls("stop") == ["1"]


async def test_a_crash_gets_exactly_one_restart_within_the_cooldown(tmp_path: Path) -> None:
    crash = rule("crash-restart", 'IF status == "exited" THEN restart')
    machines = Machines()
    machines.add("1")
    async with session(tmp_path / "db", machines, rules(crash)) as s:
        await s.minutes(2)
        machines.set("1", InstanceStatus.EXITED)
        await s.minutes(1)
        assert s.calls("restart") == ["1"]
        for _ in range(3):  # it keeps crashing: no second restart inside the 15 minutes
            machines.set("1", InstanceStatus.EXITED)
            await s.minutes(3)
        assert s.calls("restart") == ["1"]
        await s.minutes(7)
        assert s.calls("restart") == ["1", "1"]  # the cooldown (15 minutes from the first restart) is over


async def test_a_spend_cap_stops_everything_within_one_poll_of_crossing(tmp_path: Path, utc: None) -> None:
    cap = rule("daily-cap", 'IF spend_today > 50 THEN stop_all; notify email "daily cap hit: {spend_today}"')
    machines = Machines()
    for n in range(4):
        machines.add(str(n), price=25.0)  # $100/h together: $50 after 30 minutes
    async with session(tmp_path / "db", machines, rules(cap)) as s:
        await s.poll()
        await s.minutes(30)
        assert s.hub.spend_today() <= 50.0 + 1e-9
        assert s.calls("stop") == []
        await s.minutes(1)
        assert s.hub.spend_today() > 50.0
        assert sorted(s.calls("stop")) == ["0", "1", "2", "3"]


async def test_stuck_provisioning_is_relaunched_on_a_different_host(tmp_path: Path) -> None:
    stuck = rule("stuck", 'IF status == "provisioning" FOR 20m THEN relaunch')
    machines = Machines()
    machines.offers = [offer("a", 0.40, machine_id=7), offer("same-host", 0.35, machine_id=7),
                       offer("other-host", 0.45, machine_id=8)]
    async with session(tmp_path / "db", machines, rules(stuck)) as s:
        await s.poll()
        key = await s.hub.launch(machines.offers[0], LaunchSpec(image="pytorch/pytorch", label="train"),
                                 refresh=False)
        await s.minutes(19)
        assert [c for c in machines.calls if c[0] == "launch"] == [("launch", "a")]
        await s.minutes(2)
        assert [c for c in machines.calls if c[0] == "launch"] == [("launch", "a"), ("launch", "other-host")]
        assert s.calls("destroy") == [key.partition(":")[2]]
        relaunched = [i for i in machines.machines.values() if i.label == "train"]
        assert len(relaunched) == 1 and relaunched[0].image == "pytorch/pytorch"


async def test_migrate_keeps_the_old_instance_when_the_new_one_fails(tmp_path: Path) -> None:
    move = rule("cheaper", 'IF cost_per_hour > $2.0 AND gpu ~ "RTX*" THEN migrate(provider="vast", max_price=1.8)')
    machines = Machines()
    machines.offers = [offer("dear", 3.0, machine_id=1), offer("cheap", 1.5, machine_id=2)]
    async with session(tmp_path / "db", machines, rules(move)) as s:
        await s.poll()
        old = await s.hub.launch(machines.offers[0], LaunchSpec(image="vllm/vllm"), refresh=False)
        machines.set(old.partition(":")[2], InstanceStatus.RUNNING)
        machines.launch_status = InstanceStatus.ERROR  # the replacement will not come up
        await s.minutes(1)
        await s.minutes(2)  # the migration polls the replacement and gives up on it
        launched = [c for c in machines.calls if c[0] == "launch"]
        assert launched == [("launch", "dear"), ("launch", "cheap")]
        replacement = next(i for i in machines.calls if i[0] == "destroy")
        assert replacement[1] != old.partition(":")[2]
        assert old.partition(":")[2] in machines.machines  # the old one is kept
        alerts = [n.message for n in s.of(RuleNotify) if n.channel == "alert"]
        assert any("did not start running" in a and "kept" in a for a in alerts)


async def test_the_fleet_share_guard_holds_back_a_rule_that_matches_everything(tmp_path: Path) -> None:
    everything = rule("oops", 'IF status == "running" THEN stop')
    machines = Machines()
    for n in range(5):
        machines.add(str(n))
    async with session(tmp_path / "db", machines, rules(everything)) as s:
        await s.minutes(3)
        assert s.calls("stop") == []
        alerts = [n.message for n in s.of(RuleNotify) if n.channel == "alert"]
        assert len(alerts) == 1 and "5 of 5 instances" in alerts[0]
    machines = Machines()
    for n in range(5):
        machines.add(str(n), status=InstanceStatus.RUNNING if n < 2 else InstanceStatus.STOPPED)
    async with session(tmp_path / "db2", machines, rules(everything)) as s:
        await s.minutes(1)
        assert sorted(s.calls("stop")) == ["0", "1"]  # two instances: the guard lets it act


async def test_every_firing_is_in_the_journal_and_the_audit_log(tmp_path: Path) -> None:
    machines = Machines()
    machines.add("1", util=0.0)
    async with session(tmp_path / "db", machines, rules(IDLE_STOP)) as s:
        await s.minutes(31)
        journal = await s.hub.rules.recent_firings()
        assert [(j.rule, j.target, j.action, j.state, j.attempts) for j in journal] == [
            ("idle-stop", "vast:1", "stop", JOURNAL_DONE, 1)]
        audit = await s.hub.rules.audit()
        fired = [a for a in audit if a.action == "fired stop"]
        assert len(fired) == 1 and fired[0].actor == "rule:idle-stop" and fired[0].target == "vast:1"
        assert "gpu_util=0.0% < 5.0% for " in fired[0].detail and fired[0].outcome == "ok"
        listing = s.hub.rules.listing()
        assert [(r.name, r.fire_count) for r in listing] == [("idle-stop", 1)]


async def test_a_restart_keeps_the_provisioning_window_from_the_store(tmp_path: Path) -> None:
    stuck = rule("stuck", 'IF status == "provisioning" FOR 20m THEN relaunch')
    machines = Machines()
    machines.offers = [offer("a", 0.40, machine_id=7), offer("other-host", 0.45, machine_id=8)]
    async with session(tmp_path / "db", machines, rules(stuck)) as s:
        await s.poll()
        await s.hub.launch(machines.offers[0], LaunchSpec(image="pytorch/pytorch", label="train"), refresh=False)
        await s.minutes(15)
    async with session(tmp_path / "db", machines, rules(stuck)) as s:  # the daemon restarted at minute 15
        await s.minutes(4)
        assert [c for c in machines.calls if c[0] == "launch"] == [("launch", "a")]
        await s.minutes(2)  # minute 21: provisioning for 20 minutes across the restart, not 20 more
        assert [c for c in machines.calls if c[0] == "launch"] == [("launch", "a"), ("launch", "other-host")]


async def test_samples_spaced_by_gaps_in_the_engines_own_polling_never_hold_a_window(tmp_path: Path) -> None:
    # The engine polls every minute, but for a while it ran only now and then (a daemon restarted over and over):
    # idle samples 5 minutes apart. Their gaps are longer than three poll intervals, so none of them may hold a
    # 3-minute window, although 5 minutes is the only gap the history shows.
    machines = Machines()
    machines.add("1", util=0.0)
    short = rule("short-idle", 'rule "short-idle": IF gpu_util < 5 FOR 3m THEN stop')
    async with session(tmp_path / "db", machines, rules(short)) as s:
        for _ in range(8):
            await s.clock.advance(5 * 60)
            await s.poll()
        assert s.calls("stop") == []
        await s.minutes(3)  # polled every minute again: the window fills from the first of these polls
        assert s.calls("stop") == ["1"]
