"""A fake RunPod: GraphQL (gpuTypes/lowestPrice, myself.pods, pod mutations) and REST v2 pods."""

from __future__ import annotations

import copy
import json
import re
from typing import Any

from loopback import RecordedRequest, Reply

from fakes import FakeMarketplace, json_body

CAPACITY_MESSAGE = (
    "There are no longer any instances available with the requested specifications. "
    "Please refresh and try again."
)

GPU_TYPES: list[dict[str, Any]] = [
    {
        "id": "NVIDIA GeForce RTX 4090",
        "displayName": "RTX 4090",
        "manufacturer": "Nvidia",
        "memoryInGb": 24,
        "secureCloud": True,
        "communityCloud": True,
        "securePrice": 0.69,
        "communityPrice": 0.34,
    },
    {
        "id": "NVIDIA H100 80GB HBM3",
        "displayName": "H100 SXM",
        "manufacturer": "Nvidia",
        "memoryInGb": 80,
        "secureCloud": True,
        "communityCloud": True,
        "securePrice": 2.99,
        "communityPrice": 2.69,
    },
    {
        "id": "NVIDIA RTX A6000",
        "displayName": "RTX A6000",
        "manufacturer": "Nvidia",
        "memoryInGb": 48,
        "secureCloud": True,
        "communityCloud": True,
        "securePrice": 0.49,
        "communityPrice": 0.33,
    },
    {
        "id": "NVIDIA A40",
        "displayName": "A40",
        "manufacturer": "Nvidia",
        "memoryInGb": 48,
        "secureCloud": True,
        "communityCloud": False,
        "securePrice": 0.44,
        "communityPrice": None,
    },
]

# (gpu type id, secure cloud) → {gpu count: (stockStatus, $/h per GPU, min bid per GPU)}.
STOCK: dict[tuple[str, bool], dict[int, tuple[str | None, float | None, float | None]]] = {
    ("NVIDIA GeForce RTX 4090", True): {
        1: ("High", 0.69, 0.35),
        2: ("Medium", 0.69, 0.36),
        4: ("Low", 0.69, 0.4),
    },
    ("NVIDIA GeForce RTX 4090", False): {1: ("High", 0.34, 0.2), 2: ("Low", 0.34, 0.21)},
    ("NVIDIA H100 80GB HBM3", True): {1: ("Medium", 2.99, 1.75), 8: ("Low", 2.99, 1.9)},
    ("NVIDIA RTX A6000", True): {1: ("High", 0.49, 0.25), 2: ("High", 0.49, 0.25)},
    ("NVIDIA RTX A6000", False): {1: ("Low", 0.33, None)},
}
COMMUNITY_COUNTRY = "CZ"
NEW_POD_PREFIX = "n3wp0dxk2v"

SSH_POD: dict[str, Any] = {
    "id": "ldl1dxirsim64n",
    "name": "sdxl-train",
    "desiredStatus": "RUNNING",
    "costPerHr": 0.69,
    "gpuCount": 1,
    "imageName": "runpod/pytorch:2.4.0-py3.11-cuda12.4.1-devel-ubuntu22.04",
    "lastStatusChange": "Rented by User: Tue Aug 11 2026 09:14:03 GMT+0000 (UTC)",
    "machineId": "x8k2nq5tbl1f",
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
                "ip": "100.65.22.14",
                "isIpPublic": False,
                "privatePort": 8888,
                "publicPort": 60153,
                "type": "http",
            },
            {
                "ip": "213.173.108.12",
                "isIpPublic": True,
                "privatePort": 22,
                "publicPort": 13422,
                "type": "tcp",
            },
        ],
        "gpus": [
            {
                "id": "GPU-2d5f8a31-77c4-d0b9-31a6-5e0f9c1b2a44",
                "gpuUtilPercent": 93,
                "memoryUtilPercent": 71,
            }
        ],
        "container": {"cpuPercent": 18, "memoryPercent": 34},
    },
}
TWO_GPU_POD: dict[str, Any] = {
    **SSH_POD,
    "id": "q7v0mfh2k3w9zt",
    "name": "ddp-a6000",
    "costPerHr": 0.98,
    "gpuCount": 2,
    "machineId": "b3j5c1n8p0qd",
    "machine": {"gpuDisplayName": "RTX A6000", "location": "US"},
    "runtime": {
        "uptimeInSeconds": 600,
        "ports": [
            {
                "ip": "69.30.85.41",
                "isIpPublic": True,
                "privatePort": 22,
                "publicPort": 22177,
                "type": "tcp",
            }
        ],
        "gpus": [
            {"id": "GPU-a", "gpuUtilPercent": 64, "memoryUtilPercent": 40},
            {"id": "GPU-b", "gpuUtilPercent": 58, "memoryUtilPercent": 38},
        ],
        "container": {"cpuPercent": 51, "memoryPercent": 22},
    },
}
EXITED_POD: dict[str, Any] = {
    **SSH_POD,
    "id": "c9ttwz0e4hq1rb",
    "name": "h100-eval",
    "desiredStatus": "EXITED",
    "costPerHr": 2.99,
    "gpuCount": 1,
    "machineId": "m1h100xx0001",
    "lastStatusChange": "Exited by User: Mon Aug 10 2026 18:02:44 GMT+0000 (UTC)",
    "machine": {"gpuDisplayName": "H100 SXM", "location": "US"},
    "runtime": None,
}
BOOTING_POD: dict[str, Any] = {
    **SSH_POD,
    "id": "w2e8r6t4y0u1io",
    "name": "fresh-4090",
    "machineId": "p0o9i8u7y6t5",
    "lastStatusChange": "Rented by User: Tue Aug 11 2026 10:01:00 GMT+0000",
    "runtime": None,
}
PODS = [SSH_POD, TWO_GPU_POD, EXITED_POD, BOOTING_POD]

LOG_LINES = [
    "==> starting container",
    "jupyter lab listening on 0.0.0.0:8888",
    "step 100 loss 0.412",
]


def lowest_price(gpu_type_id: str, count: int, secure: bool) -> dict[str, Any]:
    """A ``lowestPrice`` object as RunPod answers it; out-of-stock combinations carry nulls."""
    stock, price, bid = STOCK.get((gpu_type_id, secure), {}).get(count, (None, None, None))
    if stock is None:
        return {
            "uninterruptablePrice": None,
            "minimumBidPrice": None,
            "stockStatus": None,
            "minVcpu": None,
            "minMemory": None,
            "availableGpuCounts": [],
            "countryCode": None,
        }
    return {
        "uninterruptablePrice": price,
        "minimumBidPrice": bid,
        "stockStatus": stock,
        "minVcpu": 16 * count,
        "minMemory": 62 * count,
        "availableGpuCounts": sorted(STOCK[(gpu_type_id, secure)]),
        "countryCode": None if secure else COMMUNITY_COUNTRY,
    }


class FakeRunpod(FakeMarketplace):
    """RunPod GraphQL at ``/graphql`` (errors with HTTP 200) and REST v2 under ``/v2``."""

    env_urls = {"COMPUTEHUB_RUNPOD_GRAPHQL_URL": "/graphql", "COMPUTEHUB_RUNPOD_REST_URL": "/v2"}

    def __init__(self, *valid_keys: str) -> None:
        super().__init__(*valid_keys)
        self.pods = {pod["id"]: copy.deepcopy(pod) for pod in PODS}
        self.deployed = 0
        self.deploy_error: str | None = None
        self.on("POST", "/graphql", self._graphql)
        self.on("POST", r"/v2/pods/([a-z0-9]+)/action", self._action)
        self.on("GET", r"/v2/pods/([a-z0-9]+)/logs", self._logs)

    def unauthorized(self, request: RecordedRequest) -> Reply:
        if request.path.startswith("/v2/"):
            return _problem(401, "Unauthorized", "invalid bearer token")
        return Reply.json({"errors": [{"message": "Unauthorized"}]}, 401)

    def graphql_calls(self, root_field: str) -> list[dict[str, Any]]:
        """The ``{"query", "variables"}`` bodies of GraphQL calls that use ``root_field``."""
        bodies = [json_body(r) for r in self.calls("POST", "/graphql")]
        return [b for b in bodies if re.search(rf"\b{root_field}\s*[({{]", b["query"])]

    # -- GraphQL ------------------------------------------------------------------------------

    def _graphql(self, request: RecordedRequest, match: re.Match[str]) -> Reply:
        body = json_body(request)
        query, variables = body["query"], body.get("variables") or {}
        arguments = variables.get("input") or {}
        for field, handler in (
            ("podFindAndDeployOnDemand", self._deploy),
            ("podStop", self._stop),
            ("podResume", self._resume),
            ("podTerminate", self._terminate),
            ("pod", self._pod),
        ):
            if re.search(rf"\b{field}\s*\(", query):
                return handler(arguments)
        if re.search(r"\bmyself\s*\{\s*pods\b", query):
            if self.failing():
                return Reply.json({"errors": [{"message": "Something went wrong. Please try again later."}]}, 500)
            return _data({"myself": {"pods": [self._scripted(pod) for pod in self.pods.values()]}})
        if re.search(r"\bmyself\b", query):
            return _data({"myself": {"id": "user_2mQ8vX3kLp9"}})
        if "lowestPrice" in query:
            return self._offers(arguments)
        if "gpuTypes" in query:
            return _data(
                {
                    "gpuTypes": [
                        {k: t[k] for k in ("id", "displayName", "memoryInGb")} for t in GPU_TYPES
                    ]
                }
            )
        return Reply.json(
            {
                "errors": [
                    {
                        "message": "Cannot query field on type Query",
                        "extensions": {"code": "GRAPHQL_VALIDATION_FAILED"},
                    }
                ]
            },
            400,
        )

    def _scripted(self, pod: dict[str, Any]) -> dict[str, Any]:
        stretch = self.stretch_of(pod["id"])
        runtime = pod.get("runtime")
        if stretch is None or not isinstance(runtime, dict):
            return pod
        gpus = [{**gpu, "gpuUtilPercent": stretch.util} for gpu in runtime.get("gpus") or []]
        return {**pod, "runtime": {**runtime, "gpus": gpus if stretch.util is not None else []}}

    def _offers(self, arguments: dict[str, Any]) -> Reply:
        count, secure = int(arguments["gpuCount"]), bool(arguments.get("secureCloud"))
        rows = [
            {**gpu_type, "lowestPrice": lowest_price(gpu_type["id"], count, secure)}
            for gpu_type in GPU_TYPES
        ]
        return _data({"gpuTypes": rows})

    def _deploy(self, arguments: dict[str, Any]) -> Reply:
        if self.deploy_error:
            return _graphql_error(self.deploy_error, "podFindAndDeployOnDemand")
        gpu_type = next((t for t in GPU_TYPES if t["id"] == arguments.get("gpuTypeId")), None)
        if gpu_type is None or arguments.get("cloudType") not in ("SECURE", "COMMUNITY", "ALL"):
            return _graphql_error("Invalid GPU type or cloud type", "podFindAndDeployOnDemand")
        self.deployed += 1
        pod_id = f"{NEW_POD_PREFIX}{self.deployed:04d}"
        count = int(arguments.get("gpuCount") or 1)
        self.pods[pod_id] = {
            **copy.deepcopy(BOOTING_POD),
            "id": pod_id,
            "name": arguments.get("name"),
            "gpuCount": count,
            "imageName": arguments.get("imageName"),
            "machine": {"gpuDisplayName": gpu_type["displayName"], "location": "US"},
        }
        return _data(
            {
                "podFindAndDeployOnDemand": {
                    "id": pod_id,
                    "desiredStatus": "RUNNING",
                    "costPerHr": gpu_type["securePrice"] * count,
                    "machineId": "p0o9i8u7y6t5",
                }
            }
        )

    def _stop(self, arguments: dict[str, Any]) -> Reply:
        pod = self.pods.get(arguments.get("podId", ""))
        if pod is None:
            return _graphql_error("Pod not found", "podStop")
        pod["desiredStatus"], pod["runtime"] = "EXITED", None
        return _data({"podStop": {"id": pod["id"], "desiredStatus": "EXITED"}})

    def _resume(self, arguments: dict[str, Any]) -> Reply:
        pod = self.pods.get(arguments.get("podId", ""))
        if pod is None:
            return _graphql_error("Pod not found", "podResume")
        pod["desiredStatus"] = "RUNNING"
        return _data({"podResume": {"id": pod["id"], "desiredStatus": "RUNNING"}})

    def _terminate(self, arguments: dict[str, Any]) -> Reply:
        if self.pods.pop(arguments.get("podId", ""), None) is None:
            return _graphql_error("Pod not found", "podTerminate")
        return _data({"podTerminate": None})

    def _pod(self, arguments: dict[str, Any]) -> Reply:
        return _data({"pod": self.pods.get(arguments.get("podId", ""))})

    # -- REST v2 ------------------------------------------------------------------------------

    def _action(self, request: RecordedRequest, match: re.Match[str]) -> Reply:
        pod = self.pods.get(match[1])
        if pod is None:
            return _problem(404, "Not Found", "pod not found")
        action = (json_body(request) or {}).get("action")
        if action == "restart" and pod["desiredStatus"] != "RUNNING":
            return _problem(409, "Conflict", "pod cannot restart from status EXITED")
        return Reply.json(
            {
                "id": pod["id"],
                "name": pod["name"],
                "status": "RUNNING",
                "actions": ["stop", "restart", "terminate"],
                "gpu": {"id": "NVIDIA GeForce RTX 4090", "count": pod["gpuCount"]},
                "cloud": "SECURE",
                "cost": pod["costPerHr"],
            }
        )

    def _logs(self, request: RecordedRequest, match: re.Match[str]) -> Reply:
        if match[1] not in self.pods:
            return _problem(404, "Not Found", "pod not found")
        tail = int((request.query.get("tail") or ["100"])[0])
        lines = list(enumerate(LOG_LINES))[-tail:] if tail else []
        events = "".join(_log_event(f"2026-08-11T09:15:{n:02d}Z", line) for n, line in lines)
        return Reply(200, ": connected\n\n" + events, {"Content-Type": "text/event-stream"})


def _log_event(stamp: str, line: str) -> str:
    """One v2 log event as Server-Sent Events frame it: id, event type, JSON data, blank line."""
    data = json.dumps({"source": "container", "line": line, "ts": stamp})
    return f"id: {stamp}\nevent: log\ndata: {data}\n\n"


def _data(data: dict[str, Any]) -> Reply:
    return Reply.json({"data": data})


def _graphql_error(message: str, field: str) -> Reply:
    return Reply.json({"errors": [{"message": message, "path": [field]}], "data": {field: None}})


def _problem(status: int, title: str, detail: str) -> Reply:
    return Reply(
        status,
        json.dumps({"title": title, "status": status, "detail": detail}),
        {"Content-Type": "application/problem+json"},
    )
