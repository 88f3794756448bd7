"""One startup run in a fresh process: `python -m bench.startup_child app [data-dir] | datatable rows.json`.

With a data dir the app keeps what it stores there (a second start finds the last run's data);
without one it starts from an empty temporary dir (a first start)."""

from __future__ import annotations

import time

STARTED_AT = time.perf_counter()
# Everything below is imported after the clock starts, so import time counts as startup.

import asyncio  # noqa: E402
import json  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402


def _ms_since_start(at: float) -> float:
    return (at - STARTED_AT) * 1000.0


async def run_app(data_dir: Path | None) -> dict[str, Any]:
    """The real app in demo mode with default settings, built as the CLI builds it."""
    from bench.child import TERMINAL_SIZE, wait_until
    from bench.probe import PaintProbe, hook_frames, hook_table_lines, virtual_table_data_row
    from computehub_tui.config import Config
    from computehub_tui.ui.app import ComputeHubApp
    from computehub_tui.ui.widgets.virtual_table import VirtualTable
    from computehub_tui.wiring import open_session

    imported_at = time.perf_counter()
    probe = PaintProbe(need_data_rows=True)
    probe.arm(at=STARTED_AT)
    painted_counts: list[tuple[float, int]] = []
    hook_table_lines(VirtualTable, probe, virtual_table_data_row, only_id="offer-table")

    with tempfile.TemporaryDirectory(prefix="chub-bench-") as scratch:
        data = data_dir or Path(scratch)
        app = ComputeHubApp(lambda: open_session(Config(), data, demo=True))
        hook_frames(app, probe)

        def log_painted_rows(at: float) -> None:
            painted_counts.append((at, len(app.query_one("#offer-table", VirtualTable).rows)))

        probe.on_table_frame = log_painted_rows
        async with app.run_test(size=TERMINAL_SIZE) as pilot:
            ready_at = time.perf_counter()
            await wait_until(pilot, lambda: probe.painted, "the first offers to be painted")

            def every_provider_painted() -> bool:
                hub = app.hub
                if hub is None or not all(h.offers_at for h in hub.health()):
                    return False
                return any(count == len(hub.offers()) for _, count in painted_counts)

            await wait_until(pilot, every_provider_painted, "every provider's offers to be painted")
            assert app.hub is not None
            total = len(app.hub.offers())
            all_painted_at = next(at for at, count in painted_counts if count == total)
            first_count = next(count for at, count in painted_counts if at == probe.painted_at)
    return {
        "imports_ms": _ms_since_start(imported_at),
        "ready_ms": _ms_since_start(ready_at),
        "first_rows_ms": _ms_since_start(probe.painted_at or 0.0),
        "first_rows_count": first_count,
        "all_rows_ms": _ms_since_start(all_painted_at),
        "offers": total,
    }


async def run_datatable(rows_path: Path) -> dict[str, Any]:
    """A bare Textual app whose DataTable is filled on mount from pre-formatted rows."""
    from textual.widgets import DataTable

    from bench.child import TERMINAL_SIZE, wait_until
    from bench.datatable_app import OfferDataTableApp
    from bench.probe import (
        PaintProbe,
        data_table_data_row,
        data_table_settled,
        hook_frames,
        hook_table_lines,
    )

    imported_at = time.perf_counter()
    spec = json.loads(rows_path.read_text(encoding="utf-8"))
    app = OfferDataTableApp(spec["columns"], spec["rows"])
    probe = PaintProbe(need_data_rows=True, settled=lambda: data_table_settled(app.table))
    probe.arm(at=STARTED_AT)
    hook_table_lines(DataTable, probe, data_table_data_row)
    hook_frames(app, probe)
    async with app.run_test(size=TERMINAL_SIZE) as pilot:
        ready_at = time.perf_counter()
        await wait_until(pilot, lambda: probe.painted, "the DataTable rows to be painted")
        count = app.table.row_count
    return {
        "imports_ms": _ms_since_start(imported_at),
        "ready_ms": _ms_since_start(ready_at),
        "first_rows_ms": _ms_since_start(probe.painted_at or 0.0),
        "first_rows_count": count,
        "offers": count,
    }


def main() -> None:
    from bench.child import emit

    side = sys.argv[1]
    if side == "app":
        result = asyncio.run(run_app(Path(sys.argv[2]) if len(sys.argv) > 2 else None))
    elif side == "datatable":
        result = asyncio.run(run_datatable(Path(sys.argv[2])))
    else:
        raise SystemExit(f"unknown side {side!r}; use app or datatable")
    result["started_at"] = STARTED_AT
    emit(result)


if __name__ == "__main__":
    main()
