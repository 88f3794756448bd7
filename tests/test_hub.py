"""The Hub against the demo market on a manual clock: polling, last-good data, costs, actions."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
from waiting import polling, until

from computehub_tui.clock import ManualClock
from computehub_tui.config import Config
from computehub_tui.domain.models import InstanceStatus, LaunchSpec, Offer, OfferQuery
from computehub_tui.engine.events import (
    ActionFinished,
    InstancesUpdated,
    MetricsSampled,
    OffersUpdated,
    ProviderHealthChanged,
)
from computehub_tui.engine.hub import Hub, HubSettings, PollSettings, split_key
from computehub_tui.providers.base import AuthError, Provider, RateLimitedError, UnavailableError
from computehub_tui.providers.demo.adapters import demo_providers
from computehub_tui.providers.demo.market import DemoMarket
from computehub_tui.store import Store
from computehub_tui.wiring import Session, open_session


class FlakyProvider:
    """Wraps a real provider; ``failure`` (when set) is raised instead of calling it."""

    def __init__(self, inner: Provider) -> None:
        self.inner = inner
        self.name = inner.name
        self.title = inner.title
        self.capabilities = inner.capabilities
        self.failure: Exception | None = None
        self.calls = 0

    async def list_offers(self, query: OfferQuery) -> list[Offer]:
        self.calls += 1
        if self.failure:
            raise self.failure
        return await self.inner.list_offers(query)

    async def list_instances(self):  # type: ignore[no-untyped-def]
        self.calls += 1
        if self.failure:
            raise self.failure
        return await self.inner.list_instances()

    def __getattr__(self, name: str):  # type: ignore[no-untyped-def]
        return getattr(self.inner, name)


@asynccontextmanager
async def demo_hub(tmp_path: Path, *, flaky: str | None = None, only_flaky: bool = False,
                   poll: PollSettings | None = None,
                   max_bytes: int | None = None) -> AsyncIterator[tuple[Hub, ManualClock, FlakyProvider]]:
    """A Hub on the demo market; ``flaky`` wraps one provider so a test can make it fail."""
    clock = ManualClock()
    providers, clients = demo_providers(DemoMarket(clock), clock)
    wrapped = FlakyProvider(providers[flaky or "vast"])
    if flaky:
        providers = {flaky: wrapped} if only_flaky else {**providers, flaky: wrapped}  # type: ignore[dict-item]
    store = await Store.open(tmp_path / "hub.db", max_bytes=max_bytes)
    hub = Hub(providers, store, clock, HubSettings(poll=poll or PollSettings(60.0, 5.0), demo=True))
    try:
        yield hub, clock, wrapped
    finally:
        for client in clients:
            await client.aclose()
        await store.close()


@pytest.fixture
async def demo(tmp_path: Path) -> AsyncIterator[tuple[Hub, ManualClock, DemoMarket]]:
    clock = ManualClock()
    market = DemoMarket(clock)
    providers, clients = demo_providers(market, clock)
    store = await Store.open(tmp_path / "hub.db")
    hub = Hub(providers, store, clock, HubSettings(poll=PollSettings(60.0, 5.0), demo=True))
    yield hub, clock, market
    for client in clients:
        await client.aclose()
    await store.close()


async def test_refresh_fills_offers_and_instances_from_every_provider(demo) -> None:  # type: ignore[no-untyped-def]
    hub, _, _ = demo
    events: list[object] = []
    hub.bus.subscribe(events.append)
    await hub.refresh_all()
    providers_with_offers = {offer.provider for offer in hub.offers()}
    assert providers_with_offers == {"vast", "runpod", "lambda", "tensordock"}
    assert sum(1 for o in hub.offers() if o.provider == "vast") >= 3000
    assert {i.provider for i in hub.instances()} == {"vast", "runpod", "lambda", "tensordock"}
    assert any(isinstance(e, OffersUpdated) for e in events)
    assert any(isinstance(e, InstancesUpdated) for e in events)
    assert any(isinstance(e, MetricsSampled) for e in events)
    assert all(h.state == "ok" for h in hub.health())


async def test_implausible_prices_are_dropped_and_counted(demo) -> None:  # type: ignore[no-untyped-def]
    hub, _, _ = demo
    await hub.refresh_offers("vast")
    assert hub.implausible_counts["vast"] >= 1
    assert all(0.005 <= o.price_per_gpu_hour <= 40 for o in hub.offers())


async def test_poll_loop_follows_the_clock(demo) -> None:  # type: ignore[no-untyped-def]
    hub, clock, _ = demo
    updates: list[InstancesUpdated] = []
    hub.bus.subscribe(lambda e: updates.append(e) if isinstance(e, InstancesUpdated) else None)
    async with polling(hub):
        await until(lambda: len(updates) >= 4 and clock.sleeper_count == 9)
        assert len(updates) == 4  # one instances poll per provider, then every loop (and maintenance) sleeps
        await clock.advance(5)
        await until(lambda: len(updates) >= 8 and clock.sleeper_count == 9)
        assert len(updates) == 8
        await clock.advance(4.9)
        assert clock.sleeper_count == 9 and len(updates) == 8  # nobody is due yet
        await clock.advance(0.2)
        await until(lambda: len(updates) >= 12 and clock.sleeper_count == 9)
        assert len(updates) == 12


async def test_failing_provider_keeps_last_good_data_marked_stale(tmp_path: Path) -> None:
    async with demo_hub(tmp_path, flaky="runpod") as (hub, clock, flaky):
        health_events: list[ProviderHealthChanged] = []
        hub.bus.subscribe(lambda e: health_events.append(e) if isinstance(e, ProviderHealthChanged) else None)
        await hub.refresh_all()
        good_offers = [o for o in hub.offers() if o.provider == "runpod"]
        good_instances = [i for i in hub.instances() if i.provider == "runpod"]
        assert good_offers and good_instances
        flaky.failure = UnavailableError("runpod", "connection to api.runpod.io refused")
        await clock.advance(30)
        assert not await hub.refresh_instances("runpod")
        assert not await hub.refresh_offers("runpod")
        assert [o for o in hub.offers() if o.provider == "runpod"] == good_offers
        assert [i.key for i in hub.instances() if i.provider == "runpod"] == [i.key for i in good_instances]
        runpod_health = next(h for h in hub.health() if h.provider == "runpod")
        assert runpod_health.state == "down"
        assert "refused" in runpod_health.last_error
        assert hub.is_stale("runpod")
        assert any(e.health.provider == "runpod" and e.health.state == "down" for e in health_events)
        # the other providers are untouched
        assert {o.provider for o in hub.offers()} == {"vast", "runpod", "lambda", "tensordock"}
        flaky.failure = None
        assert await hub.refresh_instances("runpod")
        # offers are still failing until they are fetched again: health stays honest
        assert next(h for h in hub.health() if h.provider == "runpod").state == "down"
        assert await hub.refresh_offers("runpod")
        assert next(h for h in hub.health() if h.provider == "runpod").state == "ok"
        assert not hub.is_stale("runpod")


async def test_rate_limit_and_auth_errors_show_in_health(tmp_path: Path) -> None:
    async with demo_hub(tmp_path, flaky="vast", only_flaky=True) as (hub, _, flaky):
        flaky.failure = RateLimitedError("vast", "rate limited; retry in 30s", 30.0)
        await hub.refresh_instances("vast")
        assert hub.health()[0].state == "rate-limited"
        flaky.failure = AuthError("vast", "API key rejected (HTTP 401: Invalid user key)")
        await hub.refresh_instances("vast")
        assert hub.health()[0].state == "auth-error"
        assert "Invalid user key" in hub.health()[0].last_error


async def test_rate_limited_loop_waits_for_retry_after(tmp_path: Path) -> None:
    async with demo_hub(tmp_path, flaky="vast", only_flaky=True) as (hub, clock, flaky):
        flaky.failure = RateLimitedError("vast", "rate limited", 30.0)
        async with polling(hub):
            await until(lambda: clock.sleeper_count == 3)  # two poll loops and the maintenance task
            first = flaky.calls
            assert first == 2  # instances + offers
            await clock.advance(10)
            assert clock.sleeper_count == 3 and flaky.calls == first  # not every 5 s while rate limited
            await clock.advance(21)
            await until(lambda: flaky.calls == first + 1 and clock.sleeper_count == 3)
            assert flaky.calls == first + 1  # the instances loop retried after 30 s


async def test_cost_accrues_with_time_and_feeds_spend_today(demo) -> None:  # type: ignore[no-untyped-def]
    hub, clock, _ = demo
    await hub.refresh_instances("vast")
    running = [i for i in hub.instances() if i.provider == "vast" and i.status is InstanceStatus.RUNNING]
    assert running
    before = {i.key: hub.cost_so_far(i.key) for i in running}
    spend_before = hub.spend_today()
    await clock.advance(3600)
    await hub.refresh_instances("vast")
    for instance in running:
        gained = hub.cost_so_far(instance.key) - before[instance.key]
        assert gained == pytest.approx(instance.price_hour, rel=1e-6)
    all_vast = [i for i in hub.instances() if i.provider == "vast"]
    expected = spend_before + sum(i.current_price_hour for i in all_vast)  # stopped ones bill storage
    assert hub.spend_today() == pytest.approx(expected, rel=1e-6)
    assert hub.burn_rate() >= sum(i.price_hour for i in running)


async def test_launch_boot_stop_start_destroy_through_the_hub(demo) -> None:  # type: ignore[no-untyped-def]
    hub, clock, _ = demo
    await hub.refresh_offers("vast")
    offer = next(o for o in hub.offers() if o.provider == "vast" and o.gpu == "RTX 4090" and o.available
                 and o.pricing.value == "on-demand")
    finished: list[ActionFinished] = []
    hub.bus.subscribe(lambda e: finished.append(e) if isinstance(e, ActionFinished) else None)
    key = await hub.launch(offer, LaunchSpec(image="pytorch/pytorch:latest", disk_gb=20, label="t1"))
    assert split_key(key)[0] == "vast"
    assert hub.instance(key) is not None
    assert hub.instance(key).status in (InstanceStatus.PROVISIONING, InstanceStatus.STARTING)
    await clock.advance(40)
    await hub.refresh_instances("vast")
    instance = hub.instance(key)
    assert instance is not None and instance.status is InstanceStatus.RUNNING
    assert instance.ssh is not None and instance.metrics is not None
    assert (await hub.act("stop", key)).ok
    assert hub.instance(key).status is InstanceStatus.STOPPED
    assert (await hub.act("start", key)).ok
    await clock.advance(30)
    await hub.refresh_instances("vast")
    assert hub.instance(key).status is InstanceStatus.RUNNING
    assert (await hub.act("destroy", key)).ok
    assert hub.instance(key) is None
    audit = await hub.store.audit_log()
    assert [entry.action for entry in audit[:4]] == ["destroy", "start", "stop", "launch"]
    assert all(entry.outcome == "ok" for entry in audit[:4])
    assert all(e.ok for e in finished)


async def test_action_on_unknown_or_gone_instance_is_a_clean_failure(demo) -> None:  # type: ignore[no-untyped-def]
    hub, _, _ = demo
    result = await hub.act("stop", "vast:999")
    assert not result.ok and "vast" in result.message
    result = await hub.act("stop", "nonsense")
    assert not result.ok and "provider:id" in result.message


async def test_bulk_actions_report_each_target(demo) -> None:  # type: ignore[no-untyped-def]
    hub, _, _ = demo
    await hub.refresh_all()
    running = [i.key for i in hub.instances() if i.status is InstanceStatus.RUNNING and i.provider != "lambda"]
    results = await hub.act_many("stop", running + ["vast:1"])
    assert [r.key for r in results] == running + ["vast:1"]
    assert all(r.ok for r in results[:-1]) and not results[-1].ok
    stopped = {i.key for i in hub.instances() if i.status is InstanceStatus.STOPPED}
    assert set(running) <= stopped


async def test_snapshot_is_shown_before_the_first_poll(tmp_path: Path) -> None:
    session: Session = await open_session(Config(), tmp_path, demo=True)
    try:
        await session.hub.refresh_all()
        keys = {i.key for i in session.hub.instances()}
    finally:
        await session.aclose()
    clock = ManualClock()
    store = await Store.open(tmp_path / "demo.db")
    try:
        silent = {name: object() for name in ("vast", "runpod", "lambda", "tensordock")}  # never asked
        hub = Hub(silent, store, clock)  # type: ignore[arg-type]
        await hub.load_snapshot()
        assert keys and {i.key for i in hub.instances()} == keys
        assert all(h.state == "waiting" for h in hub.health())  # remembered is not the same as answered
        unbound = Hub({}, store, clock)
        await unbound.load_snapshot()
        assert unbound.instances() == ()  # no providers configured: nothing to attach them to
    finally:
        await store.close()


class RemembersOffers(Store):
    """A store keeping each provider's last good offers (as the store's offers snapshot does)."""

    saved: dict[str, tuple[float, list[Offer]]]

    async def save_offers(self, provider: str, offers: Sequence[Offer], at: float) -> None:
        self.saved = {**getattr(self, "saved", {}), provider: (at, list(offers))}

    async def load_offers(self) -> dict[str, tuple[float, list[Offer]]]:
        return dict(getattr(self, "saved", {}))


async def test_the_last_good_offers_are_saved_and_shown_with_their_age_at_the_next_start(tmp_path: Path) -> None:
    clock = ManualClock()
    providers, clients = demo_providers(DemoMarket(clock, vast_offer_count=200), clock)
    store = await RemembersOffers.open(tmp_path / "offers.db")
    try:
        polled = Hub({"vast": providers["vast"]}, store, clock)
        assert await polled.refresh_offers("vast")
        fetched_at, saved = store.saved["vast"]
        assert fetched_at == clock.now() and tuple(saved) == polled.offers() and saved
        await clock.advance(3600)
        restarted = Hub({"vast": providers["vast"]}, store, clock)  # the next run, before any poll
        await restarted.load_snapshot()
        assert restarted.offers() == polled.offers()
        assert {o.quoted_at for o in restarted.offers()} == {fetched_at}  # their age shows: an hour
        assert restarted.is_stale("vast", "offers") and restarted.health_of("vast").state == "waiting"
    finally:
        await store.close()
        for client in clients:
            await client.aclose()


async def test_rate_limits_without_retry_after_back_off_exponentially(tmp_path: Path) -> None:
    async with demo_hub(tmp_path, flaky="runpod", only_flaky=True, poll=PollSettings(600.0, 5.0)) as (
        hub, clock, flaky,
    ):
        flaky.failure = RateLimitedError("runpod", "rate limit exceeded", None)
        async with polling(hub):
            await until(lambda: clock.sleeper_count == 3)  # two poll loops and the maintenance task
            start_calls = flaky.calls  # one instances and one offers poll
            for _ in range(70):
                await clock.advance(1)
                await until(lambda: clock.sleeper_count == 3)
            # instances polls at 0, 10, 30 and 70 s instead of every 5 s
            assert flaky.calls - start_calls == 3
            assert hub.health()[0].state == "rate-limited"
            flaky.failure = None
            await clock.advance(80)  # the next instances poll is due at 150 s
            await until(lambda: hub.health()[0].instances_at is not None and clock.sleeper_count == 3)
            assert flaky.calls - start_calls == 4


async def test_a_full_disk_is_reported_once_and_polling_goes_on(tmp_path: Path) -> None:
    from computehub_tui.engine.events import StoreFailed

    # The cap leaves room for the empty schema (every table and index is a page) and little more.
    async with demo_hub(tmp_path, max_bytes=160 * 1024) as (hub, clock, _):
        failures: list[StoreFailed] = []
        hub.bus.subscribe(lambda e: failures.append(e) if isinstance(e, StoreFailed) else None)
        assert await hub.refresh_offers("vast")  # thousands of price stats do not fit
        assert await hub.refresh_instances("vast")
        assert len(failures) == 1 and "disk full" in failures[0].message
        assert len(hub.offers()) > 3000 and hub.instances()  # nothing lost on screen
        await clock.advance(61)
        assert await hub.refresh_offers("vast")
        assert len(failures) == 2  # reported again after a minute, not on every poll