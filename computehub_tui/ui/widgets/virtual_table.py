"""A Line-API table that renders only the visible rows, so 20,000 rows cost what 50 do."""

from __future__ import annotations

from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Generic, TypeVar

from rich.segment import Segment
from rich.style import Style
from textual import events
from textual.binding import Binding
from textual.geometry import Size
from textual.message import Message
from textual.scroll_view import ScrollView
from textual.strip import Strip

RowT = TypeVar("RowT")

Cell = tuple[str, Style | str | None]
"""Text of a cell and an optional style for it."""


@dataclass(frozen=True)
class Column(Generic[RowT]):
    key: str
    title: str
    width: int
    cell: Callable[[RowT], Cell]
    align: str = "left"
    """left | right"""


class VirtualTable(ScrollView, Generic[RowT], can_focus=True):
    """Rows are plain objects; columns turn a row into cells. The header stays on the first line.

    ``set_rows`` keeps the cursor on the same row (by key) across refreshes, so live updates never
    make the selection jump.
    """

    DEFAULT_CSS = """
    VirtualTable {
        height: 1fr;
        background: $surface;
        scrollbar-size-vertical: 1;
    }
    VirtualTable > .vtable--header { text-style: bold; color: $text-accent; background: $panel; }
    VirtualTable > .vtable--cursor { background: $accent 40%; }
    VirtualTable:focus > .vtable--cursor { background: $accent 70%; text-style: bold; }
    VirtualTable > .vtable--marked { color: $warning; text-style: bold; }
    VirtualTable > .vtable--empty { color: $text-muted; text-style: italic; }
    """
    COMPONENT_CLASSES = {"vtable--header", "vtable--cursor", "vtable--marked", "vtable--empty"}

    BINDINGS = [
        Binding("up,k", "cursor(-1)", "Up", show=False),
        Binding("down,j", "cursor(1)", "Down", show=False),
        Binding("pageup", "page(-1)", "Page up", show=False),
        Binding("pagedown", "page(1)", "Page down", show=False),
        Binding("home,g", "jump(0)", "Top", show=False),
        Binding("end,G", "jump(-1)", "Bottom", show=False),
        Binding("enter", "activate", "Open", show=False),
    ]

    class CursorMoved(Message):
        def __init__(self, table: VirtualTable, row: object | None) -> None:
            super().__init__()
            self.table = table
            self.row = row

        @property
        def control(self) -> VirtualTable:
            return self.table

    class Activated(Message):
        """Enter pressed (or a double click) on a row."""

        def __init__(self, table: VirtualTable, row: object) -> None:
            super().__init__()
            self.table = table
            self.row = row

        @property
        def control(self) -> VirtualTable:
            return self.table

    def __init__(
        self,
        columns: Sequence[Column[RowT]],
        row_key: Callable[[RowT], Hashable],
        *,
        empty_text: str = "nothing to show",
        marked: Callable[[RowT], bool] | None = None,
        name: str | None = None,
        id: str | None = None,
        classes: str | None = None,
    ) -> None:
        super().__init__(name=name, id=id, classes=classes)
        self.columns = list(columns)
        self.row_key = row_key
        self.empty_text = empty_text
        self.is_marked = marked or (lambda row: False)
        self.rows: list[RowT] = []
        self.cursor = 0
        self._index_by_key: dict[Hashable, int] = {}
        self._update_virtual_size()

    # -- data -------------------------------------------------------------------------------

    @property
    def current_row(self) -> RowT | None:
        return self.rows[self.cursor] if 0 <= self.cursor < len(self.rows) else None

    def set_rows(self, rows: Sequence[RowT], *, keep_cursor: bool = True) -> None:
        """Replace the rows; the cursor follows its row if it is still there."""
        previous = self.current_row
        self.rows = list(rows)
        self._index_by_key = {}
        if keep_cursor and previous is not None:
            wanted = self.row_key(previous)
            for index, row in enumerate(self.rows):
                if self.row_key(row) == wanted:
                    self.cursor = index
                    break
            else:
                self.cursor = min(self.cursor, max(0, len(self.rows) - 1))
        else:
            self.cursor = 0
        self._update_virtual_size()
        self._scroll_cursor_into_view()
        self.refresh()
        if self.current_row is not previous:
            self.post_message(self.CursorMoved(self, self.current_row))

    def index_of(self, key: Hashable) -> int | None:
        if not self._index_by_key and self.rows:
            self._index_by_key = {self.row_key(row): index for index, row in enumerate(self.rows)}
        return self._index_by_key.get(key)

    def move_to(self, index: int) -> None:
        if not self.rows:
            return
        index = max(0, min(len(self.rows) - 1, index))
        if index != self.cursor:
            self.cursor = index
            self._scroll_cursor_into_view()
            self.refresh()
            self.post_message(self.CursorMoved(self, self.current_row))

    def set_columns(self, columns: Sequence[Column[RowT]]) -> None:
        self.columns = list(columns)
        self._update_virtual_size()
        self.refresh()

    # -- actions ----------------------------------------------------------------------------

    def action_cursor(self, delta: int) -> None:
        self.move_to(self.cursor + delta)

    def action_page(self, direction: int) -> None:
        self.move_to(self.cursor + direction * max(1, self.size.height - 2))

    def action_jump(self, where: int) -> None:
        self.move_to(len(self.rows) - 1 if where < 0 else where)

    def action_activate(self) -> None:
        if self.current_row is not None:
            self.post_message(self.Activated(self, self.current_row))

    def on_click(self, event: events.Click) -> None:
        if event.y < 1:
            return
        index = int(self.scroll_offset.y) + event.y - 1
        if 0 <= index < len(self.rows):
            if index == self.cursor and event.chain >= 2:
                self.post_message(self.Activated(self, self.rows[index]))
            self.move_to(index)

    # -- rendering --------------------------------------------------------------------------

    @property
    def total_width(self) -> int:
        return sum(column.width + 1 for column in self.columns)

    def _update_virtual_size(self) -> None:
        self.virtual_size = Size(self.total_width, len(self.rows) + 1)

    def _scroll_cursor_into_view(self) -> None:
        visible = max(1, self.size.height - 1)
        top = int(self.scroll_offset.y)
        if self.cursor < top:
            self.scroll_to(y=self.cursor, animate=False, immediate=True)
        elif self.cursor >= top + visible:
            self.scroll_to(y=self.cursor - visible + 1, animate=False, immediate=True)

    def on_resize(self) -> None:
        self._scroll_cursor_into_view()

    def render_line(self, y: int) -> Strip:
        scroll_x, scroll_y = self.scroll_offset
        width = self.size.width
        base = self.rich_style
        if y == 0:
            strip = self._render_header(base)
        else:
            index = int(scroll_y) + y - 1
            if index < len(self.rows):
                strip = self._render_row(self.rows[index], index, base)
            elif not self.rows and y == 1:
                style = base + self.get_component_rich_style("vtable--empty")
                strip = Strip([Segment(f" {self.empty_text}", style)])
            else:
                strip = Strip([Segment(" " * width, base)])
        return strip.crop_extend(int(scroll_x), int(scroll_x) + width, base)

    def _render_header(self, base: Style) -> Strip:
        style = base + self.get_component_rich_style("vtable--header")
        text = "".join(_fit(column.title, column.width, column.align) + " " for column in self.columns)
        return Strip([Segment(text.ljust(max(self.size.width, len(text))), style)])

    def _render_row(self, row: RowT, index: int, base: Style) -> Strip:
        row_style = base
        if self.is_marked(row):
            row_style += self.get_component_rich_style("vtable--marked")
        if index == self.cursor:
            row_style += self.get_component_rich_style("vtable--cursor")
        segments: list[Segment] = []
        for column in self.columns:
            text, style = column.cell(row)
            cell_style = row_style
            if style:
                cell_style = row_style + (_parse_style(style) if isinstance(style, str) else style)
                if index == self.cursor:
                    cell_style += self.get_component_rich_style("vtable--cursor")
            segments.append(Segment(_fit(text, column.width, column.align), cell_style))
            segments.append(Segment(" ", row_style))
        used = self.total_width
        if used < self.size.width:
            segments.append(Segment(" " * (self.size.width - used), row_style))
        return Strip(segments)


@lru_cache(maxsize=256)
def _parse_style(text: str) -> Style:
    return Style.parse(text)


def _fit(text: str, width: int, align: str) -> str:
    if len(text) > width:
        return text[: max(0, width - 1)] + "…" if width > 1 else text[:width]
    return text.rjust(width) if align == "right" else text.ljust(width)
