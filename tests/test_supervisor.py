"""The supervisor restarts a task that raises, with backoff, and a poll loop that hits a bug keeps polling."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import pytest
from waiting import until

from computehub_tui.clock import ManualClock
from computehub_tui.domain.models import Instance, InstanceStatus, Offer, OfferQuery
from computehub_tui.engine.events import HealthState, InstancesUpdated, ProviderHealthChanged
from computehub_tui.engine.hub import Hub, HubSettings, PollSettings
from computehub_tui.engine.supervisor import RestartPolicy, Supervisor
from computehub_tui.providers.registry import PROVIDER_CAPABILITIES
from computehub_tui.store import Store


def machine(instance_id: str) -> Instance:
    return Instance(provider="vast", instance_id=instance_id, label=instance_id, status=InstanceStatus.RUNNING,
                    provider_status="running", gpu="RTX 4090", gpu_count=1, price_hour=0.5)


class BuggyVast:
    """A provider whose answer, on chosen polls, trips a bug in our code after the fetch returned."""

    name = "vast"
    title = "Vast.ai"
    capabilities = PROVIDER_CAPABILITIES["vast"]
    dropped_rows = 0

    def __init__(self, broken_polls: set[int]) -> None:
        self.broken_polls = broken_polls
        self.polls = 0

    async def list_instances(self) -> list[Instance]:
        self.polls += 1
        if self.polls in self.broken_polls:
            return [None]  # type: ignore[list-item]  # not an Instance: the engine raises AttributeError on it
        return [machine("1")]

    async def list_offers(self, query: OfferQuery) -> list[Offer]:
        return []


async def test_a_task_that_raises_is_restarted_with_growing_capped_delays(caplog: pytest.LogCaptureFixture) -> None:
    clock = ManualClock()
    supervisor = Supervisor(clock, RestartPolicy(first_delay_s=1.0, max_delay_s=4.0))
    runs: list[float] = []
    reported: list[str] = []

    async def flaky() -> None:
        runs.append(clock.monotonic())
        if len(runs) <= 4:
            raise ValueError(f"bug number {len(runs)}")
        await asyncio.Event().wait()  # the fifth run stays up

    with caplog.at_level(logging.ERROR, logger="computehub_tui.engine.supervisor"):
        supervisor.start("job", flaky, on_crash=lambda error: reported.append(str(error)))
        await until(lambda: clock.sleeper_count == 1)
        for _ in range(12):
            await clock.advance(1)
            await until(lambda: clock.sleeper_count == 1 or len(runs) == 5)
    started = [at - runs[0] for at in runs]
    assert started == [0, 1, 3, 7, 11]  # waits of 1, 2, 4 and then 4 (the cap) seconds
    assert reported == [f"bug number {n}" for n in range(1, 5)]
    assert supervisor.running() == ["job"] and supervisor.crashes["job"] == 4
    assert len([r for r in caplog.records if "engine task job" in r.getMessage()]) == 1  # once per kind
    await supervisor.aclose()
    assert supervisor.running() == []


async def test_a_task_that_keeps_failing_is_given_up_after_its_restarts() -> None:
    clock = ManualClock()
    supervisor = Supervisor(clock, RestartPolicy(first_delay_s=1.0, max_delay_s=1.0))
    runs: list[int] = []

    async def broken() -> None:
        runs.append(1)
        raise RuntimeError("always")

    supervisor.start("replay", broken, max_restarts=2)
    for _ in range(10):
        await clock.advance(1)
    assert len(runs) == 3 and supervisor.running() == []


async def test_cancelling_a_supervised_task_is_not_a_crash() -> None:
    clock = ManualClock()
    supervisor = Supervisor(clock)
    crashed: list[Exception] = []

    async def forever() -> None:
        await asyncio.Event().wait()

    supervisor.start("poll", forever, on_crash=crashed.append)
    await asyncio.sleep(0)
    supervisor.stop("poll")
    await asyncio.sleep(0)
    assert supervisor.running() == [] and crashed == [] and clock.sleeper_count == 0


async def test_a_bug_after_a_fetch_shows_as_internal_error_and_polling_goes_on(tmp_path: Path) -> None:
    clock = ManualClock()
    provider = BuggyVast(broken_polls={2})
    store = await Store.open(tmp_path / "hub.db")
    hub = Hub({"vast": provider}, store, clock, HubSettings(poll=PollSettings(600.0, 5.0)))
    health: list[ProviderHealthChanged] = []
    updates: list[InstancesUpdated] = []
    hub.bus.subscribe(lambda e: health.append(e) if isinstance(e, ProviderHealthChanged) else None)
    hub.bus.subscribe(lambda e: updates.append(e) if isinstance(e, InstancesUpdated) else None)
    runner = asyncio.create_task(hub.run())
    try:
        await until(lambda: len(updates) == 1 and clock.sleeper_count == 3)  # both poll loops and maintenance
        await clock.advance(5)  # the second poll returns something our code chokes on
        await until(lambda: hub.health_of("vast").state is HealthState.INTERNAL_ERROR)
        message = hub.health_of("vast").last_error
        assert message.startswith("vast: internal error while reading instances (AttributeError")
        assert [i.key for i in hub.instances()] == ["vast:1"]  # the last good data stays
        for _ in range(10):  # the loop restarts after its backoff and polls on its schedule again
            await clock.advance(1)
            await until(lambda: clock.sleeper_count == 3)
        await until(lambda: len(updates) >= 2)
        assert provider.polls >= 3 and hub.health_of("vast").state is HealthState.OK
        assert [h.health.state for h in health] == [HealthState.OK, HealthState.INTERNAL_ERROR, HealthState.OK]
        assert not runner.done()
    finally:
        runner.cancel()
        with pytest.raises(asyncio.CancelledError):
            await runner
        await store.close()
    assert hub.supervisor.running() == []  # run() stopped every loop before it returned
