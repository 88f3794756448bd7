"""A process that runs one rule and hangs inside the action it fires (the provider never answers the stop), so a
test can SIGKILL it mid-action: ``python -m tests.rules_crash_child DB MARKER START``."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

from computehub_tui.clock import ManualClock
from tests.rules_support import Machines, rules, session
from tests.test_rules_runner import STOP_RUNNING


class HangingMachines(Machines):
    """Its stop call reaches the provider (the marker file says so) and never returns."""

    def __init__(self, marker: Path, clock: ManualClock) -> None:
        super().__init__(clock=clock)
        self.marker = marker

    async def stop(self, instance_id: str) -> None:
        self.calls.append(("stop", instance_id))
        self.marker.write_text(instance_id)
        await asyncio.Event().wait()


async def main(db: Path, marker: Path, start: float) -> None:
    machines = HangingMachines(marker, ManualClock(start))
    machines.add("1")
    async with session(db, machines, rules(STOP_RUNNING)) as s:
        await s.poll()


if __name__ == "__main__":
    asyncio.run(main(Path(sys.argv[1]), Path(sys.argv[2]), float(sys.argv[3])))
