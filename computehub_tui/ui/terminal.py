"""The real terminal: hands it to `ssh` and takes it back (without the traps of suspend()), local clipboard."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Mapping, Sequence
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


CLIPBOARD_TOOLS: tuple[tuple[str, tuple[str, ...], str], ...] = (
    ("pbcopy", (), ""),
    ("wl-copy", (), "WAYLAND_DISPLAY"),
    ("xclip", ("-selection", "clipboard"), "DISPLAY"),
    ("xsel", ("--clipboard", "--input"), "DISPLAY"),
)
"""Local clipboard programs: name, arguments, and the display variable they need (if any)."""
CLIPBOARD_TIMEOUT_S = 3.0


def copy_with_local_tool(text: str, environ: Mapping[str, str]) -> str:
    """Put ``text`` on this machine's clipboard with the first tool that works; returns its name,
    or "" when none did. Over SSH it returns "" at once: the remote machine's clipboard is not
    the user's. Blocking (the tool may wait for its display), so run it in a thread."""
    if environ.get("SSH_CONNECTION") or environ.get("SSH_TTY"):
        return ""
    for name, args, display in CLIPBOARD_TOOLS:
        path = shutil.which(name, path=environ.get("PATH"))
        if path is None or (display and not environ.get(display)):
            continue
        try:
            result = subprocess.run([path, *args], input=text.encode(), env=dict(environ), check=False,
                                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                    timeout=CLIPBOARD_TIMEOUT_S)
        except (OSError, subprocess.TimeoutExpired):
            continue
        if result.returncode == 0:
            return name
    return ""
