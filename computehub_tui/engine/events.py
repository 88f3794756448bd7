"""Typed engine events and the bus that carries them to the UI, the CLI and tests."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum

log = logging.getLogger(__name__)


class HealthState(StrEnum):
    """A provider's state as the header chips and empty panes name it (equal to its plain string)."""

    WAITING = "waiting"
    OK = "ok"
    RATE_LIMITED = "rate-limited"
    AUTH_ERROR = "auth-error"
    DOWN = "down"
    CIRCUIT_OPEN = "circuit-open"
    INTERNAL_ERROR = "internal-error"
    """A bug on our side (an unexpected exception while polling); polling restarts with backoff."""


@dataclass(frozen=True, slots=True)
class ProviderHealth:
    """How one provider is doing, for the header chips and the settings screen."""

    provider: str
    state: HealthState = HealthState.WAITING
    last_error: str = ""
    offers_at: float | None = None
    """When offers were last fetched successfully."""
    instances_at: float | None = None
    """When instances were last fetched successfully."""


@dataclass(frozen=True, slots=True)
class OffersUpdated:
    provider: str
    count: int
    at: float


@dataclass(frozen=True, slots=True)
class InstancesUpdated:
    provider: str
    count: int
    at: float


@dataclass(frozen=True, slots=True)
class MetricsSampled:
    at: float
    instance_keys: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class ProviderHealthChanged:
    health: ProviderHealth


@dataclass(frozen=True, slots=True)
class ActionStarted:
    action: str
    target: str


@dataclass(frozen=True, slots=True)
class ActionFinished:
    action: str
    target: str
    ok: bool
    message: str


@dataclass(frozen=True, slots=True)
class SpendUpdated:
    burn_rate_hour: float
    spend_today: float
    spend_this_month: float = 0.0


@dataclass(frozen=True, slots=True)
class StoreFailed:
    """Saving to the database failed (e.g. a full disk); polling goes on without history."""

    message: str


@dataclass(frozen=True, slots=True)
class RuleFired:
    """A rule acted (or, in dry-run, would have) on ``target`` (an instance key, or ``account``)."""

    rule: str
    target: str
    action: str
    result: str
    ok: bool
    dry_run: bool
    evidence: str
    at: float


@dataclass(frozen=True, slots=True)
class RuleWarningPending:
    """``WARN``: ``action`` of ``rule`` on ``target`` runs at ``due_at`` unless the condition stops holding,
    or the user snoozes or cancels it (``hub.rules.snooze`` / ``cancel`` with ``warning_id``)."""

    warning_id: str
    rule: str
    target: str
    action: str
    due_at: float


@dataclass(frozen=True, slots=True)
class AutomationPaused:
    reason: str
    """``user``, or why automation paused itself (the destructive cap)."""


@dataclass(frozen=True, slots=True)
class AutomationResumed:
    pass


@dataclass(frozen=True, slots=True)
class LeaseChanged:
    """Who runs automation now: ``holder`` is e.g. ``daemon pid 4242 on box``; None when nobody does."""

    holder: str | None
    ours: bool


@dataclass(frozen=True, slots=True)
class RuleNotify:
    """A rule's ``notify`` (or a safety alert, channel ``alert``): sent by hub.alerts, and a toast in the app."""

    rule: str
    target: str
    channel: str
    message: str


@dataclass(frozen=True, slots=True)
class AlertQueued:
    """An alert was written to the outbox for ``channels`` (``folded``: it waits for its group's digest)."""

    alert_key: str
    kind: str
    severity: str
    title: str
    channels: tuple[str, ...]
    folded: bool = False


@dataclass(frozen=True, slots=True)
class DeliveryChanged:
    """One delivery of an alert to one channel was sent, will be retried, or is dead (with the reason)."""

    delivery_id: str
    channel: str
    alert_key: str
    title: str
    state: str
    attempts: int
    error: str = ""


EngineEvent = (
    OffersUpdated | InstancesUpdated | MetricsSampled | ProviderHealthChanged | ActionStarted
    | ActionFinished | SpendUpdated | StoreFailed | RuleFired | RuleWarningPending | AutomationPaused
    | AutomationResumed | LeaseChanged | RuleNotify | AlertQueued | DeliveryChanged
)


class EventBus:
    """Synchronous fan-out; subscribers must be quick and must not raise (errors are logged)."""

    def __init__(self) -> None:
        self._subscribers: list[Callable[[EngineEvent], None]] = []

    def subscribe(self, callback: Callable[[EngineEvent], None]) -> Callable[[], None]:
        self._subscribers.append(callback)
        return lambda: self._subscribers.remove(callback) if callback in self._subscribers else None

    def publish(self, event: EngineEvent) -> None:
        for callback in list(self._subscribers):
            try:
                callback(event)
            except Exception:  # a broken subscriber must not stop the engine
                log.exception("event subscriber failed on %s", type(event).__name__)
