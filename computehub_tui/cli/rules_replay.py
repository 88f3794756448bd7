"""``rules replay``: what a rule file would have done over a trace file or the fleet's stored history."""

from __future__ import annotations

import argparse
import json
import math
import sys
from datetime import tzinfo
from pathlib import Path

from computehub_tui.cli.exits import EXIT_OK, EXIT_USAGE, UsageError
from computehub_tui.cli.output import note, out
from computehub_tui.cli.rules import print_errors, read_text
from computehub_tui.domain.models import iso_utc
from computehub_tui.domain.text import clean_text
from computehub_tui.engine.automation.replay import (
    Explained,
    Firing,
    ReplayControl,
    ReplayResult,
    replay,
    stored_trace,
)
from computehub_tui.engine.automation.runner import AutomationSettings
from computehub_tui.rules.messages import format_duration_words
from computehub_tui.rules.model import RuleSet
from computehub_tui.rules.parser import parse_rules
from computehub_tui.rules.trace import Trace, TraceError, parse_trace
from computehub_tui.wiring import Session

MAX_TRACE_BYTES = 100_000_000
"""A week of one-minute rows for a large fleet fits well inside this."""
PROGRESS_FROM_TICKS = 5_000
"""A replay this long shows its progress on a terminal's stderr (seconds of waiting, otherwise silent)."""


def load_rules(path: Path) -> RuleSet | None:
    """The parsed rule file, or None after printing every error as ``rules check`` does."""
    rule_set = parse_rules(read_text(path))
    if not rule_set.ok:
        print_errors(path, rule_set)
        return None
    return rule_set


def load_trace(path: Path) -> Trace:
    """The trace at ``path``; a malformed one is a UsageError naming ``file:line``."""
    try:
        return parse_trace(read_text(path, MAX_TRACE_BYTES, "trace file"))
    except TraceError as error:
        raise UsageError(error.render(str(path))) from None


async def replay_trace_command(args: argparse.Namespace, settings: AutomationSettings, zone: tzinfo | None) -> int:
    """``rules replay FILE --trace TRACE``: no store, no provider; only the rule file, the trace and where the
    user's days begin (``zone``; None: local time)."""
    rule_set = load_rules(args.file)
    if rule_set is None:
        return EXIT_USAGE
    trace = load_trace(args.trace)
    return await _replay_and_print(args, rule_set, trace, settings, zone)


async def replay_history_command(args: argparse.Namespace, session: Session) -> int:
    """``rules replay FILE --since 7d``: the fleet's own stored metrics and status changes."""
    rule_set = load_rules(args.file)
    if rule_set is None:
        return EXIT_USAGE
    now = session.hub.clock.now()
    trace = await stored_trace(session.hub.store, now - args.since, now, session.hub.poll.instances_interval_s)
    if trace is None:
        note(f"no stored history in the last {format_duration_words(args.since)}; nothing to replay")
        return EXIT_OK
    return await _replay_and_print(args, rule_set, trace, session.hub.rules.runner.settings, session.hub.costs.zone,
                                   session.hub.sample_interval_cap_s)


async def _replay_and_print(args: argparse.Namespace, rule_set: RuleSet, trace: Trace,
                            settings: AutomationSettings, zone: tzinfo | None,
                            max_interval_s: float = math.inf) -> int:
    explain = clean_text(args.explain, 64) if args.explain else None
    if explain is not None and args.json:
        raise UsageError("--explain prints a verdict per tick as text; use it without --json")
    if explain is not None and explain not in trace.instances:
        raise UsageError(f"--explain {explain!r}: no such instance in the trace (instances: "
                         f"{', '.join(trace.instances[:10])})")
    result = await replay(rule_set, trace, settings, explain=explain, control=_terminal_progress(len(trace.times)),
                          zone=zone, max_interval_s=max_interval_s)
    if args.json:
        for firing in result.firings:
            out(json.dumps(firing_json(result, firing), ensure_ascii=True, allow_nan=False))
        for at, message in result.held:
            note(f"{shown_time(result, at, trace.absolute)} held: {message}")
        return EXIT_OK
    for line in human_lines(result, trace.absolute, explain):
        out(line)
    note(f"{len(result.firings)} firing{'s' if len(result.firings) != 1 else ''} over {len(trace.times)} ticks "
         f"(replay: nothing was executed, no alert was sent)")
    return EXIT_OK


def _terminal_progress(ticks: int) -> ReplayControl | None:
    """A percentage on the terminal's stderr, erased when done; None when stderr is not a terminal."""
    if ticks < PROGRESS_FROM_TICKS or not sys.stderr.isatty():
        return None

    def show(done: int, total: int) -> None:
        sys.stderr.write("\r\x1b[K" if done == total else f"\rreplaying… {done * 100 // total} % of {total:,} ticks")
        sys.stderr.flush()

    return ReplayControl(show)


def firing_json(result: ReplayResult, firing: Firing) -> dict[str, object]:
    """One firing as ``--json`` prints it: ``t`` in the trace's own form (seconds from start, or ISO-8601)."""
    t = result.shown_t(firing.t)
    return {"t": iso_utc(firing.t) if result.offset == 0.0 else _number(t), "rule": firing.rule,
            "instance": firing.instance, "actions": list(firing.actions),
            "values": dict(firing.values)}


def human_lines(result: ReplayResult, absolute: bool, explain: str | None) -> list[str]:
    """Firings, held guards and (with ``explain``) verdicts, in time order."""
    timed: list[tuple[float, int, str]] = []
    for firing in result.firings:
        line = (f"{shown_time(result, firing.t, absolute)}  {firing.rule}  {firing.instance}  "
                f"{', '.join(firing.actions)}  {firing.evidence}")
        timed.append((firing.t, 1, line))
    for at, message in result.held:
        timed.append((at, 2, f"{shown_time(result, at, absolute)}  held: {message}"))
    for item in result.explained:
        timed.append((item.t, 0, _explained_line(result, item, absolute, explain or "")))
    timed.sort(key=lambda entry: (entry[0], entry[1]))
    return [text for _, _, text in timed]


def _explained_line(result: ReplayResult, item: Explained, absolute: bool, instance: str) -> str:
    return f"{shown_time(result, item.t, absolute)}  {item.rule}  {instance}  {item.truth.value}  {item.detail}"


def shown_time(result: ReplayResult, at: float, absolute: bool) -> str:
    """``2026-09-21T02:30:00+00:00`` for ISO traces, ``t=9000s (2h30m)`` for traces in seconds from start."""
    if absolute:
        return iso_utc(at)
    t = result.shown_t(at)
    return f"t={_number(t)}s ({format_duration_words(t)})"


def _number(value: float) -> float | int:
    return int(value) if value == int(value) else round(value, 3)
