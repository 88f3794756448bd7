"""The demo market in RunPod's wire formats: GraphQL (errors on HTTP 200), REST v2, SSE logs."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import httpx

from computehub_tui.providers.demo.market import (
    RUNPOD_DATACENTERS,
    DemoMarket,
    InstanceView,
    RunpodGpuType,
    SimError,
    SimInstance,
)
from computehub_tui.providers.demo.traces import noise
from computehub_tui.providers.payload import as_dict
from computehub_tui.providers.runpod import HOURS_PER_MONTH, STOPPED_VOLUME_USD_GB_MONTH

PROVIDER = "runpod"
ACCOUNT_ID = "user_2demo0runpod0account"
CAPACITY_MESSAGE = (
    "There are no longer any instances available with the requested specifications. "
    "Please refresh and try again."
)
INTERNAL_MESSAGE = "Something went wrong. Please try again later or contact support."
SPOT_DISCOUNT_FLOOR = 0.9
"""A bid must be at least this share of the current minimum bid before the demo refuses it."""

_ROOT_FIELD = re.compile(r"\{\s*(?:\w+\s*:\s*)?(\w+)")
_POD_ACTION = re.compile(r"/pods/([^/]+)/action$")
_POD_LOGS = re.compile(r"/pods/([^/]+)/logs$")
_ACTIONS_BY_STATUS: dict[str, tuple[str, ...]] = {
    "PROVISIONING": ("stop", "terminate"),
    "STARTING": ("stop", "terminate"),
    "RUNNING": ("stop", "restart", "terminate"),
    "EXITED": ("start", "terminate"),
}

Handler = Callable[[httpx.Request], httpx.Response]


def make_runpod_handler(market: DemoMarket) -> Handler:
    """An ``httpx.MockTransport`` handler answering RunPod GraphQL and REST v2 from ``market``."""

    def handle(request: httpx.Request) -> httpx.Response:
        path = request.url.path.rstrip("/")
        if request.method == "POST" and path.endswith("/graphql"):
            return _graphql(market, request)
        action = _POD_ACTION.search(path)
        if request.method == "POST" and action:
            return _pod_action(market, action.group(1), request)
        logs = _POD_LOGS.search(path)
        if request.method == "GET" and logs:
            return _pod_logs(market, logs.group(1), request)
        return _problem(404, "Not Found", f"no route for {request.method} {path}")

    return handle


# -- GraphQL -----------------------------------------------------------------------------------


def _graphql(market: DemoMarket, request: httpx.Request) -> httpx.Response:
    try:
        body = json.loads(request.content or b"{}")
    except json.JSONDecodeError:
        return _graphql_errors(["Syntax Error: request body is not valid JSON"], status=400)
    if not isinstance(body, dict) or not isinstance(body.get("query"), str):
        return _graphql_errors(["Must provide query string."], status=400)
    document: str = body["query"]
    variables = as_dict(body.get("variables"))
    match = _ROOT_FIELD.search(document)
    field = match.group(1) if match else ""
    operation = _OPERATIONS.get(field)
    if operation is None:
        return _graphql_errors([f'Cannot query field "{field}" on type "Query".'], status=400)
    try:
        return operation(market, document, variables)
    except SimError as error:
        return _graphql_errors([error.message], path=[field], data={field: None})


def _gpu_types(market: DemoMarket, document: str, variables: dict[str, Any]) -> httpx.Response:
    wants_price = "lowestPrice" in document
    price_input = as_dict(variables.get("input")) or None
    if wants_price and price_input is None:
        return _graphql_errors(
            ['Variable "$input" of required type "GpuLowestPriceInput!" was not provided.'],
            status=400,
        )
    types = []
    for gpu in market.runpod_gpu_types:
        item = _gpu_type_json(gpu)
        if wants_price and price_input is not None:
            item["lowestPrice"] = _lowest_price(market, gpu, price_input)
        types.append(item)
    return _data({"gpuTypes": types})


def _gpu_type_json(gpu: RunpodGpuType) -> dict[str, Any]:
    return {
        "id": gpu.gpu_type_id,
        "displayName": gpu.display_name,
        "manufacturer": gpu.manufacturer,
        "memoryInGb": gpu.memory_gb,
        "secureCloud": gpu.secure_price is not None,
        "communityCloud": gpu.community_price is not None,
        "securePrice": gpu.secure_price,
        "communityPrice": gpu.community_price,
        "secureSpotPrice": gpu.secure_spot_price,
        "communitySpotPrice": gpu.community_spot_price,
        "maxGpuCount": gpu.max_gpu_count,
    }


def _lowest_price(
    market: DemoMarket, gpu: RunpodGpuType, price_input: dict[str, Any]
) -> dict[str, Any]:
    count = int(price_input.get("gpuCount") or 1)
    secure = bool(price_input.get("secureCloud", True))
    price = market.runpod_price(gpu, secure)
    empty: dict[str, Any] = {
        "uninterruptablePrice": None,
        "minimumBidPrice": None,
        "stockStatus": None,
        "minVcpu": None,
        "minMemory": None,
        "availableGpuCounts": [],
        "countryCode": None,
    }
    if price is None:
        return empty
    stock = market.runpod_stock(gpu, secure, count)
    if stock is None:
        return {**empty, "stockStatus": "None"}
    return {
        "uninterruptablePrice": price,
        "minimumBidPrice": _spot_price(market, gpu, secure),
        "stockStatus": stock,
        "minVcpu": _vcpus_per_gpu(gpu, secure) * count,
        "minMemory": _ram_per_gpu(gpu, secure) * count,
        "availableGpuCounts": [
            c for c in (1, 2, 4, 8) if market.runpod_stock(gpu, secure, c) is not None
        ],
        "countryCode": _country(market, gpu, secure, count),
    }


def _spot_price(market: DemoMarket, gpu: RunpodGpuType, secure: bool) -> float | None:
    base = gpu.secure_spot_price if secure else gpu.community_spot_price
    if base is None:
        return None
    return round(base * market.drift(f"runpod-spot:{gpu.gpu_type_id}:{secure}"), 2)


def _vcpus_per_gpu(gpu: RunpodGpuType, secure: bool) -> int:
    return (16 if gpu.memory_gb >= 80 else 8) if secure else (12 if gpu.memory_gb >= 80 else 6)


def _ram_per_gpu(gpu: RunpodGpuType, secure: bool) -> int:
    return max(31, int(gpu.memory_gb * (1.5 if secure else 1.2)))


def _country(market: DemoMarket, gpu: RunpodGpuType, secure: bool, count: int) -> str:
    bucket = int(market.clock.now() // 900)
    roll = noise(market.seed, "rp-country", gpu.gpu_type_id, secure, count, bucket)
    return RUNPOD_DATACENTERS[int(roll * len(RUNPOD_DATACENTERS))][1]


def _myself(market: DemoMarket, document: str, variables: dict[str, Any]) -> httpx.Response:
    account: dict[str, Any] = {"id": ACCOUNT_ID}
    if re.search(r"\bpods\b", document):
        account["pods"] = [_pod_json(market, instance) for instance in market.instances_of(PROVIDER)]
    return _data({"myself": account})


def _pod(market: DemoMarket, document: str, variables: dict[str, Any]) -> httpx.Response:
    pod_id = _pod_id(variables)
    try:
        instance = market.get(PROVIDER, pod_id)
    except SimError:
        return _data({"pod": None})
    return _data({"pod": _pod_json(market, instance)})


def _deploy(market: DemoMarket, document: str, variables: dict[str, Any]) -> httpx.Response:
    return _launch(market, variables, field="podFindAndDeployOnDemand", spot=False)


def _rent_spot(market: DemoMarket, document: str, variables: dict[str, Any]) -> httpx.Response:
    return _launch(market, variables, field="podRentInterruptable", spot=True)


def _launch(
    market: DemoMarket, variables: dict[str, Any], *, field: str, spot: bool
) -> httpx.Response:
    pod_input = variables.get("input")
    if not isinstance(pod_input, dict):
        return _graphql_errors([f'Variable "$input" for {field} was not provided.'], status=400)
    gpu = next(
        (g for g in market.runpod_gpu_types if g.gpu_type_id == pod_input.get("gpuTypeId")), None
    )
    if gpu is None:
        raise SimError("bad_request", f"Invalid gpuTypeId: {pod_input.get('gpuTypeId')!r}")
    if not pod_input.get("imageName"):
        raise SimError("bad_request", "imageName is required")
    count = int(pod_input.get("gpuCount") or 1)
    secure = _pick_cloud(market, gpu, str(pod_input.get("cloudType") or "ALL").upper(), count)
    if secure is None:
        return _graphql_errors([CAPACITY_MESSAGE], path=[field], data={field: None})
    price = market.runpod_price(gpu, secure) or 0.0
    bid: float | None = None
    if spot:
        bid = float(pod_input.get("bidPerGpu") or 0.0)
        floor = (_spot_price(market, gpu, secure) or 0.0) * SPOT_DISCOUNT_FLOOR
        if bid <= 0 or bid < floor:
            raise SimError(
                "bad_bid",
                f"Your bid of ${bid:.3f}/GPU is below the minimum bid of ${floor:.3f}/GPU.",
            )
        price = bid
    instance = market.launch(
        PROVIDER,
        gpu_name=gpu.gpu_type_id,
        gpu_count=count,
        vram_gb=float(gpu.memory_gb),
        price_hour=round(price * count, 4),
        label=str(pod_input.get("name") or ""),
        image=str(pod_input["imageName"]),
        disk_gb=int(pod_input.get("containerDiskInGb") or 20),
        location=_datacenter(market, gpu, secure),
        bid_price=None if bid is None else bid * count,
        ports=_ports(str(pod_input.get("ports") or "")),
        env=_env(pod_input.get("env")),
        extra={
            "secure": secure,
            "dockerArgs": pod_input.get("dockerArgs") or "",
            "vcpus": _vcpus_per_gpu(gpu, secure) * count,
            "ram_gb": _ram_per_gpu(gpu, secure) * count,
        },
    )
    return _data({field: _pod_json(market, instance)})


def _pick_cloud(market: DemoMarket, gpu: RunpodGpuType, cloud_type: str, count: int) -> bool | None:
    """Secure (True) or Community (False) cloud with stock for this request, or None if sold out."""
    choices = {"SECURE": (True,), "COMMUNITY": (False,)}.get(cloud_type, (True, False))
    for secure in choices:
        if market.runpod_stock(gpu, secure, count) is not None:
            return secure
    return None


def _datacenter(market: DemoMarket, gpu: RunpodGpuType, secure: bool) -> str:
    roll = noise(market.seed, "rp-dc", gpu.gpu_type_id, secure, market.launch_count)
    return RUNPOD_DATACENTERS[int(roll * len(RUNPOD_DATACENTERS))][0]


def _ports(text: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in text.split(",") if part.strip()) or ("22/tcp",)


def _env(value: Any) -> dict[str, str]:
    if not isinstance(value, list):
        return {}
    return {
        str(item["key"]): str(item.get("value", ""))
        for item in value
        if isinstance(item, dict) and "key" in item
    }


def _stop(market: DemoMarket, document: str, variables: dict[str, Any]) -> httpx.Response:
    instance = market.stop(PROVIDER, _pod_id(variables))
    return _data({"podStop": {"id": instance.instance_id, "desiredStatus": "EXITED"}})


def _resume(market: DemoMarket, document: str, variables: dict[str, Any]) -> httpx.Response:
    return _resume_as(market, variables, field="podResume")


def _bid_resume(market: DemoMarket, document: str, variables: dict[str, Any]) -> httpx.Response:
    return _resume_as(market, variables, field="podBidResume")


def _resume_as(market: DemoMarket, variables: dict[str, Any], *, field: str) -> httpx.Response:
    pod_input = as_dict(variables.get("input"))
    if not isinstance(pod_input.get("gpuCount"), int):
        return _graphql_errors(
            ['Field "gpuCount" of required type "Int!" was not provided.'], status=400
        )
    instance = market.get(PROVIDER, _pod_id(variables))
    if pod_input["gpuCount"] != instance.gpu_count:
        raise SimError(
            "bad_request",
            f"This pod has {instance.gpu_count} GPU(s); resume it with the same count.",
        )
    market.start(PROVIDER, instance.instance_id)
    return _data({field: {"id": instance.instance_id, "desiredStatus": "RUNNING"}})


def _terminate(market: DemoMarket, document: str, variables: dict[str, Any]) -> httpx.Response:
    if re.search(r"podTerminate\s*\([^)]*\)\s*\{", document):
        return _graphql_errors(
            ['Field "podTerminate" must not have a selection since type "Void" has no subfields.'],
            status=400,
        )
    market.destroy(PROVIDER, _pod_id(variables))
    return _data({"podTerminate": None})


_OPERATIONS: dict[str, Callable[[DemoMarket, str, dict[str, Any]], httpx.Response]] = {
    "gpuTypes": _gpu_types,
    "myself": _myself,
    "pod": _pod,
    "podFindAndDeployOnDemand": _deploy,
    "podRentInterruptable": _rent_spot,
    "podStop": _stop,
    "podResume": _resume,
    "podBidResume": _bid_resume,
    "podTerminate": _terminate,
}


def _pod_id(variables: dict[str, Any]) -> str:
    pod_input = as_dict(variables.get("input"))
    pod_id = pod_input.get("podId")
    if not isinstance(pod_id, str) or not pod_id:
        raise SimError("bad_request", 'Field "podId" of required type "String!" was not provided.')
    return pod_id


# -- pod rendering -----------------------------------------------------------------------------


def _pod_json(market: DemoMarket, instance: SimInstance) -> dict[str, Any]:
    view = market.view(instance)
    gpu = _gpu_for(market, instance)
    running = view.status == "running"
    desired = "RUNNING" if view.status in ("provisioning", "loading", "running") else "EXITED"
    return {
        "id": instance.instance_id,
        "name": instance.label,
        "desiredStatus": desired,
        "costPerHr": instance.price_hour,
        "gpuCount": instance.gpu_count,
        "imageName": instance.image,
        "lastStatusChange": _status_change_text(instance, view),
        "machineId": f"{int(noise(market.seed, 'rp-machine', instance.instance_id) * 10**10):010d}",
        "podType": "INTERRUPTABLE" if instance.bid_price is not None else "RESERVED",
        "memoryInGb": _extra_int(instance, "ram_gb", 31 * instance.gpu_count),
        "vcpuCount": _extra_int(instance, "vcpus", 8 * instance.gpu_count),
        "containerDiskInGb": instance.disk_gb,
        # The volume whose stopped price is what the simulated market bills this pod while stopped.
        "volumeInGb": round(instance.storage_price_hour * HOURS_PER_MONTH / STOPPED_VOLUME_USD_GB_MONTH),
        "ports": ",".join(instance.ports),
        "machine": {
            "gpuDisplayName": gpu.display_name if gpu else instance.gpu_name,
            "location": instance.location,
            "podHostId": f"{instance.instance_id}-64410065",
        },
        "runtime": _runtime_json(instance, view) if running else None,
    }


def _gpu_for(market: DemoMarket, instance: SimInstance) -> RunpodGpuType | None:
    return next((g for g in market.runpod_gpu_types if g.gpu_type_id == instance.gpu_name), None)


def _extra_int(instance: SimInstance, key: str, default: int) -> int:
    value = instance.extra.get(key)
    return value if isinstance(value, int) else default


def _status_change_text(instance: SimInstance, view: InstanceView) -> str:
    if view.status == "stopped" and instance.stopped_at is not None:
        return f"Exited by user: {_http_date(instance.stopped_at)}"
    if view.status == "exited":
        return f"Exited by container: {view.status_message}"
    return f"Rented by User: {_http_date(instance.run_requested_at)}"


def _runtime_json(instance: SimInstance, view: InstanceView) -> dict[str, Any]:
    return {
        "uptimeInSeconds": int(view.seconds_running),
        "ports": _runtime_ports(instance),
        "gpus": [
            {
                "id": f"GPU-{instance.instance_id[:8]}-{index}",
                "gpuUtilPercent": round(reading.util),
                "memoryUtilPercent": round(100 * reading.vram_used_gb / instance.vram_gb)
                if instance.vram_gb
                else 0,
            }
            for index, reading in enumerate(view.gpus)
        ],
        "container": {"cpuPercent": round(view.cpu_pct), "memoryPercent": round(view.ram_pct)},
    }


def _runtime_ports(instance: SimInstance) -> list[dict[str, Any]]:
    mapped: list[dict[str, Any]] = []
    for index, spec in enumerate(instance.ports):
        number, _, kind = spec.partition("/")
        if not number.isdigit():
            continue
        kind = (kind or "tcp").lower()
        if kind == "tcp":
            public_port = instance.ssh_port if number == "22" else instance.ssh_port + 1 + index
            mapped.append(
                {
                    "ip": instance.public_ip,
                    "isIpPublic": True,
                    "privatePort": int(number),
                    "publicPort": public_port,
                    "type": "tcp",
                }
            )
        else:  # HTTP ports go through RunPod's proxy, so only a private address shows here
            mapped.append(
                {
                    "ip": f"100.65.{index}.{int(number) % 250}",
                    "isIpPublic": False,
                    "privatePort": int(number),
                    "publicPort": 60000 + index,
                    "type": "http",
                }
            )
    return mapped


# -- REST v2 -----------------------------------------------------------------------------------


def _v2_status(view: InstanceView) -> str:
    return {"provisioning": "PROVISIONING", "loading": "STARTING", "running": "RUNNING"}.get(
        view.status, "EXITED"
    )


def _pod_action(market: DemoMarket, pod_id: str, request: httpx.Request) -> httpx.Response:
    try:
        body = json.loads(request.content or b"{}")
    except json.JSONDecodeError:
        return _problem(400, "Bad Request", "request body is not valid JSON")
    action = body.get("action") if isinstance(body, dict) else None
    if action not in ("start", "stop", "restart", "terminate"):
        return _problem(
            422,
            "Unprocessable Entity",
            "validation failed",
            errors=["$.action: value must be one of start, stop, restart, terminate"],
        )
    try:
        instance = market.get(PROVIDER, pod_id)
    except SimError:
        return _problem(404, "Not Found", "pod not found")
    status = _v2_status(market.view(instance))
    allowed = _ACTIONS_BY_STATUS.get(status, ())
    if action not in allowed:
        return _problem(
            409, "Conflict", f"action {action!r} is not allowed for a pod in status {status}"
        )
    _apply_action(market, pod_id, action)
    if action == "terminate":
        return httpx.Response(204)
    return httpx.Response(200, json=_v2_pod_json(market, instance))


def _apply_action(market: DemoMarket, pod_id: str, action: str) -> None:
    if action == "start":
        market.start(PROVIDER, pod_id)
    elif action == "stop":
        market.stop(PROVIDER, pod_id)
    elif action == "restart":
        market.reboot(PROVIDER, pod_id)
    else:
        market.destroy(PROVIDER, pod_id)


def _v2_pod_json(market: DemoMarket, instance: SimInstance) -> dict[str, Any]:
    status = _v2_status(market.view(instance))
    return {
        "id": instance.instance_id,
        "name": instance.label,
        "status": status,
        "actions": list(_ACTIONS_BY_STATUS.get(status, ())),
        "gpu": {"id": instance.gpu_name, "count": instance.gpu_count},
        "cost": instance.price_hour if status != "EXITED" else 0.0,
        "image": instance.image,
    }


def _pod_logs(market: DemoMarket, pod_id: str, request: httpx.Request) -> httpx.Response:
    tail_text = request.url.params.get("tail", "100")
    if not tail_text.isdigit() or not 0 <= int(tail_text) <= 5000:
        return _problem(400, "Bad Request", "tail must be an integer between 0 and 5000")
    try:
        instance = market.get(PROVIDER, pod_id)
    except SimError:
        return _problem(404, "Not Found", "pod not found")
    lines = market.logs(instance, tail=int(tail_text)) if int(tail_text) else []
    now = market.clock.now()
    events = []
    for index, line in enumerate(lines):
        stamp = _rfc3339(now - (len(lines) - index))
        source = "system" if line.startswith("[boot]") else "container"
        data = json.dumps({"source": source, "line": line, "ts": stamp})
        events.append(f"id: {stamp}\ndata: {data}\n\n")
    # The real endpoint may keep following; the demo ends the stream once the tail is sent.
    return httpx.Response(
        200,
        headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"},
        content=("".join(events)).encode(),
    )


# -- response shapes ---------------------------------------------------------------------------


def _data(data: dict[str, Any]) -> httpx.Response:
    return httpx.Response(200, json={"data": data})


def _graphql_errors(
    messages: list[str],
    *,
    status: int = 200,
    path: list[str] | None = None,
    data: dict[str, Any] | None = None,
) -> httpx.Response:
    errors: list[dict[str, Any]] = []
    for message in messages:
        error: dict[str, Any] = {"message": message}
        if path:
            error["path"] = path
        if message == INTERNAL_MESSAGE:
            error["extensions"] = {"code": "INTERNAL_SERVER_ERROR"}
        errors.append(error)
    return httpx.Response(status, json={"errors": errors, "data": data})


def _problem(
    status: int, title: str, detail: str, *, errors: list[str] | None = None
) -> httpx.Response:
    body: dict[str, Any] = {"title": title, "status": status, "detail": detail}
    if errors:
        body["errors"] = errors
    return httpx.Response(status, json=body, headers={"Content-Type": "application/problem+json"})


def _http_date(timestamp: float) -> str:
    return datetime.fromtimestamp(timestamp, tz=UTC).strftime(
        "%a %b %d %Y %H:%M:%S GMT+0000"
    )


def _rfc3339(timestamp: float) -> str:
    return (
        datetime.fromtimestamp(timestamp, tz=UTC)
        .isoformat(timespec="seconds")
        .replace("+00:00", "Z")
    )
