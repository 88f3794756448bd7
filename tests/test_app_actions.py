"""Actions that bill or destroy confirm wherever they come from (key, palette, marks); skipped instances
are reported as skipped; marks are cleared once a bulk action is sent; one Quit in the palette."""

from __future__ import annotations

from pathlib import Path

from textual.message import Message
from textual.notifications import Notify
from textual.pilot import Pilot
from tui import SIZE, ready, run_palette, small_app, wait_for

from computehub_tui.domain.models import Instance, InstanceStatus
from computehub_tui.engine.events import ActionStarted, EngineEvent
from computehub_tui.ui.app import ComputeHubApp
from computehub_tui.ui.commands import HubCommands
from computehub_tui.ui.screens.confirm import ConfirmScreen
from computehub_tui.ui.screens.market import MarketScreen


def started(app: ComputeHubApp) -> list[ActionStarted]:
    """Every action the engine starts from now on."""
    seen: list[ActionStarted] = []

    def record(event: EngineEvent) -> None:
        if isinstance(event, ActionStarted):
            seen.append(event)

    assert app.hub is not None
    app.hub.bus.subscribe(record)
    return seen


async def select_row(pilot: Pilot, app: ComputeHubApp, status: InstanceStatus, provider: str = "vast") -> Instance:
    await pilot.press("2")
    table = app.instances_pane.table
    instance = next(i for i in table.rows if i.status is status and i.provider == provider)
    table.move_to(table.index_of(instance.key))
    await pilot.pause()
    return instance


async def test_the_palette_never_starts_a_machine_without_the_confirmation(tmp_path: Path) -> None:
    async with small_app(tmp_path).run_test(size=SIZE) as pilot:
        app = await ready(pilot)
        actions = started(app)
        stopped = await select_row(pilot, app, InstanceStatus.STOPPED)
        await run_palette(pilot, "market")  # used to match "Start selected / marked instances" and run it
        await wait_for(pilot, lambda: isinstance(app.screen, (MarketScreen, ConfirmScreen)))
        assert isinstance(app.screen, MarketScreen)
        assert actions == [] and app.hub.instance(stopped.key).status is InstanceStatus.STOPPED
        await pilot.press("escape")
        await select_row(pilot, app, InstanceStatus.STOPPED)
        await run_palette(pilot, "start selected")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmScreen))
        assert actions == []
        assert stopped.key in app.screen.body and f"${stopped.price_hour:.3f}/h" in app.screen.title_text
        await pilot.press("y")
        await wait_for(pilot, lambda: [a.target for a in actions] == [stopped.key])


async def test_s_on_a_stopped_instance_and_r_on_a_running_one_confirm(tmp_path: Path) -> None:
    async with small_app(tmp_path).run_test(size=SIZE) as pilot:
        app = await ready(pilot)
        actions = started(app)
        await select_row(pilot, app, InstanceStatus.STOPPED)
        await pilot.press("s")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmScreen))
        assert "Starts billing" in app.screen.body
        await pilot.press("n")
        await wait_for(pilot, lambda: not isinstance(app.screen, ConfirmScreen))
        await select_row(pilot, app, InstanceStatus.RUNNING)
        await pilot.press("r")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmScreen))
        assert "interrupts whatever is running" in app.screen.body
        await pilot.press("n")
        await pilot.pause()
        assert actions == []


async def test_bulk_stop_skips_the_stopped_one_with_its_reason_and_clears_the_marks(tmp_path: Path) -> None:
    messages: list[Message] = []
    async with small_app(tmp_path).run_test(size=SIZE, message_hook=messages.append) as pilot:
        app = await ready(pilot)
        actions = started(app)
        running = await select_row(pilot, app, InstanceStatus.RUNNING)
        await pilot.press("space")
        stopped = await select_row(pilot, app, InstanceStatus.STOPPED)
        await pilot.press("space")
        assert app.instances_pane.marked == {running.key, stopped.key}
        await pilot.press("x")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmScreen))
        assert f"{stopped.key}  already stopped" in app.screen.body
        await pilot.press("y")
        await wait_for(pilot, lambda: app.hub.instance(running.key).status is InstanceStatus.STOPPED)
        assert app.instances_pane.marked == set()
        assert [a.target for a in actions] == [running.key]
        shown = [m.notification.message for m in messages if isinstance(m, Notify)]
        assert any(f"{stopped.key}: already stopped" in text for text in shown), shown
        assert any(f"stop {running.key}: done" in text for text in shown)
        assert not any(f"stop {stopped.key}: done" in text for text in shown)


async def test_nothing_to_do_says_why_and_sends_nothing(tmp_path: Path) -> None:
    messages: list[Message] = []
    async with small_app(tmp_path).run_test(size=SIZE, message_hook=messages.append) as pilot:
        app = await ready(pilot)
        actions = started(app)
        stopped = await select_row(pilot, app, InstanceStatus.STOPPED)
        await pilot.press("x")
        await pilot.pause()
        assert not isinstance(app.screen, ConfirmScreen) and actions == []
        shown = [m.notification for m in messages if isinstance(m, Notify)]
        assert any(n.title == "Nothing to stop" and f"{stopped.key}: already stopped" in n.message for n in shown)


async def test_palette_has_every_readme_action_and_one_quit(tmp_path: Path) -> None:
    async with small_app(tmp_path).run_test(size=SIZE) as pilot:
        app = await ready(pilot)
        ours = [title for title, _, _ in HubCommands(app.screen)._commands()]
        system = [command.title for command in app.get_system_commands(app.screen)]
        every = ours + system
        assert sum(1 for title in every if title.startswith("Quit")) == 1
        keys = {key for _, _, key in HubCommands(app.screen)._commands()}
        readme_keys = {"1", "2", "3", "?", ",", "ctrl+r", "q", "/", "esc", "enter", "i", "m", "P", "U", "V", "F",
                       "M", "R", "A", "N", "space", "ctrl+a", "s", "x", "r", "d", "l", "c"}
        assert readme_keys <= keys, readme_keys - keys
