"""When an alert goes out (pure): de-duplication by key, the first of a group at once and the rest folded into a
digest, repeats of firing alerts nobody acknowledged, resolved at once, quiet hours."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, tzinfo
from enum import StrEnum

from computehub_tui.domain.alerts import FIRING, NOTICE, RESOLVED, AlertRow

SEVERITY_RANK = {"info": 0, "resolved": 0, "warning": 1, "critical": 2}
DIGEST_LINES = 30
"""A digest names at most this many alerts (and how many more there were)."""


@dataclass(frozen=True, slots=True)
class GroupingSettings:
    group_interval_s: float = 300.0
    repeat_interval_s: float = 4 * 3600.0
    quiet_hours: tuple[int, int] | None = None
    """(start, end) in minutes after local midnight; the end may be earlier than the start (over midnight)."""
    zone: tzinfo | None = None


class Verdict(StrEnum):
    SEND = "send"
    """Goes out now (the first of its group, or its group's interval has passed)."""
    FOLD = "fold"
    """Waits for its group's digest."""
    DROP = "drop"
    """Already known and firing (or the same notice, sent within the group interval): nothing new to say."""


@dataclass(frozen=True, slots=True)
class Decision:
    verdict: Verdict
    digest_due_at: float | None = None


def group_of(kind: str) -> str:
    """Alerts of one kind form one group (ten instances going down fold into one digest)."""
    return kind


def on_raise(existing: AlertRow | None, severity: str, group: tuple[float, float | None] | None, now: float,
             settings: GroupingSettings) -> Decision:
    """What to do with an alert of ``severity`` raised now; ``group`` is (last_sent_at, digest_due_at) of its group."""
    if existing is not None and not _still_news(existing, severity, now, settings):
        return Decision(Verdict.DROP)
    if group is None:
        return Decision(Verdict.SEND)
    last_sent_at, digest_due_at = group
    if digest_due_at is None and now - last_sent_at >= settings.group_interval_s:
        return Decision(Verdict.SEND)
    return Decision(Verdict.FOLD, digest_due_at if digest_due_at is not None else last_sent_at +
                    settings.group_interval_s)


def _still_news(existing: AlertRow, severity: str, now: float, settings: GroupingSettings) -> bool:
    if existing.state == FIRING:
        # A key that fires again says nothing new, unless it got worse.
        return SEVERITY_RANK.get(severity, 0) > SEVERITY_RANK.get(existing.severity, 0)
    if existing.state == NOTICE:
        return now - existing.last_at >= settings.group_interval_s
    return existing.state == RESOLVED


def repeat_due_at(alert: AlertRow, settings: GroupingSettings) -> float | None:
    """When a firing, unacknowledged, already sent alert is sent again; None when it is not."""
    if alert.state != FIRING or alert.acked_at is not None or alert.last_sent_at is None or alert.pending_digest:
        return None
    return alert.last_sent_at + settings.repeat_interval_s


def resolve_is_sent(alert: AlertRow | None) -> bool:
    """A resolved message goes out (at once) only for an alert that fired and whose firing was sent."""
    return alert is not None and alert.state == FIRING and alert.last_sent_at is not None


def quiet_until(now: float, severity: str, settings: GroupingSettings) -> float | None:
    """The end of the quiet hours ``now`` falls in, for an alert that must wait; None when it may go now."""
    if settings.quiet_hours is None or severity == "critical":
        return None
    start, end = settings.quiet_hours
    if start == end:
        return None
    local = datetime.fromtimestamp(now, settings.zone) if settings.zone else datetime.fromtimestamp(now).astimezone()
    minute = local.hour * 60 + local.minute
    inside = start <= minute < end if start < end else minute >= start or minute < end
    if not inside:
        return None
    midnight = local.replace(hour=0, minute=0, second=0, microsecond=0)
    ends = midnight + timedelta(minutes=end)
    if ends <= local:
        ends += timedelta(days=1)
    return ends.timestamp()


def digest_text(kind: str, alerts: Sequence[AlertRow]) -> tuple[str, str]:
    """(title, body) of one digest folding ``alerts`` of one kind."""
    shown = alerts[:DIGEST_LINES]
    lines = [f"- {alert.title}" for alert in shown]
    if len(alerts) > len(shown):
        lines.append(f"… and {len(alerts) - len(shown)} more")
    noun = "alert" if len(alerts) == 1 else "alerts"
    return f"{len(alerts)} more {kind.replace('_', ' ')} {noun}", "\n".join(lines)


def worst_severity(alerts: Sequence[AlertRow]) -> str:
    return max((alert.severity for alert in alerts), key=lambda severity: SEVERITY_RANK.get(severity, 0),
               default="info")
