"""An in-memory RulesSource for the Rules pane tests, with a stand-in checker (the real parser is not in ui/)."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Sequence
from dataclasses import dataclass, field, replace

from computehub_tui.clock import Clock
from computehub_tui.engine.automation.replay import ReplayControl
from computehub_tui.notify.channels import unconfigured
from computehub_tui.rules.model import Action, ActionKind, Comparison, Mode, Position, Rule, RuleError, RuleSet, Truth
from computehub_tui.ui.replay_view import ReplayView
from computehub_tui.ui.rules_source import FiringRow, LeaseInfo, PendingWarning, PreviewRow, Recipe, RuleRow

RECIPES = (
    Recipe("idle-stop", "Idle stop", "Stop a GPU that stayed idle for 30 minutes.",
           'rule "idle-stop": IF gpu_util < 5 FOR 30m AND status == "running" THEN stop'),
    Recipe("crash-restart", "Crash restart", "Restart an instance whose container exited.",
           'rule "crash-restart": IF status == "exited" THEN restart'),
    Recipe("daily-cap", "Daily cap", "Stop everything once today's spend passes $50.",
           'rule "daily-cap": IF spend_today > 50 THEN stop_all; notify toast "daily cap hit: {spend_today}"'),
)
IDLE = 'rule "idle-stop": IF gpu_util < 5 FOR 30m AND status == "running" THEN stop'
CRASH = 'rule "crash-restart": IF status == "exited" THEN restart'
RULES_FILE = f"# my rules\n{IDLE}\n{CRASH}\n"
HOSTILE_LABEL = "[bold]x[/] [@click=app.quit]q[/] \x1b]52;c;ZXZpbA==\x07\x1b[2Jend"
_NAMED = re.compile(r'\s*rule\s+"([^"]*)"\s*:', re.IGNORECASE)
_FOR = re.compile(r"\bFOR\s+(\S+)", re.IGNORECASE)
_DURATION = re.compile(r"\d+(\.\d+)?[smhd]")


def stand_in_check(text: str) -> RuleSet:
    """Enough of the language for the pane: rules split on unindented lines, a name, THEN required, and
    ``FOR`` wanting a duration. Errors are positioned like the real parser's."""
    rules: list[Rule] = []
    errors: list[RuleError] = []
    for line_number, chunk in _chunks(text):
        first = chunk.splitlines()[0]
        position = Position(line_number, 1)
        named = _NAMED.match(first)
        name = named.group(1) if named else f"line-{line_number}"
        for window in _FOR.finditer(first):
            if not _DURATION.fullmatch(window.group(1)):
                errors.append(RuleError(Position(line_number, window.start(1) + 1),
                                        "expected a duration like 30m after FOR", first))
        if not re.search(r"\bTHEN\b", chunk, re.IGNORECASE):
            errors.append(RuleError(Position(line_number, len(first) + 1), "expected THEN and an action", first))
        elif not errors or errors[-1].position.line != line_number:
            rules.append(Rule(name, Comparison("status", "==", "running", position),
                              (Action(ActionKind.NOTIFY, position),), position, chunk))
    return RuleSet(tuple(rules), tuple(errors))


def _chunks(text: str) -> list[tuple[int, str]]:
    """(first line number, text) of each rule: a line that starts with whitespace continues the one above."""
    chunks: list[tuple[int, list[str]]] = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        if line[0].isspace() and chunks:
            chunks[-1][1].append(line)
        else:
            chunks.append((number, [line]))
    return [(number, "\n".join(lines)) for number, lines in chunks]


@dataclass
class RuleState:
    enabled: bool = True
    mode: Mode = Mode.LIVE
    last_fired_at: float | None = None
    fire_count: int = 0
    problem: str = ""


@dataclass
class FakeRulesSource:
    """Holds the rules file and every rule's state in memory and records what the pane asked for."""

    clock: Clock
    text: str = ""
    states: dict[str, RuleState] = field(default_factory=dict)
    preview_rows: list[PreviewRow] = field(default_factory=list)
    firing_rows: list[FiringRow] = field(default_factory=list)
    warnings: list[PendingWarning] = field(default_factory=list)
    holder: LeaseInfo | None = None
    is_paused: bool = False
    saves: list[str] = field(default_factory=list)
    checks: int = 0
    snoozed: list[tuple[str, float]] = field(default_factory=list)
    cancelled: list[str] = field(default_factory=list)
    replay_view: ReplayView = field(default_factory=lambda: ReplayView("", 0.0, 0.0))
    """What ``replay`` answers (its rule and window filled in from the call)."""
    replays: list[tuple[str, float]] = field(default_factory=list)
    replay_controls: list[ReplayControl | None] = field(default_factory=list)
    configured_channels: tuple[str, ...] = ("telegram", "email", "webhook")
    """The alert channels set up: a ``notify`` to any other is warned of under the editor."""
    long_replay: tuple[int, int] | None = None
    """When set, ``replay`` reports (done, total) ticks and then never ends (a week of history, still going)."""

    def file_text(self) -> str:
        return self.text

    def rows(self) -> Sequence[RuleRow]:
        rows = []
        for rule in stand_in_check(self.text).rules:
            state = self.states.setdefault(rule.name, RuleState())
            rows.append(RuleRow(rule.name, state.enabled, state.mode, state.last_fired_at, state.fire_count,
                                rule.text, state.problem))
        return rows

    def check(self, text: str) -> RuleSet:
        self.checks += 1
        return stand_in_check(text)

    async def save(self, text: str) -> RuleSet:
        ruleset = stand_in_check(text)
        if ruleset.ok:
            self.saves.append(text)
            self.text = text
        return ruleset

    async def preview(self, text: str) -> list[PreviewRow]:
        names = {rule.name for rule in stand_in_check(text).rules}
        return [row for row in self.preview_rows if row.rule in names]

    async def set_enabled(self, name: str, enabled: bool) -> None:
        self.states[name].enabled = enabled

    async def set_mode(self, name: str, mode: Mode) -> None:
        self.states[name].mode = mode

    async def delete(self, name: str) -> None:
        rule = next(rule for rule in stand_in_check(self.text).rules if rule.name == name)
        self.text = self.text.replace(rule.text + "\n", "").replace(rule.text, "")
        self.states.pop(name, None)

    def recipes(self) -> Sequence[Recipe]:
        return RECIPES

    async def firings(self, limit: int) -> list[FiringRow]:
        return sorted(self.firing_rows, key=lambda row: -row.at)[:limit]

    def pending(self) -> Sequence[PendingWarning]:
        return list(self.warnings)

    async def snooze(self, warning_id: str, seconds: float) -> None:
        self.snoozed.append((warning_id, seconds))
        self.warnings = [replace(w, acts_at=w.acts_at + seconds) if w.id == warning_id else w for w in self.warnings]

    async def cancel(self, warning_id: str) -> None:
        self.cancelled.append(warning_id)
        self.warnings = [w for w in self.warnings if w.id != warning_id]

    @property
    def paused(self) -> bool:
        return self.is_paused

    async def pause(self) -> None:
        self.is_paused = True

    async def resume(self) -> None:
        self.is_paused = False

    def unconfigured_notifications(self, ruleset: RuleSet) -> list[tuple[str, str]]:
        return unconfigured(ruleset.notified_channels(), self.configured_channels)

    async def replay(self, text: str, rule: str, window_s: float, control: ReplayControl | None = None) -> ReplayView:
        self.replays.append((rule, window_s))
        self.replay_controls.append(control)
        if self.long_replay is not None:
            if control is not None:
                control.tick_done(*self.long_replay)
            await asyncio.Event().wait()  # until the screen's worker is cancelled
        now = self.clock.now()
        return replace(self.replay_view, rule=rule, start=now - window_s, end=now)

    def lease(self) -> LeaseInfo | None:
        return self.holder


def sample_source(clock: Clock, text: str = RULES_FILE) -> FakeRulesSource:
    """Two rules (one fired 5 minutes ago, one dry-run and held) and a preview with a match, a miss and
    an unknown on a hostile label."""
    now = clock.now()
    source = FakeRulesSource(clock, text)
    source.states["idle-stop"] = RuleState(last_fired_at=now - 300, fire_count=3)
    source.states["crash-restart"] = RuleState(mode=Mode.DRY_RUN, problem="held until 14:05 after 3 failed restarts")
    source.preview_rows = [
        PreviewRow("idle-stop", "vast:101", "llama-finetune", Truth.TRUE,
                   (("gpu_util", "2.0 for 31m"), ("status", "running"))),
        PreviewRow("idle-stop", "vast:102", "sd-webui", Truth.FALSE, (("gpu_util", "87.0"),), "gpu_util is 87.0"),
        PreviewRow("idle-stop", "runpod:abc", HOSTILE_LABEL, Truth.UNKNOWN, (), "no gpu_util samples for 4m"),
    ]
    return source
