"""Item 1: terminal escapes from providers are made safe where they enter (parse time), through
each adapter: offers, instances, error messages and logs."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
from hostile import (
    HOSTILE,
    Router,
    assert_no_unsafe_text,
    build,
    client_for,
    evil,
    graphql,
    unsafe_chars,
)

from computehub_tui.domain.models import OfferQuery
from computehub_tui.providers.base import ProviderError
from computehub_tui.providers.payload import TRUNCATED

QUERY = OfferQuery(min_reliability=0.0)

VAST_OFFER = {
    "id": 1001, "machine_id": 7, "host_id": 8, "gpu_name": evil("RTX 4090"), "num_gpus": 1,
    "gpu_ram": 24564, "cpu_cores": 32, "cpu_cores_effective": 8, "cpu_ram": 131072, "dph_total": 0.4,
    "min_bid": 0.2, "storage_cost": 0.1, "reliability": 0.99, "geolocation": evil("Oslo, NO"),
    "rentable": True, "rented": False, "hosting_type": evil("1"), "direct_port_count": evil("9"),
}
VAST_INSTANCE = {
    "id": 2002, "actual_status": evil("running"), "intended_status": evil("running"),
    "status_msg": evil("success"), "label": evil("job"), "image_uuid": evil("pytorch"),
    "image_runtype": evil("ssh"), "num_gpus": 1, "gpu_name": evil("RTX 4090"), "gpu_ram": 24564,
    "gpu_util": 50, "public_ipaddr": evil("203.0.113.7"), "ssh_host": evil("ssh1.vast.ai"), "ssh_port": 2200,
    "ports": {evil("8888/tcp"): [{"HostPort": "41000"}], "22/tcp": [{"HostPort": evil("41022")}]},
    "geolocation": evil("Oslo, NO"), "dph_total": 0.4, "start_date": 1.7e9,
}
VAST_ODD_STATUS = {**VAST_INSTANCE, "id": 2003, "actual_status": evil("weird")}

RUNPOD_GPU_TYPE = {
    "id": evil("NVIDIA GeForce RTX 4090"), "displayName": evil("RTX 4090"), "memoryInGb": 24,
    "securePrice": 0.7, "communityPrice": 0.5,
    "lowestPrice": {"uninterruptablePrice": 0.69, "minimumBidPrice": 0.3, "stockStatus": evil("High"),
                    "minVcpu": 8, "minMemory": 30, "availableGpuCounts": [1, evil("2")],
                    "countryCode": evil("CZ")},
}
RUNPOD_POD = {
    "id": evil("pod1"), "name": evil("job"), "desiredStatus": evil("RUNNING"), "costPerHr": 0.69,
    "gpuCount": 1, "imageName": evil("img"), "lastStatusChange": evil("Rented"), "machineId": "m",
    "podType": evil("RESERVED"),
    "machine": {"gpuDisplayName": evil("RTX 4090"), "location": evil("CZ")},
    "runtime": {
        "uptimeInSeconds": 100,
        "ports": [
            {"ip": evil("198.51.100.4"), "isIpPublic": True, "privatePort": 22, "publicPort": 40122,
             "type": evil("tcp")},
            {"ip": "198.51.100.4", "isIpPublic": True, "privatePort": 8888, "publicPort": 40123,
             "type": evil("http")},
        ],
        "gpus": [{"id": evil("GPU-1"), "gpuUtilPercent": 50, "memoryUtilPercent": 20}],
        "container": {"cpuPercent": 10, "memoryPercent": 20},
    },
}

LAMBDA_TYPE = {
    "description": evil("1x H100 (80 GB SXM5)"), "gpu_description": evil("H100 (80 GB SXM5)"),
    "price_cents_per_hour": 299, "specs": {"vcpus": 26, "memory_gib": 200, "storage_gib": 1000, "gpus": 1},
}
LAMBDA_TYPES = {"data": {evil("gpu_1x_h100_sxm5"): {
    "instance_type": LAMBDA_TYPE,
    "regions_with_capacity_available": [{"name": evil("us-east-1"), "description": evil("Virginia, USA")}],
}}}
LAMBDA_INSTANCES = {"data": [{
    "id": evil("inst1"), "name": evil("job"), "status": evil("active"), "ip": evil("192.0.2.9"),
    "region": {"name": evil("us-east-1")}, "instance_type": {"name": "gpu_1x_h100_sxm5", **LAMBDA_TYPE},
}]}

TENSORDOCK_LOCATIONS = {"data": {"locations": [{
    "id": evil("loc-1"), "city": evil("Boise"), "country": evil("United States"), "tier": evil("t"),
    "gpus": [{"v0Name": evil("geforcertx4090-pcie-24gb"), "displayName": evil("RTX 4090"), "max_count": 2,
              "price_per_hr": 0.35, "resources": {"max_vcpus": 16, "max_ram_gb": 64, "max_storage_gb": 1000},
              "pricing": {"per_vcpu_hr": 0.003, "per_gb_ram_hr": 0.002, "per_gb_storage_hr": 0.00005}}],
}]}}
TENSORDOCK_DETAIL = {"data": {"id": "vm1", "attributes": {
    "name": evil("job"), "status": evil("running"), "ipAddress": evil("192.0.2.10"),
    "portForwards": [{"internal_port": 22, "external_port": 40022}, {"internal_port": 8888, "external_port": 40888}],
    "resources": {"gpus": {evil("geforcertx4090-pcie-24gb"): {"count": 1}}, "storage_gb": 100},
    "location": evil("Boise"), "image": evil("ubuntu"), "statusMessage": evil("ok"), "rateHourly": 0.5,
}}}


def hostile_market() -> dict[str, Router]:
    """Each provider's offers and instances with the hostile set in every string field."""
    return {
        "vast": Router()
        .on("POST", "/bundles/", {"offers": [VAST_OFFER]})
        .on("GET", "/instances/", {"instances": [VAST_INSTANCE, VAST_ODD_STATUS]}),
        "runpod": Router()
        .on("POST", "/graphql", graphql({"gpuTypes": [RUNPOD_GPU_TYPE]}), body_part="GpuOffers")
        .on("POST", "/graphql", graphql({"gpuTypes": [RUNPOD_GPU_TYPE]}), body_part="GpuCatalogue")
        .on("POST", "/graphql", graphql({"myself": {"pods": [RUNPOD_POD]}}), body_part="query Pods"),
        "lambda": Router()
        .on("GET", "/instance-types", LAMBDA_TYPES)
        .on("GET", "/instances", LAMBDA_INSTANCES),
        "tensordock": Router()
        .on("GET", "/locations", TENSORDOCK_LOCATIONS)
        .on("GET", "/instances/vm1", TENSORDOCK_DETAIL)
        .on("GET", "/instances", {"data": [{"id": evil("vm1"), "status": evil("running")}]}),
    }



def adapter(name: str, router: Router, clients: list[httpx.AsyncClient]) -> Any:
    client = client_for(router)
    clients.append(client)
    return build(name, client)


@pytest.mark.parametrize("name", ["vast", "runpod", "lambda", "tensordock"])
async def test_every_offer_and_instance_string_is_safe(name: str, clients: list[httpx.AsyncClient]) -> None:
    provider = adapter(name, hostile_market()[name], clients)
    offers = await provider.list_offers(QUERY)
    instances = await provider.list_instances()

    assert_no_unsafe_text(offers)
    assert_no_unsafe_text(instances)
    # The visible text survives: only the controls went.
    assert {offer.raw_gpu_name for offer in offers} & {"RTX 4090", "NVIDIA GeForce RTX 4090", "H100"}
    assert all(instance.label == "job" for instance in instances), instances


async def test_vast_unknown_status_word_is_quoted_clean(clients: list[httpx.AsyncClient]) -> None:
    instances = await adapter("vast", hostile_market()["vast"], clients).list_instances()
    odd = next(instance for instance in instances if instance.instance_id == "2003")
    assert odd.provider_status == "weird" and "unrecognised Vast status 'weird'" in odd.status_message


async def test_addresses_carrying_escapes_are_not_trusted(clients: list[httpx.AsyncClient]) -> None:
    """An address with controls in it is not an address: no SSH command, no port, and a note."""
    for name in ("vast", "runpod", "lambda", "tensordock"):
        instances = await adapter(name, hostile_market()[name], clients).list_instances()
        running = [instance for instance in instances if instance.status.value == "running"]
        assert running, name
        for instance in running:
            assert instance.ssh is None, (name, instance.ssh)
            assert "invalid SSH address" in instance.status_message, (name, instance.status_message)
            assert all(":" in address and HOSTILE not in address for address in instance.ports.values())


ERROR_REPLIES: dict[str, tuple[str, str, httpx.Response]] = {
    "vast": ("GET", "/instances/", httpx.Response(
        400, json={"success": False, "error": "invalid_args", "msg": evil("bad image")})),
    "runpod": ("POST", "/graphql", httpx.Response(200, json={"errors": [{"message": evil("bad image")}]})),
    "lambda": ("GET", "/instances", httpx.Response(400, json={
        "error": {"code": "global/invalid-parameters", "message": evil("bad image"), "suggestion": evil("fix")},
        "field_errors": {evil("name"): {"message": evil("too long")}}})),
    "tensordock": ("GET", "/instances", httpx.Response(400, json={"error": evil("bad image")})),
}


@pytest.mark.parametrize("name", list(ERROR_REPLIES))
async def test_provider_error_bodies_become_safe_messages(name: str, clients: list[httpx.AsyncClient]) -> None:
    method, path, reply = ERROR_REPLIES[name]
    provider = adapter(name, Router().on(method, path, lambda _request: reply), clients)
    with pytest.raises(ProviderError) as caught:
        await provider.list_instances()
    message = str(caught.value)
    assert "bad image" in message and unsafe_chars(message) == [], repr(message)


@pytest.mark.parametrize("name", ["vast", "runpod", "lambda", "tensordock"])
async def test_plain_text_server_errors_become_safe_messages(name: str, clients: list[httpx.AsyncClient]) -> None:
    body = evil("gateway melted")
    reply = httpx.Response(502, text=body, headers={"content-type": "text/plain"})
    method = "POST" if name == "runpod" else "GET"
    provider = adapter(name, Router().on(method, "/", lambda _request: reply), clients)
    with pytest.raises(ProviderError) as caught:
        await provider.list_instances()
    message = str(caught.value)
    assert "gateway melted" in message and unsafe_chars(message) == [], repr(message)


LOG = "step 1 \x1b[31mred\x1b[0m\r\nclipboard \x1b]52;c;ZXZpbA==\x07 done \u202eevil\x00\n"


async def test_vast_logs_keep_content_and_show_controls(clients: list[httpx.AsyncClient]) -> None:
    router = (Router()
              .on("PUT", "/request_logs/", {"success": True, "result_url": "https://s3.amazonaws.com/vast/x.log"})
              .on("GET", "/vast/x.log", lambda _request: httpx.Response(200, text=LOG)))
    text = await adapter("vast", router, clients).logs("2002", tail=50)
    assert "\x1b" not in text and "\r" not in text and "\u202e" not in text and "\x00" not in text
    assert "step 1 ␛[31mred␛[0m␍\nclipboard ␛]52;c;ZXZpbA==␇ done <U+202E>evil␀" in text


async def test_vast_logs_are_cut_to_the_tail_and_say_so(clients: list[httpx.AsyncClient]) -> None:
    lines = "".join(f"line {n}\n" for n in range(10))
    router = (Router()
              .on("PUT", "/request_logs/", {"success": True, "result_url": "https://s3.amazonaws.com/vast/x.log"})
              .on("GET", "/vast/x.log", lambda _request: httpx.Response(200, text=lines)))
    text = await adapter("vast", router, clients).logs("2002", tail=3)
    assert text == f"{TRUNCATED}\nline 7\nline 8\nline 9\n"


async def test_runpod_logs_keep_content_and_show_controls(clients: list[httpx.AsyncClient]) -> None:
    events = "".join(f"data: {json.dumps({'source': 'container', 'line': line})}\n\n" for line in LOG.split("\n"))
    router = Router().on("GET", "/logs", lambda _request: httpx.Response(
        200, text=events, headers={"content-type": "text/event-stream"}))
    text = await adapter("runpod", router, clients).logs("pod1", tail=50)
    assert "\x1b" not in text and "\r" not in text and "\u202e" not in text
    assert "step 1 ␛[31mred␛[0m␍\nclipboard ␛]52;c;ZXZpbA==␇ done <U+202E>evil␀" in text
