"""Snapshots of Settings → Notifications over an in-memory alerts source, at 160x48 and 80x24.

Plain ``def`` tests, as in test_snapshots.py (the plugin runs its own loop). The screens need only their
source, so they run in a bare host app: a fraction of the demo market's start-up. Regenerate with
``pytest tests/test_ui_notifications_snapshots.py --snapshot-update``, then look at every image.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from functools import partial

import pytest
from fakes.alerts_source import FakeAlertsSource, configured_source
from test_snapshots import SIZES, settle
from test_ui_notifications import Host, field, on_channels, open_form, open_log, select_channel
from textual.pilot import Pilot
from tui import wait_for

from computehub_tui.ui.screens.notifications import NO_CHANNELS_TEXT, NotificationsScreen

Steps = Callable[[Pilot], Awaitable[None]]

pytestmark = pytest.mark.usefixtures("utc")


class Refused(Exception):
    reason = "535 5.7.8 Authentication credentials invalid"


def source_for(screen: str) -> FakeAlertsSource:
    if screen == "channels_empty":
        return FakeAlertsSource()
    source = configured_source()
    source.test_answers = {"telegram": "message 42 delivered", "email": Refused()}
    return source


async def channels(pilot: Pilot) -> None:
    screen = await on_channels(pilot)
    for name in ("telegram", "email"):  # one after the other: the status line shows the last answer
        await select_channel(pilot, screen, name)
        await pilot.press("t")
        await wait_for(pilot, partial(answered, screen, name))


def answered(screen: NotificationsScreen, name: str) -> bool:
    return screen.tests.get(name, ("", ""))[0].startswith(("✔", "✖"))


async def channels_empty(pilot: Pilot) -> None:
    await on_channels(pilot)
    await wait_for(pilot, lambda: NO_CHANNELS_TEXT in str(pilot.app.screen.query_one("#channels-help").render()))


async def channel_form(pilot: Pilot) -> None:
    screen = await on_channels(pilot)
    await select_channel(pilot, screen, "email")
    form = await open_form(pilot, ("e",))
    field(form, "port").value = "70000"
    await pilot.press("ctrl+s")
    await wait_for(pilot, lambda: "65535" in str(form.query_one("#port-error").render()))
    field(form, "host").focus()


async def delivery_log(pilot: Pilot) -> None:
    log = await open_log(pilot)
    log.table.move_to(log.table.index_of("d3"))


SCREENS: dict[str, Steps] = {step.__name__: step for step in (channels, channels_empty, channel_form, delivery_log)}


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("screen", SCREENS)
def test_notifications_screen(snap_compare: Callable[..., bool], screen: str, size: str) -> None:
    async def run_before(pilot: Pilot) -> None:
        await SCREENS[screen](pilot)
        await settle(pilot)

    assert snap_compare(Host(source_for(screen)), terminal_size=SIZES[size], run_before=run_before)
