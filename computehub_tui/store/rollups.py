"""Metric rollups: raw samples folded into one-minute rows, and those into hourly rows, per instance."""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass
from typing import Any, Literal

import aiosqlite

from computehub_tui.domain.models import MetricSample
from computehub_tui.store._codec import decode_floats, encode_floats
from computehub_tui.store.connection import StoreConnection

StatKind = Literal["mean", "max"]


@dataclass(frozen=True, slots=True)
class RolledStat:
    """One per-GPU figure a rollup row keeps: ``kind`` of the raw sample column ``raw``."""

    column: str
    raw: str
    kind: StatKind


GPU_STATS: tuple[RolledStat, ...] = (
    RolledStat("gpu_util_mean", "gpu_util", "mean"),
    RolledStat("gpu_util_max", "gpu_util", "max"),
    RolledStat("vram_used_mean", "vram_used_gb", "mean"),
    RolledStat("vram_used_max", "vram_used_gb", "max"),
    RolledStat("vram_total", "vram_total_gb", "max"),
    RolledStat("gpu_temp_mean", "gpu_temp_c", "mean"),
    RolledStat("gpu_temp_max", "gpu_temp_c", "max"),
    RolledStat("power_mean", "gpu_power_w", "mean"),
    RolledStat("power_max", "gpu_power_w", "max"),
)
"""What is rolled up per GPU (a sample without power readings stores NULL there: ``json_each`` skips it)."""
HOST_STATS: tuple[str, ...] = ("cpu_pct", "ram_pct")
"""Per-instance figures, kept as their mean."""


@dataclass(frozen=True, slots=True)
class Rollup:
    table: str
    seconds: int


ROLLUP_1M = Rollup("metric_rollups_1m", 60)
ROLLUP_1H = Rollup("metric_rollups_1h", 3600)


@dataclass(frozen=True, slots=True)
class _Source:
    """Where a rollup reads from: the raw samples (each counts once) or finer rollup rows (each counts
    as many samples as it folded)."""

    table: str
    time: str
    weight: str
    raw: bool


_RAW = _Source("metric_samples", "at", "1", raw=True)
_MINUTES = _Source(ROLLUP_1M.table, "bucket", "samples", raw=False)

_COLUMNS = ("instance_key", "bucket", "samples", *(stat.column for stat in GPU_STATS), *HOST_STATS)


class RollupStore(StoreConnection):
    async def metric_rollups(self, instance_key: str, since: float, rollup: Rollup) -> list[MetricSample]:
        """``instance_key``'s rollup rows from ``since`` on, as samples of their mean values (at each
        bucket's start)."""
        rows = await self._fetch(
            "read metric rollups",
            f"SELECT bucket, gpu_util_mean, vram_used_mean, vram_total, gpu_temp_mean, power_mean, cpu_pct, ram_pct "
            f"FROM {rollup.table} WHERE instance_key = ? AND bucket >= ? ORDER BY bucket",
            (instance_key, math.floor(since / rollup.seconds) * rollup.seconds),
        )
        return [MetricSample(time=float(bucket), gpu_util=decode_floats(util), vram_used_gb=decode_floats(used),
                             vram_total_gb=decode_floats(total), gpu_temp_c=decode_floats(temp),
                             gpu_power_w=decode_floats(power), cpu_pct=cpu, ram_pct=ram)
                for bucket, util, used, total, temp, power, cpu, ram in rows]


async def roll_up(db: aiosqlite.Connection, now: float, *, raw_keep_s: float, minutes_keep_s: float) -> None:
    """Fold every complete minute of raw samples into ``metric_rollups_1m`` and every complete hour of
    those into ``metric_rollups_1h``; call inside a write transaction, before pruning.

    Each level goes on from the newest bucket it already has (recomputed, for samples that came in
    late) unless that bucket's source may have been pruned since, so a bucket is never rewritten from a
    partly pruned source, and running it twice over the same data writes the same rows."""
    await _roll(db, _RAW, ROLLUP_1M, now, now - raw_keep_s)
    await _roll(db, _MINUTES, ROLLUP_1H, now, now - minutes_keep_s)


async def delete_rollups_before(db: aiosqlite.Connection, rollup: Rollup, cutoff: float) -> None:
    """Drop rollup rows whose bucket began before ``cutoff``; call inside a write transaction."""
    await db.execute(f"DELETE FROM {rollup.table} WHERE bucket < ?", (cutoff,))


async def _roll(db: aiosqlite.Connection, source: _Source, target: Rollup, now: float, kept_from: float) -> None:
    width = target.seconds
    end = math.floor(now / width) * width
    start = await _first_bucket_to_roll(db, source, target, end, kept_from)
    if start is None or start >= end:
        return
    buckets = await _host_figures(db, source, width, start, end)
    for column in {stat.raw if source.raw else stat.column for stat in GPU_STATS}:
        await _gpu_figures(db, source, column, width, start, end, buckets)
    await db.executemany(
        f"INSERT OR REPLACE INTO {target.table} ({', '.join(_COLUMNS)}) VALUES ({', '.join('?' * len(_COLUMNS))})",
        [_row(key, bucket, figures) for (key, bucket), figures in sorted(buckets.items())],
    )


async def _first_bucket_to_roll(db: aiosqlite.Connection, source: _Source, target: Rollup, end: int,
                                kept_from: float) -> int | None:
    width = target.seconds
    rows = list(await db.execute_fetchall(f"SELECT max(bucket) FROM {target.table} WHERE bucket < ?", (end,)))
    latest = rows[0][0]
    if latest is None:
        rows = list(await db.execute_fetchall(f"SELECT min({source.time}) FROM {source.table}"))
        return None if rows[0][0] is None else math.floor(rows[0][0] / width) * width
    # Pruning only ever cut the source before an earlier run's ``kept_from``, which is before this one's.
    return int(latest) if latest >= kept_from else int(latest) + width


def _bucket_of(time: str, width: int) -> str:
    return f"CAST({time} / {width} AS INTEGER) * {width}"


def _weighted_mean(value: str, weight: str) -> str:
    """Mean over known values only: an all-unknown group is NULL, never 0."""
    return f"sum({value} * {weight}) / sum(CASE WHEN {value} IS NOT NULL THEN {weight} END)"


async def _host_figures(db: aiosqlite.Connection, source: _Source, width: int, start: int,
                        end: int) -> dict[tuple[str, int], dict[str, Any]]:
    means = ", ".join(_weighted_mean(column, source.weight) for column in HOST_STATS)
    rows = await db.execute_fetchall(
        f"SELECT instance_key, {_bucket_of(source.time, width)} AS slot, sum({source.weight}), {means} "
        f"FROM {source.table} WHERE {source.time} >= ? AND {source.time} < ? GROUP BY instance_key, slot",
        (start, end),
    )
    return {(key, int(bucket)): {"samples": int(samples), **dict(zip(HOST_STATS, figures, strict=True))}
            for key, bucket, samples, *figures in rows}


async def _gpu_figures(db: aiosqlite.Connection, source: _Source, column: str, width: int, start: int, end: int,
                       buckets: dict[tuple[str, int], dict[str, Any]]) -> None:
    """Each GPU's figures from ``column`` (a JSON array per row) into ``buckets``, by rollup column."""
    stats = [stat for stat in GPU_STATS if (stat.raw if source.raw else stat.column) == column]
    weight = "1" if source.raw else f"s.{source.weight}"
    aggregates = ", ".join("max(g.value)" if stat.kind == "max" else _weighted_mean("g.value", weight)
                           for stat in stats)
    rows = await db.execute_fetchall(
        f"SELECT s.instance_key, {_bucket_of('s.' + source.time, width)} AS slot, "
        f"CAST(g.key AS INTEGER) AS gpu, {aggregates} "
        f"FROM {source.table} AS s, json_each(s.{column}) AS g "
        f"WHERE s.{source.time} >= ? AND s.{source.time} < ? GROUP BY s.instance_key, slot, gpu",
        (start, end),
    )
    per_gpu: dict[tuple[str, int, str], dict[int, float | None]] = defaultdict(dict)
    for key, bucket, gpu, *values_by_stat in rows:
        for stat, figure in zip(stats, values_by_stat, strict=True):
            per_gpu[(key, int(bucket), stat.column)][int(gpu)] = None if figure is None else float(figure)
    for (key, bucket, stat_column), values in per_gpu.items():
        bucket_figures = buckets.get((key, bucket))
        if bucket_figures is not None:
            bucket_figures[stat_column] = [values.get(gpu) for gpu in range(max(values) + 1)]


def _row(key: str, bucket: int, figures: dict[str, Any]) -> tuple[Any, ...]:
    return (key, bucket, figures["samples"], *(encode_floats(figures.get(stat.column, [])) for stat in GPU_STATS),
            *(figures[column] for column in HOST_STATS))
