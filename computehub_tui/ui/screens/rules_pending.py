"""Pending warnings: actions announced by WARN that run at their time unless snoozed or cancelled."""

from __future__ import annotations

from collections.abc import Awaitable
from typing import ClassVar

from textual import work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.screen import ModalScreen

from computehub_tui.clock import Clock
from computehub_tui.ui.format import duration
from computehub_tui.ui.plain import PlainStatic
from computehub_tui.ui.rules_source import PendingWarning, RulesSource
from computehub_tui.ui.widgets.rules_pane import applied
from computehub_tui.ui.widgets.virtual_table import Column, VirtualTable

SNOOZE_SHORT_S = 15 * 60.0
SNOOZE_LONG_S = 3600.0
NO_PENDING_TEXT = "No pending warnings. A rule with WARN 10m before its action announces it here first."


class PendingScreen(ModalScreen[None]):
    """z snoozes the selected warning 15 minutes, Z an hour; c cancels it (the action does not run)."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape,q", "dismiss", "Close"),
        Binding("z", f"snooze({SNOOZE_SHORT_S})", "Snooze 15m"),
        Binding("Z", f"snooze({SNOOZE_LONG_S})", "Snooze 1h", key_display="Z"),
        Binding("c", "cancel_warning", "Cancel it"),
    ]
    DEFAULT_CSS = """
    PendingScreen { align: center middle; }
    PendingScreen > Vertical { width: 100; max-width: 100%; height: 20; max-height: 100%; border: thick $warning;
                               background: $surface; }
    PendingScreen .title { text-style: bold; padding: 0 1; }
    """

    def __init__(self, source: RulesSource, clock: Clock) -> None:
        super().__init__()
        self.source = source
        self.clock = clock

    def compose(self) -> ComposeResult:
        with Vertical():
            yield PlainStatic("Pending warnings — z snooze 15m · Z snooze 1h · c cancel · esc close", classes="title")
            self.table: VirtualTable[PendingWarning] = VirtualTable(
                [Column("rule", "RULE", 20, lambda row: (row.rule, "bold")),
                 Column("instance", "INSTANCE", 24, lambda row: (row.instance_key or "account", None)),
                 Column("action", "ACTION", 10, lambda row: (row.action, "yellow")),
                 Column("acts", "ACTS IN", 10, lambda row: (duration(row.acts_at - self.clock.now()), None),
                        align="right")],
                row_key=lambda row: row.id, empty_text=NO_PENDING_TEXT, id="pending-table")
            yield self.table

    def on_mount(self) -> None:
        self.table.focus()
        self.reload()
        self.set_interval(1.0, self.table.refresh)  # the countdowns

    def reload(self) -> None:
        self.table.set_rows(list(self.source.pending()))

    def action_snooze(self, seconds: float) -> None:
        warning = self.table.current_row
        if warning is not None:
            self._change(self.source.snooze(warning.id, seconds),
                         f"{warning.action} of {warning.instance_key or 'the account'} snoozed {duration(seconds)}")

    def action_cancel_warning(self) -> None:
        warning = self.table.current_row
        if warning is not None:
            self._change(self.source.cancel(warning.id),
                         f"{warning.action} of {warning.instance_key or 'the account'} cancelled")

    @work(group="pending-change", exit_on_error=False)
    async def _change(self, change: Awaitable[None], done: str) -> None:
        if await applied(self.app, change, done):
            self.reload()
