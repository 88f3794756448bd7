"""The real Vast adapter end to end against the demo market's Vast wire-format handler."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable
from dataclasses import dataclass
from typing import Any, TypeVar

import httpx
import pytest

from computehub_tui.clock import ManualClock
from computehub_tui.domain.models import (
    Instance,
    InstanceStatus,
    LaunchSpec,
    Offer,
    OfferQuery,
    PricingKind,
)
from computehub_tui.domain.secret import Secret
from computehub_tui.providers.base import NoCapacityError, NotFoundError
from computehub_tui.providers.demo.market import DemoMarket
from computehub_tui.providers.demo.vast_api import make_vast_handler
from computehub_tui.providers.vastai import VastProvider

T = TypeVar("T")
API = "https://console.vast.ai/api/v0"
ON_DEMAND = (PricingKind.ON_DEMAND,)


async def settle(clock: ManualClock, awaitable: Awaitable[T], step: float = 0.1) -> T:
    """Run ``awaitable`` to the end, moving the manual clock only while it sleeps on it."""
    task = asyncio.ensure_future(awaitable)
    for _ in range(20_000):
        if task.done():
            return task.result()
        if clock.sleeper_count:
            await clock.advance(step)
        else:
            await asyncio.sleep(0)
    task.cancel()
    raise AssertionError("call did not finish")


@dataclass
class Demo:
    clock: ManualClock
    market: DemoMarket
    client: httpx.AsyncClient
    vast: VastProvider

    def run(self, awaitable: Awaitable[T]) -> Awaitable[T]:
        return settle(self.clock, awaitable)

    async def instance(self, instance_id: str) -> Instance | None:
        instances = await self.run(self.vast.list_instances())
        return next((inst for inst in instances if inst.instance_id == instance_id), None)

    async def post(self, path: str, body: dict[str, Any]) -> httpx.Response:
        return await self.client.post(f"{API}{path}", json=body)


@pytest.fixture
async def demo() -> AsyncIterator[Demo]:
    clock = ManualClock()
    market = DemoMarket(clock)
    client = httpx.AsyncClient(transport=httpx.MockTransport(make_vast_handler(market)))
    yield Demo(clock, market, client, VastProvider(client, None, clock=clock))
    await client.aclose()


def cheapest(offers: list[Offer], gpu: str, direct: bool = True) -> Offer:
    matching = [
        offer for offer in offers
        if offer.gpu == gpu and offer.pricing is PricingKind.ON_DEMAND
        and ((offer.extra.get("direct_port_count") or 0) > 0) == direct
    ]
    return min(matching, key=lambda offer: offer.price_hour)


# -- offers -----------------------------------------------------------------------------------


async def test_broad_query_returns_thousands_of_offers(demo: Demo) -> None:
    offers = await demo.vast.list_offers(OfferQuery(min_reliability=0))
    assert len(offers) >= 3000
    assert len({offer.offer_id for offer in offers}) == len(offers)
    kinds = {offer.pricing for offer in offers}
    assert kinds == {PricingKind.ON_DEMAND, PricingKind.INTERRUPTIBLE}
    assert all(offer.provider == "vast" and offer.price_hour > 0 for offer in offers)
    assert all(offer.gpu_count >= 1 for offer in offers)
    assert all(offer.vram_gb < 300 for offer in offers)  # GB, never the raw MB figure


async def test_default_query_applies_vasts_filters_exactly(demo: Demo) -> None:
    market = demo.market
    offers = await demo.vast.list_offers(OfferQuery())
    expected = {
        str(ask.ask_id) for ask in market.vast_asks
        if ask.verified and market.vast_ask_available(ask) and ask.reliability >= 0.95
        and ask.disk_space_gb >= 20
    }
    on_demand = {offer.offer_id for offer in offers if offer.pricing is PricingKind.ON_DEMAND}
    assert on_demand == expected
    assert 1000 < len(offers) < len(market.vast_asks) * 2
    assert all(offer.reliability is not None and offer.reliability >= 0.95 for offer in offers)


async def test_default_query_stays_fast(demo: Demo) -> None:
    started = time.thread_time()  # the demo answers on this thread: its CPU, whatever else runs beside
    offers = await demo.vast.list_offers(OfferQuery())
    assert offers
    assert time.thread_time() - started < 2.0


async def test_narrow_query_is_filtered_by_the_handler(demo: Demo) -> None:
    query = OfferQuery(gpus=("A100 SXM", "RTX 6000 Ada", "L40S"), min_gpu_count=2,
                       min_vram_gb=48, max_price_hour=12.0, countries=("US", "DE"),
                       min_reliability=0.0, pricing=ON_DEMAND)
    offers = await demo.vast.list_offers(query)
    assert offers
    assert {offer.gpu for offer in offers} <= {"A100 SXM", "RTX 6000 Ada", "L40S"}
    assert "L40S" in {offer.gpu for offer in offers}  # 46068 MB still counts as a 48 GB card
    assert all(offer.gpu_count >= 2 and offer.price_hour <= 12.0 for offer in offers)
    assert all(offer.country in ("US", "DE") and offer.vram_gb >= 48 for offer in offers)
    prices = [offer.price_hour for offer in offers]
    assert prices == sorted(prices)


async def test_prices_drift_over_time(demo: Demo) -> None:
    before = {o.offer_id: o for o in await demo.vast.list_offers(OfferQuery(pricing=ON_DEMAND))}
    await demo.clock.advance(2 * 3600)
    after = {o.offer_id: o for o in await demo.vast.list_offers(OfferQuery(pricing=ON_DEMAND))}
    common = before.keys() & after.keys()
    assert len(common) > 500
    changed = [oid for oid in common if before[oid].price_hour != after[oid].price_hour]
    assert len(changed) > len(common) // 2
    assert all(after[oid].quoted_at - before[oid].quoted_at == 7200 for oid in common)
    assert all(0.8 < after[oid].price_hour / before[oid].price_hour < 1.25 for oid in changed)


async def test_interruptible_offers_are_priced_from_the_minimum_bid(demo: Demo) -> None:
    offers = await demo.vast.list_offers(OfferQuery(disk_gb=100))
    by_id = {offer.offer_id: offer for offer in offers}
    bids = [offer for offer in offers if offer.pricing is PricingKind.INTERRUPTIBLE]
    assert bids
    for bid in bids[:50]:
        ask_id = bid.extra["ask_id"]
        ask = demo.market.vast_asks_by_id[ask_id]
        expected = demo.market.vast_min_bid(ask) + ask.storage_cost * 100 / 720
        assert bid.price_hour == pytest.approx(expected, abs=1e-4)
        assert bid.price_hour < by_id[str(ask_id)].price_hour


# -- instances --------------------------------------------------------------------------------


async def test_seeded_instances_are_listed(demo: Demo) -> None:
    instances = await demo.vast.list_instances()
    by_label = {inst.label: inst for inst in instances}
    assert set(by_label) == {"llama-finetune", "sd-webui", "old-experiment"}
    llama = by_label["llama-finetune"]
    assert llama.status is InstanceStatus.RUNNING
    assert llama.gpu == "RTX 4090" and llama.gpu_count == 2
    metrics = llama.metrics
    assert metrics is not None and len(metrics.gpu_util) == 2 and metrics.mean_gpu_util is not None
    old = by_label["old-experiment"]
    assert old.status is InstanceStatus.STOPPED and old.gpu == "H100 SXM"
    assert old.current_price_hour == old.storage_price_hour > 0


async def test_launch_run_stop_start_destroy(demo: Demo) -> None:
    offers = await demo.vast.list_offers(OfferQuery(gpus=("RTX 4090",), pricing=ON_DEMAND))
    offer = cheapest(offers, "RTX 4090")
    spec = LaunchSpec(image="pytorch/pytorch:2.4.0-cuda12.4-cudnn9-runtime", disk_gb=30,
                      label="demo-run", ports=("22/tcp", "8888/http"),
                      env={"HF_HOME": "/workspace/hf"})
    instance_id = await demo.run(demo.vast.launch(offer, spec))
    assert instance_id.isdigit()

    booting = await demo.instance(instance_id)
    assert booting is not None and booting.label == "demo-run"
    assert booting.status is InstanceStatus.PROVISIONING and booting.provider_status == "scheduling"
    assert booting.ssh is None and booting.metrics is None
    storage_month = offer.storage_gb_month or 0.0
    assert booting.price_hour == pytest.approx(offer.price_hour - offer.extra["storage_hour"]
                                               + 30 * storage_month / 720, rel=0.1)

    await demo.clock.advance(30)
    running = await demo.instance(instance_id)
    assert running is not None and running.status is InstanceStatus.RUNNING
    assert running.metrics is not None and len(running.metrics.gpu_util) == offer.gpu_count
    assert running.metrics.vram_total_gb and running.metrics.gpu_temp_c
    assert running.ssh is not None and running.ssh.port > 0
    assert running.ssh.host == running.ports["22/tcp"].split(":")[0]
    assert "8888/tcp" in running.ports
    assert running.started_at is not None and running.image == spec.image

    await demo.clock.advance(2)
    await demo.run(demo.vast.stop(instance_id))
    stopped = await demo.instance(instance_id)
    assert stopped is not None and stopped.status is InstanceStatus.STOPPED
    assert stopped.current_price_hour == pytest.approx(30 * storage_month / 720, abs=1e-5)

    await demo.clock.advance(2)
    await demo.run(demo.vast.start(instance_id))
    restarting = await demo.instance(instance_id)
    assert restarting is not None and restarting.status.is_transitional
    await demo.clock.advance(20)
    back = await demo.instance(instance_id)
    assert back is not None and back.status is InstanceStatus.RUNNING

    await demo.run(demo.vast.restart(instance_id))
    rebooting = await demo.instance(instance_id)
    assert rebooting is not None and rebooting.status.is_transitional

    await demo.run(demo.vast.destroy(instance_id))
    assert await demo.instance(instance_id) is None
    with pytest.raises(NotFoundError):
        await demo.run(demo.vast.stop(instance_id))


async def test_proxy_only_host_gets_proxy_ssh(demo: Demo) -> None:
    offers = await demo.vast.list_offers(OfferQuery(pricing=ON_DEMAND, min_reliability=0))
    offer = cheapest(offers, "RTX 3090", direct=False)
    spec = LaunchSpec(image="ubuntu:22.04", jupyter=True)
    instance_id = await demo.run(demo.vast.launch(offer, spec))
    await demo.clock.advance(30)
    instance = await demo.instance(instance_id)
    assert instance is not None and instance.status is InstanceStatus.RUNNING
    sim = demo.market.get("vast", instance_id)
    assert instance.ssh is not None
    assert (instance.ssh.host, instance.ssh.port) == (sim.ssh_host, sim.ssh_port + 1)


async def test_a_taken_offer_gives_no_capacity(demo: Demo) -> None:
    offers = await demo.vast.list_offers(OfferQuery(pricing=ON_DEMAND))
    offer = cheapest(offers, "H100 SXM")
    await demo.run(demo.vast.launch(offer, LaunchSpec(image="ubuntu:22.04")))
    with pytest.raises(NoCapacityError, match=f"offer {offer.offer_id} is no longer available"):
        await demo.run(demo.vast.launch(offer, LaunchSpec(image="ubuntu:22.04")))
    again = await demo.vast.list_offers(OfferQuery(pricing=ON_DEMAND))
    assert offer.offer_id not in {o.offer_id for o in again}


async def test_interruptible_launch_bills_the_bid(demo: Demo) -> None:
    offers = await demo.vast.list_offers(OfferQuery(gpus=("RTX 4090",)))
    bids = [offer for offer in offers if offer.pricing is PricingKind.INTERRUPTIBLE]
    bid_offer = min(bids, key=lambda offer: offer.price_hour)
    assert bid_offer.min_bid is not None
    bid = round(bid_offer.min_bid + 0.05, 4)
    spec = LaunchSpec(image="ubuntu:22.04", bid_price=bid)
    instance_id = await demo.run(demo.vast.launch(bid_offer, spec))
    sim = demo.market.get("vast", instance_id)
    assert sim.bid_price == bid
    instance = await demo.instance(instance_id)
    assert instance is not None
    storage_hour = 20 * (bid_offer.storage_gb_month or 0) / 720
    assert instance.price_hour == pytest.approx(bid + storage_hour, abs=1e-4)


async def test_logs_return_text(demo: Demo) -> None:
    instances = await demo.vast.list_instances()
    running = next(inst for inst in instances if inst.label == "llama-finetune")
    text = await demo.run(demo.vast.logs(running.instance_id, tail=20))
    lines = text.splitlines()
    assert lines and len(lines) <= 20
    assert any("[train] step" in line for line in lines)


async def test_works_with_an_api_key_too(demo: Demo) -> None:
    keyed = VastProvider(demo.client, Secret("demo-key-0123456789"), clock=demo.clock)
    await keyed.check_auth()
    assert len(await keyed.list_instances()) == 3


# -- the handler's wire format ----------------------------------------------------------------


async def test_running_instances_use_vast_shapes(demo: Demo) -> None:
    response = await demo.client.get(f"{API}/instances/", params={"owner": "me"})
    rows = response.json()["instances"]
    running = [row for row in rows if row["actual_status"] == "running"]
    stopped = [row for row in rows if row["actual_status"] == "stopped"]
    assert running and stopped
    assert all(row["ports"] is None and row["gpu_util"] is None for row in stopped)
    for row in running:
        assert isinstance(row["gpu_ram"], int) and row["gpu_ram"] > 10_000  # MB
        for bindings in (row["ports"] or {}).values():
            assert isinstance(bindings[0]["HostPort"], str)
    single = await demo.client.get(f"{API}/instances/{running[0]['id']}/")
    assert single.json()["instances"]["id"] == running[0]["id"]


async def test_bundle_operators(demo: Demo) -> None:
    body = {
        "gpu_name": {"notin": ["RTX 4090", "RTX 3090"]},
        "num_gpus": {"gt": 1, "lt": 8},
        "geolocation": {"neq": "US"},
        "dph_total": {"lte": 5.0},
        "cuda_vers": {"gte": 12.4},
        "order": [["num_gpus", "desc"], ["dph_total", "asc"]],
        "limit": 40,
        "allocated_storage": 100,
        "type": "on-demand",
    }
    offers = (await demo.post("/bundles/", body)).json()["offers"]
    assert len(offers) == 40
    assert all(o["gpu_name"] not in ("RTX 4090", "RTX 3090") for o in offers)
    assert all(1 < o["num_gpus"] < 8 for o in offers)
    assert all(not o["geolocation"].endswith("US") and o["cuda_max_good"] >= 12.4 for o in offers)
    assert all(o["disk_space"] >= 100 for o in offers)
    assert all(o["search"]["totalHour"] == o["dph_total"] for o in offers)
    keys = [(-o["num_gpus"], o["dph_total"]) for o in offers]
    assert keys == sorted(keys)
    first = offers[0]
    expected = first["dph_base"] + first["storage_cost"] * 100 / 720
    assert first["dph_total"] == pytest.approx(expected, abs=1e-5)


async def test_bid_search_prices_at_the_minimum_bid(demo: Demo) -> None:
    body = {"gpu_name": {"eq": "RTX 4090"}, "type": "bid", "limit": 5, "allocated_storage": 10}
    offers = (await demo.post("/bundles/", body)).json()["offers"]
    assert offers and all(o["is_bid"] for o in offers)
    for offer in offers:
        expected = offer["min_bid"] + offer["storage_cost"] * 10 / 720
        assert offer["dph_total"] == pytest.approx(expected, abs=1e-5)


@pytest.mark.parametrize(
    "body",
    [{"no_such_column": {"eq": 1}}, {"num_gpus": {"approx": 1}}, {"gpu_name": {"in": "RTX 4090"}},
     {"type": "spot"}, {"order": [["num_gpus", "up"]]}],
)
async def test_bad_search_bodies_are_400(demo: Demo, body: dict[str, Any]) -> None:
    response = await demo.post("/bundles/", body)
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_args"


async def test_unknown_routes_are_json_404(demo: Demo) -> None:
    response = await demo.client.get(f"{API}/nothing/here/")
    assert response.status_code == 404
    assert response.json()["success"] is False


async def test_logs_url_is_missing_before_it_lands(demo: Demo) -> None:
    instance_id = demo.market.instances_of("vast")[0].instance_id
    path = f"{API}/instances/request_logs/{instance_id}/"
    reply = await demo.client.put(path, json={"tail": "5"})
    url = reply.json()["result_url"]
    assert url.startswith("https://") and "console.vast.ai" not in url
    assert (await demo.client.get(url)).status_code == 404
    landed = await demo.client.get(url)
    assert landed.status_code == 200 and landed.text.strip()
