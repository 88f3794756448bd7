"""Projects reloaded from the store (another process may have set some) never undo a set made during the read."""

from __future__ import annotations

import asyncio
from pathlib import Path

from computehub_tui.clock import ManualClock
from computehub_tui.engine.events import EventBus
from computehub_tui.engine.projects import ProjectService
from computehub_tui.engine.safe_store import SafeStore
from computehub_tui.store import Store


async def test_a_reload_that_read_before_a_set_does_not_undo_it(tmp_path: Path) -> None:
    clock = ManualClock()
    store = await Store.open(tmp_path / "db")
    try:
        projects = ProjectService(SafeStore(store, clock, EventBus()), clock)
        await projects.set("vast:1", "team-a", actor="user")
        read_done, release = asyncio.Event(), asyncio.Event()
        real_read = store.projects

        async def slow_read() -> dict[str, str]:
            snapshot = await real_read()  # read before the set below: it holds only vast:1
            read_done.set()
            await release.wait()
            return snapshot

        store.projects = slow_read  # type: ignore[method-assign]
        reloading = asyncio.create_task(projects.load())
        await read_done.wait()
        await projects.set("vast:2", "team-b", actor="user")
        release.set()
        await reloading
        assert projects.assigned == {"vast:1": "team-a", "vast:2": "team-b"}

        store.projects = real_read  # type: ignore[method-assign]
        await store.set_project("vast:3", "team-c", clock.now())  # as another process would
        await projects.load()
        assert projects.assigned["vast:3"] == "team-c"  # a reload with nothing in between takes the store's
    finally:
        await store.close()
