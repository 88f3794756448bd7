"""After a crash mid-action, relaunch, migrate, restart and label rows still in flight are settled from what the
provider shows: a replacement that was launched is found (never a second one), a migration goes on to the destroy
only once its replacement runs, and a restart counts as done when the machine has run since the request."""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path
from typing import Any

from computehub_tui.domain.models import InstanceStatus, LaunchSpec
from computehub_tui.engine.automation.labels import LOCAL_LABEL_FLAG
from computehub_tui.engine.events import ActionFinished
from computehub_tui.store import Store
from computehub_tui.store.automation import JOURNAL_DONE, JOURNAL_HELD, JOURNAL_IN_FLIGHT, JournalEntry
from tests.rules_support import MINUTE, Machines, Session, offer, rule, rules, session
from tests.waiting import until

STUCK = rule("stuck", 'IF status == "provisioning" FOR 5m THEN relaunch')
MOVE = rule("cheaper", "IF cost_per_hour > $2.0 THEN migrate(max_price=1.8)")
CRASHED = rule("crashed", 'IF status == "exited" THEN restart')
TAG = rule("tag", 'IF status == "running" THEN label "checked"')


class Hanging(Machines):
    """A provider whose ``hang`` call never returns (the process is killed while it waits); with ``accept`` the
    provider carries the call out first, as one that answered too late would."""

    def __init__(self, hang: str, *, accept: bool = True) -> None:
        super().__init__()
        self.hang, self.accept = hang, accept
        self.reached = asyncio.Event()

    async def _act(self, verb: str, instance_id: str, status: InstanceStatus | None) -> None:
        if verb != self.hang:
            await super()._act(verb, instance_id, status)
            return
        self.calls.append((verb, instance_id))
        if self.accept and status is not None:
            self.set(instance_id, status, running_since=self.clock.now())
        self.reached.set()
        await asyncio.Event().wait()


async def crash_in(s: Session, machines: Hanging) -> None:
    """One poll whose rule action hangs at the provider; the process dies there (its task is cancelled)."""
    await s.clock.advance(MINUTE)
    polling = asyncio.create_task(s.poll())
    await machines.reached.wait()
    polling.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await polling


async def in_flight(s: Session) -> list[Any]:
    return [e for e in await s.hub.rules.recent_firings() if e.state == JOURNAL_IN_FLIGHT]


def launched(s: Session) -> int:
    """Launches the engine has finished (sent, recorded and announced)."""
    return sum(1 for e in s.of(ActionFinished) if e.action == "launch" and e.ok)


def launches(machines: Machines) -> list[str]:
    return [offer_id for verb, offer_id in machines.calls if verb == "launch"]


async def test_a_relaunch_killed_after_its_launch_destroys_the_old_one_and_launches_nothing_more(
        tmp_path: Path) -> None:
    machines = Hanging("destroy")  # killed after the replacement was launched, before the old one went
    machines.offers = [offer("a", 0.40, machine_id=7), offer("b", 0.45, machine_id=8),
                       offer("c", 0.50, machine_id=9)]
    async with session(tmp_path / "db", machines, rules(STUCK)) as s:
        await s.poll()
        key = await s.hub.launch(machines.offers[0], LaunchSpec(image="pytorch/pytorch", label="train"), refresh=False)
        old = key.partition(":")[2]
        await s.minutes(4)
        machines.launch_status = InstanceStatus.RUNNING  # the replacement comes up
        await crash_in(s, machines)  # minute 5: the window is covered
        assert launches(machines) == ["a", "b"] and len(await in_flight(s)) == 1
    machines.hang = ""
    async with session(tmp_path / "db", machines, rules(STUCK)) as s:
        await s.minutes(10)
        assert launches(machines) == ["a", "b"]  # the replacement was found: no third machine
        assert s.calls("destroy") == [old, old]  # the killed attempt, then the one after the restart
        assert old not in machines.machines
        [entry] = [e for e in await s.hub.rules.recent_firings() if e.action == "relaunch"]
        assert entry.state == JOURNAL_DONE and "found after a restart" in entry.result


async def test_a_migration_killed_while_waiting_destroys_the_old_one_only_once_the_replacement_runs(
        tmp_path: Path) -> None:
    machines = Machines()
    machines.offers = [offer("dear", 3.0, machine_id=1), offer("cheap", 1.5, machine_id=2)]
    async with session(tmp_path / "db", machines, rules(MOVE)) as s:
        await s.poll()
        old = (await s.hub.launch(machines.offers[0], LaunchSpec(image="vllm/vllm"), refresh=False)).partition(":")[2]
        machines.set(old, InstanceStatus.RUNNING)
        await s.minutes(1)
        await until(lambda: launched(s) == 2)  # launched and recorded; the migration waits for it to run
        [new] = [key for key in machines.machines if key != old]
        assert len(await in_flight(s)) == 1
    # The process is gone (its migration task with it); the replacement is still provisioning.
    async with session(tmp_path / "db", machines, rules(MOVE)) as s:
        await s.minutes(3)
        assert s.calls("destroy") == [] and launches(machines) == ["dear", "cheap"]
        machines.set(new, InstanceStatus.RUNNING)
        await s.minutes(1)
        assert s.calls("destroy") == [old] and launches(machines) == ["dear", "cheap"]
        [entry] = await s.hub.rules.recent_firings()
        assert entry.state == JOURNAL_DONE and f"migrated vast:{old} to vast:{new}" in entry.result


async def test_a_killed_migration_whose_replacement_failed_keeps_the_old_instance(tmp_path: Path) -> None:
    machines = Machines()
    machines.offers = [offer("dear", 3.0, machine_id=1), offer("cheap", 1.5, machine_id=2)]
    async with session(tmp_path / "db", machines, rules(MOVE)) as s:
        await s.poll()
        old = (await s.hub.launch(machines.offers[0], LaunchSpec(image="vllm/vllm"), refresh=False)).partition(":")[2]
        machines.set(old, InstanceStatus.RUNNING)
        await s.minutes(1)
        await until(lambda: launched(s) == 2)
        [new] = [key for key in machines.machines if key != old]
    machines.set(new, InstanceStatus.ERROR)
    async with session(tmp_path / "db", machines, rules(MOVE)) as s:
        await s.minutes(1)
        assert s.calls("destroy") == [new] and old in machines.machines
        [entry] = await s.hub.rules.recent_firings()
        assert entry.state == JOURNAL_HELD and "the instance is kept" in entry.result
        await s.minutes(5)
        assert launches(machines) == ["dear", "cheap"]  # held until the cooldown ends: not tried again


async def test_a_restart_the_provider_carried_out_counts_as_done(tmp_path: Path) -> None:
    machines = Hanging("restart")
    machines.add("1", status=InstanceStatus.EXITED, running_since=0.0)
    async with session(tmp_path / "db", machines, rules(CRASHED)) as s:
        await crash_in(s, machines)
    machines.hang = ""
    async with session(tmp_path / "db", machines, rules(CRASHED)) as s:
        await s.minutes(3)
        assert s.calls("restart") == ["1"]
        [entry] = await s.hub.rules.recent_firings()
        assert entry.state == JOURNAL_DONE and "running again since the request" in entry.result


async def test_a_restart_that_never_arrived_is_held_not_sent_again(tmp_path: Path) -> None:
    machines = Hanging("restart", accept=False)
    machines.add("1", status=InstanceStatus.EXITED, running_since=0.0)
    async with session(tmp_path / "db", machines, rules(CRASHED)) as s:
        await crash_in(s, machines)
    machines.hang = ""
    async with session(tmp_path / "db", machines, rules(CRASHED)) as s:  # still exited: it may never have arrived
        await s.minutes(3)
        assert s.calls("restart") == ["1"]
        [entry] = await s.hub.rules.recent_firings()
        assert entry.state == JOURNAL_HELD and "not repeated" in entry.result


async def test_a_label_written_before_the_crash_counts_as_done(tmp_path: Path) -> None:
    machines = Machines()
    machines.add("1")
    async with await Store.open(tmp_path / "db") as store:  # what a process killed after writing the label left
        at = machines.clock.now()
        await store.journal_open(JournalEntry(JournalEntry.key_for("tag", "vast:1", "label", at), "tag", "vast:1",
                                              "label", at, at + 900, JOURNAL_IN_FLIGHT, 1, at))
        await store.set_flag(f"{LOCAL_LABEL_FLAG}vast:1", "checked", at)
    async with session(tmp_path / "db", machines, rules(TAG)) as s:
        await s.poll()
        [entry] = await s.hub.rules.recent_firings()
        assert entry.state == JOURNAL_DONE and "local label is set" in entry.result


async def test_two_killed_relaunches_of_look_alike_machines_never_claim_one_replacement(tmp_path: Path) -> None:
    machines = Machines()
    machines.offers = [offer("a", 0.40, machine_id=7), offer("b", 0.45, machine_id=8)]
    spec = LaunchSpec(image="pytorch/pytorch", label="worker")
    async with session(tmp_path / "db", machines, rules()) as s:
        await s.poll()
        first, second = [await s.hub.launch(machines.offers[0], spec, refresh=False) for _ in range(2)]
        await s.clock.advance(MINUTE)
        at = s.clock.now()
        for key in (first, second):  # both relaunches were journalled; only one got as far as its launch
            await s.hub.store.journal_open(JournalEntry(JournalEntry.key_for("stuck", key, "relaunch", at), "stuck",
                                                        key, "relaunch", at, at + 900, JOURNAL_IN_FLIGHT, 1, at))
        replacement = await s.hub.launch(machines.offers[1], spec, refresh=False)
    async with session(tmp_path / "db", machines, rules(STUCK)) as s:
        await s.poll()
        settled = {e.target: e for e in await s.hub.rules.recent_firings()}
        assert {k: e.state for k, e in settled.items()} == {first: JOURNAL_DONE, second: JOURNAL_HELD}
        assert replacement in settled[first].result and "no replacement was found" in settled[second].result
        assert s.calls("destroy") == [first.partition(":")[2]]  # the second machine is kept: nothing replaced it
