"""The automation lease: two Store connections on one SQLite file (two processes' worth), a dead pid, expiry."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from computehub_tui.clock import ManualClock
from computehub_tui.engine.automation.lease import MAX_TTL_S, LeaseKeeper, pid_alive
from computehub_tui.engine.events import EngineEvent, EventBus, LeaseChanged
from computehub_tui.engine.safe_store import SafeStore
from computehub_tui.store import Store


@asynccontextmanager
async def keeper(db: Path, clock: ManualClock, role: str, *, host: str = "box", pid: int | None = None,
                 events: list[EngineEvent] | None = None) -> AsyncIterator[LeaseKeeper]:
    """One process's lease keeper, on its own connection to the shared database."""
    store = await Store.open(db)
    bus = EventBus()
    if events is not None:
        bus.subscribe(events.append)
    try:
        yield LeaseKeeper(SafeStore(store, clock, bus), bus, clock, role=role, host=host, pid=pid)
    finally:
        await store.close()


def dead_pid() -> int:
    """The pid of a process that has exited (and been reaped)."""
    child = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True,
                           check=True)
    pid = int(child.stdout)
    assert not pid_alive(pid)
    return pid


async def test_one_process_holds_the_lease_and_the_other_sees_who(tmp_path: Path) -> None:
    clock = ManualClock()
    events: list[EngineEvent] = []
    alive = os.getppid()  # a process that exists on this host, other than this one
    async with keeper(tmp_path / "db", clock, "daemon", pid=alive, events=events) as daemon, \
            keeper(tmp_path / "db", clock, "app") as app:
        assert await daemon.claim()
        assert not await app.claim()
        assert app.holder_description == f"daemon pid {alive} on box"
        assert not app.held and daemon.held
        assert [(e.holder, e.ours) for e in events if isinstance(e, LeaseChanged)] == [
            (f"daemon pid {alive} on box", True)]


async def test_renewing_keeps_it_and_an_unrenewed_lease_expires_within_30_s(tmp_path: Path) -> None:
    clock = ManualClock()
    async with keeper(tmp_path / "db", clock, "daemon", host="other-box", pid=1) as daemon, \
            keeper(tmp_path / "db", clock, "app") as app:
        assert await daemon.claim()
        for _ in range(20):  # a minute of renewals every 5 s (pid 1 on another host: not ours to check)
            await clock.advance(3)
            assert not await app.claim()
            await clock.advance(2)
            assert await daemon.claim()
        await clock.advance(MAX_TTL_S - 1)  # the daemon stopped renewing (hung, or its host is gone)
        assert not await app.claim()
        await clock.advance(1)
        assert await app.claim()
        assert not await daemon.claim()


async def test_a_holder_on_this_host_whose_process_is_gone_is_taken_over_at_once(tmp_path: Path) -> None:
    clock = ManualClock()
    async with keeper(tmp_path / "db", clock, "daemon", pid=dead_pid()) as dead, \
            keeper(tmp_path / "db", clock, "app") as app:
        assert await dead.claim()
        assert await app.claim()  # no waiting for the 30 s
        assert app.holder_description is not None and app.holder_description.startswith("app pid ")


async def test_releasing_frees_it_at_once(tmp_path: Path) -> None:
    clock = ManualClock()
    async with keeper(tmp_path / "db", clock, "daemon", pid=os.getppid()) as daemon, \
            keeper(tmp_path / "db", clock, "app") as app:
        assert await daemon.claim()
        await daemon.release()
        assert not daemon.held
        assert await app.claim()
        assert await daemon.refresh() is not None and daemon.holder_description is not None
        assert daemon.holder_description.startswith("app pid ")
