"""Actions below the UI: the max-price guard re-checks the freshest quote, the next-best offer, the actor audited."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from computehub_tui.clock import ManualClock
from computehub_tui.domain.models import Instance, InstanceStatus, LaunchSpec, Offer, OfferQuery, PricingKind
from computehub_tui.engine.events import ActionStarted, EngineEvent
from computehub_tui.engine.hub import Hub, HubSettings
from computehub_tui.engine.policy import PriceAboveMaximum, launch_price, next_best_offer
from computehub_tui.providers.registry import PROVIDER_CAPABILITIES
from computehub_tui.store import Store

SPEC = LaunchSpec(image="pytorch/pytorch:latest", disk_gb=50, label="t")


def offer(offer_id: str, price: float, *, gpu: str = "RTX 4090", count: int = 1, available: bool = True,
          pricing: PricingKind = PricingKind.ON_DEMAND, storage: float | None = None) -> Offer:
    return Offer(provider="vast", offer_id=offer_id, gpu=gpu, gpu_count=count, vram_gb=24, vcpus=8, ram_gb=32,
                 disk_gb=50, price_hour=price, pricing=pricing, location="Norway", reliability=0.99,
                 available=available, quoted_at=1_790_000_000.0, storage_gb_month=storage)


class Marketplace:
    """Quotes the test sets; records what it was asked to launch."""

    name = "vast"
    title = "Vast.ai"
    capabilities = PROVIDER_CAPABILITIES["vast"]
    dropped_rows = 0

    def __init__(self, offers: list[Offer]) -> None:
        self.offers = offers
        self.launched: list[Offer] = []
        self.stopped: list[str] = []

    async def list_offers(self, query: OfferQuery) -> list[Offer]:
        return list(self.offers)

    async def list_instances(self) -> list[Instance]:
        return [Instance(provider="vast", instance_id="5", label="a", status=InstanceStatus.RUNNING,
                         provider_status="running", gpu="RTX 4090", gpu_count=1, price_hour=0.4)]

    async def launch(self, chosen: Offer, spec: LaunchSpec) -> str:
        self.launched.append(chosen)
        return "900"

    async def stop(self, instance_id: str) -> None:
        self.stopped.append(instance_id)


@pytest.fixture
async def rig(tmp_path: Path) -> AsyncIterator[tuple[Hub, Marketplace, list[EngineEvent]]]:
    market = Marketplace([offer("1", 0.40)])
    store = await Store.open(tmp_path / "actions.db")
    settings = HubSettings(offer_query=OfferQuery(disk_gb=50))
    hub = Hub({"vast": market}, store, ManualClock(), settings)  # type: ignore[dict-item]
    events: list[EngineEvent] = []
    hub.bus.subscribe(events.append)
    yield hub, market, events
    await store.close()


async def test_a_launch_above_the_max_is_refused_at_the_freshest_quote(rig) -> None:  # type: ignore[no-untyped-def]
    hub, market, events = rig
    await hub.refresh_offers("vast")
    seen = hub.offers()[0]  # what the user (or a rule) looked at: $0.40/h
    market.offers = [dataclasses.replace(seen, price_hour=0.55)]
    await hub.refresh_offers("vast")  # the market moved since
    with pytest.raises(PriceAboveMaximum) as refused:
        await hub.launch(seen, SPEC, max_price=0.50)
    assert refused.value.price_hour == pytest.approx(0.55) and "above your max of $0.500/h" in str(refused.value)
    assert market.launched == [] and not any(isinstance(e, ActionStarted) for e in events)
    assert await hub.store.audit_log() == []  # nothing was sent, so nothing happened


async def test_a_launch_under_the_max_goes_out_at_the_freshest_quote(rig) -> None:  # type: ignore[no-untyped-def]
    hub, market, _ = rig
    await hub.refresh_offers("vast")
    seen = hub.offers()[0]
    market.offers = [dataclasses.replace(seen, price_hour=0.45)]
    await hub.refresh_offers("vast")
    key = await hub.launch(seen, SPEC, max_price=0.50, actor="rule:cheap-4090")
    assert key == "vast:900" and [o.price_hour for o in market.launched] == [0.45]
    (entry,) = await hub.store.audit_log()
    assert (entry.actor, entry.action, entry.target, entry.outcome) == ("rule:cheap-4090", "launch", key, "ok")
    assert "$0.450/h" in entry.detail


async def test_the_audit_log_names_who_acted(rig) -> None:  # type: ignore[no-untyped-def]
    hub, market, _ = rig
    await hub.refresh_instances("vast")
    assert (await hub.act("stop", "vast:5", actor="cli")).ok
    assert (await hub.act("stop", "vast:5")).ok
    actors = [(entry.actor, entry.action) for entry in await hub.store.audit_log()]
    assert actors == [("user", "stop"), ("cli", "stop")]  # newest first
    assert market.stopped == ["5", "5"]


def test_the_launch_price_is_the_bid_or_the_quote_at_the_chosen_disk() -> None:
    with_storage = offer("1", 0.40, storage=7.2)  # $7.20 per GB-month is $0.01 per GB-hour
    assert launch_price(with_storage, disk_gb=60, planned_disk_gb=50) == pytest.approx(0.50)
    assert launch_price(with_storage, disk_gb=50, planned_disk_gb=50, bid=0.25) == 0.25
    assert launch_price(offer("2", 0.40), disk_gb=500, planned_disk_gb=50) == 0.40  # no storage quote


def test_the_next_best_offer_has_the_same_gpu_count_and_pricing_and_is_available() -> None:
    failed = offer("1", 0.40)
    offers = [failed, offer("2", 0.50), offer("3", 0.45), offer("4", 0.10, available=False),
              offer("5", 0.20, count=2), offer("6", 0.20, gpu="RTX 3090"),
              offer("7", 0.20, pricing=PricingKind.INTERRUPTIBLE)]
    assert next_best_offer(failed, offers) == offers[2]
    assert next_best_offer(failed, [failed]) is None
