"""Metric history: per instance and time, each GPU's utilisation, VRAM, temperature and power, plus CPU and RAM."""

from __future__ import annotations

from collections.abc import Iterable

import aiosqlite

from computehub_tui.domain.models import MetricSample
from computehub_tui.store._codec import decode_metric_sample, encode_metric_sample, time_ms
from computehub_tui.store.connection import StoreConnection

_METRIC_COLUMNS = "at, readings, gpu_names, source, error"


class MetricStore(StoreConnection):
    async def add_metric_samples(self, samples: list[tuple[str, MetricSample]]) -> None:
        if not samples:
            return
        async with self._transaction("record metrics") as db:
            series = await series_ids(db, {key for key, _ in samples})
            await db.executemany(
                f"INSERT OR REPLACE INTO metric_samples (series, {_METRIC_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?)",
                [(series[key], *encode_metric_sample(sample)) for key, sample in samples],
            )

    async def metric_history(self, instance_key: str, since: float) -> list[MetricSample]:
        rows = await self._fetch(
            "read metrics",
            f"SELECT {_METRIC_COLUMNS} FROM metric_samples "
            "WHERE series = (SELECT id FROM metric_series WHERE instance_key = ?) AND at >= ? ORDER BY at",
            (instance_key, time_ms(since)),
        )
        return [decode_metric_sample(row) for row in rows]


async def series_ids(db: aiosqlite.Connection, keys: Iterable[str]) -> dict[str, int]:
    """Each instance key's small integer (made on first use), which metric rows carry instead of the key;
    call inside a write transaction."""
    wanted = sorted(keys)
    await db.executemany("INSERT OR IGNORE INTO metric_series (instance_key) VALUES (?)", [(k,) for k in wanted])
    found: dict[str, int] = {}
    # Chunked to stay far below SQLite's limit on bound parameters.
    for start in range(0, len(wanted), 500):
        chunk = wanted[start:start + 500]
        rows = await db.execute_fetchall(
            f"SELECT instance_key, id FROM metric_series WHERE instance_key IN ({', '.join('?' * len(chunk))})", chunk)
        found.update((str(key), int(series)) for key, series in rows)
    return found


async def delete_metric_samples_before(db: aiosqlite.Connection, cutoff: float) -> None:
    """Drop samples older than ``cutoff``; call inside a write transaction."""
    # Per series, so each delete is a range of the primary key and the table needs no index on time.
    await db.execute("DELETE FROM metric_samples WHERE series IN (SELECT id FROM metric_series) AND at < ?",
                     (time_ms(cutoff),))
