"""Store calls for the engine's services: a failure (e.g. a full disk) is counted and reported, never raised."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Sequence
from typing import Protocol, TypeVar, runtime_checkable

from computehub_tui.clock import Clock
from computehub_tui.domain.models import Offer
from computehub_tui.engine.events import EventBus, StoreFailed
from computehub_tui.store import Store

log = logging.getLogger(__name__)
T = TypeVar("T")

STORE_FAILURE_REPORT_S = 60.0
"""A StoreFailed event at most this often: a full disk fails every write."""


@runtime_checkable
class KeepsOffers(Protocol):
    """A store that keeps each provider's last good offers (the store's offers snapshot)."""

    async def save_offers(self, provider: str, offers: Sequence[Offer], at: float) -> None: ...

    async def load_offers(self) -> dict[str, tuple[float, list[Offer]]]: ...


class SafeStore:
    """The session's store, wrapped so that polling goes on when saving fails."""

    def __init__(self, store: Store, clock: Clock, bus: EventBus) -> None:
        self.store = store
        self._clock = clock
        self._bus = bus
        self._reported_at = float("-inf")
        self.failures = 0
        """Store calls that failed in this process (a CLI command exits non-zero when any did)."""
        self.last_error = ""

    async def call(self, call: Awaitable[T]) -> T | None:
        """The call's result, or None when it failed (logged, counted, reported once a minute)."""
        try:
            return await call
        except Exception as error:  # noqa: BLE001
            log.warning("store write failed: %s", error)
            self.failures += 1
            self.last_error = str(error)
            now = self._clock.monotonic()
            if now - self._reported_at >= STORE_FAILURE_REPORT_S:
                self._reported_at = now
                self._bus.publish(StoreFailed(str(error)))
            return None

    async def save_offers(self, provider: str, offers: Sequence[Offer], at: float) -> None:
        """Keep ``provider``'s last good offers for the next start's first screen."""
        if isinstance(self.store, KeepsOffers):
            await self.call(self.store.save_offers(provider, offers, at))

    async def load_offers(self) -> dict[str, tuple[float, list[Offer]]]:
        """Each provider's last saved offers and when they were fetched ({} if the store keeps none)."""
        if not isinstance(self.store, KeepsOffers):
            return {}
        return await self.call(self.store.load_offers()) or {}
