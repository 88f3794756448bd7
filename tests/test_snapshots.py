"""Snapshots of every screen on the seeded demo market with a frozen clock, at 160x48 and 80x24.

Plain ``def`` tests: the snapshot plugin runs its own event loop. Nothing on screen moves with real
time: the clock is a ManualClock, the time zone is pinned, toasts are cleared and no cursor blinks.
Regenerate with ``pytest tests/test_snapshots.py --snapshot-update``, then look at every image.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest
from textual.pilot import Pilot
from textual.widgets import Input, RichLog
from tui import ready, small_app, wait_for

from computehub_tui.domain.models import InstanceStatus
from computehub_tui.ui.app import ComputeHubApp
from computehub_tui.ui.screens.confirm import ConfirmScreen
from computehub_tui.ui.screens.copy import CopyScreen
from computehub_tui.ui.screens.costs import CostScreen
from computehub_tui.ui.screens.help import HelpScreen
from computehub_tui.ui.screens.instance_detail import InstanceDetailScreen
from computehub_tui.ui.screens.launch import LaunchScreen
from computehub_tui.ui.screens.logs import LogsScreen, WarningsScreen
from computehub_tui.ui.screens.market import MarketScreen
from computehub_tui.ui.screens.offer_detail import OfferDetailScreen
from computehub_tui.ui.screens.projects import ProjectFilter, ProjectScreen
from computehub_tui.ui.screens.settings import KeyInputScreen, SettingsScreen

Steps = Callable[[Pilot], Awaitable[None]]
SIZES = {"160x48": (160, 48), "80x24": (80, 24)}


pytestmark = pytest.mark.usefixtures("utc")


def app_of(pilot: Pilot) -> ComputeHubApp:
    app = pilot.app
    assert isinstance(app, ComputeHubApp)
    return app


def typed(text: str) -> list[str]:
    return ["space" if char == " " else char for char in text]


async def press_until(pilot: Pilot, *keys: str, until: Callable[[ComputeHubApp], bool]) -> None:
    await pilot.press(*keys)
    await wait_for(pilot, lambda: until(app_of(pilot)))


def showing(screen: type) -> Callable[[ComputeHubApp], bool]:
    return lambda app: isinstance(app.screen, screen)


async def instance_row(pilot: Pilot, status: InstanceStatus = InstanceStatus.RUNNING, provider: str = "vast") -> None:
    """The Instances pane with the cursor on the first ``status`` instance of ``provider``."""
    await pilot.press("2")
    table = app_of(pilot).instances_pane.table
    table.move_to(table.index_of(next(i.key for i in table.rows if i.status is status and i.provider == provider)))
    await pilot.pause()


# -- how to reach each screen ---------------------------------------------------------------------


async def offers(pilot: Pilot) -> None:
    pass


async def offers_filtered(pilot: Pilot) -> None:
    await pilot.press("slash", *typed('"rtx 4090" spot:no'), "enter")


async def offers_filter_error(pilot: Pilot) -> None:
    await pilot.press("slash", *typed("h100 price<<3"))


async def offer_detail(pilot: Pilot) -> None:
    def chart_loaded(app: ComputeHubApp) -> bool:
        return isinstance(app.screen, OfferDetailScreen) and "loading" not in str(
            app.screen.query_one("#detail-chart-note").render())

    await press_until(pilot, "i", until=chart_loaded)


async def market_summary(pilot: Pilot) -> None:
    await press_until(pilot, "m", until=lambda app: isinstance(app.screen, MarketScreen) and bool(app.screen.table.rows))


async def launch_dialog(pilot: Pilot) -> None:
    assert app_of(pilot).offers_pane.apply_filter("provider:vast spot:yes")  # the dialog with a bid field
    await press_until(pilot, "enter", until=showing(LaunchScreen))


async def instances(pilot: Pilot) -> None:
    await instance_row(pilot)


async def confirm_start(pilot: Pilot) -> None:
    await instance_row(pilot, InstanceStatus.STOPPED)
    await press_until(pilot, "s", until=showing(ConfirmScreen))


async def confirm_destroy(pilot: Pilot) -> None:
    await instance_row(pilot)
    await press_until(pilot, "d", until=showing(ConfirmScreen))


async def logs(pilot: Pilot) -> None:
    await instance_row(pilot, provider="runpod")  # Vast's logs wait for an upload on the clock
    await press_until(pilot, "l", until=lambda app: isinstance(app.screen, LogsScreen)
                      and len(app.screen.query_one(RichLog).lines) > 1)


async def copy_ssh(pilot: Pilot) -> None:
    app_of(pilot).local_clipboard = lambda text: ""  # what this machine's clipboard tools do is not on trial
    await instance_row(pilot)
    await press_until(pilot, "c", until=showing(CopyScreen))


async def monitor(pilot: Pilot) -> None:
    await pilot.press("3")


async def instance_detail(pilot: Pilot) -> None:
    def charts_drawn(app: ComputeHubApp) -> bool:
        return isinstance(app.screen, InstanceDetailScreen) and "loading" not in str(
            app.screen.query_one("#instance-chart-note").render())

    await instance_row(pilot, provider="runpod")  # RunPod maps its ports: the URLs show
    await press_until(pilot, "i", until=charts_drawn)


async def instances_by_project(pilot: Pilot) -> None:
    """Two instances put in one project (normal text; the others' projects, implied by labels, are dim),
    then the list filtered to it."""
    app = app_of(pilot)
    assert app.hub is not None
    for instance in app.hub.instances():
        if instance.label in ("llama-finetune", "sd-webui"):
            await app.hub.projects.set(instance.key, "llm-train", actor="user")
    app.instances_pane.set_project_filter(ProjectFilter("llm-train"))
    await instance_row(pilot)


async def project_dialog(pilot: Pilot) -> None:
    await instance_row(pilot)
    await press_until(pilot, "p", until=showing(ProjectScreen))
    app_of(pilot).screen.query_one(Input).value = "llm train"
    await pilot.press("enter")  # refused: the rule shows in the dialog


async def spend_by_day(pilot: Pilot) -> None:
    await press_until(pilot, "dollar_sign", until=lambda app: isinstance(app.screen, CostScreen)
                      and app.screen.summary is not None)


async def help_screen(pilot: Pilot) -> None:
    await press_until(pilot, "question_mark", until=showing(HelpScreen))


def settings_loaded(app: ComputeHubApp) -> bool:
    return isinstance(app.screen, SettingsScreen) and len(app.screen.bindings_by_provider) == 4


async def settings(pilot: Pilot) -> None:
    await press_until(pilot, "comma", until=settings_loaded)


async def key_prompt(pilot: Pilot) -> None:
    await settings(pilot)
    await press_until(pilot, "b", until=showing(KeyInputScreen))


async def recent_warnings(pilot: Pilot) -> None:
    await app_of(pilot).run_action("recent_warnings")
    await wait_for(pilot, lambda: isinstance(app_of(pilot).screen, WarningsScreen))


SCREENS: dict[str, Steps] = {step.__name__: step for step in (
    offers, offers_filtered, offers_filter_error, offer_detail, market_summary, launch_dialog, instances,
    confirm_start, confirm_destroy, logs, copy_ssh, monitor, instance_detail, help_screen, settings, key_prompt, recent_warnings,
    instances_by_project, project_dialog, spend_by_day,
)}


async def settle(pilot: Pilot) -> None:
    """No toasts (they expire on a timer) and no blinking cursor."""
    await pilot.pause()
    for box in pilot.app.screen.query(Input):
        box.cursor_blink = False
    pilot.app.clear_notifications()
    await pilot.pause()


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("screen", SCREENS)
def test_screen(snap_compare: Callable[..., bool], tmp_path: Path, screen: str, size: str) -> None:
    async def run_before(pilot: Pilot) -> None:
        await ready(pilot)
        pilot.app.clear_notifications()  # while the main screen, which shows the toasts, is on top
        await SCREENS[screen](pilot)
        await settle(pilot)

    assert snap_compare(small_app(tmp_path), terminal_size=SIZES[size], run_before=run_before)
