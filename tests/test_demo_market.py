"""The simulated market itself: determinism, lifecycles, traces and price drift."""

from __future__ import annotations

import pytest

from computehub_tui.clock import ManualClock
from computehub_tui.providers.demo.market import DemoMarket, SimError
from computehub_tui.providers.demo.traces import TraceKind, gpu_reading


def test_same_seed_same_market_different_seed_different_market() -> None:
    a, b, c = DemoMarket(ManualClock(), seed=7), DemoMarket(ManualClock(), seed=7), DemoMarket(ManualClock(), seed=8)
    assert a.vast_asks == b.vast_asks
    assert a.vast_asks != c.vast_asks
    assert [a.vast_ask_price(x) for x in a.vast_asks[:50]] == [b.vast_ask_price(x) for x in b.vast_asks[:50]]
    assert len(a.vast_asks) == 3200


def test_prices_drift_but_stay_near_their_base() -> None:
    clock = ManualClock()
    market = DemoMarket(clock)
    asks = [ask for ask in market.vast_asks[:200] if ask.base_dph > 0]
    before = [market.vast_ask_price(ask) for ask in asks]
    after = [market.vast_ask_price(ask, clock.now() + 3 * 3600) for ask in asks]
    assert before != after
    assert all(0.85 <= price / ask.base_dph <= 1.15 for price, ask in zip(after, asks, strict=True))


def test_first_launch_boots_through_the_lifecycle() -> None:
    clock = ManualClock()
    market = DemoMarket(clock, seed_instances=False)
    instance = market.launch("vast", gpu_name="RTX 4090", gpu_count=2, vram_gb=24, price_hour=0.7, image="img")
    assert market.view(instance).status == "provisioning"
    clock.set_time(clock.now() + instance.provisioning_s + 0.1)
    assert market.view(instance).status == "loading"
    clock.set_time(clock.now() + instance.loading_s)
    view = market.view(instance)
    assert view.status == "running" and len(view.gpus) == 2
    clock.set_time(clock.now() + 3600)
    assert market.view(instance).status == "running"  # the first launch never crashes
    market.stop("vast", instance.instance_id)
    assert market.view(instance).status == "stopped"
    with pytest.raises(SimError):
        market.stop("vast", instance.instance_id)
    market.start("vast", instance.instance_id)
    assert market.view(instance).status == "provisioning"
    market.destroy("vast", instance.instance_id)
    assert market.instances_of("vast") == []
    with pytest.raises(SimError):
        market.get("vast", instance.instance_id)


def test_later_launches_sometimes_crash_or_stick() -> None:
    clock = ManualClock()
    market = DemoMarket(clock, seed_instances=False)
    launched = [market.launch("runpod", gpu_name="NVIDIA L40S", gpu_count=1, vram_gb=48, price_hour=0.9)
                for _ in range(60)]
    clock.set_time(clock.now() + 3600)
    statuses = [market.view(instance).status for instance in launched]
    assert statuses.count("exited") >= 1 and statuses.count("provisioning") >= 1
    assert statuses.count("running") > len(launched) // 2
    assert {instance.trace for instance in launched[1:]} == set(TraceKind)


def test_traces_behave_like_their_names() -> None:
    training = [gpu_reading(TraceKind.TRAINING, "s", 0, t, 24).util for t in range(60, 3600, 30)]
    assert min(training) >= 90
    idle = gpu_reading(TraceKind.IDLE_AFTER, "s", 0, 900, 24, idle_after_s=300)
    busy = gpu_reading(TraceKind.IDLE_AFTER, "s", 0, 200, 24, idle_after_s=300)
    assert idle.util < 2 and busy.util > 80 and idle.vram_used_gb < busy.vram_used_gb
    held = gpu_reading(TraceKind.VRAM_HELD, "s", 0, 900, 80)
    assert held.util == 0 and held.vram_used_gb > 50
    bursty = {gpu_reading(TraceKind.BURSTY, "s", 0, t, 24).util > 50 for t in range(0, 1200, 5)}
    assert bursty == {True, False}


def test_seeded_instances_cover_every_provider_and_state() -> None:
    market = DemoMarket(ManualClock())
    states = {(i.provider, market.view(i).status) for i in market.instances.values()}
    assert {provider for provider, _ in states} == {"vast", "runpod", "lambda", "tensordock"}
    assert {status for _, status in states} >= {"running", "stopped", "exited"}
