"""An instance's status over a chart window: a bar of coloured segments, the times of its changes, the last ones."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

from rich.text import Text

from computehub_tui.domain.models import InstanceStatus
from computehub_tui.domain.status_timeline import StatusChange, StatusSegment, status_segments
from computehub_tui.ui.plain import RenderGuard
from computehub_tui.ui.widgets.instances_pane import STATUS_STYLE

GUTTER = 9
"""The width of the detail screen's row labels ("Status   "), so the bar starts where their values do."""
LAST_CHANGES = 3
UNKNOWN_CELL = "·"
SEGMENT_CELL = "█"
DAY_S = 86400.0


def _colour(status: InstanceStatus) -> str:
    return STATUS_STYLE[status].replace("bold", "").strip() or "white"


def _clock(at: float, span: float) -> str:
    moment = datetime.fromtimestamp(at, tz=UTC)
    return moment.strftime("%H:%M" if span <= DAY_S else "%m-%d %H:%M")


def status_at(segments: Sequence[StatusSegment], at: float) -> InstanceStatus | None:
    return next((segment.status for segment in segments if segment.start <= at < segment.end), None)


def timeline_text(changes: Sequence[StatusChange], start: float, end: float, width: int) -> Text:
    """Three lines ``width`` cells wide: the bar (each cell the status at its middle), the window's start,
    each change's time where it fits, and "now"; then the newest changes, newest first (times in UTC)."""
    cells = max(1, width - GUTTER)
    span = end - start
    segments = status_segments(changes, start, end)
    bar = Text("Timeline ".ljust(GUTTER), style="bold")
    for cell in range(cells):
        status = status_at(segments, start + (cell + 0.5) * span / cells)
        bar.append(UNKNOWN_CELL, "dim") if status is None else bar.append(SEGMENT_CELL, _colour(status))
    axis = [" "] * cells
    _place(axis, 0, _clock(start, span))
    _place(axis, cells - 3, "now")
    for change in changes:
        if start < change.at < end:
            _place(axis, int((change.at - start) / span * cells), "^" + _clock(change.at, span))
    lines = [bar, Text(" " * GUTTER + "".join(axis), style="dim"), _last_changes(changes, span)]
    return Text("\n").join(lines)


def _place(axis: list[str], column: int, label: str) -> None:
    """Write ``label`` from ``column`` (pulled left to fit) unless it would touch a label already there."""
    if len(label) > len(axis):
        return
    column = max(0, min(column, len(axis) - len(label)))
    if any(cell != " " for cell in axis[max(0, column - 1):column + len(label) + 1]):
        return
    axis[column:column + len(label)] = label


def _last_changes(changes: Sequence[StatusChange], span: float) -> Text:
    line = Text("Changes".ljust(GUTTER), style="bold")
    newest = [change for change in reversed(changes) if change.previous is not None][:LAST_CHANGES]
    if not newest:
        line.append("no status change seen in this window", style="dim")
    for n, change in enumerate(newest):
        if n:
            line.append(" · ", style="dim")
        line.append(f"{_clock(change.at, span)} ")
        if change.previous is not None:
            line.append(change.previous.value, _colour(change.previous))
        line.append(" → ")
        line.append(change.status.value, _colour(change.status))
    return line


class StatusTimeline(RenderGuard):
    """Draws ``timeline_text`` at its own width; ``show`` gives it the changes and the window."""

    DEFAULT_CSS = "StatusTimeline { height: 3; padding: 0 1; }"

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.changes: tuple[StatusChange, ...] = ()
        self.window: tuple[float, float] = (0.0, 1.0)

    def show(self, changes: Sequence[StatusChange], start: float, end: float) -> None:
        self.changes = tuple(changes)
        self.window = (start, end)
        self.refresh()

    def render(self) -> Text:
        start, end = self.window
        return timeline_text(self.changes, start, end, self.content_size.width)
