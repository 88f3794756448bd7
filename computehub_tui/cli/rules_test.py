"""``rules test``: TOML files of expected firings and non-firings over traces, checked by replay; JUnit for CI."""

from __future__ import annotations

import math
import time
import tomllib
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from xml.etree import ElementTree

from computehub_tui.cli.exits import EXIT_FAILED, EXIT_OK, EXIT_USAGE, UsageError
from computehub_tui.cli.output import emit, note, out
from computehub_tui.cli.rules import read_text
from computehub_tui.cli.rules_replay import load_trace
from computehub_tui.config.durations import DurationError, parse_duration
from computehub_tui.domain.text import clean_text
from computehub_tui.engine.automation.replay import Firing, ReplayResult, replay
from computehub_tui.engine.automation.runner import AutomationSettings
from computehub_tui.rules.model import RuleSet
from computehub_tui.rules.parser import parse_rules

MAX_TEST_FILE_BYTES = 2_000_000
TEXT_LIMIT = 120
_SETTINGS = {"cooldown": "cooldown_s", "destructive_per_hour": "destructive_per_hour", "fleet_share": "fleet_share"}


class MalformedTest(ValueError):
    """A test file that cannot be run as written (exit 2)."""


@dataclass(frozen=True, slots=True)
class Expected:
    t: float
    """On the trace's own scale (seconds from start, or epoch seconds for ISO-8601 traces)."""
    tolerance_s: float
    rule: str
    instance: str
    actions: tuple[str, ...] | None


@dataclass(frozen=True, slots=True)
class Never:
    rule: str
    instance: str | None
    start: float | None
    end: float | None


@dataclass(frozen=True, slots=True)
class Case:
    name: str
    trace: Path
    expect: tuple[Expected, ...]
    never: tuple[Never, ...]
    exhaustive: bool


@dataclass(slots=True)
class CaseResult:
    name: str
    problems: list[str] = field(default_factory=list)
    """Each mismatch in one line; empty: passed."""
    error: str | None = None
    """Why the case could not run (a malformed trace)."""
    seconds: float = 0.0


@dataclass(slots=True)
class FileResult:
    path: Path
    cases: list[CaseResult] = field(default_factory=list)
    error: str | None = None
    """Why the file could not run at all (malformed TOML, a missing rule file)."""


async def run_tests(paths: list[Path], junit: Path | None) -> int:
    """Every file, every case; 2 when any file or trace is malformed, else 1 on any mismatch, else 0."""
    results = [await _run_file(path) for path in paths]
    for result in results:
        _report(result)
    if junit is not None:
        write_junit(results, junit)
    malformed = any(r.error is not None or any(c.error for c in r.cases) for r in results)
    failed = any(c.problems for r in results for c in r.cases)
    cases = sum(len(r.cases) for r in results)
    passed = sum(1 for r in results for c in r.cases if not c.problems and c.error is None)
    note(f"{passed} of {cases} case{'s' if cases != 1 else ''} passed")
    return EXIT_USAGE if malformed else EXIT_FAILED if failed else EXIT_OK


async def _run_file(path: Path) -> FileResult:
    result = FileResult(path)
    try:
        rule_set, settings, cases = _load(path)
    except (MalformedTest, UsageError) as error:
        result.error = str(error)
        return result
    for case in cases:
        result.cases.append(await _run_case(case, rule_set, settings))
    return result


async def _run_case(case: Case, rule_set: RuleSet, settings: AutomationSettings) -> CaseResult:
    outcome = CaseResult(case.name)
    started = time.perf_counter()
    try:
        trace = load_trace(case.trace)
    except UsageError as error:
        outcome.error = str(error)
        return outcome
    replayed = await replay(rule_set, trace, settings)
    outcome.problems = compare(case, replayed, trace.absolute)
    outcome.seconds = time.perf_counter() - started
    return outcome


def compare(case: Case, replayed: ReplayResult, absolute: bool) -> list[str]:
    """What differs between the case and the replay, one line each (missing, unexpected, forbidden)."""
    firings = list(replayed.firings)
    unmatched = list(firings)
    problems = []
    for expected in case.expect:
        found = next((f for f in unmatched if _matches(expected, f, replayed)), None)
        if found is None:
            problems.append(f"missing:    {_expected_text(expected, absolute)}")
        else:
            unmatched.remove(found)
    for never in case.never:
        for firing in firings:
            if _forbidden(never, firing, replayed):
                problems.append(f"forbidden:  {_firing_text(firing, replayed, absolute)} (expected no firing of "
                                f"{never.rule}{_range_text(never, absolute)})")
    if case.exhaustive:
        problems.extend(f"unexpected: {_firing_text(f, replayed, absolute)}" for f in unmatched
                        if not any(_forbidden(n, f, replayed) for n in case.never))
    if problems:
        problems.append("replay fired:" if firings else "replay fired nothing")
        problems.extend(f"  {_firing_text(f, replayed, absolute)}" for f in firings)
    return problems


def _matches(expected: Expected, firing: Firing, replayed: ReplayResult) -> bool:
    return (firing.rule == expected.rule and firing.instance == expected.instance
            and abs(replayed.shown_t(firing.t) - expected.t) <= expected.tolerance_s
            and (expected.actions is None or tuple(firing.actions) == expected.actions))


def _forbidden(never: Never, firing: Firing, replayed: ReplayResult) -> bool:
    t = replayed.shown_t(firing.t)
    return (firing.rule == never.rule and never.instance in (None, firing.instance)
            and (never.start is None or t >= never.start) and (never.end is None or t <= never.end))


def _time_text(t: float, absolute: bool) -> str:
    if absolute:
        return datetime.fromtimestamp(t, UTC).isoformat(timespec="seconds")
    return f"t={int(t) if t == int(t) else t}s"


def _expected_text(expected: Expected, absolute: bool) -> str:
    actions = "any actions" if expected.actions is None else ", ".join(expected.actions)
    return (f"{_time_text(expected.t, absolute)} ±{expected.tolerance_s:g}s  {expected.rule}  {expected.instance}  "
            f"{actions}")


def _firing_text(firing: Firing, replayed: ReplayResult, absolute: bool) -> str:
    return (f"{_time_text(replayed.shown_t(firing.t), absolute)}  {firing.rule}  {firing.instance}  "
            f"{', '.join(firing.actions)}")


def _range_text(never: Never, absolute: bool) -> str:
    where = f" on {never.instance}" if never.instance else ""
    if never.start is None and never.end is None:
        return where
    start = "the start" if never.start is None else _time_text(never.start, absolute)
    end = "the end" if never.end is None else _time_text(never.end, absolute)
    return f"{where} from {start} to {end}"


def _report(result: FileResult) -> None:
    if result.error is not None:
        emit(f"ERROR {result.path}: {result.error.removeprefix(f'{result.path}: ')}\n")
        return
    for case in result.cases:
        if case.error is not None:
            out(f"ERROR {result.path} [{case.name}]: {case.error}")
        elif case.problems:
            out(f"FAIL  {result.path} [{case.name}]")
            for line in case.problems:
                out(f"  {line}")
        else:
            out(f"ok    {result.path} [{case.name}]")


def write_junit(results: list[FileResult], path: Path) -> None:
    """One testsuite per file, one testcase per case; a malformed file is one errored testcase."""
    suites = ElementTree.Element("testsuites")
    for result in results:
        cases = result.cases or [CaseResult("(file)", error=result.error)]
        suite = ElementTree.SubElement(suites, "testsuite", name=str(result.path), tests=str(len(cases)),
                                       failures=str(sum(1 for c in cases if c.problems)),
                                       errors=str(sum(1 for c in cases if c.error is not None)))
        for case in cases:
            element = ElementTree.SubElement(suite, "testcase", classname=str(result.path), name=case.name,
                                             time=f"{case.seconds:.3f}")
            if case.error is not None:
                ElementTree.SubElement(element, "error", message=case.error).text = case.error
            elif case.problems:
                ElementTree.SubElement(element, "failure", message=case.problems[0]).text = "\n".join(case.problems)
    try:
        ElementTree.ElementTree(suites).write(path, encoding="utf-8", xml_declaration=True)
    except OSError as error:
        raise UsageError(f"{path}: cannot write the JUnit report ({error.strerror or error})") from None


# -- reading a test file ------------------------------------------------------------------------


def _load(path: Path) -> tuple[RuleSet, AutomationSettings, list[Case]]:
    try:
        data = tomllib.loads(read_text(path, MAX_TEST_FILE_BYTES, "test file"))
    except tomllib.TOMLDecodeError as error:
        raise MalformedTest(f"not valid TOML: {error}") from None
    _only(data, {"rules", "settings", "case"}, "the file")
    rules_path = path.parent / _text(data, "rules", "the file")
    rule_set = parse_rules(read_text(rules_path))
    if not rule_set.ok:
        errors = "; ".join(error.render().splitlines()[0] for error in rule_set.errors)
        raise MalformedTest(f"{rules_path}: {len(rule_set.errors)} rule error(s): {errors}")
    cases = data.get("case")
    if not isinstance(cases, list) or not cases:
        raise MalformedTest("has no [[case]] (each names a trace and what it expects)")
    return rule_set, _settings(data.get("settings", {})), [_case(path, item, n) for n, item in enumerate(cases, 1)]


def _settings(raw: Any) -> AutomationSettings:
    if not isinstance(raw, dict):
        raise MalformedTest("[settings] must be a table")
    _only(raw, set(_SETTINGS), "[settings]")
    values: dict[str, float | int] = {}
    if "cooldown" in raw:
        values["cooldown_s"] = _seconds(raw["cooldown"], "[settings] cooldown")
    if "destructive_per_hour" in raw:
        count = raw["destructive_per_hour"]
        if isinstance(count, bool) or not isinstance(count, int) or not 1 <= count <= 10_000:
            raise MalformedTest("[settings] destructive_per_hour must be a whole number from 1 to 10000")
        values["destructive_per_hour"] = count
    if "fleet_share" in raw:
        share = raw["fleet_share"]
        if isinstance(share, bool) or not isinstance(share, int | float) or not 0.0 < share <= 1.0:
            raise MalformedTest("[settings] fleet_share must be a number above 0 and at most 1")
        values["fleet_share"] = float(share)
    return AutomationSettings(**values)  # type: ignore[arg-type]


def _case(path: Path, raw: Any, number: int) -> Case:
    where = f"[[case]] {number}"
    if not isinstance(raw, dict):
        raise MalformedTest(f"{where} must be a table")
    _only(raw, {"name", "trace", "expect", "never", "exhaustive"}, where)
    name = clean_text(raw.get("name", f"case {number}"), TEXT_LIMIT) or f"case {number}"
    where = f"[[case]] {name!r}"
    exhaustive = raw.get("exhaustive", True)
    if not isinstance(exhaustive, bool):
        raise MalformedTest(f"{where}: exhaustive must be true or false")
    expect = tuple(_expected(item, f"{where} expect {n}") for n, item in enumerate(_tables(raw, "expect", where), 1))
    never = tuple(_never(item, f"{where} never {n}") for n, item in enumerate(_tables(raw, "never", where), 1))
    return Case(name, path.parent / _text(raw, "trace", where), expect, never, exhaustive)


def _tables(raw: dict[str, Any], key: str, where: str) -> list[dict[str, Any]]:
    items = raw.get(key, [])
    if not isinstance(items, list) or not all(isinstance(item, dict) for item in items):
        raise MalformedTest(f"{where}: {key} must be a list of tables ([[case.{key}]])")
    return items


def _expected(raw: dict[str, Any], where: str) -> Expected:
    _only(raw, {"t", "tolerance", "rule", "instance", "actions"}, where)
    if "t" not in raw:
        raise MalformedTest(f"{where}: t is missing")
    actions = raw.get("actions")
    if actions is not None and (not isinstance(actions, list) or not all(isinstance(a, str) for a in actions)):
        raise MalformedTest(f"{where}: actions must be a list of strings like [\"stop\", \"notify telegram\"]")
    tolerance = _seconds(raw.get("tolerance", 0), f"{where} tolerance")
    return Expected(_time(raw["t"], f"{where} t"), tolerance, _text(raw, "rule", where), _text(raw, "instance", where),
                    None if actions is None else tuple(actions))


def _never(raw: dict[str, Any], where: str) -> Never:
    _only(raw, {"rule", "instance", "from", "to"}, where)
    instance = _text(raw, "instance", where) if "instance" in raw else None
    start = _time(raw["from"], f"{where} from") if "from" in raw else None
    end = _time(raw["to"], f"{where} to") if "to" in raw else None
    return Never(_text(raw, "rule", where), instance, start, end)


def _only(raw: dict[str, Any], allowed: set[str], where: str) -> None:
    for key in raw:
        if key not in allowed:
            raise MalformedTest(f"{where}: unknown key {clean_text(key, 40)!r} (keys: {', '.join(sorted(allowed))})")


def _text(raw: dict[str, Any], key: str, where: str) -> str:
    value = raw.get(key)
    if not isinstance(value, str) or not clean_text(value, TEXT_LIMIT):
        raise MalformedTest(f"{where}: {key} must be a non-empty string")
    return clean_text(value, TEXT_LIMIT)


def _time(value: Any, where: str) -> float:
    """Seconds from the trace's start (a number) or an ISO-8601 time (a string or a TOML datetime)."""
    if isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value) and value >= 0:
        return float(value)
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value)
        except ValueError:
            raise MalformedTest(f"{where}: {clean_text(value, 40)!r} is not seconds or an ISO-8601 time") from None
    if isinstance(value, datetime):
        return (value if value.tzinfo else value.replace(tzinfo=UTC)).timestamp()
    raise MalformedTest(f"{where} must be seconds from the trace's start or an ISO-8601 time")


def _seconds(value: Any, where: str) -> float:
    if isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value) and value >= 0:
        return float(value)
    if isinstance(value, str):
        try:
            return parse_duration(value)
        except DurationError as error:
            raise MalformedTest(f"{where}: {error}") from None
    raise MalformedTest(f"{where} must be seconds or a duration like \"1m\"")
