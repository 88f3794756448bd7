"""A fake Lambda Cloud API (/api/v1): instance types, instances, launch/restart/terminate."""

from __future__ import annotations

import copy
import re
from typing import Any

from loopback import RecordedRequest, Reply

from fakes import FakeMarketplace, json_body

SSH_KEY_NAME = "laptop-ed25519"
NEW_INSTANCE_ID = "5c2f7b0e9a1d4e3f8b6a0c9d2e1f4a7b"


def _instance_type(
    name: str,
    description: str,
    gpu: str,
    cents: int,
    vcpus: int,
    ram_gib: int,
    disk_gib: int,
    gpus: int,
) -> dict[str, Any]:
    return {
        "name": name,
        "description": description,
        "gpu_description": gpu,
        "price_cents_per_hour": cents,
        "specs": {"vcpus": vcpus, "memory_gib": ram_gib, "storage_gib": disk_gib, "gpus": gpus},
    }


H100_8X = _instance_type(
    "gpu_8x_h100_sxm5", "8x H100 (80 GB SXM5)", "H100 (80 GB SXM5)", 2392, 208, 1800, 22528, 8
)
H100_1X = _instance_type(
    "gpu_1x_h100_sxm5", "1x H100 (80 GB SXM5)", "H100 (80 GB SXM5)", 329, 26, 225, 2816, 1
)
A6000_1X = _instance_type(
    "gpu_1x_a6000", "1x RTX A6000 (48 GB)", "RTX A6000 (48 GB)", 80, 14, 46, 512, 1
)
A100_1X = _instance_type(
    "gpu_1x_a100_sxm4", "1x A100 (40 GB SXM4)", "A100 (40 GB SXM4)", 129, 30, 200, 512, 1
)
A6000_4X_OLD_STYLE: dict[str, Any] = {
    "name": "gpu_4x_a6000",
    "description": "4x RTX A6000 (48 GB)",
    "price_cents_per_hour": 320,
    "specs": {"vcpus": 56, "memory_gib": 400, "storage_gib": 1024},
}
"""As spec v1.4.0 has it: no ``gpu_description``, no ``specs.gpus``."""
A10_1X = _instance_type(
    "gpu_1x_a10", "1x A10 (24 GB PCIe)", "A10 (24 GB PCIe)", 75, 30, 200, 1400, 1
)

VIRGINIA = {"name": "us-east-1", "description": "Virginia, USA"}
UTAH = {"name": "us-west-3", "description": "Utah, USA"}
FRANKFURT = {"name": "europe-central-1", "description": "Frankfurt, Germany"}

INSTANCE_TYPES: dict[str, Any] = {
    "gpu_8x_h100_sxm5": {"instance_type": H100_8X, "regions_with_capacity_available": [UTAH]},
    "gpu_1x_h100_sxm5": {
        "instance_type": H100_1X,
        "regions_with_capacity_available": [VIRGINIA, FRANKFURT],
    },
    "gpu_1x_a6000": {"instance_type": A6000_1X, "regions_with_capacity_available": [UTAH]},
    "gpu_1x_a100_sxm4": {"instance_type": A100_1X, "regions_with_capacity_available": [VIRGINIA]},
    "gpu_4x_a6000": {
        "instance_type": A6000_4X_OLD_STYLE,
        "regions_with_capacity_available": [FRANKFURT],
    },
    "gpu_1x_a10": {"instance_type": A10_1X, "regions_with_capacity_available": []},
}

ACTIVE: dict[str, Any] = {
    "id": "0920582c7ff041399e34823a0be62549",
    "name": "pretrain-8x",
    "ip": "129.146.33.208",
    "private_ip": "10.19.61.12",
    "status": "active",
    "ssh_key_names": [SSH_KEY_NAME],
    "file_system_names": [],
    "region": UTAH,
    "instance_type": H100_8X,
    "hostname": "129-146-33-208.cloud.lambdalabs.com",
    "jupyter_token": "53968f128c4a4489b688c2c0a181d083",
    "jupyter_url": "https://jupyter-3ac4c5c6-9026.lambdaspaces.com/?token="
    "53968f128c4a4489b688c2c0a181d083",
    "is_reserved": False,
}
BOOTING: dict[str, Any] = {
    **ACTIVE,
    "id": "7f3c1e0b2a9d4c8e9f1a2b3c4d5e6f70",
    "name": None,
    "ip": None,
    "private_ip": None,
    "status": "booting",
    "region": VIRGINIA,
    "instance_type": H100_1X,
    "hostname": None,
    "jupyter_token": None,
    "jupyter_url": None,
}
UNHEALTHY: dict[str, Any] = {
    **ACTIVE,
    "id": "e4d3c2b1a0f94e8d7c6b5a4f3e2d1c0b",
    "name": "a6000-dev",
    "ip": "150.136.70.4",
    "status": "unhealthy",
    "region": UTAH,
    "instance_type": A6000_1X,
}
INSTANCES = [ACTIVE, BOOTING, UNHEALTHY]

INSUFFICIENT_CAPACITY = {
    "error": {
        "code": "instance-operations/launch/insufficient-capacity",
        "message": "Not enough capacity to fulfill launch request.",
        "suggestion": "Choose an instance type with more availability, or try again later.",
    },
}


class FakeLambda(FakeMarketplace):
    """Lambda's v1 API; every answer wraps its payload in ``data``, errors in ``error``."""

    env_urls = {"COMPUTEHUB_LAMBDA_URL": "/api/v1"}

    def __init__(self, *valid_keys: str) -> None:
        super().__init__(*valid_keys)
        self.instance_types = copy.deepcopy(INSTANCE_TYPES)
        self.instances = {row["id"]: copy.deepcopy(row) for row in INSTANCES}
        self.capacity = True
        self.on("GET", "/api/v1/instance-types", self._types)
        self.on("GET", "/api/v1/instances", self._list)
        self.on("GET", "/api/v1/ssh-keys", self._ssh_keys)
        self.on("POST", "/api/v1/instance-operations/launch", self._launch)
        self.on("POST", "/api/v1/instance-operations/(restart|terminate)", self._operation)

    def unauthorized(self, request: RecordedRequest) -> Reply:
        return Reply.json(
            {
                "error": {
                    "code": "global/invalid-api-key",
                    "message": "API key was invalid, expired, or deleted.",
                    "suggestion": "Check your API key or create a new one, then try again.",
                }
            },
            401,
        )

    def not_routed(self, request: RecordedRequest) -> Reply:
        return Reply.json(
            {
                "error": {
                    "code": "global/object-does-not-exist",
                    "message": "Object does not exist.",
                }
            },
            404,
        )

    def _types(self, request: RecordedRequest, match: re.Match[str]) -> Reply:
        return Reply.json({"data": self.instance_types})

    def _list(self, request: RecordedRequest, match: re.Match[str]) -> Reply:
        return Reply.json({"data": list(self.instances.values())})

    def _ssh_keys(self, request: RecordedRequest, match: re.Match[str]) -> Reply:
        return Reply.json(
            {
                "data": [
                    {
                        "id": "ddf9a910ceb744a0bb95242cbba6cb50",
                        "name": SSH_KEY_NAME,
                        "public_key": "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIK0 me@laptop",
                    }
                ]
            }
        )

    def _launch(self, request: RecordedRequest, match: re.Match[str]) -> Reply:
        body = json_body(request) or {}
        if not self.capacity:
            return Reply.json(INSUFFICIENT_CAPACITY, 400)
        if body.get("ssh_key_names") != [SSH_KEY_NAME]:
            return Reply.json(
                {
                    "error": {
                        "code": "global/invalid-parameters",
                        "message": "Invalid request parameters.",
                    },
                    "field_errors": {
                        "ssh_key_names": {
                            "code": "global/invalid-parameters",
                            "message": "SSH key not found",
                        }
                    },
                },
                400,
            )
        entry = self.instance_types.get(body.get("instance_type_name"))
        if entry is None:
            return self.not_routed(request)
        region = next(
            (
                r
                for r in entry["regions_with_capacity_available"]
                if r["name"] == body.get("region_name")
            ),
            None,
        )
        if region is None:
            return Reply.json(INSUFFICIENT_CAPACITY, 400)
        self.instances[NEW_INSTANCE_ID] = {
            **copy.deepcopy(BOOTING),
            "id": NEW_INSTANCE_ID,
            "name": body.get("name"),
            "region": region,
            "instance_type": entry["instance_type"],
        }
        return Reply.json({"data": {"instance_ids": [NEW_INSTANCE_ID]}})

    def _operation(self, request: RecordedRequest, match: re.Match[str]) -> Reply:
        ids = (json_body(request) or {}).get("instance_ids") or []
        found = [self.instances[i] for i in ids if i in self.instances]
        if not found:
            return Reply.json(
                {
                    "error": {
                        "code": "global/object-does-not-exist",
                        "message": "Specified instance does not exist.",
                    }
                },
                404,
            )
        if match[1] == "terminate":
            for row in found:
                self.instances.pop(row["id"])
            return Reply.json(
                {"data": {"terminated_instances": [{**r, "status": "terminated"} for r in found]}}
            )
        return Reply.json({"data": {"restarted_instances": found}})
