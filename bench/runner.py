"""Runs every benchmark in fresh subprocesses and gathers their results beside their baselines."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from bench.child import RESULT_MARKER, TERMINAL_SIZE
from bench.offers import default_demo_rows
from bench.poll_cycle import CYCLES, INSTANCES, LATENCY_S, PROVIDERS
from bench.scenario import FILTER_KEYSTROKES, SORT_PRESSES
from bench.stats import latency_summary, run_summary

ROOT = Path(__file__).resolve().parent.parent
STARTUP_RUNS = 5
STARTUP_WARMUPS = 1
IDLE_SECONDS = 10.0
STARTUP_TIMEOUT_S = 60.0
TABLE_TIMEOUT_S = 180.0
IDLE_TIMEOUT_S = 90.0
POLL_CYCLE_TIMEOUT_S = 300.0
RULES_EVAL_TIMEOUT_S = 300.0
REFERENCE_COMMIT = "d5e6558"
"""The app before issue 8 (the engine reshape): its start-up is measured in the same run, beside today's."""


def child_environment(pycache_dir: Path) -> dict[str, str]:
    """Children may cache bytecode (in a private directory, never in the checkout), as an
    installed app would; a run that recompiled every module would overstate import time.
    faulthandler turns a hung child's SIGABRT into a stack dump of every thread."""
    env = {name: value for name, value in os.environ.items() if name != "PYTHONDONTWRITEBYTECODE"}
    env.update({"PYTHONPYCACHEPREFIX": str(pycache_dir), "PYTHONFAULTHANDLER": "1"})
    return env


@dataclass(frozen=True)
class Launcher:
    env: dict[str, str]
    root: Path = ROOT
    """Where the child runs: its ``computehub_tui`` is the one imported (``-m`` puts the cwd first)."""

    def start(self, label: str, module: str, *args: str, timeout_s: float) -> Child:
        spawned_at = time.perf_counter()
        process = subprocess.Popen([sys.executable, "-m", f"bench.{module}", *args], cwd=self.root,
                                   env=self.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                   text=True)
        return Child(label, process, spawned_at, timeout_s)

    def run(self, label: str, module: str, *args: str, timeout_s: float) -> dict[str, Any]:
        return self.start(label, module, *args, timeout_s=timeout_s).finish()


@dataclass
class Child:
    """A benchmark subprocess: started now, read later, so some can run side by side."""

    label: str
    process: subprocess.Popen[str]
    spawned_at: float
    timeout_s: float

    def finish(self) -> dict[str, Any]:
        """The child's result, or ``{"error": ...}`` saying why there is none."""
        remaining = max(1.0, self.spawned_at + self.timeout_s - time.perf_counter())
        try:
            stdout, stderr = self.process.communicate(timeout=remaining)
        except subprocess.TimeoutExpired:
            stdout, stderr = self._abort()
            return {"error": f"{self.label}: timed out after {self.timeout_s:.0f} s\n"
                             f"{_tail(stderr)}"}
        for line in stdout.splitlines():
            if line.startswith(RESULT_MARKER):
                result: dict[str, Any] = json.loads(line[len(RESULT_MARKER):])
                result["spawned_at"] = self.spawned_at
                return result
        return {"error": f"{self.label}: exited {self.process.returncode} without a result\n"
                         f"{_tail(stderr)}"}

    def _abort(self) -> tuple[str, str]:
        self.process.send_signal(signal.SIGABRT)
        try:
            return self.process.communicate(timeout=5)
        except subprocess.TimeoutExpired:
            self.process.kill()
            return self.process.communicate()


def _tail(text: str, lines: int = 25) -> str:
    return "\n".join(text.strip().splitlines()[-lines:])


def progress(message: str) -> None:
    print(f"  · {message}", file=sys.stderr, flush=True)


# -- 1. startup ---------------------------------------------------------------------------------


def write_startup_rows(work_dir: Path) -> tuple[Path, int]:
    """The demo-mode offers, formatted, for the bare-DataTable baseline to load."""
    columns, rows = asyncio.run(default_demo_rows())
    path = work_dir / "demo_rows.json"
    path.write_text(json.dumps({"columns": columns, "rows": rows}), encoding="utf-8")
    return path, len(rows)


def with_spawn_time(result: dict[str, Any]) -> dict[str, Any]:
    """Add the interpreter's own start-up (spawn → first line of the script) to the figures;
    perf_counter is the system-wide monotonic clock on Linux, so the two processes agree."""
    if "error" not in result:
        result["interpreter_ms"] = (result["started_at"] - result["spawned_at"]) * 1000.0
    return result


def export_reference(work_dir: Path) -> Path | None:
    """The app as it was at ``REFERENCE_COMMIT``, beside a copy of today's bench/, or None when this
    checkout has no git history to take it from."""
    target = work_dir / "reference"
    target.mkdir()
    try:
        archive = subprocess.run(["git", "archive", REFERENCE_COMMIT, "computehub_tui"], cwd=ROOT,
                                 capture_output=True, check=True, timeout=60)
        subprocess.run(["tar", "-x", "-C", str(target)], input=archive.stdout, check=True, timeout=60)
    except (OSError, subprocess.CalledProcessError, subprocess.TimeoutExpired):
        return None
    shutil.copytree(ROOT / "bench", target / "bench", ignore=shutil.ignore_patterns("__pycache__", "*.json"))
    return target


def startup_sides(launcher: Launcher, rows_path: Path, work_dir: Path) -> dict[str, tuple[Launcher, list[str]]]:
    """Each start-up variant: who runs it and its arguments. A "second start" keeps its data dir
    from run to run, so it finds what the run before stored (the warm-up run fills it first)."""
    sides: dict[str, tuple[Launcher, list[str]]] = {
        "app": (launcher, ["app"]),
        "app_second": (launcher, ["app", str(work_dir / "second-start")]),
        "datatable": (launcher, ["datatable", str(rows_path)]),
    }
    reference = export_reference(work_dir)
    if reference is not None:
        before = replace(launcher, root=reference)
        sides["reference"] = (before, ["app"])
        sides["reference_second"] = (before, ["app", str(work_dir / "reference-second-start")])
    else:
        progress(f"no git history: start-up before issue 8 ({REFERENCE_COMMIT}) is not measured")
    return sides


def run_startup(launcher: Launcher, rows_path: Path, work_dir: Path) -> dict[str, Any]:
    sides = startup_sides(launcher, rows_path, work_dir)
    runs: dict[str, list[dict[str, Any]]] = {side: [] for side in sides}
    for attempt in range(STARTUP_WARMUPS + STARTUP_RUNS):
        for side, (side_launcher, args) in sides.items():
            result = with_spawn_time(side_launcher.run(f"startup {side}", "startup_child", *args,
                                                       timeout_s=STARTUP_TIMEOUT_S))
            if attempt >= STARTUP_WARMUPS:
                runs[side].append(result)
        progress(f"startup run {attempt + 1 - STARTUP_WARMUPS}/{STARTUP_RUNS}"
                 if attempt >= STARTUP_WARMUPS else "startup warm-up run")
    return {side: summarise_startup(side_runs) for side, side_runs in runs.items()}


def summarise_startup(runs: list[dict[str, Any]]) -> dict[str, Any]:
    good = [run for run in runs if "error" not in run]
    errors = [run["error"] for run in runs if "error" in run]
    summary: dict[str, Any] = {"runs": runs, "errors": errors}
    if not good:
        return summary
    for figure in ("first_rows_ms", "all_rows_ms", "imports_ms", "ready_ms"):
        if all(figure in run for run in good):
            summary[figure] = run_summary([run[figure] for run in good])
    summary["from_spawn_ms"] = run_summary([run["first_rows_ms"] + run["interpreter_ms"]
                                            for run in good])
    summary["offers"] = sorted({run["offers"] for run in good})
    return summary


# -- 2. filtering, sorting, first paint, memory -----------------------------------------------


def summarise_table(timing: dict[str, Any]) -> dict[str, Any]:
    if "error" in timing:
        return timing
    filters = [step["ms"] for step in timing["filter"]]
    clears = [step["ms"] for step in timing["filter"] if step["filter"] == ""]
    sorts = [step["ms"] for step in timing["sort"]]
    return {
        **timing,
        "filter_summary": latency_summary(filters),
        "clear_summary": latency_summary(clears),
        "sort_summary": latency_summary(sorts),
    }


def compare_rows(virtual: dict[str, Any], datatable: dict[str, Any]) -> dict[str, Any]:
    """Both sides must have shown the same rows in the same order after every step."""
    if "error" in virtual or "error" in datatable:
        return {"same_rows": None, "mismatches": ["a side failed; nothing to compare"]}
    mismatches = []
    pairs = [("first paint", virtual["first_paint"], datatable["first_paint"])]
    pairs += [(f"filter {a['filter']!r}", a, b)
              for a, b in zip(virtual["filter"], datatable["filter"])]
    pairs += [(f"sort {a['sort']}", a, b) for a, b in zip(virtual["sort"], datatable["sort"])]
    for label, ours, theirs in pairs:
        if (ours["rows"], ours["digest"]) != (theirs["rows"], theirs["digest"]):
            mismatches.append(f"{label}: {ours['rows']} rows vs {theirs['rows']} rows")
    return {"same_rows": not mismatches, "steps_compared": len(pairs), "mismatches": mismatches}


def run_tables(launcher: Launcher) -> dict[str, Any]:
    tables: dict[str, Any] = {}
    for side in ("virtual", "datatable"):
        progress(f"table timings: {side} (the DataTable side takes about a minute)"
                 if side == "datatable" else f"table timings: {side}")
        tables[side] = summarise_table(launcher.run(f"{side} timing", "table_child", side,
                                                    "timing", timeout_s=TABLE_TIMEOUT_S))
    tables["check"] = compare_rows(tables["virtual"], tables["datatable"])
    return tables


# -- 3. idle CPU, run beside the slow DataTable memory measurement ----------------------------


def run_memory_and_idle(launcher: Launcher,
                        rows_path: Path) -> tuple[dict[str, Any], dict[str, Any]]:
    """Memory (tracemalloc) and idle CPU (CPU time, not wall time) do not depend on having the
    machine to themselves, so the slow ones share it."""
    progress(f"memory of both tables, alongside idle CPU ({IDLE_SECONDS:.0f} s once settled)")
    seconds = f"{IDLE_SECONDS:g}"
    children = {
        "virtual memory": launcher.start("virtual memory", "table_child", "virtual", "memory",
                                         timeout_s=TABLE_TIMEOUT_S),
        "datatable memory": launcher.start("datatable memory", "table_child", "datatable",
                                           "memory", timeout_s=TABLE_TIMEOUT_S),
        "app": launcher.start("idle app", "idle_child", "app", seconds, timeout_s=IDLE_TIMEOUT_S),
        "datatable": launcher.start("idle datatable", "idle_child", "datatable", seconds,
                                    str(rows_path), timeout_s=IDLE_TIMEOUT_S),
    }
    memory = {"virtual": children["virtual memory"].finish(),
              "datatable": children["datatable memory"].finish()}
    idle = {"app": children["app"].finish(), "datatable": children["datatable"].finish()}
    return memory, idle


# -- 4. one full instances poll --------------------------------------------------------------------


def run_poll_cycle(cycles: int = CYCLES) -> dict[str, Any]:
    """Each side alone in a fresh process: the providers polled together (as their schedules run), one after
    another, and the app at REFERENCE_COMMIT polling them together (left out without git history)."""
    with tempfile.TemporaryDirectory(prefix="chub-poll-") as work:
        launcher = Launcher(child_environment(Path(work) / "pycache"))
        sides = {"together": (launcher, "together"), "one_by_one": (launcher, "one-by-one")}
        reference = export_reference(Path(work))
        if reference is not None:
            sides["reference"] = (replace(launcher, root=reference), "together")
        results = {}
        for side, (side_launcher, order) in sides.items():
            progress(f"poll cycle: {side}")
            results[side] = side_launcher.run(f"poll cycle {side}", "poll_cycle", "--child", order, str(cycles),
                                              timeout_s=POLL_CYCLE_TIMEOUT_S)
    return results


# -- 5. rules: 100 rules x 1,000 instances per tick -------------------------------------------------------------


def run_rules_eval() -> dict[str, Any]:
    """Alone in a fresh process, after the poll cycle it is shown beside."""
    with tempfile.TemporaryDirectory(prefix="chub-rules-") as work:
        progress("rules: 100 rules x 1,000 instances, compiled and naive")
        return Launcher(child_environment(Path(work) / "pycache")).run("rules eval", "rules_eval", "--child",
                                                                      timeout_s=RULES_EVAL_TIMEOUT_S)


# -- 6. alerts: firing → received, and 1,000 queued alerts drained -------------------------------------------------


ALERTS_TIMEOUT_S = 300.0


def run_alerts() -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="chub-alerts-") as work:
        launcher = Launcher(child_environment(Path(work) / "pycache"))
        progress("alerts: rule firing → loopback webhook, Telegram and SMTP, beside a direct send")
        latency = launcher.run("alerts latency", "alerts_latency", "--child", timeout_s=ALERTS_TIMEOUT_S)
        progress("alerts: 1,000 queued alerts drained at each channel's pace")
        drain = launcher.run("alerts drain", "alerts_drain", "--child", timeout_s=ALERTS_TIMEOUT_S)
    return {"latency": latency, "drain": drain}


def run_all() -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="chub-bench-") as work:
        launcher = Launcher(child_environment(Path(work) / "pycache"))
        progress("formatting the demo offers for the DataTable baseline")
        rows_path, demo_offers = write_startup_rows(Path(work))
        startup = run_startup(launcher, rows_path, Path(work))
        tables = run_tables(launcher)
        memory, idle = run_memory_and_idle(launcher, rows_path)
    poll_cycle = run_poll_cycle()
    rules_eval = run_rules_eval()
    alerts = run_alerts()
    return {
        "settings": {
            "terminal_size": list(TERMINAL_SIZE),
            "startup_runs": STARTUP_RUNS,
            "startup_warmups": STARTUP_WARMUPS,
            "startup_baseline_offers": demo_offers,
            "filter_keystrokes": list(FILTER_KEYSTROKES),
            "sort_presses": list(SORT_PRESSES),
            "idle_seconds": IDLE_SECONDS,
            "bytecode_cache": "private PYTHONPYCACHEPREFIX, filled by the warm-up run",
            "startup_reference": REFERENCE_COMMIT,
            "poll_cycle": {"instances": INSTANCES, "providers": list(PROVIDERS), "latency_s": LATENCY_S,
                           "cycles": CYCLES},
        },
        "startup": startup,
        "tables": tables,
        "memory": memory,
        "idle": idle,
        "poll_cycle": poll_cycle,
        "rules_eval": rules_eval,
        "alerts": alerts,
    }
