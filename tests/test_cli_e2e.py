"""The real-marketplace path end to end: the CLI (``fakes.cli``: its ``main`` with its own environment and byte
streams; ``COMPUTEHUB_TEST_CLI_PROCESS=1`` makes each a real process) against loopback fakes of all four.

Each fake speaks its provider's documented wire format with payloads written for this file's
fakes (``tests/fakes``); the CLI reaches them through the ``COMPUTEHUB_*_URL`` endpoint
variables. Independent commands run a few at a time, each with its own data dir.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from fakes import FakeMarketplace
from fakes import lambda_cloud as lambda_wire
from fakes import runpod as runpod_wire
from fakes import tensordock as tensordock_wire
from fakes import vast as vast_wire
from fakes.accounts import KEY_VARIABLES, KEYS, TENSORDOCK_PUBLIC_KEY, Market, ok, one_error_line, open_market
from fakes.cli import Invocation
from fakes.lambda_cloud import FakeLambda
from fakes.runpod import FakeRunpod
from fakes.tensordock import FakeTensordock
from fakes.vast import FakeVast
from loopback import Reply, refused_port

from computehub_tui.domain.models import InstanceStatus

OFFER_FIELDS = {"provider", "offer_id", "gpu", "gpu_count", "vram_gb", "vcpus", "ram_gb", "disk_gb",
                "price_hour", "price_per_gpu_hour", "pricing", "location", "reliability", "available",
                "quoted_at"}
INSTANCE_FIELDS = {"provider", "id", "label", "status", "provider_status", "gpu", "gpu_count",
                   "price_hour", "ssh", "gpu_util", "started_at", "cost_so_far", "uptime_s", "current_price_hour",
                   "project", "billing_while_stopped", "local_label"}
STATUSES = {status.value for status in InstanceStatus}
READY_SSH = re.compile(r"^ssh -p \d{1,5} [a-z_][a-z0-9_-]*@\d{1,3}(\.\d{1,3}){3}$")
IDAHO_4090 = f"{tensordock_wire.IDAHO['id']}:geforcertx4090-pcie-24gb"
VIRGINIA_H100 = f"{tensordock_wire.VIRGINIA['id']}:h100-sxm5-80gb"


def bodies(fake: FakeMarketplace, method: str, path: str) -> list[Any]:
    return [json.loads(r.body) if r.body else None for r in fake.calls(method, path)]


@pytest.fixture
def market(tmp_path: Path) -> Iterator[Market]:
    with open_market(tmp_path) as opened:
        yield opened


# -- offers -----------------------------------------------------------------------------------


def test_offers_json_from_each_provider_are_normalised(market: Market) -> None:
    vast, runpod, lambda_, tensordock, filtered, table = market.run_all(
        *(
            market.invocation("offers", "--json", "--limit", "0", "--provider", name)
            for name in KEYS
        ),
        market.invocation(
            "offers",
            "4090 spot:no",
            "--provider",
            "runpod",
            "--sort",
            "price",
            "--limit",
            "2",
            "--json",
        ),
        market.invocation(
            "offers", "--csv", "--provider", "tensordock", "--sort", "price", "--limit", "3"
        ),
    )
    offers = {
        name: {o["offer_id"]: o for o in ok(run).json()}
        for name, run in (
            ("vast", vast),
            ("runpod", runpod),
            ("lambda", lambda_),
            ("tensordock", tensordock),
        )
    }
    for name, by_id in offers.items():
        assert by_id, f"{name} gave no offers"
        for offer in by_id.values():
            assert set(offer) == OFFER_FIELDS
            assert offer["provider"] == name
            assert datetime.fromisoformat(offer["quoted_at"]).tzinfo is not None

    # Vast: MiB → GiB (VRAM snapped to the card's size), dph_total as the all-in price, bids apart.
    rtx = offers["vast"]["21934711"]
    assert (rtx["gpu"], rtx["gpu_count"], rtx["vram_gb"], rtx["ram_gb"], rtx["vcpus"]) == (
        "RTX 4090",
        1,
        24.0,
        251.7,
        16.0,
    )
    assert (rtx["price_hour"], rtx["pricing"], rtx["location"], rtx["reliability"]) == (
        0.3856,
        "on-demand",
        "Quebec, CA",
        0.9962,
    )
    assert (rtx["disk_gb"], rtx["available"]) == (20.0, True)
    bid = offers["vast"]["21934711-bid"]
    assert (bid["pricing"], bid["price_hour"]) == ("interruptible", 0.2256)  # min_bid + disk
    h100 = offers["vast"]["20877302"]
    assert (h100["gpu"], h100["gpu_count"], h100["vram_gb"], h100["ram_gb"]) == (
        "H100 SXM",
        8,
        80.0,
        2015.4,
    )
    assert (h100["price_hour"], h100["price_per_gpu_hour"]) == (17.6069, 2.2009)
    assert offers["vast"]["19450023"]["price_per_gpu_hour"] == 0.4521
    assert "21934799" not in offers["vast"], "a listing without CPU data is skipped"

    # RunPod: per-GPU prices × count; out-of-stock combinations and GPU types are left out.
    two = offers["runpod"]["NVIDIA GeForce RTX 4090|SECURE|2"]
    assert (two["gpu"], two["gpu_count"], two["price_hour"], two["price_per_gpu_hour"]) == (
        "RTX 4090",
        2,
        1.38,
        0.69,
    )
    assert (two["vram_gb"], two["vcpus"], two["ram_gb"], two["location"]) == (
        24.0,
        32.0,
        124.0,
        "Secure Cloud",
    )
    assert (
        offers["runpod"]["NVIDIA GeForce RTX 4090|COMMUNITY|1"]["location"]
        == "Community Cloud (CZ)"
    )
    eight = offers["runpod"]["NVIDIA H100 80GB HBM3|SECURE|8"]
    assert (eight["gpu"], eight["price_hour"], eight["price_per_gpu_hour"]) == (
        "H100 SXM",
        23.92,
        2.99,
    )
    spot = offers["runpod"]["NVIDIA H100 80GB HBM3|SECURE|8|SPOT"]
    assert (spot["pricing"], spot["price_hour"]) == ("interruptible", 15.2)
    assert not [
        i
        for i in offers["runpod"]
        if i.startswith("NVIDIA A40") or i.endswith("SECURE|8") and "4090" in i
    ], "no stock, no offer"

    # Lambda: cents → dollars, RAM in GiB, disk GiB → GB, one offer per region with capacity.
    node = offers["lambda"]["gpu_8x_h100_sxm5@us-west-3"]
    assert (node["gpu"], node["gpu_count"], node["vram_gb"], node["vcpus"]) == (
        "H100 SXM",
        8,
        80.0,
        208.0,
    )
    assert (node["price_hour"], node["price_per_gpu_hour"]) == (23.92, 2.99)
    assert (node["ram_gb"], node["disk_gb"]) == (1800.0, 24195.1)
    assert {"gpu_1x_h100_sxm5@us-east-1", "gpu_1x_h100_sxm5@europe-central-1"} <= set(
        offers["lambda"]
    )
    assert offers["lambda"]["gpu_1x_a6000@us-west-3"]["ram_gb"] == 46.0
    quad = offers["lambda"]["gpu_4x_a6000@europe-central-1"]  # described the v1.4.0 way
    assert (quad["gpu"], quad["gpu_count"], quad["vram_gb"], quad["price_per_gpu_hour"]) == (
        "RTX A6000",
        4,
        48.0,
        0.8,
    )
    assert offers["lambda"]["gpu_1x_a10@sold-out"]["available"] is False

    # TensorDock: GPU + vCPU + RAM + storage rates summed for the planned VM size.
    single = offers["tensordock"][f"{IDAHO_4090}:1"]
    assert (single["gpu"], single["vcpus"], single["ram_gb"], single["disk_gb"]) == (
        "RTX 4090",
        8.0,
        32.0,
        100.0,
    )
    assert single["price_hour"] == pytest.approx(0.35 + 8 * 0.003 + 32 * 0.002 + 100 * 0.00005)
    four = offers["tensordock"][f"{IDAHO_4090}:4"]
    assert four["price_hour"] == pytest.approx(4 * 0.35 + 32 * 0.003 + 128 * 0.002 + 100 * 0.00005)
    big = offers["tensordock"][f"{VIRGINIA_H100}:8"]
    assert (big["gpu"], big["location"]) == ("H100 SXM", "Manassas, United States")
    assert big["price_hour"] == pytest.approx(8 * 2.25 + 64 * 0.004 + 256 * 0.0025 + 100 * 0.0001)
    assert not [i for i in offers["tensordock"] if "a100" in i], "a location with no free GPU"

    # One physical GPU, one name, whoever sells it.
    names = {name: {o["gpu"] for o in by_id.values()} for name, by_id in offers.items()}
    assert all({"H100 SXM", "RTX A6000"} <= gpus for gpus in names.values()), names
    assert all("RTX 4090" in names[name] for name in ("vast", "runpod", "tensordock")), names

    header, *rows = ok(table).stdout.splitlines()
    assert set(header.split(",")) == OFFER_FIELDS and len(rows) == 3
    assert rows[0].startswith(f"tensordock,{IDAHO_4090}:1,RTX 4090,1,24.0,")

    cheapest = ok(filtered).json()
    assert [o["offer_id"] for o in cheapest] == [
        "NVIDIA GeForce RTX 4090|COMMUNITY|1",
        "NVIDIA GeForce RTX 4090|COMMUNITY|2",
    ]

    search = bodies(market.vast, "POST", "/api/v0/bundles/")[0]
    assert search["type"] == "on-demand" and search["allocated_storage"] == 20
    assert search["rentable"] == {"eq": True} and search["rented"] == {"eq": False}
    asked = {
        (b["variables"]["input"]["gpuCount"], b["variables"]["input"]["secureCloud"])
        for b in market.runpod.graphql_calls("lowestPrice")
    }
    assert asked == {(count, secure) for count in (1, 2, 4, 8) for secure in (True, False)}
    assert market.lambda_.calls("GET", "/api/v1/instance-types")
    assert market.tensordock.calls("GET", "/api/v2/locations")
    for name, fake in market.fakes.items():
        assert fake.authorizations() == {f"Bearer {KEYS[name]}"}


def test_offers_filter_sort_and_limit_across_all_providers(market: Market) -> None:
    run = ok(market.run("offers", "h100 gpus>=8", "--sort", "pergpu", "--limit", "4", "--json"))
    offers = run.json()
    assert len(offers) == 4
    assert {o["gpu"] for o in offers} == {"H100 SXM"} and all(o["gpu_count"] >= 8 for o in offers)
    per_gpu = [o["price_per_gpu_hour"] for o in offers]
    assert per_gpu == sorted(per_gpu)
    assert [o["offer_id"] for o in offers] == [
        "20877302-bid",
        "NVIDIA H100 80GB HBM3|SECURE|8|SPOT",
        "20877302",
        f"{VIRGINIA_H100}:8",
    ]

    table = ok(market.run("offers", "a6000", "--sort", "price", "--limit", "3"))
    header, *rows = table.stdout.splitlines()
    assert header.split()[:3] == ["PROVIDER", "OFFER", "GPU"] and len(rows) == 3
    assert all("RTX A6000" in row for row in rows)


# -- instances --------------------------------------------------------------------------------


def test_instances_json_is_normalised_across_providers(market: Market) -> None:
    listed = {i["id"]: i for i in ok(market.run("instances", "--json")).json()}
    for instance in listed.values():
        assert set(instance) == INSTANCE_FIELDS
        assert instance["id"].startswith(f"{instance['provider']}:")
        assert instance["status"] in STATUSES
        assert instance["ssh"] is None or READY_SSH.match(instance["ssh"]), instance
        assert instance["gpu_util"] is None or isinstance(instance["gpu_util"], list)
    expected = {
        # id: (status, gpu, gpu count, ssh command, gpu_util)
        "vast:9104662": ("running", "RTX 4090", 1, "ssh -p 41022 root@142.114.20.7", [87.5]),
        "vast:9104700": ("starting", "RTX A6000", 2, None, None),
        "vast:9088123": ("stopped", "H100 SXM", 8, None, None),
        "vast:9104811": ("provisioning", "RTX 4090", 1, None, None),
        "runpod:ldl1dxirsim64n": (
            "running",
            "RTX 4090",
            1,
            "ssh -p 13422 root@213.173.108.12",
            [93.0],
        ),
        "runpod:q7v0mfh2k3w9zt": (
            "running",
            "RTX A6000",
            2,
            "ssh -p 22177 root@69.30.85.41",
            [64.0, 58.0],
        ),
        "runpod:c9ttwz0e4hq1rb": ("stopped", "H100 SXM", 1, None, None),
        "runpod:w2e8r6t4y0u1io": ("starting", "RTX 4090", 1, None, None),
        "lambda:0920582c7ff041399e34823a0be62549": (
            "running",
            "H100 SXM",
            8,
            "ssh -p 22 ubuntu@129.146.33.208",
            None,
        ),
        "lambda:7f3c1e0b2a9d4c8e9f1a2b3c4d5e6f70": ("starting", "H100 SXM", 1, None, None),
        "lambda:e4d3c2b1a0f94e8d7c6b5a4f3e2d1c0b": ("error", "RTX A6000", 1, None, None),
        f"tensordock:{tensordock_wire.RUNNING_VM['id']}": (
            "running",
            "RTX 4090",
            1,
            "ssh -p 20022 user@174.94.145.71",
            None,
        ),
        f"tensordock:{tensordock_wire.DEDICATED_IP_VM['id']}": (
            "running",
            "H100 SXM",
            2,
            "ssh -p 22 user@38.128.232.19",
            None,
        ),
        f"tensordock:{tensordock_wire.STOPPED_VM['id']}": ("stopped", "RTX A6000", 1, None, None),
        f"tensordock:{tensordock_wire.CREATING_VM['id']}": (
            "provisioning",
            "RTX 4090",
            1,
            None,
            None,
        ),
    }
    seen = {
        key: (i["status"], i["gpu"], i["gpu_count"], i["ssh"], i["gpu_util"])
        for key, i in listed.items()
    }
    assert seen == expected

    assert listed["vast:9104700"]["provider_status"] == "loading"
    assert listed["runpod:c9ttwz0e4hq1rb"]["provider_status"] == "EXITED"
    assert listed["lambda:e4d3c2b1a0f94e8d7c6b5a4f3e2d1c0b"]["provider_status"] == "unhealthy"
    assert listed["vast:9104662"]["started_at"] == "2026-09-21T14:13:20+00:00"
    assert (
        listed["vast:9104662"]["label"] == "llm-finetune" and listed["vast:9088123"]["label"] == ""
    )
    assert listed["lambda:0920582c7ff041399e34823a0be62549"]["price_hour"] == 23.92
    assert listed[f"tensordock:{tensordock_wire.RUNNING_VM['id']}"]["price_hour"] == 0.443
    assert listed["runpod:q7v0mfh2k3w9zt"]["price_hour"] == 0.98
    assert datetime.fromisoformat(listed["runpod:ldl1dxirsim64n"]["started_at"]).tzinfo is not None

    (listing,) = market.vast.calls("GET", "/api/v0/instances/")
    assert listing.query == {"owner": ["me"]}
    assert [b["query"] for b in market.runpod.graphql_calls("myself")]


# -- actions ----------------------------------------------------------------------------------


def test_vast_launch_actions_and_logs_send_the_documented_requests(market: Market) -> None:
    launch, start, stop, restart, destroy, logs = market.run_all(
        market.invocation(
            "launch",
            "vast",
            "21934711",
            "--image",
            "pytorch/pytorch:2.4.0-cuda12.4-cudnn9-runtime",
            "--disk",
            "40",
            "--label",
            "llm-a",
            "--yes",
        ),
        market.invocation("start", "vast:9088123", "--yes"),
        market.invocation("stop", "vast:9104662", "--yes"),
        market.invocation("restart", "vast:9104700", "--yes"),
        market.invocation("destroy", "vast:9104811", "--yes"),
        market.invocation("logs", "vast:9104662", "--tail", "50"),
    )
    assert ok(launch).stdout.strip() == "vast:9200001"
    (create,) = bodies(market.vast, "PUT", "/api/v0/asks/21934711/")
    assert {k: create[k] for k in ("image", "disk", "label", "runtype")} == {
        "image": "pytorch/pytorch:2.4.0-cuda12.4-cudnn9-runtime",
        "disk": 40,
        "label": "llm-a",
        "runtype": "ssh_direc ssh_proxy",
    }
    assert "price" not in create, "an on-demand offer carries no bid"

    assert ok(start).stdout.strip() == "start vast:9088123: done"
    assert bodies(market.vast, "PUT", "/api/v0/instances/9088123/") == [{"state": "running"}]
    assert ok(stop).stdout.strip() == "stop vast:9104662: done"
    assert bodies(market.vast, "PUT", "/api/v0/instances/9104662/") == [{"state": "stopped"}]
    assert ok(restart).stdout.strip() == "restart vast:9104700: done"
    assert len(market.vast.calls("PUT", "/api/v0/instances/reboot/9104700/")) == 1
    assert ok(destroy).stdout.strip() == "destroy vast:9104811: done"
    assert len(market.vast.calls("DELETE", "/api/v0/instances/9104811/")) == 1

    assert ok(logs).stdout == vast_wire.LOG_TEXT.rstrip("\n") + "\n"
    assert bodies(market.vast, "PUT", "/api/v0/instances/request_logs/9104662/") == [{"tail": "50"}]
    fetches = market.vast.calls("GET", r"/instance_logs/.*")
    assert len(fetches) == 2 and all("authorization" not in f.headers for f in fetches)


def test_runpod_launch_actions_and_logs_send_the_documented_requests(market: Market) -> None:
    launch, stop, start, restart, destroy, logs = market.run_all(
        market.invocation(
            "launch",
            "runpod",
            "NVIDIA GeForce RTX 4090|SECURE|1",
            "--image",
            "runpod/pytorch:2.4.0-py3.11-cuda12.4.1-devel-ubuntu22.04",
            "--disk",
            "50",
            "--label",
            "sd-a",
            "--yes",
        ),
        market.invocation("stop", "runpod:ldl1dxirsim64n", "--yes"),
        market.invocation("start", "runpod:c9ttwz0e4hq1rb", "--yes"),
        market.invocation("restart", "runpod:q7v0mfh2k3w9zt", "--yes"),
        market.invocation("destroy", "runpod:w2e8r6t4y0u1io", "--yes"),
        market.invocation("logs", "runpod:ldl1dxirsim64n", "--tail", "2"),
    )
    assert ok(launch).stdout.strip() == f"runpod:{runpod_wire.NEW_POD_PREFIX}0001"
    (deploy,) = market.runpod.graphql_calls("podFindAndDeployOnDemand")
    sent = deploy["variables"]["input"]
    assert {
        k: sent[k]
        for k in (
            "cloudType",
            "gpuTypeId",
            "gpuCount",
            "name",
            "imageName",
            "containerDiskInGb",
            "startSsh",
            "supportPublicIp",
        )
    } == {
        "cloudType": "SECURE",
        "gpuTypeId": "NVIDIA GeForce RTX 4090",
        "gpuCount": 1,
        "name": "sd-a",
        "imageName": "runpod/pytorch:2.4.0-py3.11-cuda12.4.1-devel-ubuntu22.04",
        "containerDiskInGb": 50,
        "startSsh": True,
        "supportPublicIp": True,
    }
    assert "22/tcp" in sent["ports"].split(",")

    assert ok(stop).stdout.strip() == "stop runpod:ldl1dxirsim64n: done"
    assert [c["variables"] for c in market.runpod.graphql_calls("podStop")] == [
        {"input": {"podId": "ldl1dxirsim64n"}}
    ]
    assert ok(start).stdout.strip() == "start runpod:c9ttwz0e4hq1rb: done"
    assert [c["variables"] for c in market.runpod.graphql_calls("podResume")] == [
        {"input": {"podId": "c9ttwz0e4hq1rb", "gpuCount": 1}}
    ]
    assert ok(restart).stdout.strip() == "restart runpod:q7v0mfh2k3w9zt: done"
    assert bodies(market.runpod, "POST", "/v2/pods/q7v0mfh2k3w9zt/action") == [
        {"action": "restart"}
    ]
    assert ok(destroy).stdout.strip() == "destroy runpod:w2e8r6t4y0u1io: done"
    (terminate,) = market.runpod.graphql_calls("podTerminate")
    assert terminate["variables"] == {"input": {"podId": "w2e8r6t4y0u1io"}}
    assert "{" not in terminate["query"].split("podTerminate", 1)[1], "podTerminate is a scalar"

    assert ok(logs).stdout.splitlines() == runpod_wire.LOG_LINES[-2:]
    (stream,) = market.runpod.calls("GET", "/v2/pods/ldl1dxirsim64n/logs")
    assert stream.query == {"tail": ["2"]} and stream.headers["accept"] == "text/event-stream"


def test_lambda_launch_restart_terminate_and_unsupported_actions(market: Market) -> None:
    active, booting, unhealthy = (row["id"] for row in lambda_wire.INSTANCES)
    launch, restart, destroy, stop, start, logs = market.run_all(
        market.invocation(
            "launch",
            "lambda",
            "gpu_1x_h100_sxm5@europe-central-1",
            "--image",
            "unused:latest",
            "--label",
            "train-1",
            "--yes",
        ),
        market.invocation("restart", f"lambda:{active}", "--yes"),
        market.invocation("destroy", f"lambda:{unhealthy}", "--yes"),
        market.invocation("stop", f"lambda:{booting}"),
        market.invocation("start", f"lambda:{booting}"),
        market.invocation("logs", f"lambda:{active}"),
    )
    assert ok(launch).stdout.strip() == f"lambda:{lambda_wire.NEW_INSTANCE_ID}"
    assert bodies(market.lambda_, "POST", "/api/v1/instance-operations/launch") == [
        {
            "region_name": "europe-central-1",
            "instance_type_name": "gpu_1x_h100_sxm5",
            "ssh_key_names": [lambda_wire.SSH_KEY_NAME],
            "file_system_names": [],
            "quantity": 1,
            "name": "train-1",
        }
    ]
    assert ok(restart).stdout.strip() == f"restart lambda:{active}: done"
    assert bodies(market.lambda_, "POST", "/api/v1/instance-operations/restart") == [
        {"instance_ids": [active]}
    ]
    assert ok(destroy).stdout.strip() == f"destroy lambda:{unhealthy}: done"
    assert bodies(market.lambda_, "POST", "/api/v1/instance-operations/terminate") == [
        {"instance_ids": [unhealthy]}
    ]

    assert "terminate" in one_error_line(stop, 1) and "terminate" in one_error_line(start, 1)
    assert "no logs API" in one_error_line(logs, 1)
    posts = {r.path for r in market.lambda_.server.requests if r.method == "POST"}
    assert posts == {
        f"/api/v1/instance-operations/{op}" for op in ("launch", "restart", "terminate")
    }


def test_tensordock_launch_and_power_actions_send_the_documented_requests(market: Market) -> None:
    running, dedicated, stopped, creating = (vm["id"] for vm in tensordock_wire.VMS)
    # Every action ends with a paced re-listing (one detail call per VM, 0.65 s apart), so the
    # launch and the restart get accounts of their own to keep this test quick.
    empty = market.start(FakeTensordock(KEYS["tensordock"], vms=[]))
    lone = market.start(FakeTensordock(KEYS["tensordock"], vms=[tensordock_wire.DEDICATED_IP_VM]))
    del market.tensordock.vms[dedicated]
    launch, stop, start, restart, destroy = market.run_all(
        market.invocation(
            "launch",
            "tensordock",
            f"{IDAHO_4090}:1",
            "--image",
            "ignored",
            "--disk",
            "150",
            "--label",
            "comfy-2",
            "--yes",
            env=market.environment(**empty.endpoint_env()),
        ),
        market.invocation("stop", f"tensordock:{running}", "--yes"),
        market.invocation("start", f"tensordock:{stopped}", "--yes"),
        market.invocation(
            "restart", f"tensordock:{dedicated}", "--yes", env=market.environment(**lone.endpoint_env())
        ),
        market.invocation("destroy", f"tensordock:{creating}", "--yes"),
    )
    assert ok(launch).stdout.strip() == f"tensordock:{tensordock_wire.NEW_VM_ID}"
    (envelope,) = bodies(empty, "POST", "/api/v2/instances")
    assert envelope["data"]["type"] == "virtualmachine"
    attributes = envelope["data"]["attributes"]
    forwards = attributes.pop("port_forwards")
    assert attributes == {
        "name": "comfy-2",
        "type": "virtualmachine",
        "image": "ubuntu2404",
        "resources": {
            "vcpu_count": 8,
            "ram_gb": 32,
            "storage_gb": 150,
            "gpus": {"geforcertx4090-pcie-24gb": {"count": 1}},
        },
        "location_id": tensordock_wire.IDAHO["id"],
        "ssh_key": TENSORDOCK_PUBLIC_KEY,
    }
    assert [f["internal_port"] for f in forwards] == [22]
    assert 20000 <= forwards[0]["external_port"] < 60000

    for run, action, vm in (
        (stop, "stop", running),
        (start, "start", stopped),
        (restart, "restart", dedicated),
        (destroy, "destroy", creating),
    ):
        assert ok(run).stdout.strip() == f"{action} tensordock:{vm}: done"
    assert len(market.tensordock.calls("POST", f"/api/v2/instances/{running}/stop")) == 1
    assert len(market.tensordock.calls("POST", f"/api/v2/instances/{stopped}/start")) == 1
    power = [r.path.rsplit("/", 1)[-1] for r in lone.server.requests if r.method == "POST"]
    assert power == ["stop", "start"], "restart is a stop, then a start"
    assert len(market.tensordock.calls("DELETE", f"/api/v2/instances/{creating}")) == 1


# -- errors -----------------------------------------------------------------------------------


def test_errors_are_one_readable_line_with_the_right_exit_code(market: Market) -> None:
    throttled = market.start(FakeVast(KEYS["vast"]))
    throttled.server.route(
        "DELETE",
        "/api/v0/instances/9104662/",
        Reply.text("API requests too frequent: endpoint threshold=3.0", status=429),
    )
    outage = market.start(FakeTensordock(KEYS["tensordock"]))
    outage.server.route(
        "GET",
        "/api/v2/instances",
        Reply(
            503,
            "<html><body><h1>503 Service Temporarily Unavailable</h1></body></html>",
            {"Content-Type": "text/html"},
        ),
    )
    garbled = market.start(FakeLambda(KEYS["lambda"]))
    garbled.server.route(
        "GET",
        "/api/v1/instances",
        Reply(200, '{"data": [{"id": "0920582c', {"Content-Type": "application/json"}),
    )
    no_capacity = market.start(FakeRunpod(KEYS["runpod"]))
    no_capacity.deploy_error = runpod_wire.CAPACITY_MESSAGE
    full_lambda = market.start(FakeLambda(KEYS["lambda"]))
    full_lambda.capacity = False
    dead_port = refused_port()
    bare_config = market.tmp_path / "bare.toml"
    bare_config.write_text("[offers]\ndisk_gb = 30\n", encoding="utf-8")
    broken_config = market.tmp_path / "broken.toml"
    broken_config.write_text("[lambda\nssh_key_name = 'x'\n", encoding="utf-8")

    def at(fake: FakeMarketplace, **extra: str) -> dict[str, str]:
        return market.environment(**fake.endpoint_env(), **extra)

    scenarios: list[tuple[Invocation, int, str]] = [
        *(
            (
                market.invocation(
                    "instances",
                    "--provider",
                    name,
                    env=market.environment(**{KEY_VARIABLES[name]: "wrong-key-0123456789"}),
                ),
                1,
                f"{name}: API {'token' if name == 'tensordock' else 'key'} rejected",
            )
            for name in KEYS
        ),
        (
            market.invocation("destroy", "vast:9104662", "--yes", env=at(throttled)),
            1,
            "vast: rate limited: Vast allows this call once every 3s",
        ),
        (
            market.invocation("instances", "--provider", "tensordock", env=at(outage)),
            1,
            "tensordock: server error HTTP 503",
        ),
        (
            market.invocation("instances", "--json", "--provider", "lambda", env=at(garbled)),
            1,
            "lambda: malformed JSON in reply",
        ),
        (
            market.invocation(
                "instances",
                "--provider",
                "runpod",
                env=market.environment(
                    COMPUTEHUB_RUNPOD_GRAPHQL_URL=f"http://127.0.0.1:{dead_port}/graphql"
                ),
            ),
            1,
            f"runpod: can't reach 127.0.0.1:{dead_port}: connection refused",
        ),
        (
            market.invocation("stop", "vast:123456", "--yes"),
            1,
            "vast:123456: not found on Vast.ai",
        ),
        (
            market.invocation("destroy", "runpod:zzzznotapod00", "--yes"),
            1,
            "runpod:zzzznotapod00: not found on RunPod",
        ),
        (
            market.invocation("start", "tensordock:00000000-0000-4000-8000-000000000000"),
            1,
            "tensordock:00000000-0000-4000-8000-000000000000: not found on TensorDock",
        ),
        (
            market.invocation(
                "launch",
                "runpod",
                "NVIDIA GeForce RTX 4090|SECURE|1",
                "--image",
                "x",
                "--yes",
                env=at(no_capacity),
            ),
            1,
            "runpod: no capacity: There are no longer any instances available",
        ),
        (
            market.invocation(
                "launch",
                "lambda",
                "gpu_1x_h100_sxm5@us-east-1",
                "--image",
                "x",
                "--yes",
                env=at(full_lambda),
            ),
            1,
            "lambda: no capacity for this instance type in this region",
        ),
        (
            market.invocation("launch", "vast", "99999999", "--image", "x", "--yes"),
            1,
            "offer 99999999 not found on vast",
        ),
        (market.invocation("stop", "9104662"), 2, "instance IDs look like provider:id"),
        (market.invocation("restart", "paperspace:ps-123"), 2, "unknown provider 'paperspace'"),
        (market.invocation("logs", "nosuch:1"), 2, "unknown provider 'nosuch'"),
        (
            market.invocation(
                "launch",
                "lambda",
                "gpu_1x_a6000@us-west-3",
                "--image",
                "x",
                "--yes",
                env=market.environment(COMPUTEHUB_CONFIG=str(bare_config)),
            ),
            1,
            "set ssh_key_name under [providers.lambda] in the config file",
        ),
        (
            market.invocation(
                "launch",
                "tensordock",
                f"{IDAHO_4090}:1",
                "--image",
                "x",
                "--yes",
                env=market.environment(COMPUTEHUB_CONFIG=str(bare_config)),
            ),
            1,
            "set ssh_public_key under [providers.tensordock] in the config file",
        ),
        (
            market.invocation(
                "offers", env=market.environment(COMPUTEHUB_CONFIG=str(broken_config))
            ),
            2,
            f"{broken_config}:1: not valid TOML",
        ),
        (market.invocation("launch", "vast", "21934711", "--yes"), 2, "required: --image"),
        (market.invocation("destroy", "vast:9104662"), 2, "add --yes"),
        (market.invocation("offers", "price<<1"), 2, "needs a number"),
        (
            market.invocation(
                "instances", "--provider", "runpod", env=market.environment(keys=("vast",))
            ),
            2,
            "runpod is not bound",
        ),
    ]
    runs = market.run_all(*(invocation for invocation, _, _ in scenarios))

    for run, (_, code, expected) in zip(runs, scenarios, strict=True):
        assert expected in one_error_line(run, code), run.describe()
    assert not market.vast.calls("DELETE", "/api/v0/instances/9104662/"), (
        "no --yes, nothing destroyed"
    )
    assert len(throttled.calls("DELETE", "/api/v0/instances/9104662/")) == 1, (
        "a destroy is never retried"
    )
    assert no_capacity.graphql_calls("podFindAndDeployOnDemand"), (
        "the GraphQL error came with HTTP 200"
    )
    assert not market.lambda_.calls("POST", "/api/v1/instance-operations/launch"), (
        "no SSH key, no launch"
    )
    assert not market.tensordock.calls("POST", "/api/v2/instances"), "no SSH key, no launch"


# -- keys -------------------------------------------------------------------------------------


def test_keys_set_list_test_remove_and_which_key_is_used(market: Market) -> None:
    stored, from_env = "vast-stored-8d2b6f1e4a9c0357", "vast-env-wins-1f0e9d8c7b6a"
    market.vast.valid_keys = {stored, from_env}
    data = market.tmp_path / "data" / "keys"
    no_keys = market.environment(keys=())
    env_key = market.environment(keys=(), VAST_API_KEY=from_env)
    dead_runpod = market.environment(
        keys=(), COMPUTEHUB_RUNPOD_GRAPHQL_URL=f"http://127.0.0.1:{refused_port()}/graphql"
    )

    def command(*args: str, env: dict[str, str] = no_keys, stdin: str = "") -> Invocation:
        return market.invocation(*args, env=env, stdin=stdin, data_dir=data)

    (saved,) = market.run_all(command("keys", "set", "vast", stdin=stored + "\n"))
    assert ok(saved).stdout.strip() == "Vast.ai key ••••0357 saved (encrypted)"

    # With the stored key only, and with an environment key that must win (on another endpoint).
    listing, env_listing, verdict, instances, offers = market.run_all(
        command("keys", "list"),
        command("keys", "list", env=env_key),
        command("keys", "test"),
        command("instances", "--json"),
        command("offers", "--json", "--provider", "vast", env=env_key),
    )
    assert re.search(r"^vast\s+vault\s+••••0357$", ok(listing).stdout, re.MULTILINE), listing.stdout
    assert re.search(r"^runpod\s+-\s+not bound$", listing.stdout, re.MULTILINE), listing.stdout
    assert re.search(r"^vast\s+environment\s+••••7b6a$", ok(env_listing).stdout, re.MULTILINE), (
        env_listing.stdout
    )
    assert re.fullmatch(r"vast\s+ok\n", ok(verdict).stdout)
    assert ok(instances).json() and ok(offers).json()
    seen = {(r.path, r.headers.get("authorization")) for r in market.vast.server.requests}
    assert seen == {
        ("/api/v0/users/current/", f"Bearer {stored}"),
        ("/api/v0/instances/", f"Bearer {stored}"),
        ("/api/v0/bundles/", f"Bearer {from_env}"),
    }

    (revoked,) = market.run_all(
        command("keys", "set", "runpod", stdin="rpa_REVOKED0000000000000\n")
    )
    ok(revoked)
    both, unreachable, empty = market.run_all(
        command("keys", "test"),
        command("keys", "test", "runpod", env=dead_runpod),
        command("keys", "set", "lambda", stdin=""),
    )
    assert both.code == 1 and both.stdout.split() == ["vast", "ok", "runpod", "invalid", "key"], (
        both.describe()
    )
    assert unreachable.code == 1 and unreachable.stdout.split() == ["runpod", "unreachable"], (
        unreachable.describe()
    )
    assert "no key given" in one_error_line(empty, 2)

    (removed,) = market.run_all(command("keys", "remove", "vast"))
    assert ok(removed).stdout.strip() == "vast: removed"
    again, after = market.run_all(command("keys", "remove", "vast"), command("keys", "list"))
    assert again.code == 1 and again.stdout.strip() == "vast: no stored key"
    assert re.search(r"^vast\s+-\s+not bound$", ok(after).stdout, re.MULTILINE)
    assert stored not in " ".join(arg for r in market.runs for arg in r.args), (
        "keys never go on argv"
    )
