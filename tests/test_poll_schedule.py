"""Polls keep a fixed grid: a slow answer does not push a provider's later polls out of step with the others."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from waiting import until

from computehub_tui.clock import ManualClock
from computehub_tui.domain.models import Offer, OfferQuery
from computehub_tui.engine.hub import Hub, HubSettings, PollSettings
from computehub_tui.engine.polling import next_slot
from computehub_tui.providers.registry import PROVIDER_CAPABILITIES
from computehub_tui.store import Store

ANSWER_S = 1.5
INTERVAL_S = 5.0


class SlowVast:
    """Answers every instance list ``ANSWER_S`` after it is asked, and notes when it was asked."""

    name = "vast"
    title = "Vast.ai"
    capabilities = PROVIDER_CAPABILITIES["vast"]
    dropped_rows = 0

    def __init__(self, clock: ManualClock) -> None:
        self.clock = clock
        self.asked_at: list[float] = []

    async def list_instances(self) -> list[object]:
        self.asked_at.append(self.clock.monotonic())
        await self.clock.sleep(ANSWER_S)
        return []

    async def list_offers(self, query: OfferQuery) -> list[Offer]:
        return []


def test_the_next_slot_is_on_the_grid_and_not_before_the_time_given() -> None:
    assert next_slot(10.0, 5.0, 11.5) == 15.0
    assert next_slot(10.0, 5.0, 15.0) == 15.0
    assert next_slot(10.0, 5.0, 15.0 + 1e-9) == 15.0  # float rounding past a slot is on it
    assert next_slot(10.0, 5.0, 23.0) == 25.0
    assert next_slot(10.0, 5.0, 4.0) == 10.0


async def test_a_slow_answer_does_not_shift_the_next_polls(tmp_path: Path) -> None:
    clock = ManualClock()
    provider = SlowVast(clock)
    store = await Store.open(tmp_path / "hub.db")
    hub = Hub({"vast": provider}, store, clock, HubSettings(poll=PollSettings(600.0, INTERVAL_S)))
    runner = asyncio.create_task(hub.run())
    try:
        await until(lambda: len(provider.asked_at) == 1 and clock.sleeper_count == 3)  # offers, instances, upkeep
        for _ in range(int(4 * INTERVAL_S / 0.5)):
            await clock.advance(0.5)
            await until(lambda: clock.sleeper_count == 3)
        start = provider.asked_at[0]
        assert [at - start for at in provider.asked_at] == [0.0, 5.0, 10.0, 15.0, 20.0]
    finally:
        runner.cancel()
        with pytest.raises(asyncio.CancelledError):
            await runner
        await store.close()
