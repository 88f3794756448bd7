"""The engine's own thread and loop: calls cross onto it, the Hub's reads are snapshots, stop is clean."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Coroutine, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest
from waiting import until

from computehub_tui.clock import ManualClock
from computehub_tui.domain.models import Instance, InstanceStatus, Offer, OfferQuery, PricingKind
from computehub_tui.engine.crossing import EngineStopped
from computehub_tui.engine.hub import Hub, HubSettings, PollSettings
from computehub_tui.engine.runtime import EngineRuntime
from computehub_tui.providers.registry import PROVIDER_CAPABILITIES
from computehub_tui.store import Store

T = TypeVar("T")


def offer(offer_id: str, price: float) -> Offer:
    return Offer(provider="vast", offer_id=offer_id, gpu="RTX 4090", gpu_count=1, vram_gb=24, vcpus=8, ram_gb=32,
                 disk_gb=50, price_hour=price, pricing=PricingKind.ON_DEMAND, location="Norway", reliability=0.99,
                 available=True, quoted_at=1_790_000_000.0)


class ThreadNotingVast:
    """Records which thread each call ran on."""

    name = "vast"
    title = "Vast.ai"
    capabilities = PROVIDER_CAPABILITIES["vast"]
    dropped_rows = 0

    def __init__(self) -> None:
        self.threads: list[int] = []
        self.offers = [offer("1", 0.40)]

    async def list_offers(self, query: OfferQuery) -> list[Offer]:
        self.threads.append(threading.get_ident())
        return list(self.offers)

    async def list_instances(self) -> list[Instance]:
        self.threads.append(threading.get_ident())
        return [Instance(provider="vast", instance_id="7", label="a", status=InstanceStatus.RUNNING,
                         provider_status="running", gpu="RTX 4090", gpu_count=1, price_hour=0.4)]


async def on_engine(runtime: EngineRuntime, coroutine: Coroutine[Any, Any, T]) -> T:
    return await asyncio.wrap_future(runtime.submit(coroutine))


@pytest.fixture
def runtime() -> Iterator[EngineRuntime]:
    engine = EngineRuntime()
    engine.start()
    yield engine
    assert engine.stop()


async def test_calls_run_on_the_engine_thread_and_errors_come_back(runtime: EngineRuntime) -> None:
    async def where() -> int:
        return threading.get_ident()

    async def broken() -> None:
        raise LookupError("from the engine")

    assert await on_engine(runtime, where()) != threading.get_ident()
    assert runtime.submit(where()).result(5) == await on_engine(runtime, where())
    with pytest.raises(LookupError, match="from the engine"):
        await on_engine(runtime, broken())


async def test_stop_cancels_what_still_runs_and_later_calls_are_refused() -> None:
    engine = EngineRuntime()
    engine.start()
    cancelled = threading.Event()

    async def forever() -> None:
        try:
            await asyncio.Event().wait()
        finally:
            cancelled.set()

    engine.submit(forever())
    assert engine.stop(timeout_s=5)
    assert cancelled.is_set() and not engine.running
    waiting = forever()
    with pytest.raises(EngineStopped):
        await on_engine(engine, waiting)


async def test_the_hub_works_from_another_thread_on_its_own_loop(tmp_path: Path, runtime: EngineRuntime) -> None:
    """What the TUI does: the Hub, its store and its polls live on the engine thread; the UI calls it."""
    clock = ManualClock()
    provider = ThreadNotingVast()

    async def build() -> Hub:
        store = await Store.open(tmp_path / "hub.db")
        return Hub({"vast": provider}, store, clock, HubSettings(poll=PollSettings(60.0, 5.0)))

    hub = await on_engine(runtime, build())
    engine_thread = await on_engine(runtime, _thread_id())
    assert await hub.refresh_offers("vast")  # awaited here, run there
    before = hub.offers()
    assert provider.threads == [engine_thread]
    await hub.start()
    await until(lambda: hub.instances() != () and clock.sleeper_count == 3)  # both loops and maintenance wait
    provider.offers = [offer("1", 0.40), offer("2", 0.35)]
    await clock.advance(60)  # the sleepers are on the engine loop: advance runs there
    await until(lambda: len(hub.offers()) == 2)
    assert isinstance(before, tuple) and [o.offer_id for o in before] == ["1"]  # a snapshot never changes
    assert set(provider.threads) == {engine_thread}
    hub.remove_provider("vast")  # a change made from this thread is done when it returns
    assert hub.offers() == () and hub.providers == {}
    await hub.store.audit_log()  # the store answers from here too, on its own loop
    await hub.stop()
    await hub.store.close()
    assert hub.supervisor.running() == []


async def _thread_id() -> int:
    return threading.get_ident()


async def test_services_the_ui_calls_directly_cross_too(tmp_path: Path, runtime: EngineRuntime) -> None:
    class Keys:
        factory = "real"

        async def where(self) -> int:
            return threading.get_ident()

    keys = Keys()

    async def build() -> Hub:
        return Hub({}, await Store.open(tmp_path / "hub.db"), ManualClock(), keys=keys)  # type: ignore[arg-type]

    hub = await on_engine(runtime, build())
    assert hub.keys is not None
    assert await hub.keys.where() == await on_engine(runtime, _thread_id())  # type: ignore[attr-defined]
    hub.keys.factory = "test"  # type: ignore[attr-defined]
    assert keys.factory == "test"  # attributes are the service's own
    await hub.store.close()
