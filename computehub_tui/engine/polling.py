"""Polling: each provider's offers and instances on their own schedules, with backoff when throttled."""

from __future__ import annotations

import asyncio
import math
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from computehub_tui.clock import Clock
from computehub_tui.domain.models import OfferQuery
from computehub_tui.domain.pricing import split_plausible
from computehub_tui.engine.events import HealthState
from computehub_tui.engine.health import FEEDS, Failure, Feed, HealthBook, health_state_for, internal_error_message
from computehub_tui.engine.intake import PollIntake
from computehub_tui.engine.live import LiveData
from computehub_tui.engine.supervisor import Supervisor
from computehub_tui.providers.base import ProviderError, RateLimitedError

MAX_THROTTLED_WAIT_S = 300.0
GRID_TOLERANCE = 1e-6
"""Of an interval: a time this close past a grid slot (float rounding) is on it."""


@dataclass(frozen=True, slots=True)
class PollSettings:
    offers_interval_s: float = 60.0
    instances_interval_s: float = 5.0

    def interval(self, feed: Feed) -> float:
        return self.instances_interval_s if feed == "instances" else self.offers_interval_s


def next_slot(origin: float, interval: float, not_before: float) -> float:
    """The first time on the grid ``origin + k * interval`` that is not before ``not_before``."""
    return origin + interval * max(0, math.ceil((not_before - origin) / interval - GRID_TOLERANCE))


class PollingService:
    """Fetches, keeps the last good data when a fetch fails, and says why in each provider's health.

    A poll that fails on a provider error marks the provider (typed: auth, rate limit, circuit open,
    down); an unexpected exception marks it "internal-error". Either way the last good data stays.
    Each feed's loop runs under the supervisor, so a bug after a fetch restarts the loop instead of
    ending that provider's polling for good.
    """

    def __init__(self, live: LiveData, health: HealthBook, intake: PollIntake, supervisor: Supervisor, clock: Clock,
                 settings: PollSettings, query: OfferQuery) -> None:
        self._live = live
        self._health = health
        self._intake = intake
        self._supervisor = supervisor
        self._clock = clock
        self.settings = settings
        self.query = query
        self._locks: dict[tuple[str, Feed], asyncio.Lock] = {}
        self._retry_after: dict[tuple[str, Feed], float] = {}
        self._grid_origin: float | None = None
        """When the first poll loop started: every loop's polls fall on multiples of its interval from here."""

    # -- schedules ------------------------------------------------------------------------------

    def start(self, provider: str) -> None:
        for feed in FEEDS:
            self._supervisor.start(self._task_name(provider, feed), self._looping(provider, feed),
                                   on_crash=self._crash_reporter(provider, feed))

    def stop(self, provider: str) -> None:
        for feed in FEEDS:
            self._supervisor.stop(self._task_name(provider, feed))

    @staticmethod
    def _task_name(provider: str, feed: Feed) -> str:
        return f"poll:{provider}:{feed}"

    def _looping(self, provider: str, feed: Feed) -> Callable[[], Awaitable[None]]:
        async def loop() -> None:
            refresh = self.refresh_instances if feed == "instances" else self.refresh_offers
            interval = self.settings.interval(feed)
            throttled_in_a_row = 0
            due = self._clock.monotonic()
            if self._grid_origin is None:
                self._grid_origin = due
            while True:
                await refresh(provider)
                now = self._clock.monotonic()
                # On one grid for every provider and feed rather than a full interval after each answer: polls
                # that start together stay in step, so the views repaint once per round, not once per provider.
                due = next_slot(self._grid_origin, interval, max(now, due + interval))
                wait = max(due - now, self._retry_after.pop((provider, feed), 0.0))
                failure = self._health.failure(provider, feed)
                if failure is not None and failure.state is HealthState.RATE_LIMITED:
                    # Providers that send no Retry-After get an exponential pause, so a 429 storm
                    # costs a handful of requests rather than one per poll.
                    throttled_in_a_row += 1
                    wait = max(wait, min(MAX_THROTTLED_WAIT_S, interval * 2 ** throttled_in_a_row))
                else:
                    throttled_in_a_row = 0
                due = now + wait
                await self._clock.sleep(wait)

        return loop

    def _crash_reporter(self, provider: str, feed: Feed) -> Callable[[Exception], None]:
        def report(error: Exception) -> None:
            self._health.failed(provider, feed, Failure(HealthState.INTERNAL_ERROR,
                                                        internal_error_message(provider, feed, error)))

        return report

    # -- one poll -------------------------------------------------------------------------------

    async def refresh_offers(self, provider: str) -> bool:
        """Fetch one provider's offers; on failure keep the last good ones. True on success."""
        async with self._lock(provider, "offers"):
            adapter = self._live.providers.get(provider)
            if adapter is None:
                return False
            try:
                fetched = await adapter.list_offers(self.query)
            except Exception as error:  # noqa: BLE001 - any failure keeps the last good data
                self._record_failure(provider, "offers", error)
                return False
            offers, implausible = split_plausible(fetched)
            await self._intake.offers(provider, offers, implausible + adapter.dropped_rows, self._clock.now())
            return True

    async def refresh_instances(self, provider: str) -> bool:
        """Fetch one provider's instances and live metrics; accrue cost. True on success."""
        async with self._lock(provider, "instances"):
            adapter = self._live.providers.get(provider)
            if adapter is None:
                return False
            try:
                instances = await adapter.list_instances()
            except Exception as error:  # noqa: BLE001
                self._record_failure(provider, "instances", error)
                return False
            await self._intake.instances(provider, instances, self._clock.now())
            return True

    def is_stale(self, provider: str, feed: Feed = "instances") -> bool:
        """True when ``feed`` has not been fetched for two intervals (or ever; or the provider has gone)."""
        health = self._health.get(provider)
        if health is None:
            return True
        at = health.instances_at if feed == "instances" else health.offers_at
        return at is None or self._clock.now() - at > 2 * self.settings.interval(feed)

    def _record_failure(self, provider: str, feed: Feed, error: Exception) -> None:
        if isinstance(error, ProviderError):
            failure = Failure(health_state_for(error), str(error))
            if isinstance(error, RateLimitedError) and error.retry_after:
                self._retry_after[(provider, feed)] = error.retry_after
        else:
            failure = Failure(HealthState.INTERNAL_ERROR, internal_error_message(provider, feed, error))
            self._supervisor.log_unexpected(self._task_name(provider, feed), error)
        self._health.failed(provider, feed, failure)

    def _lock(self, provider: str, feed: Feed) -> asyncio.Lock:
        return self._locks.setdefault((provider, feed), asyncio.Lock())
