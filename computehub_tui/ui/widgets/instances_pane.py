"""The Instances pane: every instance on every account, marks, bulk actions, cost so far."""

from __future__ import annotations

from itertools import islice

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.message import Message

from computehub_tui.domain.models import PROVIDER_TITLES, Instance, InstanceStatus
from computehub_tui.domain.pricing import plausible_rate
from computehub_tui.engine.hub import Hub
from computehub_tui.ui.format import duration, level_style, money, rate, spark
from computehub_tui.ui.plain import PlainStatic, plain
from computehub_tui.ui.problems import failure_lines
from computehub_tui.ui.widgets.virtual_table import Column, VirtualTable

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


def instance_columns(pane: InstancesPane) -> list[Column[Instance]]:
    def mark(instance: Instance) -> tuple[str, str | None]:
        return ("●", "bold yellow") if instance.key in pane.marked else (" ", None)

    def status(instance: Instance) -> tuple[str, str | None]:
        pending = pane.pending.get(instance.key)
        if pending:
            return (f"{ACTION_VERBS[pending]}…", "bold cyan")
        return (instance.status.value, STATUS_STYLE[instance.status])

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
        return (rate(value), "green" if instance.status.is_billing_compute else "dim")

    # What people scan first comes first, so an 80-column terminal still shows it without scrolling.
    return [
        Column("mark", "", 1, mark),
        Column("label", "LABEL", 16, lambda i: (i.label or "-", "bold")),
        Column("status", "STATUS", 12, status),
        Column("gpu", "GPU", 15, lambda i: (f"{i.gpu_count}x {i.gpu}", None)),
        Column("price", "$/H", 7, price, "right"),
        Column("cost", "COST", 8, cost, "right"),
        Column("util", "GPU UTIL", SPARK_WIDTH, util),
        Column("utilnow", "", 4, util_now, "right"),
        Column("uptime", "UPTIME", 7, uptime, "right"),
        Column("id", "ID", 24, lambda i: (i.key, "dim")),
        Column("location", "LOCATION", 14, lambda i: (i.location or "-", "dim")),
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
        Binding("escape", "clear_marks", "Clear marks", show=False),
        Binding("s", "instance_action('start')", "Start"),
        Binding("x", "instance_action('stop')", "Stop"),
        Binding("r", "instance_action('restart')", "Restart"),
        Binding("d", "instance_action('destroy')", "Destroy"),
        Binding("enter", "ssh", "SSH"),
        Binding("l", "logs", "Logs"),
        Binding("c", "copy_ssh", "Copy SSH"),
        Binding("i", "details", "Details"),
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

    def compose(self) -> ComposeResult:
        yield PlainStatic("waiting for instances…", id="instance-status")
        self.table: VirtualTable[Instance] = VirtualTable(
            instance_columns(self), row_key=lambda instance: instance.key,
            marked=lambda instance: instance.key in self.marked,
            empty_text=NO_INSTANCES_TEXT,
            id="instance-table",
        )
        yield self.table
        yield PlainStatic("", id="instance-detail")

    def attach(self, hub: Hub) -> None:
        self.hub = hub
        self.reload()

    def util_history(self, key: str) -> list[float]:
        if self.hub is None:
            return []
        samples = self.hub.metric_history(key)
        start = max(0, len(samples) - SPARK_WIDTH)
        # Runs per visible row per frame: read the tail only, never copy the whole history.
        return [s.mean_gpu_util or 0.0 for s in islice(samples, start, None)]

    def cost_of(self, key: str) -> float:
        return self.hub.cost_so_far(key) if self.hub else 0.0

    def reload(self) -> None:
        if self.hub is None:
            return
        self.render_now = self.hub.clock.now()
        order = {status: index for index, status in enumerate(
            (InstanceStatus.RUNNING, InstanceStatus.STARTING, InstanceStatus.PROVISIONING, InstanceStatus.EXITED,
             InstanceStatus.ERROR, InstanceStatus.UNKNOWN, InstanceStatus.STOPPED, InstanceStatus.TERMINATED))}
        instances = sorted(self.hub.instances(), key=lambda i: (order[i.status], i.provider, i.label, i.instance_id))
        live_keys = {instance.key for instance in instances}
        self.marked &= live_keys
        failures = failure_lines(self.hub, self.hub.poll.instances_interval_s)
        self.table.empty_text = "\n".join(failures) or NO_INSTANCES_TEXT
        self.table.set_rows(instances)
        self._update_status(instances)
        self._update_detail()

    def _update_status(self, instances: list[Instance]) -> None:
        assert self.hub is not None
        running = sum(1 for i in instances if i.status is InstanceStatus.RUNNING)
        text = Text()
        text.append(f"{len(instances)} instances", style="bold")
        text.append(f", {running} running", style="green" if running else "dim")
        if self.marked:
            text.append(f"   {len(self.marked)} marked", style="bold yellow")
        text.append(f"   burn {rate(self.hub.burn_rate())}/h", style="dim")
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
        for part, style in ((instance.label or "(no label)", ""), (f"{instance.gpu_count}x {instance.gpu}", ""),
                            (instance.provider_status, "dim")):
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
        if instance.image:
            text.append("   image ", style="dim")
            text.append_text(plain(instance.image, style="dim"))
        if caps and caps.notes:
            text.append("\n")
            text.append_text(plain(f"{PROVIDER_TITLES.get(instance.provider, instance.provider)}: "
                                   f"{'; '.join(caps.notes)}", style="italic yellow", limit=400))
        detail.update(text, layout=False)

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

