"""The readable table at the end of `make bench`, and the JSON summary written beside it."""

from __future__ import annotations

import json
import statistics
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.machine import describe

RESULTS_PATH = Path(__file__).resolve().parent / "results.json"
RATIO_UNITS = ("ms", "MB")
PERCENTILES = ("p50", "p95", "max")


@dataclass(frozen=True)
class Line:
    benchmark: str
    stat: str
    ours: float | None
    baseline: float | None
    unit: str
    """ms, MB, s or %."""


def pick(data: Any, *path: str) -> Any:
    """``data[path[0]][path[1]]…``, or None where any step is missing (a side that failed)."""
    for key in path:
        if not isinstance(data, dict) or key not in data:
            return None
        data = data[key]
    return data


def _fmt(value: float | None, unit: str) -> str:
    if value is None:
        return "failed"
    if unit == "%":
        return f"{value:.2f} %"
    if unit == "s":
        return f"{value:,.2f} s"
    return f"{value:,.1f} {unit}"


def _ratio(line: Line) -> str:
    if line.unit not in RATIO_UNITS or not line.ours or line.baseline is None:
        return ""
    return f"{line.baseline / line.ours:,.1f}×"


def _mb(value: float | None) -> float | None:
    return None if value is None else value / 1_000_000


def _counts(values: list[int] | None) -> str:
    return "/".join(f"{value:,}" for value in values) if values else "?"


def startup_lines(startup: dict[str, Any]) -> list[Line]:
    app, table = startup.get("app", {}), startup.get("datatable", {})
    title = (f"startup → first offers painted "
             f"({_counts(app.get('offers'))} vs {_counts(table.get('offers'))} offers)")

    def both(benchmark: str, stat: str, figure: str, baseline_figure: str | None = None) -> Line:
        return Line(benchmark, stat, pick(app, figure, stat),
                    pick(table, baseline_figure or figure, stat), "ms")

    return [
        both(title, "median", "first_rows_ms"),
        both(title, "max", "first_rows_ms"),
        both("  every provider's offers painted", "median", "all_rows_ms", "first_rows_ms"),
        both("  counted from spawn (with interpreter)", "median", "from_spawn_ms"),
        both("  of which imports", "median", "imports_ms"),
        *before_lines(startup),
    ]


def before_lines(startup: dict[str, Any]) -> list[Line]:
    """Today's start-up beside the app before issue 8, measured in the same run (baseline column)."""
    if "reference" not in startup:
        return []
    title = "process start → offers on screen, vs before issue 8 (target ≤ 600 ms)"

    def versus(label: str, ours: str, theirs: str, figure: str) -> Line:
        return Line(label, "median", pick(startup, ours, figure, "median"),
                    pick(startup, theirs, figure, "median"), "ms")

    return [
        versus(title, "app", "reference", "from_spawn_ms"),
        versus("  from the first line of the script", "app", "reference", "first_rows_ms"),
        versus("  of which imports", "app", "reference", "imports_ms"),
        versus("  second start (last run's data dir), from spawn", "app_second", "reference_second",
               "from_spawn_ms"),
        versus("  second start, every provider's offers painted", "app_second", "reference_second",
               "all_rows_ms"),
    ]


def table_lines(tables: dict[str, Any], memory: dict[str, Any]) -> list[Line]:
    virtual, datatable = tables.get("virtual", {}), tables.get("datatable", {})
    offers = f"{virtual.get('offers') or datatable.get('offers') or 0:,}"
    keys = len(virtual.get("filter") or datatable.get("filter") or [])
    presses = len(virtual.get("sort") or datatable.get("sort") or [])
    lines = []
    for benchmark, summary, stats in (
        (f"filter keystroke → paint ({keys} keys, {offers} offers)", "filter_summary",
         PERCENTILES),
        ("  of which clearing back to every offer", "clear_summary", ("p50", "max")),
        (f"re-sort → paint ({presses} presses)", "sort_summary", PERCENTILES),
    ):
        for stat in stats:
            lines.append(Line(benchmark, stat, pick(virtual, summary, stat),
                              pick(datatable, summary, stat), "ms"))
    lines += [
        Line(f"first paint of {offers} offers", "once", pick(virtual, "first_paint", "ms"),
             pick(datatable, "first_paint", "ms"), "ms"),
        Line(f"extra memory for {offers} offers", "tracemalloc",
             _mb(pick(memory, "virtual", "traced_bytes")),
             _mb(pick(memory, "datatable", "traced_bytes")), "MB"),
        Line(f"extra memory for {offers} offers", "RSS delta",
             _mb(pick(virtual, "rss_delta_bytes")), _mb(pick(datatable, "rss_delta_bytes")), "MB"),
    ]
    return lines


def idle_lines(idle: dict[str, Any]) -> list[Line]:
    app, table = idle.get("app", {}), idle.get("datatable", {})
    seconds = pick(app, "seconds") or pick(table, "seconds") or 0.0
    title = f"idle CPU over {seconds:.0f} s (demo, pollers running)"
    return [
        Line(title, "mean", pick(app, "cpu_percent"), pick(table, "cpu_percent"), "%"),
        Line(title, "worst 1 s", _max(pick(app, "samples_percent")),
             _max(pick(table, "samples_percent")), "%"),
        Line("  start-up background work before it", "CPU time", pick(app, "settle_cpu_seconds"),
             pick(table, "settle_cpu_seconds"), "s"),
    ]


def poll_lines(polls: dict[str, Any], settings: dict[str, Any]) -> list[Line]:
    """Wall time of one full instances poll: ours (providers together) beside one after another, then beside
    the app before issue 8."""
    title = (f"full instances poll, {settings.get('instances', '?'):,} on {len(settings.get('providers', ()))} "
             f"providers at {settings.get('latency_s', 0) * 1000:g} ms")

    def ms(side: str, stat: str) -> float | None:
        values = pick(polls, side, "wall_s")
        if not values:
            return None
        return 1000.0 * (statistics.median(values) if stat == "median" else max(values))

    lines = [Line(title, stat, ms("together", stat), ms("one_by_one", stat), "ms") for stat in ("median", "max")]
    if "reference" in polls:
        lines += [Line("  vs before issue 8, polled together", stat, ms("together", stat), ms("reference", stat),
                       "ms") for stat in ("median", "max")]
    return lines


def rules_lines(rules: dict[str, Any], polls: dict[str, Any]) -> list[Line]:
    """One tick of every rule on every instance: the compiled fast path beside the naive evaluator, then beside
    one full instances poll (the tick runs after every poll)."""
    if not rules:
        return []
    title = (f"rules tick, {rules.get('rules', '?')} rules x {rules.get('instances', 0):,} instances "
             "(target ≤ 50 ms)")

    def median_ms(values: list[float] | None) -> float | None:
        return None if not values else 1000.0 * statistics.median(values)

    tick = median_ms(pick(rules, "tick_s"))
    return [Line(title, "median", tick, median_ms(pick(rules, "naive_s")), "ms"),
            Line(title, "CPU median", median_ms(pick(rules, "tick_cpu_s")), median_ms(pick(rules, "naive_cpu_s")),
                 "ms"),
            Line("  beside one full instances poll", "median", tick, median_ms(pick(polls, "together", "wall_s")),
                 "ms")]


def alert_lines(alerts: dict[str, Any]) -> list[Line]:
    """Rule firing → received (target ≤ 2 s) beside a direct send by the channel; drain times of 1,000 alerts."""
    if not alerts:
        return []

    def median_ms(values: list[float] | None) -> float | None:
        return None if not values else 1000.0 * statistics.median(values)

    latency, drain = alerts.get("latency") or {}, alerts.get("drain") or {}
    lines = [Line(f"rule firing → {name} received (target ≤ 2 s)", stat, figure(pick(latency, "fired_s", name)),
                  figure(pick(latency, "direct_s", name)), "ms")
             for name in ("webhook", "telegram", "email") for stat, figure in (("median", median_ms), ("max", _max_ms))]
    lines.append(Line("1,000 queued alerts → generic webhook", "drain", pick(drain, "webhook", "drain_s"), None, "s"))
    for name, label in (("slack", "slack-style webhook at 1/s"), ("email", "SMTP at 1 per 0.5 s")):
        lines.append(Line(f"{pick(drain, name, 'messages') or '?'} alerts → {label}", "drain",
                          pick(drain, name, "drain_s"), None, "s"))
    lines.append(Line("1,000 raised via hub.alerts (grouped) → slack-style", "first/group",
                      pick(drain, "grouped", "first_of_each_group_s"), None, "s"))
    return lines


def _max_ms(values: list[float] | None) -> float | None:
    return None if not values else 1000.0 * max(values)


def _max(values: list[float] | None) -> float | None:
    return max(values) if values else None


def _load(values: list[float] | None) -> str:
    return "/".join(f"{value:.2f}" for value in values) if values else "unknown"


def render(results: dict[str, Any]) -> str:
    lines = (startup_lines(results.get("startup", {}))
             + table_lines(results.get("tables", {}), results.get("memory", {}))
             + idle_lines(results.get("idle", {}))
             + poll_lines(results.get("poll_cycle", {}), pick(results, "settings", "poll_cycle") or {})
             + rules_lines(results.get("rules_eval", {}), results.get("poll_cycle", {}))
             + alert_lines(results.get("alerts", {})))
    width = max(len(line.benchmark) for line in lines)
    header = (f"{'benchmark':<{width}}  {'stat':<11}  {'computehub':>12}  {'baseline':>12}  "
              f"{'baseline÷ours':>13}")
    columns, rows = results["settings"]["terminal_size"]
    out = [
        f"machine: {describe(results['machine'])}",
        f"load average (1/5/15 min): {_load(results['machine'].get('load_average'))} at start, "
        f"{_load(results.get('load_average_at_end'))} at end",
        f"headless run_test at {columns}×{rows}; a frame counts once it is composed and encoded "
        "as terminal output",
        "",
        header,
        "-" * len(header),
    ]
    previous = None
    for line in lines:
        name = "" if line.benchmark == previous else line.benchmark
        previous = line.benchmark
        out.append(f"{name:<{width}}  {line.stat:<11}  {_fmt(line.ours, line.unit):>12}  "
                   f"{_fmt(line.baseline, line.unit):>12}  {_ratio(line):>13}")
    out += [
        "",
        "computehub = the app (startup, idle) or its Offers pane (tables); baseline = a bare Textual",
        "DataTable app doing the same job, except in the \"vs before issue 8\" lines, where it is this app at",
        (f"{pick(results, 'settings', 'startup_reference') or '?'} run the same way; baseline÷ours = how many "
         "times slower or bigger it is."),
        "full instances poll: baseline = the same poll with the providers polled one after another (or the app",
        "before issue 8); target ≤ 1,000 ms.",
        "rules tick: baseline = evaluate() for each rule on each instance, then one full instances poll.",
        "rule firing → received: baseline = the channel sending the same message directly (no bus, outbox, worker).",
        *check_lines(results),
        *idle_warnings(results),
        *error_lines(results),
    ]
    return "\n".join(out)


def check_lines(results: dict[str, Any]) -> list[str]:
    check = pick(results, "tables", "check") or {}
    if check.get("same_rows"):
        return [f"check: both tables showed the same rows in the same order after all "
                f"{check['steps_compared']} steps"]
    return ["check FAILED, the two sides differ: " + "; ".join(check.get("mismatches", ["?"]))]


def idle_warnings(results: dict[str, Any]) -> list[str]:
    return [f"warning: idle {side} never settled (CPU stayed busy); its idle figure includes "
            "start-up work" for side, result in (results.get("idle") or {}).items()
            if isinstance(result, dict) and result.get("settled") is False]


def error_lines(results: dict[str, Any]) -> list[str]:
    errors = []
    for section in ("tables", "memory", "idle", "poll_cycle"):
        for side, result in (results.get(section) or {}).items():
            if isinstance(result, dict) and "error" in result:
                errors.append(f"{section}/{side} failed: {result['error']}")
    if "error" in (results.get("rules_eval") or {}):
        errors.append(f"rules_eval failed: {results['rules_eval']['error']}")
    for side, result in (results.get("alerts") or {}).items():
        if isinstance(result, dict) and "error" in result:
            errors.append(f"alerts/{side} failed: {result['error']}")
    for side, summary in (results.get("startup") or {}).items():
        errors += [f"startup/{side} failed: {error}" for error in summary.get("errors", [])]
    return errors


def write_json(results: dict[str, Any], path: Path = RESULTS_PATH) -> Path:
    path.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    return path
