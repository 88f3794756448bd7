"""The contract between alert channels and the delivery worker: messages, buttons, errors, the Channel protocol."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Protocol


@dataclass(frozen=True, slots=True)
class Button:
    """An inline action under a message; ``data`` is the callback data (at most 64 bytes)."""

    label: str
    data: str


@dataclass(frozen=True, slots=True)
class OutgoingMessage:
    """One alert as a channel sends it; ``title`` and ``body`` are already plain, safe text."""

    delivery_id: str
    alert_key: str
    kind: str
    severity: str
    title: str
    body: str
    fields: Mapping[str, str] = field(default_factory=dict)
    buttons: tuple[Button, ...] = ()
    created_at: float = 0.0


class DeliveryError(Exception):
    """A send that did not succeed; ``reason`` is one line and never contains a secret."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class TransientError(DeliveryError):
    """Worth retrying: 429, 5xx, timeouts, refused connections; ``retry_after`` is the server's wish in seconds."""

    def __init__(self, reason: str, retry_after: float | None = None) -> None:
        super().__init__(reason)
        self.retry_after = retry_after


class PermanentError(DeliveryError):
    """Retrying will not help: a bad token, a forbidden chat, a bad address, a webhook 4xx."""


class PartialDelivery(DeliveryError):
    """Some recipients took the message and some refused it; only ``refused`` are retried."""

    def __init__(self, reason: str, refused: tuple[str, ...], delivered: tuple[str, ...]) -> None:
        super().__init__(reason)
        self.refused = refused
        self.delivered = delivered


class Channel(Protocol):
    """Where alerts go: Telegram, e-mail or a webhook."""

    name: str
    min_interval_s: float

    async def send(self, message: OutgoingMessage) -> None:
        """Deliver ``message``; raises only DeliveryError subclasses."""
        ...

    async def aclose(self) -> None:
        """Release connections."""
        ...
