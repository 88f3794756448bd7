"""The launch dialog fits small terminals, validates before it prices, shows only the caveats that apply,
and launches only at the price it has shown; the confirm dialog and the logs view fit at 80x24."""

from __future__ import annotations

from pathlib import Path

import pytest
from textual.pilot import Pilot
from textual.widgets import Input
from tui import SIZE, ready, screen_text, small_app, wait_for

from computehub_tui.clock import ManualClock
from computehub_tui.config import Config
from computehub_tui.domain.templates import Template
from computehub_tui.engine.events import ActionStarted, EngineEvent
from computehub_tui.ui.app import ComputeHubApp
from computehub_tui.ui.screens.confirm import ConfirmScreen
from computehub_tui.ui.screens.launch import BID_HINT, MAX_HINT, LaunchScreen
from computehub_tui.ui.screens.logs import LogsScreen

SMALL = (80, 24)


async def open_launch(pilot: Pilot, offer_filter: str) -> tuple[ComputeHubApp, LaunchScreen]:
    """The launch dialog for the first offer matching ``offer_filter``."""
    app = pilot.app
    assert isinstance(app, ComputeHubApp)
    if app.hub is None:
        await ready(pilot)
    assert app.offers_pane.apply_filter(offer_filter), offer_filter
    await pilot.pause()
    assert app.offers_pane.table.current_row is not None, offer_filter
    await pilot.press("enter")
    await wait_for(pilot, lambda: isinstance(app.screen, LaunchScreen))
    await pilot.pause()
    assert isinstance(app.screen, LaunchScreen)
    return app, app.screen


def on_screen(app: ComputeHubApp, selector: str) -> bool:
    region = app.screen.query_one(selector).region
    return region.height > 0 and app.screen.region.contains_region(region)


def shown(screen: LaunchScreen, selector: str) -> str:
    return str(screen.query_one(selector).render())


def launches(app: ComputeHubApp) -> list[str]:
    seen: list[str] = []

    def record(event: EngineEvent) -> None:
        if isinstance(event, ActionStarted) and event.action == "launch":
            seen.append(event.target)

    assert app.hub is not None
    app.hub.bus.subscribe(record)
    return seen


@pytest.mark.parametrize("size", [SMALL, (120, 40)])
async def test_total_caveats_and_buttons_are_on_screen(tmp_path: Path, size: tuple[int, int]) -> None:
    async with small_app(tmp_path).run_test(size=size) as pilot:
        # the longest forms and caveat lists: a Vast spot offer (bid), Lambda (four notes), RunPod spot
        for offer_filter in ("provider:vast spot:yes", "provider:lambda", "provider:runpod spot:yes"):
            app, screen = await open_launch(pilot, offer_filter)
            for selector in ("#launch-offer", "#launch-price", "#launch-caveats", "#launch", "#cancel"):
                assert on_screen(app, selector), (offer_filter, selector, app.screen.query_one(selector).region)
            assert shown(screen, "#launch-price").startswith("Total: $")
            await pilot.press("escape")
            await wait_for(pilot, lambda: not isinstance(pilot.app.screen, LaunchScreen))


async def test_on_demand_form_validates_before_pricing_and_clears_a_fixed_error(tmp_path: Path) -> None:
    async with small_app(tmp_path).run_test(size=SIZE) as pilot:
        hub = (await ready(pilot)).hub
        assert hub is not None
        hub.templates.append(Template("odd", "exp [/] [bold]mine[/]", "ubuntu:24.04"))  # a user's template file
        app, screen = await open_launch(pilot, "provider:vast spot:no")
        await pilot.click("#launch-template")
        await pilot.pause()
        assert "exp [/] [bold]mine[/]" in screen_text(pilot)
        await pilot.press("escape")  # closes the list, not the dialog
        await pilot.pause()
        assert app.screen is screen
        started = launches(app)
        caveats = shown(screen, "#launch-caveats").lower()
        assert caveats and "interruptible" not in caveats and "outbid" not in caveats
        assert not screen.query("#launch-bid")
        screen.query_one("#launch-disk", Input).value = "-5"
        await pilot.pause()
        assert "$" not in shown(screen, "#launch-price") and screen.shown_price is None
        assert "between 1 and 10000" in shown(screen, "#launch-error")
        await pilot.press("ctrl+s")
        await pilot.pause()
        assert started == [] and isinstance(app.screen, LaunchScreen)
        screen.query_one("#launch-disk", Input).value = "40"
        await pilot.pause()
        assert shown(screen, "#launch-error") == "" and shown(screen, "#launch-price").startswith("Total: $")


async def test_spot_offers_warn_once_and_explain_bid_and_max(tmp_path: Path) -> None:
    async with small_app(tmp_path).run_test(size=SIZE) as pilot:
        for offer_filter in ("provider:vast spot:yes", "provider:runpod spot:yes"):
            _, screen = await open_launch(pilot, offer_filter)
            lines = shown(screen, "#launch-caveats").lower().splitlines()
            about_losing_it = [line for line in lines if any(w in line for w in ("interruptible", "outbid", "spot"))]
            assert len(about_losing_it) == 1, (offer_filter, lines)
            hints = [str(hint.render()) for hint in screen.query(".hint")]
            assert hints == [BID_HINT, MAX_HINT]
            await pilot.press("escape")
            await wait_for(pilot, lambda: not isinstance(pilot.app.screen, LaunchScreen))


async def test_lambda_form_and_a_launch_without_an_ssh_key_fails_like_the_real_one(tmp_path: Path) -> None:
    async with small_app(tmp_path).run_test(size=SIZE) as pilot:
        app, screen = await open_launch(pilot, "provider:lambda avail:yes")
        assert not screen.query("#launch-image") and not screen.query("#launch-disk")
        assert "(ssh_key_name under [providers.lambda])" in shown(screen, "#launch-caveats")
        before = len(app.hub.instances())
        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: "ssh_key_name under [providers.lambda]" in shown(screen, "#launch-error"))
        assert isinstance(app.screen, LaunchScreen) and len(app.hub.instances()) == before


async def test_demo_lambda_launch_works_with_the_configured_key(tmp_path: Path) -> None:
    config = Config.model_validate({"providers": {"lambda": {"ssh_key_name": "demo-key"}}})
    async with small_app(tmp_path, config=config).run_test(size=SIZE) as pilot:
        app, _ = await open_launch(pilot, "provider:lambda avail:yes")
        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: not isinstance(app.screen, LaunchScreen))


async def test_ctrl_s_launches_only_at_the_price_on_screen(tmp_path: Path) -> None:
    clock = ManualClock()
    async with small_app(tmp_path, clock).run_test(size=SIZE) as pilot:
        app, screen = await open_launch(pilot, "provider:vast spot:no")
        started = launches(app)
        seen = screen.shown_price
        await clock.advance(6 * 3600)  # the market drifts; the dialog still shows the old quote
        await app.hub.refresh_offers("vast")
        fresh = next((o for o in app.hub.offers() if o.key == screen.offer.key), None)
        if fresh is None or abs(fresh.price_hour - screen.offer.price_hour) < 5e-4:
            pytest.fail("the demo quote did not move; pick a longer drift")
        screen.query_one("#launch-max", Input).value = "1000"
        await pilot.pause()
        assert screen.shown_price == seen
        await pilot.press("ctrl+s")
        await pilot.pause()
        assert started == [] and "quote changed" in shown(screen, "#launch-error")
        assert screen.offer == fresh and screen.shown_price != seen
        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: started == [fresh.key])


async def test_a_terminal_too_small_for_the_price_refuses_to_launch(tmp_path: Path) -> None:
    # Borderless fields fit the price on 12 rows; on 10 it is below the edge.
    async with small_app(tmp_path).run_test(size=(80, 10)) as pilot:
        app, screen = await open_launch(pilot, "provider:lambda")
        started = launches(app)
        assert not on_screen(app, "#launch-price")
        await pilot.press("ctrl+s")
        await pilot.pause()
        assert started == [] and isinstance(app.screen, LaunchScreen)
        assert "terminal larger" in shown(screen, "#launch-error")


async def test_confirm_for_every_instance_and_the_logs_view_fit_at_80x24(tmp_path: Path) -> None:
    async with small_app(tmp_path).run_test(size=SMALL) as pilot:
        app = await ready(pilot)
        await pilot.press("2", "ctrl+a", "d")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmScreen))
        await pilot.pause()
        for selector in ("#confirm-title", "#yes", "#no"):
            assert on_screen(app, selector), selector
        await pilot.press("n", "escape")
        table = app.instances_pane.table
        vast = next(i for i in table.rows if i.provider == "vast")
        table.move_to(table.index_of(vast.key))
        await pilot.press("l")
        await wait_for(pilot, lambda: isinstance(app.screen, LogsScreen))
        await pilot.pause()
        assert on_screen(app, ".view-title") and on_screen(app, "#logs")
