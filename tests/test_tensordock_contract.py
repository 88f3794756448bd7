"""TensorDock adapter against hand-written v2 payloads: pricing, parsing, errors, launch body."""

from __future__ import annotations

import json
import random
from typing import Any

import httpx
import pytest
from wire import InstantClock, Route, Wire

from computehub_tui.domain.models import InstanceStatus, LaunchSpec, Offer, OfferQuery, PricingKind
from computehub_tui.domain.secret import Secret
from computehub_tui.providers.base import (
    AuthError,
    ConfigurationError,
    NoCapacityError,
    NotFoundError,
    Provider,
    RequestRejectedError,
    UnavailableError,
    UnsupportedError,
)
from computehub_tui.providers.http import HttpPolicy
from computehub_tui.providers.tensordock import TensordockProvider, default_policy

TOKEN = "td_token_9f8e7d6c5b4a39281706"
BASE = "https://dashboard.tensordock.com/api/v2"
PUBLIC_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIContractContract me@laptop"
CHICAGO = "1a5b9c2e-0000-4000-8000-00000000c41c"
INSTANCE_ID = "5a3f0c1e-8d2b-4c6a-9e7f-0b1c2d3e4f5a"

def make(
    route: Route, *, ssh_public_key: str = PUBLIC_KEY, policy: HttpPolicy | None = None
) -> tuple[TensordockProvider, Wire, InstantClock]:
    wire = Wire(route, path_prefix="/api/v2")
    clock = InstantClock()
    provider = TensordockProvider(
        httpx.AsyncClient(transport=httpx.MockTransport(wire)),
        Secret(TOKEN),
        clock=clock,
        policy=policy or HttpPolicy(min_interval=0.0, backoff_base=0.1),
        ssh_public_key=ssh_public_key,
        rng=random.Random(7),
    )
    return provider, wire, clock


def reply(status: int, body: Any) -> Route:
    return lambda request: httpx.Response(status, json=body)


def gpu_entry(
    v0: str,
    display: str,
    max_count: int,
    price: float,
    *,
    max_vcpus: int = 20,
    max_ram_gb: int = 96,
    max_storage_gb: int = 2000,
) -> dict[str, Any]:
    return {
        "v0Name": v0,
        "displayName": display,
        "max_count": max_count,
        "price_per_hr": price,
        "resources": {
            "max_vcpus": max_vcpus,
            "max_ram_gb": max_ram_gb,
            "max_storage_gb": max_storage_gb,
        },
        "pricing": {"per_vcpu_hr": 0.003, "per_gb_ram_hr": 0.002, "per_gb_storage_hr": 0.00005},
        "network_features": {
            "dedicated_ip_available": False,
            "port_forwarding_available": True,
            "network_storage_available": False,
        },
    }


LOCATIONS = {
    "data": {
        "locations": [
            {
                "id": CHICAGO,
                "city": "Chicago",
                "stateprovince": "Illinois",
                "country": "United States",
                "tier": 3,
                "gpus": [
                    gpu_entry(
                        "geforcertx4090-pcie-24gb", "NVIDIA GeForce RTX 4090 PCIe 24GB", 4, 0.35
                    ),
                    gpu_entry("h100-sxm5-80gb", "NVIDIA H100 SXM5 80GB", 0, 2.25),
                ],
            },
            {
                "id": "loc-manchester",
                "city": "Manchester",
                "stateprovince": "England",
                "country": "United Kingdom",
                "tier": 2,
                "gpus": [
                    gpu_entry(
                        "rtxa6000-pcie-48gb",
                        "NVIDIA RTX A6000 PCIe 48GB",
                        8,
                        0.45,
                        max_vcpus=128,
                        max_ram_gb=512,
                    )
                ],
            },
        ]
    }
}


def rtx4090_offer(count: int = 1) -> Offer:
    return Offer(
        provider="tensordock",
        offer_id=f"{CHICAGO}:geforcertx4090-pcie-24gb:{count}",
        gpu="RTX 4090",
        gpu_count=count,
        vram_gb=24,
        vcpus=8.0 * count,
        ram_gb=32.0 * count,
        disk_gb=100,
        price_hour=0.443,
        pricing=PricingKind.ON_DEMAND,
        location="Chicago, United States",
        reliability=None,
        available=True,
        quoted_at=0.0,
        extra={
            "location_id": CHICAGO,
            "v0_name": "geforcertx4090-pcie-24gb",
            "vcpus": 8 * count,
            "ram_gb": 32 * count,
            "storage_gb": 100,
        },
    )


# -- offers ------------------------------------------------------------------------------------


async def test_offers_request_is_an_authenticated_get() -> None:
    provider, wire, _ = make(reply(200, LOCATIONS))
    await provider.list_offers(OfferQuery())
    (request,) = wire.requests
    assert (request.method, str(request.url)) == ("GET", f"{BASE}/locations")
    assert request.headers["authorization"] == f"Bearer {TOKEN}"
    assert TOKEN not in str(request.url)


async def test_price_is_gpus_plus_vcpus_plus_ram_plus_storage() -> None:
    provider, _, _ = make(reply(200, LOCATIONS))
    offers = {
        o.gpu_count: o
        for o in await provider.list_offers(OfferQuery(gpus=("RTX 4090",), disk_gb=20))
    }
    assert sorted(offers) == [1, 2, 4]  # 8 exceeds max_count
    one, two, four = offers[1], offers[2], offers[4]
    # 1 GPU: 0.35 + 8 vCPU×0.003 + 32 GB×0.002 + 100 GB (the minimum, not 20)×0.00005
    assert one.price_hour == pytest.approx(0.35 + 0.024 + 0.064 + 0.005)
    assert (one.vcpus, one.ram_gb, one.disk_gb) == (8, 32, 100)
    assert two.price_hour == pytest.approx(0.70 + 0.048 + 0.128 + 0.005)
    # 4 GPUs want 32 vCPU and 128 GB but the location caps them at 20 and 96.
    assert (four.vcpus, four.ram_gb) == (20, 96)
    assert four.price_hour == pytest.approx(1.40 + 0.060 + 0.192 + 0.005)
    assert one.extra["price_breakdown"] == {
        "gpu": 0.35,
        "vcpu": 0.024,
        "ram": 0.064,
        "storage": 0.005,
    }
    assert (one.extra["vcpus"], one.extra["ram_gb"], one.extra["storage_gb"]) == (8, 32, 100)
    assert (
        one.extra["location_id"] == CHICAGO and one.extra["v0_name"] == "geforcertx4090-pcie-24gb"
    )


async def test_storage_above_the_minimum_is_priced_and_too_much_storage_drops_the_offer() -> None:
    provider, _, _ = make(reply(200, LOCATIONS))
    (big_disk,) = await provider.list_offers(
        OfferQuery(gpus=("RTX 4090",), disk_gb=500, min_gpu_count=4)
    )
    assert big_disk.disk_gb == 500
    assert big_disk.price_hour == pytest.approx(1.40 + 0.060 + 0.192 + 500 * 0.00005)
    assert await provider.list_offers(OfferQuery(gpus=("RTX 4090",), disk_gb=3000)) == []


async def test_offer_identity_names_location_and_canonical_gpu() -> None:
    provider, _, _ = make(reply(200, LOCATIONS))
    offers = await provider.list_offers(OfferQuery())
    rtx = next(o for o in offers if o.gpu == "RTX 4090" and o.gpu_count == 1)
    assert rtx.offer_id == f"{CHICAGO}:geforcertx4090-pcie-24gb:1"
    assert (rtx.vram_gb, rtx.location, rtx.country) == (24, "Chicago, United States", "US")
    assert rtx.pricing is PricingKind.ON_DEMAND and rtx.reliability is None
    assert rtx.storage_gb_month == pytest.approx(0.00005 * 730)
    a6000 = [o for o in offers if o.gpu == "RTX A6000"]
    assert [o.gpu_count for o in a6000] == [1, 2, 4, 8]
    assert a6000[0].country == "GB" and a6000[0].vram_gb == 48


async def test_sold_out_gpu_is_listed_once_as_unavailable() -> None:
    provider, wire, _ = make(reply(200, LOCATIONS))
    (h100,) = [o for o in await provider.list_offers(OfferQuery()) if o.gpu == "H100 SXM"]
    assert h100.available is False and h100.gpu_count == 1
    with pytest.raises(NoCapacityError):
        await provider.launch(h100, LaunchSpec(image=""))
    assert len(wire.requests) == 1  # the launch never went out


async def test_locations_nested_under_attributes_are_accepted() -> None:
    nested = {"data": {"type": "list", "id": "locations", "attributes": LOCATIONS["data"]}}
    provider, _, _ = make(reply(200, nested))
    assert len(await provider.list_offers(OfferQuery())) == 8


# -- instances ---------------------------------------------------------------------------------


def instances_route(summaries: list[dict[str, Any]], details: dict[str, Any]) -> Route:
    def route(request: httpx.Request) -> httpx.Response:
        path = request.url.path.removeprefix("/api/v2")
        if path == "/instances":
            return httpx.Response(200, json={"data": {"instances": summaries}})
        instance_id = path.rsplit("/", 1)[-1]
        if instance_id not in details:
            return httpx.Response(404, json={"error": "Instance not found"})
        return httpx.Response(200, json=details[instance_id])

    return route


def summary(instance_id: str = INSTANCE_ID, status: str = "running") -> dict[str, Any]:
    return {
        "type": "virtualmachine",
        "id": instance_id,
        "attributes": {"name": "render", "status": status},
    }


def detail(status: str = "running", **overrides: Any) -> dict[str, Any]:
    body = {
        "type": "virtualmachine",
        "id": INSTANCE_ID,
        "name": "render",
        "status": status,
        "ipAddress": "203.0.113.44",
        "portForwards": [
            {"internal_port": 22, "external_port": 41022},
            {"internal_port": 8888, "external_port": 41888},
        ],
        "resources": {
            "vcpu_count": 16,
            "ram_gb": 64,
            "storage_gb": 200,
            "gpus": {"geforcertx4090-pcie-24gb": {"count": 2}},
        },
        "rateHourly": 0.881,
    }
    body.update(overrides)
    return body


async def test_instances_are_listed_then_fetched_one_by_one() -> None:
    provider, wire, _ = make(instances_route([summary()], {INSTANCE_ID: detail()}))
    (instance,) = await provider.list_instances()
    assert wire.calls == [("GET", "/instances"), ("GET", f"/instances/{INSTANCE_ID}")]
    assert instance.key == f"tensordock:{INSTANCE_ID}"
    assert (instance.label, instance.status, instance.provider_status) == (
        "render",
        InstanceStatus.RUNNING,
        "running",
    )
    assert (instance.gpu, instance.gpu_count) == ("RTX 4090", 2)
    assert instance.price_hour == pytest.approx(0.881)
    assert instance.ssh is not None and instance.ssh.command == "ssh -p 41022 user@203.0.113.44"
    assert instance.ports == {"22/tcp": "203.0.113.44:41022", "8888/tcp": "203.0.113.44:41888"}
    assert instance.storage_price_hour == pytest.approx(200 * 0.00005)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("creating", InstanceStatus.PROVISIONING),
        ("starting", InstanceStatus.STARTING),
        ("running", InstanceStatus.RUNNING),
        ("stopping", InstanceStatus.STOPPED),
        ("stopped", InstanceStatus.STOPPED),
        ("error", InstanceStatus.ERROR),
        ("deleting", InstanceStatus.TERMINATED),
        ("Running", InstanceStatus.RUNNING),
        ("hibernating", InstanceStatus.UNKNOWN),
    ],
)
async def test_status_mapping(raw: str, expected: InstanceStatus) -> None:
    provider, _, _ = make(instances_route([summary(status=raw)], {INSTANCE_ID: detail(raw)}))
    (instance,) = await provider.list_instances()
    assert instance.status is expected


async def test_stopped_instance_costs_only_storage() -> None:
    provider, _, _ = make(
        instances_route([summary(status="stopped")], {INSTANCE_ID: detail("stopped")})
    )
    (instance,) = await provider.list_instances()
    assert instance.current_price_hour == pytest.approx(0.01)


async def test_wrapped_detail_with_port_map_and_gpu_list_is_understood() -> None:
    wrapped = {
        "data": {
            "type": "virtualmachine",
            "id": INSTANCE_ID,
            "attributes": {
                "name": "render",
                "status": "running",
                "ipAddress": "198.51.100.7",
                "portForwards": {"22": 30022},
                "resources": {"gpus": [{"gpuV0Name": "h100-sxm5-80gb", "count": 8}]},
            },
        }
    }
    provider, _, _ = make(instances_route([summary()], {INSTANCE_ID: wrapped}))
    (instance,) = await provider.list_instances()
    assert (instance.gpu, instance.gpu_count) == ("H100 SXM", 8)
    assert instance.ssh is not None and (instance.ssh.host, instance.ssh.port) == (
        "198.51.100.7",
        30022,
    )
    assert instance.price_hour == 0.0  # no price field sent: unknown, not invented


async def test_without_ssh_forward_there_is_no_ssh_endpoint() -> None:
    forwards = [{"internal_port": 8888, "external_port": 41888}]
    provider, _, _ = make(
        instances_route([summary()], {INSTANCE_ID: detail(portForwards=forwards)})
    )
    (instance,) = await provider.list_instances()
    assert instance.ssh is None


async def test_instance_deleted_between_list_and_detail_is_skipped() -> None:
    provider, _, _ = make(instances_route([summary(), summary("gone-id")], {INSTANCE_ID: detail()}))
    assert [i.instance_id for i in await provider.list_instances()] == [INSTANCE_ID]


async def test_deleted_summary_needs_no_detail_call() -> None:
    provider, wire, _ = make(instances_route([summary(status="deleted")], {}))
    (instance,) = await provider.list_instances()
    assert instance.status is InstanceStatus.TERMINATED
    assert wire.calls == [("GET", "/instances")]


# -- launch ------------------------------------------------------------------------------------


async def test_launch_body_matches_the_v2_envelope() -> None:
    provider, wire, _ = make(
        reply(
            201,
            {
                "data": {
                    "type": "virtualmachine",
                    "id": INSTANCE_ID,
                    "name": "render",
                    "status": "creating",
                }
            },
        )
    )
    spec = LaunchSpec(
        image="pytorch/pytorch",
        label="render",
        disk_gb=20,
        ports=("22/tcp", "8888/http"),
        onstart="apt-get update\n\npip install torch\n",
        env={"HF_TOKEN": "hf abc"},
    )
    assert await provider.launch(rtx4090_offer(2), spec) == INSTANCE_ID
    request = wire.requests[0]
    assert (request.method, str(request.url)) == ("POST", f"{BASE}/instances")
    body = json.loads(request.content)
    assert body["data"]["type"] == "virtualmachine"
    attributes = body["data"]["attributes"]
    forwards = attributes.pop("port_forwards")
    assert [f["internal_port"] for f in forwards] == [22, 8888]
    assert all(20000 <= f["external_port"] < 60000 for f in forwards)
    assert len({f["external_port"] for f in forwards}) == 2
    write_files = attributes["cloud_init"].pop("write_files")
    assert write_files[0]["content"] == "export HF_TOKEN='hf abc'\n"
    assert attributes == {
        "name": "render",
        "type": "virtualmachine",
        "image": "ubuntu2404",
        "resources": {
            "vcpu_count": 16,
            "ram_gb": 64,
            "storage_gb": 100,
            "gpus": {"geforcertx4090-pcie-24gb": {"count": 2}},
        },
        "location_id": CHICAGO,
        "ssh_key": PUBLIC_KEY,
        "cloud_init": {"runcmd": ["apt-get update", "pip install torch"]},
    }


async def test_launch_without_public_key_is_a_configuration_error() -> None:
    provider, wire, _ = make(reply(201, {}), ssh_public_key="")
    with pytest.raises(ConfigurationError) as caught:
        await provider.launch(rtx4090_offer(), LaunchSpec(image=""))
    assert "ssh_public_key" in str(caught.value) and "[providers.tensordock]" in str(caught.value)
    assert wire.requests == []


async def test_launch_is_not_retried_on_server_error() -> None:
    provider, wire, _ = make(
        lambda request: httpx.Response(500, text="Internal Server Error"),
        policy=HttpPolicy(min_interval=0.0, max_attempts=4),
    )
    with pytest.raises(UnavailableError) as caught:
        await provider.launch(rtx4090_offer(), LaunchSpec(image=""))
    assert "Internal Server Error" in str(caught.value)
    assert len(wire.requests) == 1


# -- error shapes ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "body", "error_type", "text"),
    [
        (
            400,
            {"error": "Insufficient balance: at least $1 required"},
            RequestRejectedError,
            "Insufficient balance",
        ),
        (
            422,
            {"errors": [{"title": "Invalid", "detail": "storage_gb must be at least 100"}]},
            RequestRejectedError,
            "storage_gb must be at least 100",
        ),
        (
            409,
            {"message": "Instance must be stopped first"},
            RequestRejectedError,
            "must be stopped",
        ),
        (
            400,
            {"detail": "No available hostnode has 4x RTX 4090 free"},
            NoCapacityError,
            "No available hostnode",
        ),
        (401, {"error": {"message": "Invalid token"}}, AuthError, "Invalid token"),
        (403, "Forbidden", AuthError, "Forbidden"),
        (404, {"status": 404, "error": "Instance not found"}, NotFoundError, "Instance not found"),
    ],
)
async def test_error_shapes_become_typed_one_line_errors(
    status: int, body: Any, error_type: type[Exception], text: str
) -> None:
    def route(request: httpx.Request) -> httpx.Response:
        if isinstance(body, str):
            return httpx.Response(status, text=body)
        return httpx.Response(status, json=body)

    provider, _, _ = make(route)
    with pytest.raises(error_type) as caught:
        await provider.start(INSTANCE_ID)
    assert text in str(caught.value)
    assert "\n" not in str(caught.value) and TOKEN not in str(caught.value)


async def test_plain_text_server_error_on_read_is_retried_then_reported() -> None:
    provider, wire, _ = make(
        lambda request: httpx.Response(503, text="Service Unavailable: maintenance"),
        policy=HttpPolicy(min_interval=0.0, max_attempts=3, backoff_base=0.1),
    )
    with pytest.raises(UnavailableError) as caught:
        await provider.list_instances()
    assert "maintenance" in str(caught.value)
    assert len(wire.requests) == 3


async def test_html_error_page_is_not_dumped_into_the_message() -> None:
    page = "<html><head><title>502</title></head><body>" + "x" * 500 + "</body></html>"
    provider, _, _ = make(
        lambda request: httpx.Response(502, text=page), policy=HttpPolicy(max_attempts=1)
    )
    with pytest.raises(UnavailableError) as caught:
        await provider.destroy(INSTANCE_ID)
    assert "<html>" not in str(caught.value) and "Bad Gateway" in str(caught.value)


# -- actions -----------------------------------------------------------------------------------


async def test_start_stop_destroy_paths() -> None:
    provider, wire, _ = make(reply(200, {"data": {"status": "success"}}))
    await provider.start(INSTANCE_ID)
    await provider.stop(INSTANCE_ID)
    await provider.destroy(INSTANCE_ID)
    assert wire.calls == [
        ("POST", f"/instances/{INSTANCE_ID}/start"),
        ("POST", f"/instances/{INSTANCE_ID}/stop"),
        ("DELETE", f"/instances/{INSTANCE_ID}"),
    ]


async def test_restart_stops_waits_until_stopped_then_starts() -> None:
    statuses = iter(["running", "stopping", "stopping", "stopped"])

    def route(request: httpx.Request) -> httpx.Response:
        if request.method == "GET":
            return httpx.Response(200, json=detail(next(statuses)))
        return httpx.Response(200, json={"data": {"status": "success"}})

    provider, wire, clock = make(route)
    await provider.restart(INSTANCE_ID)
    assert [call for call in wire.calls if call[0] == "POST"] == [
        ("POST", f"/instances/{INSTANCE_ID}/stop"),
        ("POST", f"/instances/{INSTANCE_ID}/start"),
    ]
    assert wire.calls[-1] == ("POST", f"/instances/{INSTANCE_ID}/start")
    assert clock.sleeps == [3.0, 3.0]


async def test_restart_of_a_stopped_instance_only_starts_it() -> None:
    def route(request: httpx.Request) -> httpx.Response:
        if request.method == "GET":
            return httpx.Response(200, json=detail("stopped"))
        return httpx.Response(200, json={})

    provider, wire, _ = make(route)
    await provider.restart(INSTANCE_ID)
    assert wire.calls == [
        ("GET", f"/instances/{INSTANCE_ID}"),
        ("POST", f"/instances/{INSTANCE_ID}/start"),
    ]


async def test_restart_gives_up_when_the_vm_never_stops() -> None:
    def route(request: httpx.Request) -> httpx.Response:
        if request.method == "GET":
            return httpx.Response(200, json=detail("stopping"))
        return httpx.Response(200, json={})

    provider, wire, _ = make(route)
    with pytest.raises(UnavailableError) as caught:
        await provider.restart(INSTANCE_ID)
    assert "did not stop" in str(caught.value)
    assert ("POST", f"/instances/{INSTANCE_ID}/start") not in wire.calls


async def test_logs_are_unsupported_and_check_auth_lists_instances() -> None:
    provider, wire, _ = make(reply(200, {"data": {"instances": []}}))
    with pytest.raises(UnsupportedError):
        await provider.logs(INSTANCE_ID)
    await provider.check_auth()
    assert wire.calls == [("GET", "/instances")]


async def test_default_pacing_stays_under_100_requests_a_minute() -> None:
    provider, _, clock = make(reply(200, {"data": {"instances": []}}), policy=default_policy())
    for _ in range(3):
        await provider.list_instances()
    assert len(clock.sleeps) == 2
    assert 60.0 / clock.sleeps[0] < 100


def test_capabilities_and_protocol() -> None:
    provider, _, _ = make(reply(200, {}))
    assert isinstance(provider, Provider)
    caps = provider.capabilities
    assert (provider.name, provider.title) == ("tensordock", "TensorDock")
    assert caps.can_stop and caps.can_restart and caps.bills_storage_while_stopped
    assert not (caps.interruptible or caps.logs or caps.live_metrics)
    assert "stopped VMs keep billing storage" in caps.notes
