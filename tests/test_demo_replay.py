"""The demo's price-history replay runs in a child process: stopping the session ends that child too."""

from __future__ import annotations

import os
from pathlib import Path

from waiting import until

from computehub_tui.clock import ManualClock
from computehub_tui.config import Config
from computehub_tui.engine.history import REPLAY_DELAY_S
from computehub_tui.wiring import open_session


def replay_children() -> list[int]:
    """Our child processes that run the demo's history replay."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            command = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        if int(stat[1]) == os.getpid() and b"providers.demo.history" in command and stat[0] != "Z":
            found.append(int(entry.name))
    return found


async def test_stopping_the_session_ends_the_replay_child(tmp_path: Path) -> None:
    clock = ManualClock()
    session = await open_session(Config.model_validate({"demo": {"vast_offers": 3200}}), tmp_path, demo=True,
                                 clock=clock)
    try:
        await session.hub.start()
        await until(lambda: clock.sleeper_count > 0)  # the supervised tasks are waiting on the clock
        await clock.advance(REPLAY_DELAY_S + 1)
        await until(lambda: bool(replay_children()))  # the replay takes seconds at this size
        await session.hub.stop()
        assert replay_children() == []
    finally:
        await session.aclose()
