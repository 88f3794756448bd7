"""Metric rollups: raw samples folded into one-minute rows, and those into hourly rows, per instance."""

from __future__ import annotations

import asyncio
import math
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import aiosqlite

from computehub_tui.domain.models import MetricSample
from computehub_tui.store._codec import (
    ROLLED_STATS,
    ROLLUP_LAYOUT,
    SAMPLE_LAYOUT,
    Units,
    pack,
    to_values,
    unpack,
)
from computehub_tui.store.connection import StoreConnection


@dataclass(frozen=True, slots=True)
class Rollup:
    table: str
    seconds: int


ROLLUP_1M = Rollup("metric_rollups_1m", 60)
ROLLUP_1H = Rollup("metric_rollups_1h", 3600)

Folded = tuple[int, int, bytes]
"""(bucket start in seconds, samples folded, packed stats) of one rollup row."""


@dataclass(frozen=True, slots=True)
class _Source:
    """Where a rollup reads from: raw samples (times in milliseconds, each counts once) or finer
    rollup rows (bucket starts in seconds, each counts as many samples as it folded)."""

    table: str
    time: str
    per_second: int
    columns: str
    fold: Callable[[Sequence[Any], int], list[Folded]]


def stats_of(row_stats: bytes) -> dict[str, tuple[float | None, ...]]:
    """A rollup row's packed stats by name (per GPU; one value for ``cpu_pct`` and ``ram_pct``)."""
    values = to_values(ROLLUP_LAYOUT, unpack(ROLLUP_LAYOUT, row_stats))
    return {stat.name: figures for stat, figures in zip(ROLLED_STATS, values, strict=True)}


class RollupStore(StoreConnection):
    async def metric_rollups(self, instance_key: str, since: float, rollup: Rollup) -> list[MetricSample]:
        """``instance_key``'s rollup rows from ``since`` on, as samples of their mean values (at each
        bucket's start)."""
        rows = await self._fetch(
            "read metric rollups",
            f"SELECT bucket, stats FROM {rollup.table} "
            "WHERE series = (SELECT id FROM metric_series WHERE instance_key = ?) AND bucket >= ? ORDER BY bucket",
            (instance_key, math.floor(since / rollup.seconds) * rollup.seconds),
        )
        return [_as_sample(float(bucket), stats_of(stats)) for bucket, stats in rows]

    async def roll_up(self, now: float, *, raw_keep_s: float, minutes_keep_s: float) -> None:
        """Fold every complete minute of raw samples into ``metric_rollups_1m`` and every complete hour of
        those into ``metric_rollups_1h``; call before pruning.

        One transaction per instance, so the sampler's writes and the charts' reads get the store between
        them rather than waiting for the whole fleet's.
        Each level goes on from the newest bucket it already has (recomputed, for samples that came in
        late) unless that bucket's source may have been pruned since, so a bucket is never rewritten from a
        partly pruned source, and running it twice over the same data writes the same rows."""
        for (series,) in await self._fetch("list metric series", "SELECT id FROM metric_series ORDER BY id"):
            async with self._transaction("roll up metrics") as db:
                await _roll(db, _RAW, ROLLUP_1M, series, now, now - raw_keep_s)
                await _roll(db, _MINUTES, ROLLUP_1H, series, now, now - minutes_keep_s)


def _as_sample(at: float, stats: dict[str, tuple[float | None, ...]]) -> MetricSample:
    return MetricSample(time=at, gpu_util=stats["gpu_util_mean"], vram_used_gb=stats["vram_used_mean"],
                        vram_total_gb=stats["vram_total"], gpu_temp_c=stats["gpu_temp_mean"],
                        gpu_power_w=stats["power_mean"], cpu_pct=stats["cpu_pct"][0], ram_pct=stats["ram_pct"][0])


async def delete_rollups_before(db: aiosqlite.Connection, rollup: Rollup, cutoff: float) -> None:
    """Drop rollup rows whose bucket began before ``cutoff``; call inside a write transaction."""
    await db.execute(f"DELETE FROM {rollup.table} WHERE series IN (SELECT id FROM metric_series) AND bucket < ?",
                     (cutoff,))


async def _roll(db: aiosqlite.Connection, source: _Source, target: Rollup, series: int, now: float,
                kept_from: float) -> None:
    width = target.seconds
    end = math.floor(now / width) * width
    start = await _first_bucket_to_roll(db, source, target, series, end, kept_from)
    if start is None or start >= end:
        return
    rows = list(await db.execute_fetchall(
        f"SELECT {source.columns} FROM {source.table} WHERE series = ? AND {source.time} >= ? "
        f"AND {source.time} < ? ORDER BY {source.time}",
        (series, start * source.per_second, end * source.per_second)))
    if not rows:
        return
    # Decoding and folding is pure Python: off the event loop, so the app stays responsive meanwhile.
    folded = await asyncio.to_thread(source.fold, rows, width)
    await db.executemany(f"INSERT OR REPLACE INTO {target.table} (series, bucket, samples, stats) "
                         "VALUES (?, ?, ?, ?)", [(series, *row) for row in folded])


async def _first_bucket_to_roll(db: aiosqlite.Connection, source: _Source, target: Rollup, series: int, end: int,
                                kept_from: float) -> int | None:
    """Where ``series`` goes on from (each lookup a range of a primary key, so an hourly run reads no index)."""
    width = target.seconds
    rows = list(await db.execute_fetchall(f"SELECT max(bucket) FROM {target.table} WHERE series = ? AND bucket < ?",
                                          (series, end)))
    latest = rows[0][0]
    if latest is None:
        rows = list(await db.execute_fetchall(f"SELECT min({source.time}) FROM {source.table} WHERE series = ?",
                                              (series,)))
        return None if rows[0][0] is None else math.floor(rows[0][0] / source.per_second / width) * width
    # Pruning only ever cut the source before an earlier run's ``kept_from``, which is before this one's.
    return int(latest) if latest >= kept_from else int(latest) + width


def _fold_samples(rows: Sequence[Any], width: int) -> list[Folded]:
    """Raw ``(at ms, readings)`` rows of one instance, in time order, into one rollup row per bucket."""
    buckets: dict[int, list[Units]] = defaultdict(list)
    per_bucket_ms = width * 1000
    for at, readings in rows:
        buckets[at // per_bucket_ms * width].append(unpack(SAMPLE_LAYOUT, readings))
    return [(bucket, len(samples), pack(ROLLUP_LAYOUT, _fold_raw(samples))) for bucket, samples in buckets.items()]


def _fold_minutes(rows: Sequence[Any], width: int) -> list[Folded]:
    """One instance's ``(bucket, samples, stats)`` rollup rows, in time order, into coarser rows."""
    buckets: dict[int, list[tuple[int, Units]]] = defaultdict(list)
    for bucket, samples, stats in rows:
        buckets[bucket // width * width].append((int(samples), unpack(ROLLUP_LAYOUT, stats)))
    return [(bucket, sum(samples for samples, _ in parts), pack(ROLLUP_LAYOUT, _fold_rolled(parts)))
            for bucket, parts in buckets.items()]


def _fold_raw(samples: list[Units]) -> Units:
    by_raw = [_fold([sample[index] for sample in samples], None, reading.unknown)
              for index, reading in enumerate(SAMPLE_LAYOUT)]
    return tuple(by_raw[stat.raw][0 if stat.kind == "mean" else 1] for stat in ROLLED_STATS)


def _fold_rolled(parts: list[tuple[int, Units]]) -> Units:
    weights = [samples for samples, _ in parts]
    return tuple(
        _fold([units[index] for _, units in parts], weights, reading.unknown)[0]
        if stat.kind == "mean" else _fold([units[index] for _, units in parts], None, reading.unknown)[1]
        for index, (stat, reading) in enumerate(zip(ROLLED_STATS, ROLLUP_LAYOUT, strict=True)))


def _fold(series: list[tuple[int, ...]], weights: list[int] | None,
          unknown: int) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """Per position (GPU), the mean (weighted by ``weights``, else each counts once) and the maximum over the
    known integers of ``series``; ``unknown`` where none is known."""
    width = max(map(len, series), default=0)
    if min(map(len, series), default=0) != width:
        series = [values + (unknown,) * (width - len(values)) for values in series]
    means: list[int] = []
    maxima: list[int] = []
    for column in zip(*series, strict=True):
        if weights is None:
            known = [value for value in column if value != unknown]
            means.append(round(sum(known) / len(known)) if known else unknown)
        else:
            pairs = [(value, weight) for value, weight in zip(column, weights, strict=True) if value != unknown]
            total = sum(weight for _, weight in pairs)
            means.append(round(sum(value * weight for value, weight in pairs) / total) if total else unknown)
            known = [value for value, _ in pairs]
        maxima.append(max(known) if known else unknown)
    return tuple(means), tuple(maxima)


_RAW = _Source("metric_samples", "at", 1000, "at, readings", _fold_samples)
_MINUTES = _Source(ROLLUP_1M.table, "bucket", 1, "bucket, samples, stats", _fold_minutes)
