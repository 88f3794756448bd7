"""The rule runner: evaluates enabled rules on each tick and fires their actions with the safety rules
(stale providers, cooldowns, retries, the destructive cap, the fleet-share guard, dry-run, WARN, the journal)."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable, Coroutine, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from computehub_tui.clock import Clock
from computehub_tui.domain.models import InstanceStatus
from computehub_tui.engine.automation.execute import Executor, Outcome
from computehub_tui.engine.automation.facts import FactsBuilder
from computehub_tui.engine.automation.settings import AutomationSettings
from computehub_tui.engine.events import (
    AutomationPaused,
    AutomationResumed,
    EventBus,
    RuleFired,
    RuleNotify,
    RuleWarningPending,
)
from computehub_tui.engine.live import LiveData
from computehub_tui.engine.safe_store import SafeStore
from computehub_tui.rules.compiled import CompiledRules, Match, compile_rules
from computehub_tui.rules.evaluate import evaluate as evaluate_condition
from computehub_tui.rules.model import (
    DESTRUCTIVE_ACTIONS,
    AccountFacts,
    Action,
    ActionKind,
    Comparison,
    Condition,
    InstanceFacts,
    Mode,
    Negation,
    Rule,
    RuleSet,
    Truth,
    Value,
    Verdict,
)
from computehub_tui.store import StoreError
from computehub_tui.store.automation import (
    JOURNAL_DONE,
    JOURNAL_DRY_RUN,
    JOURNAL_FAILED,
    JOURNAL_HELD,
    JOURNAL_IN_FLIGHT,
    PAUSED_FLAG,
    JournalEntry,
    PendingWarning,
    RuleState,
)

log = logging.getLogger(__name__)

Evaluate = Callable[[Condition, InstanceFacts | None, AccountFacts, float], Verdict]
Spawn = Callable[[str, Callable[[], Coroutine[Any, Any, None]]], None]
"""Starts a long action (migrate) as its own task: the engine passes its supervisor's ``start``."""
ACCOUNT = "account"
"""The target of an account rule's notify."""
HOUR = 3600.0
MACHINE_CHANGING = frozenset(ActionKind) - {ActionKind.NOTIFY, ActionKind.LABEL}
"""Actions the fleet-share guard counts."""


@dataclass(frozen=True, slots=True)
class Planned:
    """One action of one rule on one target, with what made the rule true."""

    rule: Rule
    action: Action
    target: str
    facts: InstanceFacts | None
    match: Match
    values: Mapping[str, Value]

    @property
    def evidence(self) -> str:
        """What made the rule true, worked out only for what is acted on or logged (a tick finds far more)."""
        return _evidence(self.match.verdict)

    @property
    def action_id(self) -> str:
        """The action as the journal names it: ``stop``, ``notify telegram``."""
        if self.action.kind is ActionKind.NOTIFY:
            return f"notify {self.action.args.get('channel', 'toast')}"
        return self.action.kind.value

    @property
    def window_key(self) -> tuple[str, str, str]:
        return self.rule.name, self.target, self.action_id


@dataclass(slots=True)
class TickReport:
    """What one tick did, for the caller (and tests): the firings and the guards that held something back."""

    fired: list[JournalEntry] = field(default_factory=list)
    held: list[str] = field(default_factory=list)


class RuleRunner:
    """Runs a rule set over the engine's facts. ``tick`` is one evaluation; the service calls it after polls.

    Every action goes through ``Executor`` (the engine's actions and policy). A firing is journalled before the
    action is sent and its result after; a row still in flight from an earlier process is reconciled against the
    provider's current state and never sent again.
    """

    def __init__(self, *, store: SafeStore, bus: EventBus, clock: Clock, live: LiveData, facts: FactsBuilder,
                 executor: Executor, settings: AutomationSettings, spawn: Spawn | None = None) -> None:
        self._store = store
        self._bus = bus
        self._clock = clock
        self._live = live
        self.facts = facts
        self._executor = executor
        self.settings = settings
        self._rule_set = RuleSet()
        self._compiled: CompiledRules = compile_rules(self._rule_set)
        self.windows: dict[str, float] = {}
        """Each field the rules read over a ``FOR`` window, with the longest window (facts build only these)."""
        self.states: dict[str, RuleState] = {}
        self.paused = False
        self.pause_reason = ""
        self._windows: dict[tuple[str, str, str], JournalEntry] = {}
        self._to_reconcile: list[JournalEntry] = []
        self.warnings: dict[str, PendingWarning] = {}
        self._quiet_until: dict[tuple[str, str, str], float] = {}
        """Cancelled warnings and repeated guard alerts stay quiet until the cooldown has passed."""
        self._lock = asyncio.Lock()
        self._spawn = spawn or self._own_task
        self._tasks: set[asyncio.Task[None]] = set()

    def _own_task(self, name: str, job: Callable[[], Coroutine[Any, Any, None]]) -> None:
        task = asyncio.create_task(job(), name=f"engine:{name}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    evaluate: Evaluate = staticmethod(evaluate_condition)
    """One condition on one instance (previews, ``stop_all where``); a tick uses the compiled rule set."""

    @property
    def rule_set(self) -> RuleSet:
        return self._rule_set

    @rule_set.setter
    def rule_set(self, rule_set: RuleSet) -> None:
        self._rule_set = rule_set
        self._compiled = compile_rules(rule_set)
        self.windows = windowed_fields(rule_set)

    # -- state ---------------------------------------------------------------------------------

    async def load(self) -> None:
        """Read the rules' states, the pause flag, open cooldown windows and in-flight rows from the store."""
        store = self._store.store
        now = self._clock.now()
        self.states = await self._store.call(store.rule_states()) or {}
        reason = await self._store.call(store.flag(PAUSED_FLAG))
        self.paused, self.pause_reason = reason is not None, reason or ""
        for entry in await self._store.call(store.journal_open_windows(now)) or []:
            self._windows[(entry.rule, entry.target, entry.action)] = entry
        self._to_reconcile = await self._store.call(store.journal_in_flight()) or []
        await self.read_warnings()
        await self._executor.load()

    def mode_of(self, rule: Rule) -> Mode:
        """The user's choice (stored by name), else the file's, else ``[automation] dry_run``."""
        stored = self.states.get(rule.name)
        if stored is not None and stored.mode is not None:
            return Mode(stored.mode)
        if rule.mode is not None:
            return rule.mode
        return Mode.DRY_RUN if self.settings.dry_run else Mode.LIVE

    def enabled(self, rule: Rule) -> bool:
        stored = self.states.get(rule.name)
        return stored is None or stored.enabled

    async def _read_switches(self) -> None:
        """Pick up what other processes set (``rules pause``, ``rules disable NAME`` from the CLI)."""
        store = self._store.store
        states = await self._store.call(store.rule_states())
        if states is not None:
            self.states = states
        try:
            flag = await store.flag(PAUSED_FLAG)
        except StoreError:  # unreadable is not "not paused": keep what was known
            return
        if (flag is not None) != self.paused:
            self.paused, self.pause_reason = flag is not None, flag or ""
            self._bus.publish(AutomationPaused(flag) if flag is not None else AutomationResumed())
        await self.read_warnings()

    async def pause(self, reason: str) -> None:
        self.paused, self.pause_reason = True, reason
        await self._store.call(self._store.store.set_flag(PAUSED_FLAG, reason, self._clock.now()))
        self._bus.publish(AutomationPaused(reason))

    async def resume(self) -> None:
        self.paused, self.pause_reason = False, ""
        await self._store.call(self._store.store.set_flag(PAUSED_FLAG, None, self._clock.now()))
        self._bus.publish(AutomationResumed())

    # -- a tick --------------------------------------------------------------------------------

    async def tick(self) -> TickReport:
        """Reconcile what an earlier process left in flight, then evaluate every enabled rule and act."""
        async with self._lock:
            report = TickReport()
            now = self._clock.now()
            await self._read_switches()
            await self._reconcile(now, report)
            if self.paused:
                return report
            instances = self.facts.instances(now, self.windows)
            account = self.facts.account()
            matched: dict[str, list[Match]] = {}
            for match in self._compiled.evaluate_all(instances, account, now):
                matched.setdefault(match.rule.name, []).append(match)
            for rule in self.rule_set.rules:
                if self.enabled(rule):
                    await self._run_rule(rule, matched.get(rule.name, []), instances, account, now, report)
                if self.paused:
                    break
            self._windows = {key: entry for key, entry in self._windows.items() if entry.closes_at > now}
            return report

    async def _run_rule(self, rule: Rule, matched: Sequence[Match], instances: Sequence[InstanceFacts],
                        account: AccountFacts, now: float, report: TickReport) -> None:
        planned = [p for action in rule.actions for p in self._expand(rule, action, matched, instances, account, now)]
        await self._withdraw_warnings(rule, planned)
        new = [p for p in planned if not self._in_window(p, now)]
        retries = [p for p in planned if self._retry_due(p, now)]
        acting = {p.target for p in new if p.action.kind in MACHINE_CHANGING and p.target != ACCOUNT}
        if not rule.may_act_on_fleet and len(acting) > 2 and len(acting) > self.settings.fleet_share * len(instances):
            message = (f"rule {rule.name} would act on {len(acting)} of {len(instances)} instances at once (more "
                       f"than {self.settings.fleet_share:.0%} of the fleet); nothing was done")
            await self._alert_once((rule.name, "fleet", "guard"), rule.name, "fleet", message, now)
            report.held.append(message)
            new = []
        for plan in retries:
            await self._attempt(plan, self._windows[plan.window_key], now, report)
        for plan in new:
            await self._fire(plan, now, report)
            if self.paused:
                return

    def _expand(self, rule: Rule, action: Action, matched: Sequence[Match],
                instances: Sequence[InstanceFacts], account: AccountFacts, now: float) -> list[Planned]:
        if not matched:
            return []
        first = matched[0]
        if action.kind is ActionKind.STOP_ALL:
            return [Planned(rule, action, facts.key, facts, first, {**account.values, **facts.values})
                    for facts in instances
                    if facts.values.get("status") in _BILLING_STATUSES
                    and (action.where is None
                         or self.evaluate(action.where, facts, account, now).truth is Truth.TRUE)]
        if rule.account_scope and action.kind in (ActionKind.NOTIFY, ActionKind.LABEL):
            return [Planned(rule, action, ACCOUNT, None, first, dict(account.values))]
        if rule.account_scope:
            return [Planned(rule, action, facts.key, facts, first, {**account.values, **facts.values})
                    for facts in instances]
        return [Planned(rule, action, match.facts.key, match.facts, match, {**account.values, **match.facts.values})
                for match in matched if match.facts is not None]

    def _in_window(self, plan: Planned, now: float) -> bool:
        entry = self._windows.get(plan.window_key)
        if entry is not None and entry.closes_at > now:
            return True
        # A row still being reconciled (a migration's replacement starting) holds its target past the cooldown.
        return any((e.rule, e.target, e.action) == plan.window_key for e in self._to_reconcile)

    def _retry_due(self, plan: Planned, now: float) -> bool:
        entry = self._windows.get(plan.window_key)
        return (entry is not None and entry.closes_at > now and entry.state == JOURNAL_FAILED
                and now >= entry.last_attempt_at + self.settings.retry_delay(entry.attempts))

    async def _fire(self, plan: Planned, now: float, report: TickReport) -> None:
        rule, action = plan.rule, plan.action
        if plan.facts is not None and not plan.facts.fresh and action.kind in DESTRUCTIVE_ACTIONS:
            report.held.append(f"{rule.name}: {plan.action_id} {plan.target} held: its provider is down or stale")
            return
        if action.warn_s and not await self._warning_due(plan, now):
            return
        dry = self.mode_of(rule) is Mode.DRY_RUN
        if not dry and action.kind in DESTRUCTIVE_ACTIONS and await self._cap_reached(now):
            return
        entry = JournalEntry(JournalEntry.key_for(rule.name, plan.target, plan.action_id, now), rule.name,
                             plan.target, plan.action_id, now, now + self.settings.cooldown_s,
                             JOURNAL_DRY_RUN if dry else JOURNAL_IN_FLIGHT, 0, now, evidence=plan.evidence,
                             dry_run=dry)
        opened = await self._store.call(self._store.store.journal_open(entry))
        if not opened:
            # Without its journal row an action could be repeated after a crash: not sent.
            report.held.append(f"{rule.name}: {plan.action_id} {plan.target} not sent: the journal could not be written")
            return
        self._windows[plan.window_key] = entry
        await self._store.call(self._store.store.record_rule_fired(rule.name, now))
        self._note_fired(rule.name, now)
        if dry:
            await self._finish(plan, entry, Outcome(True, f"dry-run: would {plan.action_id} {plan.target}"), now,
                               report, state=JOURNAL_DRY_RUN)
            return
        await self._attempt(plan, entry, now, report)

    async def _attempt(self, plan: Planned, entry: JournalEntry, now: float, report: TickReport) -> None:
        # The attempt is on record before anything is sent.
        await self._store.call(self._store.store.journal_update(entry.idem_key, state=JOURNAL_IN_FLIGHT, at=now,
                                                                result=entry.result, attempted=True))
        entry = replace(entry, state=JOURNAL_IN_FLIGHT, attempts=entry.attempts + 1, last_attempt_at=now)
        self._windows[plan.window_key] = entry
        if plan.action.kind is ActionKind.MIGRATE:
            # Waiting for the replacement to run takes minutes: the other rules go on meanwhile.
            self._spawn(f"migrate:{plan.target}", lambda: self._carry_out(plan, entry, now, TickReport()))
            return
        await self._carry_out(plan, entry, now, report)

    async def _carry_out(self, plan: Planned, entry: JournalEntry, now: float, report: TickReport) -> None:
        try:
            outcome = await self._executor.run(f"rule:{plan.rule.name}", plan.rule.name, plan.action, plan.target,
                                               plan.values)
        except Exception as error:  # a bug in one action must not leave the row in flight
            log.exception("rule %s: %s %s failed unexpectedly", plan.rule.name, plan.action_id, plan.target)
            outcome = Outcome(False, f"internal error: {type(error).__name__}")
        if outcome.ok:
            state = JOURNAL_DONE
        elif outcome.permanent or entry.attempts > self.settings.max_retries:
            state = JOURNAL_HELD
        else:
            state = JOURNAL_FAILED
        await self._finish(plan, entry, outcome, now, report, state=state)
        if state == JOURNAL_HELD:
            tries = "try" if entry.attempts == 1 else "tries"
            # The firing's audit row already says it failed: the alert is not a second row.
            await self._alert(plan.rule.name, plan.target,
                              f"rule {plan.rule.name}: {plan.action_id} {plan.target} failed after {entry.attempts} "
                              f"{tries} ({outcome.message}); held until its cooldown ends", audited=False)

    async def _finish(self, plan: Planned, entry: JournalEntry, outcome: Outcome, now: float, report: TickReport, *,
                      state: str) -> None:
        await self._store.call(self._store.store.journal_update(entry.idem_key, state=state, at=now,
                                                                result=outcome.message))
        entry = replace(entry, state=state, result=outcome.message)
        self._windows[plan.window_key] = entry
        report.fired.append(entry)
        dry = state == JOURNAL_DRY_RUN
        detail = f"{plan.evidence} -> {outcome.message}" if plan.evidence else outcome.message
        if entry.attempts > 1:
            detail += f" (try {entry.attempts})"
        outcome_word = "dry-run" if dry else ("ok" if outcome.ok else "held" if state == JOURNAL_HELD else "error")
        await self._store.call(self._store.store.audit(now, f"rule:{plan.rule.name}", f"fired {plan.action_id}",
                                                       plan.target, detail, outcome_word))
        self._bus.publish(RuleFired(plan.rule.name, plan.target, plan.action_id, outcome.message, outcome.ok, dry,
                                    plan.evidence, now))
        if dry:
            log.info("dry-run: rule %s would %s %s (%s)", plan.rule.name, plan.action_id, plan.target, plan.evidence)
            self._bus.publish(RuleNotify(plan.rule.name, plan.target, "alert",
                                         f"dry-run: rule {plan.rule.name} would {plan.action_id} {plan.target}"))

    def _note_fired(self, name: str, now: float) -> None:
        old = self.states.get(name) or RuleState(name)
        self.states[name] = replace(old, last_fired=now, fire_count=old.fire_count + 1)

    async def _cap_reached(self, now: float) -> bool:
        count = await self._store.call(self._store.store.journal_firings_since(
            now - HOUR, [kind.value for kind in DESTRUCTIVE_ACTIONS]))
        if count is None or count < self.settings.destructive_per_hour:
            return count is None  # not knowing the count is no licence to act
        await self.pause(f"{count} destructive actions in the last hour reached the cap of "
                         f"{self.settings.destructive_per_hour}")
        await self._alert("automation", ACCOUNT, f"automation paused itself: {self.pause_reason}; resume it when "
                                                 "you have checked what happened")
        return True

    # -- WARN ----------------------------------------------------------------------------------
    # Warnings live in the store: a restart keeps their due times, and a snooze or cancel made by any process
    # (the app while a daemon runs automation) is read back at the next tick.

    async def read_warnings(self) -> None:
        """Pending warnings and cancels in force, as the store has them (kept as they were if it cannot say)."""
        now = self._clock.now()
        stored = await self._store.call(self._store.store.rule_warnings(now))
        if stored is None:
            return
        self.warnings = {w.warning_id: w for w in stored if w.cancelled_until is None}
        for warning in stored:
            if warning.cancelled_until is not None:
                key = (warning.rule, warning.target, warning.action)
                self._quiet_until[key] = max(self._quiet_until.get(key, 0.0), warning.cancelled_until)

    async def _warning_due(self, plan: Planned, now: float) -> bool:
        """True when ``plan``'s warning has run its course; announces a new warning otherwise."""
        warning_id = json.dumps(plan.window_key)
        warning = self.warnings.get(warning_id)
        if warning is None:
            if self._quiet_until.get(plan.window_key, 0.0) > now:
                return False
            warning = PendingWarning(warning_id, plan.rule.name, plan.target, plan.action_id,
                                     now + (plan.action.warn_s or 0.0), plan.evidence)
            self.warnings[warning_id] = warning
            await self._store.call(self._store.store.save_warning(warning, now))
            self._bus.publish(RuleWarningPending(warning_id, plan.rule.name, plan.target, plan.action_id,
                                                 warning.due_at))
            return False
        if now < warning.due_at:
            return False
        await self._drop_warnings([warning_id])
        return True

    async def _withdraw_warnings(self, rule: Rule, planned: Sequence[Planned]) -> None:
        """A warning whose condition no longer holds is dropped: the action will not run."""
        still = {json.dumps(p.window_key) for p in planned}
        await self._drop_warnings([warning_id for warning_id, warning in self.warnings.items()
                                   if warning.rule == rule.name and warning_id not in still])

    async def _drop_warnings(self, warning_ids: Sequence[str]) -> None:
        if not warning_ids:
            return
        for warning_id in warning_ids:
            self.warnings.pop(warning_id, None)
        await self._store.call(self._store.store.delete_warnings(warning_ids))

    async def snooze(self, warning_id: str, seconds: float) -> PendingWarning | None:
        """Put the warning off by ``seconds`` (from its due time, or from now if that has passed)."""
        warning = self.warnings.get(warning_id) or await self._stored_warning(warning_id)
        if warning is None:
            return None
        now = self._clock.now()
        warning = replace(warning, due_at=max(warning.due_at, now) + max(0.0, seconds))
        self.warnings[warning_id] = warning
        await self._store.call(self._store.store.save_warning(warning, now))
        return warning

    async def cancel(self, warning_id: str) -> bool:
        """Drop the warning; the action does not run, and the rule does not warn again for one cooldown."""
        warning = self.warnings.pop(warning_id, None) or await self._stored_warning(warning_id)
        if warning is None:
            return False
        now = self._clock.now()
        quiet = now + self.settings.cooldown_s
        self._quiet_until[(warning.rule, warning.target, warning.action)] = quiet
        await self._store.call(self._store.store.save_warning(replace(warning, cancelled_until=quiet), now))
        return True

    async def _stored_warning(self, warning_id: str) -> PendingWarning | None:
        """A warning another process announced (a daemon's, seen from the app)."""
        stored = await self._store.call(self._store.store.rule_warnings(self._clock.now())) or []
        return next((w for w in stored if w.warning_id == warning_id and w.cancelled_until is None), None)

    # -- alerts --------------------------------------------------------------------------------

    async def _alert(self, rule: str, target: str, message: str, *, audited: bool = True) -> None:
        if audited:
            await self._store.call(self._store.store.audit(self._clock.now(), f"rule:{rule}", "alert", target,
                                                           message, "alert"))
        self._bus.publish(RuleNotify(rule, target, "alert", message))

    async def _alert_once(self, key: tuple[str, str, str], rule: str, target: str, message: str, now: float) -> None:
        if self._quiet_until.get(key, 0.0) > now:
            return
        self._quiet_until[key] = now + self.settings.cooldown_s
        await self._alert(rule, target, message)

    # -- after a restart -------------------------------------------------------------------------

    async def _reconcile(self, now: float, report: TickReport) -> None:
        """Settle rows an earlier process left in flight, once their provider answers again: done when the
        provider shows the change (made, or accepted and pending), otherwise held. Never sent again."""
        waiting = []
        for entry in self._to_reconcile:
            provider = entry.target.partition(":")[0]
            if entry.target != ACCOUNT and not self.facts.fresh(provider):
                waiting.append(entry)
                continue
            settled_as = await self._reconciled(entry)
            if settled_as is None:
                waiting.append(entry)
                continue
            state, result = settled_as
            await self._store.call(self._store.store.journal_update(entry.idem_key, state=state, at=now,
                                                                    result=result))
            settled = replace(entry, state=state, result=result)
            if settled.closes_at > now:
                self._windows[(entry.rule, entry.target, entry.action)] = settled
            report.fired.append(settled)
            await self._store.call(self._store.store.audit(now, f"rule:{entry.rule}", f"reconciled {entry.action}",
                                                           entry.target, result, "ok" if state == JOURNAL_DONE
                                                           else "alert"))
            if state != JOURNAL_DONE:
                self._bus.publish(RuleNotify(entry.rule, entry.target, "alert", result))
        self._to_reconcile = waiting

    async def _reconciled(self, entry: JournalEntry) -> tuple[str, str] | None:
        """The state and result of an in-flight row, from what the provider shows now; None: ask again after
        the next poll (a migration's replacement still starting)."""
        verb = entry.action.partition(" ")[0]
        if verb in (ActionKind.RELAUNCH.value, ActionKind.MIGRATE.value):
            outcome = await self._executor.resume(f"rule:{entry.rule}", verb, entry.target, entry.last_attempt_at)
            if outcome is None:
                return None
            return (JOURNAL_DONE if outcome.ok else JOURNAL_HELD), outcome.message
        instance = None if entry.target == ACCOUNT else self._live.instance(entry.target)
        status = instance.status if instance is not None else None
        done_when = _DONE_WHEN.get(verb)
        if done_when is not None and done_when(status):
            return JOURNAL_DONE, f"{entry.action} {entry.target}: confirmed after a restart"
        if instance is not None and entry.action in ("stop", "stop_all") and "stop requested" in \
                instance.status_message:
            return JOURNAL_DONE, f"{entry.action} {entry.target}: accepted before a restart; the provider shows it pending"
        if instance is not None and verb == ActionKind.RESTART.value and status is InstanceStatus.RUNNING \
                and (self.facts.running_since(instance) or float("-inf")) >= entry.last_attempt_at:
            return JOURNAL_DONE, f"{entry.action} {entry.target}: running again since the request (after a restart)"
        if verb == ActionKind.LABEL.value and await self._executor.labelled(entry.target):
            return JOURNAL_DONE, f"{entry.action} {entry.target}: the local label is set (after a restart)"
        return JOURNAL_HELD, (f"{entry.action} {entry.target}: in flight when the last run ended and not confirmed "
                              "by the provider; not repeated (held until its cooldown ends)")


_BILLING_STATUSES = frozenset(s.value for s in InstanceStatus if s.is_billing_compute)
_STOPPED = frozenset({InstanceStatus.STOPPED, InstanceStatus.EXITED, InstanceStatus.TERMINATED, None})
_DONE_WHEN: dict[str, Callable[[InstanceStatus | None], bool]] = {
    "stop": lambda status: status in _STOPPED,
    "stop_all": lambda status: status in _STOPPED,
    "destroy": lambda status: status in (InstanceStatus.TERMINATED, None),
    "start": lambda status: status is not None and status.is_billing_compute,
}
"""How a provider's current status confirms an action that was in flight when a process ended."""


def windowed_fields(rule_set: RuleSet) -> dict[str, float]:
    """Field → the longest ``FOR`` window any rule (condition or ``where``) reads it over."""
    found: dict[str, float] = {}

    def visit(condition: Condition) -> None:
        if isinstance(condition, Comparison):
            if condition.window_s is not None:
                found[condition.field] = max(found.get(condition.field, 0.0), condition.window_s)
        elif isinstance(condition, Negation):
            visit(condition.part)
        else:
            for part in condition.parts:
                visit(part)

    for rule in rule_set.rules:
        visit(rule.condition)
        for action in rule.actions:
            if action.where is not None:
                visit(action.where)
    return found


def _evidence(verdict: Verdict) -> str:
    return "; ".join(f"{name}={seen}" for name, seen in verdict.evidence)
