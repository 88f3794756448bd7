"""The automation audit log: recent rule firings with the values that made each one fire."""

from __future__ import annotations

import time
from typing import ClassVar

from textual import work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.screen import ModalScreen

from computehub_tui.ui.plain import PlainStatic
from computehub_tui.ui.rules_source import FiringRow, RulesSource
from computehub_tui.ui.widgets.rules_pane import evidence_text
from computehub_tui.ui.widgets.virtual_table import Column, VirtualTable, columns_that_fit

FIRINGS_SHOWN = 500
NO_FIRINGS_TEXT = "No rule has fired yet. Firings (live and dry-run) land here with the values that made them fire."


def firing_columns() -> list[Column[FiringRow]]:
    return [
        Column("at", "TIME", 14, lambda row: (time.strftime("%m-%d %H:%M:%S", time.localtime(row.at)), "dim")),
        Column("rule", "RULE", 18, lambda row: (row.rule, "bold")),
        Column("instance", "INSTANCE", 20, lambda row: (row.instance_key or "account", None)),
        Column("action", "ACTION", 10, lambda row: (row.action, None)),
        Column("mode", "MODE", 7, lambda row: ("dry-run", "yellow") if row.dry_run else ("live", None)),
        Column("result", "RESULT", 22, lambda row: (row.result, None), priority=1),
        Column("evidence", "WHY", 50, lambda row: (evidence_text(row.evidence), "dim"), priority=2),
    ]


class AuditScreen(ModalScreen[None]):
    """Newest first; scrolls; r reloads."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape,q", "dismiss", "Close"),
        Binding("r", "reload", "Reload"),
    ]
    DEFAULT_CSS = """
    AuditScreen { align: center middle; }
    AuditScreen > Vertical { width: 100%; height: 100%; border: thick $accent; background: $surface; }
    AuditScreen .title { text-style: bold; padding: 0 1; }
    AuditScreen #audit-detail { height: 2; padding: 0 1; color: $text-muted; }
    """

    def __init__(self, source: RulesSource) -> None:
        super().__init__()
        self.source = source

    def compose(self) -> ComposeResult:
        with Vertical():
            yield PlainStatic("Automation audit log — newest first · r reload · esc close", classes="title")
            self.table: VirtualTable[FiringRow] = VirtualTable(
                firing_columns(), row_key=lambda row: (row.at, row.rule, row.instance_key, row.action),
                empty_text="loading…", id="audit-table")
            yield self.table
            yield PlainStatic("", id="audit-detail")

    def on_mount(self) -> None:
        self.table.focus()
        self.action_reload()

    def on_resize(self) -> None:
        self.table.set_columns(columns_that_fit(firing_columns(), self.table.size.width - 1))

    def action_reload(self) -> None:
        self._load()

    @work(group="audit", exclusive=True, exit_on_error=False)
    async def _load(self) -> None:
        rows = await self.source.firings(FIRINGS_SHOWN)
        self.table.empty_text = NO_FIRINGS_TEXT
        self.table.set_rows(rows, keep_cursor=False)
        self._show_detail(self.table.current_row)

    def on_virtual_table_cursor_moved(self, message: VirtualTable.CursorMoved) -> None:
        row = message.row
        self._show_detail(row if isinstance(row, FiringRow) else None)

    def _show_detail(self, row: FiringRow | None) -> None:
        """The whole evidence and result of the selected firing, which the columns may cut."""
        text = "" if row is None else f"{row.result} — {evidence_text(row.evidence) or 'no values recorded'}"
        self.query_one("#audit-detail", PlainStatic).update(text)

