"""Snapshots of the views and dialogs on the seeded demo market with a frozen clock (plain `def`
tests: the snapshot plugin runs its own event loop). Update with `--snapshot-update`, then look."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest
from test_app import wait_for
from textual.pilot import Pilot
from textual.widgets import Input

from computehub_tui.clock import ManualClock
from computehub_tui.config import Config
from computehub_tui.ui.app import ComputeHubApp
from computehub_tui.wiring import open_session

WIDE, SMALL = (120, 40), (80, 24)
Step = Callable[[Pilot], Awaitable[None]]


@pytest.fixture(autouse=True)
def utc(monkeypatch: pytest.MonkeyPatch) -> None:
    """"Spent today" starts at local midnight; pin the zone so the header reads the same everywhere."""
    monkeypatch.setenv("TZ", "UTC")
    time.tzset()


def demo_app(tmp_path: Path) -> ComputeHubApp:
    config = Config.model_validate({"demo": {"vast_offers": 200}})  # a small market keeps every snapshot quick
    return ComputeHubApp(lambda: open_session(config, tmp_path, demo=True, clock=ManualClock()))


def after(*keys: str, until: Callable[[ComputeHubApp], bool] = lambda app: True) -> Step:
    """Wait for the demo to load, drop the toasts, press ``keys``, wait for ``until``, steady the cursor."""

    async def run(pilot: Pilot) -> None:
        app = pilot.app
        assert isinstance(app, ComputeHubApp)
        await wait_for(pilot, lambda: app.hub is not None and all(h.offers_at and h.instances_at
                                                                  for h in app.hub.health())
                       and bool(app.offers_pane.table.rows) and bool(app.instances_pane.table.rows))
        app.clear_notifications()
        for key in keys:
            await pilot.press(key)
        await wait_for(pilot, lambda: until(app))
        for box in app.screen.query(Input):
            box.cursor_blink = False
        await pilot.pause()

    return run


def typed(text: str) -> list[str]:
    return ["space" if char == " " else char for char in text]


def screen_named(name: str) -> Callable[[ComputeHubApp], bool]:
    return lambda app: type(app.screen).__name__ == name


def settings_loaded(app: ComputeHubApp) -> bool:
    return type(app.screen).__name__ == "SettingsScreen" and len(app.screen.bindings_by_provider) == 4


def detail_loaded(app: ComputeHubApp) -> bool:
    return type(app.screen).__name__ == "OfferDetailScreen" and "loading" not in str(
        app.screen.query_one("#detail-chart-note").render())


def market_loaded(app: ComputeHubApp) -> bool:
    return type(app.screen).__name__ == "MarketScreen" and bool(app.screen.table.rows)


def test_offers_plain(snap_compare: Callable[..., bool], tmp_path: Path) -> None:
    assert snap_compare(demo_app(tmp_path), terminal_size=WIDE, run_before=after())


def test_offers_filtered(snap_compare: Callable[..., bool], tmp_path: Path) -> None:
    keys = ["slash", *typed('"rtx 4090" spot:no'), "enter"]
    assert snap_compare(demo_app(tmp_path), terminal_size=WIDE, run_before=after(*keys))


def test_offers_filter_error_caret(snap_compare: Callable[..., bool], tmp_path: Path) -> None:
    assert snap_compare(demo_app(tmp_path), terminal_size=WIDE, run_before=after("slash", *typed("h100 price<<3")))


def test_monitor(snap_compare: Callable[..., bool], tmp_path: Path) -> None:
    assert snap_compare(demo_app(tmp_path), terminal_size=WIDE, run_before=after("3"))


@pytest.mark.parametrize("size", [WIDE, SMALL], ids=["120x40", "80x24"])
def test_offer_detail(snap_compare: Callable[..., bool], tmp_path: Path, size: tuple[int, int]) -> None:
    assert snap_compare(demo_app(tmp_path), terminal_size=size, run_before=after("i", until=detail_loaded))


@pytest.mark.parametrize("size", [WIDE, SMALL], ids=["120x40", "80x24"])
def test_market_summary(snap_compare: Callable[..., bool], tmp_path: Path, size: tuple[int, int]) -> None:
    assert snap_compare(demo_app(tmp_path), terminal_size=size, run_before=after("m", until=market_loaded))


@pytest.mark.parametrize("size", [WIDE, SMALL], ids=["120x40", "80x24"])
def test_settings(snap_compare: Callable[..., bool], tmp_path: Path, size: tuple[int, int]) -> None:
    assert snap_compare(demo_app(tmp_path), terminal_size=size, run_before=after("comma", until=settings_loaded))


@pytest.mark.parametrize("size", [WIDE, SMALL], ids=["120x40", "80x24"])
def test_help(snap_compare: Callable[..., bool], tmp_path: Path, size: tuple[int, int]) -> None:
    assert snap_compare(demo_app(tmp_path), terminal_size=size,
                        run_before=after("question_mark", until=screen_named("HelpScreen")))
