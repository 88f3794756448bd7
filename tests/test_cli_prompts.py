"""Prompts on a real pseudo-terminal: the first Ctrl+C cancels at once (exit 130, no traceback)."""

from __future__ import annotations

import asyncio
import json
import os
import pty
import select
import signal
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
from fakes.cli import base_environment, run_cli

from computehub_tui.clock import SystemClock
from computehub_tui.engine.keys import KeyService

CTRL_C = b"\x03"
DEADLINE_S = 20.0
"""Only reached when the prompt ignores Ctrl+C (the bug); a working prompt exits in about a second."""


@dataclass(frozen=True)
class TerminalRun:
    code: int
    output: bytes

    @property
    def text(self) -> str:
        return self.output.decode("utf-8", errors="replace")


def run_in_terminal(args: list[str], env: dict[str, str], prompt: bytes, answer: bytes) -> TerminalRun:
    """Run the CLI with a pty as its controlling terminal; type ``answer`` once ``prompt`` shows."""
    pid, fd = pty.fork()
    if pid == 0:  # the child: becomes the CLI
        os.execve(sys.executable, [sys.executable, "-m", "computehub_tui", *args], env)
    output = b""
    answered = False
    deadline = time.monotonic() + DEADLINE_S
    try:
        while (remaining := deadline - time.monotonic()) > 0:
            ready, _, _ = select.select([fd], [], [], remaining)
            if not ready:
                continue
            try:
                chunk = os.read(fd, 4096)
            except OSError:  # EIO: the child closed the terminal
                break
            if not chunk:
                break
            output += chunk
            if not answered and prompt in output:
                os.write(fd, answer)
                answered = True
        else:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            pytest.fail(f"still running {DEADLINE_S:.0f}s after {answer!r} (answered={answered}): {output!r}")
        _, status = os.waitpid(pid, 0)
    finally:
        os.close(fd)
    return TerminalRun(os.waitstatus_to_exitcode(status), output)


def assert_cancelled(run: TerminalRun) -> None:
    assert run.code == 130, run.text
    assert "cancelled" in run.text and "Traceback" not in run.text, run.text


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    config = tmp_path / "config.toml"
    config.write_text("", encoding="utf-8")
    return base_environment({"COMPUTEHUB_DATA_DIR": str(tmp_path / "data"), "COMPUTEHUB_CONFIG": str(config)})


def test_ctrl_c_at_the_hidden_key_prompt_cancels_at_once(env: dict[str, str]) -> None:
    run = run_in_terminal(["keys", "set", "vast"], env, b"API key (input hidden): ", CTRL_C)
    assert_cancelled(run)
    assert "saved" not in run.text


def test_ctrl_c_at_the_passphrase_prompt_cancels_at_once(env: dict[str, str], tmp_path: Path) -> None:
    async def protect() -> None:
        async with KeyService(tmp_path / "data", SystemClock()) as keys:
            await keys.bind("vast", "vast-key-0123456789abcdef")
            await keys.set_passphrase("correct horse battery")

    asyncio.run(protect())
    assert_cancelled(run_in_terminal(["keys", "list"], env, b"Vault passphrase: ", CTRL_C))


def test_confirmation_prompt_asks_on_the_terminal_and_ctrl_c_cancels(env: dict[str, str]) -> None:
    listed = run_cli(["instances", "--json", "--provider", "vast"], env)
    running = next(i["id"] for i in json.loads(listed.stdout) if i["status"] == "running")

    refused = run_in_terminal(["restart", running], env, b"[y/N] ", CTRL_C)
    assert_cancelled(refused)
    assert f"Restart 1 instance: {running}" in refused.text, refused.text
    assert "restart interrupts whatever is running on the machine" in refused.text

    agreed = run_in_terminal(["restart", running], env, b"[y/N] ", b"y\n")
    assert agreed.code == 0 and f"restart {running}: done" in agreed.text, agreed.text
