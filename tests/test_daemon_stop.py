"""Stopping the automation loop (what SIGTERM does to the daemon): a cancellation that arrives while the loop tidies
up its wait is not swallowed, so the loop ends instead of renewing the lease for ever."""

from __future__ import annotations

import asyncio
from pathlib import Path

from computehub_tui.clock import ManualClock
from tests.rules_support import Machines, rule, rules, session

WAIT_S = 5.0


class SlowToCancelClock(ManualClock):
    """A manual clock whose sleeps, once cancelled, end only when ``gate`` opens (as a sleep's clean-up may take a
    moment): the loop is then caught tidying up exactly when the stop arrives."""

    def __init__(self) -> None:
        super().__init__()
        self.gate = asyncio.Event()
        self.cancelled = asyncio.Event()

    async def sleep(self, seconds: float) -> None:
        try:
            await super().sleep(seconds)
        except asyncio.CancelledError:
            self.cancelled.set()
            await self.gate.wait()
            raise


async def test_a_stop_that_arrives_while_the_loop_tidies_up_its_wait_ends_the_loop(tmp_path: Path) -> None:
    clock = SlowToCancelClock()
    machines = Machines(clock=clock)
    machines.add("1")
    wake = rule("wake", 'IF status == "stopped" THEN start')
    async with session(tmp_path / "db", machines, rules(wake)) as s:
        loop_task = asyncio.create_task(s.hub.rules.run())
        try:
            await asyncio.wait_for(s.hub.rules.lease.claim(), WAIT_S)
            await s.hub.refresh_instances("vast")  # a poll: the loop's wait ends and cancels its sleep
            await asyncio.wait_for(clock.cancelled.wait(), WAIT_S)
            loop_task.cancel()  # the stop, while the cancelled sleep is still ending
            clock.gate.set()
            done, _ = await asyncio.wait({loop_task}, timeout=WAIT_S)
            assert loop_task in done and loop_task.cancelled()
        finally:
            loop_task.cancel()
            await asyncio.wait({loop_task}, timeout=WAIT_S)
