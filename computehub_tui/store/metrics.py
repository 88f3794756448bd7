"""Metric history: per instance and time, each GPU's utilisation, VRAM, temperature and power, plus CPU and RAM."""

from __future__ import annotations

from collections.abc import Iterable

import aiosqlite

from computehub_tui.domain.models import MetricSample
from computehub_tui.store._codec import decode_metric_sample, encode_metric_sample, time_ms
from computehub_tui.store.connection import StoreConnection


class MetricStore(StoreConnection):
    async def add_metric_samples(self, samples: list[tuple[str, MetricSample]]) -> None:
        if not samples:
            return
        rows = [(key, *encode_metric_sample(sample)) for key, sample in samples]
        async with self._transaction("record metrics") as db:
            series = await series_ids(db, {key for key, *_ in rows})
            names = await _ids(db, "metric_gpu_names", "names", {row[3] for row in rows if row[3] is not None})
            await db.executemany(
                "INSERT OR REPLACE INTO metric_samples (series, at, readings, names, source, error) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                [(series[key], at, readings, None if gpus is None else names[gpus], source, error)
                 for key, at, readings, gpus, source, error in rows],
            )

    async def metric_history(self, instance_key: str, since: float) -> list[MetricSample]:
        rows = await self._fetch(
            "read metrics",
            "SELECT s.at, s.readings, n.names, s.source, s.error FROM metric_samples AS s "
            "LEFT JOIN metric_gpu_names AS n ON n.id = s.names "
            "WHERE s.series = (SELECT id FROM metric_series WHERE instance_key = ?) AND s.at >= ? ORDER BY s.at",
            (instance_key, time_ms(since)),
        )
        return [decode_metric_sample(row) for row in rows]


async def series_ids(db: aiosqlite.Connection, keys: Iterable[str]) -> dict[str, int]:
    """Each instance key's small integer (made on first use), which metric rows carry instead of the key;
    call inside a write transaction."""
    return await _ids(db, "metric_series", "instance_key", keys)


async def _ids(db: aiosqlite.Connection, table: str, column: str, values: Iterable[str]) -> dict[str, int]:
    """Each value's integer in ``table`` (a lookup of ``id`` and unique ``column``), made on first use."""
    wanted = sorted(values)
    # New values are rare (a new instance, a new set of GPUs), so numbering them with max() + 1 is cheap.
    await db.executemany(f"INSERT OR IGNORE INTO {table} ({column}, id) "
                         f"VALUES (?, (SELECT coalesce(max(id), 0) + 1 FROM {table}))", [(value,) for value in wanted])
    found: dict[str, int] = {}
    # Chunked to stay far below SQLite's limit on bound parameters.
    for start in range(0, len(wanted), 500):
        chunk = wanted[start:start + 500]
        rows = await db.execute_fetchall(
            f"SELECT {column}, id FROM {table} WHERE {column} IN ({', '.join('?' * len(chunk))})", chunk)
        found.update((str(value), int(number)) for value, number in rows)
    return found


async def delete_metric_samples_before(db: aiosqlite.Connection, cutoff: float) -> None:
    """Drop samples older than ``cutoff``; call inside a write transaction."""
    # Per series, so each delete is a range of the primary key and the table needs no index on time.
    await db.execute("DELETE FROM metric_samples WHERE series IN (SELECT id FROM metric_series) AND at < ?",
                     (time_ms(cutoff),))
