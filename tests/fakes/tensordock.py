"""A fake TensorDock v2 API (/api/v2): locations with per-resource prices, VM lifecycle."""

from __future__ import annotations

import copy
import re
from typing import Any

from loopback import RecordedRequest, Reply

from fakes import FakeMarketplace, json_body

NEW_VM_ID = "3e8a1c44-5b7d-4f20-9c6e-2d1b0a9f8e7d"

IDAHO_RATES = {"per_vcpu_hr": 0.003, "per_gb_ram_hr": 0.002, "per_gb_storage_hr": 0.00005}
VIRGINIA_RATES = {"per_vcpu_hr": 0.004, "per_gb_ram_hr": 0.0025, "per_gb_storage_hr": 0.0001}
NETWORK = {
    "dedicated_ip_available": True,
    "port_forwarding_available": True,
    "network_storage_available": False,
}

IDAHO: dict[str, Any] = {
    "id": "0c5a3a5e-2d8b-4f0e-9b1e-7a6c5d4e3f21",
    "city": "Chubbuck",
    "stateprovince": "Idaho",
    "country": "United States",
    "tier": 3,
    "gpus": [
        {
            "v0Name": "geforcertx4090-pcie-24gb",
            "displayName": "GeForce RTX 4090 PCIe 24GB",
            "max_count": 4,
            "price_per_hr": 0.35,
            "resources": {"max_vcpus": 48, "max_ram_gb": 192, "max_storage_gb": 4000},
            "pricing": IDAHO_RATES,
            "network_features": NETWORK,
        },
        {
            "v0Name": "rtxa6000-pcie-48gb",
            "displayName": "RTX A6000 PCIe 48GB",
            "max_count": 2,
            "price_per_hr": 0.45,
            "resources": {"max_vcpus": 32, "max_ram_gb": 128, "max_storage_gb": 2000},
            "pricing": IDAHO_RATES,
            "network_features": NETWORK,
        },
    ],
}
VIRGINIA: dict[str, Any] = {
    "id": "9f1e2d3c-4b5a-4697-8877-665544332211",
    "city": "Manassas",
    "stateprovince": "Virginia",
    "country": "United States",
    "tier": 4,
    "gpus": [
        {
            "v0Name": "h100-sxm5-80gb",
            "displayName": "H100 SXM5 80GB",
            "max_count": 8,
            "price_per_hr": 2.25,
            "resources": {"max_vcpus": 192, "max_ram_gb": 1536, "max_storage_gb": 20000},
            "pricing": VIRGINIA_RATES,
            "network_features": NETWORK,
        },
    ],
}
AMSTERDAM: dict[str, Any] = {
    "id": "5a6b7c8d-9e0f-4a1b-8c2d-3e4f5a6b7c8d",
    "city": "Amsterdam",
    "stateprovince": "North Holland",
    "country": "Netherlands",
    "tier": 3,
    "gpus": [
        {
            "v0Name": "a100-sxm4-80gb",
            "displayName": "A100 SXM4 80GB",
            "max_count": 0,
            "price_per_hr": 1.2,
            "resources": {"max_vcpus": 0, "max_ram_gb": 0, "max_storage_gb": 0},
            "pricing": IDAHO_RATES,
            "network_features": NETWORK,
        },
    ],
}
LOCATIONS = [IDAHO, VIRGINIA, AMSTERDAM]

RUNNING_VM: dict[str, Any] = {
    "type": "virtualmachine",
    "id": "b7d2e9f0-1a3c-4e5b-8d7f-0a1b2c3d4e5f",
    "name": "comfyui-box",
    "status": "running",
    "ipAddress": "174.94.145.71",
    "portForwards": [
        {"internal_port": 22, "external_port": 20022},
        {"internal_port": 8188, "external_port": 20188},
    ],
    "resources": {
        "vcpu_count": 8,
        "ram_gb": 32,
        "storage_gb": 100,
        "gpus": {"geforcertx4090-pcie-24gb": {"count": 1}},
    },
    "rateHourly": 0.443,
    "location_id": IDAHO["id"],
}
DEDICATED_IP_VM: dict[str, Any] = {
    **RUNNING_VM,
    "id": "c1d2e3f4-a5b6-4c7d-8e9f-0a1b2c3d4e5f",
    "name": "h100-pair",
    "ipAddress": "38.128.232.19",
    "portForwards": [],
    "resources": {
        "vcpu_count": 16,
        "ram_gb": 64,
        "storage_gb": 500,
        "gpus": {"h100-sxm5-80gb": {"count": 2}},
    },
    "rateHourly": 4.804,
    "location_id": VIRGINIA["id"],
}
STOPPED_VM: dict[str, Any] = {
    **RUNNING_VM,
    "id": "d4c3b2a1-0f9e-4d8c-b7a6-5f4e3d2c1b0a",
    "name": "a6000-paused",
    "status": "stopped",
    "ipAddress": "174.94.145.88",
    "portForwards": [{"internal_port": 22, "external_port": 20922}],
    "resources": {
        "vcpu_count": 8,
        "ram_gb": 32,
        "storage_gb": 200,
        "gpus": {"rtxa6000-pcie-48gb": {"count": 1}},
    },
    "rateHourly": 0.548,
}
CREATING_VM: dict[str, Any] = {
    **RUNNING_VM,
    "id": "e5f6a7b8-c9d0-4e1f-a2b3-c4d5e6f7a8b9",
    "name": "fresh-vm",
    "status": "creating",
    "ipAddress": None,
    "portForwards": [],
}
VMS = [RUNNING_VM, DEDICATED_IP_VM, STOPPED_VM, CREATING_VM]


class FakeTensordock(FakeMarketplace):
    """TensorDock's v2 API: JSON:API-style envelopes; list summaries, detail per VM."""

    env_urls = {"COMPUTEHUB_TENSORDOCK_URL": "/api/v2"}

    def __init__(self, *valid_keys: str, vms: list[dict[str, Any]] | None = None) -> None:
        super().__init__(*valid_keys)
        self.vms = {vm["id"]: copy.deepcopy(vm) for vm in (VMS if vms is None else vms)}
        self.on("GET", "/api/v2/locations", self._locations)
        self.on("GET", "/api/v2/instances", self._list)
        self.on("GET", r"/api/v2/instances/([0-9a-f-]+)", self._detail)
        self.on("POST", "/api/v2/instances", self._create)
        self.on("POST", r"/api/v2/instances/([0-9a-f-]+)/(start|stop)", self._power)
        self.on("DELETE", r"/api/v2/instances/([0-9a-f-]+)", self._delete)

    def unauthorized(self, request: RecordedRequest) -> Reply:
        return Reply.json({"status": 401, "error": "Invalid or expired API token"}, 401)

    def not_routed(self, request: RecordedRequest) -> Reply:
        return Reply.json({"status": 404, "error": "Instance not found"}, 404)

    def _locations(self, request: RecordedRequest, match: re.Match[str]) -> Reply:
        return Reply.json({"data": {"locations": LOCATIONS}})

    def _list(self, request: RecordedRequest, match: re.Match[str]) -> Reply:
        summaries = [
            {
                "type": "virtualmachine",
                "id": vm["id"],
                "attributes": {"name": vm["name"], "status": vm["status"]},
            }
            for vm in self.vms.values()
        ]
        return Reply.json({"data": {"instances": summaries}})

    def _detail(self, request: RecordedRequest, match: re.Match[str]) -> Reply:
        vm = self.vms.get(match[1])
        return Reply.json(vm) if vm else self.not_routed(request)

    def _create(self, request: RecordedRequest, match: re.Match[str]) -> Reply:
        envelope = json_body(request) or {}
        attributes = envelope.get("data", {}).get("attributes", {})
        resources = attributes.get("resources", {})
        if not attributes.get("ssh_key") or resources.get("storage_gb", 0) < 100:
            return Reply.json(
                {"status": 400, "error": "ssh_key and storage_gb >= 100 are required"}, 400
            )
        self.vms[NEW_VM_ID] = {
            **copy.deepcopy(RUNNING_VM),
            "id": NEW_VM_ID,
            "name": attributes.get("name"),
            "status": "creating",
            "ipAddress": None,
            "portForwards": [],
            "resources": resources,
        }
        return Reply.json(
            {
                "data": {
                    "type": "virtualmachine",
                    "id": NEW_VM_ID,
                    "name": attributes.get("name"),
                    "status": "creating",
                }
            }
        )

    def _power(self, request: RecordedRequest, match: re.Match[str]) -> Reply:
        vm = self.vms.get(match[1])
        if vm is None:
            return self.not_routed(request)
        vm["status"] = "running" if match[2] == "start" else "stopped"
        return Reply.json({"status": "success", "message": f"Instance {match[2]} requested"})

    def _delete(self, request: RecordedRequest, match: re.Match[str]) -> Reply:
        if self.vms.pop(match[1], None) is None:
            return self.not_routed(request)
        return Reply.json({"status": "success", "message": "Instance deleted"})
