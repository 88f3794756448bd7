"""A fake Vast.ai console API (/api/v0): bundles search, instances, lifecycle, two-step logs."""

from __future__ import annotations

import copy
import re
from typing import Any

from loopback import RecordedRequest, Reply

from fakes import FakeMarketplace, json_body

LOG_TOKEN = "7c1de0b4a9f24e0b8f0d2e6a5b3c9d11"
INSTANCE_API_KEY = "c0ntainer-only-key-5f2a9e7d41b3"
"""Vast returns a restricted per-instance key on create; it must never be printed."""

RTX_4090_OFFER: dict[str, Any] = {
    "id": 21934711,
    "ask_contract_id": 21934711,
    "bundle_id": None,
    "bundled_results": None,
    "machine_id": 38117,
    "host_id": 201456,
    "num_gpus": 1,
    "gpu_name": "RTX 4090",
    "gpu_ram": 24564,
    "gpu_total_ram": 24564,
    "gpu_frac": 0.125,
    "gpu_arch": "nvidia",
    "gpu_mem_bw": 922.4,
    "gpu_max_power": 450.0,
    "compute_cap": 890,
    "cuda_max_good": 12.6,
    "driver_version": "560.35.03",
    "cpu_name": "AMD EPYC 7B13 64-Core Processor",
    "cpu_cores": 128,
    "cpu_cores_effective": 16.0,
    "cpu_ghz": 3.5,
    "cpu_ram": 257782,
    "cpu_arch": "amd64",
    "has_avx": 1,
    "disk_space": 412.3,
    "disk_bw": 3120.5,
    "disk_name": "SAMSUNG MZQL23T8HCLS",
    "inet_down": 912.4,
    "inet_up": 804.9,
    "inet_down_cost": 0.003,
    "inet_up_cost": 0.003,
    "direct_port_count": 64,
    "pci_gen": 4.0,
    "pcie_bw": 24.6,
    "dph_base": 0.38,
    "dph_total": 0.385556,
    "min_bid": 0.22,
    "storage_cost": 0.2,
    "storage_total_cost": 0.005556,
    "reliability": 0.9962,
    "reliability2": 0.9962,
    "verification": "verified",
    "vericode": 1,
    "rentable": True,
    "rented": False,
    "is_bid": False,
    "static_ip": True,
    "hosting_type": 1,
    "external": False,
    "geolocation": "Quebec, CA",
    "geolocode": 1245184,
    "dlperf": 78.31,
    "total_flops": 82.6,
    "dlperf_per_dphtotal": 203.1,
    "score": 191.4,
    "start_date": 1_788_000_000.0,
    "end_date": 1_795_000_000.0,
    "duration": 5_000_000.0,
    "search": {
        "gpuCostPerHour": 0.38,
        "diskHour": 0.005556,
        "totalHour": 0.385556,
        "discountTotalHour": 0.0,
        "discountedTotalPerHour": 0.385556,
    },
}
H100_SXM_OFFER: dict[str, Any] = {
    **RTX_4090_OFFER,
    "id": 20877302,
    "ask_contract_id": 20877302,
    "machine_id": 29410,
    "host_id": 88812,
    "num_gpus": 8,
    "gpu_name": "H100 SXM",
    "gpu_ram": 81559,
    "gpu_total_ram": 652472,
    "gpu_frac": 1.0,
    "compute_cap": 900,
    "cuda_max_good": 12.4,
    "cpu_name": "Xeon Platinum 8480+",
    "cpu_cores": 224,
    "cpu_cores_effective": 224.0,
    "cpu_ram": 2063722,
    "disk_space": 4500.0,
    "dph_base": 17.6,
    "dph_total": 17.606944,
    "min_bid": 9.8,
    "storage_cost": 0.25,
    "reliability": 0.9987,
    "reliability2": 0.9987,
    "geolocation": "Texas, US",
    "search": {"gpuCostPerHour": 17.6, "diskHour": 0.006944, "totalHour": 17.606944},
}
RTX_A6000_OFFER: dict[str, Any] = {
    **RTX_4090_OFFER,
    "id": 19450023,
    "ask_contract_id": 19450023,
    "machine_id": 17702,
    "host_id": 45120,
    "num_gpus": 2,
    "gpu_name": "RTX A6000",
    "gpu_ram": 49140,
    "gpu_total_ram": 98280,
    "gpu_frac": 0.5,
    "compute_cap": 860,
    "cpu_cores": 64,
    "cpu_cores_effective": 32.0,
    "cpu_ram": 128870,
    "disk_space": 900.0,
    "dph_base": 0.9,
    "dph_total": 0.904167,
    "min_bid": 0.52,
    "storage_cost": 0.15,
    "reliability": 0.9891,
    "reliability2": 0.9891,
    "geolocation": "Stockholm, SE",
    "search": None,
}
INCOMPLETE_OFFER: dict[str, Any] = {**RTX_4090_OFFER, "id": 21934799, "cpu_cores": None}
"""Listings without CPU data are skipped (as gpuhunt does)."""

OFFERS = [RTX_4090_OFFER, H100_SXM_OFFER, RTX_A6000_OFFER, INCOMPLETE_OFFER]

RUNNING: dict[str, Any] = {
    "id": 9104662,
    "machine_id": 38117,
    "host_id": 201456,
    "actual_status": "running",
    "intended_status": "running",
    "cur_state": "running",
    "next_state": "running",
    "status_msg": "success, running pytorch/pytorch_2.4.0-cuda12.4-cudnn9-runtime/ssh",
    "label": "llm-finetune",
    "image_uuid": "pytorch/pytorch:2.4.0-cuda12.4-cudnn9-runtime",
    "image_runtype": "ssh ssh_direc ssh_proxy",
    "extra_env": [["-p 8888:8888", "1"]],
    "num_gpus": 1,
    "gpu_name": "RTX 4090",
    "gpu_ram": 24564,
    "gpu_totalram": 24564,
    "gpu_util": 87.5,
    "gpu_temp": 71.0,
    "vmem_usage": 18.2,
    "cpu_util": 42.0,
    "mem_limit": 32.2,
    "mem_usage": 11.9,
    "disk_space": 40.0,
    "disk_usage": 12.4,
    "public_ipaddr": "142.114.20.7",
    "ssh_host": "ssh4.vast.ai",
    "ssh_port": 24662,
    "ports": {
        "22/tcp": [{"HostIp": "0.0.0.0", "HostPort": "41022"}],
        "8888/tcp": [{"HostIp": "0.0.0.0", "HostPort": "41088"}],
    },
    "start_date": 1_790_000_000.0,
    "dph_base": 0.38,
    "dph_total": 0.3911,
    "storage_cost": 0.2,
    "is_bid": False,
    "geolocation": "Quebec, CA",
    "reliability2": 0.9962,
    "instance": {"gpuCostPerHour": 0.38, "diskHour": 0.0111, "totalHour": 0.3911},
}
LOADING: dict[str, Any] = {
    **RUNNING,
    "id": 9104700,
    "actual_status": "loading",
    "cur_state": "running",
    "status_msg": "Pulling image vllm/vllm-openai:v0.6.3",
    "label": "vllm-serve",
    "image_uuid": "vllm/vllm-openai:v0.6.3",
    "num_gpus": 2,
    "gpu_name": "RTX A6000",
    "gpu_util": None,
    "gpu_temp": None,
    "vmem_usage": None,
    "ports": None,
    "ssh_host": "ssh7.vast.ai",
    "ssh_port": 14700,
    "dph_total": 0.9141,
}
STOPPED: dict[str, Any] = {
    **RUNNING,
    "id": 9088123,
    "actual_status": "stopped",
    "intended_status": "stopped",
    "cur_state": "stopped",
    "status_msg": None,
    "label": None,
    "gpu_util": None,
    "gpu_temp": None,
    "ports": None,
    "dph_total": 17.6181,
    "num_gpus": 8,
    "gpu_name": "H100 SXM",
}
SCHEDULING: dict[str, Any] = {
    **RUNNING,
    "id": 9104811,
    "actual_status": None,
    "intended_status": "running",
    "cur_state": "stopped",
    "status_msg": None,
    "label": "queued-job",
    "gpu_util": None,
    "ports": None,
    "start_date": None,
}
INSTANCES = [RUNNING, LOADING, STOPPED, SCHEDULING]

LOG_TEXT = (
    "==> /var/log/onstart.log <==\nstarting sshd\nepoch 1/3 loss=1.912\nepoch 2/3 loss=1.204\n"
)


class FakeVast(FakeMarketplace):
    """Vast's console API. Unknown ids answer 404 ``not_found``; bad keys 401 ``auth_error``."""

    env_urls = {"COMPUTEHUB_VAST_URL": ""}

    def __init__(self, *valid_keys: str) -> None:
        super().__init__(*valid_keys)
        self.offers = copy.deepcopy(OFFERS)
        self.instances = {row["id"]: copy.deepcopy(row) for row in INSTANCES}
        self.next_contract = 9200001
        self.log_polls = 0
        self.state_delay_s = 0.0
        """Seconds a start or stop takes to answer (after the change is made, as a slow API may)."""
        self.state_changes: list[tuple[int, str]] = []
        """Every change a start or stop made: (instance id, new intended status)."""
        self.on("POST", "/api/v0/bundles/", self._bundles)
        self.on("GET", "/api/v0/instances/", self._list)
        self.on("PUT", r"/api/v0/instances/(\d+)/", self._set_state)
        self.on("PUT", r"/api/v0/instances/reboot/(\d+)/", self._reboot)
        self.on("DELETE", r"/api/v0/instances/(\d+)/", self._destroy)
        self.on("PUT", r"/api/v0/asks/(\d+)/", self._create)
        self.on("PUT", r"/api/v0/instances/request_logs/(\d+)/", self._request_logs)
        self.on("GET", rf"/instance_logs/{LOG_TOKEN}\.log", self._log_file)
        self.on("GET", "/api/v0/users/current/", self._current_user)

    def public(self, request: RecordedRequest) -> bool:
        return request.path.startswith("/instance_logs/")

    def unauthorized(self, request: RecordedRequest) -> Reply:
        return Reply.json({"success": False, "error": "auth_error", "msg": "Invalid user key"}, 401)

    def not_routed(self, request: RecordedRequest) -> Reply:
        return Reply.json(
            {"success": False, "error": "invalid_request", "msg": "Unknown endpoint"}, 404
        )

    # -- handlers -----------------------------------------------------------------------------

    def _bundles(self, request: RecordedRequest, match: re.Match[str]) -> Reply:
        return Reply.json({"offers": self.offers})

    def _list(self, request: RecordedRequest, match: re.Match[str]) -> Reply:
        if request.query.get("owner") != ["me"]:
            return Reply.json(
                {"success": False, "error": "invalid_request", "msg": "owner required"}, 400
            )
        if self.failing():
            return Reply.json({"success": False, "error": "server_error", "msg": "Internal Server Error"}, 500)
        rows = [self._scripted(row) for row in self.instances.values()]
        return Reply.json({"instances": rows, "instances_found": len(rows)})

    def _scripted(self, row: dict[str, Any]) -> dict[str, Any]:
        stretch = self.stretch_of(row["id"])
        if stretch is None:
            return row
        reported = stretch.util if row["actual_status"] == "running" else None
        return {**row, "gpu_util": reported, "gpu_temp": None if reported is None else 40.0 + reported / 3,
                "vmem_usage": None if reported is None else 2.5}

    def _missing(self, instance_id: str) -> Reply:
        return Reply.json(
            {
                "success": False,
                "error": "not_found",
                "msg": f"error 404/3603: Instance {instance_id} not found.",
            },
            404,
        )

    def _set_state(self, request: RecordedRequest, match: re.Match[str]) -> Reply:
        row = self.instances.get(int(match[1]))
        if row is None:
            return self._missing(match[1])
        state = (json_body(request) or {}).get("state")
        if state not in ("running", "stopped"):
            return Reply.json({"success": False, "error": "invalid_args", "msg": "bad state"}, 400)
        if row["intended_status"] != state:
            self.state_changes.append((row["id"], state))
        row["intended_status"] = state
        return Reply.json({"success": True}, delay=self.state_delay_s)

    def _reboot(self, request: RecordedRequest, match: re.Match[str]) -> Reply:
        if int(match[1]) not in self.instances:
            return self._missing(match[1])
        return Reply.json({"success": True})

    def _destroy(self, request: RecordedRequest, match: re.Match[str]) -> Reply:
        if self.instances.pop(int(match[1]), None) is None:
            return self._missing(match[1])
        return Reply.json({"success": True, "msg": f"destroying instance {match[1]}."})

    def _create(self, request: RecordedRequest, match: re.Match[str]) -> Reply:
        ask_id = int(match[1])
        offer = next((o for o in self.offers if o["id"] == ask_id), None)
        if offer is None:
            return Reply.json(
                {
                    "success": False,
                    "error": "no_such_ask",
                    "ask_id": ask_id,
                    "msg": f"error 404/3603: no_such_ask Instance type by id {ask_id} "
                    "is not available.",
                },
                404,
            )
        body = json_body(request) or {}
        contract = self.next_contract
        self.next_contract += 1
        self.offers.remove(offer)  # asks are single-use
        self.instances[contract] = {
            **copy.deepcopy(SCHEDULING),
            "id": contract,
            "label": body.get("label"),
            "image_uuid": body.get("image"),
            "gpu_name": offer["gpu_name"],
            "num_gpus": offer["num_gpus"],
            "dph_total": offer["dph_total"],
        }
        return Reply.json(
            {"success": True, "new_contract": contract, "instance_api_key": INSTANCE_API_KEY}
        )

    def _request_logs(self, request: RecordedRequest, match: re.Match[str]) -> Reply:
        if int(match[1]) not in self.instances:
            return Reply.json(
                {
                    "success": False,
                    "error": "invalid_id",
                    "msg": f"Instance {match[1]} does not exist.",
                },
                404,
            )
        return Reply.json(
            {
                "success": True,
                "msg": "logs requested",
                "result_url": f"{self.url}/instance_logs/{LOG_TOKEN}.log",
            }
        )

    def _log_file(self, request: RecordedRequest, match: re.Match[str]) -> Reply:
        self.log_polls += 1
        if self.log_polls == 1:  # the upload has not landed yet, as S3 answers
            return Reply(
                403,
                '<?xml version="1.0"?><Error><Code>AccessDenied</Code></Error>',
                {"Content-Type": "application/xml"},
            )
        return Reply.text(LOG_TEXT)

    def _current_user(self, request: RecordedRequest, match: re.Match[str]) -> Reply:
        return Reply.json(
            {
                "id": 201456,
                "username": "gpu-renter",
                "email": "renter@example.com",
                "credit": 41.27,
                "balance": 0.0,
                "has_billing": True,
            }
        )
