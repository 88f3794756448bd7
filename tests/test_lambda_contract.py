"""Lambda adapter against hand-written Lambda Cloud payloads: requests, parsing, errors, pacing."""

from __future__ import annotations

import json
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
    ProtocolError,
    Provider,
    RateLimitedError,
    RequestRejectedError,
    UnavailableError,
    UnsupportedError,
)
from computehub_tui.providers.http import HttpPolicy
from computehub_tui.providers.lambdalabs import LambdaProvider, default_policy

API_KEY = "secret_lambda_key_0123456789abcdef"
BASE = "https://cloud.lambda.ai/api/v1"

def make(
    route: Route,
    *,
    ssh_key_name: str = "laptop",
    policy: HttpPolicy | None = None,
    clock: InstantClock | None = None,
) -> tuple[LambdaProvider, Wire, InstantClock]:
    wire = Wire(route)
    clock = clock or InstantClock()
    provider = LambdaProvider(
        httpx.AsyncClient(transport=httpx.MockTransport(wire)),
        Secret(API_KEY),
        clock=clock,
        policy=policy or HttpPolicy(min_interval=0.0, backoff_base=0.1),
        ssh_key_name=ssh_key_name,
    )
    return provider, wire, clock


def reply(status: int, body: Any, headers: dict[str, str] | None = None) -> Route:
    return lambda request: httpx.Response(status, json=body, headers=headers)


def lambda_error(code: str, message: str, suggestion: str = "", **extra: Any) -> dict[str, Any]:
    error = {"code": code, "message": message}
    if suggestion:
        error["suggestion"] = suggestion
    return {"error": error, **extra}


def instance_type(
    name: str,
    description: str,
    cents: int,
    *,
    vcpus: int = 30,
    memory_gib: int = 200,
    storage_gib: int = 512,
    **newer: Any,
) -> dict[str, Any]:
    specs: dict[str, Any] = {"vcpus": vcpus, "memory_gib": memory_gib, "storage_gib": storage_gib}
    if "gpus" in newer:
        specs["gpus"] = newer.pop("gpus")
    return {
        "name": name,
        "description": description,
        "price_cents_per_hour": cents,
        "specs": specs,
        **newer,
    }


TYPES = {
    "gpu_8x_a100_80gb_sxm4": {
        "instance_type": instance_type(
            "gpu_8x_a100_80gb_sxm4",
            "8x A100 (80 GB SXM4)",
            1432,
            vcpus=240,
            memory_gib=1800,
            storage_gib=20480,
        ),
        "regions_with_capacity_available": [
            {"name": "us-east-1", "description": "Virginia, USA"},
            {"name": "europe-central-1", "description": "Germany"},
        ],
    },
    "gpu_8x_v100": {
        "instance_type": instance_type(
            "gpu_8x_v100", "8x Tesla V100 (16 GB)", 440, vcpus=88, memory_gib=448
        ),
        "regions_with_capacity_available": [{"name": "us-south-1", "description": "Texas, USA"}],
    },
    "gpu_1x_gh200": {
        "instance_type": instance_type(
            "gpu_1x_gh200", "1x GH200 (96 GB)", 149, vcpus=64, memory_gib=432
        ),
        "regions_with_capacity_available": [{"name": "us-west-3", "description": "Utah, USA"}],
    },
    "gpu_1x_h100_pcie": {
        "instance_type": instance_type(
            "gpu_1x_h100_pcie",
            "1x H100 (80 GB PCIe)",
            249,
            vcpus=26,
            gpu_description="H100 (80 GB PCIe)",
            gpus=1,
        ),
        "regions_with_capacity_available": [
            {"name": "asia-northeast-1", "description": "Tokyo, Japan"}
        ],
    },
    "gpu_1x_rtx6000": {
        "instance_type": instance_type(
            "gpu_1x_rtx6000", "1x RTX 6000 (24 GB)", 50, vcpus=14, memory_gib=46
        ),
        "regions_with_capacity_available": [
            {"name": "us-west-1", "description": "California, USA"}
        ],
    },
    "gpu_8x_h100_sxm5": {
        "instance_type": instance_type("gpu_8x_h100_sxm5", "8x H100 (80 GB SXM5)", 2392, vcpus=208),
        "regions_with_capacity_available": [],
    },
}


def instance_payload(
    status: str = "active", *, ip: str | None = "192.0.2.10", **overrides: Any
) -> dict[str, Any]:
    payload = {
        "id": "0920582c7ff041399e34823a0be62549",
        "name": "train-7b",
        "ip": ip,
        "status": status,
        "ssh_key_names": ["laptop"],
        "file_system_names": [],
        "region": {"name": "us-east-1", "description": "Virginia, USA"},
        "instance_type": instance_type("gpu_8x_a100_80gb_sxm4", "8x A100 (80 GB SXM4)", 1432),
        "hostname": "192-0-2-10.cloud.lambdalabs.com",
        "jupyter_token": "53968f128c4a4489b688c2c0a181d083",
        "jupyter_url": "https://jupyter-3ac4c5c6-9026.lambdaspaces.com/?token=53968f128c4a4489b688c2c0a181d083",
    }
    payload.update(overrides)
    return payload


def offer_for(type_name: str, region: str = "us-east-1") -> Offer:
    return Offer(
        provider="lambda",
        offer_id=f"{type_name}@{region}",
        gpu="A100 SXM",
        gpu_count=8,
        vram_gb=80,
        vcpus=240,
        ram_gb=1800.0,
        disk_gb=21995.5,
        price_hour=14.32,
        pricing=PricingKind.ON_DEMAND,
        location=region,
        reliability=None,
        available=True,
        quoted_at=0.0,
        extra={"instance_type_name": type_name, "region_name": region},
    )


# -- offers ------------------------------------------------------------------------------------


async def test_offers_request_is_an_authenticated_get_with_the_key_only_in_the_header() -> None:
    provider, wire, _ = make(reply(200, {"data": TYPES}))
    await provider.list_offers(OfferQuery())
    (request,) = wire.requests
    assert request.method == "GET"
    assert str(request.url) == f"{BASE}/instance-types"
    assert request.headers["authorization"] == f"Bearer {API_KEY}"
    assert API_KEY not in str(request.url)


@pytest.mark.parametrize(
    ("type_name", "gpu", "count", "vram", "price"),
    [
        ("gpu_8x_a100_80gb_sxm4", "A100 SXM", 8, 80.0, 14.32),
        ("gpu_8x_v100", "V100", 8, 16.0, 4.40),
        ("gpu_1x_gh200", "GH200", 1, 96.0, 1.49),
        ("gpu_1x_h100_pcie", "H100 PCIe", 1, 80.0, 2.49),
        ("gpu_1x_rtx6000", "Quadro RTX 6000", 1, 24.0, 0.50),
    ],
)
async def test_descriptions_are_parsed_and_cents_become_dollars(
    type_name: str, gpu: str, count: int, vram: float, price: float
) -> None:
    provider, _, _ = make(reply(200, {"data": TYPES}))
    offers = [
        o
        for o in await provider.list_offers(OfferQuery())
        if o.extra["instance_type_name"] == type_name
    ]
    assert offers
    for offer in offers:
        assert (offer.gpu, offer.gpu_count, offer.vram_gb) == (gpu, count, vram)
        assert offer.price_hour == pytest.approx(price)
        assert offer.pricing is PricingKind.ON_DEMAND
        assert offer.reliability is None


async def test_one_offer_per_region_with_capacity_and_resources_in_gb() -> None:
    provider, _, _ = make(reply(200, {"data": TYPES}))
    offers = await provider.list_offers(OfferQuery())
    a100 = {
        o.offer_id: o for o in offers if o.extra["instance_type_name"] == "gpu_8x_a100_80gb_sxm4"
    }
    assert set(a100) == {
        "gpu_8x_a100_80gb_sxm4@us-east-1",
        "gpu_8x_a100_80gb_sxm4@europe-central-1",
    }
    virginia = a100["gpu_8x_a100_80gb_sxm4@us-east-1"]
    assert virginia.available
    assert (virginia.location, virginia.country) == ("us-east-1", "US")
    assert a100["gpu_8x_a100_80gb_sxm4@europe-central-1"].country == "DE"
    assert virginia.vcpus == 240
    assert virginia.ram_gb == 1800.0  # memory_gib as GiB, like every provider's RAM
    assert virginia.disk_gb == pytest.approx(20480 * 1.074, abs=0.05)
    assert virginia.extra["region_name"] == "us-east-1"


async def test_sold_out_type_is_listed_once_as_unavailable() -> None:
    provider, _, _ = make(reply(200, {"data": TYPES}))
    offers = [
        o
        for o in await provider.list_offers(OfferQuery())
        if o.extra["instance_type_name"] == "gpu_8x_h100_sxm5"
    ]
    assert len(offers) == 1
    assert offers[0].available is False
    assert offers[0].location == "sold out"
    assert offers[0].gpu == "H100 SXM"


async def test_query_filters_apply_client_side() -> None:
    provider, _, _ = make(reply(200, {"data": TYPES}))
    a100 = await provider.list_offers(OfferQuery(gpus=("A100",)))
    assert {o.gpu for o in a100} == {"A100 SXM"}
    cheap = await provider.list_offers(OfferQuery(max_price_hour=2.0))
    assert {o.extra["instance_type_name"] for o in cheap} == {"gpu_1x_gh200", "gpu_1x_rtx6000"}
    many = await provider.list_offers(OfferQuery(min_gpu_count=8, countries=("DE",)))
    assert [o.offer_id for o in many] == ["gpu_8x_a100_80gb_sxm4@europe-central-1"]
    assert len(await provider.list_offers(OfferQuery(limit=2))) == 2


async def test_interruptible_only_query_asks_nothing() -> None:
    provider, wire, _ = make(reply(200, {"data": TYPES}))
    assert await provider.list_offers(OfferQuery(pricing=(PricingKind.INTERRUPTIBLE,))) == []
    assert wire.requests == []


async def test_reply_without_data_map_is_a_protocol_error() -> None:
    provider, _, _ = make(reply(200, {"data": []}))
    with pytest.raises(ProtocolError):
        await provider.list_offers(OfferQuery())


# -- instances ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("booting", InstanceStatus.STARTING),
        ("active", InstanceStatus.RUNNING),
        ("unhealthy", InstanceStatus.ERROR),
        ("terminating", InstanceStatus.TERMINATED),
        ("terminated", InstanceStatus.TERMINATED),
        ("preempted-by-aliens", InstanceStatus.UNKNOWN),
    ],
)
async def test_status_mapping(raw: str, expected: InstanceStatus) -> None:
    provider, _, _ = make(reply(200, {"data": [instance_payload(raw)]}))
    (instance,) = await provider.list_instances()
    assert instance.status is expected
    assert instance.provider_status == raw


async def test_instance_fields_ssh_and_price() -> None:
    provider, wire, _ = make(reply(200, {"data": [instance_payload()]}))
    (instance,) = await provider.list_instances()
    assert str(wire.requests[0].url) == f"{BASE}/instances"
    assert instance.key == "lambda:0920582c7ff041399e34823a0be62549"
    assert instance.label == "train-7b"
    assert (instance.gpu, instance.gpu_count) == ("A100 SXM", 8)
    assert instance.price_hour == pytest.approx(14.32)
    assert instance.ssh is not None and instance.ssh.command == "ssh -p 22 ubuntu@192.0.2.10"
    assert instance.location == "us-east-1"
    assert instance.metrics is None
    assert "53968f12" not in repr(instance)  # the Jupyter token is not copied anywhere


async def test_booting_instance_without_ip_has_no_ssh() -> None:
    provider, _, _ = make(reply(200, {"data": [instance_payload("booting", ip=None)]}))
    (instance,) = await provider.list_instances()
    assert instance.ssh is None
    assert instance.status is InstanceStatus.STARTING


# -- launch ------------------------------------------------------------------------------------


async def test_launch_sends_the_documented_body_and_returns_the_new_id() -> None:
    provider, wire, _ = make(reply(200, {"data": {"instance_ids": ["abc123"]}}))
    new_id = await provider.launch(
        offer_for("gpu_8x_a100_80gb_sxm4"), LaunchSpec(image="ignored", label="run-1")
    )
    assert new_id == "abc123"
    request = wire.requests[0]
    assert (request.method, str(request.url)) == ("POST", f"{BASE}/instance-operations/launch")
    assert request.headers["content-type"] == "application/json"
    assert wire.body() == {
        "region_name": "us-east-1",
        "instance_type_name": "gpu_8x_a100_80gb_sxm4",
        "ssh_key_names": ["laptop"],
        "file_system_names": [],
        "quantity": 1,
        "name": "run-1",
    }


async def test_launch_spec_key_name_overrides_the_configured_one() -> None:
    provider, wire, _ = make(reply(200, {"data": {"instance_ids": ["abc123"]}}))
    await provider.launch(
        offer_for("gpu_1x_gh200"), LaunchSpec(image="", ssh_key_name="workstation")
    )
    assert wire.body()["ssh_key_names"] == ["workstation"]


async def test_launch_without_ssh_key_name_is_a_configuration_error_and_sends_nothing() -> None:
    provider, wire, _ = make(reply(200, {"data": {"instance_ids": ["x"]}}), ssh_key_name="")
    with pytest.raises(ConfigurationError) as caught:
        await provider.launch(offer_for("gpu_1x_gh200"), LaunchSpec(image=""))
    assert "ssh_key_name" in str(caught.value) and "[providers.lambda]" in str(caught.value)
    assert "cloud.lambda.ai" in str(caught.value)
    assert wire.requests == []


async def test_launching_a_sold_out_offer_fails_before_any_request() -> None:
    provider, wire, _ = make(reply(200, {"data": TYPES}))
    (sold_out,) = [o for o in await provider.list_offers(OfferQuery()) if not o.available]
    with pytest.raises(NoCapacityError):
        await provider.launch(sold_out, LaunchSpec(image=""))
    assert len(wire.requests) == 1  # only the listing


async def test_empty_instance_ids_means_nothing_launched() -> None:
    provider, _, _ = make(reply(200, {"data": {"instance_ids": []}}))
    with pytest.raises(NoCapacityError):
        await provider.launch(offer_for("gpu_1x_gh200"), LaunchSpec(image=""))


async def test_launch_is_not_retried_on_server_error() -> None:
    provider, wire, _ = make(
        reply(502, lambda_error("global/unknown", "Bad gateway")),
        policy=HttpPolicy(min_interval=0.0, max_attempts=4),
    )
    with pytest.raises(UnavailableError):
        await provider.launch(offer_for("gpu_1x_gh200"), LaunchSpec(image=""))
    assert len(wire.requests) == 1


async def test_reads_are_retried_on_server_error() -> None:
    answers = iter(
        [httpx.Response(503, text="upstream down"), httpx.Response(200, json={"data": []})]
    )
    provider, wire, _ = make(
        lambda request: next(answers), policy=HttpPolicy(min_interval=0.0, max_attempts=4)
    )
    assert await provider.list_instances() == []
    assert len(wire.requests) == 2


# -- error shapes ------------------------------------------------------------------------------


async def test_insufficient_capacity_is_matched_on_the_code_not_the_status() -> None:
    body = lambda_error(
        "instance-operations/launch/insufficient-capacity",
        "Not enough capacity to fulfill launch request.",
        "Try another region.",
    )
    provider, _, _ = make(reply(403, body))  # 403 would otherwise read as a bad key
    with pytest.raises(NoCapacityError) as caught:
        await provider.launch(offer_for("gpu_8x_a100_80gb_sxm4"), LaunchSpec(image=""))
    assert "Not enough capacity" in str(caught.value)
    assert "Try another region" in str(caught.value)


async def test_invalid_api_key_is_an_auth_error_without_the_key() -> None:
    provider, _, _ = make(
        reply(
            401, lambda_error("global/invalid-api-key", "API key was invalid, expired, or deleted.")
        )
    )
    with pytest.raises(AuthError) as caught:
        await provider.list_instances()
    assert "API key was invalid" in str(caught.value)
    assert API_KEY not in str(caught.value)


async def test_object_does_not_exist_is_not_found() -> None:
    provider, _, _ = make(
        reply(
            404, lambda_error("global/object-does-not-exist", "Specified instance does not exist.")
        )
    )
    with pytest.raises(NotFoundError):
        await provider.restart("nope")


async def test_invalid_parameters_include_field_errors_and_the_ssh_key_hint() -> None:
    body = lambda_error(
        "global/invalid-parameters",
        "Invalid request parameters.",
        field_errors={
            "ssh_key_names": {
                "code": "global/invalid-parameters",
                "message": "SSH key 'laptop' does not exist",
            }
        },
    )
    provider, _, _ = make(reply(400, body))
    with pytest.raises(RequestRejectedError) as caught:
        await provider.launch(offer_for("gpu_1x_gh200"), LaunchSpec(image=""))
    text = str(caught.value)
    assert "ssh_key_names: SSH key 'laptop' does not exist" in text
    assert "ssh_key_name under [providers.lambda]" in text
    assert "\n" not in text


async def test_rate_limited_read_waits_retry_after_then_succeeds() -> None:
    answers = iter(
        [
            httpx.Response(
                429,
                json=lambda_error("global/unknown", "Too many requests"),
                headers={"Retry-After": "2"},
            ),
            httpx.Response(200, json={"data": []}),
        ]
    )
    provider, wire, clock = make(lambda request: next(answers))
    assert await provider.list_instances() == []
    assert len(wire.requests) == 2
    assert any(2.0 <= wait <= 2.3 for wait in clock.sleeps)


async def test_rate_limited_launch_is_reported_not_retried() -> None:
    provider, wire, _ = make(
        reply(
            429,
            {"error": {"code": "global/unknown", "message": "Too many requests"}},
            headers={"Retry-After": "1"},
        )
    )
    with pytest.raises(RateLimitedError) as caught:
        await provider.launch(offer_for("gpu_1x_gh200"), LaunchSpec(image=""))
    assert caught.value.retry_after == pytest.approx(1.0)
    assert len(wire.requests) == 1


async def test_malformed_json_is_a_protocol_error() -> None:
    provider, _, _ = make(lambda request: httpx.Response(200, text="<html>maintenance</html>"))
    with pytest.raises(ProtocolError):
        await provider.list_instances()


# -- other operations --------------------------------------------------------------------------


async def test_restart_and_terminate_send_instance_ids() -> None:
    def route(request: httpx.Request) -> httpx.Response:
        key = (
            "restarted_instances"
            if request.url.path.endswith("restart")
            else "terminated_instances"
        )
        return httpx.Response(200, json={"data": {key: [instance_payload(id="i-1")]}})

    provider, wire, _ = make(route)
    await provider.restart("i-1")
    await provider.destroy("i-1")
    assert [(r.method, r.url.path) for r in wire.requests] == [
        ("POST", "/api/v1/instance-operations/restart"),
        ("POST", "/api/v1/instance-operations/terminate"),
    ]
    assert [json.loads(r.content) for r in wire.requests] == [{"instance_ids": ["i-1"]}] * 2


async def test_partial_terminate_without_our_instance_is_an_error() -> None:
    provider, _, _ = make(reply(200, {"data": {"terminated_instances": []}}))
    with pytest.raises(RequestRejectedError):
        await provider.destroy("i-1")


@pytest.mark.parametrize("action", ["stop", "start"])
async def test_stop_and_start_are_unsupported_and_say_why(action: str) -> None:
    provider, wire, _ = make(reply(200, {}))
    with pytest.raises(UnsupportedError) as caught:
        await getattr(provider, action)("i-1")
    assert "terminate" in str(caught.value) and "billing" in str(caught.value)
    with pytest.raises(UnsupportedError):
        await provider.logs("i-1")
    assert wire.requests == []


async def test_check_auth_lists_ssh_keys() -> None:
    provider, wire, _ = make(
        reply(200, {"data": [{"id": "k1", "name": "laptop", "public_key": "ssh-ed25519 AAA"}]})
    )
    await provider.check_auth()
    assert wire.requests[0].url.path == "/api/v1/ssh-keys"
    assert await provider.list_ssh_key_names() == ["laptop"]
    bad, _, _ = make(reply(401, lambda_error("global/invalid-api-key", "API key was invalid")))
    with pytest.raises(AuthError):
        await bad.check_auth()


async def test_default_pacing_is_one_request_a_second_and_one_launch_per_ten() -> None:
    def route(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("launch"):
            return httpx.Response(200, json={"data": {"instance_ids": ["x"]}})
        return httpx.Response(200, json={"data": []})

    provider, _, clock = make(route, policy=default_policy())
    await provider.list_instances()
    await provider.list_instances()
    assert clock.sleeps == [pytest.approx(1.0)]
    await provider.launch(offer_for("gpu_1x_gh200"), LaunchSpec(image=""))
    clock.sleeps.clear()
    await provider.launch(offer_for("gpu_1x_gh200"), LaunchSpec(image=""))
    assert sum(clock.sleeps) == pytest.approx(10.0)


def test_capabilities_and_protocol() -> None:
    provider, _, _ = make(reply(200, {}))
    assert isinstance(provider, Provider)
    caps = provider.capabilities
    assert (provider.name, provider.title) == ("lambda", "Lambda")
    assert caps.can_stop is False and caps.can_restart is True
    assert caps.bills_storage_while_stopped is False and caps.interruptible is False
    assert caps.logs is False and caps.live_metrics is False
    assert caps.notes[0] == "no stop — terminate only; billing runs until terminate"
