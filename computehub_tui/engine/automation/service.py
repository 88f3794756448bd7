"""``hub.rules``: the automation service the UI, the CLI and the daemon call (load, list, switch, preview, pause,
warnings, lease, firings), and the supervised loop that evaluates rules after each poll while it holds the lease."""

from __future__ import annotations

import asyncio
import contextlib
import statistics
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from computehub_tui.clock import Clock
from computehub_tui.config.editing import write_atomically
from computehub_tui.domain.history import AuditEntry
from computehub_tui.domain.models import Capabilities
from computehub_tui.engine.actions import ActionService
from computehub_tui.engine.automation.execute import Executor
from computehub_tui.engine.automation.facts import FactsBuilder, FactSources, price_changes
from computehub_tui.engine.automation.labels import LocalLabels
from computehub_tui.engine.automation.lease import LeaseKeeper
from computehub_tui.engine.automation.runner import (
    ACCOUNT,
    RuleRunner,
    Spawn,
    TickReport,
    windowed_fields,
)
from computehub_tui.engine.automation.settings import AutomationSettings
from computehub_tui.engine.costs import CostService, day_start
from computehub_tui.engine.events import EngineEvent, EventBus, InstancesUpdated, MetricsSampled
from computehub_tui.engine.health import HealthBook
from computehub_tui.engine.live import LiveData
from computehub_tui.engine.metrics import MetricsService
from computehub_tui.engine.polling import PollingService
from computehub_tui.engine.projects import ProjectService
from computehub_tui.engine.safe_store import SafeStore
from computehub_tui.engine.status_history import StatusHistoryService
from computehub_tui.rules.model import Mode, Rule, RuleSet, Truth
from computehub_tui.rules.parser import parse_rules
from computehub_tui.store.automation import JournalEntry, PendingWarning

STORE_FACTS_EVERY_S = 60.0
"""Price changes and project spend (read from the store) are refreshed at most this often."""
DAY = 86_400.0
FINISH_TICK_S = 10.0
"""How long stopping waits for a tick under way; an action slower than this stays in flight and is reconciled
against the provider at the next start."""
HISTORY_MARGIN_S = 15 * 60.0
"""Samples read back before the longest window: room for the gaps that precede its first sample."""


@dataclass(frozen=True, slots=True)
class LoadResult:
    """What loading rule text did: ``ok`` when it replaced the rule set; ``errors`` rendered with carets."""

    ok: bool
    rule_count: int
    errors: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class RuleListing:
    """One rule as the Rules pane and ``rules list`` show it."""

    name: str
    enabled: bool
    mode: Mode
    last_fired: float | None
    fire_count: int
    text: str


@dataclass(frozen=True, slots=True)
class PreviewLine:
    """One instance (or ``account``) against one rule now: its truth, the values seen, and why."""

    target: str
    truth: Truth
    evidence: tuple[tuple[str, str], ...]
    reason: str


@dataclass(frozen=True, slots=True)
class RulePreview:
    rule: str
    lines: tuple[PreviewLine, ...]

    @property
    def matching(self) -> tuple[PreviewLine, ...]:
        return tuple(line for line in self.lines if line.truth is Truth.TRUE)


class RulesService:
    """The automation service. Reads are in memory and quick; the async methods write the store.

    Rule states (enabled, mode) are kept by rule name, so they survive edits of the file that keep the name.
    """

    def __init__(self, *, runner: RuleRunner, lease: LeaseKeeper, bus: EventBus, clock: Clock, store: SafeStore,
                 live: LiveData, costs: CostService, metrics: MetricsService, labels: LocalLabels) -> None:
        self.runner = runner
        self.lease = lease
        self._bus = bus
        self._clock = clock
        self._store = store
        self._live = live
        self._costs = costs
        self._metrics = metrics
        self._labels = labels
        self.errors: tuple[str, ...] = ()
        """The errors of the last text that failed to load (the rule set before it stays in force)."""
        self._wanted = asyncio.Event()
        self._store_facts_at = float("-inf")
        self._loaded = False
        bus.subscribe(self._on_event)

    # -- rule text -------------------------------------------------------------------------------

    @property
    def rule_set(self) -> RuleSet:
        return self.runner.rule_set

    def parse(self, text: str) -> RuleSet:
        return parse_rules(text)

    def load_text(self, text: str) -> LoadResult:
        """Use the rules in ``text``; with any error, keep the rule set in force and report every error."""
        return self.use(self.parse(text))

    def use(self, rule_set: RuleSet) -> LoadResult:
        """Use ``rule_set`` if it has no errors; otherwise keep the one in force and report its errors."""
        if not rule_set.ok:
            self.errors = tuple(error.render() for error in rule_set.errors)
            return LoadResult(False, len(self.runner.rule_set.rules), self.errors)
        self.runner.rule_set = rule_set
        self.errors = ()
        self._wanted.set()
        return LoadResult(True, len(rule_set.rules))

    def load_file(self, path: Path | None = None) -> LoadResult:
        """Load ``path`` (default: ``[automation] rules_file``); a missing default file means no rules."""
        path = path or self.runner.settings.rules_path
        if path is None:
            return LoadResult(True, 0)
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            if path == self.runner.settings.rules_path:
                return self.use(RuleSet())
            self.errors = (f"{path}: no such file",)
            return LoadResult(False, len(self.runner.rule_set.rules), self.errors)
        except (OSError, UnicodeDecodeError) as error:
            self.errors = (f"{path}: cannot read it ({error})",)
            return LoadResult(False, len(self.runner.rule_set.rules), self.errors)
        return self.load_text(text)

    def save(self, text: str, path: Path | None = None, *, parsed: RuleSet | None = None) -> LoadResult:
        """Write ``text`` as the rule file (atomically) and use it, only if it has no errors: an invalid text is
        never saved over the last good file. ``parsed`` is ``text`` already parsed by the caller. Raises OSError
        when the file cannot be written."""
        rule_set = parsed or self.parse(text)
        if not rule_set.ok:
            return LoadResult(False, len(self.runner.rule_set.rules), tuple(e.render() for e in rule_set.errors))
        target = path or self.runner.settings.rules_path
        if target is None:
            raise OSError("no rule file is configured ([automation] rules_file)")
        write_atomically(target, text)
        return self.use(rule_set)

    def file_text(self, path: Path | None = None) -> str | None:
        """The rule file's text; None when it does not exist yet. Raises OSError / UnicodeDecodeError."""
        target = path or self.runner.settings.rules_path
        if target is None:
            return None
        try:
            return target.read_text(encoding="utf-8")
        except FileNotFoundError:
            return None

    def without_rule(self, text: str, name: str) -> str | None:
        """``text`` with rule ``name`` (its lines, continuation lines included) taken out; None if it has none."""
        rule = next((r for r in self.parse(text).rules if r.name == name), None)
        if rule is None:
            return None
        lines = text.splitlines(keepends=True)
        start = rule.position.line - 1
        return "".join(lines[:start] + lines[start + len(rule.text.splitlines()):])

    # -- rule states ----------------------------------------------------------------------------

    def listing(self) -> list[RuleListing]:
        """Every rule in force, in file order, with its switches and firing record."""
        runner = self.runner
        return [RuleListing(rule.name, runner.enabled(rule), runner.mode_of(rule),
                            *(_fired(runner, rule)), rule.text) for rule in runner.rule_set.rules]

    async def set_enabled(self, name: str, enabled: bool) -> None:
        """Enable or disable rule ``name`` (kept in the store by name)."""
        await self._store.store.set_rule_switches(name, enabled=enabled)
        await self._reload_states()

    async def set_mode(self, name: str, mode: Mode | None) -> None:
        """Run rule ``name`` live or dry-run; None goes back to the file's or the configured default."""
        await self._store.store.set_rule_switches(name, mode=None if mode is None else mode.value,
                                                  clear_mode=mode is None)
        await self._reload_states()

    async def _reload_states(self) -> None:
        self.runner.states = await self._store.store.rule_states()

    # -- preview --------------------------------------------------------------------------------

    def preview(self, source: str | RuleSet | None = None) -> list[RulePreview]:
        """Per rule of ``source`` (text, a rule set, or the rules in force), which instances match now and why,
        with the values seen. Nothing is fired. Text with errors previews the rules that parsed."""
        rule_set = self.parse(source) if isinstance(source, str) else source or self.runner.rule_set
        now = self._clock.now()
        facts = self.runner.facts
        instances, account = facts.instances(now, windowed_fields(rule_set), private=True), facts.account()
        previews = []
        for rule in rule_set.rules:
            if rule.account_scope:
                verdict = self.runner.evaluate(rule.condition, None, account, now)
                lines = [PreviewLine(ACCOUNT, verdict.truth, verdict.evidence, verdict.reason)]
            else:
                lines = []
                for instance in instances:
                    verdict = self.runner.evaluate(rule.condition, instance, account, now)
                    lines.append(PreviewLine(instance.key, verdict.truth, verdict.evidence, verdict.reason))
            previews.append(RulePreview(rule.name, tuple(lines)))
        return previews

    # -- pause, warnings, lease, history ----------------------------------------------------------

    @property
    def paused(self) -> bool:
        return self.runner.paused

    @property
    def pause_reason(self) -> str:
        return self.runner.pause_reason

    async def pause(self, reason: str = "paused by the user") -> None:
        """Stop all rule actions (every process: kept in the store) until ``resume``."""
        await self.runner.pause(reason)

    async def resume(self) -> None:
        await self.runner.resume()
        self._wanted.set()

    def pending_warnings(self) -> list[PendingWarning]:
        return sorted(self.runner.warnings.values(), key=lambda warning: warning.due_at)

    async def snooze(self, warning_id: str, seconds: float) -> PendingWarning | None:
        """Put warning ``warning_id`` off by ``seconds`` (kept in the store); None if it is no longer pending."""
        return await self.runner.snooze(warning_id, seconds)

    async def cancel(self, warning_id: str) -> bool:
        """Drop warning ``warning_id``: its action does not run (nor warns again) for one cooldown (kept in the
        store, so a restart or the process running automation keeps it)."""
        return await self.runner.cancel(warning_id)

    @property
    def lease_holder(self) -> str | None:
        """Who runs automation (``daemon pid 4242 on box``), as of the last claim or read; None: nobody."""
        return self.lease.holder_description

    @property
    def holds_lease(self) -> bool:
        return self.lease.held

    async def recent_firings(self, limit: int = 100) -> list[JournalEntry]:
        """The journal, newest first: each firing's rule, target, action, state, attempts, evidence, result."""
        return await self._store.call(self._store.store.journal_recent(limit)) or []

    async def audit(self, limit: int = 100) -> list[AuditEntry]:
        """Audit entries written by rules, newest first."""
        return await self._store.call(self._store.store.audit_log(limit, actor="rule")) or []

    # -- running --------------------------------------------------------------------------------

    async def start(self) -> None:
        """Read the store's state and the rule file, and the metric history the rules' windows need (once)."""
        if not self._loaded:
            self._loaded = True
            await self.runner.load()
            self.load_file()
            await self._seed_history()

    async def _seed_history(self) -> None:
        """After a restart, fill each known instance's empty metric history from the store, so a ``FOR`` window
        does not start over (samples a poll has recorded since win: the history only takes newer ones)."""
        longest = max(self.runner.windows.values(), default=0.0)
        if not longest:
            return
        since = self._clock.now() - longest - HISTORY_MARGIN_S
        for instance in self._live.instances:
            if self._metrics.history(instance.key):
                continue
            for sample in await self._store.call(self._store.store.metric_history(instance.key, since)) or []:
                self._metrics.record(instance.key, sample)

    async def tick(self) -> TickReport:
        """Evaluate now (if this process holds the lease); returns what was done."""
        if not self.lease.held:
            return TickReport()
        await self._refresh_store_facts()
        return await self.runner.tick()

    async def run(self) -> None:
        """The supervised job: claim or renew the lease every few seconds while there are rules, and evaluate
        after each poll (coalesced) while holding it."""
        await self.start()
        renew_s = self.runner.settings.lease_renew_s
        while True:
            if self.runner.rule_set.rules and self.runner.settings.enabled:
                await self.lease.claim()
            else:
                await self.lease.release()
                await self.lease.refresh()
            if not self.lease.held:
                # The app shows the warnings and labels of whoever runs the rules (a daemon).
                await self.runner.read_warnings()
                await self._labels.load()
            if self._wanted.is_set():
                self._wanted.clear()
                await self._tick_to_the_end()
            await self._wait(renew_s)

    async def _tick_to_the_end(self) -> None:
        """A tick that has started finishes even when the loop is stopped (SIGTERM, quitting the app), within
        ``FINISH_TICK_S``: cancelled half-way, an action the provider took would stay in flight in the journal."""
        tick = asyncio.ensure_future(self.tick())
        try:
            await asyncio.shield(tick)
        except asyncio.CancelledError:
            with contextlib.suppress(Exception):  # the tick's own failure is not the stop's business
                await asyncio.wait_for(tick, FINISH_TICK_S)
            raise

    async def aclose(self) -> None:
        """Give the lease up (on exit, SIGTERM)."""
        await self.lease.release()

    async def _wait(self, seconds: float) -> None:
        sleeping = asyncio.ensure_future(self._clock.sleep(seconds))
        wanted = asyncio.ensure_future(self._wanted.wait())
        try:
            await asyncio.wait((sleeping, wanted), return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (sleeping, wanted):
                task.cancel()
            # asyncio.wait, not ``suppress(CancelledError)``: that would also swallow this task's own cancellation
            # arriving meanwhile, and the loop would go on renewing the lease after SIGTERM.
            await asyncio.wait((sleeping, wanted))

    def _on_event(self, event: EngineEvent) -> None:
        if isinstance(event, InstancesUpdated | MetricsSampled):
            self._wanted.set()

    async def _refresh_store_facts(self) -> None:
        now = self._clock.now()
        if now - self._store_facts_at < STORE_FACTS_EVERY_S:
            return
        self._store_facts_at = now
        facts: FactsBuilder = self.runner.facts
        spend = await self._costs.spend_by(["project"], day_start(now, self._costs.zone))
        facts.set_project_spend({line.keys[0]: line.usd for line in spend})
        day_ago: dict[tuple[str, str], float] = {}
        for provider, gpu in sorted({(i.provider, i.gpu) for i in self._live.instances}):
            stats = await self._store.call(self._store.store.price_history(gpu, now - DAY - 2 * 3600,
                                                                           provider=provider)) or []
            old = [s.median_price / s.gpu_count for s in stats if s.at <= now - DAY + 2 * 3600 and s.gpu_count > 0]
            if old:
                day_ago[(provider, gpu)] = statistics.median(old)
        facts.set_price_changes(price_changes(self._live.offers, day_ago))


def _fired(runner: RuleRunner, rule: Rule) -> tuple[float | None, int]:
    state = runner.states.get(rule.name)
    return (state.last_fired, state.fire_count) if state is not None else (None, 0)


@dataclass(frozen=True, slots=True)
class AutomationParts:
    """The engine parts automation reads and acts through (the Hub hands them over)."""

    store: SafeStore
    bus: EventBus
    clock: Clock
    live: LiveData
    health: HealthBook
    metrics: MetricsService
    costs: CostService
    projects: ProjectService
    actions: ActionService
    polling: PollingService
    statuses: StatusHistoryService
    labels: LocalLabels
    capabilities: Callable[[str], Capabilities]
    spawn: Spawn
    sample_interval_cap_s: float
    """The longest a sample interval can be: how often the engine itself samples (polls, or SSH when on)."""


def build_rules_service(parts: AutomationParts, settings: AutomationSettings) -> RulesService:
    """Assemble ``hub.rules``: facts, executor, runner, lease and service over the engine's parts."""
    interval = parts.polling.settings.instances_interval_s
    executor = Executor(live=parts.live, actions=parts.actions, capabilities=parts.capabilities, store=parts.store,
                        bus=parts.bus, clock=parts.clock, poll=parts.polling.refresh_instances,
                        poll_interval_s=interval, labels=parts.labels)
    facts = FactsBuilder(FactSources(parts.live, parts.health, parts.metrics, parts.costs, parts.projects,
                                     parts.statuses, parts.polling.is_stale, interval, executor.pricing_of,
                                     parts.sample_interval_cap_s))
    runner = RuleRunner(store=parts.store, bus=parts.bus, clock=parts.clock, live=parts.live, facts=facts,
                        executor=executor, settings=settings, spawn=parts.spawn)
    lease = LeaseKeeper(parts.store, parts.bus, parts.clock, role=settings.role, ttl_s=settings.lease_ttl_s)
    return RulesService(runner=runner, lease=lease, bus=parts.bus, clock=parts.clock, store=parts.store,
                        live=parts.live, costs=parts.costs, metrics=parts.metrics, labels=parts.labels)
