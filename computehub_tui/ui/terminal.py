"""Hands the terminal to `ssh` and takes it back, without the traps of Textual's suspend()."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Sequence
from typing import Any

from textual.app import App, SuspendNotSupported


def run_in_terminal(app: App[Any], argv: Sequence[str]) -> str | None:
    """Run ``argv`` with the real terminal; returns an error message, or None on a clean run.

    Must be called on the App's loop, never from a worker. Every exception is caught *inside*
    the suspend block: if the body raises, Textual never resumes (textual#6692). The body blocks
    the loop on purpose — awaiting inside suspend() deadlocks — so polling pauses meanwhile.
    """
    if shutil.which(argv[0]) is None:
        return f"'{argv[0]}' is not installed or not on PATH"
    error: str | None = None
    try:
        with app.suspend():
            try:
                result = subprocess.run(list(argv), check=False)
                if result.returncode not in (0, 130):
                    error = f"{argv[0]} exited with code {result.returncode}"
            except (OSError, KeyboardInterrupt) as caught:
                error = f"could not run {argv[0]}: {caught}"
    except SuspendNotSupported:
        return "this terminal cannot hand over to ssh (suspend not supported); press c to copy the command"
    app.refresh()
    return error
