"""A bare Textual app around a DataTable of offer rows; imports nothing from computehub_tui, so
as a startup baseline it costs only what Textual itself costs."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from rich.text import Text
from textual.app import App, ComposeResult
from textual.widgets import DataTable, Static

TABLE_ID = "offer-table"
"""The Offers pane's table id; the DataTable side uses it too."""

CellText = tuple[str, str | None]
"""A cell's text, already fitted to its column, and its Rich style."""
ColumnSpec = tuple[str, str, int, str]
"""key, title, width, align ("left" | "right")."""


def styled_cell(cell: Sequence[Any], align: str) -> Text:
    """Rich Text rather than a markup string: no markup parsing, and a ``[`` shows as itself."""
    text, style = cell
    return Text(text, style=style or "", justify="right" if align == "right" else "left",
                no_wrap=True, overflow="ellipsis")


class OfferDataTableApp(App[None]):
    """The DataTable laid out like the Offers pane (a status line above, two detail lines below),
    so both tables show the same number of rows in the same terminal."""

    CSS = """
    #offer-status { height: 1; }
    #offer-table { height: 1fr; }
    #offer-detail { height: 2; }
    """

    def __init__(self, columns: Sequence[Sequence[Any]],
                 rows: Sequence[Sequence[Sequence[Any]]] = ()) -> None:
        super().__init__()
        self.column_specs: list[ColumnSpec] = [
            (str(key), str(title), int(width), str(align)) for key, title, width, align in columns
        ]
        self.initial_rows = rows

    def compose(self) -> ComposeResult:
        yield Static("", id="offer-status")
        yield DataTable(id=TABLE_ID, cursor_type="row")
        yield Static("", id="offer-detail")

    def on_mount(self) -> None:
        table = self.table
        for key, title, width, _ in self.column_specs:
            table.add_column(title, width=width, key=key)
        aligns = [align for _, _, _, align in self.column_specs]
        for row in self.initial_rows:
            table.add_row(*(styled_cell(cell, align) for cell, align in zip(row, aligns)))
        table.focus()

    @property
    def table(self) -> DataTable[Any]:
        return self.query_one(f"#{TABLE_ID}", DataTable)
