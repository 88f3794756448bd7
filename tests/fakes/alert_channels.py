"""A scripted alert channel for worker and service tests: records sends, raises scripted errors first."""

from __future__ import annotations

from collections.abc import Sequence

from computehub_tui.clock import ManualClock
from computehub_tui.notify.base import DeliveryError, OutgoingMessage


class ScriptedChannel:
    """Records what it was asked to send; raises the scripted errors first, in order."""

    def __init__(self, name: str, *errors: DeliveryError, min_interval_s: float = 0.0,
                 clock: ManualClock | None = None) -> None:
        self.name = name
        self.min_interval_s = min_interval_s
        self.errors = list(errors)
        self.sent: list[tuple[str, float]] = []
        self.messages: list[OutgoingMessage] = []
        self.attempts = 0
        self.closed = False
        self._clock = clock

    async def send(self, message: OutgoingMessage) -> None:
        self.attempts += 1
        if self.errors:
            raise self.errors.pop(0)
        self.sent.append((message.delivery_id, self._clock.monotonic() if self._clock else 0.0))
        self.messages.append(message)

    async def aclose(self) -> None:
        self.closed = True


class ScriptedMail(ScriptedChannel):
    """An e-mail stand-in that can be told to send to some recipients only."""

    def __init__(self, *errors: DeliveryError) -> None:
        super().__init__("email", *errors)
        self.addressed: list[tuple[str, ...]] = []

    async def send_to(self, message: OutgoingMessage, recipients: Sequence[str]) -> None:
        self.addressed.append(tuple(recipients))
        await self.send(message)
