"""Metrics store size: 100 instances × 24 h of samples at 5 s, after the maintenance job's rollups and pruning,
beside the same samples kept raw without rollups (measured in the same run)."""

from __future__ import annotations

import asyncio
import random
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.child import emit
from computehub_tui.clock import ManualClock
from computehub_tui.domain.models import MetricSample
from computehub_tui.engine.events import EventBus
from computehub_tui.engine.maintenance import MaintenanceService, RetentionSettings
from computehub_tui.engine.safe_store import SafeStore
from computehub_tui.store import Store

INSTANCES = 100
GPUS = 4
"""Per instance: a 4-GPU machine writes four values per per-GPU column, a middling case."""
INTERVAL_S = 5.0
SPAN_S = 86_400.0
END = 1_790_006_400.0
"""A whole hour, so the 24 h span is exactly 24 complete hours."""
SHORT_RAW_S = 2 * 3600.0


def samples_of(hour: int, rng: random.Random) -> list[tuple[str, MetricSample]]:
    """Every instance's samples in one hour of the span; about 1 % of readings unknown."""
    start = END - SPAN_S + hour * 3600.0
    batch = []
    for step in range(int(3600 / INTERVAL_S)):
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


async def fill(path: Path) -> float:
    rng = random.Random(10)
    started = time.perf_counter()
    store = await Store.open(path)
    try:
        for hour in range(int(SPAN_S / 3600)):
            await store.add_metric_samples(samples_of(hour, rng))
    finally:
        await store.close()
    return time.perf_counter() - started


async def maintained(path: Path, retention: RetentionSettings) -> dict[str, Any]:
    """Run the maintenance job once at the end of the span; sizes and rows after it."""
    store = await Store.open(path)
    started = time.perf_counter()
    try:
        service = MaintenanceService(SafeStore(store, ManualClock(start=END), EventBus()), ManualClock(start=END),
                                     retention)
        await service.prune_once()
        seconds = time.perf_counter() - started
        counts = {table: (await store._fetch("count", f"SELECT count(*) FROM {table}"))[0][0]  # noqa: SLF001
                  for table in ("metric_samples", "metric_rollups_1m", "metric_rollups_1h")}
    finally:
        await store.close()
    return {"bytes": size_of(path), "seconds": seconds, "rows": counts,
            "retention": {"metrics_raw_s": retention.metrics_raw_s, "metrics_1m_s": retention.metrics_1m_s,
                          "metrics_1h_s": retention.metrics_1h_s}}


async def measure(work: Path) -> dict[str, Any]:
    raw = work / "raw.db"
    fill_seconds = await fill(raw)
    baseline = {"bytes": size_of(raw), "rows": INSTANCES * int(SPAN_S / INTERVAL_S)}
    sides: dict[str, Any] = {"baseline": baseline, "fill_seconds": fill_seconds, "instances": INSTANCES,
                             "gpus": GPUS, "interval_s": INTERVAL_S, "span_s": SPAN_S}
    for side, retention in (("defaults", RetentionSettings()),
                            ("raw_2h", RetentionSettings(metrics_raw_s=SHORT_RAW_S))):
        copy = work / f"{side}.db"
        shutil.copyfile(raw, copy)
        sides[side] = await maintained(copy, retention)
        copy.unlink()
    return sides


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="chub-metrics-") as work:
        emit(asyncio.run(measure(Path(work))))


if __name__ == "__main__":
    sys.exit(main())
