"""The compiled rule language: conditions, actions, rules, positioned errors, facts and verdicts."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum

Scalar = float | str
"""A literal after its unit is applied: ``$2.5`` is 2.5, ``20%`` is 20.0, ``30m`` is 1800.0, ``80GB`` is 80.0."""
Value = float | str | None
"""A fact's value. ``None`` is unknown (no sample, ``[N/A]``, a provider that is down), and unknown is never true."""


class Truth(StrEnum):
    """Three-valued logic: a condition over an unknown value is UNKNOWN, and only TRUE fires."""

    TRUE = "true"
    FALSE = "false"
    UNKNOWN = "unknown"


class Mode(StrEnum):
    """How a rule runs: ``live`` acts, ``dry-run`` only logs and alerts what it would do."""

    LIVE = "live"
    DRY_RUN = "dry-run"


class ActionKind(StrEnum):
    STOP = "stop"
    START = "start"
    RESTART = "restart"
    DESTROY = "destroy"
    RELAUNCH = "relaunch"
    MIGRATE = "migrate"
    STOP_ALL = "stop_all"
    LABEL = "label"
    NOTIFY = "notify"


DESTRUCTIVE_ACTIONS = frozenset({ActionKind.STOP, ActionKind.DESTROY, ActionKind.RELAUNCH, ActionKind.MIGRATE,
                                 ActionKind.STOP_ALL, ActionKind.RESTART})
"""Actions that end or interrupt work: counted by the per-hour cap, held while a provider is down or stale."""
NEVER_WHILE_STALE = frozenset({ActionKind.DESTROY, ActionKind.STOP_ALL, ActionKind.MIGRATE})
"""Actions a provider that is down or stale never triggers (DESIGN: last good data is not today's truth)."""


@dataclass(frozen=True, slots=True)
class Position:
    line: int
    """1-based line in the rule file."""
    column: int
    """1-based column."""


@dataclass(frozen=True, slots=True)
class Comparison:
    """``field op value [FOR window]``; ``window_s`` binds to this comparison only."""

    field: str
    op: str
    """One of ``== != < <= > >= in not in ~``."""
    value: Scalar | tuple[Scalar, ...]
    """A tuple for ``in`` / ``not in``; a glob pattern string for ``~``."""
    position: Position
    window_s: float | None = None


@dataclass(frozen=True, slots=True)
class AllOf:
    parts: tuple[Condition, ...]


@dataclass(frozen=True, slots=True)
class AnyOf:
    parts: tuple[Condition, ...]


@dataclass(frozen=True, slots=True)
class Negation:
    part: Condition


Condition = Comparison | AllOf | AnyOf | Negation


@dataclass(frozen=True, slots=True)
class Action:
    """One action of a rule's THEN list.

    ``args`` by kind: migrate ``provider`` / ``max_price`` / ``gpu`` (each optional); label ``text``;
    notify ``channel`` (``telegram`` / ``email`` / ``webhook`` / ``toast``) and optional ``template``.
    ``where`` narrows ``stop_all``. ``warn_s`` is ``WARN <duration>`` before the action.
    """

    kind: ActionKind
    position: Position
    args: Mapping[str, Scalar] = field(default_factory=dict)
    where: Condition | None = None
    warn_s: float | None = None

    @property
    def destructive(self) -> bool:
        return self.kind in DESTRUCTIVE_ACTIONS


@dataclass(frozen=True, slots=True)
class Rule:
    """One rule of a file, compiled."""

    name: str
    """The name it was given (``rule "idle-stop": ...``), or ``line-<N>`` for an unnamed rule."""
    condition: Condition
    actions: tuple[Action, ...]
    position: Position
    text: str
    """The rule's own source text (continuation lines included), for the editor and the audit log."""
    account_scope: bool = False
    """True when the condition reads only account fields: evaluated once per tick, not per instance."""
    may_act_on_fleet: bool = False
    """The fleet-share guard does not hold this rule back (``stop_all`` is marked so)."""
    mode: Mode | None = None
    """A mode the file sets for this rule, if the grammar lets it; otherwise the store's state decides."""


@dataclass(frozen=True, slots=True)
class RuleError:
    """A positioned error: ``line 3, col 18: expected a duration like 30m after FOR``."""

    position: Position
    message: str
    source_line: str
    """The offending line, for the caret."""
    caret_column: int | None = None
    """Where the caret goes in ``source_line`` when that is a safe, shortened excerpt of the line (1-based);
    None means ``position.column``."""

    def render(self) -> str:
        """Three lines: where and what, the source line, a caret under the column."""
        column = self.position.column if self.caret_column is None else self.caret_column
        caret = " " * max(0, column - 1) + "^"
        return f"line {self.position.line}, col {self.position.column}: {self.message}\n  {self.source_line}\n  {caret}"


@dataclass(frozen=True, slots=True)
class RuleSet:
    """What a rule file compiles to: every rule that parsed and every error (not only the first)."""

    rules: tuple[Rule, ...] = ()
    errors: tuple[RuleError, ...] = ()

    @property
    def ok(self) -> bool:
        return not self.errors

    def notified_channels(self) -> list[tuple[str, str]]:
        """(rule, channel) for each ``notify <channel>`` of each rule, once each, in file order."""
        found = [(rule.name, str(action.args.get("channel", ""))) for rule in self.rules for action in rule.actions
                 if action.kind is ActionKind.NOTIFY]
        return list(dict.fromkeys(found))


@dataclass(frozen=True, slots=True)
class Series:
    """One field's recent samples of one instance, oldest first, for ``FOR`` windows.

    ``interval_s`` is that instance's sampling interval: the window must be covered from no later than
    one interval after its start, and a gap longer than three intervals restarts it.
    """

    points: tuple[tuple[float, Value], ...]
    interval_s: float


@dataclass(frozen=True, slots=True)
class InstanceFacts:
    """What rules see of one instance now: current values by field name, and series for windows."""

    key: str
    """``provider:instance_id``."""
    values: Mapping[str, Value]
    series: Mapping[str, Series] = field(default_factory=dict)
    fresh: bool = True
    """False when the instance's provider is down or its data is stale."""


@dataclass(frozen=True, slots=True)
class AccountFacts:
    """Account-wide values (``spend_today``, ``spend_month``, ``burn_rate``, ``running_count``)."""

    values: Mapping[str, Value]
    fresh: bool = True


@dataclass(frozen=True, slots=True)
class Verdict:
    """A condition's truth, with the values that made it so (``gpu_util=2.0 for 31m``) for the audit log."""

    truth: Truth
    evidence: tuple[tuple[str, str], ...] = ()
    """(field, what was seen) for each comparison that decided the truth."""
    reason: str = ""
    """Why it is UNKNOWN or FALSE, in words for the preview (``no gpu_util samples for 4m``)."""
