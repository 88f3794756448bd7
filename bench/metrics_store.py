"""Metrics store size: 100 instances × 24 h of samples at 5 s, after the maintenance job with the default retention,
beside the same samples kept raw in the old (schema 5, JSON) format and in the packed one, all from the same run."""

from __future__ import annotations

import asyncio
import json
import random
import shutil
import sqlite3
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from bench.child import emit
from computehub_tui.clock import ManualClock
from computehub_tui.domain.models import MetricSample
from computehub_tui.engine.events import EventBus
from computehub_tui.engine.maintenance import MaintenanceService, RetentionSettings
from computehub_tui.engine.safe_store import SafeStore
from computehub_tui.store import Store
from computehub_tui.store._schema import MIGRATIONS

INSTANCES = 100
GPUS = 4
"""Per instance: a 4-GPU machine writes four values per per-GPU column, a middling case."""
INTERVAL_S = 5.0
SPAN_S = 86_400.0
HOUR = 3600.0
END = 1_790_006_400.0
"""A whole hour, so the 24 h span is exactly 24 complete hours."""
OLD_FORMAT_VERSION = 5
"""The last schema that kept metric readings as JSON text."""
LOOP_TICK_S = 0.01


def samples_of(hour: int, rng: random.Random) -> list[tuple[str, MetricSample]]:
    """Every instance's samples in one hour from the span's start; about 1 % of readings unknown."""
    start = END - SPAN_S + hour * HOUR
    batch = []
    for step in range(int(HOUR / INTERVAL_S)):
        at = start + step * INTERVAL_S
        for n in range(INSTANCES):
            util = tuple(None if rng.random() < 0.01 else float(rng.randrange(101)) for _ in range(GPUS))
            batch.append((f"vast:{9_100_000 + n}", MetricSample(
                time=at, gpu_util=util,  # type: ignore[arg-type]
                vram_used_gb=tuple(round(rng.uniform(0, 24), 2) for _ in range(GPUS)),
                vram_total_gb=(24.0,) * GPUS, gpu_temp_c=tuple(float(rng.randrange(30, 90)) for _ in range(GPUS)),
                cpu_pct=round(rng.uniform(0, 100), 1), ram_pct=round(rng.uniform(0, 100), 1))))
    return batch


def size_of(path: Path) -> int:
    return sum(Path(f"{path}{suffix}").stat().st_size for suffix in ("", "-wal")
               if Path(f"{path}{suffix}").exists())


def open_old_format(path: Path) -> sqlite3.Connection:
    """A store as schema 5 made it (same pragmas, same tables)."""
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("PRAGMA auto_vacuum=INCREMENTAL")
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=NORMAL")
    db.execute("BEGIN")
    for migration in MIGRATIONS[:OLD_FORMAT_VERSION]:
        for statement in migration.statements:
            db.execute(statement)
    db.execute(f"PRAGMA user_version={OLD_FORMAT_VERSION}")
    db.execute("COMMIT")
    return db


def write_old_format(db: sqlite3.Connection, samples: list[tuple[str, MetricSample]]) -> None:
    """The rows schema 5's codec wrote: per-GPU readings as compact JSON arrays, NULL power, names, source, error."""
    def array(values: tuple[float | None, ...]) -> str:
        return json.dumps(list(values), separators=(",", ":"))

    with db:
        db.executemany("INSERT INTO metric_samples VALUES (?, ?, ?, ?, ?, ?, ?, ?, NULL, NULL, NULL, NULL)",
                       [(key, s.time, array(s.gpu_util), array(s.vram_used_gb), array(s.vram_total_gb),
                         array(s.gpu_temp_c), s.cpu_pct, s.ram_pct) for key, s in samples])


async def fill(packed: Path, old: Path) -> float:
    """The same 24 h of samples into a packed store (through ``Store.add_metric_samples``) and an old-format one;
    returns the seconds the packed writes took."""
    rng = random.Random(10)
    writing = 0.0
    store = await Store.open(packed)
    old_db = open_old_format(old)
    try:
        for hour in range(int(SPAN_S / HOUR)):
            batch = samples_of(hour, rng)
            started = time.perf_counter()
            await store.add_metric_samples(batch)
            writing += time.perf_counter() - started
            write_old_format(old_db, batch)
    finally:
        await store.close()
        old_db.close()
    return writing


async def max_loop_stall(work: Awaitable[Any]) -> tuple[Any, float]:
    """``work``'s result, and the longest the event loop went without running a 10 ms ticker meanwhile."""
    worst = 0.0
    done = asyncio.Event()

    async def tick() -> None:
        nonlocal worst
        while not done.is_set():
            started = time.perf_counter()
            await asyncio.sleep(LOOP_TICK_S)
            worst = max(worst, time.perf_counter() - started - LOOP_TICK_S)

    ticker = asyncio.create_task(tick())
    try:
        return await work, worst
    finally:
        done.set()
        await ticker


def timing_holds(store: Store, holds: list[float], vacuum_s: list[float]) -> None:
    """Record how long each hold of the store's lock lasts (every transaction, read and vacuum chunk: what the
    sampler's writes and the charts' reads wait for at worst) and how long the vacuum takes in all."""
    lock = store._lock
    vacuum: Callable[[], Awaitable[None]] = store._incremental_vacuum

    class TimedLock:
        async def __aenter__(self) -> None:
            await lock.acquire()
            self.started = time.perf_counter()

        async def __aexit__(self, *_: object) -> None:
            holds.append(time.perf_counter() - self.started)
            lock.release()

    async def timed_vacuum() -> None:
        started = time.perf_counter()
        await vacuum()
        vacuum_s.append(time.perf_counter() - started)

    store._lock = TimedLock()  # type: ignore[assignment]
    store._incremental_vacuum = timed_vacuum  # type: ignore[method-assign]


async def job(store: Store, now: float) -> dict[str, Any]:
    """One run of the maintenance job with the default retention at ``now``: how long it took in all, the longest
    it held the store at a stretch (a roll-up transaction per instance, the pruning one, vacuum chunks), the
    vacuum's total, and the event loop's longest stall meanwhile."""
    holds: list[float] = []
    vacuum_s: list[float] = []
    timing_holds(store, holds, vacuum_s)
    clock = ManualClock(start=now)
    service = MaintenanceService(SafeStore(store, clock, EventBus()), clock, RetentionSettings())
    started = time.perf_counter()
    _, stall = await max_loop_stall(service.prune_once())
    return {"seconds": round(time.perf_counter() - started, 3), "longest_hold_s": round(max(holds), 3),
            "vacuum_seconds": round(sum(vacuum_s), 3), "max_loop_stall_s": round(stall, 3)}


async def row_counts(store: Store) -> dict[str, int]:
    return {table: (await store._fetch("count", f"SELECT count(*) FROM {table}"))[0][0]
            for table in ("metric_samples", "metric_rollups_1m", "metric_rollups_1h")}


async def maintained(path: Path) -> dict[str, Any]:
    """The job once at the end of the span (rolling up all 24 h), then its hourly run after one more hour of
    samples: the steady state, 100 instances × 4 GPUs × 1 h."""
    store = await Store.open(path)
    try:
        first = await job(store, END)
        rows = await row_counts(store)
    finally:
        await store.close()
    after_first = size_of(path)
    store = await Store.open(path)
    try:
        await store.add_metric_samples(samples_of(int(SPAN_S / HOUR), random.Random(11)))
        hourly = await job(store, END + HOUR)
    finally:
        await store.close()
    return {"bytes": after_first, "rows": rows, "first_job": first, "hourly_job": hourly,
            "bytes_after_hourly_job": size_of(path)}


async def migrated(path: Path) -> dict[str, Any]:
    """Opening the old-format store: the migration to packed rows, and the job that then gives the space back."""
    started = time.perf_counter()
    store = await Store.open(path)
    seconds = time.perf_counter() - started
    try:
        freed = await job(store, END)
    finally:
        await store.close()
    return {"migration_seconds": round(seconds, 3), "bytes_after_job": size_of(path), "job": freed}


async def measure(work: Path) -> dict[str, Any]:
    packed, old = work / "packed.db", work / "old.db"
    writing = await fill(packed, old)
    result: dict[str, Any] = {
        "instances": INSTANCES, "gpus": GPUS, "interval_s": INTERVAL_S, "span_s": SPAN_S,
        "samples": INSTANCES * int(SPAN_S / INTERVAL_S), "packed_write_seconds": round(writing, 3),
        "old_format_raw_only_bytes": size_of(old), "packed_raw_only_bytes": size_of(packed),
        "retention_defaults": {"metrics_raw_s": RetentionSettings().metrics_raw_s,
                               "metrics_1m_s": RetentionSettings().metrics_1m_s,
                               "metrics_1h_s": RetentionSettings().metrics_1h_s},
    }
    copy = work / "defaults.db"
    shutil.copyfile(packed, copy)
    result["defaults"] = await maintained(copy)
    result["old_format_migrated"] = await migrated(old)
    return result


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="chub-metrics-") as work:
        emit(asyncio.run(measure(Path(work))))


if __name__ == "__main__":
    main()
