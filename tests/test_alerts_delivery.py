"""The delivery worker on real SQLite with a manual clock and scripted channels: retry-after, full-jitter
backoff, dead + fallback, per-channel retries and pacing, partial e-mail refusals, no polling while idle."""

from __future__ import annotations

import asyncio
import itertools
import random
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from fakes.alert_channels import ScriptedChannel, ScriptedMail

from computehub_tui.clock import ManualClock
from computehub_tui.domain.alerts import DEAD, QUEUED, RETRYING, SENT, DeliveryRow
from computehub_tui.notify.base import PartialDelivery, PermanentError, TransientError
from computehub_tui.notify.delivery import DeliveryOutcome, DeliveryWorker, RetryPolicy
from computehub_tui.store import Store


class TopOfRange(random.Random):
    """Always the largest value full jitter allows, so a test can check the cap."""

    def uniform(self, a: float, b: float) -> float:
        return b


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    opened = await Store.open(tmp_path / "alerts.db")
    try:
        yield opened
    finally:
        await opened.close()


def queued(delivery_id: str, channel: str, at: float) -> DeliveryRow:
    return DeliveryRow(delivery_id, channel, f"key-{delivery_id}", "instance_down", f"title {delivery_id}", QUEUED, 0,
                       at, "", at, None, severity="critical", body="body")


def worker(store: Store, clock: ManualClock, *channels: ScriptedChannel, fallback: str = "",
           policy: RetryPolicy | None = None, outcomes: list[DeliveryOutcome] | None = None) -> DeliveryWorker:
    return DeliveryWorker(store, {channel.name: channel for channel in channels}, clock, claimant="here:1:x",
                          fallback=fallback, policy=policy, rng=TopOfRange(),
                          on_outcome=outcomes.append if outcomes is not None else None)


async def state_of(store: Store, delivery_id: str) -> DeliveryRow:
    row = await store.delivery(delivery_id)
    assert row is not None
    return row


async def test_a_servers_retry_after_wins_and_pauses_the_whole_channel(store: Store) -> None:
    clock = ManualClock()
    hook = ScriptedChannel("webhook", TransientError("HTTP 429", retry_after=30.0))
    await store.enqueue([queued("a", "webhook", clock.now()), queued("b", "webhook", clock.now())])
    deliveries = worker(store, clock, hook)
    await deliveries.drain()
    first, second = await state_of(store, "a"), await state_of(store, "b")
    assert first.state == RETRYING and first.last_error == "HTTP 429"
    assert clock.now() + 30 <= first.next_attempt_at <= clock.now() + 31
    assert second.state == QUEUED and hook.attempts == 1  # "b" waited: the server asked the channel to pause
    assert await deliveries.next_due() == pytest.approx(clock.now() + 30)
    await clock.advance(29)
    await deliveries.drain()
    assert hook.sent == []
    await clock.advance(2.5)
    await deliveries.drain()
    assert sorted(delivery_id for delivery_id, _ in hook.sent) == ["a", "b"]


async def test_backoff_is_full_jitter_under_a_capped_exponential(store: Store) -> None:
    clock = ManualClock()
    policy = RetryPolicy(base_s=5.0, cap_s=60.0, max_attempts=10)
    hook = ScriptedChannel("webhook", *(TransientError("refused") for _ in range(5)))
    await store.enqueue([queued("a", "webhook", clock.now())])
    deliveries = worker(store, clock, hook, policy=policy)
    delays = []
    for _ in range(5):
        before = clock.now()
        await deliveries.drain()
        row = await state_of(store, "a")
        delays.append(row.next_attempt_at - before)
        await clock.advance(row.next_attempt_at - before)
    assert delays == [5.0, 10.0, 20.0, 40.0, 60.0]  # the top of each jitter range, capped
    assert all(0 <= policy.backoff(attempt, random.Random(attempt)) <= min(60, 5 * 2 ** attempt)
               for attempt in range(8))
    await deliveries.drain()
    assert [delivery_id for delivery_id, _ in hook.sent] == ["a"] and (await state_of(store, "a")).attempts == 6


async def test_a_permanent_error_is_dead_with_its_reason_and_a_copy_goes_to_the_fallback(store: Store) -> None:
    clock = ManualClock()
    outcomes: list[DeliveryOutcome] = []
    mail = ScriptedChannel("email", PermanentError("127.0.0.1 refused the login for 'alerts' (535)"))
    hook = ScriptedChannel("webhook", PermanentError("also broken"))
    await store.enqueue([queued("a", "email", clock.now())])
    deliveries = worker(store, clock, mail, hook, fallback="webhook", outcomes=outcomes)
    await deliveries.drain()
    await deliveries.drain()
    dead = await state_of(store, "a")
    assert dead.state == DEAD and "refused the login" in dead.last_error
    copies = [row for row in await store.deliveries() if row.fallback_of == "a"]
    assert len(copies) == 1 and copies[0].channel == "webhook" and copies[0].title.startswith("Undelivered via email")
    assert copies[0].state == DEAD  # the fallback failed too, and is not copied on again
    assert [(o.row.delivery_id, o.state) for o in outcomes] == [("a", DEAD), (copies[0].delivery_id, DEAD)]
    assert mail.attempts == 1


async def test_a_retry_resends_only_to_the_channel_that_failed(store: Store) -> None:
    clock = ManualClock()
    mail = ScriptedChannel("email", TransientError("timed out"))
    hook = ScriptedChannel("webhook")
    await store.enqueue([queued("m", "email", clock.now()), queued("w", "webhook", clock.now())])
    deliveries = worker(store, clock, mail, hook)
    await deliveries.drain()
    await clock.advance(3600)
    await deliveries.drain()
    assert [d for d, _ in hook.sent] == ["w"] and [d for d, _ in mail.sent] == ["m"]
    assert hook.attempts == 1


async def test_a_partial_refusal_retries_only_the_refused_recipients(store: Store) -> None:
    clock = ManualClock()
    mail = ScriptedMail(PartialDelivery("refused gone@example.com (450)", ("gone@example.com",), ("ops@example.com",)))
    await store.enqueue([queued("m", "email", clock.now())])
    deliveries = worker(store, clock, mail)
    await deliveries.drain()
    assert (await state_of(store, "m")).recipients == ("gone@example.com",)
    await clock.advance(3600)
    await deliveries.drain()
    assert mail.addressed == [("gone@example.com",)]  # the first send used send(), to everyone
    assert (await state_of(store, "m")).state == SENT


async def test_a_row_that_keeps_failing_is_dead_after_the_last_attempt(store: Store) -> None:
    clock = ManualClock()
    hook = ScriptedChannel("webhook", *(TransientError("HTTP 503") for _ in range(3)))
    await store.enqueue([queued("a", "webhook", clock.now())])
    deliveries = worker(store, clock, hook, policy=RetryPolicy(max_attempts=3))
    for _ in range(3):
        await deliveries.drain()
        await clock.advance(3600)
    row = await state_of(store, "a")
    assert row.state == DEAD and row.attempts == 3 and row.last_error.startswith("gave up after 3 attempts")


async def test_sends_to_one_channel_are_paced_by_its_interval(store: Store) -> None:
    clock = ManualClock()
    chat = ScriptedChannel("telegram", min_interval_s=3.0, clock=clock)  # a group chat: 20 a minute
    await store.enqueue([queued(f"r{i}", "telegram", clock.now()) for i in range(3)])
    drain = asyncio.create_task(worker(store, clock, chat).drain())
    async with asyncio.timeout(10):
        while not drain.done():  # move the clock whenever the worker waits on it (store calls run on a thread)
            if clock.sleeper_count:
                await clock.advance(0.5)
            else:
                await asyncio.sleep(0.001)
    await drain
    times = [at for _, at in chat.sent]
    assert len(times) == 3 and all(later - earlier >= 3.0 for earlier, later in itertools.pairwise(times))


async def test_an_idle_worker_sleeps_until_woken_and_sends_at_once(store: Store) -> None:
    clock = ManualClock()
    hook = ScriptedChannel("webhook")
    deliveries = worker(store, clock, hook)
    running = asyncio.create_task(deliveries.run())
    try:
        for _ in range(5):
            await asyncio.sleep(0)
        assert clock.sleeper_count == 0  # nothing due: no timer at all, only the wake-up event
        await store.enqueue([queued("a", "webhook", clock.now())])
        deliveries.wake()
        async with asyncio.timeout(5):
            while not hook.sent:
                await asyncio.sleep(0.001)
        assert [d for d, _ in hook.sent] == ["a"]
    finally:
        running.cancel()
        await asyncio.gather(running, return_exceptions=True)
