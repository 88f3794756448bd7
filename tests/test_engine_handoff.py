"""The cockpit stays live while the terminal is handed over: the engine polls on its own thread while ssh
holds the UI's loop, and inside tmux ssh opens in a window of its own."""

from __future__ import annotations

import asyncio
import subprocess
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
from tui import SIZE, wait_for

from computehub_tui.clock import SystemClock
from computehub_tui.domain.models import Instance, InstanceStatus
from computehub_tui.engine.events import EngineEvent, InstancesUpdated
from computehub_tui.engine.hub import Hub, HubSettings, PollSettings
from computehub_tui.engine.keys import KeyService
from computehub_tui.providers.demo.adapters import demo_providers
from computehub_tui.providers.demo.market import DemoMarket
from computehub_tui.store import Store
from computehub_tui.ui.app import ComputeHubApp
from computehub_tui.ui.terminal import open_window, tmux_window_argv
from computehub_tui.wiring import Session

POLL_S = 0.1
POLLS_DURING_HANDOFF = 10
"""About a second of hand-off: ten instance polls must land while the UI's loop is blocked."""


def fast_app(tmp_path: Path) -> ComputeHubApp:
    """A real-looking session (one demo provider, real store, real clock) that polls every POLL_S."""

    async def factory() -> Session:
        clock = SystemClock()
        providers, clients = demo_providers(DemoMarket(clock, vast_offer_count=50), clock)
        store = await Store.open(tmp_path / "fast.db")
        # Not the demo: the app would only explain that a demo machine has no real endpoint.
        hub = Hub({"vast": providers["vast"]}, store, clock, HubSettings(poll=PollSettings(60.0, POLL_S)))
        return Session(hub, store, demo=False, keys=KeyService(tmp_path, clock), clients=clients)

    return ComputeHubApp(factory)


def running_with_ssh(app: ComputeHubApp) -> Instance:
    assert app.hub is not None
    return next(i for i in app.hub.instances() if i.status is InstanceStatus.RUNNING and i.ssh is not None)


async def test_polls_go_on_while_ssh_holds_the_terminal(tmp_path: Path) -> None:
    polls = 0
    enough = threading.Event()
    during: list[int] = []
    ui_thread: list[bool] = []

    def count(event: EngineEvent) -> None:
        nonlocal polls
        if isinstance(event, InstancesUpdated):
            polls += 1
            if during and polls >= during[0] + POLLS_DURING_HANDOFF:
                enough.set()

    def ssh_session(app: object, argv: Sequence[str]) -> str | None:
        """Stands in for ssh: holds the UI's loop (as run_in_terminal does) until enough polls landed."""
        ui_thread.append(threading.current_thread() is threading.main_thread())
        during.append(polls)
        enough.wait(timeout=15)
        during.append(polls)
        return None

    app = fast_app(tmp_path)
    app.terminal_runner = ssh_session
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: app.hub is not None and bool(app.hub.instances()))
        assert app.hub is not None
        app.hub.bus.subscribe(count)
        app.open_ssh(running_with_ssh(app))
        assert ui_thread == [True]
        started, ended = during
        assert ended - started >= POLLS_DURING_HANDOFF, "the engine stopped polling while the UI was away"
        await wait_for(pilot, lambda: polls > ended)  # and it goes on afterwards


async def test_inside_tmux_ssh_opens_in_a_new_window_and_the_cockpit_stays(tmp_path: Path) -> None:
    opened: list[list[str]] = []

    def suspend(app: object, argv: Sequence[str]) -> str | None:
        raise AssertionError("inside tmux the terminal is never taken from the cockpit")

    def window(argv: Sequence[str]) -> str | None:
        opened.append(list(argv))
        return None

    app = fast_app(tmp_path)
    app.terminal_runner = suspend
    app.window_opener = window
    app.environ = {"TMUX": "/tmp/tmux-1000/default,4242,0"}
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: app.hub is not None and bool(app.hub.instances()))
        target = running_with_ssh(app)
        assert target.ssh is not None
        app.open_ssh(target)
    ((tmux, new_window, name_flag, name, separator, *command),) = opened
    assert (tmux, new_window, name_flag, separator) == ("tmux", "new-window", "-n", "--")
    assert name and set(name) <= set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-")
    assert command == ["ssh", "-o", "ConnectTimeout=15", *target.ssh.argv[1:]]


@pytest.mark.parametrize(("label", "name"), [
    ("llm-a", "llm-a"),
    ("[bold]x[/] #{pane_id} $(reboot); `id`", "bold-x-pane_id-reboot-id"),
    ("\x1b]52;c;bad\x07", "52-c-bad"),
    ("###", "ssh"),
    ("a" * 80, "a" * 30),
])
def test_a_tmux_window_name_keeps_only_plain_characters(label: str, name: str) -> None:
    assert tmux_window_argv(["ssh", "-p", "22", "root@10.0.0.1"], label) == [
        "tmux", "new-window", "-n", name, "--", "ssh", "-p", "22", "root@10.0.0.1"]


def test_the_window_opens_in_a_real_tmux_server(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    socket = tmp_path / "tmux.sock"
    subprocess.run(["tmux", "-S", str(socket), "new-session", "-d", "-s", "cockpit", "sleep 30"], check=True)
    try:
        monkeypatch.setenv("TMUX", f"{socket},0,0")  # what tmux sets inside its windows: the server to talk to
        assert open_window(tmux_window_argv(["sleep", "30"], "vast-123 [x]")) is None
        listing = ["tmux", "-S", str(socket), "list-windows", "-F", "#{window_name}|#{pane_start_command}"]
        windows = subprocess.run(listing, check=True, capture_output=True, text=True).stdout.split("\n")
        assert "vast-123-x|sleep 30" in windows
    finally:
        subprocess.run(["tmux", "-S", str(socket), "kill-server"], check=False)


def test_a_failing_window_command_says_why(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TMUX", f"{tmp_path / 'no-server'},0,0")
    message: Any = open_window(tmux_window_argv(["sleep", "1"], "x"))
    assert message is not None and message.startswith("tmux exited with code 1")


def open_stores() -> list[threading.Thread]:
    """Each open aiosqlite connection keeps a (non-daemon) worker thread named after its function."""
    return [t for t in threading.enumerate() if "_connection_worker_thread" in t.name]


async def test_quitting_stops_the_polls_closes_the_store_and_ends_the_engine_thread(tmp_path: Path) -> None:
    before = open_stores()
    app = fast_app(tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: app.hub is not None and bool(app.hub.instances()))
        assert len(open_stores()) == len(before) + 1
        engine = next(t for t in threading.enumerate() if t.name == "computehub-engine")
        await pilot.press("q")
    assert app.return_code == 0
    assert not engine.is_alive() and open_stores() == before


async def test_quitting_while_a_new_session_opens_closes_that_one_too(tmp_path: Path) -> None:
    """A store left open would keep the process from ever exiting."""
    second_open, release = threading.Event(), threading.Event()
    first = fast_app(tmp_path).session_factory
    opened = 0

    async def factory() -> Session:
        nonlocal opened
        opened += 1
        session = await first()
        if opened == 2:  # the session switch: still opening when the user quits
            second_open.set()
            await asyncio.to_thread(release.wait, 10)
        return session  # type: ignore[return-value]

    before = open_stores()
    app = ComputeHubApp(factory)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: app.hub is not None and bool(app.hub.instances()))
        app._switch_session(expect_real=False)
        await wait_for(pilot, second_open.is_set)
        await pilot.press("q")
        release.set()
    assert opened == 2 and open_stores() == before
