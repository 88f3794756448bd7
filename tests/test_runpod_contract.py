"""Wire-format contract of the RunPod adapter against hand-written GraphQL and REST v2 payloads."""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest

from computehub_tui.clock import ManualClock
from computehub_tui.domain.models import InstanceStatus, LaunchSpec, Offer, OfferQuery, PricingKind
from computehub_tui.domain.secret import Secret
from computehub_tui.providers.base import (
    AuthError,
    NoCapacityError,
    NotFoundError,
    ProtocolError,
    Provider,
    RateLimitedError,
    RequestRejectedError,
    UnavailableError,
)
from computehub_tui.providers.http import HttpPolicy
from computehub_tui.providers.runpod import RunpodProvider, graphql_error, ssh_endpoint

API_KEY = "rpa_CONTRACT0TEST0KEY0123456789"
GRAPHQL = "https://api.runpod.io/graphql"
REST = "https://api.runpod.io/v2"
CAPACITY = (
    "There are no longer any instances available with the requested specifications. "
    "Please refresh and try again."
)

Reply = httpx.Response | Callable[[httpx.Request], httpx.Response]


class FakeRunpod:
    """Answers each request with the next reply whose matcher fits, and records what was sent."""

    def __init__(self) -> None:
        self.requests: list[httpx.Request] = []
        self.routes: list[tuple[Callable[[httpx.Request], bool], list[Reply]]] = []

    def on(self, matcher: Callable[[httpx.Request], bool], *replies: Reply) -> None:
        self.routes.append((matcher, list(replies)))

    def on_graphql(self, root_field: str, *replies: Reply) -> None:
        self.on(
            lambda request: request.url.path == "/graphql" and root_field_of(request) == root_field,
            *replies,
        )

    def handle(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        for matcher, replies in self.routes:
            if matcher(request) and replies:
                reply = replies.pop(0) if len(replies) > 1 else replies[0]
                return reply(request) if callable(reply) else reply
        raise AssertionError(
            f"unexpected request {request.method} {request.url} {request.content[:200]!r}"
        )

    def graphql_bodies(self, root_field: str | None = None) -> list[dict[str, Any]]:
        bodies = [json.loads(r.content) for r in self.requests if r.url.path == "/graphql"]
        return [b for b in bodies if root_field is None or _root_field(b["query"]) == root_field]


def _root_field(document: str) -> str:
    match = re.search(r"\{\s*(\w+)", document)
    return match.group(1) if match else ""


def root_field_of(request: httpx.Request) -> str:
    return _root_field(json.loads(request.content)["query"])


def data(payload: dict[str, Any]) -> httpx.Response:
    return httpx.Response(200, json={"data": payload})


def gql_error(
    message: str, *, code: str | None = None, data_value: Any = None, status: int = 200
) -> httpx.Response:
    error: dict[str, Any] = {"message": message, "path": ["x"]}
    if code:
        error["extensions"] = {"code": code}
    return httpx.Response(status, json={"errors": [error], "data": data_value})


def problem(
    status: int, title: str, detail: str, headers: dict[str, str] | None = None
) -> httpx.Response:
    return httpx.Response(
        status,
        json={"title": title, "status": status, "detail": detail},
        headers={"Content-Type": "application/problem+json", **(headers or {})},
    )


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def fake() -> FakeRunpod:
    return FakeRunpod()


@pytest.fixture
def provider(fake: FakeRunpod, clock: ManualClock) -> RunpodProvider:
    client = httpx.AsyncClient(transport=httpx.MockTransport(fake.handle))
    policy = HttpPolicy(max_attempts=3, backoff_base=0.0, breaker_threshold=100)
    return RunpodProvider(
        client,
        Secret(API_KEY),
        graphql_url=GRAPHQL,
        rest_url=REST,
        clock=clock,
        policy=policy,
        logs_timeout=2.0,
    )


# -- identity ----------------------------------------------------------------------------------


async def test_adapter_implements_the_provider_protocol_with_runpod_capabilities(
    provider: RunpodProvider,
) -> None:
    assert isinstance(provider, Provider)
    assert (provider.name, provider.title) == ("runpod", "RunPod")
    caps = provider.capabilities
    assert caps.can_stop and caps.can_restart and caps.bills_storage_while_stopped
    assert caps.interruptible and caps.logs and caps.live_metrics
    assert any("spot" in note.lower() and "2026" in note for note in caps.notes)
    await provider.aclose()
    assert not provider.http.client.is_closed, "the caller owns the client"


# -- request shape -----------------------------------------------------------------------------


async def test_graphql_calls_post_query_and_variables_with_bearer_and_no_key_in_url(
    provider: RunpodProvider, fake: FakeRunpod
) -> None:
    fake.on_graphql("myself", data({"myself": {"id": "user_1"}}))
    await provider.check_auth()
    [request] = fake.requests
    assert request.method == "POST"
    assert str(request.url) == GRAPHQL
    assert API_KEY not in str(request.url) and "api_key" not in str(request.url)
    assert request.headers["Authorization"] == f"Bearer {API_KEY}"
    assert request.headers["Content-Type"] == "application/json"
    body = json.loads(request.content)
    assert set(body) == {"query", "variables"} and body["variables"] == {}
    assert "myself" in body["query"]


async def test_check_auth_with_empty_account_is_an_auth_error(
    provider: RunpodProvider, fake: FakeRunpod
) -> None:
    fake.on_graphql("myself", data({"myself": None}))
    with pytest.raises(AuthError):
        await provider.check_auth()


async def test_offers_ask_once_per_gpu_count_and_cloud_using_variables(
    provider: RunpodProvider, fake: FakeRunpod
) -> None:
    fake.on_graphql("gpuTypes", data({"gpuTypes": []}))
    await provider.list_offers(OfferQuery())
    inputs = {
        (b["variables"]["input"]["gpuCount"], b["variables"]["input"]["secureCloud"])
        for b in fake.graphql_bodies("gpuTypes")
    }
    assert inputs == {(c, s) for c in (1, 2, 4, 8) for s in (True, False)}
    assert len(fake.requests) == 8
    assert all(
        "$input" in b["query"] and "lowestPrice(input: $input)" in b["query"]
        for b in fake.graphql_bodies("gpuTypes")
    )

    fake.requests.clear()
    await provider.list_offers(OfferQuery(min_gpu_count=3))
    assert {b["variables"]["input"]["gpuCount"] for b in fake.graphql_bodies()} == {4, 8}


async def test_offer_requests_run_concurrently_but_at_most_four_at_a_time(
    clock: ManualClock,
) -> None:
    in_flight = 0
    peak = 0

    async def handler(request: httpx.Request) -> httpx.Response:
        nonlocal in_flight, peak
        in_flight += 1
        peak = max(peak, in_flight)
        for _ in range(30):
            await asyncio.sleep(0)
        in_flight -= 1
        return data({"gpuTypes": []})

    client = httpx.AsyncClient(transport=httpx.MockTransport(handler))
    provider = RunpodProvider(client, None, clock=clock)
    await provider.list_offers(OfferQuery())
    assert peak == 4


# -- offers ------------------------------------------------------------------------------------


def _gpu_type(
    gpu_id: str,
    display: str,
    vram: int,
    *,
    secure: float | None,
    community: float | None,
    lowest: dict[str, Any] | None,
) -> dict[str, Any]:
    return {
        "id": gpu_id,
        "displayName": display,
        "manufacturer": "Nvidia",
        "memoryInGb": vram,
        "secureCloud": secure is not None,
        "communityCloud": community is not None,
        "securePrice": secure,
        "communityPrice": community,
        "lowestPrice": lowest,
    }


def _lowest(
    price: float | None,
    stock: str | None,
    *,
    bid: float | None = None,
    vcpu: int = 32,
    memory: int = 250,
    country: str | None = "US",
) -> dict[str, Any]:
    return {
        "uninterruptablePrice": price,
        "minimumBidPrice": bid,
        "stockStatus": stock,
        "minVcpu": vcpu,
        "minMemory": memory,
        "availableGpuCounts": [1, 2],
        "countryCode": country,
    }


def _catalogue_for_two_secure_gpus(request: httpx.Request) -> httpx.Response:
    price_input = json.loads(request.content)["variables"]["input"]
    if price_input != {"gpuCount": 2, "secureCloud": True}:
        return data({"gpuTypes": []})
    return data(
        {
            "gpuTypes": [
                _gpu_type(
                    "NVIDIA H100 80GB HBM3",
                    "H100 SXM",
                    80,
                    secure=3.29,
                    community=2.69,
                    lowest=_lowest(2.99, "High", bid=1.55),
                ),
                _gpu_type(
                    "NVIDIA GeForce RTX 4090",
                    "RTX 4090",
                    24,
                    secure=0.69,
                    community=0.34,
                    lowest=_lowest(0.69, None),
                ),
                _gpu_type(
                    "NVIDIA A40",
                    "A40",
                    48,
                    secure=0.44,
                    community=0.35,
                    lowest=_lowest(0.44, "None"),
                ),
                _gpu_type(
                    "NVIDIA L4",
                    "L4",
                    24,
                    secure=0.43,
                    community=None,
                    lowest=_lowest(None, "Low", vcpu=12, memory=62, country=None),
                ),
                _gpu_type(
                    "NVIDIA B200",
                    "B200",
                    180,
                    secure=None,
                    community=None,
                    lowest=_lowest(None, "Low"),
                ),
                _gpu_type(
                    "NVIDIA RTX A6000", "RTX A6000", 48, secure=0.76, community=0.49, lowest=None
                ),
            ]
        }
    )


async def test_offers_price_per_gpu_times_count_and_skip_missing_stock_or_price(
    provider: RunpodProvider, fake: FakeRunpod, clock: ManualClock
) -> None:
    fake.on_graphql("gpuTypes", _catalogue_for_two_secure_gpus)
    offers = {offer.offer_id: offer for offer in await provider.list_offers(OfferQuery(disk_gb=40))}
    assert set(offers) == {
        "NVIDIA H100 80GB HBM3|SECURE|2",
        "NVIDIA H100 80GB HBM3|SECURE|2|SPOT",
        "NVIDIA L4|SECURE|2",
    }
    h100 = offers["NVIDIA H100 80GB HBM3|SECURE|2"]
    assert h100.gpu == "H100 SXM"
    assert h100.raw_gpu_name == "NVIDIA H100 80GB HBM3"
    assert h100.price_hour == pytest.approx(5.98)
    assert h100.price_per_gpu_hour == pytest.approx(2.99)
    assert h100.pricing is PricingKind.ON_DEMAND
    assert (h100.gpu_count, h100.vram_gb, h100.vcpus, h100.ram_gb, h100.disk_gb) == (
        2,
        80,
        32,
        250,
        40,
    )
    assert h100.location == "Secure Cloud (US)" and h100.country == "US"
    assert h100.reliability is None and h100.available is True
    assert h100.quoted_at == clock.now()
    assert h100.extra["stock_status"] == "High"
    assert (
        h100.extra["gpu_type_id"] == "NVIDIA H100 80GB HBM3"
        and h100.extra["cloud_type"] == "SECURE"
    )

    spot = offers["NVIDIA H100 80GB HBM3|SECURE|2|SPOT"]
    assert spot.pricing is PricingKind.INTERRUPTIBLE
    assert spot.price_hour == pytest.approx(3.10) and spot.min_bid == pytest.approx(3.10)

    l4 = offers["NVIDIA L4|SECURE|2"]
    assert l4.price_hour == pytest.approx(0.86), "falls back to the per-GPU securePrice"
    assert l4.location == "Secure Cloud" and l4.country == ""


async def test_offers_community_prices_fall_back_to_community_list_price(
    provider: RunpodProvider, fake: FakeRunpod
) -> None:
    def community_only(request: httpx.Request) -> httpx.Response:
        price_input = json.loads(request.content)["variables"]["input"]
        if price_input != {"gpuCount": 1, "secureCloud": False}:
            return data({"gpuTypes": []})
        return data(
            {
                "gpuTypes": [
                    _gpu_type(
                        "NVIDIA GeForce RTX 3090",
                        "RTX 3090",
                        24,
                        secure=0.43,
                        community=0.22,
                        lowest=_lowest(None, "Medium", country="RO"),
                    )
                ]
            }
        )

    fake.on_graphql("gpuTypes", community_only)
    [offer] = await provider.list_offers(OfferQuery())
    assert offer.offer_id == "NVIDIA GeForce RTX 3090|COMMUNITY|1"
    assert offer.price_hour == pytest.approx(0.22)
    assert offer.location == "Community Cloud (RO)"


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        (
            OfferQuery(pricing=(PricingKind.ON_DEMAND,)),
            {"NVIDIA H100 80GB HBM3|SECURE|2", "NVIDIA L4|SECURE|2"},
        ),
        (OfferQuery(pricing=(PricingKind.INTERRUPTIBLE,)), {"NVIDIA H100 80GB HBM3|SECURE|2|SPOT"}),
        (
            OfferQuery(max_price_hour=4.0),
            {"NVIDIA H100 80GB HBM3|SECURE|2|SPOT", "NVIDIA L4|SECURE|2"},
        ),
        (
            OfferQuery(min_vram_gb=40),
            {"NVIDIA H100 80GB HBM3|SECURE|2", "NVIDIA H100 80GB HBM3|SECURE|2|SPOT"},
        ),
        (OfferQuery(gpus=("L4",)), {"NVIDIA L4|SECURE|2"}),
        (
            OfferQuery(gpus=("H100",), pricing=(PricingKind.ON_DEMAND,)),
            {"NVIDIA H100 80GB HBM3|SECURE|2"},
        ),
        (OfferQuery(gpus=("H100 PCIe",)), set()),
        (
            OfferQuery(countries=("US",), pricing=(PricingKind.ON_DEMAND,)),
            {"NVIDIA H100 80GB HBM3|SECURE|2"},
        ),
        (OfferQuery(limit=1), {"NVIDIA L4|SECURE|2"}),
    ],
)
async def test_offer_query_filters_apply_client_side(
    provider: RunpodProvider, fake: FakeRunpod, query: OfferQuery, expected: set[str]
) -> None:
    fake.on_graphql("gpuTypes", _catalogue_for_two_secure_gpus)
    assert {offer.offer_id for offer in await provider.list_offers(query)} == expected


async def test_offers_fail_as_a_whole_when_one_request_fails(
    provider: RunpodProvider, fake: FakeRunpod
) -> None:
    def fail_for_eight(request: httpx.Request) -> httpx.Response:
        if json.loads(request.content)["variables"]["input"]["gpuCount"] == 8:
            return gql_error(
                "Something went wrong. Please try again later or contact support.",
                code="INTERNAL_SERVER_ERROR",
            )
        return data({"gpuTypes": []})

    fake.on_graphql("gpuTypes", fail_for_eight)
    with pytest.raises(UnavailableError, match="Something went wrong"):
        await provider.list_offers(OfferQuery())


# -- pods --------------------------------------------------------------------------------------

RUNNING_POD: dict[str, Any] = {
    "id": "ldl1dxirsim64n",
    "name": "chub-4090",
    "desiredStatus": "RUNNING",
    "costPerHr": 1.38,
    "gpuCount": 2,
    "imageName": "runpod/pytorch:2.4.0",
    "lastStatusChange": "Rented by User: Fri Jul 12 2024 10:00:00",
    "machineId": "s1b2c3",
    "podType": "RESERVED",
    "memoryInGb": 62,
    "vcpuCount": 16,
    "containerDiskInGb": 40,
    "volumeInGb": 0,
    "machine": {"gpuDisplayName": "RTX 4090", "location": "CZ"},
    "runtime": {
        "uptimeInSeconds": 3931,
        "ports": [
            {
                "ip": "10.0.0.5",
                "isIpPublic": False,
                "privatePort": 22,
                "publicPort": 22,
                "type": "tcp",
            },
            {
                "ip": "100.65.0.2",
                "isIpPublic": False,
                "privatePort": 8888,
                "publicPort": 60001,
                "type": "http",
            },
            {
                "ip": "213.173.0.10",
                "isIpPublic": True,
                "privatePort": 22,
                "publicPort": 40122,
                "type": "tcp",
            },
            {
                "ip": "213.173.0.10",
                "isIpPublic": True,
                "privatePort": 6006,
                "publicPort": 40123,
                "type": "tcp",
            },
        ],
        "gpus": [
            {"id": "GPU-a", "gpuUtilPercent": 87, "memoryUtilPercent": 50},
            {"id": "GPU-b", "gpuUtilPercent": 43, "memoryUtilPercent": 25},
        ],
        "container": {"cpuPercent": 12, "memoryPercent": 30},
    },
}


def _pod(**changes: Any) -> dict[str, Any]:
    return {**RUNNING_POD, **changes}


async def test_running_pod_parses_status_ssh_ports_uptime_and_metrics(
    provider: RunpodProvider, fake: FakeRunpod, clock: ManualClock
) -> None:
    fake.on_graphql("myself", data({"myself": {"pods": [RUNNING_POD]}}))
    fake.on_graphql(
        "gpuTypes",
        data(
            {
                "gpuTypes": [
                    {"id": "NVIDIA GeForce RTX 4090", "displayName": "RTX 4090", "memoryInGb": 24}
                ]
            }
        ),
    )
    [pod] = await provider.list_instances()
    assert pod.key == "runpod:ldl1dxirsim64n"
    assert (pod.status, pod.provider_status) == (InstanceStatus.RUNNING, "RUNNING")
    assert (pod.label, pod.gpu, pod.gpu_count, pod.price_hour) == ("chub-4090", "RTX 4090", 2, 1.38)
    assert (pod.location, pod.image) == ("CZ", "runpod/pytorch:2.4.0")
    assert pod.ssh is not None and pod.ssh.command == "ssh -p 40122 root@213.173.0.10"
    assert pod.ports == {"22/tcp": "213.173.0.10:40122", "6006/tcp": "213.173.0.10:40123"}
    assert pod.started_at == clock.now() - 3931
    assert pod.metrics is not None
    assert pod.metrics.gpu_util == (87, 43)
    assert pod.metrics.vram_total_gb == (24, 24)
    assert pod.metrics.vram_used_gb == (12.0, 6.0)
    assert (pod.metrics.cpu_pct, pod.metrics.ram_pct) == (12, 30)
    assert pod.status_message.startswith("Rented by User")

    pods_query = fake.graphql_bodies("myself")[0]["query"]
    for field in (
        "desiredStatus",
        "privatePort",
        "isIpPublic",
        "gpuUtilPercent",
        "memoryUtilPercent",
        "cpuPercent",
    ):
        assert field in pods_query
    await provider.list_instances()
    assert len(fake.graphql_bodies("gpuTypes")) == 1, "the VRAM catalogue is fetched once"


async def test_metrics_survive_a_failed_vram_catalogue(
    provider: RunpodProvider, fake: FakeRunpod
) -> None:
    fake.on_graphql("myself", data({"myself": {"pods": [RUNNING_POD]}}))
    fake.on_graphql(
        "gpuTypes", gql_error('Cannot query field "memoryInGb" on type "GpuType".', status=400)
    )
    [pod] = await provider.list_instances()
    assert pod.metrics is not None and pod.metrics.gpu_util == (87, 43)
    assert pod.metrics.vram_used_gb == () and pod.metrics.vram_pct is None


async def test_vram_comes_from_offers_already_listed(
    provider: RunpodProvider, fake: FakeRunpod
) -> None:
    fake.on_graphql(
        "gpuTypes",
        data(
            {
                "gpuTypes": [
                    _gpu_type(
                        "NVIDIA GeForce RTX 4090",
                        "RTX 4090",
                        24,
                        secure=0.69,
                        community=0.34,
                        lowest=_lowest(0.69, "High"),
                    )
                ]
            }
        ),
    )
    await provider.list_offers(OfferQuery())
    fake.requests.clear()
    fake.on_graphql("myself", data({"myself": {"pods": [RUNNING_POD]}}))
    [pod] = await provider.list_instances()
    assert pod.metrics is not None and pod.metrics.vram_used_gb == (12.0, 6.0)
    assert fake.graphql_bodies("gpuTypes") == []


@pytest.mark.parametrize(
    ("changes", "status"),
    [
        ({"runtime": None}, InstanceStatus.STARTING),
        ({"runtime": None, "machine": None, "machineId": None}, InstanceStatus.PROVISIONING),
        ({"desiredStatus": "EXITED", "runtime": None}, InstanceStatus.STOPPED),
        ({"desiredStatus": "TERMINATED", "runtime": None}, InstanceStatus.TERMINATED),
        ({"desiredStatus": "CREATED", "runtime": None}, InstanceStatus.PROVISIONING),
        ({"desiredStatus": "RESTARTING", "runtime": None}, InstanceStatus.STARTING),
        ({"desiredStatus": "PAUSED", "runtime": None}, InstanceStatus.STOPPED),
        ({"desiredStatus": "MIGRATING", "runtime": None}, InstanceStatus.UNKNOWN),
    ],
)
async def test_pod_status_mapping(
    provider: RunpodProvider, fake: FakeRunpod, changes: dict[str, Any], status: InstanceStatus
) -> None:
    fake.on_graphql("myself", data({"myself": {"pods": [_pod(**changes)]}}))
    [pod] = await provider.list_instances()
    assert pod.status is status
    assert pod.provider_status == _pod(**changes)["desiredStatus"]
    assert pod.metrics is None and pod.ssh is None and pod.started_at is None and pod.ports == {}


async def test_pod_without_machine_has_unknown_gpu(
    provider: RunpodProvider, fake: FakeRunpod
) -> None:
    fake.on_graphql("myself", data({"myself": {"pods": [_pod(runtime=None, machine=None)]}}))
    [pod] = await provider.list_instances()
    assert pod.gpu == "unknown" and pod.location == ""


async def test_h100_sxm_pod_display_name_is_canonical(
    provider: RunpodProvider, fake: FakeRunpod
) -> None:
    fake.on_graphql(
        "myself",
        data({"myself": {"pods": [_pod(runtime=None, machine={"gpuDisplayName": "H100 SXM"})]}}),
    )
    [pod] = await provider.list_instances()
    assert pod.gpu == "H100 SXM"


@pytest.mark.parametrize(
    ("ports", "expected"),
    [
        ([], None),
        (
            [
                {
                    "ip": "1.2.3.4",
                    "isIpPublic": True,
                    "privatePort": 22,
                    "publicPort": 40022,
                    "type": "tcp",
                }
            ],
            ("1.2.3.4", 40022),
        ),
        (
            [
                {
                    "ip": "10.1.1.1",
                    "isIpPublic": False,
                    "privatePort": 22,
                    "publicPort": 22,
                    "type": "tcp",
                }
            ],
            None,
        ),
        (
            [
                {
                    "ip": "1.2.3.4",
                    "isIpPublic": True,
                    "privatePort": 22,
                    "publicPort": 40022,
                    "type": "http",
                }
            ],
            None,
        ),
        (
            [
                {
                    "ip": "1.2.3.4",
                    "isIpPublic": True,
                    "privatePort": 2222,
                    "publicPort": 40022,
                    "type": "tcp",
                }
            ],
            None,
        ),
        (
            [
                {
                    "ip": None,
                    "isIpPublic": True,
                    "privatePort": 22,
                    "publicPort": 40022,
                    "type": "tcp",
                }
            ],
            None,
        ),
    ],
)
def test_ssh_endpoint_needs_public_tcp_port_22(
    ports: list[dict[str, Any]], expected: tuple[str, int] | None
) -> None:
    endpoint = ssh_endpoint({"ports": ports})
    assert (None if endpoint is None else (endpoint.host, endpoint.port)) == expected


def test_ssh_endpoint_of_a_pod_without_runtime_is_none() -> None:
    assert ssh_endpoint(None) is None


# -- launch and lifecycle ----------------------------------------------------------------------


def _offer(pricing: PricingKind = PricingKind.ON_DEMAND, price: float = 5.98) -> Offer:
    suffix = "|SPOT" if pricing is PricingKind.INTERRUPTIBLE else ""
    return Offer(
        provider="runpod",
        offer_id=f"NVIDIA H100 80GB HBM3|SECURE|2{suffix}",
        gpu="H100 SXM",
        gpu_count=2,
        vram_gb=80,
        vcpus=32,
        ram_gb=250,
        disk_gb=40,
        price_hour=price,
        pricing=pricing,
        location="Secure Cloud",
        reliability=None,
        available=True,
        quoted_at=0.0,
        min_bid=price if pricing is PricingKind.INTERRUPTIBLE else None,
        extra={"gpu_type_id": "NVIDIA H100 80GB HBM3", "cloud_type": "SECURE"},
    )


SPEC = LaunchSpec(
    image="runpod/pytorch:2.4.0",
    disk_gb=40,
    label="train-h100",
    env={"HF_TOKEN": "hf_abc"},
    ports=("22/tcp",),
    onstart="pip install -r req.txt\npython train.py",
    jupyter=True,
)


async def test_launch_deploys_on_demand_with_the_documented_input(
    provider: RunpodProvider, fake: FakeRunpod
) -> None:
    fake.on_graphql(
        "podFindAndDeployOnDemand",
        data({"podFindAndDeployOnDemand": {"id": "newpod123", "desiredStatus": "RUNNING"}}),
    )
    assert await provider.launch(_offer(), SPEC) == "newpod123"
    [body] = fake.graphql_bodies()
    assert body["query"].lstrip().startswith("mutation")
    assert "PodFindAndDeployOnDemandInput!" in body["query"]
    pod_input = body["variables"]["input"]
    assert pod_input == {
        "cloudType": "SECURE",
        "gpuTypeId": "NVIDIA H100 80GB HBM3",
        "gpuCount": 2,
        "name": "train-h100",
        "imageName": "runpod/pytorch:2.4.0",
        "containerDiskInGb": 40,
        "volumeInGb": 0,
        "ports": "8888/http,22/tcp",
        "env": [{"key": "HF_TOKEN", "value": "hf_abc"}],
        "dockerArgs": "bash -c 'pip install -r req.txt\npython train.py'",
        "startSsh": True,
        "startJupyter": True,
        "supportPublicIp": True,
    }


async def test_launch_without_image_is_refused_before_any_request(
    provider: RunpodProvider, fake: FakeRunpod
) -> None:
    with pytest.raises(RequestRejectedError, match="image"):
        await provider.launch(_offer(), LaunchSpec(image=" "))
    assert fake.requests == []


async def test_launch_capacity_error_with_http_200_is_no_capacity(
    provider: RunpodProvider, fake: FakeRunpod
) -> None:
    fake.on_graphql(
        "podFindAndDeployOnDemand",
        gql_error(CAPACITY, data_value={"podFindAndDeployOnDemand": None}),
    )
    with pytest.raises(NoCapacityError, match="no longer any instances available"):
        await provider.launch(_offer(), SPEC)


async def test_spot_launch_bids_per_gpu(provider: RunpodProvider, fake: FakeRunpod) -> None:
    fake.on_graphql("podRentInterruptable", data({"podRentInterruptable": {"id": "spot42"}}))
    spec = LaunchSpec(image="runpod/pytorch:2.4.0", bid_price=3.2)
    assert await provider.launch(_offer(PricingKind.INTERRUPTIBLE, price=3.1), spec) == "spot42"
    [body] = fake.graphql_bodies()
    assert "PodRentInterruptableInput!" in body["query"]
    assert body["variables"]["input"]["bidPerGpu"] == pytest.approx(1.6)
    assert body["variables"]["input"]["gpuTypeId"] == "NVIDIA H100 80GB HBM3"


async def test_spot_launch_failure_says_spot_may_be_gone(
    provider: RunpodProvider, fake: FakeRunpod
) -> None:
    fake.on_graphql(
        "podRentInterruptable",
        gql_error('Cannot query field "podRentInterruptable" on type "Mutation".'),
    )
    with pytest.raises(RequestRejectedError, match="may no longer offer them") as caught:
        await provider.launch(_offer(PricingKind.INTERRUPTIBLE, price=3.1), LaunchSpec(image="img"))
    assert "podRentInterruptable" in str(caught.value)
    assert fake.graphql_bodies()[0]["variables"]["input"]["bidPerGpu"] == pytest.approx(1.55)


async def test_stop_sends_pod_id(provider: RunpodProvider, fake: FakeRunpod) -> None:
    fake.on_graphql("podStop", data({"podStop": {"id": "p1", "desiredStatus": "EXITED"}}))
    await provider.stop("p1")
    [body] = fake.graphql_bodies()
    assert "PodStopInput!" in body["query"] and body["variables"] == {"input": {"podId": "p1"}}


async def test_start_resumes_with_the_pods_own_gpu_count(
    provider: RunpodProvider, fake: FakeRunpod
) -> None:
    fake.on_graphql(
        "pod",
        data(
            {
                "pod": {
                    "id": "p1",
                    "desiredStatus": "EXITED",
                    "gpuCount": 4,
                    "podType": "RESERVED",
                    "costPerHr": 2.0,
                    "machineId": "m",
                    "runtime": None,
                }
            }
        ),
    )
    fake.on_graphql("podResume", data({"podResume": {"id": "p1", "desiredStatus": "RUNNING"}}))
    await provider.start("p1")
    lookup, resume = fake.graphql_bodies()
    assert lookup["variables"] == {"input": {"podId": "p1"}} and "PodFilter!" in lookup["query"]
    assert "PodResumeInput!" in resume["query"]
    assert resume["variables"] == {"input": {"podId": "p1", "gpuCount": 4}}


async def test_start_of_a_spot_pod_bids_to_resume(
    provider: RunpodProvider, fake: FakeRunpod
) -> None:
    fake.on_graphql(
        "pod",
        data(
            {
                "pod": {
                    "id": "p1",
                    "desiredStatus": "EXITED",
                    "gpuCount": 2,
                    "podType": "INTERRUPTABLE",
                    "costPerHr": 1.2,
                }
            }
        ),
    )
    fake.on_graphql(
        "podBidResume", data({"podBidResume": {"id": "p1", "desiredStatus": "RUNNING"}})
    )
    await provider.start("p1")
    resume = fake.graphql_bodies("podBidResume")[0]
    assert resume["variables"] == {"input": {"podId": "p1", "gpuCount": 2, "bidPerGpu": 0.6}}


async def test_start_of_a_missing_pod_is_not_found(
    provider: RunpodProvider, fake: FakeRunpod
) -> None:
    fake.on_graphql("pod", data({"pod": None}))
    with pytest.raises(NotFoundError):
        await provider.start("gone")
    assert len(fake.requests) == 1


async def test_destroy_selects_no_subfields(provider: RunpodProvider, fake: FakeRunpod) -> None:
    fake.on_graphql("podTerminate", data({"podTerminate": None}))
    await provider.destroy("p1")
    [body] = fake.graphql_bodies()
    assert "PodTerminateInput!" in body["query"]
    assert re.search(r"podTerminate\(input: \$input\)\s*\}", body["query"])
    assert not re.search(r"podTerminate\([^)]*\)\s*\{", body["query"])
    assert body["variables"] == {"input": {"podId": "p1"}}


async def test_restart_posts_the_v2_action(provider: RunpodProvider, fake: FakeRunpod) -> None:
    fake.on(
        lambda r: r.url.path == "/v2/pods/p1/action",
        httpx.Response(200, json={"id": "p1", "status": "RUNNING"}),
    )
    await provider.restart("p1")
    [request] = fake.requests
    assert (request.method, str(request.url)) == ("POST", f"{REST}/pods/p1/action")
    assert json.loads(request.content) == {"action": "restart"}
    assert request.headers["Authorization"] == f"Bearer {API_KEY}"


async def test_restart_conflict_names_the_pods_state(
    provider: RunpodProvider, fake: FakeRunpod
) -> None:
    fake.on(
        lambda r: r.url.path == "/v2/pods/p1/action",
        problem(409, "Conflict", "action restart not allowed in status EXITED"),
    )
    fake.on_graphql(
        "pod",
        data({"pod": {"id": "p1", "desiredStatus": "EXITED", "gpuCount": 1, "runtime": None}}),
    )
    with pytest.raises(RequestRejectedError) as caught:
        await provider.restart("p1")
    message = str(caught.value)
    assert message.startswith("runpod: cannot restart a pod that is stopped; start it instead")
    assert "Conflict: action restart not allowed in status EXITED" in message
    assert "\n" not in message


# -- errors ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("message", "code", "error_type"),
    [
        (CAPACITY, None, NoCapacityError),
        (
            "Something went wrong. Please try again later or contact support.",
            "INTERNAL_SERVER_ERROR",
            UnavailableError,
        ),
        (
            "Something went wrong. Please try again later or contact support.",
            None,
            UnavailableError,
        ),
        ("Unauthorized", None, AuthError),
        ("Invalid API key provided", None, AuthError),
        ("pod not found", None, NotFoundError),
        ("Invalid gpuTypeId: NVIDIA GTX 9999", None, RequestRejectedError),
    ],
)
async def test_graphql_errors_with_http_200_become_typed_errors(
    provider: RunpodProvider,
    fake: FakeRunpod,
    message: str,
    code: str | None,
    error_type: type[Exception],
) -> None:
    fake.on_graphql("podStop", gql_error(message, code=code))
    with pytest.raises(error_type) as caught:
        await provider.stop("p1")
    assert type(caught.value) is error_type
    assert message.split(".")[0] in str(caught.value)
    assert len(fake.requests) == 1


def test_graphql_error_in_a_5xx_reply_is_unavailable() -> None:
    assert isinstance(graphql_error({"message": "boom"}, http_status=502), UnavailableError)


async def test_data_null_without_errors_is_a_protocol_error(
    provider: RunpodProvider, fake: FakeRunpod
) -> None:
    fake.on_graphql("myself", httpx.Response(200, json={"data": None}))
    with pytest.raises(ProtocolError):
        await provider.list_instances()


async def test_malformed_json_is_a_protocol_error(
    provider: RunpodProvider, fake: FakeRunpod
) -> None:
    fake.on_graphql("myself", httpx.Response(200, content=b"<html>Bad gateway</html>"))
    with pytest.raises(ProtocolError, match="malformed JSON"):
        await provider.list_instances()


async def test_launch_reply_without_pod_id_is_a_protocol_error(
    provider: RunpodProvider, fake: FakeRunpod
) -> None:
    fake.on_graphql("podFindAndDeployOnDemand", data({"podFindAndDeployOnDemand": None}))
    with pytest.raises(ProtocolError, match="no pod id"):
        await provider.launch(_offer(), SPEC)


async def test_http_401_is_an_auth_error_without_the_key(
    provider: RunpodProvider, fake: FakeRunpod
) -> None:
    fake.on_graphql(
        "myself", httpx.Response(401, json={"errors": [{"message": f"invalid api key {API_KEY}"}]})
    )
    with pytest.raises(AuthError) as caught:
        await provider.check_auth()
    assert API_KEY not in str(caught.value)
    assert "401" in str(caught.value)
    assert len(fake.requests) == 1


async def test_v2_rate_limit_reports_retry_after(
    provider: RunpodProvider, fake: FakeRunpod
) -> None:
    fake.on(
        lambda r: r.url.path == "/v2/pods/p1/action",
        problem(
            429,
            "Too Many Requests",
            "rate limit exceeded for the minute window",
            {"Retry-After": "30"},
        ),
    )
    with pytest.raises(RateLimitedError) as caught:
        await provider.restart("p1")
    assert caught.value.retry_after == 30
    assert "rate limit exceeded for the minute window" in str(caught.value)
    assert len(fake.requests) == 1
    assert provider.http.health == "rate-limited"


async def test_v2_validation_problem_becomes_one_line(
    provider: RunpodProvider, fake: FakeRunpod
) -> None:
    body = {
        "title": "Unprocessable Entity",
        "status": 422,
        "detail": "validation failed",
        "errors": ["$: additional properties 'bogus' not allowed"],
    }
    fake.on(
        lambda r: r.url.path == "/v2/pods/p1/action",
        httpx.Response(422, json=body, headers={"Content-Type": "application/problem+json"}),
    )
    with pytest.raises(RequestRejectedError) as caught:
        await provider.restart("p1")
    assert str(caught.value) == (
        "runpod: request rejected (HTTP 422: Unprocessable Entity: validation failed "
        "($: additional properties 'bogus' not allowed))"
    )


async def test_mutation_is_not_retried_on_5xx(provider: RunpodProvider, fake: FakeRunpod) -> None:
    fake.on_graphql("podFindAndDeployOnDemand", httpx.Response(503, text="upstream unavailable"))
    with pytest.raises(UnavailableError, match="503"):
        await provider.launch(_offer(), SPEC)
    assert len(fake.requests) == 1


async def test_read_only_query_is_retried_on_5xx(
    provider: RunpodProvider, fake: FakeRunpod
) -> None:
    fake.on_graphql(
        "myself", httpx.Response(503, text="upstream unavailable"), data({"myself": {"id": "u"}})
    )
    await provider.check_auth()
    assert len(fake.requests) == 2


# -- logs --------------------------------------------------------------------------------------


def _event(line: str, source: str = "container", ts: str = "2026-08-01T10:00:00Z") -> str:
    return f"id: {ts}\ndata: {json.dumps({'source': source, 'line': line, 'ts': ts})}\n\n"


async def test_logs_parse_server_sent_events(provider: RunpodProvider, fake: FakeRunpod) -> None:
    stream = (
        ": keep-alive\n\n"
        + _event("[boot] pulling image", "system")
        + _event("step 1 loss 2.1")
        + "event: log\ndata: plain text line\n\n"
        + _event("step 2 loss 1.9").rstrip("\n")
    )
    fake.on(
        lambda r: r.url.path == "/v2/pods/p1/logs",
        httpx.Response(200, content=stream.encode(), headers={"Content-Type": "text/event-stream"}),
    )
    text = await provider.logs("p1", tail=50)
    assert text.splitlines() == [
        "[boot] pulling image",
        "step 1 loss 2.1",
        "plain text line",
        "step 2 loss 1.9",
    ]
    [request] = fake.requests
    assert request.method == "GET" and request.url.params["tail"] == "50"
    assert request.headers["Accept"] == "text/event-stream"
    assert request.headers["Authorization"] == f"Bearer {API_KEY}"
    assert API_KEY not in str(request.url)


async def test_logs_tail_is_capped_at_the_documented_maximum(
    provider: RunpodProvider, fake: FakeRunpod
) -> None:
    fake.on(lambda r: r.url.path == "/v2/pods/p1/logs", httpx.Response(200, content=b""))
    assert await provider.logs("p1", tail=100_000) == ""
    assert fake.requests[0].url.params["tail"] == "5000"


async def test_logs_problem_json_becomes_one_readable_line(
    provider: RunpodProvider, fake: FakeRunpod
) -> None:
    fake.on(lambda r: r.url.path == "/v2/pods/p1/logs", problem(404, "Not Found", "pod not found"))
    with pytest.raises(NotFoundError) as caught:
        await provider.logs("p1")
    assert str(caught.value) == "runpod: not found (HTTP 404: Not Found: pod not found)"


class EndlessStream(httpx.AsyncByteStream):
    """A follow-mode SSE body: some events, then silence that never ends."""

    def __init__(self, events: list[str]) -> None:
        self.events = events
        self.closed = False

    async def __aiter__(self) -> AsyncIterator[bytes]:
        for event in self.events:
            yield event.encode()
        await asyncio.Event().wait()

    async def aclose(self) -> None:
        self.closed = True


async def test_logs_stop_reading_a_following_stream_once_the_tail_arrived(
    provider: RunpodProvider, fake: FakeRunpod
) -> None:
    body = EndlessStream([_event(f"line {n}") for n in range(3)])
    fake.on(
        lambda r: r.url.path == "/v2/pods/p1/logs",
        httpx.Response(200, stream=body, headers={"Content-Type": "text/event-stream"}),
    )
    text = await asyncio.wait_for(provider.logs("p1", tail=3), timeout=1.0)
    assert text == "line 0\nline 1\nline 2"
    assert body.closed


async def test_logs_return_what_arrived_when_a_stream_goes_quiet(
    fake: FakeRunpod, clock: ManualClock
) -> None:
    client = httpx.AsyncClient(transport=httpx.MockTransport(fake.handle))
    provider = RunpodProvider(client, Secret(API_KEY), clock=clock, logs_timeout=0.2)
    fake.on(
        lambda r: r.url.path == "/v2/pods/p1/logs",
        httpx.Response(
            200,
            stream=EndlessStream([_event("only line")]),
            headers={"Content-Type": "text/event-stream"},
        ),
    )
    assert await asyncio.wait_for(provider.logs("p1", tail=100), timeout=2.0) == "only line"


async def test_logs_with_zero_tail_sends_nothing(
    provider: RunpodProvider, fake: FakeRunpod
) -> None:
    assert await provider.logs("p1", tail=0) == ""
    assert fake.requests == []
