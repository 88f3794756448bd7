"""Provider health: the state machine behind the header chips, fed by typed poll outcomes."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace
from typing import Literal

from computehub_tui.domain.secret import redact
from computehub_tui.domain.text import clean_text
from computehub_tui.engine.events import EventBus, HealthState, ProviderHealth, ProviderHealthChanged
from computehub_tui.providers.base import AuthError, CircuitOpenError, ProviderError, RateLimitedError

Feed = Literal["offers", "instances"]
"""What a poll reads: the health of a provider is the worse of its two feeds."""
FEEDS: tuple[Feed, ...] = ("instances", "offers")
MESSAGE_LIMIT = 300

STATE_OF_ERROR: tuple[tuple[type[ProviderError], HealthState], ...] = (
    (AuthError, HealthState.AUTH_ERROR),
    (RateLimitedError, HealthState.RATE_LIMITED),
    (CircuitOpenError, HealthState.CIRCUIT_OPEN),
)
"""Which state a provider error puts its provider in (first match); every other one is DOWN."""


def health_state_for(error: ProviderError) -> HealthState:
    """The state comes from the error's type, never from the words of its message."""
    return next((state for kind, state in STATE_OF_ERROR if isinstance(error, kind)), HealthState.DOWN)


def internal_error_message(provider: str, feed: Feed, error: BaseException) -> str:
    """One plain line for a bug on our side; exception text may quote provider data, so it is cleaned."""
    detail = clean_text(redact(str(error)), MESSAGE_LIMIT)
    kind = type(error).__name__
    return f"{provider}: internal error while reading {feed} ({kind}{': ' + detail if detail else ''})"


@dataclass(frozen=True, slots=True)
class Failure:
    state: HealthState
    message: str


class HealthBook:
    """Each provider's latest outcome per feed; publishes ProviderHealthChanged when a provider's
    state or error changes. The mapping it exposes is replaced, never mutated, so other threads
    can read it at any time."""

    def __init__(self, bus: EventBus, providers: Iterable[str] = ()) -> None:
        self._bus = bus
        self._health: dict[str, ProviderHealth] = {name: ProviderHealth(name) for name in providers}
        self._failures: dict[tuple[str, Feed], Failure] = {}

    def of(self, provider: str) -> ProviderHealth:
        return self._health[provider]

    def get(self, provider: str) -> ProviderHealth | None:
        """``provider``'s health, or None once it is detached (another thread may ask just after)."""
        return self._health.get(provider)

    def in_order(self, providers: Iterable[str]) -> list[ProviderHealth]:
        health = self._health
        return [health[name] for name in providers if name in health]

    def failure(self, provider: str, feed: Feed) -> Failure | None:
        return self._failures.get((provider, feed))

    def reset(self, provider: str) -> ProviderHealth:
        """A provider (re)attached: waiting for its first answer."""
        self._forget_failures(provider)
        fresh = ProviderHealth(provider)
        self._health = {**self._health, provider: fresh}
        return fresh

    def drop(self, provider: str) -> None:
        self._forget_failures(provider)
        self._health = {name: h for name, h in self._health.items() if name != provider}

    def succeeded(self, provider: str, feed: Feed, at: float) -> None:
        self._failures.pop((provider, feed), None)
        self._update(provider, feed, at)

    def failed(self, provider: str, feed: Feed, failure: Failure) -> None:
        self._failures[(provider, feed)] = failure
        self._update(provider, feed, None)

    def _update(self, provider: str, feed: Feed, fetched_at: float | None) -> None:
        old = self._health.get(provider)
        if old is None:  # detached while its poll was answering
            return
        failure = self._failures.get((provider, "instances")) or self._failures.get((provider, "offers"))
        new = replace(old, state=failure.state if failure else HealthState.OK,
                      last_error=failure.message if failure else "")
        if fetched_at is not None:
            new = replace(new, offers_at=fetched_at) if feed == "offers" else replace(new, instances_at=fetched_at)
        self._health = {**self._health, provider: new}
        if (new.state, new.last_error) != (old.state, old.last_error):
            self._bus.publish(ProviderHealthChanged(new))

    def _forget_failures(self, provider: str) -> None:
        self._failures = {key: f for key, f in self._failures.items() if key[0] != provider}
