"""Idle CPU in a fresh process: `python -m bench.idle_child app|datatable SECONDS [rows.json]`.

The app runs in demo mode with its pollers live (instances every 5 s); the baseline is a bare
DataTable app holding the same rows. CPU is this process's CPU time (all threads) over wall
time, measured once start-up background work has died down.
"""

from __future__ import annotations

import asyncio
import json
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

from textual.widgets import DataTable

from bench.child import TERMINAL_SIZE, emit, wait_until
from bench.datatable_app import OfferDataTableApp
from bench.probe import (
    PaintProbe,
    data_table_data_row,
    data_table_settled,
    hook_frames,
    hook_table_lines,
    virtual_table_data_row,
)

SETTLE_MIN_S = 5.0
"""Never measure sooner than this after the first full paint (start-up work may begin late:
demo mode replays price history a few seconds in)."""
SETTLE_MAX_S = 30.0
QUIET_PERCENT = 15.0
QUIET_WINDOWS = 2
"""Settled once this many consecutive one-second windows each stay under QUIET_PERCENT CPU."""


async def cpu_percent_over(seconds: float) -> float:
    cpu, wall = time.process_time(), time.perf_counter()
    await asyncio.sleep(seconds)
    return 100.0 * (time.process_time() - cpu) / (time.perf_counter() - wall)


async def settle() -> dict[str, Any]:
    """Wait out start-up background work; report how long it took and what it cost."""
    started, cpu_started = time.perf_counter(), time.process_time()
    samples: list[float] = []
    while True:
        samples.append(await cpu_percent_over(1.0))
        elapsed = time.perf_counter() - started
        quiet = len(samples) >= QUIET_WINDOWS and all(
            sample < QUIET_PERCENT for sample in samples[-QUIET_WINDOWS:])
        if (quiet and elapsed >= SETTLE_MIN_S) or elapsed >= SETTLE_MAX_S:
            break
    return {"settle_seconds": elapsed, "settle_cpu_seconds": time.process_time() - cpu_started,
            "settle_samples_percent": samples, "settled": quiet}


async def measure_idle(probe: PaintProbe, seconds: float) -> dict[str, Any]:
    result = await settle()
    frames_before = probe.frames
    cpu_before, wall_before = time.process_time(), time.perf_counter()
    samples = [await cpu_percent_over(1.0) for _ in range(max(1, round(seconds)))]
    cpu, wall = time.process_time() - cpu_before, time.perf_counter() - wall_before
    result.update({"seconds": wall, "cpu_seconds": cpu, "cpu_percent": 100.0 * cpu / wall,
                   "samples_percent": samples, "frames": probe.frames - frames_before})
    return result


async def idle_app(seconds: float) -> dict[str, Any]:
    from computehub_tui.config import Config
    from computehub_tui.engine.events import EngineEvent
    from computehub_tui.ui.app import ComputeHubApp
    from computehub_tui.ui.widgets.virtual_table import VirtualTable
    from computehub_tui.wiring import open_session

    probe = PaintProbe(need_data_rows=True)
    probe.arm()
    hook_table_lines(VirtualTable, probe, virtual_table_data_row, only_id="offer-table")
    events: Counter[str] = Counter()

    def count(event: EngineEvent) -> None:
        events[type(event).__name__] += 1

    with tempfile.TemporaryDirectory(prefix="chub-bench-") as data_dir:
        app = ComputeHubApp(lambda: open_session(Config(), Path(data_dir), demo=True))
        hook_frames(app, probe)
        async with app.run_test(size=TERMINAL_SIZE) as pilot:
            await wait_until(pilot, lambda: probe.painted, "the offers to be painted")
            assert app.hub is not None
            app.hub.bus.subscribe(count)
            result = await measure_idle(probe, seconds)
            result["offers"] = len(app.hub.offers())
    result["engine_events_since_first_paint"] = dict(events)
    return result


async def idle_datatable(seconds: float, rows_path: Path) -> dict[str, Any]:
    spec = json.loads(rows_path.read_text(encoding="utf-8"))
    app = OfferDataTableApp(spec["columns"], spec["rows"])
    probe = PaintProbe(need_data_rows=True, settled=lambda: data_table_settled(app.table))
    probe.arm()
    hook_table_lines(DataTable, probe, data_table_data_row)
    hook_frames(app, probe)
    async with app.run_test(size=TERMINAL_SIZE) as pilot:
        await wait_until(pilot, lambda: probe.painted, "the DataTable rows to be painted")
        result = await measure_idle(probe, seconds)
        result["offers"] = app.table.row_count
    return result


def main() -> None:
    side, seconds = sys.argv[1], float(sys.argv[2])
    if side == "app":
        emit(asyncio.run(idle_app(seconds)))
    elif side == "datatable":
        emit(asyncio.run(idle_datatable(seconds, Path(sys.argv[3]))))
    else:
        raise SystemExit("usage: python -m bench.idle_child app|datatable SECONDS [rows.json]")


if __name__ == "__main__":
    main()
