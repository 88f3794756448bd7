"""What the Rules pane reads and asks of automation: the one seam between the pane and the rule runner."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal, Protocol, TypeVar

from computehub_tui.domain.text import clean_text
from computehub_tui.engine.automation.replay import ReplayControl
from computehub_tui.engine.automation.runner import ACCOUNT
from computehub_tui.engine.automation.service import RulesService
from computehub_tui.engine.crossing import run_on, running_loop
from computehub_tui.engine.hub import Hub
from computehub_tui.rules.model import Mode, RuleSet, Truth
from computehub_tui.rules.parser import parse_rules
from computehub_tui.rules.recipes import RECIPES
from computehub_tui.ui.replay_view import ReplayView, replay_rule

LeaseHolder = Literal["this app", "daemon", "other"]
T = TypeVar("T")


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
        """The rules file as it is now ("" when there is none yet); raises OSError when it cannot be read."""
        ...

    def rows(self) -> Sequence[RuleRow]: ...

    def check(self, text: str) -> RuleSet:
        """Parse ``text`` without saving it; pure, so the editor may call it off the event loop."""
        ...

    def unconfigured_notifications(self, ruleset: RuleSet) -> list[tuple[str, str]]:
        """(rule, channel) for each ``notify <channel>`` in ``ruleset`` whose alert channel is not set up."""
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

    async def replay(self, text: str, rule: str, window_s: float, control: ReplayControl | None = None) -> ReplayView:
        """``rule`` of ``text`` replayed over the last ``window_s`` of stored history (nothing acts); ``control``
        follows its progress and may stop it."""
        ...


def rules_source_for(hub: Hub) -> RulesSource | None:
    """The Rules pane's source for ``hub``: the one place that knows where automation lives."""
    return HubRulesSource(hub)


class HubRulesSource:
    """``hub.rules`` as the pane needs it. Whatever changes automation's state (the rule set in force,
    warnings) runs on the engine's loop, where the runner reads it; reads are snapshots."""

    def __init__(self, hub: Hub) -> None:
        self._hub = hub

    @property
    def _rules(self) -> RulesService:
        return self._hub.rules

    async def _on_engine(self, call: Callable[[], T]) -> T:
        home = self._hub.home_loop
        if home is None or running_loop() is home:
            return call()

        async def there() -> T:
            return call()

        return await run_on(home, there())

    def file_text(self) -> str:
        try:
            return self._rules.file_text() or ""
        except UnicodeDecodeError as error:
            raise OSError(f"the rules file is not UTF-8 text (byte {error.start})") from None

    def rows(self) -> Sequence[RuleRow]:
        problem = "the rules file has errors; these rules stay in force" if self._rules.errors else ""
        return [RuleRow(r.name, r.enabled, r.mode, r.last_fired, r.fire_count, r.text, problem)
                for r in self._rules.listing()]

    def check(self, text: str) -> RuleSet:
        return parse_rules(text)

    def unconfigured_notifications(self, ruleset: RuleSet) -> list[tuple[str, str]]:
        return self._hub.alerts.unconfigured(ruleset.notified_channels())

    async def save(self, text: str) -> RuleSet:
        rule_set = parse_rules(text)
        if rule_set.ok:
            await self._on_engine(lambda: self._rules.save(text, parsed=rule_set))
        return rule_set

    async def preview(self, text: str) -> list[PreviewRow]:
        previews = await self._on_engine(lambda: self._rules.preview(text))
        rows = []
        for preview in previews:
            for line in preview.lines:
                key = "" if line.target == ACCOUNT else line.target
                instance = self._hub.instance(key) if key else None
                rows.append(PreviewRow(preview.rule, key, "" if instance is None else instance.label, line.truth,
                                       line.evidence, line.reason))
        return rows

    async def set_enabled(self, name: str, enabled: bool) -> None:
        await self._rules.set_enabled(name, enabled)

    async def set_mode(self, name: str, mode: Mode) -> None:
        await self._rules.set_mode(name, mode)

    async def delete(self, name: str) -> None:
        text = self.file_text()
        remaining = self._rules.without_rule(text, name)
        if remaining is None:
            raise ValueError(f"no rule named {name!r} in the rules file")
        saved = await self.save(remaining)
        if not saved.ok:
            raise ValueError(f"without {name!r} the file would not parse; edit it instead")

    def recipes(self) -> Sequence[Recipe]:
        return [Recipe(r.name, r.title, r.description, r.text) for r in RECIPES]

    async def firings(self, limit: int) -> list[FiringRow]:
        entries = await self._rules.recent_firings(limit)
        return [FiringRow(e.last_attempt_at, e.rule, "" if e.target == ACCOUNT else e.target, e.action, e.dry_run,
                          e.result or e.state, _evidence_pairs(e.evidence)) for e in entries]

    def pending(self) -> Sequence[PendingWarning]:
        return [PendingWarning(w.warning_id, w.rule, w.target, w.action, w.due_at)
                for w in self._rules.pending_warnings()]

    async def snooze(self, warning_id: str, seconds: float) -> None:
        await self._rules.snooze(warning_id, seconds)

    async def cancel(self, warning_id: str) -> None:
        await self._rules.cancel(warning_id)

    @property
    def paused(self) -> bool:
        return self._rules.paused

    async def pause(self) -> None:
        await self._rules.pause("paused in the app")

    async def resume(self) -> None:
        await self._rules.resume()

    async def replay(self, text: str, rule: str, window_s: float, control: ReplayControl | None = None) -> ReplayView:
        return await replay_rule(self._hub, text, rule, window_s, control)

    def lease(self) -> LeaseInfo | None:
        holder = self._rules.lease.holder
        if holder is None or self._rules.lease_holder is None:
            return None
        if self._rules.holds_lease:
            return LeaseInfo("this app", holder.pid, holder.host, holder.acquired_at)
        role = holder.holder.split(" ", 1)[0]
        return LeaseInfo("daemon" if role == "daemon" else "other", holder.pid, holder.host, holder.acquired_at)


def _evidence_pairs(evidence: str) -> tuple[tuple[str, str], ...]:
    """The journal keeps evidence as ``field=seen; field=seen``; the audit view shows it per field."""
    pairs = []
    for part in evidence.split("; "):
        name, _, seen = part.partition("=")
        if part:
            pairs.append((name, seen))
    return tuple(pairs)


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
