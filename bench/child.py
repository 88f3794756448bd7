"""What every benchmark subprocess shares: timing one action to its painted frame, and handing
the result back to the parent on stdout."""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable
from typing import Any

from textual.pilot import Pilot

from bench.probe import PaintProbe

RESULT_MARKER = "BENCH-RESULT "
TERMINAL_SIZE = (160, 45)
PAINT_TIMEOUT_S = 60.0


def emit(result: dict[str, Any]) -> None:
    sys.stdout.write(RESULT_MARKER + json.dumps(result) + "\n")
    sys.stdout.flush()


async def wait_until(pilot: Pilot[Any], done: Callable[[], bool], what: str,
                     timeout_s: float = PAINT_TIMEOUT_S) -> None:
    deadline = time.perf_counter() + timeout_s
    while not done():
        if time.perf_counter() > deadline:
            raise TimeoutError(f"gave up after {timeout_s:.0f} s waiting for {what}")
        await pilot.pause()


async def time_to_paint(pilot: Pilot[Any], probe: PaintProbe, action: Callable[[], None],
                        what: str) -> float:
    """Milliseconds from just before ``action`` to the frame that shows its result.

    ``pilot.pause`` only drives the app until that frame exists; the time comes from the frame
    hook, so the pause's own idle sleep is not counted.
    """
    probe.arm()
    action()
    await wait_until(pilot, lambda: probe.painted, what)
    latency = probe.latency_ms
    await pilot.pause()  # let follow-up messages (cursor, detail line) finish before the next one
    return latency
