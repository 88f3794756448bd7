"""The first screen: offers remembered from the last run are shown, with their age, until each
provider's first poll answers."""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from textual.app import App, ComposeResult
from textual.widgets import Static
from tui import SIZE

from computehub_tui.clock import ManualClock
from computehub_tui.config import Config
from computehub_tui.domain.models import Offer
from computehub_tui.engine.events import ProviderHealth
from computehub_tui.ui.widgets.offers_pane import OffersPane
from computehub_tui.wiring import open_session

HOURS_SINCE_LAST_RUN = 3


class RememberingHub:
    """The reads the Offers pane makes of a Hub that loaded last run's offers from the store and
    has not heard from every provider yet (``answered`` lists the ones that have)."""

    def __init__(self, offers: list[Offer], clock: ManualClock, answered: set[str]) -> None:
        self.clock = clock
        self.remembered = offers
        self.answered = answered
        self.offers_version = 1
        self.implausible_counts: dict[str, int] = {}
        self.poll = SimpleNamespace(offers_interval_s=60.0, instances_interval_s=10.0)

    def offers(self) -> list[Offer]:
        now = self.clock.now()
        return [replace(o, quoted_at=now) if o.provider in self.answered else o for o in self.remembered]

    def health(self) -> list[ProviderHealth]:
        providers = sorted({offer.provider for offer in self.remembered})
        return [ProviderHealth(name, "ok", offers_at=self.clock.now()) if name in self.answered
                else ProviderHealth(name) for name in providers]

    def is_stale(self, provider: str, what: str = "instances") -> bool:
        return provider not in self.answered


class OffersHost(App[None]):
    def __init__(self, hub: Any) -> None:
        super().__init__()
        self.hub = hub

    def compose(self) -> ComposeResult:
        yield OffersPane(id="offers")

    def on_mount(self) -> None:
        self.query_one(OffersPane).attach(self.hub)


async def last_runs_offers(tmp_path: Path, clock: ManualClock) -> list[Offer]:
    session = await open_session(Config.model_validate({"demo": {"vast_offers": 200}}), tmp_path, demo=True, clock=clock)
    try:
        for health in session.hub.health():
            assert await session.hub.refresh_offers(health.provider)
        return list(session.hub.offers())
    finally:
        await session.aclose()


async def test_remembered_offers_show_their_age_and_say_they_are_refreshing(tmp_path: Path) -> None:
    clock = ManualClock()
    offers = await last_runs_offers(tmp_path, clock)
    await clock.advance(HOURS_SINCE_LAST_RUN * 3600)
    hub = RememberingHub(offers, clock, answered=set())
    async with OffersHost(hub).run_test(size=SIZE) as pilot:
        pane = pilot.app.query_one(OffersPane)
        await pilot.pause()
        status = str(pane.query_one("#offer-status", Static).render())
        assert f"lambda, runpod, tensordock, vast: last known ({HOURS_SINCE_LAST_RUN}h old), refreshing…" in status
        assert "stale:" not in status  # one warning, not two, while the first poll is on its way
        assert len(pane.table.rows) == len(offers)
        first_row = pane.table.render_line(1).text.rstrip()
        assert first_row.endswith(f"{HOURS_SINCE_LAST_RUN}h!"), first_row  # the row's own age, flagged old

        hub.answered = {"vast", "runpod"}
        hub.offers_version += 1
        pane.reload()
        await pilot.pause()
        status = str(pane.query_one("#offer-status", Static).render())
        assert f"lambda, tensordock: last known ({HOURS_SINCE_LAST_RUN}h old), refreshing…" in status

        hub.answered = {"vast", "runpod", "lambda", "tensordock"}
        hub.offers_version += 1
        pane.reload()
        await pilot.pause()
        assert "last known" not in str(pane.query_one("#offer-status", Static).render())


FIRST_FRAME_SCRIPT = """
import asyncio, json, sys, tempfile
from pathlib import Path
from computehub_tui.clock import ManualClock
from computehub_tui.config import Config
from computehub_tui.ui.app import ComputeHubApp
from computehub_tui.wiring import open_session

async def main():
    with tempfile.TemporaryDirectory() as data:
        app = ComputeHubApp(lambda: open_session(Config.model_validate({"demo": {"vast_offers": 200}}), Path(data), demo=True,
                                                 clock=ManualClock()))
        async with app.run_test(size=(160, 48)) as pilot:
            while not (app.hub and app.offers_pane.table.rows):
                await pilot.pause(0.02)
            print(json.dumps(sorted(sys.modules)))

asyncio.run(main())
"""
LATER_ONLY = ("computehub_tui.ui.screens.launch", "computehub_tui.ui.screens.logs", "computehub_tui.ui.screens.market",
              "computehub_tui.ui.screens.offer_detail", "computehub_tui.ui.screens.copy",
              "computehub_tui.ui.screens.help", "textual_plotext", "plotext", "rich.pretty", "telegram", "aiosmtplib")
"""Needed only once the user opens a dialog (or, for alerts, once a channel is configured)."""


def test_the_first_frame_does_not_import_what_only_later_screens_need() -> None:
    result = subprocess.run([sys.executable, "-c", FIRST_FRAME_SCRIPT], capture_output=True, text=True,
                            timeout=60, check=False)
    assert result.returncode == 0, result.stderr[-2000:]
    loaded = set(json.loads(result.stdout.strip().splitlines()[-1]))
    assert "computehub_tui.ui.widgets.offers_pane" in loaded  # the probe saw the running app
    assert sorted(loaded & set(LATER_ONLY)) == []
