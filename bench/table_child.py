"""One table benchmark in a fresh process.

Usage: `python -m bench.table_child virtual|datatable timing|memory`.

timing: first paint of ~20,000 offers, then every filter keystroke and sort press to its frame.
memory: only the first load, under tracemalloc (which slows allocation, so no times are kept).
"""

from __future__ import annotations

import asyncio
import gc
import sys
import tempfile
import tracemalloc
from pathlib import Path
from typing import Any

from textual.app import App
from textual.pilot import Pilot
from textual.widgets import DataTable

from bench.apps import DataTableSide, PaneApp, PaneSide, Side, datatable_app_for
from bench.child import TERMINAL_SIZE, emit, time_to_paint
from bench.datatable_app import TABLE_ID, OfferDataTableApp
from bench.machine import rss_bytes
from bench.offers import open_offer_market, order_digest
from bench.probe import (
    PaintProbe,
    data_table_data_row,
    hook_frames,
    hook_table_lines,
    virtual_table_data_row,
)
from bench.scenario import FILTER_KEYSTROKES, SORT_PRESSES
from computehub_tui.engine.hub import Hub
from computehub_tui.ui.widgets.virtual_table import VirtualTable

SIDES = ("virtual", "datatable")
MODES = ("timing", "memory")


def build_app(side_name: str, hub: Hub, probe: PaintProbe) -> App[None]:
    if side_name == "virtual":
        hook_table_lines(VirtualTable, probe, virtual_table_data_row, only_id=TABLE_ID)
        app: App[None] = PaneApp()
    else:
        hook_table_lines(DataTable, probe, data_table_data_row)
        app = datatable_app_for(hub)
    hook_frames(app, probe)
    return app


def build_side(app: App[None], hub: Hub) -> Side:
    if isinstance(app, PaneApp):
        return PaneSide(app, hub)
    assert isinstance(app, OfferDataTableApp)
    return DataTableSide(app, hub)


def rss_delta(before: int | None) -> int | None:
    after = rss_bytes()
    return None if before is None or after is None else after - before


def shown_rows(side: Side) -> dict[str, Any]:
    keys = side.shown_keys()
    return {"rows": len(keys), "digest": order_digest(keys)}


async def measure_timings(pilot: Pilot[Any], probe: PaintProbe, side: Side,
                          offers: int) -> dict[str, Any]:
    rss_before = rss_bytes()
    first_ms = await time_to_paint(pilot, probe, side.load_all, "the first paint of every offer")
    result: dict[str, Any] = {
        "offers": offers,
        "first_paint": {"ms": first_ms, **shown_rows(side)},
        "rss_delta_bytes": rss_delta(rss_before),
        "filter": [],
        "sort": [],
    }
    for text in FILTER_KEYSTROKES:
        ms = await time_to_paint(pilot, probe, lambda text=text: side.apply_filter(text),
                                 f"the filter {text!r}")
        result["filter"].append({"filter": text, "ms": ms, **shown_rows(side)})
    for name in SORT_PRESSES:
        ms = await time_to_paint(pilot, probe, lambda name=name: side.sort(name), f"sort {name}")
        result["sort"].append({"sort": name, "ms": ms, **shown_rows(side)})
    return result


async def measure_memory(pilot: Pilot[Any], probe: PaintProbe, side: Side,
                         offers: int) -> dict[str, Any]:
    """Memory the table side allocates and keeps for the offers (the offers themselves are the
    model's, shared by both sides, and allocated before tracing starts)."""
    gc.collect()
    rss_before = rss_bytes()
    tracemalloc.start()
    traced_before, _ = tracemalloc.get_traced_memory()
    await time_to_paint(pilot, probe, side.load_all, "the first paint of every offer")
    gc.collect()
    traced_after, traced_peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return {
        "offers": offers,
        "traced_bytes": traced_after - traced_before,
        "traced_peak_bytes": traced_peak - traced_before,
        "rss_delta_bytes": rss_delta(rss_before),
        **shown_rows(side),
    }


async def run(side_name: str, mode: str) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="chub-bench-") as data_dir:
        market = await open_offer_market(Path(data_dir))
        try:
            offers = len(market.hub.offers())
            probe = PaintProbe()
            app = build_app(side_name, market.hub, probe)
            async with app.run_test(size=TERMINAL_SIZE) as pilot:
                await pilot.pause()
                side = build_side(app, market.hub)
                probe.settled = side.settled
                if mode == "memory":
                    return await measure_memory(pilot, probe, side, offers)
                return await measure_timings(pilot, probe, side, offers)
        finally:
            await market.aclose()


def main() -> None:
    side_name, mode = sys.argv[1], sys.argv[2]
    if side_name not in SIDES or mode not in MODES:
        raise SystemExit(f"usage: python -m bench.table_child {'|'.join(SIDES)} {'|'.join(MODES)}")
    emit(asyncio.run(run(side_name, mode)))


if __name__ == "__main__":
    main()
