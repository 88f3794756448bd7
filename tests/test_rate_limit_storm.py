"""A Hub polling the real Vast adapter over loopback HTTP: a 429 storm, a hang, a dead port."""

from __future__ import annotations

import asyncio
import copy
import time
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from fakes import vast as vast_wire
from fakes.vast import FakeVast
from loopback import RecordedRequest, Reply, refused_port

from computehub_tui.clock import ManualClock
from computehub_tui.domain.secret import Secret
from computehub_tui.engine.hub import Hub, HubSettings, PollSettings
from computehub_tui.providers.http import HttpPolicy
from computehub_tui.providers.vastai import VAST_ENDPOINT_INTERVALS, VastProvider
from computehub_tui.store import Store

KEY = "vk-storm-3f9e1a7c5b2d4e60"
POLL_S = 5.0
STORM_S = 30.0
STEP_S = 0.25
SLEEPERS = 3
"""One provider's instances and offers loops and the hub's maintenance task, each asleep on the clock when idle."""
REAL_WAIT_LIMIT_S = 10.0


@dataclass
class Rig:
    hub: Hub
    clock: ManualClock
    task: asyncio.Task[None]

    async def settle(self) -> None:
        """Wait (in real time, bounded) until every poll loop is asleep on the manual clock."""
        deadline = time.monotonic() + REAL_WAIT_LIMIT_S
        while self.clock.sleeper_count < SLEEPERS:
            if self.task.done():
                raise AssertionError(f"the poll loop ended: {self.task.exception()!r}")
            if time.monotonic() > deadline:
                raise AssertionError("the poll loops did not go back to sleep")
            await asyncio.sleep(0.002)

    async def run_for(
        self, seconds: float, each_step: Callable[[float], None] | None = None
    ) -> None:
        """Move the clock ``seconds`` forward in small steps, letting every poll finish."""
        steps = round(seconds / STEP_S)
        for _ in range(steps):
            await self.clock.advance(STEP_S)
            await self.settle()
            if each_step is not None:
                each_step(self.clock.monotonic())

    @property
    def state(self) -> str:
        return self.hub.health()[0].state

    @property
    def last_error(self) -> str:
        return self.hub.health()[0].last_error


class StormyVast(FakeVast):
    """The fake Vast, answering Vast's plain-text 429 while ``storm_until`` is in the future."""

    def __init__(self, clock: ManualClock, *keys: str) -> None:
        super().__init__(*keys)
        self.clock = clock
        self.storm: tuple[float, float] | None = None
        self.storm_requests: list[RecordedRequest] = []
        self.hang_s = 0.0
        self.server.default = self._weather

    def _weather(self, request: RecordedRequest) -> Reply:
        if self.storm and self.storm[0] <= self.clock.monotonic() < self.storm[1]:
            self.storm_requests.append(request)
            return Reply.text("API requests too frequent", status=429)
        if self.hang_s:
            return Reply.json({"instances": []}, delay=self.hang_s)
        return self._dispatch(request)


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def fake(clock: ManualClock) -> Iterator[StormyVast]:
    with StormyVast(clock, KEY) as running:
        yield running


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient() as opened:
        yield opened


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    opened = await Store.open(tmp_path / "storm.db")
    yield opened
    await opened.close()


async def start_hub(provider: VastProvider, store: Store, clock: ManualClock) -> Rig:
    hub = Hub({"vast": provider}, store, clock, HubSettings(poll=PollSettings(60.0, POLL_S)))
    rig = Rig(hub, clock, asyncio.create_task(hub.run()))
    await rig.settle()
    return rig


async def stop_hub(rig: Rig) -> None:
    assert not rig.task.done(), "nothing may raise out of the poll loop"
    rig.task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await rig.task


async def test_hub_backs_off_through_a_429_storm_keeps_data_and_recovers(
    fake: StormyVast, client: httpx.AsyncClient, store: Store, clock: ManualClock
) -> None:
    rig = await start_hub(
        VastProvider(client, Secret(KEY), base_url=fake.url, clock=clock), store, clock
    )
    assert rig.state == "ok"
    before = sorted(i.key for i in rig.hub.instances())
    assert len(before) == len(vast_wire.INSTANCES)

    begins = clock.monotonic() + STEP_S
    fake.storm = (begins, begins + STORM_S)
    states_in_storm: list[str] = []

    def watch(now: float) -> None:
        if begins + 2 * POLL_S <= now < begins + STORM_S:
            states_in_storm.append(rig.state)
            assert sorted(i.key for i in rig.hub.instances()) == before, "last good data kept"

    # While it storms, a new instance appears upstream; it may only show up after recovery.
    fake.instances[9300001] = {**copy.deepcopy(vast_wire.RUNNING), "id": 9300001, "label": "late"}
    await rig.run_for(STORM_S + STEP_S, watch)

    unpaced_polls = STORM_S / POLL_S
    assert 1 <= len(fake.storm_requests) <= unpaced_polls / 2, (
        f"{len(fake.storm_requests)} requests in a {STORM_S:.0f}s storm; polling every "
        f"{POLL_S:.0f}s without backoff would send {unpaced_polls:.0f}"
    )
    assert states_in_storm and set(states_in_storm) == {"rate-limited"}, states_in_storm
    assert "rate limited" in rig.last_error and KEY not in rig.last_error

    storm_over = clock.now()
    for _ in range(round(120 / STEP_S)):  # recovery must come within the backoff cap
        if rig.state == "ok":
            break
        await rig.run_for(STEP_S)
    assert rig.state == "ok", rig.last_error
    health = rig.hub.health()[0]
    assert health.instances_at is not None and health.instances_at >= storm_over
    assert "vast:9300001" in {i.key for i in rig.hub.instances()}, "fresh data after the storm"

    polls_before = len(fake.calls("GET", "/api/v0/instances/"))
    await rig.run_for(4 * POLL_S)
    assert len(fake.calls("GET", "/api/v0/instances/")) - polls_before >= 3, "normal pace resumes"
    await stop_hub(rig)


async def test_a_hanging_server_marks_vast_down_by_host_and_the_hub_keeps_polling(
    fake: StormyVast, client: httpx.AsyncClient, store: Store, clock: ManualClock
) -> None:
    # A real (wall-clock) timeout: short, but roomy enough for a loaded test machine.
    policy = HttpPolicy(
        timeout=0.5,
        connect_timeout=0.5,
        max_attempts=1,
        endpoint_intervals=dict(VAST_ENDPOINT_INTERVALS),
    )
    provider = VastProvider(client, Secret(KEY), base_url=fake.url, clock=clock, policy=policy)
    rig = await start_hub(provider, store, clock)
    kept = sorted(i.key for i in rig.hub.instances())

    fake.hang_s = 30.0  # far beyond the timeout; the server cuts it short when it stops
    await rig.run_for(2 * POLL_S)
    assert rig.state == "down"
    assert f"{fake.server.host_port} did not answer in time" in rig.last_error
    assert sorted(i.key for i in rig.hub.instances()) == kept

    fake.hang_s = 0.0
    for _ in range(round(90 / STEP_S)):
        if rig.state == "ok":
            break
        await rig.run_for(STEP_S)
    assert rig.state == "ok", rig.last_error
    await stop_hub(rig)


async def test_a_refused_port_marks_vast_down_by_host_and_the_hub_keeps_polling(
    client: httpx.AsyncClient, store: Store, clock: ManualClock
) -> None:
    port = refused_port()
    provider = VastProvider(client, Secret(KEY), base_url=f"http://127.0.0.1:{port}", clock=clock)
    rig = await start_hub(provider, store, clock)

    states: list[str] = [rig.state]
    await rig.run_for(3 * POLL_S, lambda _: states.append(rig.state))
    verdicts = [state for state in states if state != "waiting"]  # retries of the first poll
    assert verdicts and verdicts[0] == "down", states
    assert set(verdicts) <= {"down", "circuit-open"}, states
    assert f"127.0.0.1:{port}" in rig.last_error and "refused" in rig.last_error
    assert KEY not in rig.last_error
    await stop_hub(rig)
