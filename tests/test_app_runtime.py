"""The TUI's own runtime: logging goes into the UI, a damaged database ends the app promptly with one
line, a crash never exits 0, and copying says what really happened."""

from __future__ import annotations

import logging
import stat
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from fakes.cli import base_environment
from ptyapp import PtyApp
from textual.message import Message
from textual.notifications import Notify
from tui import SIZE, ready, screen_text, small_app, wait_for

from computehub_tui.cli import entry
from computehub_tui.cli.session import Options
from computehub_tui.config import Config
from computehub_tui.domain.models import InstanceStatus
from computehub_tui.domain.secret import Secret
from computehub_tui.engine.keys import DATABASE_NAME
from computehub_tui.store import StoreError
from computehub_tui.ui import app as app_module
from computehub_tui.ui.screens.copy import OSC52_NOTE, CopyScreen
from computehub_tui.ui.screens.logs import WarningsScreen
from computehub_tui.ui.terminal import copy_with_local_tool
from computehub_tui.wiring import Session

log = logging.getLogger("computehub_tui.engine.hub")


@pytest.fixture
def stderr_handler() -> Iterator[logging.Handler]:
    """The CLI's set-up: warnings to stderr from the root logger."""
    handler = logging.StreamHandler(sys.stderr)
    root = logging.getLogger()
    root.addHandler(handler)
    yield handler
    root.removeHandler(handler)


def notifications(messages: list[Message]) -> list[str]:
    return [f"{m.notification.title}: {m.notification.message}" for m in messages if isinstance(m, Notify)]


async def test_log_warnings_become_one_notification_per_kind_and_never_hit_stderr(
        tmp_path: Path, capfd: pytest.CaptureFixture[str], stderr_handler: logging.Handler) -> None:
    secret = Secret("sk-live-abcdef0123456789")
    messages: list[Message] = []
    app = small_app(tmp_path)
    monotonic = [1000.0]
    app.log_handler.monotonic = lambda: monotonic[0]
    async with app.run_test(size=SIZE, message_hook=messages.append) as pilot:
        await ready(pilot)
        capfd.readouterr()
        for attempt in range(20):
            log.warning("store write failed: %s (attempt %d, key %s)", "database or disk is full", attempt,
                        secret.reveal())
        log.warning("a different problem")
        await pilot.pause()
        logged = [text for text in notifications(messages) if "store write failed" in text]
        assert len(logged) == 1 and secret.reveal() not in logged[0] and "••••" in logged[0]
        assert any("a different problem" in text for text in notifications(messages))
        monotonic[0] += 61
        log.warning("store write failed: %s", "still full")
        await pilot.pause()
        assert len([text for text in notifications(messages) if "store write failed" in text]) == 2
        assert stderr_handler not in logging.getLogger().handlers
        await app.run_action("recent_warnings")  # the palette's "recent warnings": every record, redacted
        await wait_for(pilot, lambda: isinstance(app.screen, WarningsScreen))
        await pilot.pause()
        text = screen_text(pilot)
        assert "attempt 19" in text and secret.reveal() not in text
    assert capfd.readouterr().err == ""
    assert stderr_handler in logging.getLogger().handlers  # restored on exit


async def test_a_store_failing_after_open_closes_the_session_and_exits_with_the_error(tmp_path: Path) -> None:
    closed: list[bool] = []

    async def damaged(session: Session) -> None:
        async def load_snapshot() -> None:
            raise StoreError("database is damaged (file is not a database)", "damaged")

        real_close = session.aclose

        async def aclose() -> None:
            closed.append(True)
            await real_close()

        session.hub.load_snapshot = load_snapshot  # type: ignore[method-assign]
        session.aclose = aclose  # type: ignore[method-assign]

    app = small_app(tmp_path, prepare=damaged)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: bool(app.startup_error))
    assert "damaged" in app.startup_error and closed == [True] and app.return_code == 1


@pytest.mark.timeout(60)
def test_a_damaged_database_ends_the_tui_at_once_with_one_line(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    (data / DATABASE_NAME).write_bytes(b"SQLite format 3\x00" + b"\xde\xad\xbe\xef" * 4096)
    env = base_environment({"VAST_API_KEY": "test-key-0123456789", "COMPUTEHUB_VAST_URL": "http://127.0.0.1:9"})
    with PtyApp(["--data-dir", str(data)], env, size=(80, 24)) as tui:
        code = tui.wait(timeout=30)
    assert code == 1
    tail = bytes(tui.output).rsplit(b"\x1b[?1006l", 1)[-1].decode()  # what follows the screen's teardown
    lines = [line for line in tail.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("computehub-tui: error: ") and "damaged" in lines[0], tail


def test_a_crash_exits_non_zero_with_one_line_and_a_private_redacted_report(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    secret = Secret("sk-live-crash0123456789")

    class CrashingApp(app_module.ComputeHubApp):
        CSS_PATH = Path(app_module.__file__).with_name("app.tcss")

        def on_mount(self) -> None:
            key = secret.reveal()  # a local that Textual's traceback would print
            raise RuntimeError(f"boom while holding {key}")

        def run(self, *args: object, **kwargs: object) -> None:  # type: ignore[override]
            super().run(headless=True)

    monkeypatch.setattr(app_module, "ComputeHubApp", CrashingApp)
    code = entry._run_tui(Options(Config(), tmp_path, demo=True))
    err = capsys.readouterr().err
    assert code == 1
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "internal error" in lines[0] and "RuntimeError" in lines[0], err
    assert secret.reveal() not in err
    report = tmp_path / app_module.CRASH_REPORT_NAME
    assert str(report) in lines[0] and "RuntimeError" in report.read_text()
    assert secret.reveal() not in report.read_text()
    assert stat.S_IMODE(report.stat().st_mode) == 0o600


async def test_copy_shows_the_command_and_says_osc52_is_unconfirmed(tmp_path: Path) -> None:
    copied: list[str] = []

    def local_clipboard(text: str) -> str:
        copied.append(text)
        return "xclip"

    messages: list[Message] = []
    app = small_app(tmp_path)
    app.local_clipboard = local_clipboard
    async with app.run_test(size=SIZE, message_hook=messages.append) as pilot:
        await ready(pilot)
        await pilot.press("2")
        table = app.instances_pane.table
        running = next(i for i in table.rows if i.status is InstanceStatus.RUNNING and i.ssh is not None)
        table.move_to(table.index_of(running.key))
        await pilot.press("c")
        await wait_for(pilot, lambda: isinstance(app.screen, CopyScreen))
        assert running.ssh is not None
        await wait_for(pilot, lambda: "Also copied with xclip" in screen_text(pilot))
        assert running.ssh.command in screen_text(pilot)
        assert str(app.screen.query_one("#copy-note").render()) == OSC52_NOTE
        assert app.clipboard == running.ssh.command and copied == [running.ssh.command]
        assert not any(text.startswith(": Copied") for text in notifications(messages))


def test_local_clipboard_programs_are_used_only_on_a_local_session(tmp_path: Path) -> None:
    target = tmp_path / "clipboard.txt"
    program = tmp_path / "xclip"
    program.write_text(f"#!/bin/sh\ncat > {target}\n")
    program.chmod(0o755)
    local = {"PATH": f"{tmp_path}:/usr/bin:/bin", "DISPLAY": ":0"}
    assert copy_with_local_tool("ssh -p 22 root@host", {**local, "SSH_CONNECTION": "1.2.3.4 5 6.7.8.9 22"}) == ""
    assert not target.exists()
    assert copy_with_local_tool("ssh -p 22 root@host", {"PATH": local["PATH"]}) == ""  # no display to copy to
    assert copy_with_local_tool("ssh -p 22 root@host", local) == "xclip"
    assert target.read_text() == "ssh -p 22 root@host"
