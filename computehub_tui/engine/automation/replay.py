"""Rule replay: the real RuleRunner over a trace on a manual clock, a throwaway store and a recording executor."""

from __future__ import annotations

import asyncio
import bisect
import itertools
import math
import threading
from collections.abc import Callable, Coroutine, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, tzinfo
from typing import Any

from computehub_tui.clock import ManualClock
from computehub_tui.domain.idle import STALE_AFTER_S, idle_readout
from computehub_tui.domain.models import InstanceStatus, MetricSample
from computehub_tui.engine.automation.execute import Executor, Outcome
from computehub_tui.engine.automation.facts import METRIC_FIELDS, FactsBuilder, sample_interval
from computehub_tui.engine.automation.runner import AutomationSettings, RuleRunner, TickReport
from computehub_tui.engine.costs import day_start, month_start
from computehub_tui.engine.events import AutomationPaused, EngineEvent, EventBus
from computehub_tui.engine.live import LiveData
from computehub_tui.engine.metrics import METRIC_HISTORY_SAMPLES
from computehub_tui.engine.safe_store import SafeStore
from computehub_tui.rules.evaluate import GAP_INTERVALS, evaluate, evidence_text
from computehub_tui.rules.model import (
    AccountFacts,
    Action,
    Comparison,
    Condition,
    InstanceFacts,
    Negation,
    Rule,
    RuleSet,
    Series,
    Truth,
    Value,
)
from computehub_tui.rules.trace import Trace, TraceRow
from computehub_tui.store import Store
from computehub_tui.store.rollups import ROLLUP_1H, ROLLUP_1M

RELATIVE_START = 1_789_948_800.0
"""Where a trace in seconds-from-start begins on the replay clock: a UTC midnight, so "today" starts with it."""
FIRST_INTERVAL_S = 60.0
"""An instance's sample interval before it has two samples (the engine's default poll)."""
STATUS_FILL_MIN_S = 60.0
"""Stored history repeats an unchanged status no more often than this: days of 5 s polls would be a million rows."""
_BILLING = frozenset(status.value for status in InstanceStatus if status.is_billing_compute)
PROGRESS_STEPS = 100
"""A followed replay reports its progress this many times (each percent)."""


class ReplayStopped(Exception):
    """``ReplayControl.stop`` was called: the replay ended early and has no result."""


class ReplayControl:
    """Lets another thread follow a replay (``on_progress(done, total)`` ticks, called on the replay's thread)
    and stop it (``stop``: it ends at its next tick with ReplayStopped)."""

    def __init__(self, on_progress: Callable[[int, int], None] | None = None) -> None:
        self._stopped = threading.Event()
        self._on_progress = on_progress
        self._reported_step = -1

    def stop(self) -> None:
        self._stopped.set()

    @property
    def stopped(self) -> bool:
        return self._stopped.is_set()

    def tick_done(self, done: int, total: int) -> None:
        """Raises ReplayStopped once stopped; reports each time another ``1 / PROGRESS_STEPS`` of ``total`` is done."""
        if self._stopped.is_set():
            raise ReplayStopped
        step = done * PROGRESS_STEPS // max(1, total)
        if self._on_progress is not None and step != self._reported_step:
            self._reported_step = step
            self._on_progress(done, total)


@dataclass(frozen=True, slots=True)
class Firing:
    """What one rule would have done to one target at one tick."""

    t: float
    """On the replay clock (epoch seconds); ``ReplayResult.shown_t`` gives it as the trace wrote it."""
    rule: str
    instance: str
    actions: tuple[str, ...]
    values: Mapping[str, Value]
    """The fields the rule's condition reads, as they were at ``t``."""
    evidence: str


@dataclass(frozen=True, slots=True)
class Explained:
    """One rule's condition on the explained instance at one tick: the evaluator's verdict."""

    t: float
    rule: str
    truth: Truth
    detail: str


@dataclass(slots=True)
class ReplayResult:
    firings: list[Firing] = field(default_factory=list)
    held: list[tuple[float, str]] = field(default_factory=list)
    """Guards that held something back (fleet share, the destructive cap pausing automation, stale data)."""
    explained: list[Explained] = field(default_factory=list)
    offset: float = 0.0
    """Added to a relative trace's ``t`` to put it on the replay clock (0 for absolute times)."""

    def shown_t(self, t: float) -> float:
        """``t`` as the trace wrote it: seconds from start, or epoch seconds."""
        return t - self.offset


class _InstanceTrace:
    """One instance's rows with the series and accrued cost the facts read, precomputed once."""

    def __init__(self, rows: Sequence[TraceRow], max_interval_s: float = math.inf) -> None:
        self.rows = list(rows)
        self.max_interval_s = max_interval_s
        """As live: the history's gaps never stretch the sample interval past how often the engine sampled."""
        self.times = [row.t for row in rows]
        # A row with no reading at all is a poll that listed the instance without a sample (a stopped machine,
        # a provider that sent no metrics): as in the engine, it adds a status point and no metric sample.
        self.samples: list[MetricSample] = [row.sample for row in rows if _has_readings(row.sample)]
        self.sample_times = [sample.time for sample in self.samples]
        self.points: dict[str, list[tuple[float, Value]]] = {
            name: [(sample.time, read(sample)) for sample in self.samples] for name, read in METRIC_FIELDS.items()}
        self.status_points: list[tuple[float, Value]] = [(row.t, row.status) for row in rows]
        self.accrued: list[float] = [0.0]
        for earlier, later in itertools.pairwise(rows):
            self.accrued.append(self.accrued[-1] + _rate(earlier) * (later.t - earlier.t) / 3600.0)
        self.gpu_counts = list(itertools.accumulate((len(row.sample.gpu_util) for row in rows), max))
        self.billing_since: list[float | None] = []
        """Per row: when the instance last began billing (None while it does not)."""
        for row in rows:
            previous = self.billing_since[-1] if self.billing_since else None
            self.billing_since.append((previous if previous is not None else row.t) if row.status in _BILLING
                                      else None)
        self._intervals: dict[int, float] = {}
        self._poll_intervals: dict[int, float] = {}

    def interval_at(self, sampled: int) -> float:
        """The sample interval once ``sampled`` samples are in (as the engine's memory holds them), computed once."""
        found = self._intervals.get(sampled)
        if found is None:
            found = self._intervals[sampled] = min(sample_interval(
                self.samples[max(0, sampled - METRIC_HISTORY_SAMPLES):sampled], FIRST_INTERVAL_S), self.max_interval_s)
        return found

    def poll_interval_at(self, seen: int) -> float:
        """The interval between the polls that listed the instance, once ``seen`` rows are in, computed once."""
        found = self._poll_intervals.get(seen)
        if found is None:
            found = self._poll_intervals[seen] = sample_interval([r.sample for r in self.rows[max(0, seen - 21):seen]],
                                                                 FIRST_INTERVAL_S)
        return found

    def sampled(self, now: float) -> int:
        """How many metric samples are at or before ``now``."""
        return bisect.bisect_right(self.sample_times, now)

    def seen(self, now: float) -> int:
        """How many rows are at or before ``now``."""
        return bisect.bisect_right(self.times, now)

    def cost_at(self, now: float) -> float:
        seen = self.seen(now)
        if not seen:
            return 0.0
        last = self.rows[seen - 1]
        return self.accrued[seen - 1] + _rate(last) * (now - last.t) / 3600.0


def _rate(row: TraceRow) -> float:
    """What the row says the instance costs per hour; unknown accrues nothing (never guessed)."""
    return row.cost_per_hour or 0.0


class TraceFacts(FactsBuilder):
    """Facts from a trace instead of the engine's live data: the same fields, read from MetricSample with the
    facts builder's own readers and sample interval, at whatever ``now`` the replay clock stands."""

    def __init__(self, trace: Trace, offset: float, clock: ManualClock, zone: tzinfo | None = UTC, *,
                 reads_idle_for: bool = True, max_interval_s: float = math.inf) -> None:
        # FactsBuilder.__init__ is not called: its sources are the live engine's, and none is read here.
        self._clock = clock
        self._reads_idle_for = reads_idle_for
        """False when no rule reads ``idle_for``: it is then left unknown, as it is the costliest field to build."""
        self._zone = zone
        """Where "today" and "this month" begin (None: this machine's local time, as the engine's costs)."""
        grouped: dict[str, list[TraceRow]] = {}
        for row in trace.rows:
            shifted = replace(row, t=row.t + offset, sample=replace(row.sample, time=row.sample.time + offset))
            grouped.setdefault(row.instance, []).append(shifted)
        self._by_instance = {name: _InstanceTrace(rows, max_interval_s) for name, rows in grouped.items()}
        self._built: tuple[float, list[InstanceFacts]] | None = None
        """The last tick's facts: ``account`` sums them instead of building them again."""

    def fresh(self, provider: str) -> bool:
        # The runner asks only to reconcile rows an earlier process left in flight; a replay's journal has none.
        return True

    def account(self) -> AccountFacts:
        now = self._clock.now()
        instances = self._built[1] if self._built is not None and self._built[0] == now else self.instances(now, {})
        day, month = day_start(now, self._zone), month_start(now, self._zone)
        spend_today = sum(trace.cost_at(now) - trace.cost_at(day) for trace in self._by_instance.values())
        spend_month = sum(trace.cost_at(now) - trace.cost_at(month) for trace in self._by_instance.values())
        burn = [f.values.get("cost_per_hour") for f in instances if f.values.get("status") in _BILLING]
        return AccountFacts({
            "spend_today": spend_today,
            "spend_month": spend_month,
            "burn_rate": sum(rate for rate in burn if isinstance(rate, float)),
            "running_count": float(sum(1 for f in instances if f.values.get("status") == "running")),
        }, fresh=all(f.fresh for f in instances))

    def instances(self, now: float, windows: Mapping[str, float] | None = None, *,
                  private: bool = False) -> list[InstanceFacts]:
        day = day_start(now, self._zone)
        project_spend: dict[str | None, float] = {}
        for trace in self._by_instance.values():
            seen = trace.seen(now)
            if seen:
                project = trace.rows[seen - 1].project
                project_spend[project] = project_spend.get(project, 0.0) + trace.cost_at(now) - trace.cost_at(day)
        facts = []
        for name, trace in self._by_instance.items():
            built = self._instance_facts(name, trace, now, windows, project_spend)
            if built is not None:
                facts.append(built)
        self._built = (now, facts)
        return facts

    def _instance_facts(self, name: str, trace: _InstanceTrace, now: float, windows: Mapping[str, float] | None,
                        project_spend: Mapping[str | None, float]) -> InstanceFacts | None:
        seen = trace.seen(now)
        if not seen or trace.rows[seen - 1].status == InstanceStatus.TERMINATED.value:
            return None
        row = trace.rows[seen - 1]
        sampled = trace.sampled(now)
        # As many samples as the engine keeps in memory per instance: windows and idle_for see what it sees.
        first = max(0, sampled - METRIC_HISTORY_SAMPLES)
        interval = trace.interval_at(sampled)
        poll_interval = trace.poll_interval_at(seen)
        # The live engine forgets a sample after STALE_AFTER_S at its poll; a trace may sample more sparsely,
        # and the issue counts only gaps over three intervals as missing data.
        newest = trace.samples[sampled - 1] if sampled else None
        latest = newest if newest is not None and now - newest.time <= max(STALE_AFTER_S,
                                                                           GAP_INTERVALS * interval) else None
        billing_since = trace.billing_since[seen - 1]
        values: dict[str, Value] = {
            "status": row.status,
            "provider": row.provider,
            "gpu": row.gpu or None,
            "gpu_count": float(trace.gpu_counts[seen - 1]) if trace.gpu_counts[seen - 1] else None,
            "label": row.label or None,
            "project": row.project,
            "pricing": row.pricing,
            "cost_per_hour": row.cost_per_hour,
            "cost_so_far": trace.cost_at(now),
            "uptime": None if billing_since is None else now - billing_since,
            "idle_for": (_idle_for(trace.samples[first:sampled], now, trace.gpu_counts[seen - 1])
                         if self._reads_idle_for else None),
            "price_change_24h": None,
            "project_spend_today": project_spend.get(row.project, 0.0),
        }
        for field_name, read in METRIC_FIELDS.items():
            values[field_name] = read(latest) if latest is not None else None
        series = {}
        for field_name, points in trace.points.items():
            if windows is None or field_name in windows:
                series[field_name] = _window(points, trace.sample_times, first, sampled, now, windows, field_name,
                                             interval)
        if windows is None or "status" in windows:
            # Live, a status counts from when the store first recorded it (any process): the whole trace here.
            series["status"] = _window(trace.status_points, trace.times, 0, seen, now, windows, "status", poll_interval)
        fresh = now - row.t <= max(STALE_AFTER_S, GAP_INTERVALS * poll_interval)
        return InstanceFacts(name, values, series, fresh=fresh)


def _window(points: Sequence[tuple[float, Value]], times: Sequence[float], first: int, seen: int, now: float,
            windows: Mapping[str, float] | None, name: str, interval: float) -> Series:
    """The points a ``FOR`` window can need, as the facts builder keeps them (its start less four intervals)."""
    since = float("-inf") if windows is None else now - windows[name] - 4 * interval
    return Series(tuple(points[bisect.bisect_left(times, since, lo=first, hi=seen):seen]), interval)


def _has_readings(sample: MetricSample) -> bool:
    return bool(sample.gpu_util or sample.vram_used_gb or sample.vram_total_gb or sample.gpu_temp_c)


def _idle_for(history: Sequence[MetricSample], now: float, gpu_count: int) -> float | None:
    readout = idle_readout(history, now, gpu_count)
    if readout.state == "busy":
        return 0.0
    return readout.idle_for_s if readout.state == "idle" else None


@dataclass(frozen=True, slots=True)
class _Sent:
    rule: str
    target: str
    values: Mapping[str, Value]


class RecordingExecutor(Executor):
    """Carries nothing out: every action the runner sends is recorded and reported done."""

    def __init__(self) -> None:
        # Executor.__init__ is not called: nothing of the engine's is needed to record.
        self.launches = {}
        self.sent: list[_Sent] = []

    async def load(self) -> None:
        return None

    async def run(self, actor: str, rule: str, action: Action, target: str, values: Mapping[str, Value]) -> Outcome:
        self.sent.append(_Sent(rule, target, dict(values)))
        return Outcome(True, f"replay: {action.kind.value} {target} not executed")


def as_live(rule_set: RuleSet) -> RuleSet:
    """Every rule as a live one: replay shows what each would do, whatever mode the file or the store gives it."""
    return replace(rule_set, rules=tuple(replace(rule, mode=None) for rule in rule_set.rules))


async def replay(rule_set: RuleSet, trace: Trace, settings: AutomationSettings | None = None, *,
                 explain: str | None = None, control: ReplayControl | None = None,
                 zone: tzinfo | None = UTC, max_interval_s: float = math.inf) -> ReplayResult:
    """Run ``rule_set`` over ``trace`` through the live runner; nothing is executed and no alert leaves.
    ``control`` follows its progress and may stop it (ReplayStopped). ``zone`` is where days begin for the money
    fields of a trace with real times (the user's, as live; None: local time); one in seconds from its start
    begins at a UTC midnight and keeps UTC days. ``max_interval_s`` caps each instance's sample interval as live
    caps it (stored history: how often the engine sampled; a trace file has no such bound)."""
    offset = 0.0 if trace.absolute else RELATIVE_START
    result = ReplayResult(offset=offset)
    clock = ManualClock(trace.rows[0].t + offset)
    bus = EventBus()
    bus.subscribe(lambda event: _note_pause(event, clock, result))
    store = await Store.open(":memory:")
    try:
        reads = {name for rule in rule_set.rules for name in _fields_read(rule)}
        facts = TraceFacts(trace, offset, clock, zone if trace.absolute else UTC, reads_idle_for="idle_for" in reads,
                           max_interval_s=max_interval_s)
        executor = RecordingExecutor()
        spawned: list[asyncio.Task[None]] = []
        runner = RuleRunner(store=SafeStore(store, clock, bus), bus=bus, clock=clock, live=LiveData({}),
                            facts=facts, executor=executor,
                            settings=replace(settings or AutomationSettings(), dry_run=False, enabled=True),
                            spawn=_spawner(spawned))
        runner.rule_set = as_live(rule_set)
        await runner.load()
        shown: set[str] = set()
        times = trace.times
        for done, t in enumerate(times, 1):
            clock.set_time(t + offset)
            report = await runner.tick()
            await asyncio.gather(*spawned)
            spawned.clear()
            _collect(runner, executor, report, clock.now(), result, shown)
            if explain is not None:
                _explain(runner, facts, explain, clock.now(), result)
            if control is not None:
                control.tick_done(done, len(times))
    finally:
        await store.close()
    return result


def _spawner(spawned: list[asyncio.Task[None]]) -> Callable[[str, Callable[[], Coroutine[Any, Any, None]]], None]:
    def spawn(name: str, job: Callable[[], Coroutine[Any, Any, None]]) -> None:
        spawned.append(asyncio.create_task(job(), name=f"replay:{name}"))
    return spawn


def _note_pause(event: EngineEvent, clock: ManualClock, result: ReplayResult) -> None:
    if isinstance(event, AutomationPaused):
        result.held.append((clock.now(), f"automation paused itself: {event.reason}"))


def _collect(runner: RuleRunner, executor: RecordingExecutor, report: TickReport, now: float, result: ReplayResult,
             shown: set[str]) -> None:
    rules = {rule.name: rule for rule in runner.rule_set.rules}
    values = {(sent.rule, sent.target): sent.values for sent in executor.sent}
    executor.sent.clear()
    grouped: dict[tuple[str, str], list[str]] = {}
    evidence: dict[tuple[str, str], str] = {}
    for entry in report.fired:
        grouped.setdefault((entry.rule, entry.target), []).append(entry.action)
        evidence.setdefault((entry.rule, entry.target), entry.evidence)
    for (rule, target), actions in grouped.items():
        read = _fields_read(rules[rule]) if rule in rules else ()
        seen = values.get((rule, target), {})
        result.firings.append(Firing(now, rule, target, tuple(actions),
                                     {name: seen.get(name) for name in read}, evidence[(rule, target)]))
    held_now = set(report.held)
    for message in report.held:
        if message not in shown:
            result.held.append((now, message))
    shown.clear()
    shown.update(held_now)


def _explain(runner: RuleRunner, facts: TraceFacts, instance: str, now: float, result: ReplayResult) -> None:
    account = facts.account()
    target = next((f for f in facts.instances(now, runner.windows) if f.key == instance), None)
    for rule in runner.rule_set.rules:
        if target is None and not rule.account_scope:
            result.explained.append(Explained(now, rule.name, Truth.UNKNOWN, f"{instance} has no data yet"))
            continue
        verdict = evaluate(rule.condition, None if rule.account_scope else target, account, now)
        detail = evidence_text(verdict) if verdict.truth is Truth.TRUE else (verdict.reason or evidence_text(verdict))
        result.explained.append(Explained(now, rule.name, verdict.truth, detail))


def _fields_read(rule: Rule) -> tuple[str, ...]:
    found: list[str] = []

    def visit(condition: Condition) -> None:
        if isinstance(condition, Comparison):
            if condition.field not in found:
                found.append(condition.field)
        elif isinstance(condition, Negation):
            visit(condition.part)
        else:
            for part in condition.parts:
                visit(part)

    visit(rule.condition)
    for action in rule.actions:
        if action.where is not None:
            visit(action.where)
    return tuple(found)


async def stored_trace(store: Store, since: float, now: float, poll_s: float = FIRST_INTERVAL_S) -> Trace | None:
    """The fleet's stored history since ``since`` as a trace (raw samples, else minute, else hour rollups, and
    every status change); None when nothing was stored in that time. The store keeps status *changes*: where
    no sample was taken (a stopped or provisioning machine) the status is repeated every ``poll_s`` (at least a
    minute), as the polls that found it unchanged saw it, so ``status == "stopped" FOR 2h`` can hold."""
    rows: list[TraceRow] = []
    for instance in await store.load_instances():
        changes = await store.status_changes(instance.key, since)
        samples = await _stored_samples(store, instance.key, since)
        events = sorted({s.time for s in samples} | {c.at for c in changes if c.at >= since})
        times = sorted({*events, *_polls_between(events, now, max(poll_s, STATUS_FILL_MIN_S))})
        by_time = {s.time: s for s in samples}
        change_times = [c.at for c in changes]
        for at in times:
            if at > now:
                break
            index = bisect.bisect_right(change_times, at) - 1
            status = changes[index].status.value if index >= 0 else instance.status.value
            billing = status in _BILLING
            rows.append(TraceRow(0, at, instance.key, status, by_time.get(at, MetricSample(at)),
                                 instance.price_hour if billing else None, instance.provider, instance.gpu,
                                 instance.label, None, None))
    if not rows:
        return None
    rows.sort(key=lambda row: row.t)
    return Trace(tuple(rows), absolute=True)


def _polls_between(events: Sequence[float], now: float, every_s: float) -> list[float]:
    """Times every ``every_s`` in each stretch of more than ``every_s`` between events (and after the last)."""
    filled: list[float] = []
    for start, end in itertools.pairwise([*events, now]):
        filled.extend(start + every_s * step for step in range(1, math.ceil((end - start) / every_s)))
    return filled


async def _stored_samples(store: Store, key: str, since: float) -> list[MetricSample]:
    """Raw samples, led by minute rollups before the first raw one and hour rollups before the first minute."""
    samples = await store.metric_history(key, since)
    first = samples[0].time if samples else math.inf
    minutes = [s for s in await store.metric_rollups(key, since, ROLLUP_1M) if s.time < first]
    first = minutes[0].time if minutes else first
    hours = [s for s in await store.metric_rollups(key, since, ROLLUP_1H) if s.time < first]
    return [*hours, *minutes, *samples]

