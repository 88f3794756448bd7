"""A process killed with SIGKILL in the middle of a rule's action, then started again, does not repeat the action:
the journal row written before the action is reconciled against what the provider shows."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from pathlib import Path

from computehub_tui.clock import ManualClock
from computehub_tui.domain.models import InstanceStatus
from computehub_tui.engine.events import RuleNotify
from computehub_tui.store import Store
from computehub_tui.store.automation import JOURNAL_DONE, JOURNAL_HELD, JOURNAL_IN_FLIGHT
from tests.rules_support import Machines, rules, session
from tests.test_rules_runner import STOP_RUNNING
from tests.waiting import until

ROOT = Path(__file__).resolve().parent.parent
START = 1_790_000_000.0


async def killed_mid_stop(tmp_path: Path) -> Path:
    """Run the child until its stop has reached the provider, then SIGKILL it; returns its database."""
    db, marker = tmp_path / "db", tmp_path / "stop-sent"
    child = await asyncio.create_subprocess_exec(sys.executable, "-m", "tests.rules_crash_child", str(db),
                                                 str(marker), str(START), cwd=ROOT)
    try:
        await until(marker.exists, timeout=60.0)
    finally:
        child.send_signal(signal.SIGKILL)
        await child.wait()
    assert child.returncode == -signal.SIGKILL
    async with await Store.open(db) as store:
        [row] = await store.journal_in_flight()
        assert (row.rule, row.target, row.action, row.state, row.attempts) == (
            "stop-running", "vast:1", "stop", JOURNAL_IN_FLIGHT, 1)
    return db


async def test_an_accepted_stop_still_pending_at_the_provider_counts_as_done(tmp_path: Path) -> None:
    db = await killed_mid_stop(tmp_path)
    machines = Machines(clock=ManualClock(START + 5))
    # Vast keeps actual_status running with intended_status stopped for a while.
    machines.add("1", status_message="stop requested; still running")
    async with session(db, machines, rules(STOP_RUNNING)) as s:  # the dead child's lease is taken over at once
        await s.poll()
        await s.minutes(5)
        assert s.calls("stop") == []
        [entry] = await s.hub.rules.recent_firings()
        assert entry.state == JOURNAL_DONE and "pending" in entry.result and entry.attempts == 1


async def test_an_unconfirmed_action_is_held_with_an_alert_never_sent_again(tmp_path: Path) -> None:
    db = await killed_mid_stop(tmp_path)
    machines = Machines(clock=ManualClock(START + 5))
    machines.add("1")  # running, nothing pending: the stop may never have arrived
    async with session(db, machines, rules(STOP_RUNNING)) as s:
        await s.poll()
        await s.minutes(10)
        assert s.calls("stop") == []
        [entry] = await s.hub.rules.recent_firings()
        assert entry.state == JOURNAL_HELD and "not repeated" in entry.result
        assert any("not repeated" in n.message for n in s.of(RuleNotify) if n.channel == "alert")
        await s.minutes(5)  # the cooldown from the child's attempt has passed: the rule may act again
        assert s.calls("stop") == ["1"]


async def test_a_stop_the_provider_shows_done_is_confirmed(tmp_path: Path) -> None:
    db = await killed_mid_stop(tmp_path)
    machines = Machines(clock=ManualClock(START + 5))
    machines.add("1", status=InstanceStatus.STOPPED)
    async with session(db, machines, rules(STOP_RUNNING)) as s:
        await s.poll()
        [entry] = await s.hub.rules.recent_firings()
        assert entry.state == JOURNAL_DONE and "confirmed" in entry.result
        assert s.hub.rules.lease.holder is not None and s.hub.rules.lease.holder.pid == os.getpid()
