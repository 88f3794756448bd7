"""``daemon``: a real process on the demo market prints one line per event as it happens and stops on SIGTERM with 0."""

from __future__ import annotations

import os
import re
import selectors
import signal
import subprocess
import sys
import time
from pathlib import Path

from computehub_tui.cli.daemon import EventPrinter, event_line
from computehub_tui.engine.events import ProviderHealth, ProviderHealthChanged, SpendUpdated

LINE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+00:00 [a-z-]+ \S+( .*)?$")


def read_until(process: subprocess.Popen[str], wanted: str, timeout: float = 30.0) -> list[str]:
    """Lines as the daemon flushes them, until one contains ``wanted`` (fails on exit or timeout)."""
    assert process.stdout is not None
    lines: list[str] = []
    selector = selectors.DefaultSelector()
    selector.register(process.stdout, selectors.EVENT_READ)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if selector.select(deadline - time.monotonic()):
            line = process.stdout.readline()
            assert line, f"the daemon ended early: {lines}"
            lines.append(line.rstrip("\n"))
            if wanted in line:
                return lines
    raise AssertionError(f"no {wanted!r} line in {timeout} s: {lines}")


def test_the_daemon_streams_events_live_and_sigterm_ends_it_with_0(tmp_path: Path) -> None:
    config = tmp_path / "config.toml"
    config.write_text("[demo]\nvast_offers = 100\n[monitor]\nssh_providers = []\n", encoding="utf-8")
    env = {**os.environ, "COMPUTEHUB_CONFIG": str(config), "PYTHONUNBUFFERED": ""}
    process = subprocess.Popen([sys.executable, "-m", "computehub_tui", "daemon", "--demo", "--data-dir",
                                str(tmp_path / "data")], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               env=env)
    try:
        # The pipe is not a terminal, so these lines arrive only because each one is flushed.
        lines = read_until(process, " instances vast ")
        assert lines[0].split()[1:3] == ["started", "-"] and f"pid={process.pid}" in lines[0]
        assert all(LINE.match(line) for line in lines), lines
        process.send_signal(signal.SIGTERM)
        out, err = process.communicate(timeout=30)
    finally:
        process.kill()
        process.wait()
    assert process.returncode == 0, err
    assert out.splitlines()[-1].endswith("stopped - signal=SIGTERM")
    assert "Traceback" not in err


class Recorder:
    def __init__(self) -> None:
        self.text = ""

    def write(self, text: str) -> int:
        self.text += text
        return len(text)

    def flush(self) -> None:
        pass


class FixedClock:
    def now(self) -> float:
        return 0.0


class Hub:
    clock = FixedClock()


class FakeSession:
    hub = Hub()


def test_hostile_provider_text_is_one_inert_line_and_unchanged_polls_are_not_repeated() -> None:
    stream = Recorder()
    printer = EventPrinter(FakeSession(), stream)  # type: ignore[arg-type]
    printer(ProviderHealthChanged(ProviderHealth("vast", last_error="boom\n\x1b]52;c;eA==\x07[red]x[/]")))
    printer(SpendUpdated(1.0, 2.0, 3.0))
    printer(SpendUpdated(1.0, 2.0, 3.0))
    printer(SpendUpdated(1.0, 2.5, 3.5))
    lines = stream.text.splitlines()
    assert len(lines) == 3 and "\x1b" not in stream.text and "\x07" not in stream.text
    assert lines[0].startswith("1970-01-01T00:00:00+00:00 health vast state=waiting error=boom") and "[red]x[/]" in lines[0]
    assert [line.split()[1] for line in lines[1:]] == ["spend", "spend"]
    assert len(event_line(0.0, "health", "vast", "x" * 10_000)) < 400
