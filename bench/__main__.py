"""`make bench`: run every benchmark, print the table, write bench/results.json."""

from __future__ import annotations

import sys
import time
from datetime import UTC, datetime

from bench.machine import describe, load_average, machine_facts
from bench.report import error_lines, render, write_json
from bench.runner import run_all


def main() -> int:
    facts = machine_facts()
    started = time.perf_counter()
    print(f"computehub-tui benchmarks on {describe(facts)}", file=sys.stderr, flush=True)
    results = {"generated_at": datetime.now(UTC).isoformat(timespec="seconds"), "machine": facts,
               **run_all()}
    results["total_seconds"] = time.perf_counter() - started
    results["load_average_at_end"] = load_average()
    path = write_json(results)
    print()
    print(render(results))
    print(f"\nraw figures: {path} ({results['total_seconds']:.0f} s in all)")
    return 1 if error_lines(results) else 0


if __name__ == "__main__":
    sys.exit(main())
