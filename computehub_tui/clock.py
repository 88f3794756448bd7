"""Injectable time (wall, monotonic, sleep): the real clock, and a manual clock tests move by hand."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    import asyncio


class Clock(Protocol):
    """Wall time (Unix seconds), monotonic time, and a sleep that follows the same clock."""

    def now(self) -> float: ...

    def monotonic(self) -> float: ...

    async def sleep(self, seconds: float) -> None: ...


class SystemClock:
    """The real clock."""

    def now(self) -> float:
        return time.time()

    def monotonic(self) -> float:
        return time.monotonic()

    async def sleep(self, seconds: float) -> None:
        import asyncio  # here, not at the top: programs that only read the time (the demo's ssh) start faster

        await asyncio.sleep(max(0.0, seconds))


class ManualClock:
    """A clock that only moves when ``advance`` is called; sleepers wake when their time comes.

    Sleepers may live on another thread's loop (the TUI's engine thread): ``advance`` then runs on
    that loop, so they wake and run exactly as if the test shared their loop.
    """

    def __init__(self, start: float = 1_790_000_000.0) -> None:
        self._now = start
        self._start = start
        self._sleepers: list[tuple[float, asyncio.Future[None]]] = []
        self._sleepers_loop: asyncio.AbstractEventLoop | None = None

    def now(self) -> float:
        return self._now

    def monotonic(self) -> float:
        return self._now - self._start

    async def sleep(self, seconds: float) -> None:
        import asyncio

        if seconds <= 0:
            await asyncio.sleep(0)
            return
        loop = asyncio.get_running_loop()
        self._sleepers_loop = loop
        future: asyncio.Future[None] = loop.create_future()
        self._sleepers.append((self._now + seconds, future))
        await future

    def set_time(self, timestamp: float) -> None:
        """Jump to ``timestamp`` without waking sleepers (for replaying a simulation's past)."""
        self._now = timestamp

    @property
    def sleeper_count(self) -> int:
        return sum(1 for _, future in self._sleepers if not future.done())

    async def advance(self, seconds: float) -> None:
        """Move time forward, waking each sleeper due on the way in order, and let them run."""
        import asyncio

        home = self._sleepers_loop
        if home is not None and home is not asyncio.get_running_loop() and home.is_running():
            await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(self._advance(seconds), home))
        else:
            await self._advance(seconds)

    async def _advance(self, seconds: float) -> None:
        import asyncio

        target = self._now + seconds
        while True:
            due = [(at, f) for at, f in self._sleepers if at <= target and not f.done()]
            if not due:
                break
            at, future = min(due, key=lambda item: item[0])
            self._now = max(self._now, at)
            future.set_result(None)
            self._sleepers = [(a, f) for a, f in self._sleepers if not f.done()]
            for _ in range(5):
                await asyncio.sleep(0)
        self._now = target
        for _ in range(5):
            await asyncio.sleep(0)


async def sleep_until_woken(clock: Clock, wake: asyncio.Event, due: float | None) -> None:
    """Wait until ``wake`` is set or the clock reaches ``due`` (None: only the event), whichever comes first."""
    import asyncio  # here: the demo's ssh stand-in imports this module and must start without asyncio

    if wake.is_set():
        return
    waiter = asyncio.ensure_future(wake.wait())
    timer = None if due is None else asyncio.ensure_future(clock.sleep(max(0.0, due - clock.now())))
    try:
        await asyncio.wait([task for task in (waiter, timer) if task is not None], return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in (waiter, timer):
            if task is not None and not task.done():
                task.cancel()
