"""The outbox tables on real SQLite: written before sending, claimed once, claimable again after a crash."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from computehub_tui.domain.alerts import DEAD, QUEUED, RETRYING, SENDING, SENT, AlertRow, DeliveryRow
from computehub_tui.store import Store

NOW = 1_790_000_000.0


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    opened = await Store.open(tmp_path / "outbox.db")
    try:
        yield opened
    finally:
        await opened.close()


def row(delivery_id: str, channel: str = "webhook", *, due: float = NOW) -> DeliveryRow:
    return DeliveryRow(delivery_id, channel, "instance-down:vast:1", "instance_down", "vast:1 went exited", QUEUED, 0,
                       due, "", NOW, None, severity="critical", body="b", fields={"k": "v"},
                       buttons=(("Acknowledge", "ack:instance-down:vast:1"),))


async def test_rows_and_their_alert_are_written_together_and_read_back(store: Store) -> None:
    alert = AlertRow("instance-down:vast:1", "instance_down", "critical", "t", "b", "firing", NOW, NOW, NOW)
    await store.enqueue([row("a"), row("b", "email")], alert)
    assert await store.alert("instance-down:vast:1") == alert
    back = await store.delivery("a")
    assert back is not None and back.fields == {"k": "v"} and back.buttons == (("Acknowledge",
                                                                               "ack:instance-down:vast:1"),)
    assert {r.delivery_id for r in await store.deliveries(channel="email")} == {"b"}


async def test_a_claimed_row_is_not_claimed_again_until_its_claim_expires(store: Store) -> None:
    await store.enqueue([row("a"), row("later", due=NOW + 60)])
    first = await store.claim_deliveries("w1", NOW, 120, "webhook", 10)
    assert [r.delivery_id for r in first] == ["a"] and first[0].state == SENDING
    second = await store.claim_deliveries("w2", NOW + 60, 120, "webhook", 10)
    assert [r.delivery_id for r in second] == ["later"]  # "a" is still w1's
    taken_over = await store.claim_deliveries("w3", NOW + 121, 120, "webhook", 10)
    assert [r.delivery_id for r in taken_over] == ["a"]  # w1 died: its row is delivered at least once
    assert not await store.mark_sent("a", "w1", NOW + 122)  # the dead worker's late mark does not count
    assert await store.mark_sent("a", "w3", NOW + 122)
    sent = await store.delivery("a")
    assert sent is not None and sent.state == SENT and sent.attempts == 1 and sent.sent_at == NOW + 122


async def test_rows_of_a_claimant_known_to_be_gone_are_released_at_once(store: Store) -> None:
    await store.enqueue([row("a"), row("b")])
    await store.claim_deliveries("host:111:dead", NOW, 120, "webhook", 1)
    await store.claim_deliveries("host:222:alive", NOW, 120, "webhook", 1)
    released = await store.release_orphans(lambda claimant: claimant.endswith("dead"))
    assert released == 1
    states = {r.delivery_id: (r.state, r.claimed_by) for r in await store.deliveries()}
    assert sorted(states.values()) == [(QUEUED, None), (SENDING, "host:222:alive")]


async def test_retry_narrows_recipients_and_dead_keeps_the_reason(store: Store) -> None:
    await store.enqueue([row("a", "email"), row("b", "email")])
    await store.claim_deliveries("w", NOW, 120, "email", 10)
    assert await store.mark_retry("a", "w", NOW + 30, "refused gone@example.com", ["gone@example.com"])
    assert await store.mark_dead("b", "w", "bad address", NOW)
    retrying, dead = await store.delivery("a"), await store.delivery("b")
    assert retrying is not None and retrying.state == RETRYING and retrying.recipients == ("gone@example.com",)
    assert retrying.next_attempt_at == NOW + 30 and retrying.attempts == 1
    assert dead is not None and dead.state == DEAD and dead.last_error == "bad address"
    assert await store.next_delivery_due(120, "email") == NOW + 30


async def test_an_acknowledged_alert_stays_acknowledged(store: Store) -> None:
    await store.put_alert(AlertRow("k", "instance_down", "critical", "t", "b", "firing", NOW, NOW, NOW))
    assert await store.acknowledge_alert("k", "telegram:42", NOW + 5)
    assert not await store.acknowledge_alert("missing", "x", NOW)
    acked = await store.alert("k")
    assert acked is not None and acked.acked_by == "telegram:42" and acked.acked_at == NOW + 5


async def test_pruning_forgets_finished_deliveries_and_alerts_but_keeps_what_is_pending_or_firing(
        store: Store) -> None:
    await store.put_alert(AlertRow("firing", "instance_down", "critical", "t", "b", "firing", NOW, NOW, NOW))
    await store.put_alert(AlertRow("over", "launch", "info", "t", "b", "notice", NOW, NOW, NOW))
    await store.enqueue([row("sent")])
    await store.claim_deliveries("w", NOW, 120, "webhook", 1)
    assert await store.mark_sent("sent", "w", NOW)
    await store.enqueue([row("pending")])
    day = 86_400.0
    await store.prune(NOW + 2 * day, metrics_keep_s=day, metrics_1m_keep_s=day, metrics_1h_keep_s=day,
                      prices_keep_s=day, audit_keep_s=day)
    assert [r.delivery_id for r in await store.deliveries()] == ["pending"]
    assert await store.alert("over") is None and await store.alert("firing") is not None
