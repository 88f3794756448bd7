"""The real terminal: hands it to `ssh` and takes it back (without the traps of suspend()), or opens ssh
in a new tmux window; the local clipboard."""

from __future__ import annotations

import re
import shutil
import subprocess
from collections.abc import Mapping, Sequence
from typing import Any

from textual.app import App, SuspendNotSupported

from computehub_tui.domain.text import clean_text

SSH_CONNECT_TIMEOUT_S = 15
WINDOW_NAME_LIMIT = 30
WINDOW_OPEN_TIMEOUT_S = 5.0
_NOT_IN_A_WINDOW_NAME = re.compile(r"[^A-Za-z0-9._-]+")


def ssh_argv(argv: Sequence[str]) -> list[str]:
    """The provider's ssh command, giving up on an unreachable host instead of hanging."""
    return [argv[0], "-o", f"ConnectTimeout={SSH_CONNECT_TIMEOUT_S}", *argv[1:]]


def inside_tmux(environ: Mapping[str, str]) -> bool:
    return bool(environ.get("TMUX"))


def tmux_window_argv(argv: Sequence[str], name: str) -> list[str]:
    """``tmux new-window`` running ``argv`` directly (no shell), in a window named after ``name``. The
    name comes from the provider (an instance label): only letters, digits and ``._-`` are kept."""
    safe = _NOT_IN_A_WINDOW_NAME.sub("-", name).strip("-")[:WINDOW_NAME_LIMIT] or "ssh"
    return ["tmux", "new-window", "-n", safe, "--", *argv]


def open_window(argv: Sequence[str]) -> str | None:
    """Run a command that opens a window of its own and returns at once; an error message, or None."""
    if shutil.which(argv[0]) is None:
        return f"'{argv[0]}' is not installed or not on PATH"
    try:
        result = subprocess.run(list(argv), check=False, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                stderr=subprocess.PIPE, timeout=WINDOW_OPEN_TIMEOUT_S)
    except (OSError, subprocess.TimeoutExpired) as caught:
        return f"could not run {argv[0]}: {caught}"
    if result.returncode != 0:
        said = clean_text(result.stderr.decode(errors="replace"), 200)
        return f"{argv[0]} exited with code {result.returncode}" + (f": {said}" if said else "")
    return None


def run_in_terminal(app: App[Any], argv: Sequence[str]) -> str | None:
    """Run ``argv`` with the real terminal; returns an error message, or None on a clean run.

    Must be called on the App's loop, never from a worker. Every exception is caught *inside*
    the suspend block: if the body raises, Textual never resumes (textual#6692). The body blocks
    the UI's loop on purpose — awaiting inside suspend() deadlocks — while the engine, on its own
    thread, goes on polling; the UI catches up from the events queued meanwhile.
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
