"""The demo market spoken in TensorDock's v2 REST wire format, for an httpx.MockTransport."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

import httpx

from computehub_tui.providers.demo.market import (
    DemoMarket,
    SimError,
    SimInstance,
    TensordockGpu,
    TensordockLocation,
)
from computehub_tui.providers.payload import as_dict

API_PREFIX = "/api/v2"
MIN_STORAGE_GB = 100
VCPUS_PER_GPU = 8
RAM_GB_PER_GPU = 32

_SIM_TO_TENSORDOCK_STATUS = {
    "provisioning": "creating",
    "loading": "starting",
    "running": "running",
    "stopped": "stopped",
    "exited": "error",  # the VM crashed; TensorDock lets it be started again
    "terminated": "deleted",
}
_INSTANCE_PATH = re.compile(r"^/instances/(?P<id>[^/]+)$")
_ACTION_PATH = re.compile(r"^/instances/(?P<id>[^/]+)/(?P<action>start|stop)$")

Handler = Callable[[httpx.Request], httpx.Response]


def make_tensordock_handler(market: DemoMarket) -> Handler:
    """A MockTransport handler answering TensorDock's v2 endpoints from ``market``."""
    return _TensordockDemoApi(market).handle


class _TensordockDemoApi:
    def __init__(self, market: DemoMarket) -> None:
        self.market = market
        self.locations: dict[str, TensordockLocation] = {
            location.location_id: location for location in market.tensordock_locations
        }

    def handle(self, request: httpx.Request) -> httpx.Response:
        path = request.url.path.split(API_PREFIX, 1)[-1].rstrip("/") or "/"
        method = request.method.upper()
        if method == "GET" and path == "/locations":
            return httpx.Response(200, json={"data": {"locations": self.locations_json()}})
        if method == "GET" and path == "/instances":
            return httpx.Response(200, json={"data": {"instances": self.instance_summaries()}})
        if method == "POST" and path == "/instances":
            return self.create(request)
        action = _ACTION_PATH.match(path)
        if method == "POST" and action:
            return self.act(action["id"], action["action"])
        one = _INSTANCE_PATH.match(path)
        if method == "GET" and one:
            return self.detail(one["id"])
        if method == "DELETE" and one:
            return self.act(one["id"], "delete")
        return _error(404, "Not found")

    # -- reads ------------------------------------------------------------------------------

    def locations_json(self) -> list[dict[str, Any]]:
        return [
            {
                "id": location.location_id,
                "city": location.city,
                "stateprovince": location.stateprovince,
                "country": location.country,
                "tier": location.tier,
                "gpus": [self.gpu_json(location, gpu) for gpu in location.gpus],
            }
            for location in self.market.tensordock_locations
        ]

    def gpu_json(self, location: TensordockLocation, gpu: TensordockGpu) -> dict[str, Any]:
        return {
            "v0Name": gpu.v0_name,
            "displayName": gpu.display_name,
            "max_count": self.market.tensordock_available(location, gpu),
            "price_per_hr": self.market.tensordock_gpu_price(location, gpu),
            "resources": {
                "max_vcpus": location.max_vcpus,
                "max_ram_gb": location.max_ram_gb,
                "max_storage_gb": location.max_storage_gb,
            },
            "pricing": {
                "per_vcpu_hr": location.per_vcpu_hr,
                "per_gb_ram_hr": location.per_gb_ram_hr,
                "per_gb_storage_hr": location.per_gb_storage_hr,
            },
            "network_features": {
                "dedicated_ip_available": location.tier >= 3,
                "port_forwarding_available": True,
                "network_storage_available": False,
            },
        }

    def instance_summaries(self) -> list[dict[str, Any]]:
        return [
            {
                "type": "virtualmachine",
                "id": instance.instance_id,
                "attributes": {"name": instance.label, "status": self.status_of(instance)},
            }
            for instance in self.market.instances_of("tensordock")
        ]

    def detail(self, instance_id: str) -> httpx.Response:
        try:
            instance = self.market.get("tensordock", instance_id)
        except SimError:
            return _error(404, f"Instance {instance_id} not found")
        status = self.status_of(instance)
        has_address = status not in ("creating", "deleted")
        gpu_count = instance.gpu_count
        return httpx.Response(
            200,
            json={
                "type": "virtualmachine",
                "id": instance.instance_id,
                "name": instance.label,
                "status": status,
                "ipAddress": instance.public_ip if has_address else None,
                "portForwards": self.port_forwards_of(instance) if has_address else [],
                "resources": {
                    "vcpu_count": _int(instance.extra.get("vcpus")) or VCPUS_PER_GPU * gpu_count,
                    "ram_gb": _int(instance.extra.get("ram_gb")) or RAM_GB_PER_GPU * gpu_count,
                    "storage_gb": instance.disk_gb,
                    "gpus": {instance.gpu_name: {"count": gpu_count}},
                },
                "rateHourly": round(instance.price_hour, 4),
                "location": instance.location,
            },
        )

    def status_of(self, instance: SimInstance) -> str:
        return _SIM_TO_TENSORDOCK_STATUS.get(self.market.view(instance).status, "error")

    @staticmethod
    def port_forwards_of(instance: SimInstance) -> list[dict[str, int]]:
        forwards = instance.extra.get("port_forwards")
        if isinstance(forwards, list):
            return forwards
        return [{"internal_port": 22, "external_port": instance.ssh_port}]

    # -- writes -----------------------------------------------------------------------------

    def create(self, request: httpx.Request) -> httpx.Response:
        attributes = _attributes(request)
        if attributes is None:
            return _error(
                400, 'Body must be {"data": {"type": "virtualmachine", "attributes": {...}}}'
            )
        resources = as_dict(attributes.get("resources"))
        location = self.locations.get(str(attributes.get("location_id") or ""))
        if location is None:
            return _error(400, "location_id is missing or unknown")
        gpus = resources.get("gpus")
        if not isinstance(gpus, dict) or len(gpus) != 1:
            return _error(400, "resources.gpus must name exactly one GPU model")
        v0_name, gpu_request = next(iter(gpus.items()))
        gpu = next((g for g in location.gpus if g.v0_name == v0_name), None)
        count = _int(gpu_request.get("count")) if isinstance(gpu_request, dict) else 0
        problem = self.resource_problem(location, gpu, count, resources, attributes)
        if problem:
            return _error(400, problem)
        assert gpu is not None
        available = self.market.tensordock_available(location, gpu)
        if count > available:
            return _error(
                400,
                f"No available hostnode in {location.city} has {count}x {gpu.display_name} free",
            )
        return self.launch(location, gpu, count, resources, attributes)

    def resource_problem(
        self,
        location: TensordockLocation,
        gpu: TensordockGpu | None,
        count: int,
        resources: dict[str, Any],
        attributes: dict[str, Any],
    ) -> str:
        if gpu is None:
            return f"GPU model is not offered in {location.city}"
        if count < 1:
            return "resources.gpus count must be at least 1"
        if _int(resources.get("storage_gb")) < MIN_STORAGE_GB:
            return f"storage_gb must be at least {MIN_STORAGE_GB}"
        if not 1 <= _int(resources.get("vcpu_count")) <= location.max_vcpus:
            return f"vcpu_count must be between 1 and {location.max_vcpus}"
        if not 1 <= _int(resources.get("ram_gb")) <= location.max_ram_gb:
            return f"ram_gb must be between 1 and {location.max_ram_gb}"
        if bool(attributes.get("ssh_key")) == bool(attributes.get("ssh_key_id")):
            return "provide exactly one of ssh_key or ssh_key_id"
        if not _forwards(attributes.get("port_forwards")):
            return "port_forwards must forward internal port 22 (or request a dedicated IP)"
        return ""

    def launch(
        self,
        location: TensordockLocation,
        gpu: TensordockGpu,
        count: int,
        resources: dict[str, Any],
        attributes: dict[str, Any],
    ) -> httpx.Response:
        vcpus, ram_gb, storage_gb = (
            _int(resources.get(k)) for k in ("vcpu_count", "ram_gb", "storage_gb")
        )
        gpu_price = self.market.tensordock_gpu_price(location, gpu)
        price_hour = (
            count * gpu_price
            + vcpus * location.per_vcpu_hr
            + ram_gb * location.per_gb_ram_hr
            + storage_gb * location.per_gb_storage_hr
        )
        forwards = _forwards(attributes.get("port_forwards"))
        instance = self.market.launch(
            "tensordock",
            gpu_name=gpu.v0_name,
            gpu_count=count,
            vram_gb=float(gpu.vram_gb),
            price_hour=round(price_hour, 4),
            storage_price_hour=round(storage_gb * location.per_gb_storage_hr, 5),
            label=str(attributes.get("name") or ""),
            image=str(attributes.get("image") or ""),
            disk_gb=storage_gb,
            location=f"{location.city}, {location.country}",
            extra={
                "location_id": location.location_id,
                "vcpus": vcpus,
                "ram_gb": ram_gb,
                "port_forwards": forwards,
            },
        )
        instance.ssh_port = next(f["external_port"] for f in forwards if f["internal_port"] == 22)
        return httpx.Response(
            201,
            json={
                "data": {
                    "type": "virtualmachine",
                    "id": instance.instance_id,
                    "name": instance.label,
                    "status": "creating",
                }
            },
        )

    def act(self, instance_id: str, action: str) -> httpx.Response:
        operations = {
            "start": self.market.start,
            "stop": self.market.stop,
            "delete": self.market.destroy,
        }
        try:
            operations[action]("tensordock", instance_id)
        except SimError as error:
            if error.code == "not_found":
                return _error(404, f"Instance {instance_id} not found")
            return _error(409, error.message)
        return httpx.Response(
            200, json={"data": {"id": instance_id, "action": action, "status": "success"}}
        )


def _attributes(request: httpx.Request) -> dict[str, Any] | None:
    try:
        body = json.loads(request.content or b"{}")
    except (json.JSONDecodeError, UnicodeDecodeError):
        return None
    data = as_dict(body.get("data") if isinstance(body, dict) else None)
    attributes = data.get("attributes")
    if not isinstance(attributes, dict) or data.get("type") != "virtualmachine":
        return None
    return attributes


def _forwards(raw: Any) -> list[dict[str, int]]:
    """The requested forwards if they include SSH, else an empty list."""
    if not isinstance(raw, list):
        return []
    forwards = [
        {
            "internal_port": _int(item.get("internal_port")),
            "external_port": _int(item.get("external_port")),
        }
        for item in raw
        if isinstance(item, dict)
    ]
    if not any(f["internal_port"] == 22 and f["external_port"] > 0 for f in forwards):
        return []
    return forwards


def _int(value: Any) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return 0


def _error(status: int, message: str) -> httpx.Response:
    return httpx.Response(status, json={"status": status, "error": message})
