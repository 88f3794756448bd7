"""Projects: which project each instance belongs to (set by the user, else implied by its label), audited."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Literal

from computehub_tui.clock import Clock
from computehub_tui.domain.models import Instance
from computehub_tui.domain.projects import project_from_label, project_name
from computehub_tui.engine.safe_store import SafeStore

ProjectSource = Literal["set", "label"]


@dataclass(frozen=True, slots=True)
class ProjectAssignment:
    key: str
    project: str | None
    """None: not set, and the label implies none."""
    source: ProjectSource | None


class ProjectService:
    """Reads are from memory (loaded at start, changed by ``set`` / ``clear``); writes go to the store
    directly, so a failed one raises ``StoreError`` for the caller to show."""

    def __init__(self, store: SafeStore, clock: Clock) -> None:
        self._store = store
        self._clock = clock
        self._assigned: Mapping[str, str] = MappingProxyType({})
        self._changes = 0
        """Counts this process's set / clear calls: a read that one overtook is older than memory."""

    async def load(self) -> None:
        """Read every assignment from the store (another process may have set some)."""
        changes = self._changes
        assigned = await self._store.call(self._store.store.projects())
        if assigned is not None and changes == self._changes:
            self._assigned = MappingProxyType(assigned)

    @property
    def assigned(self) -> Mapping[str, str]:
        """Every project the user set, by instance key."""
        return self._assigned

    def project_for(self, key: str, label: str) -> str | None:
        """The project of the instance ``key`` labelled ``label`` (also one that has gone)."""
        return self._assigned.get(key) or project_from_label(label)

    def project_of(self, instance: Instance) -> str | None:
        return self.project_for(instance.key, instance.label)

    def assignment(self, instance: Instance) -> ProjectAssignment:
        if instance.key in self._assigned:
            return ProjectAssignment(instance.key, self._assigned[instance.key], "set")
        implied = project_from_label(instance.label)
        return ProjectAssignment(instance.key, implied, None if implied is None else "label")

    def listing(self, instances: Iterable[Instance]) -> list[ProjectAssignment]:
        return [self.assignment(instance) for instance in instances]

    async def set(self, key: str, name: str, *, actor: str) -> str:
        """Put ``key`` in project ``name`` (validated: raises ``ProjectNameError``); returns the name kept."""
        project = project_name(name)
        now = self._clock.now()
        await self._store.store.set_project(key, project, now)
        self._assigned = MappingProxyType({**self._assigned, key: project})
        self._changes += 1
        await self._store.store.audit(now, actor, "project set", key, project)
        return project

    async def clear(self, key: str, *, actor: str) -> bool:
        """Take ``key`` out of its set project (its label's applies again); False if none was set."""
        cleared = await self._store.store.clear_project(key)
        self._assigned = MappingProxyType({k: v for k, v in self._assigned.items() if k != key})
        self._changes += 1
        if cleared:
            await self._store.store.audit(self._clock.now(), actor, "project clear", key)
        return cleared
