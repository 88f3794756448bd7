"""Storage billed while stopped: a stopped RunPod pod's volume disk is priced (RunPod's stopped-volume rate),
booked hour by hour by the cost service, and never its compute price; absurd volume sizes price nothing."""

from __future__ import annotations

import copy
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from computehub_tui.clock import ManualClock
from computehub_tui.domain.models import InstanceStatus
from computehub_tui.domain.secret import Secret
from computehub_tui.engine.hub import Hub
from computehub_tui.providers.http import HttpPolicy
from computehub_tui.providers.runpod import HOURS_PER_MONTH, STOPPED_VOLUME_USD_GB_MONTH, RunpodProvider
from computehub_tui.store import Store
from fakes.runpod import EXITED_POD, GPU_TYPES, SSH_POD

T0 = 1_790_000_000.0
HOUR = 3600.0


class Pods:
    """Answers ``myself { pods }`` with the pods the test holds (and the GPU catalogue), as RunPod's GraphQL does."""

    def __init__(self, *pods: dict[str, Any]) -> None:
        self.pods = [copy.deepcopy(pod) for pod in pods]

    def handle(self, request: httpx.Request) -> httpx.Response:
        if "gpuTypes" in json.loads(request.content)["query"]:
            types = [{k: t[k] for k in ("id", "displayName", "memoryInGb")} for t in GPU_TYPES]
            return httpx.Response(200, json={"data": {"gpuTypes": types}})
        return httpx.Response(200, json={"data": {"myself": {"pods": self.pods}}})


def runpod(pods: Pods, clock: ManualClock) -> RunpodProvider:
    client = httpx.AsyncClient(transport=httpx.MockTransport(pods.handle))
    return RunpodProvider(client, Secret("rpa_STORAGE0TEST0KEY0123456789"), clock=clock,
                          policy=HttpPolicy(max_attempts=1, backoff_base=0.0))


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    opened = await Store.open(tmp_path / "hub.db")
    yield opened
    await opened.close()


@pytest.mark.parametrize(("volume", "storage_hour"), [
    (100, 100 * 0.20 / 730),
    (0, 0.0),  # container disk only: wiped on stop, billed only while running
    (None, 0.0),
    (-5, 0.0),
    (1e308, 0.0),
    ("NaN", 0.0),
    (2_000_000, 0.0),  # beyond any stopped disk's believable price
])
async def test_a_stopped_pod_is_priced_by_its_volume(volume: object, storage_hour: float) -> None:
    clock = ManualClock(start=T0)
    [pod] = await runpod(Pods({**EXITED_POD, "volumeInGb": volume}), clock).list_instances()
    assert pod.status is InstanceStatus.STOPPED
    assert pod.storage_price_hour == pytest.approx(storage_hour, abs=1e-6)
    assert pod.current_price_hour == pod.storage_price_hour  # never the compute price it says it had
    assert STOPPED_VOLUME_USD_GB_MONTH / HOURS_PER_MONTH == pytest.approx(0.20 / 730)


async def test_storage_of_a_stopped_pod_is_booked_and_its_compute_is_not(store: Store) -> None:
    clock = ManualClock(start=T0)
    pods = Pods({**EXITED_POD, "volumeInGb": 365}, SSH_POD)
    hub = Hub({"runpod": runpod(pods, clock)}, store, clock)
    await hub.refresh_instances("runpod")
    await clock.advance(10 * HOUR)
    await hub.refresh_instances("runpod")
    stopped_key, running_key = (f"runpod:{pod['id']}" for pod in (EXITED_POD, SSH_POD))
    stopped = hub.instance(stopped_key)
    assert stopped is not None and hub.costs.billing_while_stopped(stopped)
    assert hub.cost_so_far(stopped_key) == pytest.approx(10 * 365 * 0.20 / 730)  # $0.10/h for ten hours
    running_hours = SSH_POD["runtime"]["uptimeInSeconds"] / HOUR + 10
    assert hub.cost_so_far(running_key) == pytest.approx(running_hours * SSH_POD["costPerHr"])
    assert hub.burn_rate() == pytest.approx(0.10 + SSH_POD["costPerHr"])
    spend = await hub.costs.spend_by(["provider"], since=0)
    assert [line.usd for line in spend] == pytest.approx([hub.cost_so_far(stopped_key) + hub.cost_so_far(running_key)])
