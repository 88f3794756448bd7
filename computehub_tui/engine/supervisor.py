"""The supervisor: runs every long-lived engine task and restarts one that raises, with backoff."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from computehub_tui.clock import Clock

log = logging.getLogger(__name__)

Job = Callable[[], Awaitable[None]]
"""Starts one run of a task; it may return (done) or raise (restarted)."""
CrashHandler = Callable[[Exception], None]


@dataclass(frozen=True, slots=True)
class RestartPolicy:
    first_delay_s: float = 2.0
    max_delay_s: float = 120.0
    healthy_after_s: float = 300.0
    """A run that lasted this long before it raised starts the backoff over."""

    def delay(self, crashes_in_a_row: int) -> float:
        return min(self.max_delay_s, self.first_delay_s * 2 ** max(0, crashes_in_a_row - 1))


class Supervisor:
    """Owns the engine's background tasks by name. A task that raises is logged (once per kind of
    error), reported to its crash handler (so it shows as that provider's health) and started again
    after an exponential, capped delay; a task that returns is done. Cancellation always propagates."""

    def __init__(self, clock: Clock, policy: RestartPolicy | None = None) -> None:
        self.clock = clock
        self.policy = policy or RestartPolicy()
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._logged: set[tuple[str, str]] = set()
        self.crashes: dict[str, int] = {}
        """Unexpected exceptions per task name since it was started, for diagnostics and tests."""

    def start(self, name: str, job: Job, *, on_crash: CrashHandler | None = None,
              max_restarts: int | None = None) -> None:
        """Run ``job`` under ``name`` (replacing a task of that name); ``max_restarts`` None means
        restart for as long as the engine runs."""
        self.stop(name)
        self.crashes[name] = 0
        self._tasks[name] = asyncio.create_task(self._keep_running(name, job, on_crash, max_restarts),
                                                name=f"engine:{name}")

    def stop(self, name: str) -> None:
        task = self._tasks.pop(name, None)
        if task is not None:
            task.cancel()

    def running(self) -> list[str]:
        return [name for name, task in self._tasks.items() if not task.done()]

    async def aclose(self) -> None:
        """Cancel every task and wait until each has stopped (so nothing writes to a closing store)."""
        tasks = list(self._tasks.values())
        self._tasks.clear()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def _keep_running(self, name: str, job: Job, on_crash: CrashHandler | None,
                            max_restarts: int | None) -> None:
        in_a_row = 0
        while True:
            started = self.clock.monotonic()
            try:
                await job()
                return
            except Exception as error:  # noqa: BLE001 - the point of a supervisor
                self.crashes[name] = self.crashes.get(name, 0) + 1
                in_a_row = 1 if self.clock.monotonic() - started >= self.policy.healthy_after_s else in_a_row + 1
                self.log_unexpected(name, error)
                self._tell(name, error, on_crash)
                if max_restarts is not None and self.crashes[name] > max_restarts:
                    log.error("engine task %s gave up after %d failures", name, self.crashes[name])
                    return
            await self.clock.sleep(self.policy.delay(in_a_row))

    def log_unexpected(self, name: str, error: Exception) -> None:
        """Log an unexpected exception in task ``name`` with its traceback, once per kind of error."""
        kind = (name, type(error).__name__)
        if kind not in self._logged:
            self._logged.add(kind)
            log.error("unexpected error in engine task %s", name, exc_info=error)

    @staticmethod
    def _tell(name: str, error: Exception, on_crash: CrashHandler | None) -> None:
        if on_crash is not None:
            try:
                on_crash(error)
            except Exception:  # a broken report must not stop the restart
                log.exception("reporting the failure of %s failed", name)
