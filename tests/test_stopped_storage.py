"""Storage billed while stopped: a stopped RunPod pod's volume disk is priced (RunPod's stopped-volume rate),
booked hour by hour by the cost service, and never its compute price; absurd volume sizes price nothing. And
the detail screen's $ curve, read from those books."""

from __future__ import annotations

import copy
import json
from collections.abc import AsyncIterator
from itertools import pairwise
from pathlib import Path
from typing import Any

import httpx
import pytest
from fakes.runpod import EXITED_POD, GPU_TYPES, SSH_POD

from computehub_tui.clock import ManualClock
from computehub_tui.domain.models import Instance, InstanceStatus, Offer, OfferQuery
from computehub_tui.domain.secret import Secret
from computehub_tui.engine.hub import Hub
from computehub_tui.providers.http import HttpPolicy
from computehub_tui.providers.registry import PROVIDER_CAPABILITIES
from computehub_tui.providers.runpod import HOURS_PER_MONTH, STOPPED_VOLUME_USD_GB_MONTH, RunpodProvider
from computehub_tui.store import Store

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


class PricedPod:
    """One running pod whose hourly price the test changes between polls."""

    name = "runpod"
    title = "RunPod"
    capabilities = PROVIDER_CAPABILITIES["runpod"]
    dropped_rows = 0

    def __init__(self) -> None:
        self.price = 1.0

    async def list_instances(self) -> list[Instance]:
        return [Instance(provider="runpod", instance_id="p", label="job", status=InstanceStatus.RUNNING,
                         provider_status="RUNNING", gpu="RTX 4090", gpu_count=1, price_hour=self.price)]

    async def list_offers(self, query: OfferQuery) -> list[Offer]:
        return []


async def test_the_spend_chart_is_the_booked_hours_not_todays_price_times_time(store: Store) -> None:
    start = 1_790_002_800.0 + 45 * 60  # 45 minutes into a UTC hour
    clock = ManualClock(start=start)
    pod = PricedPod()
    hub = Hub({"runpod": pod}, store, clock)  # type: ignore[dict-item]
    await hub.refresh_instances("runpod")  # first seen: booked from here on
    await clock.advance(2 * HOUR)
    await hub.refresh_instances("runpod")  # two hours at $1/h
    pod.price = 3.0
    await clock.advance(HOUR)
    await hub.refresh_instances("runpod")  # one more at $3/h
    curve = await hub.costs.spent_over("runpod:p", start - HOUR)
    assert curve[0] == (start - HOUR, 0.0) and curve[-1] == pytest.approx((start + 3 * HOUR, 5.0))
    assert hub.cost_so_far("runpod:p") == pytest.approx(5.0)
    edges = dict(curve)
    hour = start - 45 * 60
    assert edges[hour + HOUR] == pytest.approx(0.25)  # the first quarter hour at $1/h
    assert edges[hour + 2 * HOUR] == pytest.approx(1.25)
    assert edges[hour + 3 * HOUR] == pytest.approx(2.0 + 0.25 * 3.0)  # at $3/h from start + 2 h
    times = [at for at, _ in curve]
    assert times == sorted(times) and all(b >= a for (_, a), (_, b) in pairwise(curve))
    later = await hub.costs.spent_over("runpod:p", start + 2.5 * HOUR)  # a window opening inside an hour
    assert later[0] == (start + 2.5 * HOUR, pytest.approx(2.0 + 1.5))
