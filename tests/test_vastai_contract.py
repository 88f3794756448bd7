"""Vast adapter against hand-written wire payloads: request shapes, parsing, statuses and errors."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import httpx
import pytest

from computehub_tui.clock import ManualClock
from computehub_tui.domain.models import (
    InstanceStatus,
    LaunchSpec,
    Offer,
    OfferQuery,
    PricingKind,
    SshEndpoint,
)
from computehub_tui.domain.secret import Secret
from computehub_tui.providers.base import (
    AuthError,
    NoCapacityError,
    NotFoundError,
    ProtocolError,
    Provider,
    ProviderError,
    RateLimitedError,
    RequestRejectedError,
    UnavailableError,
)
from computehub_tui.providers.http import HttpPolicy
from computehub_tui.providers.vastai import (
    VAST_ENDPOINT_INTERVALS,
    VastProvider,
    map_status,
    ssh_endpoint,
    vast_spellings,
)

KEY = "vast-test-key-0123456789abcdef"
T = TypeVar("T")
Factory = Callable[..., VastProvider]
Reply = tuple[int, Any] | Exception


class Script:
    """A MockTransport handler that answers from a list of replies (the last one repeats)."""

    def __init__(self, *replies: Reply) -> None:
        self.replies = list(replies)
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        reply = self.replies.pop(0) if len(self.replies) > 1 else self.replies[0]
        if isinstance(reply, Exception):
            raise reply
        status, body = reply
        if isinstance(body, (dict, list)):
            return httpx.Response(status, json=body)
        return httpx.Response(status, text=body, headers={"content-type": "text/plain"})

    def body(self, index: int = -1) -> Any:
        return json.loads(self.requests[index].content)


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



@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def vast(clients: list[httpx.AsyncClient], clock: ManualClock) -> Factory:
    def build(script: Script, policy: HttpPolicy | None = None) -> VastProvider:
        client = httpx.AsyncClient(transport=httpx.MockTransport(script))
        clients.append(client)
        return VastProvider(client, Secret(KEY), clock=clock, policy=policy)

    return build


def no_pacing(**overrides: Any) -> HttpPolicy:
    return HttpPolicy(endpoint_intervals={}, **overrides)


# -- realistic payloads ---------------------------------------------------------------------

OFFER_4090: dict[str, Any] = {
    "id": 18812345, "machine_id": 40211, "host_id": 1234,
    "gpu_name": "RTX 4090", "num_gpus": 1, "gpu_ram": 24564, "gpu_total_ram": 24564,
    "cpu_cores": 32, "cpu_cores_effective": 8.0, "cpu_ram": 129000,
    "disk_space": 180.0, "inet_down": 850.3, "inet_up": 720.1,
    "dph_base": 0.32, "dph_total": 0.3411, "min_bid": 0.21, "storage_cost": 0.15,
    "reliability": 0.995, "verification": "verified", "rentable": True, "rented": False,
    "geolocation": "Oslo, NO", "cuda_max_good": 12.4, "dlperf": 71.2, "total_flops": 82.3,
    "direct_port_count": 100, "hosting_type": 0,
    "search": {"gpuCostPerHour": 0.32, "diskHour": 0.0041, "totalHour": 0.3411},
}
OFFER_A100_NULLS: dict[str, Any] = {
    "id": 18812400, "machine_id": 50001, "host_id": 77, "gpu_name": "A100 SXM4", "num_gpus": 8,
    "gpu_ram": 81920, "cpu_cores": 128, "cpu_cores_effective": 128.0, "cpu_ram": 1031000,
    "disk_space": 2000.0, "dph_base": 9.6, "dph_total": None, "storage_cost": 0.18, "min_bid": None,
    "reliability": None, "reliability2": 0.991, "geolocation": "California, United States",
    "cuda_max_good": None, "inet_down": None, "rentable": True, "rented": False, "search": None,
}
OFFER_L4_NO_PLACE: dict[str, Any] = {
    "id": 18812500, "gpu_name": "L4", "num_gpus": 2, "gpu_ram": 23034, "cpu_cores": 16,
    "cpu_cores_effective": 8.0, "cpu_ram": None, "disk_space": None, "dph_total": 0.61,
    "min_bid": 0.3, "storage_cost": None, "reliability": 0.97, "geolocation": None,
    "rentable": True, "rented": None,
}
OFFER_NULL_CORES = {**OFFER_4090, "id": 18812600, "cpu_cores": None}
OFFER_NO_PRICE = {**OFFER_4090, "id": 18812700, "dph_total": None, "dph_base": None}
OFFER_NO_GPU_NAME = {**OFFER_4090, "id": 18812800, "gpu_name": None}

INSTANCE_RUNNING: dict[str, Any] = {
    "id": 9104221, "machine_id": 40211, "host_id": 1234, "actual_status": "running",
    "intended_status": "running", "cur_state": "running", "next_state": "running",
    "status_msg": "success, running pytorch/pytorch:2.4.0-cuda12.4-cudnn9-runtime/jupyter",
    "label": "llama-ft", "image_uuid": "pytorch/pytorch:2.4.0-cuda12.4-cudnn9-runtime",
    "image_runtype": "jupyter jupyter_direc ssh_direc ssh_proxy",
    "num_gpus": 2, "gpu_name": "RTX 4090", "gpu_ram": 24564, "gpu_totalram": 49128,
    "gpu_util": 87.5, "gpu_temp": 71.0, "vmem_usage": 18.2, "cpu_util": 34.0,
    "mem_usage": 12.6, "mem_limit": 63.0, "disk_space": 40.0, "storage_cost": 0.15,
    "public_ipaddr": "203.0.113.7", "ssh_host": "ssh6.vast.ai", "ssh_port": 10600, "ssh_idx": "6",
    "ports": {
        "22/tcp": [{"HostIp": "0.0.0.0", "HostPort": "41022"}],
        "8888/tcp": [{"HostIp": "0.0.0.0", "HostPort": "41023"}],
    },
    "start_date": 1789990000.5, "dph_base": 0.674, "dph_total": 0.6823, "geolocation": "Oslo, NO",
    "is_bid": False,
}
INSTANCE_PROVISIONING: dict[str, Any] = {
    "id": 9104300, "actual_status": None, "intended_status": "running", "cur_state": "stopped",
    "status_msg": None, "label": None, "image_uuid": "vastai/base-image",
    "image_runtype": "ssh ssh_proxy",
    "num_gpus": 1, "gpu_name": "H100 SXM", "gpu_ram": 81559, "gpu_util": None, "gpu_temp": None,
    "vmem_usage": None, "cpu_util": None, "mem_usage": None, "mem_limit": None, "ports": None,
    "public_ipaddr": None, "ssh_host": "ssh4.vast.ai", "ssh_port": 22340, "start_date": None,
    "dph_total": None, "dph_base": 2.1, "search": {"diskHour": 0.0125}, "geolocation": None,
}
INSTANCE_STOPPED_PROXY: dict[str, Any] = {
    "id": 9104400, "actual_status": "stopped", "intended_status": "stopped",
    "status_msg": "stopped",
    "label": "old", "num_gpus": 1, "gpu_name": "RTX 3090", "gpu_ram": 24576, "gpu_util": 0.0,
    "ports": {}, "public_ipaddr": "203.0.113.9", "ssh_host": "ssh2.vast.ai", "ssh_port": 30100,
    "image_runtype": "ssh ssh_direc ssh_proxy", "dph_total": 0.25, "disk_space": 100.0,
    "storage_cost": 0.072, "instance": {"diskHour": 0.01},
}


def _offer(**overrides: Any) -> Offer:
    fields: dict[str, Any] = {
        "provider": "vast", "offer_id": "18812345", "gpu": "RTX 4090", "gpu_count": 1,
        "vram_gb": 24, "vcpus": 8.0, "ram_gb": 129.0, "disk_gb": 180.0, "price_hour": 0.3411,
        "pricing": PricingKind.ON_DEMAND, "location": "Oslo, NO", "reliability": 0.995,
        "available": True,
        "quoted_at": 0.0, "min_bid": 0.21, "extra": {"ask_id": 18812345},
    }
    fields.update(overrides)
    return Offer(**fields)


# -- protocol and policy ----------------------------------------------------------------------


def test_adapter_satisfies_the_provider_protocol(vast: Factory) -> None:
    provider = vast(Script((200, {})))
    assert isinstance(provider, Provider)
    assert provider.name == "vast" and provider.title == "Vast.ai"
    assert provider.capabilities.bills_storage_while_stopped and provider.capabilities.interruptible
    assert any("storage" in note for note in provider.capabilities.notes)


def test_default_policy_spaces_calls_per_vast_thresholds(vast: Factory) -> None:
    intervals = vast(Script((200, {}))).http.policy.endpoint_intervals
    assert intervals == VAST_ENDPOINT_INTERVALS
    assert intervals["PUT /api/v0/asks/{id}/"] == 4.5
    assert intervals["DELETE /api/v0/instances/{id}/"] == 3.0
    assert intervals["PUT /api/v0/instances/{id}/"] == 1.0


async def test_second_state_change_waits_for_the_endpoint_interval(
    vast: Factory, clock: ManualClock
) -> None:
    script = Script((200, {"success": True}))
    provider = vast(script)
    await settle(clock, provider.stop("101"))
    first_sent = clock.now()
    await settle(clock, provider.start("102"), step=0.05)
    assert len(script.requests) == 2
    assert clock.now() - first_sent == pytest.approx(1.0, abs=0.06)


# -- offer search ---------------------------------------------------------------------------


async def test_offer_search_request_shape(vast: Factory) -> None:
    script = Script((200, {"offers": []}))
    query = OfferQuery(gpus=("RTX 4090", "A100 SXM", "RTX 6000 Ada"), min_gpu_count=2,
                       max_price_hour=3.5, min_vram_gb=24, countries=("us", "CA"), disk_gb=50,
                       limit=300)
    await vast(script).list_offers(query)

    request = script.requests[0]
    assert request.method == "POST"
    assert request.url.path == "/api/v0/bundles/"
    assert request.url.host == "console.vast.ai"
    assert request.headers["authorization"] == f"Bearer {KEY}"
    assert "api_key" not in request.url.params and KEY not in str(request.url)
    body = script.body()
    assert body["gpu_name"] == {"in": ["RTX 4090", "A100 SXM4", "A100 SXM", "RTX 6000Ada"]}
    assert body["gpu_ram"] == {"gte": 22800}  # MB, not GB: 24 × 1000 less the usable-memory slack
    assert body["num_gpus"] == {"gte": 2}
    assert body["dph_total"] == {"lte": 3.5}
    assert body["reliability"] == {"gte": 0.95}
    assert body["verified"] == {"eq": True}
    assert body["rentable"] == {"eq": True} and body["rented"] == {"eq": False}
    assert body["geolocation"] == {"in": ["US", "CA"]}
    assert body["type"] == "on-demand"
    assert body["allocated_storage"] == 50
    assert body["order"] == [["dph_total", "asc"]]
    assert body["limit"] == 300


async def test_interruptible_only_search_asks_for_bids(vast: Factory) -> None:
    script = Script((200, {"offers": [OFFER_4090]}))
    offers = await vast(script).list_offers(
        OfferQuery(pricing=(PricingKind.INTERRUPTIBLE,), max_price_hour=0.5, min_reliability=0.9)
    )
    body = script.body()
    assert body["type"] == "bid"
    assert body["min_bid"] == {"lte": 0.5} and "dph_total" not in body
    assert "gpu_name" not in body and "gpu_ram" not in body and "geolocation" not in body
    assert [offer.pricing for offer in offers] == [PricingKind.INTERRUPTIBLE]


@pytest.mark.parametrize(
    ("canonical", "expected"),
    [
        ("H100 SXM", ("H100 SXM",)),
        ("A100 SXM", ("A100 SXM4", "A100 SXM")),
        ("A100 PCIe", ("A100 PCIE", "A100X")),
        ("RTX 6000 Ada", ("RTX 6000Ada",)),
        ("Quadro RTX 8000", ("Q RTX 8000",)),
        ("T4", ("Tesla T4",)),
        ("V100 SXM", ("Tesla V100",)),
        ("RTX 4080 SUPER", ("RTX 4080S",)),
        ("Some Future GPU", ("Some Future GPU",)),
    ],
)
def test_canonical_names_map_to_vast_spellings(canonical: str, expected: tuple[str, ...]) -> None:
    assert vast_spellings(canonical) == expected


def test_a_bare_family_name_asks_for_every_form_factor() -> None:
    assert set(vast_spellings("H100")) == {"H100 PCIE", "H100 SXM", "H100 NVL"}


async def test_parses_realistic_offers_and_skips_broken_ones(
    vast: Factory, clock: ManualClock
) -> None:
    rows = [OFFER_4090, OFFER_A100_NULLS, OFFER_L4_NO_PLACE, OFFER_NULL_CORES, OFFER_NO_PRICE,
            OFFER_NO_GPU_NAME, "garbage", None]
    offers = await vast(Script((200, {"offers": rows}))).list_offers(OfferQuery(disk_gb=20))
    by_id = {offer.offer_id: offer for offer in offers}
    assert set(by_id) == {"18812345", "18812345-bid", "18812400", "18812500", "18812500-bid"}

    on_demand = by_id["18812345"]
    assert on_demand.gpu == "RTX 4090" and on_demand.raw_gpu_name == "RTX 4090"
    assert on_demand.vram_gb == 24  # 24564 MB, not 24564 GB
    assert on_demand.ram_gb == 126.0 and on_demand.vcpus == 8.0  # 129000 MiB; Vast's MB are MiB
    assert on_demand.price_hour == 0.3411  # dph_total already carries the disk we asked for
    assert on_demand.pricing is PricingKind.ON_DEMAND
    assert (on_demand.location, on_demand.country) == ("Oslo, NO", "NO")
    assert on_demand.reliability == 0.995 and on_demand.cuda == 12.4
    assert on_demand.inet_down_mbps == 850.3 and on_demand.storage_gb_month == 0.15
    assert on_demand.min_bid == 0.21 and on_demand.quoted_at == clock.now()
    assert on_demand.extra["ask_id"] == 18812345
    assert on_demand.disk_gb == 20.0 and on_demand.extra["max_disk_gb"] == 180.0

    bid = by_id["18812345-bid"]
    assert bid.pricing is PricingKind.INTERRUPTIBLE
    assert bid.price_hour == pytest.approx(0.21 + 0.0041)
    assert bid.extra["ask_id"] == 18812345

    a100 = by_id["18812400"]
    assert a100.gpu == "A100 SXM" and a100.vram_gb == 80 and a100.gpu_count == 8
    assert a100.price_hour == pytest.approx(9.6 + 20 * 0.18 / 720, abs=1e-4)
    assert a100.reliability == 0.991 and a100.country == "US" and a100.cuda is None

    l4 = by_id["18812500"]
    assert l4.vram_gb == 24 and l4.ram_gb == 0.0 and l4.location == "" and l4.country == ""
    assert l4.available and l4.disk_gb == 20.0


async def test_max_price_also_applies_to_interruptible_prices(vast: Factory) -> None:
    script = Script((200, {"offers": [OFFER_4090]}))
    offers = await vast(script).list_offers(OfferQuery(max_price_hour=0.3))
    assert [offer.offer_id for offer in offers] == ["18812345-bid"]


async def test_offers_reply_without_a_list_is_a_protocol_error(vast: Factory) -> None:
    with pytest.raises(ProtocolError):
        await vast(Script((200, {"offers": {"id": 1}}))).list_offers(OfferQuery())


# -- instances ------------------------------------------------------------------------------


async def test_list_instances_request_and_parsing(vast: Factory, clock: ManualClock) -> None:
    rows = [INSTANCE_RUNNING, INSTANCE_PROVISIONING, INSTANCE_STOPPED_PROXY, 7]
    script = Script((200, {"instances": rows, "instances_found": 4}))
    instances = await vast(script).list_instances()
    request = script.requests[0]
    assert request.method == "GET" and request.url.path == "/api/v0/instances/"
    assert request.url.params["owner"] == "me" and "api_key" not in request.url.params
    running, provisioning, stopped = instances

    assert running.instance_id == "9104221" and running.key == "vast:9104221"
    assert running.status is InstanceStatus.RUNNING and running.provider_status == "running"
    assert running.gpu == "RTX 4090" and running.gpu_count == 2 and running.label == "llama-ft"
    assert running.ssh == SshEndpoint("203.0.113.7", 41022)  # direct wins over the jupyter proxy
    assert running.ports == {"22/tcp": "203.0.113.7:41022", "8888/tcp": "203.0.113.7:41023"}
    assert running.started_at == 1789990000.5 and running.price_hour == 0.6823
    assert running.storage_price_hour == pytest.approx(40 * 0.15 / 720, abs=1e-6)
    metrics = running.metrics
    assert metrics is not None and metrics.time == clock.now()
    assert metrics.gpu_util == (87.5, 87.5)
    assert metrics.vram_used_gb == (18.2, 18.2)
    assert metrics.vram_total_gb == (24.0, 24.0)  # the nominal 24 GB Offers shows, not 24.56
    assert metrics.gpu_temp_c == (71.0, 71.0)
    assert metrics.cpu_pct == 34.0 and metrics.ram_pct == 20.0

    assert provisioning.status is InstanceStatus.PROVISIONING
    assert provisioning.provider_status == "scheduling"  # actual_status null, never "null"
    assert provisioning.label == "" and provisioning.metrics is None and provisioning.ssh is None
    assert provisioning.ports == {} and provisioning.started_at is None
    assert provisioning.price_hour == pytest.approx(2.1 + 0.0125)

    assert stopped.status is InstanceStatus.STOPPED
    assert stopped.metrics is None and stopped.ssh is None
    assert stopped.storage_price_hour == 0.01 and stopped.current_price_hour == 0.01


@pytest.mark.parametrize(
    ("actual", "intended", "status_msg", "expected", "note"),
    [
        (None, "running", None, InstanceStatus.PROVISIONING, ""),
        ("created", "running", None, InstanceStatus.PROVISIONING, ""),
        ("loading", "running", "Pulling image", InstanceStatus.STARTING, "Pulling image"),
        ("running", "running", "success, running x/ssh", InstanceStatus.RUNNING, "success"),
        ("running", "stopped", None, InstanceStatus.RUNNING, "stop requested; still running"),
        ("stopped", "stopped", None, InstanceStatus.STOPPED, ""),
        ("stopped", "running", None, InstanceStatus.STOPPED, "start requested"),
        ("exited", "running", "exit code 137", InstanceStatus.EXITED, "exit code 137"),
        ("frozen", "running", None, InstanceStatus.STOPPED, "frozen"),
        ("offline", "running", None, InstanceStatus.UNKNOWN, "offline"),
        ("unknown", "running", None, InstanceStatus.UNKNOWN, "heartbeat"),
        ("rebooting", "running", None, InstanceStatus.STARTING, ""),
        ("brand_new_state", "running", None, InstanceStatus.UNKNOWN, "brand_new_state"),
        (None, "running", "Error response from daemon: pull access denied", InstanceStatus.ERROR,
         "pull access"),
    ],
)
def test_status_mapping(actual: str | None, intended: str, status_msg: str | None,
                        expected: InstanceStatus, note: str) -> None:
    status, message = map_status(actual, intended, status_msg)
    assert status is expected
    assert note in message


@pytest.mark.parametrize(
    ("row", "expected"),
    [
        ({"ports": {"22/tcp": [{"HostIp": "0.0.0.0", "HostPort": "41022"}]},
          "public_ipaddr": "1.2.3.4", "ssh_host": "ssh6.vast.ai", "ssh_port": 10600,
          "image_runtype": "ssh ssh_direc"},
         SshEndpoint("1.2.3.4", 41022)),
        ({"ports": None, "public_ipaddr": "1.2.3.4", "ssh_host": "ssh6.vast.ai", "ssh_port": 10600,
          "image_runtype": "ssh ssh_proxy"}, SshEndpoint("ssh6.vast.ai", 10600)),
        ({"ports": {}, "ssh_host": "ssh6.vast.ai", "ssh_port": 10600,
          "image_runtype": "jupyter jupyter_direc ssh_proxy"}, SshEndpoint("ssh6.vast.ai", 10601)),
        ({"ports": {"22/tcp": [{"HostPort": "not-a-port"}]}, "public_ipaddr": "1.2.3.4",
          "ssh_host": "ssh1.vast.ai", "ssh_port": "2200"}, SshEndpoint("ssh1.vast.ai", 2200)),
        ({"ports": {"22/tcp": [{"HostPort": "41022"}]}, "public_ipaddr": None,
          "ssh_host": None, "ssh_port": None}, None),
    ],
)
def test_ssh_endpoint_direct_then_proxy(row: dict[str, Any], expected: SshEndpoint | None) -> None:
    assert ssh_endpoint(row) == expected


async def test_malformed_json_is_a_protocol_error(vast: Factory) -> None:
    with pytest.raises(ProtocolError, match="malformed JSON"):
        await vast(Script((200, "{\"instances\": [ {\"id\": 1,"))).list_instances()


# -- launch ---------------------------------------------------------------------------------


async def test_launch_request_body_and_new_contract(vast: Factory) -> None:
    script = Script((200, {"success": True, "new_contract": 9104555, "instance_api_key": "k"}))
    spec = LaunchSpec(image="pytorch/pytorch:2.4.0-cuda12.4-cudnn9-runtime", disk_gb=40,
                      label="chub-llm-1", env={"HF_TOKEN": "hf_xxx"},
                      ports=("22/tcp", "8000/http", "8081/udp"), onstart="echo ready > /tmp/ready")
    instance_id = await vast(script).launch(_offer(), spec)

    assert instance_id == "9104555"
    request = script.requests[0]
    assert request.method == "PUT" and request.url.path == "/api/v0/asks/18812345/"
    assert request.headers["authorization"] == f"Bearer {KEY}" and KEY not in str(request.url)
    assert script.body() == {
        "image": "pytorch/pytorch:2.4.0-cuda12.4-cudnn9-runtime",
        "disk": 40,
        "label": "chub-llm-1",
        "env": {"-p 8000:8000": "1", "-p 8081:8081/udp": "1", "HF_TOKEN": "hf_xxx"},
        "runtype": "ssh_direc ssh_proxy",
        "onstart": "echo ready > /tmp/ready",
    }


async def test_interruptible_jupyter_launch_sends_bid_and_runtype(vast: Factory) -> None:
    script = Script((200, {"success": True, "new_contract": "9104556"}))
    bid_offer = _offer(offer_id="18812345-bid", pricing=PricingKind.INTERRUPTIBLE)
    spec = LaunchSpec(image="jupyter/base", jupyter=True, bid_price=0.25)
    instance_id = await vast(script).launch(bid_offer, spec)
    assert instance_id == "9104556"
    assert script.requests[0].url.path == "/api/v0/asks/18812345/"
    body = script.body()
    assert body["price"] == 0.25
    assert body["runtype"] == "jupyter_direc ssh_direc ssh_proxy"
    assert body["env"] == {}


async def test_interruptible_offer_without_bid_bids_the_minimum(vast: Factory) -> None:
    script = Script((200, {"success": True, "new_contract": 1}))
    offer = _offer(offer_id="18812345-bid", pricing=PricingKind.INTERRUPTIBLE, extra={})
    await vast(script).launch(offer, LaunchSpec(image="x"))
    assert script.requests[0].url.path == "/api/v0/asks/18812345/"
    assert script.body()["price"] == 0.21


async def test_long_onstart_is_compressed_under_the_limit(vast: Factory) -> None:
    script = Script((200, {"success": True, "new_contract": 1}))
    await vast(script).launch(_offer(), LaunchSpec(image="x", onstart="echo hello world\n" * 600))
    onstart = script.body()["onstart"]
    assert len(onstart) <= 4048 and "base64 -d | gunzip | bash" in onstart


async def test_taken_offer_is_no_capacity(vast: Factory) -> None:
    message = "error 410/3907: no_such_ask Instance type 18812345 is no longer available."
    script = Script((410, {"success": False, "error": "no_such_ask", "msg": message,
                           "ask_id": 18812345}))
    with pytest.raises(NoCapacityError, match="offer 18812345 is no longer available"):
        await vast(script).launch(_offer(), LaunchSpec(image="x"))
    assert len(script.requests) == 1


async def test_unknown_offer_404_is_no_capacity(vast: Factory) -> None:
    message = "error 404/3603: no_such_ask Instance type by id 18812345 is not available."
    script = Script((404, {"success": False, "error": "no_such_ask", "msg": message}))
    with pytest.raises(NoCapacityError):
        await vast(script).launch(_offer(), LaunchSpec(image="x"))


@pytest.mark.parametrize("code", ["invalid_price", "invalid_args"])
async def test_invalid_launch_arguments_are_rejected(vast: Factory, code: str) -> None:
    message = "Please set a bid price >= 0.001."
    script = Script((400, {"success": False, "error": code, "msg": message}))
    with pytest.raises(RequestRejectedError, match="bid price >= 0.001") as caught:
        await vast(script).launch(_offer(), LaunchSpec(image="x", bid_price=0.0005))
    assert "error 400" not in str(caught.value)


async def test_success_false_in_a_200_is_a_failure(vast: Factory) -> None:
    message = "disk too large for this machine"
    script = Script((200, {"success": False, "error": "invalid_args", "msg": message}))
    with pytest.raises(RequestRejectedError, match="disk too large"):
        await vast(script).launch(_offer(), LaunchSpec(image="x", disk_gb=5000))


async def test_launch_reply_without_contract_is_a_protocol_error(vast: Factory) -> None:
    with pytest.raises(ProtocolError, match="new_contract"):
        await vast(Script((200, {"success": True}))).launch(_offer(), LaunchSpec(image="x"))


async def test_launch_is_not_retried_on_a_server_error(
    vast: Factory, clock: ManualClock
) -> None:
    script = Script((503, "upstream connect error"), (200, {"success": True, "new_contract": 1}))
    with pytest.raises(UnavailableError, match="check Instances before retrying"):
        await settle(clock, vast(script).launch(_offer(), LaunchSpec(image="x")))
    assert len(script.requests) == 1


async def test_launch_is_retried_when_the_request_never_left(
    vast: Factory, clock: ManualClock
) -> None:
    script = Script(httpx.ConnectError("connection refused"),
                    (200, {"success": True, "new_contract": 77}))
    assert await settle(clock, vast(script).launch(_offer(), LaunchSpec(image="x"))) == "77"
    assert len(script.requests) == 2


async def test_launch_rejects_an_offer_from_another_provider(vast: Factory) -> None:
    script = Script((200, {"success": True, "new_contract": 1}))
    with pytest.raises(RequestRejectedError, match="not a Vast offer"):
        await vast(script).launch(_offer(provider="runpod"), LaunchSpec(image="x"))
    assert script.requests == []


# -- lifecycle --------------------------------------------------------------------------------


async def test_lifecycle_request_shapes(vast: Factory) -> None:
    script = Script((200, {"success": True}))
    provider = vast(script, policy=no_pacing())
    await provider.start("9104221")
    await provider.stop("9104221")
    await provider.restart("9104221")
    await provider.destroy("9104221")
    shapes = [(r.method, r.url.path, json.loads(r.content) if r.content else None)
              for r in script.requests]
    assert shapes == [
        ("PUT", "/api/v0/instances/9104221/", {"state": "running"}),
        ("PUT", "/api/v0/instances/9104221/", {"state": "stopped"}),
        ("PUT", "/api/v0/instances/reboot/9104221/", {}),
        ("DELETE", "/api/v0/instances/9104221/", None),
    ]
    assert all(r.headers["authorization"] == f"Bearer {KEY}" for r in script.requests)


async def test_refused_state_change_carries_vasts_message(vast: Factory) -> None:
    message = "Instance cannot be started: no free GPUs on host."
    script = Script((200, {"success": False, "msg": message}))
    with pytest.raises(RequestRejectedError, match="no free GPUs on host"):
        await vast(script).start("9104221")


async def test_destroying_a_missing_instance_is_not_found(vast: Factory) -> None:
    message = "Instance 9104221 not found."
    script = Script((404, {"success": False, "error": "not_found", "msg": message}))
    with pytest.raises(NotFoundError, match="9104221 not found"):
        await vast(script).destroy("9104221")


async def test_instance_ids_must_be_numeric(vast: Factory) -> None:
    script = Script((200, {"success": True}))
    with pytest.raises(NotFoundError):
        await vast(script).stop("12/../../users/current")
    assert script.requests == []


# -- errors -----------------------------------------------------------------------------------


async def test_plain_text_429_gives_threshold_as_retry_after(vast: Factory) -> None:
    script = Script((429, "API requests too frequent: endpoint threshold=4.5"))
    with pytest.raises(RateLimitedError) as caught:
        await vast(script).launch(_offer(), LaunchSpec(image="x"))
    assert caught.value.retry_after == 4.5
    assert "4.5s" in str(caught.value)
    assert len(script.requests) == 1


async def test_json_detail_429(vast: Factory) -> None:
    script = Script((429, {"detail": "API requests too frequent endpoint threshold=1.0"}))
    with pytest.raises(RateLimitedError) as caught:
        await vast(script, policy=no_pacing(max_attempts=1)).list_instances()
    assert caught.value.retry_after == 1.0


async def test_429_without_threshold_backs_off_on_its_own(
    vast: Factory, clock: ManualClock
) -> None:
    script = Script((429, "API requests too frequent"))
    with pytest.raises(RateLimitedError) as caught:
        await settle(clock, vast(script).stop("1"))
    assert caught.value.retry_after is None
    assert len(script.requests) == 4  # a state change is safe to repeat


async def test_a_read_waits_out_the_threshold_and_retries(
    vast: Factory, clock: ManualClock
) -> None:
    script = Script((429, "API requests too frequent: endpoint threshold=2.0"),
                    (200, {"instances": []}))
    started = clock.now()
    assert await settle(clock, vast(script).list_instances()) == []
    assert len(script.requests) == 2
    assert clock.now() - started >= 2.0


async def test_invalid_user_key_is_an_auth_error_without_the_key(vast: Factory) -> None:
    script = Script((401, {"success": False, "error": "auth_error", "msg": "Invalid user key"}))
    with pytest.raises(AuthError, match="Invalid user key") as caught:
        await vast(script).check_auth()
    assert KEY not in str(caught.value)
    request = script.requests[0]
    assert request.method == "GET" and request.url.path == "/api/v0/users/current/"


async def test_bundles_404_invalid_user_key_is_an_auth_error(vast: Factory) -> None:
    script = Script((404, {"success": False, "msg": "Invalid user key"}))
    with pytest.raises(AuthError):
        await vast(script).list_offers(OfferQuery())


async def test_check_auth_passes_on_a_user_record(vast: Factory) -> None:
    await vast(Script((200, {"id": 1, "email": "a@b.c", "balance": 3.2}))).check_auth()


async def test_server_errors_on_reads_retry_then_become_unavailable(
    vast: Factory, clock: ManualClock
) -> None:
    script = Script((502, "<html>Bad Gateway</html>"))
    with pytest.raises(UnavailableError, match="502"):
        await settle(clock, vast(script).list_instances())
    assert len(script.requests) == 4


async def test_no_error_message_contains_the_key(
    vast: Factory, clock: ManualClock
) -> None:
    replies: list[Reply] = [
        (401, {"msg": f"Invalid user key {KEY}"}),
        (400, {"success": False, "error": "invalid_args", "msg": f"bad api_key={KEY}"}),
        (429, f"API requests too frequent for {KEY}"),
        (500, f"traceback with {KEY}"),
    ]
    for reply in replies:
        with pytest.raises(ProviderError) as caught:
            await settle(clock, vast(Script(reply), policy=no_pacing(max_attempts=1)).stop("1"))
        assert KEY not in str(caught.value)


# -- logs -------------------------------------------------------------------------------------


async def test_logs_two_step_flow(vast: Factory, clock: ManualClock) -> None:
    result_url = "https://s3.amazonaws.com/vast.ai/instance_logs/abc123.log"
    script = Script(
        (200, {"success": True, "result_url": result_url, "msg": "pulling logs"}),
        (404, "<Error><Code>NoSuchKey</Code></Error>"),
        (403, "<Error><Code>AccessDenied</Code></Error>"),
        (200, "line one\nline two\n"),
    )
    text = await settle(clock, vast(script).logs("9104221", tail=50))

    assert text == "line one\nline two\n"
    ask, *fetches = script.requests
    assert ask.method == "PUT" and ask.url.path == "/api/v0/instances/request_logs/9104221/"
    assert json.loads(ask.content) == {"tail": "50"}
    assert len(fetches) == 3
    assert all(str(fetch.url) == result_url and fetch.method == "GET" for fetch in fetches)
    assert all("authorization" not in fetch.headers for fetch in fetches)


async def test_logs_that_never_land_give_up(vast: Factory, clock: ManualClock) -> None:
    script = Script((200, {"success": True, "result_url": "https://s3.example/x.log"}),
                    (404, "missing"))
    with pytest.raises(UnavailableError, match="not ready"):
        await settle(clock, vast(script).logs("1"), step=0.5)
    assert len(script.requests) == 21


async def test_logs_of_a_foreign_instance(vast: Factory) -> None:
    message = "not your instance"
    script = Script((403, {"success": False, "error": "not_authorized", "msg": message}))
    with pytest.raises(AuthError, match="not your instance"):
        await vast(script).logs("1")
