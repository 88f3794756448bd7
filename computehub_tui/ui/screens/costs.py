"""Spend by day: a bar chart of the last 30 days stacked by project or provider, and totals for today and this month."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import TYPE_CHECKING, ClassVar, Literal

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.worker import Worker, WorkerState

from computehub_tui.domain.models import PROVIDER_TITLES
from computehub_tui.engine.costs import SpendLine, month_start
from computehub_tui.engine.hub import Hub
from computehub_tui.ui.format import money
from computehub_tui.ui.plain import PlainStatic, plain
from computehub_tui.ui.screens.projects import NO_PROJECT_TEXT

if TYPE_CHECKING:
    from textual_plotext import PlotextPlot

Grouping = Literal["project", "provider"]
CHART_DAYS = 30
CHART_GROUPS = 6
"""Bars stack at most this many groups (the biggest spenders); the rest are summed as "other"."""
OTHER = "other"
NAME_WIDTH = 24
NO_SPEND_TEXT = "no spend booked yet: costs are booked as instances run (and while stopped ones bill storage)"


@dataclass(frozen=True, slots=True)
class GroupSpend:
    name: str
    today: float
    month: float
    last_days: float
    """Over the chart's days."""


@dataclass(frozen=True, slots=True)
class SpendSummary:
    """Spend per group (biggest first) and per chart day (oldest first) for one grouping."""

    days: list[date]
    groups: list[GroupSpend]
    by_day: dict[str, list[float]]
    """Each group's spend on each of ``days``."""

    @property
    def total(self) -> GroupSpend:
        return GroupSpend("total", sum(g.today for g in self.groups), sum(g.month for g in self.groups),
                          sum(g.last_days for g in self.groups))


def group_name(key: str | None, grouping: Grouping) -> str:
    if grouping == "provider":
        return PROVIDER_TITLES.get(key or "", key or "?")
    return key or NO_PROJECT_TEXT


def summarise(lines: Sequence[SpendLine], grouping: Grouping, today: date) -> SpendSummary:
    """``lines`` keyed (day, group) as ``CostService.spend_by`` gives them, from at least the first of the
    month and the first chart day."""
    days = [today - timedelta(days=back) for back in range(CHART_DAYS - 1, -1, -1)]
    column = {day.isoformat(): n for n, day in enumerate(days)}
    today_key, month_key = today.isoformat(), today.isoformat()[:7]
    by_day: dict[str, list[float]] = defaultdict(lambda: [0.0] * CHART_DAYS)
    spent: dict[str, list[float]] = defaultdict(lambda: [0.0, 0.0, 0.0])
    for line in lines:
        day, key = line.keys[0] or "", line.keys[1]
        name = group_name(key, grouping)
        totals = spent[name]
        totals[0] += line.usd if day == today_key else 0.0
        totals[1] += line.usd if day[:7] == month_key else 0.0
        if day in column:
            totals[2] += line.usd
            by_day[name][column[day]] += line.usd
    groups = sorted((GroupSpend(name, *totals) for name, totals in spent.items()),
                    key=lambda group: (-group.last_days, -group.month, group.name))
    return SpendSummary(days, groups, dict(by_day))


class CostScreen(ModalScreen[None]):
    """Reads the books once when opened (and again on ``r``); nothing here polls."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape,q", "dismiss", "Close"),
        Binding("g", "toggle_grouping", "Group by project / provider"),
        Binding("r", "reload", "Reload"),
    ]
    DEFAULT_CSS = """
    CostScreen { align: center middle; }
    CostScreen > Vertical { width: 100%; max-width: 160; height: 100%; border: thick $accent; background: $surface; }
    CostScreen #costs-title { height: auto; padding: 0 1; background: $panel; text-style: bold; }
    CostScreen #costs-note { height: auto; padding: 0 1; color: $text-muted; }
    CostScreen PlotextPlot { height: 1fr; min-height: 8; max-height: 24; }
    CostScreen VerticalScroll { height: auto; max-height: 40%; }
    CostScreen #costs-table { height: auto; padding: 0 1; }
    """

    def __init__(self, hub: Hub) -> None:
        super().__init__()
        self.hub = hub
        self.grouping: Grouping = "project"
        self.lines: dict[Grouping, list[SpendLine]] = {}
        self.today = datetime.fromtimestamp(hub.clock.now(), hub.costs.zone).date()
        self.summary: SpendSummary | None = None

    def compose(self) -> ComposeResult:
        from textual_plotext import PlotextPlot  # deferred: plotext is only needed on demand

        with Vertical():
            yield PlainStatic("Spend by day   (g group by project / provider, r reload, esc close)", id="costs-title")
            yield PlainStatic("loading…", id="costs-note")
            yield PlotextPlot(id="costs-chart")
            with VerticalScroll():  # many projects scroll here; the chart keeps its room
                yield PlainStatic("", id="costs-table")

    def on_mount(self) -> None:
        self.action_reload()

    def action_reload(self) -> None:
        self._load()

    def action_toggle_grouping(self) -> None:
        self.grouping = "provider" if self.grouping == "project" else "project"
        if self.lines:
            self._show()

    @work(group="costs", exclusive=True, exit_on_error=False)
    async def _load(self) -> tuple[date, dict[Grouping, list[SpendLine]]]:
        costs, now = self.hub.costs, self.hub.clock.now()
        today = datetime.fromtimestamp(now, costs.zone).date()
        first_chart_day = datetime.combine(today - timedelta(days=CHART_DAYS - 1), time(), costs.zone)
        since = min(month_start(now, costs.zone), first_chart_day.timestamp())
        lines: dict[Grouping, list[SpendLine]] = {}
        for grouping in ("project", "provider"):
            lines[grouping] = await costs.spend_by(["day", grouping], since)
        return today, lines

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        if event.worker.group != "costs":
            return
        if event.state is WorkerState.ERROR:
            self.query_one("#costs-note", PlainStatic).update(f"could not read the books: {event.worker.error}")
        elif event.state is WorkerState.SUCCESS and event.worker.result is not None:
            self.today, self.lines = event.worker.result
            self._show()

    def _show(self) -> None:
        from textual_plotext import PlotextPlot

        summary = self.summary = summarise(self.lines[self.grouping], self.grouping, self.today)
        chart = self.query_one("#costs-chart", PlotextPlot)
        note = self.query_one("#costs-note", PlainStatic)
        if not summary.groups:
            chart.display = False
            note.update(NO_SPEND_TEXT)
            self.query_one("#costs-table", PlainStatic).update("")
            return
        chart.display = True
        total = summary.total
        note.update(f"Today {money(total.today)} · this month {money(total.month)} · last {CHART_DAYS} days "
                    f"{money(total.last_days)}, by {self.grouping}")
        self._draw(chart, summary)
        self.query_one("#costs-table", PlainStatic).update(self._table(summary))

    def _draw(self, chart: PlotextPlot, summary: SpendSummary) -> None:
        names = [group.name for group in summary.groups[:CHART_GROUPS]]
        series = [summary.by_day[name] for name in names]
        rest = [summary.by_day[group.name] for group in summary.groups[CHART_GROUPS:]]
        if rest:
            names.append(OTHER)
            series.append([sum(day) for day in zip(*rest, strict=True)])
        plt = chart.plt
        plt.clear_data()
        plt.clear_figure()
        plt.title(f"$ per day by {self.grouping}")
        positions = list(range(-CHART_DAYS + 1, 1))
        # textual-plotext's stub names the legend argument "label"; plotext 5.3 itself takes "labels".
        plt.stacked_bar(positions, series, labels=names)  # type: ignore[call-arg]
        plt.xlim(-CHART_DAYS + 0.5, 0.5)  # whole bars at both ends
        ticks = positions[::-5][::-1]
        plt.xticks([float(p) for p in ticks], [summary.days[p + CHART_DAYS - 1].strftime("%m-%d") for p in ticks])
        chart.refresh()

    def _table(self, summary: SpendSummary) -> Text:
        heading = "PROJECT" if self.grouping == "project" else "PROVIDER"
        text = Text(f"{heading:<{NAME_WIDTH}} {'TODAY':>10} {'THIS MONTH':>12} {f'{CHART_DAYS} DAYS':>12}\n",
                    style="bold")
        total = summary.total
        for group in [*summary.groups, total]:
            bold = "bold" if group is total else ""
            name = plain(group.name, style=bold, limit=NAME_WIDTH)
            name.truncate(NAME_WIDTH, overflow="ellipsis", pad=True)
            text.append_text(name)
            text.append(f" {money(group.today):>10} {money(group.month):>12} {money(group.last_days):>12}\n",
                        style=bold)
        text.rstrip()
        return text
