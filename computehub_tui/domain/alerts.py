"""Alerts on their way out: the outbox's rows (an alert by key, one delivery per alert and channel) and their states."""

from __future__ import annotations

import itertools
import secrets
from dataclasses import dataclass

_SEQUENCE = itertools.count()

QUEUED = "queued"
SENDING = "sending"
SENT = "sent"
RETRYING = "retrying"
DEAD = "dead"

FIRING = "firing"
RESOLVED = "resolved"
NOTICE = "notice"
"""An alert that does not fire and resolve (a launch, a test, a rule's notify): sent once."""


@dataclass(frozen=True, slots=True)
class DeliveryRow:
    """One alert on its way to one channel."""

    delivery_id: str
    channel: str
    alert_key: str
    kind: str
    title: str
    state: str
    attempts: int
    next_attempt_at: float
    last_error: str
    created_at: float
    sent_at: float | None
    severity: str = "info"
    body: str = ""
    fields: dict[str, str] | None = None
    buttons: tuple[tuple[str, str], ...] = ()
    """(label, data) pairs."""
    claimed_by: str | None = None
    claimed_at: float | None = None
    recipients: tuple[str, ...] | None = None
    """Only these recipients still need it (an e-mail some recipients refused); None: all of them."""
    fallback_of: str | None = None
    """The delivery this row is a fallback copy of."""


@dataclass(frozen=True, slots=True)
class AlertRow:
    """What the outbox remembers of one alert key."""

    alert_key: str
    kind: str
    severity: str
    title: str
    body: str
    state: str
    first_at: float
    last_at: float
    last_sent_at: float | None = None
    acked_by: str | None = None
    acked_at: float | None = None
    pending_digest: bool = False
    channels: tuple[str, ...] | None = None
    """The channels it was meant for (None: every channel its kind is routed to)."""


def new_delivery_id(now: float) -> str:
    """A unique id that sorts in the order rows were made (the delivery log's order; webhook-id)."""
    return f"{int(now * 1000):013d}-{next(_SEQUENCE) % 1_000_000:06d}-{secrets.token_hex(4)}"
