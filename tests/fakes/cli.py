"""Runs the command line as a user would: in this process by default (the same ``main`` a process runs, with
its own environment, stdin and byte streams), or as a real ``python -m computehub_tui`` process where a test is
about the process itself. ``COMPUTEHUB_TEST_CLI_PROCESS=1`` runs every command as a real process."""

from __future__ import annotations

import io
import json
import logging
import os
import subprocess
import sys
import tempfile
import threading
import traceback
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import redirect_stderr, redirect_stdout
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from computehub_tui.cli import main
from computehub_tui.domain import secret

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


ALWAYS_A_PROCESS = os.environ.get("COMPUTEHUB_TEST_CLI_PROCESS") == "1"


def run_cli(args: Sequence[str], env: Mapping[str, str], stdin: str = "", *, process: bool = False) -> CliRun:
    """Run one command with a piped (non-interactive) stdin; ``process`` starts a real interpreter."""
    if not (process or ALWAYS_A_PROCESS):
        return run_in_this_process(args, env, stdin)
    completed = subprocess.run(
        [sys.executable, "-m", "computehub_tui", *args],
        input=stdin.encode("utf-8"),
        check=False,
        capture_output=True,
        env=dict(env),
        timeout=60,
    )
    return CliRun(tuple(args), completed.returncode, completed.stdout, completed.stderr)


def run_all(invocations: Sequence[Invocation], *, process: bool = False) -> list[CliRun]:
    """Run independent commands (each must use its own data dir); keep the order. Real processes run
    concurrently; in-process runs share this process's environment and streams, so they take turns."""
    if not (process or ALWAYS_A_PROCESS):
        return [run_in_this_process(i.args, i.env, i.stdin) for i in invocations]
    with ThreadPoolExecutor(max_workers=max(1, min(PARALLEL_RUNS, len(invocations)))) as pool:
        return list(pool.map(lambda i: run_cli(i.args, i.env, i.stdin, process=True), invocations))


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


def run_in_this_process(args: Sequence[str], env: Mapping[str, str], stdin: str = "") -> CliRun:
    """What ``python -m computehub_tui ARGS`` does, without starting an interpreter: ``main`` runs on a thread of
    its own (it calls ``asyncio.run``, and the caller may be inside a loop) with exactly ``env`` as the
    environment, ``stdin`` piped, and stdout / stderr captured as bytes with a process's encodings. An
    exception that escapes ``main`` is what a process would print and exit 1 with."""
    stdout, stderr = io.BytesIO(), io.BytesIO()
    out = io.TextIOWrapper(stdout, encoding="utf-8", write_through=True)
    err = io.TextIOWrapper(stderr, encoding="utf-8", errors="backslashreplace", write_through=True)
    result: list[int] = []

    def body() -> None:
        try:
            result.append(main(list(args)))
        except SystemExit as exit_:
            code = exit_.code
            if isinstance(code, str):
                err.write(code + "\n")
            result.append(code if isinstance(code, int) else (0 if code is None else 1))
        except BaseException:  # noqa: BLE001 - a process prints any escape and exits 1
            err.write(traceback.format_exc())
            result.append(1)

    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    # A process starts knowing no secrets; what earlier tests registered here would mask this run's output.
    saved_secrets = secret._known.copy(), secret._fragments, secret._quarters
    secret._known.clear()
    secret._fragments = secret._quarters = frozenset()
    saved_env = dict(os.environ)
    saved_streams = sys.stdin, sys.stdout, sys.stderr
    try:
        os.environ.clear()
        os.environ.update(env)
        sys.stdin, sys.stdout, sys.stderr = io.StringIO(stdin), out, err
        worker = threading.Thread(target=body, name="cli-main")
        worker.start()
        worker.join(60)
        if worker.is_alive():
            raise TimeoutError(f"computehub-tui {' '.join(args)} did not finish in 60 s")
    finally:
        sys.stdin, sys.stdout, sys.stderr = saved_streams
        os.environ.clear()
        os.environ.update(saved_env)
        root.handlers[:] = handlers
        root.setLevel(level)
        secret._known.clear()
        secret._known.update(saved_secrets[0])
        secret._fragments, secret._quarters = saved_secrets[1], saved_secrets[2]
    out.flush()
    err.flush()
    return CliRun(tuple(args), result[0], stdout.getvalue(), stderr.getvalue())


def run_completed(args: Sequence[str], env: Mapping[str, str], *, process: bool = False
                  ) -> subprocess.CompletedProcess[str]:
    """``run_cli`` in the shape ``subprocess.run(..., text=True)`` returns, for tests written against it."""
    run = run_cli(args, env, process=process)
    return subprocess.CompletedProcess(["computehub-tui", *args], run.code, run.stdout, run.stderr)
