"""The engine's own thread and asyncio loop, so polling goes on while the UI's loop is blocked (ssh)."""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import threading
from collections.abc import Coroutine
from typing import Any, TypeVar

from computehub_tui.engine.crossing import EngineStopped

log = logging.getLogger(__name__)
T = TypeVar("T")

START_TIMEOUT_S = 10.0
STOP_TIMEOUT_S = 10.0


class EngineRuntime:
    """One daemon thread running one event loop until ``stop``. Sessions are opened on it (their store
    and HTTP clients then belong to it); other threads hand it coroutines with ``submit``.

    The thread is a daemon so that a crash elsewhere can never leave the process hanging; a normal
    exit stops it cleanly (every task cancelled, executors shut down) before the process ends.
    """

    def __init__(self, name: str = "computehub-engine") -> None:
        self.name = name
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._started = threading.Event()
        self._stop_requested: asyncio.Event | None = None

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def start(self) -> None:
        if self._thread is not None:
            return
        self._thread = threading.Thread(target=self._serve, name=self.name, daemon=True)
        self._thread.start()
        if not self._started.wait(START_TIMEOUT_S):
            raise RuntimeError("the engine thread did not start")

    def _serve(self) -> None:
        asyncio.run(self._until_stopped())

    async def _until_stopped(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop_requested = asyncio.Event()
        self._started.set()
        await self._stop_requested.wait()
        current = asyncio.current_task()
        leftovers = [task for task in asyncio.all_tasks() if task is not current]
        for task in leftovers:
            task.cancel()
        await asyncio.gather(*leftovers, return_exceptions=True)

    def submit(self, coroutine: Coroutine[Any, Any, T]) -> concurrent.futures.Future[T]:
        """Schedule ``coroutine`` on the engine loop from any thread."""
        loop = self._loop
        if loop is None or loop.is_closed() or not self.running:
            coroutine.close()
            raise EngineStopped("the engine is not running")
        return asyncio.run_coroutine_threadsafe(coroutine, loop)

    def stop(self, timeout_s: float = STOP_TIMEOUT_S) -> bool:
        """Cancel whatever still runs, end the loop and join the thread; False if it did not end in time."""
        loop, thread, stop = self._loop, self._thread, self._stop_requested
        if loop is None or thread is None or stop is None:
            return True
        if threading.current_thread() is thread:
            raise RuntimeError("the engine cannot stop itself from its own thread")
        if not loop.is_closed():
            try:
                loop.call_soon_threadsafe(stop.set)
            except RuntimeError:  # closed in between
                pass
        thread.join(timeout_s)
        if thread.is_alive():
            log.warning("the engine thread did not stop within %.0f s", timeout_s)
            return False
        return True
