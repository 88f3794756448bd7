"""Each instance's pricing kind (on-demand / interruptible) read from its provider's payload, through the real
adapters over httpx.MockTransport, kept in the store's snapshot, and what the rules' ``pricing`` field reads first."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from computehub_tui.clock import ManualClock
from computehub_tui.domain.models import Instance, InstanceStatus, LaunchSpec, OfferQuery, PricingKind
from computehub_tui.domain.secret import Secret
from computehub_tui.providers.base import Provider
from computehub_tui.providers.demo.adapters import demo_providers
from computehub_tui.providers.demo.market import DemoMarket
from computehub_tui.providers.http import HttpPolicy
from computehub_tui.providers.runpod import RunpodProvider
from computehub_tui.providers.vastai import VastProvider
from computehub_tui.rules.model import RuleSet
from computehub_tui.store._codec import decode_instance, encode_instance
from tests.rules_support import Machines, session

Handler = Callable[[httpx.Request], httpx.Response]
INTERRUPTIBLE, ON_DEMAND = PricingKind.INTERRUPTIBLE, PricingKind.ON_DEMAND


def vast_row(instance_id: int, **changes: Any) -> dict[str, Any]:
    return {"id": instance_id, "actual_status": "running", "intended_status": "running", "num_gpus": 1,
            "gpu_name": "RTX 4090", "dph_total": 0.41, "min_bid": 0.2, "label": f"m{instance_id}", **changes}


def runpod_pod(pod_id: str, **changes: Any) -> dict[str, Any]:
    return {"id": pod_id, "name": pod_id, "desiredStatus": "EXITED", "costPerHr": 0.69, "gpuCount": 1,
            "imageName": "runpod/pytorch:2.4.0", "machine": {"gpuDisplayName": "RTX 4090"}, "runtime": None,
            **changes}


async def listed(provider: Provider) -> dict[str, PricingKind | None]:
    return {instance.instance_id: instance.pricing for instance in await provider.list_instances()}


def answering(payload: Any) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.MockTransport(lambda request: httpx.Response(200, json=payload)))


async def test_vast_reads_is_bid_from_the_instance_payload_and_only_a_boolean_counts() -> None:
    rows = [vast_row(1, is_bid=True), vast_row(2, is_bid=False), vast_row(3), vast_row(4, is_bid="true"),
            vast_row(5, is_bid=1), vast_row(6, is_bid=None)]
    async with answering({"instances": rows, "instances_found": len(rows)}) as client:
        pricing = await listed(VastProvider(client, Secret("vast-key-0123456789"), clock=ManualClock()))
    # A string or a number is not what Vast sends: unknown, never a guess (unknown never makes a rule fire).
    assert pricing == {"1": INTERRUPTIBLE, "2": ON_DEMAND, "3": None, "4": None, "5": None, "6": None}


async def test_runpod_reads_pod_type_and_falls_back_to_the_rest_interruptible_flag() -> None:
    pods = [runpod_pod("spot", podType="INTERRUPTABLE"), runpod_pod("reserved", podType="RESERVED"),
            runpod_pod("lower", podType="interruptable"), runpod_pod("rest", interruptible=True),
            runpod_pod("rest-od", interruptible=False), runpod_pod("odd", podType="[bold]x[/]"),
            runpod_pod("none")]
    async with answering({"data": {"myself": {"pods": pods}}}) as client:
        provider = RunpodProvider(client, Secret("rpa_TESTKEY0123456789"), clock=ManualClock(),
                                  policy=HttpPolicy(max_attempts=1))
        pricing = await listed(provider)
    assert pricing == {"spot": INTERRUPTIBLE, "reserved": ON_DEMAND, "lower": INTERRUPTIBLE, "rest": INTERRUPTIBLE,
                       "rest-od": ON_DEMAND, "odd": None, "none": None}


@pytest.fixture
async def demo() -> AsyncIterator[tuple[ManualClock, dict[str, Provider]]]:
    clock = ManualClock()
    providers, clients = demo_providers(DemoMarket(clock, vast_offer_count=40), clock)
    yield clock, providers
    for client in clients:
        await client.aclose()


async def test_the_demo_market_speaks_each_providers_pricing_on_the_wire(
        demo: tuple[ManualClock, dict[str, Provider]]) -> None:
    _, providers = demo
    launched: dict[str, str] = {}
    for name in ("vast", "runpod"):
        offers = await providers[name].list_offers(OfferQuery(pricing=(INTERRUPTIBLE,), min_reliability=0))
        offer = min((o for o in offers if o.gpu_count == 1), key=lambda o: o.price_hour)
        assert offer.min_bid is not None
        launched[name] = await providers[name].launch(offer, LaunchSpec(image="img", bid_price=offer.min_bid))
    for name, provider in providers.items():
        instances = await provider.list_instances()
        interruptible = {i.label for i in instances if i.pricing is INTERRUPTIBLE and i.instance_id != launched.get(name)}
        seeded = {i.pricing for i in instances if i.instance_id != launched.get(name)} - {INTERRUPTIBLE}
        assert interruptible == ({"sd-webui"} if name == "vast" else set()), name
        assert seeded == {ON_DEMAND}, (name, seeded)
        if name in launched:
            assert next(i for i in instances if i.instance_id == launched[name]).pricing is INTERRUPTIBLE, name


def test_the_store_snapshot_keeps_the_pricing_kind_and_unknown_stays_unknown() -> None:
    instance = Instance("vast", "1", "x", InstanceStatus.RUNNING, "running", "RTX 4090", 1, 0.4,
                        pricing=INTERRUPTIBLE)
    assert decode_instance(encode_instance(instance)).pricing is INTERRUPTIBLE
    unknown = decode_instance(encode_instance(Instance("vast", "2", "y", InstanceStatus.RUNNING, "running",
                                                       "RTX 4090", 1, 0.4)))
    assert unknown.pricing is None
    older = json.loads(encode_instance(instance))
    del older["pricing"]  # a snapshot written before the field existed
    assert decode_instance(json.dumps(older)).pricing is None


async def test_the_rules_pricing_field_reads_the_instance_payload(tmp_path: Path) -> None:
    machines = Machines()
    machines.add("1", pricing=INTERRUPTIBLE)
    machines.add("2", pricing=ON_DEMAND)
    machines.add("3")
    async with session(tmp_path / "db", machines, RuleSet()) as s:
        await s.poll()
        facts = {f.key: f.values["pricing"] for f in s.hub.rules.runner.facts.instances(s.clock.now())}
    assert facts == {"vast:1": "interruptible", "vast:2": "on-demand", "vast:3": None}
