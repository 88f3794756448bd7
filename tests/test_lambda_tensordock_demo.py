"""The real Lambda and TensorDock adapters against their demo wire-format handlers."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Awaitable
from typing import TypeVar

import httpx
import pytest

from computehub_tui.clock import ManualClock
from computehub_tui.domain.models import Instance, InstanceStatus, LaunchSpec, Offer, OfferQuery
from computehub_tui.domain.secret import Secret
from computehub_tui.providers.base import NoCapacityError, RequestRejectedError, UnsupportedError
from computehub_tui.providers.demo.adapters import DEMO_SSH_PUBLIC_KEY, demo_providers
from computehub_tui.providers.demo.lambda_api import make_lambda_handler
from computehub_tui.providers.demo.market import LAMBDA_REGIONS, DemoMarket
from computehub_tui.providers.demo.tensordock_api import make_tensordock_handler
from computehub_tui.providers.lambdalabs import LambdaProvider
from computehub_tui.providers.tensordock import TensordockProvider

T = TypeVar("T")
BOOT_S = 40.0
"""Longer than the market's worst provisioning + loading time."""


async def drive(clock: ManualClock, call: Awaitable[T], step: float = 0.5) -> T:
    """Run an adapter call to completion, moving the clock through its pacing waits."""
    task = asyncio.ensure_future(call)
    for _ in range(400):
        for _ in range(5):
            await asyncio.sleep(0)
        if task.done():
            return task.result()
        await clock.advance(step)
    task.cancel()
    raise AssertionError("adapter call never finished")


def lambda_adapter(
    market: DemoMarket, clock: ManualClock, key_name: str = "demo-key"
) -> LambdaProvider:
    client = httpx.AsyncClient(transport=httpx.MockTransport(make_lambda_handler(market)))
    return LambdaProvider(client, None, clock=clock, ssh_key_name=key_name)


def tensordock_adapter(market: DemoMarket, clock: ManualClock) -> TensordockProvider:
    client = httpx.AsyncClient(transport=httpx.MockTransport(make_tensordock_handler(market)))
    return TensordockProvider(
        client, Secret("demo-token-not-checked"), clock=clock, ssh_public_key=DEMO_SSH_PUBLIC_KEY
    )


def find(instances: list[Instance], instance_id: str) -> Instance:
    (match,) = [i for i in instances if i.instance_id == instance_id]
    return match


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def market(clock: ManualClock) -> DemoMarket:
    return DemoMarket(clock, vast_offer_count=10, seed_instances=False)


# -- Lambda ------------------------------------------------------------------------------------


async def test_lambda_offers_cover_every_type_at_catalogue_prices(
    clock: ManualClock, market: DemoMarket
) -> None:
    provider = lambda_adapter(market, clock)
    offers = await drive(clock, provider.list_offers(OfferQuery()))
    prices = {t.name: t.price_cents / 100 for t in market.lambda_types}
    assert {o.extra["instance_type_name"] for o in offers} == set(prices)
    assert all(o.price_hour == pytest.approx(prices[o.extra["instance_type_name"]]) for o in offers)
    available = [o for o in offers if o.available]
    assert available and all(o.location in dict(LAMBDA_REGIONS) for o in available)
    assert "unknown" not in {o.gpu for o in offers}


async def test_lambda_lifecycle_boot_run_restart_terminate(
    clock: ManualClock, market: DemoMarket
) -> None:
    provider = lambda_adapter(market, clock)
    offers = await drive(clock, provider.list_offers(OfferQuery()))
    offer = next(o for o in offers if o.available and o.gpu_count == 1)
    instance_id = await drive(clock, provider.launch(offer, LaunchSpec(image="", label="demo-run")))

    booting = find(await drive(clock, provider.list_instances()), instance_id)
    assert (booting.status, booting.provider_status) == (InstanceStatus.STARTING, "booting")
    assert booting.ssh is None and booting.label == "demo-run"
    assert (booting.gpu, booting.price_hour) == (offer.gpu, offer.price_hour)

    await clock.advance(BOOT_S)
    running = find(await drive(clock, provider.list_instances()), instance_id)
    assert running.status is InstanceStatus.RUNNING
    assert running.ssh is not None and (running.ssh.user, running.ssh.port) == ("ubuntu", 22)

    with pytest.raises(UnsupportedError):
        await provider.stop(instance_id)
    await drive(clock, provider.restart(instance_id))
    assert (
        find(await drive(clock, provider.list_instances()), instance_id).status
        is InstanceStatus.STARTING
    )
    await clock.advance(BOOT_S)
    assert (
        find(await drive(clock, provider.list_instances()), instance_id).status
        is InstanceStatus.RUNNING
    )

    await drive(clock, provider.destroy(instance_id))
    assert (
        find(await drive(clock, provider.list_instances()), instance_id).status
        is InstanceStatus.TERMINATED
    )
    await clock.advance(31)
    assert instance_id not in {i.instance_id for i in await drive(clock, provider.list_instances())}


async def test_lambda_demo_rejects_an_unknown_ssh_key_name(
    clock: ManualClock, market: DemoMarket
) -> None:
    provider = lambda_adapter(market, clock, key_name="not-registered")
    offers = await drive(clock, provider.list_offers(OfferQuery()))
    offer = next(o for o in offers if o.available)
    with pytest.raises(RequestRejectedError) as caught:
        await drive(clock, provider.launch(offer, LaunchSpec(image="")))
    assert "not-registered" in str(caught.value) and "ssh_key_name under [providers.lambda]" in str(
        caught.value
    )
    assert market.instances_of("lambda") == []


async def test_lambda_demo_launch_without_capacity_is_no_capacity(
    clock: ManualClock, market: DemoMarket
) -> None:
    provider = lambda_adapter(market, clock)
    offers = await drive(clock, provider.list_offers(OfferQuery()))
    offer = next(o for o in offers if o.available)
    instance_type = next(
        t for t in market.lambda_types if t.name == offer.extra["instance_type_name"]
    )
    full = {name for name, _ in market.lambda_regions_with_capacity(instance_type)}
    region = next(name for name, _ in LAMBDA_REGIONS if name not in full)
    elsewhere = dataclasses.replace(
        offer,
        offer_id=f"{instance_type.name}@{region}",
        extra={**offer.extra, "region_name": region},
    )
    with pytest.raises(NoCapacityError) as caught:
        await drive(clock, provider.launch(elsewhere, LaunchSpec(image="")))
    assert "Not enough capacity" in str(caught.value)


# -- TensorDock --------------------------------------------------------------------------------


async def test_tensordock_offers_price_every_resource(
    clock: ManualClock, market: DemoMarket
) -> None:
    provider = tensordock_adapter(market, clock)
    offers = await drive(clock, provider.list_offers(OfferQuery()))
    assert {o.extra["location_id"] for o in offers} == {
        loc.location_id for loc in market.tensordock_locations
    }
    for offer in offers:
        parts = offer.extra["price_breakdown"]
        assert offer.price_hour == pytest.approx(sum(parts.values()), abs=1e-3)
        assert offer.disk_gb == 100 and parts["storage"] > 0
    assert any(o.available for o in offers) and any(not o.available for o in offers)


async def test_tensordock_lifecycle_create_run_stop_start_restart_delete(
    clock: ManualClock, market: DemoMarket
) -> None:
    provider = tensordock_adapter(market, clock)
    offers = await drive(clock, provider.list_offers(OfferQuery()))
    offer = next(o for o in offers if o.available and o.gpu_count == 1)
    instance_id = await drive(
        clock, provider.launch(offer, LaunchSpec(image="", label="td-run", onstart="nvidia-smi"))
    )

    creating = find(await drive(clock, provider.list_instances()), instance_id)
    assert (creating.status, creating.provider_status) == (InstanceStatus.PROVISIONING, "creating")
    assert creating.ssh is None

    await clock.advance(BOOT_S)
    running = find(await drive(clock, provider.list_instances()), instance_id)
    assert running.status is InstanceStatus.RUNNING
    assert (running.label, running.gpu, running.gpu_count) == ("td-run", offer.gpu, 1)
    assert running.price_hour == pytest.approx(offer.price_hour, rel=0.02)
    assert running.ssh is not None and running.ssh.user == "user"
    assert running.ssh.port == market.get("tensordock", instance_id).ssh_port

    await drive(clock, provider.stop(instance_id))
    stopped = find(await drive(clock, provider.list_instances()), instance_id)
    assert stopped.status is InstanceStatus.STOPPED
    assert 0 < stopped.current_price_hour < running.price_hour

    await drive(clock, provider.start(instance_id))
    assert find(await drive(clock, provider.list_instances()), instance_id).status.is_transitional
    await clock.advance(BOOT_S)
    assert (
        find(await drive(clock, provider.list_instances()), instance_id).status
        is InstanceStatus.RUNNING
    )

    await drive(clock, provider.restart(instance_id))
    assert find(await drive(clock, provider.list_instances()), instance_id).status.is_transitional
    await clock.advance(BOOT_S)
    assert (
        find(await drive(clock, provider.list_instances()), instance_id).status
        is InstanceStatus.RUNNING
    )

    await drive(clock, provider.destroy(instance_id))
    assert instance_id not in {i.instance_id for i in await drive(clock, provider.list_instances())}


async def test_tensordock_demo_refuses_more_gpus_than_available(
    clock: ManualClock, market: DemoMarket
) -> None:
    provider = tensordock_adapter(market, clock)
    offers = await drive(clock, provider.list_offers(OfferQuery()))
    offer = max((o for o in offers if o.available), key=lambda o: o.gpu_count)
    too_many: Offer = dataclasses.replace(offer, gpu_count=offer.gpu_count + 1)
    with pytest.raises(NoCapacityError):
        await drive(clock, provider.launch(too_many, LaunchSpec(image="")))
    assert market.instances_of("tensordock") == []


# -- demo wiring -------------------------------------------------------------------------------


async def test_demo_wiring_serves_seeded_lambda_and_tensordock_machines(clock: ManualClock) -> None:
    market = DemoMarket(clock, vast_offer_count=10)
    providers, clients = demo_providers(market, clock)
    try:
        for name, label in (("lambda", "bert-serve"), ("tensordock", "render-box")):
            (seeded,) = await providers[name].list_instances()
            assert (seeded.label, seeded.status) == (label, InstanceStatus.RUNNING)
            assert seeded.ssh is not None
            assert await providers[name].list_offers(OfferQuery())
    finally:
        for client in clients:
            await client.aclose()
