"""`python -m bench.pty_monitor [SECONDS]`: the TUI in a real pty on the Monitor pane with 50 running demo
instances and a 5 s poll, beside a plain Textual app of 10 stock Sparklines updated every 2 s, measured the
same way: CPU % of one core (utime + stime of every thread, from /proc; the app's own and its child processes'
separately) and terminal output in KB/s."""

from __future__ import annotations

import fcntl
import os
import select
import signal
import struct
import subprocess
import sys
import tempfile
import termios
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.child import TERMINAL_SIZE

RUNNING_INSTANCES = 50
POLL_S = 5.0
SETTLE_S = 30.0
"""Start-up, the first polls and every demo machine booting happen before the measured window."""
SPARKLINES = 10
SPARKLINE_EVERY_S = 2.0
TARGET_CPU_PERCENT = 2.0
TARGET_KB_S = 5.0


# -- the two apps, run as the pty's child ------------------------------------------------------------


def run_monitor_app(data_dir: Path) -> None:
    from computehub_tui.config import Config
    from computehub_tui.ui.app import ComputeHubApp
    from computehub_tui.wiring import open_session

    base = Config()
    config = base.model_copy(update={"ui": base.ui.model_copy(update={"default_pane": "monitor"}),
                                     "poll": base.poll.model_copy(update={"instances_s": POLL_S})})

    async def factory() -> Any:
        session = await open_session(config, data_dir, demo=True, demo_reset=True)
        assert session.market is not None
        running = sum(1 for i in session.market.instances.values() if i.intended == "running")
        for n in range(RUNNING_INSTANCES - running):
            machine = session.market.launch("vast", gpu_name="RTX 4090", gpu_count=1 + n % 2, vram_gb=24.0,
                                            price_hour=0.4, label=f"bench-{n:02d}")
            machine.stuck, machine.crash_after_s = False, None  # fifty that stay running
        return session

    ComputeHubApp(factory, config=config).run()


def run_sparkline_app() -> None:
    import random

    from textual.app import App, ComposeResult
    from textual.widgets import Sparkline

    class Sparklines(App[None]):
        def compose(self) -> ComposeResult:
            for _ in range(SPARKLINES):
                yield Sparkline([random.random() for _ in range(60)])

        def on_mount(self) -> None:
            self.set_interval(SPARKLINE_EVERY_S, self.step)

        def step(self) -> None:
            for line in self.query(Sparkline):
                line.data = [*list(line.data or [])[1:], random.random()]

    Sparklines().run()


# -- the parent: a pty, a byte count, /proc CPU ----------------------------------------------------


@dataclass(frozen=True, slots=True)
class CpuSeconds:
    """CPU time of the app's own threads, and of every process it started (reaped or still alive)."""

    own: float
    children: float

    def __sub__(self, other: CpuSeconds) -> CpuSeconds:
        return CpuSeconds(self.own - other.own, self.children - other.children)


def _stat_fields(pid: int) -> list[str] | None:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:  # it ended between the listing and the read
        return None


def _descendants(pid: int) -> list[int]:
    parents: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and (fields := _stat_fields(int(entry.name))) is not None:
            parents.setdefault(int(fields[1]), []).append(int(entry.name))
    found, frontier = [], [pid]
    while frontier:
        frontier = [child for parent in frontier for child in parents.get(parent, [])]
        found.extend(frontier)
    return found


def cpu_seconds(pid: int) -> CpuSeconds:
    """utime + stime of ``pid``'s threads; children: its reaped children's (cutime + cstime) plus every live
    descendant's own and reaped time, so a child that ends inside the window is counted either way."""
    tick = os.sysconf("SC_CLK_TCK")
    fields = _stat_fields(pid) or ["0"] * 15
    own, children = int(fields[11]) + int(fields[12]), int(fields[13]) + int(fields[14])
    for descendant in _descendants(pid):
        if (its := _stat_fields(descendant)) is not None:
            children += sum(int(value) for value in its[11:15])
    return CpuSeconds(own / tick, children / tick)


def drain(fd: int, until: float) -> int:
    count = 0
    while (left := until - time.monotonic()) > 0:
        ready, _, _ = select.select([fd], [], [], min(left, 0.5))
        if ready:
            try:
                count += len(os.read(fd, 65536))
            except OSError:
                break
    return count


def child_environment(data_dir: Path) -> dict[str, str]:
    """The terminal the app expects, and bytecode caching on: an installed copy has its .pyc files, and the demo's
    ssh, a new process for every sample, would otherwise compile its modules from source each time
    (PYTHONDONTWRITEBYTECODE is common in development shells); the cache lives in the run's own directory."""
    env = {**os.environ, "TERM": "xterm-256color", "COLORTERM": "truecolor",
           "PYTHONPYCACHEPREFIX": str(data_dir / "pycache")}
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    return env


def measure(side: str, seconds: float, settle_s: float) -> dict[str, Any]:
    master, slave = os.openpty()
    columns, rows = TERMINAL_SIZE
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", rows, columns, 0, 0))
    with tempfile.TemporaryDirectory(prefix="chub-pty-") as data_dir:
        env = child_environment(Path(data_dir))
        process = subprocess.Popen([sys.executable, "-m", "bench.pty_monitor", "--child", side, data_dir],
                                   stdin=slave, stdout=slave, stderr=slave, env=env, start_new_session=True)
        os.close(slave)
        try:
            drain(master, time.monotonic() + settle_s)
            cpu_before, started = cpu_seconds(process.pid), time.monotonic()
            written = drain(master, started + seconds)
            cpu, wall = cpu_seconds(process.pid) - cpu_before, time.monotonic() - started
            load = os.getloadavg()[0]
        finally:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
            os.close(master)
    return {"side": side, "seconds": wall, "cpu_percent": 100.0 * (cpu.own + cpu.children) / wall,
            "own_cpu_percent": 100.0 * cpu.own / wall, "children_cpu_percent": 100.0 * cpu.children / wall,
            "kb_per_s": written / 1000.0 / wall, "bytes": written, "load_1m": load}


def main(argv: list[str]) -> int:
    if argv[:1] == ["--child"]:
        if argv[1] == "monitor":
            run_monitor_app(Path(argv[2]))
        else:
            run_sparkline_app()
        return 0
    seconds = float(argv[0]) if argv else 60.0
    settle_s = float(argv[1]) if len(argv) > 1 else SETTLE_S
    print(f"{'':<38} {'CPU % of a core: app + children = total':>40} {'terminal KB/s':>14} {'load':>5}"
          f"   over {seconds:g} s after {settle_s:g} s")
    for side, title in (("monitor", f"Monitor pane, {RUNNING_INSTANCES} running, {POLL_S:g} s poll"),
                        ("sparklines", f"{SPARKLINES} Sparklines every {SPARKLINE_EVERY_S:g} s (baseline)")):
        r = measure(side, seconds, settle_s)
        print(f"{title:<38} {r['own_cpu_percent']:>17.2f} % + {r['children_cpu_percent']:>6.2f} % = "
              f"{r['cpu_percent']:>6.2f} % {r['kb_per_s']:>9.2f} KB/s {r['load_1m']:>5.2f}", flush=True)
    print(f"targets: ≤ {TARGET_CPU_PERCENT:g} % of one core, ≤ {TARGET_KB_S:g} KB/s")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
