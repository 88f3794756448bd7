"""Items 3, 4, 9 and 26: absurd provider numbers are bounded at parse time (dropped and counted,
or made unknown), never ranked, summed or left to overflow; units agree across panes."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
from hostile import Router, build, client_for, graphql, json_number

from computehub_tui.clock import ManualClock
from computehub_tui.domain.market import market_summary
from computehub_tui.domain.models import Instance, InstanceStatus, OfferQuery
from computehub_tui.domain.pricing import split_plausible
from computehub_tui.domain.ranking import sort_offers
from computehub_tui.engine.hub import Hub, HubSettings, PollSettings
from computehub_tui.store import Store

QUERY = OfferQuery(min_reliability=0.0)
IMPLAUSIBLE = "provider sent an implausible price; not counted"
NOW = ManualClock().now()



def adapter(name: str, router: Router, clients: list[httpx.AsyncClient]) -> Any:
    client = client_for(router)
    clients.append(client)
    return build(name, client)


def vast_offer(ask_id: int, **fields: Any) -> dict[str, Any]:
    return {"id": ask_id, "gpu_name": "RTX 4090", "num_gpus": 1, "gpu_ram": 24564, "cpu_cores": 32,
            "cpu_cores_effective": 8.0, "cpu_ram": 131072, "dph_total": 0.40, "reliability": 0.99,
            "geolocation": "Oslo, NO", "rentable": True, "rented": False, **fields}


def vast_instance(instance_id: int, **fields: Any) -> dict[str, Any]:
    return {"id": instance_id, "actual_status": "running", "intended_status": "running", "num_gpus": 1,
            "gpu_name": "RTX 4090", "gpu_ram": 24564, "gpu_util": 50.0, "gpu_temp": 60.0, "dph_total": 0.4,
            "start_date": NOW - 3600, "ssh_host": "ssh1.vast.ai", "ssh_port": 2200, **fields}


# -- item 3: GPU counts ----------------------------------------------------------------------------

ABSURD_COUNTS: list[Any] = [0, -5, 65, 100_000, 1e9, "1e9"]


async def test_vast_offer_rows_with_absurd_gpu_counts_are_dropped_and_counted(
    clients: list[httpx.AsyncClient],
) -> None:
    rows = [vast_offer(1)] + [vast_offer(10 + n, num_gpus=count) for n, count in enumerate(ABSURD_COUNTS)]
    vast = adapter("vast", Router().on("POST", "/bundles/", {"offers": rows}), clients)
    offers = await vast.list_offers(QUERY)
    assert {offer.offer_id for offer in offers} == {"1"}
    assert vast.dropped_rows == len(ABSURD_COUNTS)


async def test_vast_instances_with_absurd_gpu_counts_build_no_huge_tuples(clients: list[httpx.AsyncClient]) -> None:
    rows = [vast_instance(1), vast_instance(2, num_gpus=100_000),
            vast_instance(3, num_gpus=1_000_000_000, actual_status="stopped")]
    vast = adapter("vast", Router().on("GET", "/instances/", {"instances": rows}), clients)
    instances = await vast.list_instances()
    assert [instance.instance_id for instance in instances] == ["1"]
    assert vast.dropped_rows == 2
    metrics = instances[0].metrics
    assert metrics is not None and len(metrics.gpu_util) == 1


async def test_runpod_pods_with_absurd_gpu_counts_are_dropped_and_counted(clients: list[httpx.AsyncClient]) -> None:
    runtime = {"uptimeInSeconds": 60, "gpus": [{"gpuUtilPercent": 50}] * 3, "container": {"cpuPercent": 5}}
    pods = [{"id": "ok", "desiredStatus": "RUNNING", "gpuCount": 1, "costPerHr": 0.5, "runtime": runtime},
            {"id": "huge", "desiredStatus": "RUNNING", "gpuCount": 100_000, "costPerHr": 0.5, "runtime": runtime},
            {"id": "negative", "desiredStatus": "EXITED", "gpuCount": -5, "costPerHr": 0.5}]
    router = Router().on("POST", "/graphql", graphql({"myself": {"pods": pods}}), body_part="query Pods")
    runpod = adapter("runpod", router, clients)
    instances = await runpod.list_instances()
    assert [instance.instance_id for instance in instances] == ["ok"]
    assert runpod.dropped_rows == 2


def lambda_type(count: int, cents: float = 299.0) -> dict[str, Any]:
    return {"description": f"{count}x H100 (80 GB SXM5)", "price_cents_per_hour": cents,
            "specs": {"vcpus": 26, "memory_gib": 200, "storage_gib": 1000, "gpus": count}}


async def test_lambda_types_with_absurd_gpu_counts_are_dropped_and_counted(clients: list[httpx.AsyncClient]) -> None:
    region = [{"name": "us-east-1", "description": "Virginia, USA"}]
    types = {"data": {
        "gpu_1x_h100_sxm5": {"instance_type": lambda_type(1), "regions_with_capacity_available": region},
        "gpu_1000000000x_h100": {"instance_type": lambda_type(1_000_000_000), "regions_with_capacity_available": region},
        "gpu_minus_h100": {"instance_type": lambda_type(-4), "regions_with_capacity_available": region},
    }}
    instances = {"data": [
        {"id": "ok", "status": "active", "instance_type": {"name": "gpu_1x_h100_sxm5", **lambda_type(1)}},
        {"id": "huge", "status": "active", "instance_type": {"name": "x", **lambda_type(1_000_000_000)}},
    ]}
    router = Router().on("GET", "/instance-types", types).on("GET", "/instances", instances)
    provider = adapter("lambda", router, clients)
    offers = await provider.list_offers(QUERY)
    assert {offer.offer_id for offer in offers} == {"gpu_1x_h100_sxm5@us-east-1"}
    assert provider.dropped_rows == 2
    assert [instance.instance_id for instance in await provider.list_instances()] == ["ok"]
    assert provider.dropped_rows == 1


def tensordock_gpu(max_count: Any, **pricing: float) -> dict[str, Any]:
    rates = {"per_vcpu_hr": 0.003, "per_gb_ram_hr": 0.002, "per_gb_storage_hr": 0.00005, **pricing}
    return {"v0Name": "geforcertx4090-pcie-24gb", "displayName": "RTX 4090", "max_count": max_count,
            "price_per_hr": 0.35, "resources": {"max_vcpus": 64, "max_ram_gb": 256, "max_storage_gb": 2000},
            "pricing": rates}


async def test_tensordock_absurd_counts_and_rates_are_dropped_and_counted(clients: list[httpx.AsyncClient]) -> None:
    locations = {"data": {"locations": [
        {"id": "ok", "city": "Boise", "country": "United States", "gpus": [tensordock_gpu(2)]},
        {"id": "huge", "city": "Boise", "country": "United States", "gpus": [tensordock_gpu(10**9)]},
        {"id": "cheap-cpu", "city": "Boise", "country": "United States",
         "gpus": [tensordock_gpu(2, per_vcpu_hr=-5.0)]},
    ]}}
    detail = {"data": {"id": "vm", "status": "running", "ipAddress": "192.0.2.1", "rateHourly": 0.5,
                       "resources": {"gpus": {"geforcertx4090-pcie-24gb": {"count": 10**9}}}}}
    router = (Router().on("GET", "/locations", locations).on("GET", "/instances/vm", detail)
              .on("GET", "/instances", {"data": [{"id": "vm", "status": "running"}]}))
    provider = adapter("tensordock", router, clients)
    offers = await provider.list_offers(QUERY)
    assert {offer.offer_id.split(":")[0] for offer in offers} == {"ok"}
    assert provider.dropped_rows == 2
    assert await provider.list_instances() == []
    assert provider.dropped_rows == 1


async def test_the_hub_counts_rows_the_adapter_dropped(tmp_path: Path) -> None:
    # $10 per GPU-hour would pass the price check: only the count gives the billion-GPU row away.
    rows = [vast_offer(1), vast_offer(2, num_gpus=1_000_000_000, dph_total=1e10), vast_offer(3, dph_total=0.0)]
    clock = ManualClock()
    async with client_for(Router().on("POST", "/bundles/", {"offers": rows})) as client:
        store = await Store.open(tmp_path / "hub.db")
        try:
            hub = Hub({"vast": build("vast", client, clock)}, store, clock,
                      HubSettings(poll=PollSettings(60.0, 5.0), demo=True))
            assert await hub.refresh_offers("vast")
            assert [offer.offer_id for offer in hub.offers()] == ["1"]
            assert hub.implausible_counts["vast"] == 2  # one absurd count (adapter), one free price (hub)
        finally:
            await store.close()


# -- item 4: overflow -----------------------------------------------------------------------------


def assert_bounded(instance: Instance) -> None:
    assert instance.price_hour == 0.0 and IMPLAUSIBLE in instance.status_message, instance
    assert instance.started_at is None
    instance.to_json()  # iso_utc used to overflow on these


async def test_vast_overflowing_numbers_drop_the_value_not_the_instance(clients: list[httpx.AsyncClient]) -> None:
    rows = [
        vast_instance(1, start_date=1e20, dph_total=1e308, gpu_util=1e308, gpu_temp=-1e308, vmem_usage=1e308,
                      cpu_util=10.0),
        vast_instance(2, start_date=-1e308, dph_total=-5),
        vast_instance(3, start_date=-1, dph_total=1000.0),
    ]
    text = json.dumps({"instances": rows}).replace('"start_date": -1,', f'"start_date": {10**400},')
    vast = adapter("vast", Router().on("GET", "/instances/", lambda _request: json_number(text)), clients)
    instances = await vast.list_instances()
    assert [instance.instance_id for instance in instances] == ["1", "2", "3"]
    for instance in instances:
        assert_bounded(instance)
    metrics = instances[0].metrics
    assert metrics is not None and metrics.gpu_util == () and metrics.gpu_temp_c == () and metrics.vram_used_gb == ()


async def test_vast_nan_text_and_huge_integers_never_raise(clients: list[httpx.AsyncClient]) -> None:
    row = vast_instance(1, dph_total="NaN", dph_base=-1e308, start_date="Infinity", gpu_util="nan")
    text = json.dumps({"instances": [row]}).replace('"num_gpus": 1', f'"num_gpus": 1, "disk_space": {10**400}')
    vast = adapter("vast", Router().on("GET", "/instances/", lambda _request: json_number(text)), clients)
    [instance] = await vast.list_instances()
    assert_bounded(instance)


async def test_runpod_overflowing_numbers_drop_the_value_not_the_pod(clients: list[httpx.AsyncClient]) -> None:
    pods = [{"id": "a", "desiredStatus": "RUNNING", "gpuCount": 1, "costPerHr": 1e308,
             "runtime": {"uptimeInSeconds": 1e308, "gpus": [{"gpuUtilPercent": -1e308}]}},
            {"id": "b", "desiredStatus": "RUNNING", "gpuCount": 1, "costPerHr": -5,
             "runtime": {"uptimeInSeconds": -3}}]
    pods.append({"id": "c", "desiredStatus": "RUNNING", "gpuCount": 1, "costPerHr": -1,
                 "runtime": {"uptimeInSeconds": "NaN"}})
    text = json.dumps(graphql({"myself": {"pods": pods}})).replace('"costPerHr": -1', f'"costPerHr": {10**400}')
    router = Router().on("POST", "/graphql", lambda _request: json_number(text), body_part="query Pods")
    instances = await adapter("runpod", router, clients).list_instances()
    assert [instance.instance_id for instance in instances] == ["a", "b", "c"]
    for instance in instances:
        assert_bounded(instance)
    metrics = instances[0].metrics
    assert metrics is not None and metrics.gpu_util == ()


async def test_lambda_and_tensordock_absurd_prices_drop_the_value(clients: list[httpx.AsyncClient]) -> None:
    lambda_instances = {"data": [
        {"id": "a", "status": "active", "instance_type": {"name": "t", **lambda_type(1, cents=1e308)}},
        {"id": "b", "status": "active", "instance_type": {"name": "t", **lambda_type(1, cents=-500)}},
        {"id": "c", "status": "active", "instance_type": {"name": "t", **lambda_type(1, cents=-1)}},
    ]}
    text = json.dumps(lambda_instances).replace('"price_cents_per_hour": -1', f'"price_cents_per_hour": {10**400}')
    lambda_ = adapter("lambda", Router().on("GET", "/instances", lambda _request: json_number(text)), clients)
    assert len(await lambda_.list_instances()) == 3
    for instance in await lambda_.list_instances():
        assert instance.price_hour == 0.0 and IMPLAUSIBLE in instance.status_message
        instance.to_json()

    def detail(price: float) -> dict[str, Any]:
        return {"data": {"status": "running", "rateHourly": price,
                         "resources": {"gpus": {"geforcertx4090-pcie-24gb": {"count": 1}}}}}

    router = (Router().on("GET", "/instances/a", detail(1e308)).on("GET", "/instances/b", detail(-5))
              .on("GET", "/instances/c", detail(-1e308))
              .on("GET", "/instances", {"data": [{"id": "a"}, {"id": "b"}, {"id": "c"}]}))
    instances = await adapter("tensordock", router, clients).list_instances()
    assert len(instances) == 3
    for instance in instances:
        assert instance.price_hour == 0.0 and IMPLAUSIBLE in instance.status_message


# -- item 9: ranking ------------------------------------------------------------------------------


async def test_an_absurd_listing_never_ranks_first_by_value(clients: list[httpx.AsyncClient]) -> None:
    rows = [
        vast_offer(1, gpu_name="H100 SXM", num_gpus=8, gpu_ram=81559, dph_total=17.6),
        vast_offer(2, gpu_name="H100 SXM", num_gpus=100_000, gpu_ram=81559, dph_total=1000.0),
        vast_offer(3, gpu_name="H100 SXM", num_gpus=64, gpu_ram=81559, dph_total=1.0),
        vast_offer(4, dph_total=-5.0),
        vast_offer(5, reliability=5.0),
        vast_offer(6, reliability=-3.0),
    ]
    vast = adapter("vast", Router().on("POST", "/bundles/", {"offers": rows}), clients)
    offers = [offer for offer in await vast.list_offers(QUERY) if offer.pricing.value == "on-demand"]
    kept, implausible = split_plausible(offers)
    ranked = sort_offers(kept, "value", NOW)
    assert ranked[0].offer_id == "1"
    assert {offer.offer_id for offer in kept} == {"1", "5", "6"}
    assert (vast.dropped_rows, implausible) == (1, 2)  # 100,000 GPUs; 64×H100 for $1 and $-5
    assert {offer.offer_id: offer.reliability for offer in kept if offer.offer_id in "56"} == {"5": None, "6": None}


# -- item 26: units -------------------------------------------------------------------------------


async def test_vast_ram_is_shown_in_gib_and_monitor_vram_matches_offers(clients: list[httpx.AsyncClient]) -> None:
    router = (Router().on("POST", "/bundles/", {"offers": [vast_offer(1, cpu_ram=131072)]})
              .on("GET", "/instances/", {"instances": [vast_instance(7, vmem_usage=3.0)]}))
    vast = adapter("vast", router, clients)
    [offer] = [offer for offer in await vast.list_offers(QUERY) if offer.pricing.value == "on-demand"]
    [instance] = await vast.list_instances()
    assert offer.ram_gb == 128.0  # 131072 "MB" are MiB: a 128 GiB machine, not 131G
    assert instance.metrics is not None and instance.metrics.vram_total_gb == (offer.vram_gb,) == (24.0,)


async def test_every_v100_is_one_model_in_the_market_summary(clients: list[httpx.AsyncClient]) -> None:
    vast = Router().on("POST", "/bundles/", {"offers": [vast_offer(1, gpu_name="Tesla V100", gpu_ram=32768,
                                                                   dph_total=0.3)]})
    lowest = {"uninterruptablePrice": 0.29, "stockStatus": "High", "minVcpu": 8, "minMemory": 40}
    runpod = Router().on("POST", "/graphql", graphql({"gpuTypes": [
        {"id": "Tesla V100-SXM2-32GB", "displayName": "V100 SXM2 32GB", "memoryInGb": 32, "lowestPrice": lowest},
        {"id": "Tesla V100-PCIE-16GB", "displayName": "V100 PCIe", "memoryInGb": 16, "lowestPrice": lowest},
    ]}), body_part="GpuOffers")
    lambda_ = Router().on("GET", "/instance-types", {"data": {"gpu_8x_v100": {
        "instance_type": {"description": "8x Tesla V100 (16 GB)", "price_cents_per_hour": 440,
                          "specs": {"vcpus": 88, "memory_gib": 448, "storage_gib": 5000, "gpus": 8}},
        "regions_with_capacity_available": [{"name": "us-east-1", "description": "Virginia, USA"}]}}})
    tensordock = Router().on("GET", "/locations", {"data": {"locations": [{
        "id": "loc", "city": "Boise", "country": "United States",
        "gpus": [{**tensordock_gpu(4), "v0Name": "v100-pcie-16gb", "displayName": "NVIDIA V100 PCIe 16GB"}]}]}})
    offers = []
    for name, router in (("vast", vast), ("runpod", runpod), ("lambda", lambda_), ("tensordock", tensordock)):
        offers += await adapter(name, router, clients).list_offers(QUERY)
    assert {offer.provider for offer in offers} == {"vast", "runpod", "lambda", "tensordock"}
    assert {offer.gpu for offer in offers} == {"V100"}
    assert {offer.vram_gb for offer in offers} == {16.0, 32.0}  # never 33: Vast's MB are MiB
    rows = market_summary(offers, [])
    assert [row.gpu for row in rows] == ["V100"]


async def test_stopped_instances_keep_their_rows(clients: list[httpx.AsyncClient]) -> None:
    """Bounds drop values and implausible counts, never an ordinary instance."""
    row = vast_instance(1, actual_status="stopped", intended_status="stopped")
    [instance] = await adapter("vast", Router().on("GET", "/instances/", {"instances": [row]}), clients).list_instances()
    assert instance.status is InstanceStatus.STOPPED and instance.price_hour == 0.4
