"""``computehub-tui daemon`` as a real process for tests: stdout drained by a thread (an undrained pipe would stall
it), lines waited on with timeouts instead of polled, SIGKILL and SIGTERM."""

from __future__ import annotations

import queue
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from fakes.accounts import Market

LINE_TIMEOUT_S = 15.0


class Daemon:
    """``computehub-tui daemon`` as a real process; its stdout is drained by a thread into a queue of lines."""

    def __init__(self, env: dict[str, str], data_dir: Path, errors: Path) -> None:
        self._errors = errors
        with errors.open("w") as err:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "computehub_tui", "daemon", "--data-dir", str(data_dir)],
                stdout=subprocess.PIPE, stderr=err, env=env, text=True, bufsize=1)
        self.lines: list[str] = []
        self._queue: queue.Queue[str | None] = queue.Queue()
        self._reader = threading.Thread(target=self._drain, daemon=True)
        self._reader.start()

    def _drain(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.append(line.rstrip("\n"))
            self._queue.put(line)
        self._queue.put(None)

    def wait_for(self, text: str, timeout: float = LINE_TIMEOUT_S) -> str:
        """The next line that holds ``text``; fails if the daemon ends or stays silent about it."""
        deadline = time.monotonic() + timeout
        try:
            while (line := self._queue.get(timeout=max(0.0, deadline - time.monotonic()))) is not None:
                if text in line:
                    return line
        except queue.Empty:
            pass
        raise AssertionError(f"no line with {text!r}:\n" + "\n".join(self.lines) + "\n" + self.stderr())

    def alive_for(self, seconds: float) -> None:
        """Let it run ``seconds`` (a random kill point); it must not end by itself meanwhile."""
        with pytest.raises(subprocess.TimeoutExpired):
            self.process.wait(seconds)

    def kill(self) -> None:
        self.process.send_signal(signal.SIGKILL)
        assert self.process.wait(10) == -signal.SIGKILL
        self._reader.join(10)

    def terminate(self) -> int:
        self.process.send_signal(signal.SIGTERM)
        code = self.process.wait(10)
        self._reader.join(10)
        return code

    def stderr(self) -> str:
        return self._errors.read_text(encoding="utf-8")

    def stop_if_running(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)


def daemon_environment(market: Market, tmp_path: Path, rules: Path) -> dict[str, str]:
    """Vast and RunPod bound, instances polled at the 2 s floor, offers once, no SSH sampling."""
    config = tmp_path / "config.toml"
    config.write_text(f'[monitor]\nssh_providers = []\n[poll]\ninstances_s = 2\noffers_s = 86400\n'
                      f'[automation]\nrules_file = "{rules}"\n', encoding="utf-8")
    return {**market.environment(keys=("vast", "runpod")), "COMPUTEHUB_CONFIG": str(config)}
