"""What the Rules pane reads and asks of automation: the one seam between the pane and the rule runner."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal, Protocol

from computehub_tui.domain.text import clean_text
from computehub_tui.engine.hub import Hub
from computehub_tui.rules.model import Mode, RuleSet, Truth

LeaseHolder = Literal["this app", "daemon", "other"]


@dataclass(frozen=True, slots=True)
class RuleRow:
    """One rule of the rules file with its runtime state."""

    name: str
    enabled: bool
    mode: Mode
    last_fired_at: float | None
    """Wall-clock seconds of the last firing; None if it never fired."""
    fire_count: int
    text: str
    """The rule's own source text, as in the file."""
    problem: str = ""
    """Why the rule is held or failing (``held until 14:05 after 3 failed stops``); "" when nothing is wrong."""


@dataclass(frozen=True, slots=True)
class PreviewRow:
    """How one rule reads for one instance (or the account) right now."""

    rule: str
    instance_key: str
    """``provider:instance_id``, or "" for an account-wide rule."""
    label: str
    """The instance's label: provider text, shown as plain text."""
    truth: Truth
    evidence: tuple[tuple[str, str], ...] = ()
    """(field, what was seen), as ``Verdict.evidence``."""
    reason: str = ""
    """Why it is FALSE or UNKNOWN."""


@dataclass(frozen=True, slots=True)
class PendingWarning:
    """An action announced by ``WARN <duration>`` that runs at ``acts_at`` unless snoozed or cancelled."""

    id: str
    rule: str
    instance_key: str
    action: str
    acts_at: float


@dataclass(frozen=True, slots=True)
class FiringRow:
    """One audit-log entry of a rule firing."""

    at: float
    rule: str
    instance_key: str
    action: str
    dry_run: bool
    result: str
    evidence: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True, slots=True)
class LeaseInfo:
    """Who runs automation now (one process at a time holds the lease)."""

    holder: LeaseHolder
    pid: int
    host: str
    since: float


@dataclass(frozen=True, slots=True)
class Recipe:
    """A ready-made rule to insert into the editor."""

    name: str
    title: str
    description: str
    text: str


class RulesSource(Protocol):
    """Everything the Rules pane needs. Reads are snapshots, cheap enough for the UI thread; the async
    methods write the rules file or the store and may run on the engine loop."""

    def file_text(self) -> str:
        """The rules file as it is now ("" when there is none yet)."""
        ...

    def rows(self) -> Sequence[RuleRow]: ...

    def check(self, text: str) -> RuleSet:
        """Parse ``text`` without saving it; pure, so the editor may call it off the event loop."""
        ...

    async def save(self, text: str) -> RuleSet:
        """Write ``text`` as the rules file and reload. An invalid text is never saved over the last good
        file: the RuleSet then carries the errors and nothing changed."""
        ...

    async def preview(self, text: str) -> list[PreviewRow]:
        """How the rules in ``text`` read against every instance now (nothing acts)."""
        ...

    async def set_enabled(self, name: str, enabled: bool) -> None: ...

    async def set_mode(self, name: str, mode: Mode) -> None: ...

    async def delete(self, name: str) -> None:
        """Remove the rule from the rules file (and its state)."""
        ...

    def recipes(self) -> Sequence[Recipe]: ...

    async def firings(self, limit: int) -> list[FiringRow]:
        """The newest ``limit`` firings, newest first."""
        ...

    def pending(self) -> Sequence[PendingWarning]: ...

    async def snooze(self, warning_id: str, seconds: float) -> None: ...

    async def cancel(self, warning_id: str) -> None: ...

    @property
    def paused(self) -> bool: ...

    async def pause(self) -> None: ...

    async def resume(self) -> None: ...

    def lease(self) -> LeaseInfo | None:
        """Who holds the automation lease; None when nobody runs automation."""
        ...


def rules_source_for(hub: Hub) -> RulesSource | None:
    """The Rules pane's source for ``hub``: the one place that knows where automation lives. None until the
    rule runner is wired (the pane then says automation is not available in this build)."""
    return None


def automation_line(source: RulesSource | None) -> str:
    """The automation state in words, for the header and the Rules pane."""
    if source is None:
        return "automation is not available in this build"
    if source.paused:
        return "automation paused"
    lease = source.lease()
    if lease is None:
        return "automation off"
    if lease.holder == "this app":
        return "automation: this app"
    holder = "daemon" if lease.holder == "daemon" else "another process"
    return f"automation: {holder} pid {lease.pid} on {clean_text(lease.host, 60)} holds the lease"
