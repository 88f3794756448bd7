"""Price history: what each offer configuration cost over time, and the market summary built on it."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence

from computehub_tui.clock import Clock
from computehub_tui.domain.history import PriceStat, price_stats
from computehub_tui.domain.market import MarketRow, market_summary
from computehub_tui.domain.models import Offer
from computehub_tui.engine.safe_store import SafeStore

REPLAY_DELAY_S = 3.0
"""The demo replays its past this long after start, once the first frame and polls are done."""

HistoryReplay = Callable[[], Awaitable[list[PriceStat]]]
"""Demo only: computes the simulated market's past price statistics."""


class HistoryService:
    def __init__(self, store: SafeStore, clock: Clock) -> None:
        self._store = store
        self._clock = clock

    async def record(self, offers: Sequence[Offer], at: float) -> None:
        await self._store.call(self._store.store.record_price_stats(price_stats(offers, at)))

    async def price_history(self, offer: Offer, window_s: float) -> list[PriceStat]:
        """Recorded min / median / p90 for the offer's configuration over the last ``window_s``."""
        history = await self._store.call(self._store.store.price_history(
            offer.gpu, self._clock.now() - window_s, provider=offer.provider, gpu_count=offer.gpu_count,
            pricing=offer.pricing.value))
        return history or []

    async def market_summary(self, offers: Sequence[Offer]) -> list[MarketRow]:
        """Per GPU model, the cheapest offer across providers now and its change over 24 h."""
        now = self._clock.now()
        day_ago: list[PriceStat] = []
        for gpu in sorted({offer.gpu for offer in offers}):
            stats = await self._store.call(self._store.store.price_history(gpu, now - 26 * 3600)) or []
            day_ago.extend(stat for stat in stats if stat.at <= now - 22 * 3600)
        return market_summary(offers, day_ago)

    async def replay(self, replay: HistoryReplay) -> None:
        """A supervised job: wait for start-up to settle, then store the demo's past."""
        await self._clock.sleep(REPLAY_DELAY_S)
        await self._store.call(self._store.store.record_price_stats(await replay()))
