"""Textual messages the App posts when the engine reports something."""

from __future__ import annotations

from textual.message import Message

from computehub_tui.engine.events import (
    EngineEvent,
    InstancesUpdated,
    MetricsSampled,
    OffersUpdated,
)


class HubReady(Message):
    """The session is open and the Hub is polling."""


class EngineEventPosted(Message):
    """One engine event, delivered on the UI's message queue."""

    def __init__(self, event: EngineEvent) -> None:
        super().__init__()
        self.event = event

    def can_replace(self, message: Message) -> bool:
        # A newer snapshot of the same kind supersedes an unprocessed older one.
        if not isinstance(message, EngineEventPosted):
            return False
        old, new = message.event, self.event
        if isinstance(new, (OffersUpdated, InstancesUpdated)) and isinstance(old, (OffersUpdated, InstancesUpdated)):
            return type(old) is type(new) and old.provider == new.provider
        return isinstance(new, MetricsSampled) and isinstance(old, MetricsSampled)


class InstanceDataArrived(Message, bubble=False):
    """A poll or a sample arrived: posted to every screen on the stack, for those that show one instance."""

    def __init__(self, event: InstancesUpdated | MetricsSampled) -> None:
        super().__init__()
        self.event = event
