"""Spend "today" and "this month" follow the user's time zone, not UTC and not the machine's."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from computehub_tui.clock import ManualClock
from computehub_tui.config import Config
from computehub_tui.domain.models import Instance, InstanceStatus, Offer, OfferQuery
from computehub_tui.engine.events import EngineEvent, SpendUpdated
from computehub_tui.engine.hub import Hub, HubSettings
from computehub_tui.providers.registry import PROVIDER_CAPABILITIES
from computehub_tui.store import Store
from computehub_tui.wiring import open_session

NINE_UTC = datetime(2026, 1, 31, 9, 0, tzinfo=UTC).timestamp()


class OneMachine:
    name = "vast"
    title = "Vast.ai"
    capabilities = PROVIDER_CAPABILITIES["vast"]
    dropped_rows = 0

    async def list_instances(self) -> list[Instance]:
        return [Instance(provider="vast", instance_id="1", label="a", status=InstanceStatus.RUNNING,
                         provider_status="running", gpu="RTX 4090", gpu_count=1, price_hour=1.0)]

    async def list_offers(self, query: OfferQuery) -> list[Offer]:
        return []


@pytest.mark.parametrize(("zone", "today", "month"), [
    ("UTC", 3.0, 3.0),  # 09:00-12:00 on 31 January
    ("Pacific/Auckland", 1.0, 1.0),  # 12:00 UTC is 01:00 on 1 February there: one hour today, in February
    ("Pacific/Honolulu", 2.0, 3.0),  # 02:00 on 31 January there: today began at 10:00 UTC
])
async def test_spend_today_and_this_month_in_the_users_zone(tmp_path: Path, zone: str, today: float,
                                                            month: float) -> None:
    clock = ManualClock(start=NINE_UTC)
    store = await Store.open(tmp_path / "costs.db")
    try:
        hub = Hub({"vast": OneMachine()}, store, clock, HubSettings(zone=ZoneInfo(zone)))  # type: ignore[dict-item]
        spend: list[SpendUpdated] = []

        def record(event: EngineEvent) -> None:
            if isinstance(event, SpendUpdated):
                spend.append(event)

        hub.bus.subscribe(record)
        await hub.refresh_instances("vast")  # first seen running at 09:00 UTC: booked from then
        await clock.advance(3 * 3600)
        await hub.refresh_instances("vast")
        assert hub.cost_so_far("vast:1") == pytest.approx(3.0)
        assert hub.spend_today() == pytest.approx(today)
        assert hub.spend_this_month() == pytest.approx(month)
        assert (spend[-1].spend_today, spend[-1].spend_this_month) == pytest.approx((today, month))
    finally:
        await store.close()


@pytest.mark.parametrize(("timezone", "today", "month"), [
    ("UTC", 3.0, 3.0),  # 09:00-12:00 on 31 January
    ("Pacific/Kiritimati", 2.0, 2.0),  # UTC+14: 12:00 UTC is 02:00 on 1 February there, which began at 10:00 UTC
])
async def test_the_configured_time_zone_sets_the_sessions_day_boundary(tmp_path: Path, timezone: str, today: float,
                                                                       month: float) -> None:
    clock = ManualClock(start=NINE_UTC)
    config = Config.model_validate({"costs": {"timezone": timezone}, "demo": {"vast_offers": 100}})
    session = await open_session(config, tmp_path, demo=True, clock=clock, environ={})
    try:
        costs = session.hub.costs
        machine = await OneMachine().list_instances()
        await costs.accrue(machine, clock.now())
        await clock.advance(3 * 3600)
        await costs.accrue(machine, clock.now())
        assert (costs.spend_today, costs.spend_this_month) == pytest.approx((today, month))
    finally:
        await session.aclose()


async def test_an_empty_time_zone_is_this_machines_local_time(tmp_path: Path) -> None:
    session = await open_session(Config.model_validate({"demo": {"vast_offers": 100}}), tmp_path, demo=True,
                                 clock=ManualClock(), environ={})
    try:
        assert session.hub.costs.zone is None
    finally:
        await session.aclose()
