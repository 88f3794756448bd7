"""Snapshots of the action screens on the seeded demo market and a manual clock: the Instances pane, the
launch dialog (120x40 and 80x24), the start and destroy confirmations and the logs view.

Regenerate with ``pytest tests/test_snapshots_actions.py --snapshot-update`` and look at the SVGs."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path

import pytest
from textual.pilot import Pilot
from textual.widgets import Input, RichLog
from tui import ready, small_app, wait_for

from computehub_tui.domain.models import InstanceStatus
from computehub_tui.ui.app import ComputeHubApp
from computehub_tui.ui.screens.confirm import ConfirmScreen
from computehub_tui.ui.screens.launch import LaunchScreen
from computehub_tui.ui.screens.logs import LogsScreen

SnapCompare = Callable[..., bool]
RunBefore = Callable[[Pilot], Awaitable[None]]
LARGE = (120, 40)


@pytest.fixture(autouse=True)
def utc(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """"Spent today" starts at local midnight: pin the zone so the header is the same everywhere."""
    monkeypatch.setenv("TZ", "UTC")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


async def settle(pilot: Pilot) -> None:
    """Nothing that moves with real time: no toasts (they expire on a timer), no blinking cursor."""
    await pilot.pause()
    for box in pilot.app.screen.query(Input):
        box.cursor_blink = False
    pilot.app.clear_notifications()
    await pilot.pause()


def snapshot(snap_compare: SnapCompare, tmp_path: Path, steps: RunBefore, size: tuple[int, int] = LARGE) -> bool:
    async def run_before(pilot: Pilot) -> None:
        await ready(pilot)
        pilot.app.clear_notifications()  # while the main screen, which shows the toasts, is on top
        await steps(pilot)
        await settle(pilot)

    return snap_compare(small_app(tmp_path), terminal_size=size, run_before=run_before)


async def instances_pane(pilot: Pilot, status: InstanceStatus = InstanceStatus.RUNNING,
                         provider: str = "vast") -> ComputeHubApp:
    app = pilot.app
    assert isinstance(app, ComputeHubApp)
    await pilot.press("2")
    table = app.instances_pane.table
    table.move_to(table.index_of(next(i.key for i in table.rows if i.status is status and i.provider == provider)))
    await pilot.pause()
    return app


async def launch_dialog(pilot: Pilot) -> None:
    app = pilot.app
    assert isinstance(app, ComputeHubApp)
    assert app.offers_pane.apply_filter("provider:vast spot:yes")
    await pilot.press("enter")
    await wait_for(pilot, lambda: isinstance(app.screen, LaunchScreen))


def test_instances_pane(snap_compare: SnapCompare, tmp_path: Path) -> None:
    async def steps(pilot: Pilot) -> None:
        await instances_pane(pilot)

    assert snapshot(snap_compare, tmp_path, steps)


def test_launch_dialog_120x40(snap_compare: SnapCompare, tmp_path: Path) -> None:
    assert snapshot(snap_compare, tmp_path, launch_dialog)


def test_launch_dialog_80x24(snap_compare: SnapCompare, tmp_path: Path) -> None:
    assert snapshot(snap_compare, tmp_path, launch_dialog, size=(80, 24))


def test_confirm_start(snap_compare: SnapCompare, tmp_path: Path) -> None:
    async def steps(pilot: Pilot) -> None:
        app = await instances_pane(pilot, InstanceStatus.STOPPED)
        await pilot.press("s")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmScreen))

    assert snapshot(snap_compare, tmp_path, steps)


def test_confirm_destroy(snap_compare: SnapCompare, tmp_path: Path) -> None:
    async def steps(pilot: Pilot) -> None:
        app = await instances_pane(pilot)
        await pilot.press("d")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmScreen))

    assert snapshot(snap_compare, tmp_path, steps)


def test_logs_view(snap_compare: SnapCompare, tmp_path: Path) -> None:
    async def steps(pilot: Pilot) -> None:
        app = await instances_pane(pilot, provider="runpod")  # Vast's logs wait for an upload on the clock
        await pilot.press("l")
        await wait_for(pilot, lambda: isinstance(app.screen, LogsScreen)
                       and len(app.screen.query_one(RichLog).lines) > 1)

    assert snapshot(snap_compare, tmp_path, steps)
