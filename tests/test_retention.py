"""[retention] applied: the engine's maintenance task prunes old metric samples, price statistics and
audit entries at start and then hourly, under the supervisor and through the safe store."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from waiting import until

from computehub_tui.clock import ManualClock
from computehub_tui.config import Config
from computehub_tui.domain.history import PriceStat
from computehub_tui.domain.models import MetricSample
from computehub_tui.engine.events import StoreFailed
from computehub_tui.engine.hub import Hub, HubSettings, RetentionSettings
from computehub_tui.engine.maintenance import PRUNE_INTERVAL_S
from computehub_tui.engine.metrics import RAW_CHART_MAX_S
from computehub_tui.store import Store, StoreError
from computehub_tui.wiring import open_session

RETENTION = RetentionSettings(metrics_raw_s=600.0, price_history_s=1200.0, audit_s=1800.0)


def sample(at: float) -> MetricSample:
    return MetricSample(time=at, gpu_util=(50.0,), vram_used_gb=(1.0,), vram_total_gb=(24.0,), gpu_temp_c=(60.0,))


def stat(at: float) -> PriceStat:
    return PriceStat(at, "vast", "RTX 4090", 1, "on-demand", 0.3, 0.4, 0.5, 3)


async def fill(store: Store, now: float) -> None:
    """For each kind of history, one row 100 s past its retention and one 100 s inside it."""
    await store.add_metric_samples([("vast:1", sample(now - 700)), ("vast:1", sample(now - 500))])
    await store.record_price_stats([stat(now - 1300), stat(now - 1100)])
    await store.audit(now - 1900, "user", "stop", "vast:1")
    await store.audit(now - 1700, "user", "start", "vast:1")


async def kept(store: Store) -> tuple[list[float], list[float], list[float]]:
    return ([s.time for s in await store.metric_history("vast:1", 0)],
            [s.at for s in await store.price_history("RTX 4090", 0)],
            sorted(e.at for e in await store.audit_log()))


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    opened = await Store.open(tmp_path / "hub.db")
    yield opened
    await opened.close()


@pytest.fixture
async def hub(store: Store) -> AsyncIterator[Hub]:
    hub = Hub({}, store, ManualClock(), HubSettings(retention=RETENTION))
    yield hub
    await hub.stop()


def clock_of(hub: Hub) -> ManualClock:
    assert isinstance(hub.clock, ManualClock)
    return hub.clock


async def test_the_maintenance_task_prunes_each_history_to_its_retention_at_start_and_hourly(
        hub: Hub, store: Store) -> None:
    clock = clock_of(hub)
    start = clock.now()
    await fill(store, start)
    await hub.start()
    await until(lambda: clock.sleeper_count == 1)  # pruned, now waiting for the next hour
    assert await kept(store) == ([start - 500], [start - 1100], [start - 1700])

    later = start + PRUNE_INTERVAL_S
    await fill(store, later)
    await clock.advance(PRUNE_INTERVAL_S - 1)
    assert len((await kept(store))[0]) == 3  # not yet an hour: nothing pruned
    await clock.advance(1)
    await until(lambda: clock.sleeper_count == 1)
    assert await kept(store) == ([later - 500], [later - 1100], [later - 1700])
    assert hub.store_failures == 0


async def test_a_failing_prune_is_a_store_failure_and_the_task_carries_on(hub: Hub, store: Store,
                                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    clock = clock_of(hub)
    attempts: list[float] = []

    async def full_disk(now: float, **retention: float) -> None:
        attempts.append(now)
        raise StoreError("disk full: cannot prune old history", "disk-full")

    monkeypatch.setattr(store, "prune", full_disk)
    events: list[object] = []
    hub.bus.subscribe(events.append)
    await hub.start()
    await until(lambda: clock.sleeper_count == 1)
    await clock.advance(PRUNE_INTERVAL_S)
    await until(lambda: len(attempts) == 2 and clock.sleeper_count == 1)
    assert hub.store_failures == 2 and hub.last_store_error.startswith("disk full")
    assert [e for e in events if isinstance(e, StoreFailed)] == [StoreFailed("disk full: cannot prune old history")] * 2
    assert hub.supervisor.crashes["maintenance"] == 0 and hub.supervisor.running() == ["maintenance"]


async def test_the_supervisor_restarts_the_maintenance_task_after_an_unexpected_error(
        hub: Hub, store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    clock = clock_of(hub)
    start = clock.now()
    await fill(store, start)
    real_prune = hub.maintenance.prune_once
    runs: list[int] = []

    async def buggy_once() -> None:
        runs.append(1)
        if len(runs) == 1:
            raise RuntimeError("a bug in maintenance")
        await real_prune()

    monkeypatch.setattr(hub.maintenance, "prune_once", buggy_once)
    await hub.start()
    await until(lambda: hub.supervisor.crashes.get("maintenance") == 1 and clock.sleeper_count == 1)
    assert len((await kept(store))[0]) == 2  # the crashed run pruned nothing
    await clock.advance(hub.supervisor.policy.delay(1))
    await until(lambda: len(runs) == 2 and clock.sleeper_count == 1)
    assert await kept(store) == ([start - 500], [start - 1100], [start - 1700])
    assert hub.supervisor.running() == ["maintenance"]


async def test_a_session_takes_its_retention_from_the_config(tmp_path: Path) -> None:
    config = Config.model_validate({"retention": {"metrics_raw": "3h", "price_history": "7d", "audit": "30d",
                                                  "metrics_1m": "1d"},
                                    "demo": {"vast_offers": 100}})
    session = await open_session(config, tmp_path, demo=True, clock=ManualClock(), environ={})
    try:
        assert session.hub.maintenance.retention == RetentionSettings(
            metrics_raw_s=3 * 3600.0, metrics_1m_s=86400.0, metrics_1h_s=90 * 86400.0, price_history_s=7 * 86400.0,
            audit_s=30 * 86400.0)
    finally:
        await session.aclose()


def test_the_default_raw_retention_outlasts_the_raw_charts_and_rule_windows_in_config_and_engine_alike() -> None:
    # Rules' FOR windows (typically <= 2 h) and charts up to 2 h read raw samples; the hourly job needs an hour more.
    assert Config().retention.metrics_raw == RetentionSettings().metrics_raw_s >= RAW_CHART_MAX_S + PRUNE_INTERVAL_S
    assert [getattr(Config().retention, name) for name in ("metrics_1m", "metrics_1h", "price_history", "audit")] == [
        RetentionSettings().metrics_1m_s, RetentionSettings().metrics_1h_s, RetentionSettings().price_history_s,
        RetentionSettings().audit_s]
