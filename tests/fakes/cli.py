"""Runs ``python -m computehub_tui`` as a subprocess, alone or several at once."""

from __future__ import annotations

import io
import json
import logging
import os
import subprocess
import sys
import tempfile
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import redirect_stderr, redirect_stdout
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from computehub_tui.cli import main

ALL_KEY_VARIABLES = ("VAST_API_KEY", "RUNPOD_API_KEY", "LAMBDA_API_KEY", "TENSORDOCK_API_TOKEN")
PARALLEL_RUNS = 8
PYCACHE = Path(tempfile.gettempdir()) / "computehub-tui-cli-test-pycache"
"""Most of a run is waiting (start-up I/O, provider pacing), so more than the core count helps."""


@dataclass(frozen=True)
class CliRun:
    """One finished command."""

    args: tuple[str, ...]
    code: int
    stdout_bytes: bytes
    """Exactly what the command wrote, for checks on what reaches a terminal."""
    stderr_bytes: bytes

    @property
    def stdout(self) -> str:
        return self.stdout_bytes.decode("utf-8", errors="backslashreplace")

    @property
    def stderr(self) -> str:
        return self.stderr_bytes.decode("utf-8", errors="backslashreplace")

    def json(self) -> Any:
        return json.loads(self.stdout)

    @property
    def error_lines(self) -> list[str]:
        return [line for line in self.stderr.splitlines() if line.strip()]

    def describe(self) -> str:
        command = " ".join(self.args)
        return (f"$ {command}\nexit {self.code}\n"
                f"--- stdout\n{self.stdout}\n--- stderr\n{self.stderr}")


@dataclass(frozen=True)
class Invocation:
    args: tuple[str, ...]
    env: Mapping[str, str]
    stdin: str = ""


def base_environment(extra: Mapping[str, str]) -> dict[str, str]:
    """The test process's (isolated) environment without proxies, plus ``extra``."""
    env = {
        name: value
        for name, value in os.environ.items()
        if "proxy" not in name.lower() and name not in ALL_KEY_VARIABLES
    }
    env["NO_PROXY"] = "127.0.0.1,localhost"
    # Compiled modules cached outside the checkout: each run then skips recompiling the app.
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env["PYTHONPYCACHEPREFIX"] = str(PYCACHE)
    env.update(extra)
    return env


def run_cli(args: Sequence[str], env: Mapping[str, str], stdin: str = "") -> CliRun:
    """Run one command with a piped (non-interactive) stdin."""
    completed = subprocess.run(
        [sys.executable, "-m", "computehub_tui", *args],
        input=stdin.encode("utf-8"),
        check=False,
        capture_output=True,
        env=dict(env),
        timeout=60,
    )
    return CliRun(tuple(args), completed.returncode, completed.stdout, completed.stderr)


def run_all(invocations: Sequence[Invocation]) -> list[CliRun]:
    """Run independent commands concurrently (each must use its own data dir); keep the order."""
    with ThreadPoolExecutor(max_workers=max(1, min(PARALLEL_RUNS, len(invocations)))) as pool:
        return list(pool.map(lambda i: run_cli(i.args, i.env, i.stdin), invocations))


def run_main(args: Sequence[str]) -> CliRun:
    """Run ``main()`` in this process: no interpreter start-up, for checks that end before any I/O.
    The root logger gets its handlers back afterwards (``main`` installs its own)."""
    stdout, stderr = io.StringIO(), io.StringIO()
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    try:
        with redirect_stdout(stdout), redirect_stderr(stderr):
            try:
                code = main(list(args))
            except SystemExit as exit_:  # argparse ends there
                code = int(exit_.code or 0)
    finally:
        root.handlers[:] = handlers
        root.setLevel(level)
    return CliRun(tuple(args), code, stdout.getvalue().encode(), stderr.getvalue().encode())
