"""The Instances pane: every instance on every account, marks, bulk actions, cost so far, projects."""

from __future__ import annotations

from collections import Counter
from functools import partial
from itertools import islice

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.message import Message

from computehub_tui.domain.models import PROVIDER_TITLES, Instance, InstanceStatus
from computehub_tui.domain.pricing import plausible_rate
from computehub_tui.domain.projects import project_from_label
from computehub_tui.engine.actions import ACTOR_USER
from computehub_tui.engine.hub import Hub
from computehub_tui.engine.projects import ProjectAssignment
from computehub_tui.ui.format import duration, level_style, money, rate, spark
from computehub_tui.ui.plain import PlainStatic, plain
from computehub_tui.ui.problems import failure_lines
from computehub_tui.ui.screens.projects import (
    NO_PROJECT_TEXT,
    FilterPick,
    ProjectFilter,
    ProjectFilterScreen,
    ProjectScreen,
)
from computehub_tui.ui.widgets.virtual_table import Cell, Column, VirtualTable, columns_that_fit

STATUS_STYLE: dict[InstanceStatus, str] = {
    InstanceStatus.RUNNING: "bold green",
    InstanceStatus.PROVISIONING: "cyan",
    InstanceStatus.STARTING: "cyan",
    InstanceStatus.STOPPED: "yellow",
    InstanceStatus.EXITED: "bold red",
    InstanceStatus.ERROR: "bold red",
    InstanceStatus.TERMINATED: "dim",
    InstanceStatus.UNKNOWN: "magenta",
}
SPARK_WIDTH = 16
ACTION_VERBS = {"start": "starting", "stop": "stopping", "restart": "restarting", "destroy": "destroying"}
NO_INSTANCES_TEXT = "no instances — pick an offer in the Offers pane (1) and press Enter to launch"
BILLING_STOPPED_STYLE = "bold black on yellow"
"""Stopped, yet its storage bills: money leaking while nothing runs."""


def instance_columns(pane: InstancesPane) -> list[Column[Instance]]:
    def mark(instance: Instance) -> tuple[str, str | None]:
        return ("●", "bold yellow") if instance.key in pane.marked else (" ", None)

    def status(instance: Instance) -> tuple[str, str | None]:
        pending = pane.pending.get(instance.key)
        if pending:
            return (f"{ACTION_VERBS[pending]}…", "bold cyan")
        if instance.key in pane.billing_stopped:
            return (f"{instance.status.value}·bills", BILLING_STOPPED_STYLE)
        return (instance.status.value, STATUS_STYLE[instance.status])

    def project(instance: Instance) -> Cell:
        assignment = pane.assignments.get(instance.key)
        if assignment is None or assignment.project is None:
            return ("-", "dim")
        return (assignment.project, None if assignment.source == "set" else "dim")  # dim: implied by the label

    def util(instance: Instance) -> tuple[str, str | None]:
        history = pane.util_history(instance.key)
        if instance.status is not InstanceStatus.RUNNING or not history:
            return ("", None)
        return (spark(history, SPARK_WIDTH), level_style(history[-1]))

    def util_now(instance: Instance) -> tuple[str, str | None]:
        value = instance.metrics.mean_gpu_util if instance.metrics else None
        if value is None or instance.status is not InstanceStatus.RUNNING:
            return ("-", "dim")
        return (f"{value:.0f}%", level_style(value))

    def uptime(instance: Instance) -> tuple[str, str | None]:
        since = pane.hub.running_since(instance.key) if pane.hub else None
        if since is None:
            return ("-", "dim")
        return (duration(pane.render_now - since), None)

    def cost(instance: Instance) -> tuple[str, str | None]:
        return (money(pane.cost_of(instance.key)), None)

    def price(instance: Instance) -> tuple[str, str | None]:
        value = plausible_rate(instance)
        if value is None:
            return ("?", "bold red")  # an unbelievable provider figure: shown as unknown, never summed
        if instance.key in pane.billing_stopped:
            return (rate(value), "bold yellow")
        return (rate(value), "green" if instance.status.is_billing_compute else "dim")

    # What people scan first comes first; a narrow terminal drops the highest priority numbers first, so
    # 80 columns still show label, status, project, GPU and money without scrolling.
    return [
        Column("mark", "", 1, mark),
        Column("label", "LABEL", 16, lambda i: (pane.shown_label(i) or "-", "bold")),
        Column("status", "STATUS", 13, status),
        Column("project", "PROJECT", 12, project, priority=3),
        Column("gpu", "GPU", 15, lambda i: (f"{i.gpu_count}x {i.gpu}", None), priority=4),
        Column("price", "$/H", 7, price, "right", priority=1),
        Column("cost", "COST", 8, cost, "right", priority=2),
        Column("util", "GPU UTIL", SPARK_WIDTH, util, priority=5),
        Column("utilnow", "", 4, util_now, "right", priority=5),
        Column("uptime", "UPTIME", 7, uptime, "right", priority=6),
        Column("id", "ID", 24, lambda i: (i.key, "dim"), priority=7),
        Column("location", "LOCATION", 14, lambda i: (i.location or "-", "dim"), priority=8),
    ]


class InstancesPane(Vertical):
    """Actions apply to the marked rows, or to the row under the cursor when nothing is marked."""

    class ActionRequested(Message):
        """Start, stop, restart or destroy ``instances`` (the marked ones, or the one under the cursor)."""

        def __init__(self, action: str, instances: list[Instance]) -> None:
            super().__init__()
            self.action = action
            self.instances = instances

    class SshRequested(Message):
        """Open an SSH session to ``instance``, which has an SSH endpoint."""

        def __init__(self, instance: Instance) -> None:
            super().__init__()
            self.instance = instance

    class LogsRequested(Message):
        """Show ``instance``'s logs."""

        def __init__(self, instance: Instance) -> None:
            super().__init__()
            self.instance = instance

    class DetailsRequested(Message):
        """Open the detail screen of ``instance``: charts, ports, logs."""

        def __init__(self, instance: Instance) -> None:
            super().__init__()
            self.instance = instance

    class CopyRequested(Message):
        """Copy ``text`` to the clipboard; ``what`` names it for the user ("the SSH command")."""

        def __init__(self, text: str, what: str) -> None:
            super().__init__()
            self.text = text
            self.what = what

    BINDINGS = [
        Binding("space", "toggle_mark", "Mark"),
        Binding("ctrl+a", "mark_all", "Mark all", show=False),
        Binding("escape", "clear_marks_or_filter", "Clear marks, then the project filter", show=False),
        Binding("s", "instance_action('start')", "Start"),
        Binding("x", "instance_action('stop')", "Stop"),
        Binding("r", "instance_action('restart')", "Restart"),
        Binding("d", "instance_action('destroy')", "Destroy"),
        Binding("enter", "ssh", "SSH"),
        Binding("l", "logs", "Logs"),
        Binding("c", "copy_ssh", "Copy SSH"),
        Binding("i", "details", "Details"),
        Binding("p", "set_project", "Set project", show=False),
        Binding("f", "filter_project", "Filter by project", show=False),
    ]

    DEFAULT_CSS = """
    InstancesPane { height: 1fr; }
    InstancesPane #instance-status { height: 1; padding: 0 1; background: $panel-darken-1; }
    InstancesPane #instance-detail { height: 3; padding: 0 1; color: $text-muted; background: $panel-darken-1;
                                     text-wrap: nowrap; text-overflow: ellipsis; }
    """

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.hub: Hub | None = None
        self.marked: set[str] = set()
        self.pending: dict[str, str] = {}
        self.render_now = 0.0
        self.assignments: dict[str, ProjectAssignment] = {}
        """Every instance's project (shown or filtered out), as of the last reload."""
        self.billing_stopped: dict[str, float] = {}
        """$/h of each stopped instance whose storage still bills, as of the last reload."""
        self.project_filter: ProjectFilter | None = None
        self._all_columns = instance_columns(self)
        self._total = 0

    def compose(self) -> ComposeResult:
        yield PlainStatic("waiting for instances…", id="instance-status")
        self.table: VirtualTable[Instance] = VirtualTable(
            self._all_columns, row_key=lambda instance: instance.key,
            marked=lambda instance: instance.key in self.marked,
            empty_text=NO_INSTANCES_TEXT,
            id="instance-table",
        )
        yield self.table
        yield PlainStatic("", id="instance-detail")

    def attach(self, hub: Hub) -> None:
        self.hub = hub
        self.reload()

    def on_resize(self) -> None:
        width = self.table.size.width - self.table.styles.scrollbar_size_vertical
        fitting = columns_that_fit(self._all_columns, width)
        if [column.key for column in fitting] != [column.key for column in self.table.columns]:
            self.table.set_columns(fitting)

    def util_history(self, key: str) -> list[float]:
        if self.hub is None:
            return []
        samples = self.hub.metric_history(key)
        start = max(0, len(samples) - SPARK_WIDTH)
        # Runs per visible row per frame: read the tail only, never copy the whole history.
        return [s.mean_gpu_util or 0.0 for s in islice(samples, start, None)]

    def cost_of(self, key: str) -> float:
        return self.hub.cost_so_far(key) if self.hub else 0.0

    def shown_label(self, instance: Instance) -> str:
        """The provider's label, and the one a rule's ``label`` keeps locally."""
        return self.hub.local_labels.shown(instance) if self.hub else instance.label

    def reload(self) -> None:
        if self.hub is None:
            return
        self.render_now = self.hub.clock.now()
        order = {status: index for index, status in enumerate(
            (InstanceStatus.RUNNING, InstanceStatus.STARTING, InstanceStatus.PROVISIONING, InstanceStatus.EXITED,
             InstanceStatus.ERROR, InstanceStatus.UNKNOWN, InstanceStatus.STOPPED, InstanceStatus.TERMINATED))}
        everything = self.hub.instances()
        self._total = len(everything)
        self.assignments = {assignment.key: assignment for assignment in self.hub.projects.listing(everything)}
        costs = self.hub.costs
        self.billing_stopped = {i.key: costs.rate_now(i) or 0.0 for i in everything if costs.billing_while_stopped(i)}
        shown = [i for i in everything if self._passes_filter(i)]
        instances = sorted(shown, key=lambda i: (order[i.status], i.provider, i.label, i.instance_id))
        self.marked &= {instance.key for instance in instances}  # hidden rows are never acted on
        failures = failure_lines(self.hub, self.hub.poll.instances_interval_s)
        self.table.empty_text = "\n".join(failures) or self._no_rows_text()
        self.table.set_rows(instances)
        self._update_status(instances)
        self._update_detail()

    def _passes_filter(self, instance: Instance) -> bool:
        if self.project_filter is None:
            return True
        assignment = self.assignments.get(instance.key)
        return (assignment.project if assignment else None) == self.project_filter.project

    def _no_rows_text(self) -> str:
        if self.project_filter is None:
            return NO_INSTANCES_TEXT
        return f"no instances in {_filter_title(self.project_filter)} — esc shows every project"

    def _update_status(self, instances: list[Instance]) -> None:
        assert self.hub is not None
        running = sum(1 for i in instances if i.status is InstanceStatus.RUNNING)
        text = Text()
        if self.project_filter is not None:
            text.append(" ", style="bold reverse")
            text.append_text(plain(_filter_title(self.project_filter), style="bold reverse"))
            text.append(" ", style="bold reverse")
            text.append("  ")
        text.append(f"{len(instances)} instances", style="bold")
        if self.project_filter is not None:
            text.append(f" of {self._total}", style="dim")
        text.append(f", {running} running", style="green" if running else "dim")
        if self.marked:
            text.append(f"   {len(self.marked)} marked", style="bold yellow")
        text.append(f"   burn {rate(self.hub.burn_rate())}/h", style="dim")
        leaking = [self.billing_stopped[i.key] for i in instances if i.key in self.billing_stopped]
        if leaking:
            text.append(f"   {len(leaking)} stopped · billing {rate(sum(leaking))}/h", style="bold yellow")
        stale = [h.provider for h in self.hub.health() if h.instances_at and self.hub.is_stale(h.provider)]
        if stale:
            text.append(f"   stale: {', '.join(stale)} (showing last good data)", style="bold yellow")
        self.query_one("#instance-status", PlainStatic).update(text, layout=False)

    def _update_detail(self) -> None:
        instance = self.table.current_row
        detail = self.query_one("#instance-detail", PlainStatic)
        if instance is None or self.hub is None:
            detail.update("", layout=False)
            return
        polled = {health.provider for health in self.hub.health()}
        caps = self.hub.capabilities(instance.provider) if instance.provider in polled else None
        text = plain(instance.key, style="bold")
        text.append("  ")
        text.append_text(plain(self.shown_label(instance) or "(no label)"))
        if instance.key in self.billing_stopped:
            text.append(f"  {instance.status.value} · billing {rate(self.billing_stopped[instance.key])}/h for "
                        "its storage", style=BILLING_STOPPED_STYLE)
        for part, style in ((f"{instance.gpu_count}x {instance.gpu}", ""), (instance.provider_status, "dim")):
            text.append("  ")
            text.append_text(plain(part, style=style))
        if instance.status_message:
            text.append(" — ", style="dim")
            text.append_text(plain(instance.status_message, style="dim"))
        text.append("\nSSH: ")
        if instance.ssh:
            text.append_text(plain(instance.ssh.command, style="bold"))
        else:
            text.append("not available yet", style="dim")
        text.append_text(self._project_text(instance))
        if instance.image:
            text.append("   image ", style="dim")
            text.append_text(plain(instance.image, style="dim"))
        if caps and caps.notes:
            text.append("\n")
            text.append_text(plain(f"{PROVIDER_TITLES.get(instance.provider, instance.provider)}: "
                                   f"{'; '.join(caps.notes)}", style="italic yellow", limit=400))
        detail.update(text, layout=False)

    def _project_text(self, instance: Instance) -> Text:
        assignment = self.assignments.get(instance.key)
        if assignment is None or assignment.project is None:
            return Text("   no project", style="dim")
        text = Text("   project ", style="dim")
        text.append_text(plain(assignment.project, style="bold" if assignment.source == "set" else ""))
        if assignment.source == "label":
            text.append(" (from its label)", style="dim")
        return text

    @on(VirtualTable.CursorMoved, "#instance-table")
    def _cursor_moved(self, event: VirtualTable.CursorMoved) -> None:
        self._update_detail()

    # -- marks ------------------------------------------------------------------------------

    def action_toggle_mark(self) -> None:
        instance = self.table.current_row
        if instance is None:
            return
        self.marked.symmetric_difference_update({instance.key})
        self.table.action_cursor(1)
        self.table.refresh()
        if self.hub:
            self._update_status(self.table.rows)

    def action_mark_all(self) -> None:
        self.marked = {instance.key for instance in self.table.rows}
        self.table.refresh()
        if self.hub:
            self._update_status(self.table.rows)

    def action_clear_marks(self) -> None:
        self.marked.clear()
        self.table.refresh()
        if self.hub:
            self._update_status(self.table.rows)

    def action_clear_marks_or_filter(self) -> None:
        if self.marked or self.project_filter is None:
            self.action_clear_marks()
        else:
            self.set_project_filter(None)

    # -- projects ---------------------------------------------------------------------------

    def action_set_project(self) -> None:
        targets = self.targets()
        if not targets:
            self.app.notify("No instance selected", severity="warning")
            return
        chosen = {(self.assignments[t.key].project or "") if self._is_set(t.key) else "" for t in targets}
        current = chosen.pop() if len(chosen) == 1 else ""
        if len(targets) == 1:
            label_project = project_from_label(targets[0].label)
            what = f"{targets[0].key} ({targets[0].label or 'no label'})"
            fallback = f"back to its label's project, {label_project}" if label_project else "it then has none"
        else:
            what, fallback = f"{len(targets)} marked instances", "each goes back to its label's project"
        self.app.push_screen(ProjectScreen(what, current, fallback),
                             partial(self._project_chosen, [target.key for target in targets]))

    def _is_set(self, key: str) -> bool:
        assignment = self.assignments.get(key)
        return assignment is not None and assignment.source == "set"

    def _project_chosen(self, keys: list[str], name: str | None) -> None:
        if name is not None:
            self._write_projects(keys, name)

    @work(group="projects", exit_on_error=False)
    async def _write_projects(self, keys: list[str], name: str) -> None:
        """``name`` "" clears the set project: the label's applies again."""
        if self.hub is None:
            return
        projects = self.hub.projects
        try:
            for key in keys:
                if name:
                    await projects.set(key, name, actor=ACTOR_USER)
                else:
                    await projects.clear(key, actor=ACTOR_USER)
        except Exception as error:  # noqa: BLE001 - a failed store write is shown; the app keeps running
            self.app.notify(f"The project was not saved: {error}", title="Project", severity="error", timeout=10)
        else:
            done = f"project {name}" if name else "the project its label implies"
            self.app.notify(f"{_count(len(keys))} now in {done}", title="Project", timeout=4)
            self.marked.clear()
        self.reload()

    def action_filter_project(self) -> None:
        counts = Counter(assignment.project for assignment in self.assignments.values())
        present = sorted(counts.items(), key=lambda item: (item[0] is None, item[0] or ""))
        self.app.push_screen(ProjectFilterScreen(present, self.project_filter), self._filter_chosen)

    def _filter_chosen(self, pick: FilterPick | None) -> None:
        if pick is not None:
            self.set_project_filter(pick.filter)

    def action_clear_project_filter(self) -> None:
        self.set_project_filter(None)

    def set_project_filter(self, chosen: ProjectFilter | None) -> None:
        """Show only the instances of one project (None: every instance)."""
        self.project_filter = chosen
        self.reload()

    def targets(self) -> list[Instance]:
        if self.marked:
            return [instance for instance in self.table.rows if instance.key in self.marked]
        return [self.table.current_row] if self.table.current_row is not None else []

    # -- actions ----------------------------------------------------------------------------

    def action_instance_action(self, action: str) -> None:
        targets = self.targets()
        if not targets:
            self.app.notify("No instance selected", severity="warning")
            return
        self.post_message(self.ActionRequested(action, targets))

    def set_pending(self, keys: list[str], action: str | None) -> None:
        for key in keys:
            if action is None:
                self.pending.pop(key, None)
            else:
                self.pending[key] = action
        self.table.refresh()

    def action_logs(self) -> None:
        instance = self.table.current_row
        if instance is not None:
            self.post_message(self.LogsRequested(instance))

    def action_details(self) -> None:
        instance = self.table.current_row
        if instance is not None:
            self.post_message(self.DetailsRequested(instance))

    def action_ssh(self) -> None:
        instance = self.table.current_row
        if instance is None or instance.ssh is None:
            self.app.notify("No SSH endpoint for this instance yet (it appears once it is running)",
                            severity="warning")
            return
        self.post_message(self.SshRequested(instance))

    @on(VirtualTable.Activated, "#instance-table")
    def _activated(self, event: VirtualTable.Activated) -> None:
        self.action_ssh()

    def action_copy_ssh(self) -> None:
        instance = self.table.current_row
        if instance is None or instance.ssh is None:
            self.app.notify("No SSH endpoint for this instance yet", severity="warning")
            return
        self.post_message(self.CopyRequested(instance.ssh.command, "the SSH command"))



def _filter_title(chosen: ProjectFilter) -> str:
    return f"project {chosen.project}" if chosen.project else NO_PROJECT_TEXT


def _count(instances: int) -> str:
    return "1 instance is" if instances == 1 else f"{instances} instances are"
