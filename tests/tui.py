"""Helpers for driving the TUI with Pilot against the demo market on a manual clock."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path

from textual.command import CommandList, CommandPalette
from textual.pilot import Pilot

from computehub_tui.clock import ManualClock
from computehub_tui.config import Config
from computehub_tui.ui.app import ComputeHubApp
from computehub_tui.wiring import Session, open_session

SIZE = (160, 45)
SMALL_MARKET_VAST_OFFERS = 200
"""Still every kind of offer (spot and on-demand on each provider), and the app starts twice as fast."""

SessionHook = Callable[[Session], Awaitable[None]]

NO_SSH_SAMPLER = Config.model_validate({"monitor": {"ssh_providers": []}})
"""The demo's SSH stand-in reads the real clock, so screens tested on a manual clock leave it off."""


def make_app(tmp_path: Path, clock: ManualClock, prepare: SessionHook | None = None,
             config: Config | None = None) -> ComputeHubApp:
    """The app on the demo market; ``prepare`` may change the session (relabel the market, seed
    the store) before the app loads it."""

    async def factory() -> Session:
        session = await open_session(config or NO_SSH_SAMPLER, tmp_path, demo=True, clock=clock)
        if prepare is not None:
            await prepare(session)
        return session

    return ComputeHubApp(factory, config=config)


def small_app(tmp_path: Path, clock: ManualClock | None = None, prepare: SessionHook | None = None,
              config: Config | None = None) -> ComputeHubApp:
    """``make_app`` on a demo market with fewer Vast offers, for tests that need no big table."""
    base = config or NO_SSH_SAMPLER
    small = base.model_copy(update={"demo": base.demo.model_copy(update={"vast_offers": SMALL_MARKET_VAST_OFFERS})})
    return make_app(tmp_path, clock or ManualClock(), prepare, small)


async def wait_for(pilot: Pilot, condition: Callable[[], bool], timeout: float = 10.0) -> None:
    """Let the app work (workers, aiosqlite threads) until ``condition`` holds."""
    waited = 0.0
    while not condition():
        if waited > timeout:
            raise AssertionError("condition not reached in time")
        await pilot.pause(0.02)
        waited += 0.02


async def ready(pilot: Pilot) -> ComputeHubApp:
    app = pilot.app
    assert isinstance(app, ComputeHubApp)
    # Every provider answered, and both panes (unfiltered) show everything the Hub holds: a pane repaints on the
    # engine's event a moment after the provider's answer lands, so one provider's rows may still be missing.
    await wait_for(pilot, lambda: app.hub is not None
                   and all(h.offers_at and h.instances_at for h in app.hub.health())
                   and len(app.offers_pane.table.rows) == len(app.hub.offers()) > 0
                   and len(app.instances_pane.table.rows) == len(app.hub.instances()) > 0)
    return app


def screen_lines(pilot: Pilot) -> list[str]:
    """The text of every line as the terminal would show it now."""
    return [strip.text for strip in pilot.app.screen._compositor.render_strips()]


def screen_text(pilot: Pilot) -> str:
    return "\n".join(screen_lines(pilot))


async def run_palette(pilot: Pilot, query: str) -> None:
    """Type ``query`` into the command palette and press Enter until it runs the top command."""
    await pilot.press("ctrl+p")
    await wait_for(pilot, lambda: isinstance(pilot.app.screen, CommandPalette))
    palette = pilot.app.screen
    await pilot.press(*query)
    await wait_for(pilot, lambda: palette.query_one(CommandList).option_count > 0 and not any(
        worker.group == CommandPalette._GATHER_COMMANDS_GROUP and worker.is_running for worker in palette.workers))
    for _ in range(2):  # the first Enter highlights the top hit, the second runs it
        if pilot.app.screen is palette:
            await pilot.press("enter")
            await pilot.pause()
