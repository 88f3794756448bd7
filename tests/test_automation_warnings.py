"""Pending WARN warnings live in the store: a restart keeps their due times, snoozes and cancels."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from computehub_tui.engine.events import RuleWarningPending
from tests.rules_support import MINUTE, Machines, rule, rules, session

WARNED = rule("warned-stop", 'IF status == "running" THEN WARN 10m stop')


async def test_a_restart_keeps_the_warnings_due_time(tmp_path: Path) -> None:
    machines = Machines()
    machines.add("1")
    async with session(tmp_path / "db", machines, rules(WARNED)) as s:
        await s.poll()
        [warning] = s.hub.rules.pending_warnings()
        assert warning.due_at == s.clock.now() + 10 * MINUTE
        await s.minutes(5)
    async with session(tmp_path / "db", machines, rules(WARNED)) as s:  # restarted 5 minutes into the warning
        assert [w.due_at for w in s.hub.rules.pending_warnings()] == [warning.due_at]
        await s.minutes(4)
        assert s.calls("stop") == [] and s.of(RuleWarningPending) == []  # not announced again
        await s.minutes(1)  # minute 10 of the warning, not minute 10 after the restart
        assert s.calls("stop") == ["1"]
        assert s.hub.rules.pending_warnings() == []


async def test_a_snooze_and_a_cancel_survive_a_restart(tmp_path: Path) -> None:
    machines = Machines()
    machines.add("1")
    machines.add("2")
    async with session(tmp_path / "db", machines, rules(WARNED)) as s:
        await s.poll()
        first, second = s.hub.rules.pending_warnings()
        snoozed = await s.hub.rules.snooze(first.warning_id, 10 * MINUTE)
        assert snoozed is not None and snoozed.due_at == first.due_at + 10 * MINUTE
        assert await s.hub.rules.cancel(second.warning_id)
    async with session(tmp_path / "db", machines, rules(WARNED)) as s:
        assert [(w.target, w.due_at) for w in s.hub.rules.pending_warnings()] == [("vast:1", snoozed.due_at)]
        await s.minutes(14)
        assert s.calls("stop") == [] and s.of(RuleWarningPending) == []  # the cancelled one is not warned again
        await s.minutes(6)  # 20 minutes: the snoozed warning's new due time
        assert s.calls("stop") == ["1"]


async def test_a_cancel_written_by_another_process_is_read_at_the_next_tick(tmp_path: Path) -> None:
    machines = Machines()
    machines.add("1")
    async with session(tmp_path / "db", machines, rules(WARNED)) as s:
        await s.poll()
        [warning] = s.hub.rules.pending_warnings()
        now = s.clock.now()
        # The app cancels it while this process (a daemon) runs the rules.
        await s.hub.store.save_warning(dataclasses.replace(warning, cancelled_until=now + 15 * MINUTE), now)
        await s.minutes(12)
        assert s.calls("stop") == [] and s.hub.rules.pending_warnings() == []
        assert len(s.of(RuleWarningPending)) == 1
