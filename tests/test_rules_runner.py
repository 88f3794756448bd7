"""The rule runner's safety rules and the ``hub.rules`` service API, on a Hub with a real store and a manual clock."""

from __future__ import annotations

from pathlib import Path

from computehub_tui.domain.models import InstanceStatus, LaunchSpec
from computehub_tui.engine.events import (
    AutomationPaused,
    AutomationResumed,
    RuleFired,
    RuleNotify,
    RuleWarningPending,
)
from computehub_tui.providers.base import UnavailableError
from computehub_tui.rules.model import Mode, Position, RuleError, RuleSet, Truth
from computehub_tui.store import Store
from computehub_tui.store.automation import JOURNAL_DONE, JOURNAL_DRY_RUN, JOURNAL_FAILED, JOURNAL_HELD
from tests.rules_support import MINUTE, Machines, offer, rule, rules, session
from tests.waiting import until

STOP_RUNNING = rule("stop-running", 'IF status == "running" THEN stop')
DESTROY_EXITED = rule("destroy-exited", 'IF status == "exited" THEN destroy')


def alerts(s: object) -> list[str]:
    return [n.message for n in s.of(RuleNotify) if n.channel == "alert"]  # type: ignore[attr-defined]


async def test_a_failed_action_is_retried_three_times_with_backoff_then_held_with_an_alert(tmp_path: Path) -> None:
    machines = Machines()
    machines.add("1")
    machines.fail["stop"] = UnavailableError("vast", "502 from the API")
    async with session(tmp_path / "db", machines, rules(STOP_RUNNING)) as s:
        await s.poll()
        assert s.calls("stop") == ["1"]
        await s.minutes(1)  # the first retry waits 30 s: due now
        assert s.calls("stop") == ["1", "1"]
        await s.minutes(1)  # the second waits 60 s
        assert s.calls("stop") == ["1"] * 3
        await s.minutes(1)  # the third waits 120 s: not yet
        assert s.calls("stop") == ["1"] * 3
        await s.minutes(1)
        assert s.calls("stop") == ["1"] * 4
        [entry] = await s.hub.rules.recent_firings()
        assert entry.state == JOURNAL_HELD and entry.attempts == 4
        assert any("failed after 4 tries" in a and "held until its cooldown ends" in a for a in alerts(s))
        await s.minutes(10)  # held: nothing more inside the 15-minute cooldown
        assert len(s.calls("stop")) == 4
        await s.minutes(1)  # 15 minutes after the first attempt: a new cooldown window, a new firing
        assert len(s.calls("stop")) == 5


async def test_the_destructive_cap_pauses_automation_and_alerts(tmp_path: Path) -> None:
    machines = Machines()
    for n in range(5):
        machines.add(str(n), status=InstanceStatus.EXITED)
    async with session(tmp_path / "db", machines, rules(DESTROY_EXITED), destructive_per_hour=3,
                       fleet_share=1.0) as s:
        await s.poll()
        assert len(s.calls("destroy")) == 3
        assert s.hub.rules.paused and "cap of 3" in s.hub.rules.pause_reason
        assert [e.reason for e in s.of(AutomationPaused)] == [s.hub.rules.pause_reason]
        assert any("automation paused itself" in a for a in alerts(s))
        await s.minutes(2)
        assert len(s.calls("destroy")) == 3
    async with await Store.open(tmp_path / "db") as store:  # the pause is in the store for every process
        assert await store.flag("automation.paused") is not None


async def test_a_down_or_stale_provider_never_triggers_destroy(tmp_path: Path) -> None:
    machines = Machines()
    machines.add("1", status=InstanceStatus.EXITED)
    async with session(tmp_path / "db", machines, rules(DESTROY_EXITED)) as s:
        await s.hub.rules.set_enabled("destroy-exited", False)
        await s.poll()
        machines.fail["list"] = UnavailableError("vast", "down")
        await s.minutes(3)  # the provider is down: its last good data (it says "exited") is stale
        await s.hub.rules.set_enabled("destroy-exited", True)
        report = await s.hub.rules.tick()
        assert s.calls("destroy") == []
        assert any("down or stale" in held for held in report.held)
        del machines.fail["list"]
        await s.poll()  # it answers again: fresh
        assert s.calls("destroy") == ["1"]


async def test_dry_run_logs_and_alerts_what_it_would_do_and_does_nothing(tmp_path: Path) -> None:
    machines = Machines()
    machines.add("1")
    async with session(tmp_path / "db", machines, rules(STOP_RUNNING), dry_run=True) as s:
        await s.minutes(3)
        assert s.calls("stop") == []
        [fired] = s.of(RuleFired)
        assert fired.dry_run and "would stop vast:1" in fired.result
        assert any("dry-run: rule stop-running would stop vast:1" in a for a in alerts(s))
        [entry] = await s.hub.rules.recent_firings()
        assert entry.state == JOURNAL_DRY_RUN and entry.dry_run
        audit = [a for a in await s.hub.rules.audit() if a.action == "fired stop"]
        assert [a.outcome for a in audit] == ["dry-run"]
        await s.hub.rules.set_mode("stop-running", Mode.LIVE)  # the user's choice beats the default
        await s.minutes(15)
        assert s.calls("stop") == ["1"]


async def test_pause_and_resume_are_kept_in_the_store(tmp_path: Path) -> None:
    machines = Machines()
    machines.add("1")
    async with session(tmp_path / "db", machines, rules(STOP_RUNNING)) as s:
        await s.hub.rules.pause()
        await s.poll()
        assert s.calls("stop") == []
    async with session(tmp_path / "db", machines, rules(STOP_RUNNING)) as s:  # a new process
        assert s.hub.rules.paused
        await s.poll()
        assert s.calls("stop") == []
        await s.hub.rules.resume()
        assert len(s.of(AutomationResumed)) == 1
        await s.poll()
        assert s.calls("stop") == ["1"]


async def test_a_pause_or_a_switch_set_by_another_process_is_seen_at_the_next_tick(tmp_path: Path) -> None:
    machines = Machines()
    machines.add("1")
    machines.add("2")
    async with session(tmp_path / "db", machines, rules(STOP_RUNNING)) as daemon:
        async with await Store.open(tmp_path / "db") as cli:  # `computehub-tui rules pause`, another process
            await cli.set_flag("automation.paused", "paused by the user", daemon.clock.now())
        await daemon.poll()
        assert daemon.calls("stop") == [] and daemon.hub.rules.paused
        assert [e.reason for e in daemon.of(AutomationPaused)] == ["paused by the user"]
        async with await Store.open(tmp_path / "db") as cli:  # `rules disable stop-running`, then `rules resume`
            await cli.set_rule_switches("stop-running", enabled=False)
            await cli.set_flag("automation.paused", None, daemon.clock.now())
        await daemon.poll()
        assert daemon.calls("stop") == [] and not daemon.hub.rules.paused
        assert len(daemon.of(AutomationResumed)) == 1


async def test_switches_are_kept_by_rule_name(tmp_path: Path) -> None:
    machines = Machines()
    machines.add("1")
    async with session(tmp_path / "db", machines, rules(STOP_RUNNING)) as s:
        await s.hub.rules.set_enabled("stop-running", False)
        await s.poll()
    async with session(tmp_path / "db", machines, rules(STOP_RUNNING)) as s:
        [listed] = s.hub.rules.listing()
        assert (listed.name, listed.enabled, listed.mode, listed.fire_count) == ("stop-running", False, Mode.LIVE, 0)
        await s.poll()
        assert s.calls("stop") == []
        await s.hub.rules.set_enabled("stop-running", True)
        await s.poll()
        assert s.calls("stop") == ["1"]
        assert s.hub.rules.listing()[0].fire_count == 1


async def test_warn_notifies_first_and_acts_only_if_the_condition_still_holds(tmp_path: Path) -> None:
    warned = rule("warned-stop", 'IF status == "running" THEN WARN 5m stop')
    machines = Machines()
    machines.add("1")
    machines.add("2")
    async with session(tmp_path / "db", machines, rules(warned)) as s:
        await s.poll()
        pending = s.hub.rules.pending_warnings()
        assert [(w.target, w.action) for w in pending] == [("vast:1", "stop"), ("vast:2", "stop")]
        assert len(s.of(RuleWarningPending)) == 2 and s.calls("stop") == []
        machines.set("2", InstanceStatus.STOPPED)  # the user stopped it: the condition no longer holds
        await s.minutes(5)
        assert s.calls("stop") == ["1"]
        assert s.hub.rules.pending_warnings() == []


async def test_a_warning_can_be_snoozed_or_cancelled(tmp_path: Path) -> None:
    warned = rule("warned-stop", 'IF status == "running" THEN WARN 5m stop')
    machines = Machines()
    machines.add("1")
    machines.add("2")
    async with session(tmp_path / "db", machines, rules(warned)) as s:
        await s.poll()
        first, second = s.hub.rules.pending_warnings()
        assert await s.hub.rules.snooze(first.warning_id, 10 * MINUTE) is not None
        assert await s.hub.rules.cancel(second.warning_id)
        await s.minutes(6)
        assert s.calls("stop") == []
        assert [w.target for w in s.hub.rules.pending_warnings()] == ["vast:1"]
        await s.minutes(9)
        assert s.calls("stop") == ["1"]  # snoozed for 10 minutes, then it still held
        assert "2" not in s.calls("stop")  # cancelled: quiet for one cooldown


async def test_a_rule_file_with_errors_keeps_the_last_good_rules_and_reports_every_error(tmp_path: Path) -> None:
    machines = Machines()
    async with session(tmp_path / "db", machines, rules(STOP_RUNNING)) as s:
        broken = RuleSet(errors=(RuleError(Position(3, 18), "expected a duration like 30m after FOR",
                                           'IF gpu_util < 5 FOR soon THEN stop'),
                                 RuleError(Position(5, 6), "unknown field 'gpu_utl' (did you mean 'gpu_util'?)",
                                           "IF gpu_utl > 1 THEN stop")))
        result = s.hub.rules.use(broken)
        assert not result.ok and result.rule_count == 1
        assert [e.splitlines()[0] for e in result.errors] == [
            "line 3, col 18: expected a duration like 30m after FOR",
            "line 5, col 6: unknown field 'gpu_utl' (did you mean 'gpu_util'?)"]
        assert [r.name for r in s.hub.rules.listing()] == ["stop-running"]


async def test_preview_lists_which_instances_match_now_and_why(tmp_path: Path) -> None:
    machines = Machines()
    machines.add("1")
    machines.add("2", status=InstanceStatus.STOPPED)
    async with session(tmp_path / "db", machines, RuleSet()) as s:
        await s.poll()
        [preview] = s.hub.rules.preview(rules(STOP_RUNNING))
        assert [(line.target, line.truth) for line in preview.lines] == [("vast:1", Truth.TRUE),
                                                                          ("vast:2", Truth.FALSE)]
        assert preview.matching[0].evidence == (("status", "running"),)
        assert s.calls("stop") == []  # a preview never fires


async def test_label_is_kept_locally_and_says_so(tmp_path: Path) -> None:
    tag = rule("tag", 'IF status == "exited" THEN label "crashed"')
    machines = Machines()
    machines.add("1", status=InstanceStatus.EXITED)
    async with session(tmp_path / "db", machines, rules(tag)) as s:
        await s.poll()
        [fired] = s.of(RuleFired)
        assert fired.ok and "locally" in fired.result and "\x1b" not in fired.result
        assert await s.hub.store.flag("label:vast:1") == "crashed"
        assert [j.state for j in await s.hub.rules.recent_firings()] != [JOURNAL_FAILED]


async def test_stop_all_where_stops_only_what_matches(tmp_path: Path, utc: None) -> None:
    cap = rule("cap", 'IF spend_today > 0.5 THEN stop_all where label ~ "dev*"')
    machines = Machines()
    for n, label in enumerate(("dev-a", "dev-b", "prod", "dev-c")):
        machines.add(str(n), label=label)
    async with session(tmp_path / "db", machines, rules(cap)) as s:
        await s.poll()
        await s.minutes(10)
        assert sorted(s.calls("stop")) == ["0", "1", "3"]


async def test_migrate_launches_waits_until_the_replacement_runs_then_destroys_the_old_one(tmp_path: Path) -> None:
    move = rule("cheaper", 'IF cost_per_hour > $2.0 THEN migrate(max_price=1.8)')
    machines = Machines()
    machines.offers = [offer("dear", 3.0, machine_id=1), offer("cheap", 1.5, machine_id=2)]
    async with session(tmp_path / "db", machines, rules(move)) as s:
        await s.poll()
        old = (await s.hub.launch(machines.offers[0], LaunchSpec(image="vllm/vllm"), refresh=False)).partition(":")[2]
        machines.set(old, InstanceStatus.RUNNING)
        await s.minutes(1)
        await until(lambda: len(machines.machines) == 2)  # the migration runs as its own task
        [new] = [i for i in machines.machines if i != old]
        assert s.calls("destroy") == []  # the replacement is still provisioning
        machines.set(new, InstanceStatus.RUNNING)
        await s.minutes(2)
        assert s.calls("destroy") == [old]
        [entry] = await s.hub.rules.recent_firings()
        assert entry.state == JOURNAL_DONE and f"migrated vast:{old} to vast:{new}" in entry.result


async def test_relaunch_without_recorded_settings_is_held_with_an_alert(tmp_path: Path) -> None:
    spot = rule("spot-refill", 'IF status == "exited" THEN relaunch')
    machines = Machines()
    machines.add("1", status=InstanceStatus.EXITED)  # made elsewhere: this app never saw its launch
    async with session(tmp_path / "db", machines, rules(spot)) as s:
        await s.minutes(3)
        assert [c for c in machines.calls if c[0] == "launch"] == []
        [entry] = await s.hub.rules.recent_firings()
        assert entry.state == JOURNAL_HELD and entry.attempts == 1
        assert any("launch settings were not recorded" in a for a in alerts(s))
