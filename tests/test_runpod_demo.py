"""The real RunPod adapter end to end against the demo market's RunPod API, on a manual clock."""

from __future__ import annotations

import json

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
from computehub_tui.providers.base import NoCapacityError, RequestRejectedError
from computehub_tui.providers.demo.market import DemoMarket
from computehub_tui.providers.demo.runpod_api import make_runpod_handler
from computehub_tui.providers.http import HttpPolicy
from computehub_tui.providers.runpod import RunpodProvider

BOOT_S = 30.0
"""Longer than any simulated provisioning + image pull, so a pod is running after it."""


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def market(clock: ManualClock) -> DemoMarket:
    return DemoMarket(clock, vast_offer_count=10)


@pytest.fixture
def provider(market: DemoMarket, clock: ManualClock) -> RunpodProvider:
    client = httpx.AsyncClient(transport=httpx.MockTransport(make_runpod_handler(market)))
    return RunpodProvider(client, None, clock=clock, policy=HttpPolicy(max_attempts=1))


async def _pod(provider: RunpodProvider, pod_id: str) -> Instance:
    [pod] = [pod for pod in await provider.list_instances() if pod.instance_id == pod_id]
    return pod


async def _on_demand_offer(provider: RunpodProvider, gpu_count: int = 1) -> Offer:
    offers = await provider.list_offers(OfferQuery(pricing=(PricingKind.ON_DEMAND,)))
    return next(offer for offer in offers if offer.gpu_count == gpu_count)


async def test_offers_span_both_clouds_several_counts_and_both_pricings(
    provider: RunpodProvider, market: DemoMarket
) -> None:
    offers = await provider.list_offers(OfferQuery())
    assert {offer.extra["cloud_type"] for offer in offers} == {"SECURE", "COMMUNITY"}
    assert len({offer.gpu_count for offer in offers}) >= 3
    assert {offer.pricing for offer in offers} == {PricingKind.ON_DEMAND, PricingKind.INTERRUPTIBLE}
    assert "H100 SXM" in {offer.gpu for offer in offers}
    types = {gpu.gpu_type_id: gpu for gpu in market.runpod_gpu_types}
    for offer in offers:
        if offer.pricing is PricingKind.ON_DEMAND:
            secure = offer.extra["cloud_type"] == "SECURE"
            per_gpu = market.runpod_price(types[offer.raw_gpu_name], secure)
            assert per_gpu is not None
            assert offer.price_hour == pytest.approx(per_gpu * offer.gpu_count)
            assert offer.vram_gb == types[offer.raw_gpu_name].memory_gb
            assert (
                market.runpod_stock(types[offer.raw_gpu_name], secure, offer.gpu_count) is not None
            )


async def test_offer_prices_drift_with_time(provider: RunpodProvider, clock: ManualClock) -> None:
    query = OfferQuery(pricing=(PricingKind.ON_DEMAND,))
    before = {offer.offer_id: offer for offer in await provider.list_offers(query)}
    await clock.advance(2 * 3600)
    after = {offer.offer_id: offer for offer in await provider.list_offers(query)}
    common = set(before) & set(after)
    assert len(common) > 20
    assert sum(before[key].price_hour != after[key].price_hour for key in common) > len(common) // 2
    assert all(after[key].quoted_at == before[key].quoted_at + 2 * 3600 for key in common)


async def test_seeded_pods_are_listed_with_mapped_statuses(provider: RunpodProvider) -> None:
    pods = {pod.label: pod for pod in await provider.list_instances()}
    assert set(pods) == {"comfyui-prod", "jupyter-scratch", "eval-job"}
    assert pods["comfyui-prod"].status is InstanceStatus.RUNNING
    assert pods["comfyui-prod"].gpu == "RTX A6000"
    assert pods["jupyter-scratch"].gpu == "A100 SXM"
    assert (
        pods["eval-job"].status is InstanceStatus.STOPPED
        and pods["eval-job"].provider_status == "EXITED"
    )
    assert "exited" in pods["eval-job"].status_message.lower()


async def test_full_lifecycle(provider: RunpodProvider, clock: ManualClock) -> None:
    offer = await _on_demand_offer(provider)
    pod_id = await provider.launch(
        offer, LaunchSpec(image="runpod/pytorch:2.4.0", label="demo-run")
    )

    pod = await _pod(provider, pod_id)
    assert (pod.status, pod.provider_status) == (InstanceStatus.STARTING, "RUNNING")
    assert (pod.label, pod.gpu, pod.gpu_count) == ("demo-run", offer.gpu, 1)
    assert pod.price_hour == pytest.approx(offer.price_hour, rel=0.01)
    assert pod.ssh is None and pod.metrics is None

    await clock.advance(BOOT_S)
    pod = await _pod(provider, pod_id)
    assert pod.status is InstanceStatus.RUNNING
    assert pod.ssh is not None and pod.ssh.user == "root" and pod.ssh.port > 1024
    assert pod.started_at is not None and clock.now() - BOOT_S < pod.started_at < clock.now()
    assert pod.metrics is not None
    assert len(pod.metrics.gpu_util) == 1 and 0 <= pod.metrics.gpu_util[0] <= 100
    assert pod.metrics.vram_total_gb == (offer.vram_gb,)
    assert 0 < pod.metrics.vram_used_gb[0] <= offer.vram_gb
    assert pod.metrics.cpu_pct is not None and pod.metrics.ram_pct is not None

    await provider.stop(pod_id)
    pod = await _pod(provider, pod_id)
    assert (pod.status, pod.provider_status) == (InstanceStatus.STOPPED, "EXITED")
    assert pod.ssh is None and pod.metrics is None

    await provider.start(pod_id)
    assert (await _pod(provider, pod_id)).status is InstanceStatus.STARTING
    await clock.advance(BOOT_S)
    assert (await _pod(provider, pod_id)).status is InstanceStatus.RUNNING

    await provider.restart(pod_id)
    assert (await _pod(provider, pod_id)).status is InstanceStatus.STARTING
    await clock.advance(BOOT_S)
    assert (await _pod(provider, pod_id)).status is InstanceStatus.RUNNING

    await provider.destroy(pod_id)
    assert pod_id not in {pod.instance_id for pod in await provider.list_instances()}


async def test_multi_gpu_pod_reports_metrics_per_gpu(
    provider: RunpodProvider, clock: ManualClock
) -> None:
    offers = await provider.list_offers(
        OfferQuery(min_gpu_count=2, pricing=(PricingKind.ON_DEMAND,))
    )
    offer = offers[0]
    pod_id = await provider.launch(offer, LaunchSpec(image="img"))
    await clock.advance(BOOT_S)
    pod = await _pod(provider, pod_id)
    assert pod.metrics is not None and len(pod.metrics.gpu_util) == offer.gpu_count
    assert pod.gpu_count == offer.gpu_count


async def test_restart_of_a_stopped_pod_is_refused_readably(
    provider: RunpodProvider, clock: ManualClock
) -> None:
    pod_id = await provider.launch(await _on_demand_offer(provider), LaunchSpec(image="img"))
    await clock.advance(BOOT_S)
    await provider.stop(pod_id)
    with pytest.raises(
        RequestRejectedError, match="cannot restart a pod that is stopped; start it instead"
    ):
        await provider.restart(pod_id)


async def test_starting_a_running_pod_is_refused(
    provider: RunpodProvider, clock: ManualClock
) -> None:
    pod_id = await provider.launch(await _on_demand_offer(provider), LaunchSpec(image="img"))
    await clock.advance(BOOT_S)
    with pytest.raises(RequestRejectedError, match="only a stopped instance can be started"):
        await provider.start(pod_id)


async def test_launch_of_a_sold_out_configuration_reports_no_capacity(
    provider: RunpodProvider, market: DemoMarket
) -> None:
    sold_out = next(
        (gpu, count)
        for gpu in market.runpod_gpu_types
        for count in (1, 2, 4, 8)
        if gpu.secure_price is not None and market.runpod_stock(gpu, True, count) is None
    )
    gpu, count = sold_out
    offer = Offer(
        provider="runpod",
        offer_id=f"{gpu.gpu_type_id}|SECURE|{count}",
        gpu=gpu.display_name,
        gpu_count=count,
        vram_gb=gpu.memory_gb,
        vcpus=8,
        ram_gb=32,
        disk_gb=20,
        price_hour=1.0,
        pricing=PricingKind.ON_DEMAND,
        location="Secure Cloud",
        reliability=None,
        available=True,
        quoted_at=0.0,
    )
    launches = market.launch_count
    with pytest.raises(NoCapacityError, match="no longer any instances available"):
        await provider.launch(offer, LaunchSpec(image="img"))
    assert market.launch_count == launches


async def test_spot_pod_launches_at_its_bid_and_resumes_by_bidding(
    provider: RunpodProvider, clock: ManualClock
) -> None:
    offers = await provider.list_offers(OfferQuery(pricing=(PricingKind.INTERRUPTIBLE,)))
    offer = next(offer for offer in offers if offer.gpu_count == 1)
    pod_id = await provider.launch(offer, LaunchSpec(image="img"))
    pod = await _pod(provider, pod_id)
    assert pod.price_hour == pytest.approx(offer.price_hour)
    await clock.advance(BOOT_S)
    await provider.stop(pod_id)
    await provider.start(pod_id)
    await clock.advance(BOOT_S)
    assert (await _pod(provider, pod_id)).status is InstanceStatus.RUNNING


async def test_spot_bid_far_below_the_minimum_is_refused(provider: RunpodProvider) -> None:
    offers = await provider.list_offers(OfferQuery(pricing=(PricingKind.INTERRUPTIBLE,)))
    offer = next(offer for offer in offers if offer.gpu_count == 1)
    with pytest.raises(
        RequestRejectedError, match="below the minimum bid.*may no longer offer them"
    ):
        await provider.launch(offer, LaunchSpec(image="img", bid_price=offer.price_hour / 4))


async def test_logs_follow_the_pod(provider: RunpodProvider, clock: ManualClock) -> None:
    pod_id = await provider.launch(
        await _on_demand_offer(provider), LaunchSpec(image="runpod/pytorch:2.4.0")
    )
    await clock.advance(BOOT_S + 120)
    text = await provider.logs(pod_id, tail=200)
    lines = text.splitlines()
    assert lines[0] == "[boot] pulling image runpod/pytorch:2.4.0"
    assert any(line.startswith("[train] step") for line in lines)
    assert (await provider.logs(pod_id, tail=2)).splitlines() == lines[-2:]


async def test_check_auth_passes_without_a_key(provider: RunpodProvider) -> None:
    await provider.check_auth()


async def test_demo_rejects_a_terminate_with_a_sub_selection(market: DemoMarket) -> None:
    handler = make_runpod_handler(market)
    pod_id = market.instances_of("runpod")[0].instance_id
    query = "mutation T($input: PodTerminateInput!) { podTerminate(input: $input) { id } }"
    request = httpx.Request(
        "POST",
        "https://api.runpod.io/graphql",
        json={"query": query, "variables": {"input": {"podId": pod_id}}},
    )
    response = handler(request)
    assert response.status_code == 400
    assert "must not have a selection" in json.loads(response.content)["errors"][0]["message"]
    assert market.get("runpod", pod_id).intended != "destroyed"
