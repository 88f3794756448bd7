"""Waiting, without sleeping a fixed time, for work on other threads (aiosqlite, the engine) to get somewhere,
and a Hub polling while a test waits."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

import pytest

from computehub_tui.engine.hub import Hub


async def until(condition: Callable[[], bool], timeout: float = 10.0) -> None:
    """Return as soon as ``condition()`` holds; fail after ``timeout`` seconds."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not condition():
        if loop.time() > deadline:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(0.005)


@asynccontextmanager
async def polling(hub: Hub) -> AsyncIterator[None]:
    """Run the Hub's poll loops for the duration of the block."""
    runner = asyncio.create_task(hub.run())
    try:
        yield
    finally:
        runner.cancel()
        with pytest.raises(asyncio.CancelledError):
            await runner
