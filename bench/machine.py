"""Facts about the machine and library versions, printed beside every set of figures."""

from __future__ import annotations

import importlib.metadata
import os
import platform
import sys
from typing import Any


def _version(package: str) -> str | None:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return None


def usable_cpus() -> int:
    """CPUs this process may run on (a container or taskset can hide some of os.cpu_count())."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def machine_facts() -> dict[str, Any]:
    return {
        "cpu_count": os.cpu_count(),
        "usable_cpus": usable_cpus(),
        "cpu_model": _cpu_model(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "python_implementation": platform.python_implementation(),
        "textual": _version("textual"),
        "rich": _version("rich"),
        "textual_speedups": _version("textual-speedups"),
        "executable": sys.executable,
        "textual_env": {name: value for name, value in os.environ.items()
                        if name.startswith("TEXTUAL")},
        "load_average": load_average(),
    }


def load_average() -> list[float] | None:
    """1, 5 and 15 minute load: other work on the machine makes every figure slower and noisier."""
    try:
        return [round(value, 2) for value in os.getloadavg()]
    except OSError:
        return None


def _cpu_model() -> str | None:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("model name"):
                    return line.partition(":")[2].strip()
    except OSError:
        pass
    return platform.processor() or None


def describe(facts: dict[str, Any]) -> str:
    cpus = f"{facts['cpu_count']} CPUs"
    if facts["usable_cpus"] != facts["cpu_count"]:
        cpus += f" ({facts['usable_cpus']} usable)"
    speedups = facts["textual_speedups"] or "not installed"
    return (f"{cpus}, {facts['cpu_model'] or 'unknown CPU'}; Python {facts['python']}, "
            f"Textual {facts['textual']}, Rich {facts['rich']}, textual-speedups {speedups}; "
            f"{facts['platform']}")


def rss_bytes() -> int | None:
    """Resident set size of this process, from /proc (None where there is no /proc)."""
    try:
        with open("/proc/self/statm", encoding="ascii") as statm:
            resident_pages = int(statm.read().split()[1])
    except (OSError, ValueError, IndexError):
        return None
    return resident_pages * os.sysconf("SC_PAGE_SIZE")
