"""Runs the real TUI (``python -m computehub_tui``) in a pseudo-terminal and records every byte it writes."""

from __future__ import annotations

import fcntl
import os
import select
import struct
import subprocess
import sys
import termios
import time
from collections.abc import Mapping, Sequence
from typing import Self


class PtyApp:
    """One TUI process on a pty of a fixed size. Reads never sleep: they wait on the pty with a deadline."""

    def __init__(self, args: Sequence[str], env: Mapping[str, str], size: tuple[int, int] = (100, 30)) -> None:
        columns, rows = size
        self.master, slave = os.openpty()
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", rows, columns, 0, 0))
        self.process = subprocess.Popen(
            [sys.executable, "-m", "computehub_tui", *args], stdin=slave, stdout=slave, stderr=slave,
            env={**env, "TERM": "xterm-256color", "COLUMNS": str(columns), "LINES": str(rows)},
            start_new_session=True, close_fds=True,
        )
        os.close(slave)
        self.output = bytearray()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _read_once(self, timeout: float) -> bool:
        """Read what is there within ``timeout``; False once the terminal has closed."""
        ready, _, _ = select.select([self.master], [], [], max(0.0, timeout))
        if not ready:
            return True
        try:
            chunk = os.read(self.master, 65536)
        except OSError:  # EIO: the child closed its side of the pty
            return False
        self.output += chunk
        return bool(chunk)

    def read_until(self, needle: bytes, timeout: float = 20.0, since: int = 0) -> None:
        """Read until ``needle`` has been written (after byte ``since`` of the output); AssertionError with the
        tail of the output if not."""
        deadline = time.monotonic() + timeout
        while needle not in self.output[since:]:
            remaining = deadline - time.monotonic()
            if remaining <= 0 or not self._read_once(min(remaining, 0.5)):
                raise AssertionError(f"{needle!r} never appeared; last output: {bytes(self.output[-800:])!r}")

    def send(self, keys: bytes) -> None:
        os.write(self.master, keys)

    def wait(self, timeout: float = 20.0) -> int:
        """Drain the output until the process ends; its exit code."""
        deadline = time.monotonic() + timeout
        while self.process.poll() is None and time.monotonic() < deadline:
            if not self._read_once(0.1):
                break
        code = self.process.wait(timeout=max(0.1, deadline - time.monotonic()))
        while self._read_once(0.0) and select.select([self.master], [], [], 0)[0]:
            pass
        return code

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=10)
        os.close(self.master)
