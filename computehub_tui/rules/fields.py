"""The fields a rule may read: kind, unit, scope, allowed values and one help line each."""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from enum import StrEnum

from computehub_tui.domain.models import PROVIDER_NAMES, InstanceStatus, PricingKind


class Kind(StrEnum):
    NUMBER = "number"
    TEXT = "text"


class Unit(StrEnum):
    """What a number field's value is measured in, as the runner puts it in the facts."""

    PERCENT = "percent"
    """0-100."""
    DOLLARS = "dollars"
    DOLLARS_PER_HOUR = "dollars_per_hour"
    SECONDS = "seconds"
    GIGABYTES = "gigabytes"
    """GiB."""
    CELSIUS = "celsius"
    WATTS = "watts"
    COUNT = "count"
    NONE = "none"


class Scope(StrEnum):
    INSTANCE = "instance"
    """Read from ``InstanceFacts.values`` (and ``series`` for FOR windows)."""
    ACCOUNT = "account"
    """Read from ``AccountFacts.values``; no FOR window."""


@dataclass(frozen=True, slots=True)
class FieldSpec:
    name: str
    kind: Kind
    unit: Unit
    scope: Scope
    help: str
    allowed: tuple[str, ...] = ()
    """The only values a text field can hold (an enum); empty for free text."""
    windowed: bool = True
    """FOR may follow a comparison on this field (the runner keeps a series of it)."""


def _instance(name: str, kind: Kind, unit: Unit, help_line: str, allowed: tuple[str, ...] = ()) -> FieldSpec:
    return FieldSpec(name, kind, unit, Scope.INSTANCE, help_line, allowed)


_N, _T = Kind.NUMBER, Kind.TEXT
STATUSES = tuple(status.value for status in InstanceStatus)
PRICINGS = tuple(kind.value for kind in PricingKind)

FIELDS: dict[str, FieldSpec] = {spec.name: spec for spec in (
    _instance("status", _T, Unit.NONE, f"lifecycle status: {', '.join(STATUSES)}", STATUSES),
    _instance("provider", _T, Unit.NONE, f"the marketplace: {', '.join(PROVIDER_NAMES)}", PROVIDER_NAMES),
    _instance("gpu", _T, Unit.NONE, "GPU model name, e.g. \"A100*\" with ~"),
    _instance("gpu_count", _N, Unit.COUNT, "number of GPUs on the instance"),
    _instance("label", _T, Unit.NONE, "the instance's label"),
    _instance("project", _T, Unit.NONE, "the project the instance belongs to"),
    _instance("pricing", _T, Unit.NONE, f"how it is billed: {', '.join(PRICINGS)}", PRICINGS),
    _instance("gpu_util", _N, Unit.PERCENT, "GPU utilisation, the busiest GPU, 0-100 %"),
    _instance("gpu_util_min", _N, Unit.PERCENT, "GPU utilisation, the least busy GPU, 0-100 %"),
    _instance("gpu_util_avg", _N, Unit.PERCENT, "GPU utilisation, the mean over GPUs, 0-100 %"),
    _instance("vram_used_pct", _N, Unit.PERCENT, "GPU memory in use, 0-100 % of total"),
    _instance("vram_used_gb", _N, Unit.GIGABYTES, "GPU memory in use, GB (GiB)"),
    _instance("gpu_temp", _N, Unit.CELSIUS, "hottest GPU temperature, °C"),
    _instance("power_w", _N, Unit.WATTS, "GPU power draw, W"),
    _instance("cpu_util", _N, Unit.PERCENT, "CPU utilisation, 0-100 %"),
    _instance("cost_per_hour", _N, Unit.DOLLARS_PER_HOUR, "what the instance costs now, $/h"),
    _instance("cost_so_far", _N, Unit.DOLLARS, "what the instance has cost since launch, $"),
    _instance("uptime", _N, Unit.SECONDS, "time since the instance last started, e.g. 2h"),
    _instance("idle_for", _N, Unit.SECONDS, "time since the GPUs were last busy, e.g. 30m"),
    _instance("price_change_24h", _N, Unit.PERCENT, "price change of this GPU type on this provider over 24 h, %"),
    FieldSpec("project_spend_today", _N, Unit.DOLLARS, Scope.INSTANCE,
              "today's spend of this instance's project, $ (filled per instance)", windowed=False),
    FieldSpec("spend_today", _N, Unit.DOLLARS, Scope.ACCOUNT, "spend today on every account, $", windowed=False),
    FieldSpec("spend_month", _N, Unit.DOLLARS, Scope.ACCOUNT, "spend this month on every account, $",
              windowed=False),
    FieldSpec("burn_rate", _N, Unit.DOLLARS_PER_HOUR, Scope.ACCOUNT, "what everything running costs now, $/h",
              windowed=False),
    FieldSpec("running_count", _N, Unit.COUNT, Scope.ACCOUNT, "instances running now, on every account",
              windowed=False),
)}
"""Every field, in the order the Rules pane lists them."""

INSTANCE_FIELDS = tuple(name for name, spec in FIELDS.items() if spec.scope is Scope.INSTANCE)
ACCOUNT_FIELDS = tuple(name for name, spec in FIELDS.items() if spec.scope is Scope.ACCOUNT)


def nearest(name: str, choices: tuple[str, ...] | list[str]) -> str | None:
    """The closest of ``choices`` to a misspelt ``name``, if one is close enough to suggest."""
    found = difflib.get_close_matches(name.lower(), choices, n=1, cutoff=0.6)
    return found[0] if found else None
