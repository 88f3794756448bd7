"""Idle CPU in a fresh process: `python -m bench.idle_child app|datatable SECONDS [rows.json]`.

The app runs in demo mode with its pollers live (instances every 5 s); the baseline is a bare
DataTable app holding the same rows. CPU is this process's CPU time over wall time.
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

from textual.app import App
from textual.pilot import Pilot
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

SETTLE_S = 2.0
"""Quiet time after the first full paint, so start-up work does not count as idle."""


async def measure_idle(pilot: Pilot[Any], probe: PaintProbe, seconds: float) -> dict[str, Any]:
    await asyncio.sleep(SETTLE_S)
    frames_before = probe.frames
    cpu_before, wall_before = time.process_time(), time.perf_counter()
    await asyncio.sleep(seconds)
    cpu, wall = time.process_time() - cpu_before, time.perf_counter() - wall_before
    return {"seconds": wall, "cpu_seconds": cpu, "cpu_percent": 100.0 * cpu / wall,
            "frames": probe.frames - frames_before}


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
            result = await measure_idle(pilot, probe, seconds)
            result["offers"] = len(app.hub.offers())
    result["engine_events"] = dict(events)
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
        result = await measure_idle(pilot, probe, seconds)
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
