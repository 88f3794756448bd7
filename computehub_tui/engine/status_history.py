"""Status history: each instance's status changes as polls see them, and since when it has its current status."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from types import MappingProxyType

from computehub_tui.domain.models import Instance
from computehub_tui.domain.status_timeline import StatusChange
from computehub_tui.engine.safe_store import SafeStore


class StatusHistoryService:
    """The store records the changes (in the transaction that saves each poll, so every process agrees); this
    service keeps each instance's latest change in memory, rebuilt from the store at start, for cheap reads."""

    def __init__(self, store: SafeStore) -> None:
        self._store = store
        self._current: Mapping[str, StatusChange] = MappingProxyType({})
        self._observed_at: dict[str, float] = {}
        """When this process last saw each provider's instances (a poll that saved)."""

    async def load(self) -> None:
        current = await self._store.call(self._store.store.current_statuses())
        self._merge(current or {})

    async def save(self, provider: str, instances: Sequence[Instance], at: float) -> None:
        """Save a poll of ``provider``'s instances, recording the status changes it reveals."""
        current = await self._store.call(self._store.store.save_instances(provider, list(instances), at))
        if current is not None:
            self._observed_at[provider] = max(at, self._observed_at.get(provider, at))
        self._merge(current or {})

    def current(self, key: str) -> StatusChange | None:
        """``key``'s latest recorded change: its current status and since when (None: never seen)."""
        return self._current.get(key)

    def status_since(self, instance: Instance) -> float | None:
        """Since when ``instance`` has had the status it has now, as first seen by a poll; None when the
        record disagrees with it (a status not polled yet) or it was never recorded."""
        change = self._current.get(instance.key)
        return change.at if change is not None and change.status is instance.status else None

    def observed_at(self, provider: str) -> float | None:
        """When this process last saved a poll of ``provider``'s instances (None: not yet)."""
        return self._observed_at.get(provider)

    async def history(self, key: str, since: float) -> list[StatusChange]:
        """``key``'s changes from ``since`` on, led by the last one before (the status at ``since``)."""
        return await self._store.call(self._store.store.status_changes(key, since)) or []

    def _merge(self, changes: Mapping[str, StatusChange]) -> None:
        if changes:
            self._current = MappingProxyType({**self._current, **changes})
