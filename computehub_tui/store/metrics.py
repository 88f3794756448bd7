"""Metric history: per instance and time, each GPU's utilisation, VRAM, temperature and power, plus CPU and RAM."""

from __future__ import annotations

import aiosqlite

from computehub_tui.domain.models import MetricSample
from computehub_tui.store._codec import decode_metric_sample, encode_metric_sample
from computehub_tui.store.connection import StoreConnection

_METRIC_COLUMNS = ("at, gpu_util, vram_used_gb, vram_total_gb, gpu_temp_c, cpu_pct, ram_pct, gpu_power_w, gpu_names, "
                   "source, error")


class MetricStore(StoreConnection):
    async def add_metric_samples(self, samples: list[tuple[str, MetricSample]]) -> None:
        if not samples:
            return
        rows = [(key, *encode_metric_sample(sample)) for key, sample in samples]
        async with self._transaction("record metrics") as db:
            await db.executemany(
                f"INSERT OR REPLACE INTO metric_samples (instance_key, {_METRIC_COLUMNS}) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                rows,
            )

    async def metric_history(self, instance_key: str, since: float) -> list[MetricSample]:
        rows = await self._fetch(
            "read metrics",
            f"SELECT {_METRIC_COLUMNS} FROM metric_samples WHERE instance_key = ? AND at >= ? "
            "ORDER BY at",
            (instance_key, since),
        )
        return [decode_metric_sample(row) for row in rows]


async def delete_metric_samples_before(db: aiosqlite.Connection, cutoff: float) -> None:
    """Drop samples older than ``cutoff``; call inside a write transaction."""
    await db.execute("DELETE FROM metric_samples WHERE at < ?", (cutoff,))
