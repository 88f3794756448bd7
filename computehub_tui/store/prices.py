"""Price history: per GPU, provider, count and pricing kind, the min / median / p90 of each poll."""

from __future__ import annotations

from typing import Any

import aiosqlite

from computehub_tui.domain.history import PriceStat
from computehub_tui.store.connection import StoreConnection

_PRICE_STAT_COLUMNS = (
    "at, provider, gpu, gpu_count, pricing, min_price, median_price, p90_price, offer_count"
)


class PriceStore(StoreConnection):
    async def record_price_stats(self, stats: list[PriceStat]) -> None:
        if not stats:
            return
        rows = [
            (
                s.at,
                s.provider,
                s.gpu,
                s.gpu_count,
                s.pricing,
                s.min_price,
                s.median_price,
                s.p90_price,
                s.offer_count,
            )
            for s in stats
        ]
        async with self._transaction("record price history") as db:
            await db.executemany(
                f"INSERT OR REPLACE INTO price_stats ({_PRICE_STAT_COLUMNS}) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                rows,
            )

    async def price_history(
        self,
        gpu: str,
        since: float,
        *,
        provider: str | None = None,
        gpu_count: int | None = None,
        pricing: str | None = None,
    ) -> list[PriceStat]:
        """Stats for ``gpu`` from ``since`` on, oldest first; the keyword filters narrow it down."""
        conditions = ["gpu = ?", "at >= ?"]
        params: list[Any] = [gpu, since]
        for column, value in (
            ("provider", provider),
            ("gpu_count", gpu_count),
            ("pricing", pricing),
        ):
            if value is not None:
                conditions.append(f"{column} = ?")
                params.append(value)
        rows = await self._fetch(
            "read price history",
            f"SELECT {_PRICE_STAT_COLUMNS} FROM price_stats WHERE {' AND '.join(conditions)} "
            "ORDER BY at, provider, gpu_count, pricing",
            params,
        )
        return [PriceStat(*row) for row in rows]


async def delete_price_stats_before(db: aiosqlite.Connection, cutoff: float) -> None:
    """Drop stats older than ``cutoff``; call inside a write transaction."""
    await db.execute("DELETE FROM price_stats WHERE at < ?", (cutoff,))
