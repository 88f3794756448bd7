"""The demo market spoken in Lambda Cloud's v1 REST wire format, for an httpx.MockTransport."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

import httpx

from computehub_tui.providers.demo.market import (
    LAMBDA_REGIONS,
    DemoMarket,
    LambdaType,
    SimError,
    SimInstance,
)

API_PREFIX = "/api/v1"
DEMO_SSH_KEYS: dict[str, str] = {
    "demo-key": "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIDemoDemoDemoDemoDemoDemo demo@computehub",
}
SHOW_TERMINATED_FOR_S = 30.0
"""Lambda keeps listing a terminated instance for a short while before it disappears."""

_SIM_TO_LAMBDA_STATUS = {
    "provisioning": "booting",
    "loading": "booting",
    "running": "active",
    "exited": "unhealthy",
    "stopped": "unhealthy",  # Lambda cannot stop; a stopped sim machine can only be unhealthy
    "terminated": "terminated",
}
_INSTANCE_PATH = re.compile(r"^/instances/(?P<id>[^/]+)$")
_OPERATION_PATH = re.compile(r"^/instance-operations/(?P<operation>launch|restart|terminate)$")
_GPU_DESCRIPTION = re.compile(r"^(?P<name>[^(]+?)\s*\((?P<vram>\d+(?:\.\d+)?)\s*GB")

Handler = Callable[[httpx.Request], httpx.Response]


def make_lambda_handler(market: DemoMarket, account_key_name: str = "") -> Handler:
    """A MockTransport handler answering Lambda's endpoints from ``market``. The demo account has
    ``account_key_name`` registered besides its own, so a key the user configured works in the demo
    too (and no configured key fails as on a real account)."""
    return _LambdaDemoApi(market, account_key_name).handle


class _LambdaDemoApi:
    def __init__(self, market: DemoMarket, account_key_name: str = "") -> None:
        self.market = market
        self.ssh_keys = dict(DEMO_SSH_KEYS)
        if account_key_name:
            self.ssh_keys[account_key_name] = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIUserKeyInTheDemo user@demo"
        self.types_by_name: dict[str, LambdaType] = {t.name: t for t in market.lambda_types}
        self.region_descriptions: dict[str, str] = dict(LAMBDA_REGIONS)

    def handle(self, request: httpx.Request) -> httpx.Response:
        path = request.url.path.split(API_PREFIX, 1)[-1].rstrip("/") or "/"
        method = request.method.upper()
        if method == "GET" and path == "/instance-types":
            return _ok(self.instance_types())
        if method == "GET" and path == "/instances":
            return _ok([self.instance_json(i) for i in self.listed_instances()])
        if method == "GET" and path == "/ssh-keys":
            return _ok(
                [
                    {"id": f"key-{n}", "name": name, "public_key": key}
                    for n, (name, key) in enumerate(self.ssh_keys.items())
                ]
            )
        instance_match = _INSTANCE_PATH.match(path)
        if method == "GET" and instance_match:
            return self.one_instance(instance_match["id"])
        operation_match = _OPERATION_PATH.match(path)
        if method == "POST" and operation_match:
            body = _json_body(request)
            if body is None:
                return _error(400, "global/invalid-parameters", "Request body is not valid JSON.")
            operation = operation_match["operation"]
            if operation == "launch":
                return self.launch(body)
            return self.instance_operation(operation, body)
        return _error(404, "global/object-does-not-exist", "Not found.")

    # -- reads ------------------------------------------------------------------------------

    def instance_types(self) -> dict[str, Any]:
        return {
            instance_type.name: {
                "instance_type": _type_json(instance_type),
                "regions_with_capacity_available": [
                    {"name": name, "description": description}
                    for name, description in self.market.lambda_regions_with_capacity(instance_type)
                ],
            }
            for instance_type in self.market.lambda_types
        }

    def listed_instances(self) -> list[SimInstance]:
        return self.market.instances_of("lambda", include_destroyed_for=SHOW_TERMINATED_FOR_S)

    def one_instance(self, instance_id: str) -> httpx.Response:
        for instance in self.listed_instances():
            if instance.instance_id == instance_id:
                return _ok(self.instance_json(instance))
        return _error(
            404, "global/object-does-not-exist", f"Instance {instance_id} does not exist."
        )

    def instance_json(self, instance: SimInstance) -> dict[str, Any]:
        status = _SIM_TO_LAMBDA_STATUS.get(self.market.view(instance).status, "unhealthy")
        ip = (
            instance.public_ip if status != "booting" else None
        )  # Lambda assigns the IP during boot
        key_names = instance.extra.get("ssh_key_names")
        return {
            "id": instance.instance_id,
            "name": instance.label or None,
            "ip": ip,
            "status": status,
            "ssh_key_names": list(key_names) if isinstance(key_names, list) else ["demo-key"],
            "file_system_names": [],
            "region": {
                "name": instance.location,
                "description": self.region_descriptions.get(instance.location, ""),
            },
            "instance_type": _type_json(self.type_of(instance)),
            "hostname": f"{ip.replace('.', '-')}.cloud.lambdalabs.com" if ip else None,
            "jupyter_token": None,
            "jupyter_url": None,
        }

    def type_of(self, instance: SimInstance) -> LambdaType:
        named = self.types_by_name.get(str(instance.extra.get("instance_type_name", "")))
        if named is not None:
            return named
        for candidate in self.market.lambda_types:
            model = candidate.gpu_description.split(" (", 1)[0]
            if model == instance.gpu_name and candidate.gpus == instance.gpu_count:
                return candidate
        vram = f"{instance.vram_gb:g}"
        return LambdaType(
            name=f"gpu_{instance.gpu_count}x_{instance.gpu_name.lower().replace(' ', '')}",
            description=f"{instance.gpu_count}x {instance.gpu_name} ({vram} GB)",
            gpu_description=f"{instance.gpu_name} ({vram} GB)",
            price_cents=round(instance.price_hour * 100),
            vcpus=8 * instance.gpu_count,
            memory_gib=64 * instance.gpu_count,
            storage_gib=instance.disk_gb,
            gpus=instance.gpu_count,
        )

    # -- writes -----------------------------------------------------------------------------

    def launch(self, body: dict[str, Any]) -> httpx.Response:
        instance_type = self.types_by_name.get(str(body.get("instance_type_name") or ""))
        if instance_type is None:
            return _invalid("instance_type_name", "Unknown instance type.")
        region_name = str(body.get("region_name") or "")
        if region_name not in self.region_descriptions:
            return _invalid("region_name", f"Unknown region '{region_name}'.")
        key_names = body.get("ssh_key_names")
        if not isinstance(key_names, list) or len(key_names) != 1:
            return _invalid("ssh_key_names", "Exactly one SSH key name is required.")
        if key_names[0] not in self.ssh_keys:
            return _invalid("ssh_key_names", f"SSH key '{key_names[0]}' does not exist.")
        capacity = {name for name, _ in self.market.lambda_regions_with_capacity(instance_type)}
        if region_name not in capacity:
            return _error(
                400,
                "instance-operations/launch/insufficient-capacity",
                "Not enough capacity to fulfill launch request.",
                "Choose an instance type with more availability, or try again later.",
            )
        gpu = _GPU_DESCRIPTION.match(instance_type.gpu_description)
        instance = self.market.launch(
            "lambda",
            gpu_name=gpu["name"] if gpu else instance_type.gpu_description,
            gpu_count=instance_type.gpus,
            vram_gb=float(gpu["vram"]) if gpu else 0.0,
            price_hour=instance_type.price_cents / 100.0,
            label=str(body.get("name") or ""),
            image="Lambda Stack",
            disk_gb=instance_type.storage_gib,
            location=region_name,
            extra={"instance_type_name": instance_type.name, "ssh_key_names": list(key_names)},
        )
        return _ok({"instance_ids": [instance.instance_id]})

    def instance_operation(self, operation: str, body: dict[str, Any]) -> httpx.Response:
        ids = body.get("instance_ids")
        if not isinstance(ids, list) or not ids:
            return _invalid("instance_ids", "At least one instance id is required.")
        act = self.market.reboot if operation == "restart" else self.market.destroy
        done = []
        for instance_id in ids:
            try:
                done.append(act("lambda", str(instance_id)))
            except SimError as error:
                if error.code == "not_found":
                    return _error(
                        404,
                        "global/object-does-not-exist",
                        f"Instance {instance_id} does not exist.",
                    )
                return _error(400, "global/invalid-parameters", error.message)
        key = "restarted_instances" if operation == "restart" else "terminated_instances"
        return _ok({key: [self.instance_json(instance) for instance in done]})


def _type_json(instance_type: LambdaType) -> dict[str, Any]:
    return {
        "name": instance_type.name,
        "description": instance_type.description,
        "gpu_description": instance_type.gpu_description,
        "price_cents_per_hour": instance_type.price_cents,
        "specs": {
            "vcpus": instance_type.vcpus,
            "memory_gib": instance_type.memory_gib,
            "storage_gib": instance_type.storage_gib,
            "gpus": instance_type.gpus,
        },
    }


def _json_body(request: httpx.Request) -> dict[str, Any] | None:
    try:
        body = json.loads(request.content or b"{}")
    except (json.JSONDecodeError, UnicodeDecodeError):
        return None
    return body if isinstance(body, dict) else None


def _ok(data: Any) -> httpx.Response:
    return httpx.Response(200, json={"data": data})


def _invalid(field_name: str, message: str) -> httpx.Response:
    body = {
        "error": {"code": "global/invalid-parameters", "message": "Invalid request parameters."},
        "field_errors": {field_name: {"code": "global/invalid-parameters", "message": message}},
    }
    return httpx.Response(400, json=body)


def _error(status: int, code: str, message: str, suggestion: str = "") -> httpx.Response:
    error = {"code": code, "message": message}
    if suggestion:
        error["suggestion"] = suggestion
    return httpx.Response(status, json={"error": error})
