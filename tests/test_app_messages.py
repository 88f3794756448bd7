"""Widgets talk up with messages and engine events reach the panes through one dispatch table."""

from __future__ import annotations

import re
from functools import partial
from pathlib import Path
from typing import Any, get_args

import pytest
from textual import on
from textual.app import App, ComposeResult
from textual.message import Message
from textual.widgets._footer import FooterKey
from tui import SIZE, ready, small_app, wait_for

import computehub_tui.ui
import computehub_tui.ui.app as app_module
from computehub_tui.clock import ManualClock
from computehub_tui.config import Config
from computehub_tui.domain.models import InstanceStatus
from computehub_tui.engine.events import EngineEvent
from computehub_tui.engine.hub import Hub
from computehub_tui.ui.app import ComputeHubApp
from computehub_tui.ui.screens.launch import LaunchScreen
from computehub_tui.ui.screens.offer_detail import OfferDetailScreen
from computehub_tui.ui.widgets.footer import HubFooter
from computehub_tui.ui.widgets.instances_pane import InstancesPane
from computehub_tui.ui.widgets.offers_pane import OffersPane
from computehub_tui.wiring import open_session

UI_ROOT = Path(computehub_tui.ui.__file__).parent


class PaneHost(App[None]):
    """Not the ComputeHubApp: a pane that called the App by name would fail here."""

    def __init__(self, hub: Hub) -> None:
        super().__init__()
        self.hub = hub
        self.received: list[Message] = []

    def compose(self) -> ComposeResult:
        yield OffersPane(id="offers")
        yield InstancesPane(id="instances")

    def on_mount(self) -> None:
        self.query_one(OffersPane).attach(self.hub)
        self.query_one(InstancesPane).attach(self.hub)

    @on(OffersPane.LaunchRequested)
    @on(InstancesPane.ActionRequested)
    @on(InstancesPane.SshRequested)
    @on(InstancesPane.LogsRequested)
    @on(InstancesPane.CopyRequested)
    def _record(self, message: Message) -> None:
        self.received.append(message)


async def test_panes_ask_for_launch_ssh_logs_copy_and_actions_by_message(tmp_path: Path) -> None:
    session = await open_session(Config.model_validate({"demo": {"vast_offers": 200}}), tmp_path, demo=True, clock=ManualClock())
    try:
        hub = session.hub
        for health in hub.health():
            assert await hub.refresh_offers(health.provider) and await hub.refresh_instances(health.provider)
        host = PaneHost(hub)
        async with host.run_test(size=SIZE) as pilot:
            offers, instances = host.query_one(OffersPane), host.query_one(InstancesPane)
            offers.table.focus()
            await pilot.press("enter")
            await wait_for(pilot, lambda: len(host.received) == 1)
            launch = host.received[0]
            assert isinstance(launch, OffersPane.LaunchRequested) and launch.offer == offers.table.current_row

            instances.table.focus()
            running = next(i for i in instances.table.rows if i.status is InstanceStatus.RUNNING and i.ssh)
            instances.table.move_to(instances.table.index_of(running.key))
            await pilot.press("d", "l", "c", "enter")
            await wait_for(pilot, lambda: len(host.received) == 5)
            action, logs, copy, ssh = host.received[1:]
            assert isinstance(action, InstancesPane.ActionRequested)
            assert (action.action, [i.key for i in action.instances]) == ("destroy", [running.key])
            assert isinstance(logs, InstancesPane.LogsRequested) and logs.instance.key == running.key
            assert isinstance(copy, InstancesPane.CopyRequested) and running.ssh is not None
            assert (copy.text, copy.what) == (running.ssh.command, "the SSH command")
            assert isinstance(ssh, InstancesPane.SshRequested) and ssh.instance.key == running.key
    finally:
        await session.aclose()


async def test_enter_in_offer_details_opens_the_launch_dialog_for_that_offer(tmp_path: Path) -> None:
    async with small_app(tmp_path, ManualClock()).run_test(size=SIZE) as pilot:
        app = await ready(pilot)
        await pilot.press("end", "i")
        await wait_for(pilot, lambda: isinstance(app.screen, OfferDetailScreen))
        shown = app.screen.offer
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, LaunchScreen))
        assert app.screen.offer == shown and shown == app.offers_pane.table.rows[-1]
        await pilot.press("escape")
        await pilot.press("i")
        await wait_for(pilot, lambda: isinstance(app.screen, OfferDetailScreen))
        await pilot.press("escape")  # closing the details launches nothing
        await wait_for(pilot, lambda: not isinstance(app.screen, OfferDetailScreen))
        await pilot.pause()
        assert not isinstance(app.screen, LaunchScreen)


def test_every_engine_event_kind_has_a_handler() -> None:
    async def never() -> Any:
        raise AssertionError("not opened")

    handlers = ComputeHubApp(never)._event_handlers
    assert set(get_args(EngineEvent)) == set(handlers)


def test_no_widget_or_screen_calls_the_app_by_name() -> None:
    ignores = [f"{path.relative_to(UI_ROOT)}:{number}" for path in sorted(UI_ROOT.rglob("*.py"))
               for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
               if re.search(r"type:\s*ignore\[attr-defined\]", line)]
    assert ignores == []


async def test_a_pane_repaints_at_once_then_once_at_the_end_of_the_window(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The first offers are painted the moment they arrive; the rest of the burst waits for one repaint."""
    monkeypatch.setattr(app_module, "COALESCE_S", 3600.0)  # the window never ends by itself here
    app = small_app(tmp_path, ManualClock())
    log: list[tuple[str, str]] = []
    pending: list[Any] = []
    refresh_pane, set_timer = app._refresh_pane, app.set_timer

    def logged_refresh(pane: str) -> None:
        log.append(("repaint", pane))
        refresh_pane(pane)

    def logged_timer(delay: float, callback: Any = None, **kwargs: Any) -> Any:
        if isinstance(callback, partial) and callback.func == logged_refresh:
            log.append(("scheduled", callback.args[0]))
            pending.append(callback)
        return set_timer(delay, callback, **kwargs)

    monkeypatch.setattr(app, "_refresh_pane", logged_refresh)
    monkeypatch.setattr(app, "set_timer", logged_timer)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: app.hub is not None and all(h.offers_at for h in app.hub.health()))
        await pilot.pause()
        offers = [kind for kind, pane in log if pane == "offers"]
        assert offers[:1] == ["repaint"] and offers.count("scheduled") == 1
        for callback in pending:
            callback()
        await ready(pilot)


async def test_the_footer_rebuilds_only_when_its_keys_change(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    async with small_app(tmp_path, ManualClock()).run_test(size=SIZE) as pilot:
        app = await ready(pilot)
        footer = app.query_one(HubFooter)
        rebuilds: list[int] = []
        recompose = footer.recompose

        async def counted() -> None:
            rebuilds.append(1)
            await recompose()

        monkeypatch.setattr(footer, "recompose", counted)
        for _ in range(5):  # what focus moves and the app regaining focus do
            app.screen.refresh_bindings()
            await pilot.pause()
        assert rebuilds == []
        await pilot.press("2")
        await wait_for(pilot, lambda: any(key.description == "Start" for key in footer.query(FooterKey)))
        assert rebuilds == [1]
