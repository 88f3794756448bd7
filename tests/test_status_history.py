"""Status history: changes recorded as polls are saved (once, whoever polls), pruned with the audit log,
read back for a timeline, and "since when" kept in memory and rebuilt from the store at start."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from computehub_tui.clock import ManualClock
from computehub_tui.domain.models import Instance, InstanceStatus, Offer, OfferQuery
from computehub_tui.domain.status_timeline import StatusChange, StatusSegment, status_segments
from computehub_tui.engine.hub import Hub
from computehub_tui.providers.registry import PROVIDER_CAPABILITIES
from computehub_tui.store import Store

T0 = 1_790_000_000.0
P, S, R, X = InstanceStatus.PROVISIONING, InstanceStatus.STARTING, InstanceStatus.RUNNING, InstanceStatus.EXITED
GONE = InstanceStatus.TERMINATED


def pod(instance_id: str, status: InstanceStatus, provider: str = "runpod", running_since: float | None = None
        ) -> Instance:
    return Instance(provider=provider, instance_id=instance_id, label="job", status=status,
                    provider_status=status.value, gpu="RTX 4090", gpu_count=1, price_hour=0.69,
                    running_since=running_since)


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    opened = await Store.open(tmp_path / "hub.db")
    yield opened
    await opened.close()


async def test_each_change_is_recorded_once_with_what_it_changed_from(store: Store) -> None:
    await store.save_instances("runpod", [pod("a", P), pod("b", R)], T0)
    await store.save_instances("runpod", [pod("a", P), pod("b", R)], T0 + 30)  # nothing changed
    await store.save_instances("runpod", [pod("a", R), pod("b", R)], T0 + 60)
    current = await store.save_instances("runpod", [pod("a", X)], T0 + 90)  # b has gone
    await store.save_instances("vast", [pod("a", R, provider="vast")], T0 + 90)  # another provider's "a"
    assert await store.status_changes("runpod:a", 0) == [
        StatusChange("runpod:a", T0, P, None), StatusChange("runpod:a", T0 + 60, R, P),
        StatusChange("runpod:a", T0 + 90, X, R)]
    assert await store.status_changes("runpod:b", 0) == [
        StatusChange("runpod:b", T0, R, None), StatusChange("runpod:b", T0 + 90, GONE, R)]
    assert current == {"runpod:a": StatusChange("runpod:a", T0 + 90, X, R)}


async def test_an_instance_first_seen_running_has_run_since_its_provider_says(store: Store) -> None:
    await store.save_instances("runpod", [pod("a", R, running_since=T0 - 3600), pod("b", P, running_since=T0 - 60),
                                          pod("c", R, running_since=T0 + 60)], T0)
    assert [(c.instance_key, c.at) for key in ("runpod:a", "runpod:b", "runpod:c")
            for c in await store.status_changes(key, 0)] == [("runpod:a", T0 - 3600), ("runpod:b", T0), ("runpod:c", T0)]


async def test_an_older_look_than_the_latest_records_nothing(store: Store) -> None:
    """A CLI command and the TUI poll the same account: a slower answer saved later cannot rewrite history."""
    await store.save_instances("runpod", [pod("a", R)], T0 + 60)
    current = await store.save_instances("runpod", [pod("a", P)], T0 + 30)
    assert await store.status_changes("runpod:a", 0) == [StatusChange("runpod:a", T0 + 60, R, None)]
    assert current["runpod:a"].status is R


async def test_a_window_opens_with_the_status_held_at_its_start(store: Store) -> None:
    for at, status in ((T0, P), (T0 + 100, R), (T0 + 200, X), (T0 + 300, S)):
        await store.save_instances("runpod", [pod("a", status)], at)
    assert [(c.at, c.status) for c in await store.status_changes("runpod:a", T0 + 150)] == [
        (T0 + 100, R), (T0 + 200, X), (T0 + 300, S)]
    assert [(c.at, c.status) for c in await store.status_changes("runpod:a", T0 + 200)] == [
        (T0 + 200, X), (T0 + 300, S)]
    assert await store.status_changes("runpod:nobody", T0) == []


async def test_pruning_keeps_each_live_instances_latest_change(store: Store) -> None:
    await store.save_instances("runpod", [pod("a", P), pod("b", R)], T0)
    await store.save_instances("runpod", [pod("a", R)], T0 + 100)  # b terminated at T0 + 100
    await store.save_instances("runpod", [pod("a", X)], T0 + 5000)
    await store.prune(T0 + 1000, metrics_keep_s=1e9, metrics_1m_keep_s=1e9, metrics_1h_keep_s=1e9,
                      prices_keep_s=1e9, audit_keep_s=500)  # everything before T0 + 500 is past retention
    assert [(c.at, c.status) for c in await store.status_changes("runpod:a", 0)] == [(T0 + 5000, X)]
    assert await store.status_changes("runpod:b", 0) == []
    await store.save_instances("runpod", [pod("a", X)], T0 + 6000)
    await store.prune(T0 + 1e6, metrics_keep_s=1e9, metrics_1m_keep_s=1e9, metrics_1h_keep_s=1e9,
                      prices_keep_s=1e9, audit_keep_s=500)
    assert [(c.at, c.status) for c in await store.status_changes("runpod:a", 0)] == [(T0 + 5000, X)]  # still since


def test_segments_cover_the_window_from_the_status_held_at_its_start() -> None:
    changes = [StatusChange("k", 50, P), StatusChange("k", 150, R, P), StatusChange("k", 300, X, R)]
    assert status_segments(changes, 100, 400) == [
        StatusSegment(100, 150, P), StatusSegment(150, 300, R), StatusSegment(300, 400, X)]
    assert status_segments(changes[1:], 100, 200) == [StatusSegment(100, 150, None), StatusSegment(150, 200, R)]
    assert status_segments([], 0, 10) == [StatusSegment(0, 10, None)]
    assert status_segments(changes, 10, 10) == []


class Pods:
    """A provider whose pods' statuses the test sets between polls."""

    name = "runpod"
    title = "RunPod"
    capabilities = PROVIDER_CAPABILITIES["runpod"]
    dropped_rows = 0

    def __init__(self) -> None:
        self.status = P

    async def list_instances(self) -> list[Instance]:
        return [pod("a", self.status)]

    async def list_offers(self, query: OfferQuery) -> list[Offer]:
        return []


async def test_the_hub_knows_since_when_from_polls_and_again_after_a_restart(tmp_path: Path) -> None:
    clock = ManualClock(start=T0)
    pods = Pods()
    async with await Store.open(tmp_path / "hub.db") as store:
        hub = Hub({"runpod": pods}, store, clock)  # type: ignore[dict-item]
        await hub.refresh_instances("runpod")
        await clock.advance(600)
        await hub.refresh_instances("runpod")
        assert hub.status_since("runpod:a") == T0  # provisioning for ten minutes now
        pods.status = R
        await clock.advance(60)
        await hub.refresh_instances("runpod")
        assert hub.status_since("runpod:a") == T0 + 660
        assert [(c.at, c.status) for c in await hub.status_history("runpod:a", T0 + 300)] == [(T0, P), (T0 + 660, R)]
    async with await Store.open(tmp_path / "hub.db") as store:
        restarted = Hub({"runpod": pods}, store, clock)  # type: ignore[dict-item]
        await restarted.load_snapshot()
        assert restarted.status_since("runpod:a") == T0 + 660
        assert restarted.status_since("runpod:nobody") is None
