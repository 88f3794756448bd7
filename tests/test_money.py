"""Money and uptime through the Hub: costs agree across processes, bad rates drop alone, one uptime."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from computehub_tui.clock import ManualClock
from computehub_tui.domain.models import Instance, InstanceStatus, LaunchSpec, Offer, OfferQuery
from computehub_tui.domain.secret import Secret
from computehub_tui.engine.hub import Hub
from computehub_tui.providers.http import HttpPolicy
from computehub_tui.providers.registry import PROVIDER_CAPABILITIES
from computehub_tui.providers.vastai import VastProvider, instance_from_row
from computehub_tui.store import Store

HOUR = 3600.0


class ScriptedProvider:
    """A provider whose instance list the test sets; actions change it as the provider would."""

    def __init__(self, name: str, instances: list[Instance] | None = None) -> None:
        self.name = name
        self.title = name
        self.capabilities = PROVIDER_CAPABILITIES[name]
        self.instances = list(instances or [])

    async def list_offers(self, query: OfferQuery) -> list[Offer]:
        return []

    async def list_instances(self) -> list[Instance]:
        return list(self.instances)

    def set_status(self, instance_id: str, status: InstanceStatus, **changes: Any) -> None:
        if self.name == "runpod" and "started_at" in changes:  # RunPod's uptime is the run's age
            changes["running_since"] = changes["started_at"]
        self.instances = [
            dataclasses.replace(i, status=status, **changes) if i.instance_id == instance_id else i
            for i in self.instances
        ]

    async def stop(self, instance_id: str) -> None:
        self.set_status(instance_id, InstanceStatus.STOPPED)

    async def start(self, instance_id: str) -> None:
        self.set_status(instance_id, InstanceStatus.STARTING)


def machine(instance_id: str, price: float, *, provider: str = "vast", started_at: float | None = None,
            status: InstanceStatus = InstanceStatus.RUNNING, gpus: int = 1, storage: float = 0.0) -> Instance:
    return Instance(provider=provider, instance_id=instance_id, label=instance_id, status=status,
                    provider_status=status.value, gpu="RTX 4090", gpu_count=gpus, price_hour=price,
                    started_at=started_at, storage_price_hour=storage,
                    running_since=started_at if provider == "runpod" else None)


@asynccontextmanager
async def process(db: Path, clock: ManualClock, *providers: ScriptedProvider) -> AsyncIterator[Hub]:
    """One run of the app: its own Store connection and Hub on the shared database file."""
    store = await Store.open(db)
    try:
        yield Hub({p.name: p for p in providers}, store, clock)  # type: ignore[misc]
    finally:
        await store.close()


async def all_spend(hub: Hub) -> float:
    return await hub.store.spend_between(0, 2**40)


async def test_each_fresh_process_shows_the_same_cost(tmp_path: Path) -> None:
    clock = ManualClock()
    runpod = ScriptedProvider("runpod", [machine("pod1", 1.0, provider="runpod", started_at=clock.now() - HOUR)])
    seen = []
    for _ in range(3):  # three `computehub-tui instances` in a row: no load_snapshot, one refresh each
        async with process(tmp_path / "db", clock, runpod) as hub:
            await hub.refresh_instances("runpod")
            seen.append(hub.cost_so_far("runpod:pod1"))
    assert seen == pytest.approx([1.0, 1.0, 1.0])
    await clock.advance(HOUR)
    async with process(tmp_path / "db", clock, runpod) as hub:
        await hub.refresh_instances("runpod")
        assert hub.cost_so_far("runpod:pod1") == pytest.approx(2.0)
        assert hub.spend_today() == pytest.approx(2.0)  # the whole two hours fall on this UTC day
        assert await all_spend(hub) == pytest.approx(2.0)


async def test_the_tui_sees_what_a_cli_run_booked_without_counting_it_again(tmp_path: Path) -> None:
    clock = ManualClock()
    vast = ScriptedProvider("vast", [machine("1", 2.0)])
    async with process(tmp_path / "db", clock, vast) as tui:
        await tui.refresh_instances("vast")
        await clock.advance(HOUR / 2)
        async with process(tmp_path / "db", clock, vast) as cli:
            await cli.refresh_instances("vast")
            assert cli.cost_so_far("vast:1") == pytest.approx(1.0)
        await clock.advance(HOUR / 2)
        await tui.refresh_instances("vast")
        assert tui.cost_so_far("vast:1") == pytest.approx(2.0)
        assert await all_spend(tui) == pytest.approx(2.0)


async def test_two_hubs_polling_at_the_same_time_do_not_double_count(tmp_path: Path) -> None:
    clock = ManualClock()
    vast = ScriptedProvider("vast", [machine(str(n), 1.0 + n) for n in range(5)])
    async with process(tmp_path / "db", clock, vast) as first, process(tmp_path / "db", clock, vast) as second:
        await first.refresh_instances("vast")
        for _ in range(12):
            await clock.advance(300)
            await asyncio.gather(first.refresh_instances("vast"), second.refresh_instances("vast"))
        await first.refresh_instances("vast")
        for n in range(5):
            assert first.cost_so_far(f"vast:{n}") == pytest.approx(1.0 + n)
            assert second.cost_so_far(f"vast:{n}") == pytest.approx(1.0 + n)
        assert await all_spend(first) == pytest.approx(sum(1.0 + n for n in range(5)))


@pytest.mark.parametrize("bad", [
    {"price": 1e308}, {"price": -5.0}, {"price": float("nan")}, {"price": float("inf")},
    {"price": 5000.0, "gpus": 1_000_000_000},
])
async def test_an_absurd_rate_drops_that_instance_not_the_poll(tmp_path: Path, bad: dict[str, Any]) -> None:
    clock = ManualClock()
    vast = ScriptedProvider("vast", [machine("good", 1.0), machine("bad", **bad)])
    async with process(tmp_path / "db", clock, vast) as hub:
        await hub.refresh_instances("vast")
        assert hub.burn_rate() == pytest.approx(1.0)  # a negative price cannot lower it either
        await clock.advance(HOUR)
        await hub.refresh_instances("vast")
        assert hub.cost_so_far("vast:good") == pytest.approx(1.0)
        assert hub.cost_so_far("vast:bad") == 0.0
        assert hub.spend_today() == pytest.approx(1.0)
        assert hub.store_failures == 0


def vast_row(instance_id: int, dph_total: object) -> dict[str, Any]:
    return {"id": instance_id, "actual_status": "running", "intended_status": "running", "cur_state": "running",
            "num_gpus": 1, "gpu_name": "RTX 4090", "gpu_ram": 24564, "dph_total": dph_total, "dph_base": 0.5,
            "start_date": 1_789_990_000.0, "ssh_host": "ssh6.vast.ai", "ssh_port": 10600}


async def test_a_vast_row_billing_1e308_does_not_cost_the_others_their_poll(tmp_path: Path) -> None:
    clock = ManualClock()
    rows = [vast_row(1, 0.5), vast_row(2, 1e308)]
    transport = httpx.MockTransport(lambda request: httpx.Response(200, json={"instances": rows}))
    policy = HttpPolicy(max_attempts=1, min_interval=0.0, endpoint_intervals={})
    async with httpx.AsyncClient(transport=transport) as client:
        vast = VastProvider(client, Secret("k" * 32), clock=clock, policy=policy)
        store = await Store.open(tmp_path / "db")
        try:
            hub = Hub({"vast": vast}, store, clock)
            assert await hub.refresh_instances("vast")
            await clock.advance(HOUR)
            assert await hub.refresh_instances("vast")
            assert hub.cost_so_far("vast:1") == pytest.approx(0.5)
            assert hub.cost_so_far("vast:2") == 0.0
            assert hub.burn_rate() == pytest.approx(0.5)
            assert hub.store_failures == 0
        finally:
            await store.close()


# -- uptime: one definition -------------------------------------------------------------------------


async def test_vast_uptime_restarts_at_start_even_though_its_start_date_does_not(tmp_path: Path) -> None:
    clock = ManualClock()
    created = clock.now() - 2 * HOUR
    vast = ScriptedProvider("vast", [machine("1", 1.0, started_at=created, storage=0.1)])
    async with process(tmp_path / "db", clock, vast) as hub:
        await hub.refresh_instances("vast")
        assert hub.uptime("vast:1") is None  # Vast's start_date is not "last started": unknown, not wrong
        await clock.advance(HOUR)
        assert (await hub.act("stop", "vast:1")).ok
        assert hub.uptime("vast:1") is None and hub.running_since("vast:1") is None
        await clock.advance(5 * HOUR)
        assert (await hub.act("start", "vast:1")).ok
        started = clock.now()
        vast.set_status("1", InstanceStatus.RUNNING)  # start_date still says `created`
        await clock.advance(HOUR / 2)
        await hub.refresh_instances("vast")
        assert hub.running_since("vast:1") == started
        assert hub.uptime("vast:1") == pytest.approx(HOUR / 2)
        # One hour running, five stopped at $0.10, half an hour running again.
        assert hub.cost_so_far("vast:1") == pytest.approx(1.0 + 0.5 + 0.5)


async def test_runpod_uptime_follows_its_last_start_and_agrees_with_cost(tmp_path: Path) -> None:
    clock = ManualClock()
    runpod = ScriptedProvider("runpod", [machine("p", 2.0, provider="runpod", started_at=clock.now() - 600)])
    async with process(tmp_path / "db", clock, runpod) as hub:
        await hub.refresh_instances("runpod")
        assert hub.uptime("runpod:p") == pytest.approx(600)
        assert hub.cost_so_far("runpod:p") == pytest.approx(2.0 * 600 / HOUR)  # same moment as uptime
        runpod.set_status("p", InstanceStatus.EXITED, started_at=None)  # stopped outside this app
        await clock.advance(HOUR)
        await hub.refresh_instances("runpod")
        assert hub.uptime("runpod:p") is None
        restarted = clock.now() + 1200
        runpod.set_status("p", InstanceStatus.RUNNING, started_at=restarted)
        await clock.advance(1800)
        await hub.refresh_instances("runpod")
        assert hub.running_since("runpod:p") == restarted
        assert hub.uptime("runpod:p") == pytest.approx(600)
    async with process(tmp_path / "db", clock, runpod) as fresh:  # another process agrees
        await fresh.refresh_instances("runpod")
        assert fresh.uptime("runpod:p") == pytest.approx(600)


async def test_a_machine_launched_here_has_uptime_even_where_the_provider_reports_none(tmp_path: Path) -> None:
    from computehub_tui.providers.demo.adapters import demo_providers
    from computehub_tui.providers.demo.market import DemoMarket

    clock = ManualClock()
    providers, clients = demo_providers(DemoMarket(clock, seed_instances=False), clock)
    store = await Store.open(tmp_path / "db")
    try:
        hub = Hub({"lambda": providers["lambda"]}, store, clock)
        await hub.refresh_offers("lambda")
        offer = next(o for o in hub.offers() if o.available)
        key = await hub.launch(offer, LaunchSpec(image="", label="t"))
        launched = clock.now()
        await clock.advance(60)
        await hub.refresh_instances("lambda")
        instance = hub.instance(key)
        assert instance is not None and instance.started_at is None
        assert hub.running_since(key) == launched
        assert hub.uptime(key) == pytest.approx(60)
        assert hub.cost_so_far(key) == pytest.approx(instance.price_hour * 60 / HOUR)
    finally:
        await store.close()
        for client in clients:
            await client.aclose()


async def test_store_failures_are_counted_for_the_cli(tmp_path: Path) -> None:
    clock = ManualClock()
    vast = ScriptedProvider("vast", [machine("1", 1.0)])
    store = await Store.open(tmp_path / "db")
    hub = Hub({"vast": vast}, store, clock)
    await store.close()  # every write now fails
    assert await hub.refresh_instances("vast")  # polling itself carries on
    assert hub.store_failures >= 2  # costs and the instance snapshot
    assert "closed" in hub.last_store_error and str(tmp_path / "db") in hub.last_store_error


async def test_the_instances_pane_shows_the_hubs_uptime_and_no_unbelievable_price(tmp_path: Path) -> None:
    from types import SimpleNamespace

    from computehub_tui.ui.widgets.instances_pane import instance_columns

    clock = ManualClock()
    runpod = ScriptedProvider("runpod", [
        machine("ok", 1.0, provider="runpod", started_at=clock.now() - 5400),
        machine("absurd", 1e308, provider="runpod", started_at=clock.now() - 60),
    ])
    async with process(tmp_path / "db", clock, runpod) as hub:
        await hub.refresh_instances("runpod")
        pane = SimpleNamespace(hub=hub, render_now=clock.now(), marked=set(), pending={}, billing_stopped={},
                               assignments={}, cost_of=hub.cost_so_far, util_history=lambda key: [])
        cells = {column.key: column.cell for column in instance_columns(pane)}  # type: ignore[arg-type]
        ok, absurd = (hub.instance(f"runpod:{name}") for name in ("ok", "absurd"))
        assert cells["uptime"](ok)[0] == "1h30m"  # type: ignore[arg-type]
        assert cells["cost"](ok)[0] == "$1.50"  # type: ignore[arg-type]
        assert cells["price"](absurd)[0] == "?"  # type: ignore[arg-type]
        assert cells["price"](ok)[0] != "?"  # type: ignore[arg-type]


async def test_a_vast_machine_first_seen_running_takes_its_uptime_from_uptime_mins(tmp_path: Path) -> None:
    clock = ManualClock(start=1_800_000_000.0)
    row = {"id": 42, "actual_status": "running", "intended_status": "running", "num_gpus": 1,
           "gpu_name": "RTX 4090", "dph_total": 0.5, "start_date": clock.now() - 30 * 86400, "uptime_mins": 90}
    seen = instance_from_row(row, clock.now())
    assert seen is not None and seen.running_since == clock.now() - 5400
    vast = ScriptedProvider("vast", [seen])
    async with process(tmp_path / "c.db", clock, vast) as hub:
        await hub.refresh_instances("vast")
        assert hub.uptime("vast:42") == 5400  # not 30 days: start_date survives stop and start
        assert hub.cost_so_far("vast:42") == pytest.approx(0.75)  # 1.5 h at $0.50/h, the same run
