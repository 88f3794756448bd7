"""Status history: one instance's observed status changes, and the segments a timeline draws from them."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from computehub_tui.domain.models import InstanceStatus


@dataclass(frozen=True, slots=True)
class StatusChange:
    """``instance_key`` was first seen in ``status`` at ``at`` (a poll's time): the change happened since the
    poll before. ``previous`` is None the first time this app ever saw the instance."""

    instance_key: str
    at: float
    status: InstanceStatus
    previous: InstanceStatus | None = None


@dataclass(frozen=True, slots=True)
class StatusSegment:
    """``status`` held over ``[start, end)``; None where the status is not known (before the first sight)."""

    start: float
    end: float
    status: InstanceStatus | None


def status_segments(changes: Sequence[StatusChange], start: float, end: float) -> list[StatusSegment]:
    """The statuses over ``[start, end)`` from ``changes`` (oldest first, the last one before ``start`` included
    so the window's first status is known); an unknown stretch leads where nothing was seen yet."""
    if end <= start:
        return []
    segments: list[StatusSegment] = []
    status: InstanceStatus | None = None
    at = start
    for change in changes:
        if change.at >= end:
            break
        if change.at > at:
            segments.append(StatusSegment(at, change.at, status))
            at = change.at
        status = change.status
    segments.append(StatusSegment(at, end, status))
    return _merged(segments)


def _merged(segments: list[StatusSegment]) -> list[StatusSegment]:
    merged: list[StatusSegment] = []
    for segment in segments:
        if merged and merged[-1].status == segment.status:
            merged[-1] = StatusSegment(merged[-1].start, segment.end, segment.status)
        else:
            merged.append(segment)
    return merged
