"""Stopping the daemon: a cancellation that arrives while the automation loop tidies up its wait is not swallowed
(the loop would renew the lease for ever), and a stdout nobody reads never stalls the engine or its SIGTERM."""

from __future__ import annotations

import asyncio
import fcntl
import os
import signal
import subprocess
import sys
from pathlib import Path

from daemon_process import LINE_TIMEOUT_S, daemon_environment
from fakes.accounts import open_market

from computehub_tui.clock import ManualClock
from tests.rules_support import Machines, rule, rules, session

WAIT_S = 5.0
PIPE_BYTES = 4096
"""The smallest pipe Linux makes: the daemon's first lines fill it."""
BAD_RULES = "".join(f"IF no_such_field_{n} < 5 THEN stop\n" for n in range(60))
"""Sixty errors, each reported on its own line at start: far more than the pipe holds."""


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


def test_a_full_stdout_pipe_nobody_reads_neither_stalls_the_engine_nor_its_sigterm(tmp_path: Path) -> None:
    rules = tmp_path / "automation.rules"
    rules.write_text(BAD_RULES, encoding="utf-8")
    with open_market(tmp_path) as market:
        env = daemon_environment(market, tmp_path, rules)
        read_end, write_end = os.pipe()
        fcntl.fcntl(write_end, fcntl.F_SETPIPE_SZ, PIPE_BYTES)
        with (tmp_path / "daemon.err").open("w") as err:
            process = subprocess.Popen([sys.executable, "-m", "computehub_tui", "daemon", "--data-dir",
                                        str(tmp_path / "data")], stdout=write_end, stderr=err, env=env)
        os.close(write_end)
        try:
            # Polling goes on although the daemon's lines have nowhere to go.
            assert market.vast.wait_until(lambda: bool(market.vast.calls("GET", "/api/v0/instances/")),
                                          timeout=LINE_TIMEOUT_S)
            process.send_signal(signal.SIGTERM)
            assert process.wait(LINE_TIMEOUT_S) == 0, (tmp_path / "daemon.err").read_text(encoding="utf-8")
        finally:
            process.kill()
            process.wait()
            with os.fdopen(read_end, "rb") as pipe:
                first = pipe.read(PIPE_BYTES).decode("utf-8", "replace")
    assert first.splitlines()[0].split()[1] == "started", first
    assert "rules-error" in first
