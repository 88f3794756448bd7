"""`python -m bench.monitor`: the Monitor pane with 1,000 and 5,000 running instances, the virtual
pane beside the widget-per-instance baseline, each run in a fresh subprocess.

Two figures per run, both to the frame that shows the result (frames are encoded into terminal
bytes as a real terminal would need, see ``bench.probe``):

- first paint: from ``attach(hub)`` to the last frame drawn before the app is idle again;
- refresh: from ``reload()`` after a new instance poll (every card gets a new sample) to that frame.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from textual.app import App, ComposeResult
from textual.pilot import Pilot
from textual.widget import Widget

from bench.child import RESULT_MARKER, TERMINAL_SIZE, emit
from bench.monitor_baseline import MonitorPane as BaselineMonitor
from bench.probe import PaintProbe, hook_frames
from computehub_tui.clock import ManualClock
from computehub_tui.domain.models import Capabilities, Instance, InstanceStatus, MetricSample, Offer, OfferQuery
from computehub_tui.engine.hub import Hub
from computehub_tui.store import Store
from computehub_tui.ui.widgets.monitor_pane import MonitorPane

COUNTS = (1000, 5000)
REFRESHES = 3
SAMPLES = 12
"""Polls before timing starts, so every sparkline has history to draw."""
PANES: dict[str, type[Widget]] = {"virtual": MonitorPane, "baseline": BaselineMonitor}


class Fleet:
    """A provider with ``count`` running two-GPU instances whose metrics move with the clock."""

    capabilities = Capabilities(live_metrics=True)

    def __init__(self, count: int, clock: ManualClock) -> None:
        self.count = count
        self.clock = clock

    async def list_instances(self) -> list[Instance]:
        now = self.clock.now()
        return [Instance("vast", str(n), f"train-{n:05d}", InstanceStatus.RUNNING, "running", "RTX 4090", 2, 0.7,
                         started_at=now - 3600 - n,
                         metrics=MetricSample(now, ((now + n) % 100, 40.0), (10.0, 4.0), (24.0, 24.0),
                                              (55.0 + n % 30, 60.0), 30.0, 45.0))
                for n in range(self.count)]

    async def list_offers(self, query: OfferQuery) -> list[Offer]:
        return []


class LastFrame(PaintProbe):
    """Remembers when the latest frame reached the (headless) screen."""

    def __init__(self) -> None:
        super().__init__()
        self.last_frame_at = 0.0

    def frame_shown(self) -> None:
        self.frames += 1
        self.last_frame_at = time.perf_counter()


class MonitorApp(App[None]):
    def __init__(self, pane: type[Widget]) -> None:
        super().__init__()
        self.pane_class = pane

    def compose(self) -> ComposeResult:
        yield self.pane_class(id="monitor")


async def to_last_frame(pilot: Pilot[None], probe: LastFrame, action: Callable[[], None]) -> float:
    """Milliseconds from ``action()`` to the last frame drawn by the time the app is idle again
    (the pauses only drive the app; their idle wait is not counted)."""
    started, frames = time.perf_counter(), probe.frames
    action()
    while probe.frames == frames:
        await pilot.pause()
    await pilot.pause()
    return (probe.last_frame_at - started) * 1000.0


async def measure(kind: str, count: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as scratch:
        clock = ManualClock()
        store = await Store.open(Path(scratch) / "fleet.db")
        hub = Hub({"vast": Fleet(count, clock)}, store, clock)  # type: ignore[dict-item]
        for _ in range(SAMPLES):
            await hub.refresh_instances("vast")
            await clock.advance(5)
        app = MonitorApp(PANES[kind])
        probe = LastFrame()
        async with app.run_test(size=TERMINAL_SIZE) as pilot:
            hook_frames(app, probe)
            pane: Any = app.query_one("#monitor")
            await pilot.pause()
            first = await to_last_frame(pilot, probe, lambda: pane.attach(hub))
            refreshes = []
            for _ in range(REFRESHES):
                await clock.advance(5)
                await hub.refresh_instances("vast")
                refreshes.append(await to_last_frame(pilot, probe, pane.reload))
        await store.close()
    return {"kind": kind, "count": count, "first_paint_ms": first, "refresh_ms": sorted(refreshes)[len(refreshes) // 2]}


def run_child(kind: str, count: int) -> dict[str, Any]:
    done = subprocess.run([sys.executable, "-m", "bench.monitor", "--child", kind, str(count)],
                          capture_output=True, text=True, check=False, timeout=600)
    for line in done.stdout.splitlines():
        if line.startswith(RESULT_MARKER):
            result: dict[str, Any] = json.loads(line.removeprefix(RESULT_MARKER))
            return result
    raise RuntimeError(f"monitor benchmark {kind} {count} failed:\n{done.stderr[-2000:]}")


def main(argv: list[str]) -> int:
    if argv[:1] == ["--child"]:
        emit(asyncio.run(measure(argv[1], int(argv[2]))))
        return 0
    print(f"{'instances':>9}  {'':<9} {'first paint':>12} {'refresh (median)':>17}")
    for count in COUNTS:
        for kind in PANES:
            result = run_child(kind, count)
            print(f"{count:>9,}  {kind:<9} {result['first_paint_ms']:>9,.0f} ms {result['refresh_ms']:>14,.0f} ms",
                  flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
