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

from computehub_tui.domain.text import clean_text
from computehub_tui.ui.plain import RenderGuard

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
    priority: int = 0
    """Where a table drops columns to fit a narrow terminal, the highest numbers go first."""


def columns_that_fit(columns: Sequence[Column[RowT]], width: int) -> list[Column[RowT]]:
    """``columns`` in their order, less the lowest-priority ones that do not fit in ``width`` cells."""
    kept = list(columns)
    by_priority = sorted(enumerate(columns), key=lambda numbered: (-numbered[1].priority, -numbered[0]))
    for _, dropped in by_priority:
        if sum(column.width + 1 for column in kept) <= width or dropped.priority == 0:
            break
        kept.remove(dropped)
    return kept


class TableMessage(Message):
    """Base of the table's messages: ``control`` lets `@on(..., "#id")` pick the table."""

    def __init__(self, table: VirtualTable) -> None:
        super().__init__()
        self.table = table

    @property
    def control(self) -> VirtualTable:
        return self.table


class VirtualTable(ScrollView, RenderGuard, Generic[RowT], can_focus=True):
    """Rows are plain objects; columns turn a row into cells. The header stays on the first line.
    Cells are plain text: never markup, and anything unprintable is cleaned before it is drawn.

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

    class CursorMoved(TableMessage):
        """The cursor is on another row (None when the table is empty)."""

        def __init__(self, table: VirtualTable, row: object | None) -> None:
            super().__init__(table)
            self.row = row

    class HeaderClicked(TableMessage):
        """A column title was clicked (tables use it to sort by that column)."""

        def __init__(self, table: VirtualTable, column_key: str) -> None:
            super().__init__(table)
            self.column_key = column_key

    class Activated(TableMessage):
        """Enter pressed (or a double click) on a row."""

        def __init__(self, table: VirtualTable, row: object) -> None:
            super().__init__(table)
            self.row = row

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
        self._line_styles: tuple[bool, tuple[Style, Style, Style, Style, Style]] | None = None
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
            found = self._find(previous)
            self.cursor = found if found is not None else min(self.cursor, max(0, len(self.rows) - 1))
        else:
            self.cursor = 0
        self._update_virtual_size()
        self._scroll_cursor_into_view()
        self.refresh()
        if self.current_row is not previous:
            self.post_message(self.CursorMoved(self, self.current_row))

    def _find(self, row: RowT) -> int | None:
        """Where ``row`` is now: by identity first (a filter keeps the same objects), then by key
        (a refresh brings new objects for the same offers)."""
        for index, candidate in enumerate(self.rows):
            if candidate is row:
                return index
        wanted = self.row_key(row)
        row_key = self.row_key
        for index, candidate in enumerate(self.rows):
            if row_key(candidate) == wanted:
                return index
        return None

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
            column = self._column_at(event.x + int(self.scroll_offset.x))
            if column is not None:
                self.post_message(self.HeaderClicked(self, column.key))
            return
        index = int(self.scroll_offset.y) + event.y - 1
        if 0 <= index < len(self.rows):
            if index == self.cursor and event.chain >= 2:
                self.post_message(self.Activated(self, self.rows[index]))
            self.move_to(index)

    # -- rendering --------------------------------------------------------------------------

    def _column_at(self, x: int) -> Column[RowT] | None:
        left = 0
        for column in self.columns:
            if left <= x < left + column.width + 1:
                return column
            left += column.width + 1
        return None

    @property
    def total_width(self) -> int:
        return sum(column.width + 1 for column in self.columns)

    def _update_virtual_size(self) -> None:
        size = Size(self.total_width, len(self.rows) + 1)
        if size == self.virtual_size:
            return
        old = self.virtual_size
        viewport = self.scrollable_content_region.size
        same_bars = (old.height > viewport.height) == (size.height > viewport.height) and (
            old.width > viewport.width) == (size.width > viewport.width)
        if self.is_mounted and same_bars and viewport.height > 0:
            # Only the scroll range changed: skip the screen-wide layout pass a reactive
            # assignment would trigger (it dominated the cost of a filter keystroke).
            self.set_reactive(VirtualTable.virtual_size, size)
            self._scroll_update(size)
            self.scroll_y = self.validate_scroll_y(self.scroll_y)
        else:
            self.virtual_size = size

    def _scroll_cursor_into_view(self) -> None:
        visible = max(1, self.size.height - 1)
        top = int(self.scroll_offset.y)
        if self.cursor < top:
            self.scroll_to(y=self.cursor, animate=False, immediate=True)
        elif self.cursor >= top + visible:
            self.scroll_to(y=self.cursor - visible + 1, animate=False, immediate=True)

    def on_resize(self) -> None:
        self._scroll_cursor_into_view()

    def notify_style_update(self) -> None:
        self._line_styles = None
        super().notify_style_update()

    def _base_styles(self) -> tuple[Style, Style, Style, Style, Style]:
        """The widget and component styles, computed once per style change rather than per line."""
        focused = self.has_focus
        if self._line_styles is None or self._line_styles[0] != focused:
            self._line_styles = (focused, (
                self.rich_style,
                self.get_component_rich_style("vtable--header"),
                self.get_component_rich_style("vtable--cursor"),
                self.get_component_rich_style("vtable--marked"),
                self.get_component_rich_style("vtable--empty"),
            ))
        return self._line_styles[1]

    def render_line(self, y: int) -> Strip:
        scroll_x, scroll_y = self.scroll_offset
        width = self.size.width
        base = self._base_styles()[0]
        if y == 0:
            strip = self._render_header(base)
        else:
            index = int(scroll_y) + y - 1
            if index < len(self.rows):
                strip = self._render_row(self.rows[index], index, base)
            elif not self.rows and y <= len(empty_lines := self.empty_text.splitlines()):
                style = base + self._base_styles()[4]
                strip = Strip([Segment(f" {empty_lines[y - 1]}", style)])
            else:
                strip = Strip([Segment(" " * width, base)])
        return strip.crop_extend(int(scroll_x), int(scroll_x) + width, base)

    def _render_header(self, base: Style) -> Strip:
        style = base + self._base_styles()[1]
        text = "".join(_fit(column.title, column.width, column.align) + " " for column in self.columns)
        return Strip([Segment(text.ljust(max(self.size.width, len(text))), style)])

    def _render_row(self, row: RowT, index: int, base: Style) -> Strip:
        _, _, cursor_style, marked_style, _ = self._base_styles()
        row_style = base
        if self.is_marked(row):
            row_style += marked_style
        if index == self.cursor:
            row_style += cursor_style
        segments: list[Segment] = []
        for column in self.columns:
            text, style = column.cell(row)
            cell_style = row_style
            if style:
                cell_style = row_style + (_parse_style(style) if isinstance(style, str) else style)
                if index == self.cursor:
                    cell_style += cursor_style
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
    if not text.isprintable():  # the screen's own guard; printable text (nearly every cell) costs one check
        text = clean_text(text, width + 1)
    if len(text) > width:
        return text[: max(0, width - 1)] + "…" if width > 1 else text[:width]
    return text.rjust(width) if align == "right" else text.ljust(width)
