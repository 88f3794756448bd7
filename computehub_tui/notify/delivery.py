"""The delivery worker: claims due outbox rows per channel, paces and sends them, and marks each sent, retrying
(full-jitter backoff, or the server's retry-after) or dead (with a copy to the fallback channel)."""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Protocol, runtime_checkable

from computehub_tui.clock import Clock, sleep_until_woken
from computehub_tui.domain.alerts import DEAD, QUEUED, RETRYING, SENT, AlertRow, DeliveryRow, new_delivery_id
from computehub_tui.notify.base import (
    Button,
    Channel,
    DeliveryError,
    OutgoingMessage,
    PartialDelivery,
    PermanentError,
    TransientError,
)
from computehub_tui.notify.reasons import one_line

log = logging.getLogger(__name__)

LEASE_S = 120.0
"""A claim older than this belongs to a worker that died: the row is claimable again (at-least-once)."""
SEND_DEADLINE_S = 60.0
MAX_BATCH = 20


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    base_s: float = 5.0
    cap_s: float = 3600.0
    max_attempts: int = 12
    """After this many failed attempts a row is dead (about a day with the default cap)."""

    def backoff(self, attempts: int, rng: random.Random) -> float:
        """Full jitter: anywhere between 0 and the capped exponential delay."""
        return rng.uniform(0.0, min(self.cap_s, self.base_s * 2 ** max(0, attempts)))

    def server_delay(self, retry_after: float, rng: random.Random) -> float:
        """The server's wish, plus a little jitter so several rows do not come back in the same instant."""
        return retry_after + rng.uniform(0.0, min(1.0, 0.1 * retry_after))


class Outbox(Protocol):
    """The store's outbox as the worker uses it (``store.outbox.OutboxStore``)."""

    async def enqueue(self, rows: Iterable[DeliveryRow], alert: AlertRow | None = None) -> None: ...

    async def claim_deliveries(self, claimant: str, now: float, lease_s: float, channel: str,
                               limit: int) -> list[DeliveryRow]: ...

    async def release_orphans(self, gone: Callable[[str], bool]) -> int: ...

    async def mark_sent(self, delivery_id: str, claimant: str, at: float) -> bool: ...

    async def mark_retry(self, delivery_id: str, claimant: str, next_attempt_at: float, error: str,
                         recipients: Sequence[str] | None = None) -> bool: ...

    async def mark_dead(self, delivery_id: str, claimant: str, error: str, at: float) -> bool: ...

    async def postpone(self, delivery_id: str, claimant: str, next_attempt_at: float) -> bool: ...

    async def next_delivery_due(self, lease_s: float, channel: str) -> float | None: ...


@runtime_checkable
class Addressed(Protocol):
    """A channel that can send to some of its recipients only (e-mail after a partial refusal)."""

    async def send_to(self, message: OutgoingMessage, recipients: Sequence[str]) -> None: ...


@dataclass(frozen=True, slots=True)
class DeliveryOutcome:
    """What became of one attempt, for the bus and the daemon's log."""

    row: DeliveryRow
    state: str
    error: str = ""


OutcomeListener = Callable[[DeliveryOutcome], None]


def message_of(row: DeliveryRow) -> OutgoingMessage:
    return OutgoingMessage(row.delivery_id, row.alert_key, row.kind, row.severity, row.title, row.body,
                           dict(row.fields or {}), tuple(Button(label, data) for label, data in row.buttons),
                           row.created_at)


class DeliveryWorker:
    """One per process. ``run`` drains whatever is due, then sleeps until the next row is due or ``wake`` is
    called (an alert was queued): no polling while idle. Channels drain concurrently, each at its own pace."""

    def __init__(self, outbox: Outbox, channels: Mapping[str, Channel], clock: Clock, *, claimant: str,
                 claimant_gone: Callable[[str], bool] = lambda _: False, fallback: str = "",
                 policy: RetryPolicy | None = None, lease_s: float = LEASE_S, rng: random.Random | None = None,
                 on_outcome: OutcomeListener | None = None) -> None:
        self._outbox = outbox
        self._channels = dict(channels)
        self._clock = clock
        self.claimant = claimant
        self._claimant_gone = claimant_gone
        self.fallback = fallback
        self.policy = policy or RetryPolicy()
        self.lease_s = lease_s
        self._rng = rng or random.Random()
        self._on_outcome = on_outcome
        self._wake = asyncio.Event()
        self._paused_until: dict[str, float] = {}
        self._last_sent: dict[str, float] = {}

    def set_channels(self, channels: Mapping[str, Channel], fallback: str) -> None:
        self._channels = dict(channels)
        self.fallback = fallback
        self.wake()

    def wake(self) -> None:
        """Look for due rows now (something was queued)."""
        self._wake.set()

    def paused_until(self, channel: str) -> float | None:
        until = self._paused_until.get(channel)
        return until if until is not None and until > self._clock.now() else None

    async def run(self) -> None:
        released = await self._outbox.release_orphans(self._claimant_gone)
        if released:
            log.info("re-queued %d alert deliveries a stopped process had claimed", released)
        while True:
            self._wake.clear()
            await self.drain()
            await self._wait(await self.next_due())

    async def drain(self) -> None:
        """Send everything due now, every channel at once."""
        await asyncio.gather(*(self._drain_channel(name) for name in list(self._channels)))

    async def next_due(self) -> float | None:
        """When the next row of a configured channel is due (after its channel's pause)."""
        times = []
        for name in self._channels:
            due = await self._outbox.next_delivery_due(self.lease_s, name)
            if due is not None:
                times.append(max(due, self._paused_until.get(name, due)))
        return min(times, default=None)

    async def _wait(self, due: float | None) -> None:
        await sleep_until_woken(self._clock, self._wake, due)

    async def _drain_channel(self, name: str) -> None:
        channel = self._channels[name]
        batch = max(1, min(MAX_BATCH, int(self.lease_s / 2 / max(channel.min_interval_s, 0.01))))
        while self.paused_until(name) is None:
            rows = await self._outbox.claim_deliveries(self.claimant, self._clock.now(), self.lease_s, name, batch)
            if not rows:
                return
            for row in rows:
                paused = self.paused_until(name)
                if paused is not None:
                    await self._outbox.postpone(row.delivery_id, self.claimant, paused)
                    continue
                await self._pace(name, channel.min_interval_s)
                await self._attempt(channel, row)

    async def _pace(self, name: str, interval_s: float) -> None:
        last = self._last_sent.get(name)
        if last is not None and interval_s > 0:
            wait = last + interval_s - self._clock.monotonic()
            if wait > 0:
                await self._clock.sleep(wait)
        self._last_sent[name] = self._clock.monotonic()

    async def _attempt(self, channel: Channel, row: DeliveryRow) -> None:
        message = message_of(row)
        try:
            async with asyncio.timeout(SEND_DEADLINE_S):
                if row.recipients is not None and isinstance(channel, Addressed):
                    await channel.send_to(message, row.recipients)
                else:
                    await channel.send(message)
        except PartialDelivery as error:
            await self._retry(row, one_line(error.reason), None, error.refused)
        except TransientError as error:
            await self._retry(row, one_line(error.reason), error.retry_after)
        except PermanentError as error:
            await self._bury(row, one_line(error.reason))
        except DeliveryError as error:
            await self._retry(row, one_line(error.reason), None)
        except TimeoutError:
            await self._retry(row, f"no answer within {SEND_DEADLINE_S:.0f} s", None)
        except Exception as error:  # noqa: BLE001 - a channel's bug must not lose the alert or stop the worker
            log.error("the %s channel failed unexpectedly: %s", channel.name, type(error).__name__)
            await self._retry(row, f"unexpected error in the {channel.name} channel ({type(error).__name__})", None)
        else:
            if await self._outbox.mark_sent(row.delivery_id, self.claimant, self._clock.now()):
                self._tell(replace(row, state=SENT, attempts=row.attempts + 1, sent_at=self._clock.now()), SENT)

    async def _retry(self, row: DeliveryRow, reason: str, retry_after: float | None,
                     recipients: Sequence[str] | None = None) -> None:
        if row.attempts + 1 >= self.policy.max_attempts:
            await self._bury(row, f"gave up after {row.attempts + 1} attempts: {reason}")
            return
        now = self._clock.now()
        if retry_after is not None:
            delay = self.policy.server_delay(retry_after, self._rng)
            self._paused_until[row.channel] = now + retry_after  # the whole channel waits, not only this row
        else:
            delay = self.policy.backoff(row.attempts, self._rng)
        if await self._outbox.mark_retry(row.delivery_id, self.claimant, now + delay, reason, recipients):
            self._tell(replace(row, state=RETRYING, attempts=row.attempts + 1, next_attempt_at=now + delay,
                               last_error=reason), RETRYING, reason)

    async def _bury(self, row: DeliveryRow, reason: str) -> None:
        now = self._clock.now()
        if not await self._outbox.mark_dead(row.delivery_id, self.claimant, reason, now):
            return
        self._tell(replace(row, state=DEAD, attempts=row.attempts + 1, last_error=reason), DEAD, reason)
        if self.fallback and self.fallback != row.channel and self.fallback in self._channels \
                and row.fallback_of is None:
            copy = replace(row, delivery_id=new_delivery_id(now), channel=self.fallback, state=QUEUED, attempts=0,
                           next_attempt_at=now, last_error="", created_at=now, sent_at=None, claimed_by=None,
                           claimed_at=None, recipients=None, fallback_of=row.delivery_id,
                           title=f"Undelivered via {row.channel}: {row.title}",
                           body=f"{row.body}\n\n({row.channel} failed: {reason})".strip())
            await self._outbox.enqueue([copy])
            self.wake()

    def _tell(self, row: DeliveryRow, state: str, error: str = "") -> None:
        if self._on_outcome is not None:
            try:
                self._on_outcome(DeliveryOutcome(row, state, error))
            except Exception:  # a listener's bug must not stop deliveries
                log.exception("a delivery listener failed")
