"""Offers: each provider's last good offers, so the first screen shows them before any poll answers."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence

from computehub_tui.domain.models import Offer
from computehub_tui.store._offer_codec import OffersDecodeError, decode_offers, encode_offers
from computehub_tui.store.connection import StoreConnection

log = logging.getLogger(__name__)

_REPLACE_SNAPSHOT = "INSERT OR REPLACE INTO offers_snapshot (provider, fetched_at, payload) VALUES (?, ?, ?)"


class OfferStore(StoreConnection):
    async def save_offers(self, provider: str, offers: Sequence[Offer], at: float) -> None:
        """Replace ``provider``'s snapshot with ``offers``, fetched at ``at`` (each keeps its own ``quoted_at``)."""
        foreign = sorted({o.provider for o in offers} - {provider})
        if foreign:
            raise ValueError(f"save_offers({provider!r}) got offers of {', '.join(foreign)}")
        # Encoding tens of thousands of offers is CPU work: off the event loop, so polls carry on meanwhile.
        payload = await asyncio.to_thread(encode_offers, offers)
        async with self._transaction(f"save {provider} offers") as db:
            await db.execute(_REPLACE_SNAPSHOT, (provider, at, payload))

    async def load_offers(self) -> dict[str, tuple[float, list[Offer]]]:
        """Each provider's last saved offers and when they were fetched; unreadable snapshots are skipped."""
        rows = await self._fetch(
            "load offers", "SELECT provider, fetched_at, payload FROM offers_snapshot ORDER BY provider"
        )
        snapshots: dict[str, tuple[float, list[Offer]]] = {}
        for provider, fetched_at, payload in rows:
            try:
                snapshots[provider] = (float(fetched_at), await asyncio.to_thread(decode_offers, payload))
            except OffersDecodeError as error:
                # Only a cache of the last poll, which the next poll rewrites: skip, don't fail.
                log.warning("skipping the stored %s offers: %s", provider, error)
        return snapshots
