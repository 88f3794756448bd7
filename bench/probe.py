"""Paint probes: when did a frame that shows the freshly rendered table reach the screen?

Headless Textual still composes every frame but skips turning it into terminal bytes; the frame
hook does that encoding (and throws the bytes away) so both sides pay what a real terminal costs.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from rich.console import RenderableType
from textual._compositor import CompositorUpdate
from textual.app import App
from textual.screen import Screen
from textual.strip import Strip
from textual.widget import Widget

RowTest = Callable[[Any, int], bool]
"""Given a table widget and the line ``y`` it just rendered: is that line an actual data row?"""


def _always_settled() -> bool:
    return True


class PaintProbe:
    """Armed just before an action; records the first later frame that repainted the table.

    ``settled`` lets a table say its deferred work is done (DataTable measures new cells when
    idle), so a frame drawn before that work does not count as the answer.
    """

    def __init__(self, *, need_data_rows: bool = False,
                 settled: Callable[[], bool] = _always_settled) -> None:
        self.need_data_rows = need_data_rows
        self.settled = settled
        self.armed_at: float | None = None
        self.painted_at: float | None = None
        self.frames = 0
        self.table_frames: list[float] = []
        """Times of every frame in which the table drew (data rows, if ``need_data_rows``)."""
        self.on_table_frame: Callable[[float], None] | None = None
        self._table_drawn = False

    def arm(self, at: float | None = None) -> None:
        self.armed_at = time.perf_counter() if at is None else at
        self.painted_at = None
        self._table_drawn = False

    @property
    def painted(self) -> bool:
        return self.painted_at is not None

    @property
    def latency_ms(self) -> float:
        if self.armed_at is None or self.painted_at is None:
            raise RuntimeError("the probe has not seen its frame yet")
        return (self.painted_at - self.armed_at) * 1000.0

    def line_rendered(self, is_data_row: bool) -> None:
        if is_data_row or not self.need_data_rows:
            self._table_drawn = True

    def frame_shown(self) -> None:
        self.frames += 1
        if self._table_drawn and self.settled():
            now = time.perf_counter()
            if self.on_table_frame is not None:
                self.on_table_frame(now)
            if self.armed_at is not None and self.painted_at is None:
                self.painted_at = now
        self._table_drawn = False


def hook_frames(app: App[Any], probe: PaintProbe) -> None:
    """Tell the probe about every frame the screen hands to the (headless) driver."""
    original = app._display

    def display(screen: Screen[Any], renderable: RenderableType | None) -> None:
        original(screen, renderable)
        if renderable is None or app._batch_count:
            return
        if isinstance(renderable, CompositorUpdate):
            renderable.render_segments(app.console)
        probe.frame_shown()

    app._display = display  # type: ignore[method-assign]


def hook_table_lines(table_class: type[Widget], probe: PaintProbe, is_data_row: RowTest,
                     only_id: str | None = None) -> None:
    """Report each line a table class renders; patched on the class so it is in place before
    the app composes its widgets (this runs only inside benchmark processes)."""
    original: Callable[[Any, int], Strip] = table_class.render_line  # type: ignore[assignment]

    def render_line(self: Widget, y: int) -> Strip:
        strip = original(self, y)
        if only_id is None or self.id == only_id:
            probe.line_rendered(is_data_row(self, y))
        return strip

    table_class.render_line = render_line  # type: ignore[method-assign]


def virtual_table_data_row(table: Any, y: int) -> bool:
    return y >= 1 and int(table.scroll_offset.y) + y - 1 < len(table.rows)


def data_table_data_row(table: Any, y: int) -> bool:
    return y >= 1 and table.row_count > 0


def data_table_settled(table: Any) -> bool:
    """No column measuring left for DataTable's idle handler to do."""
    return not table._require_update_dimensions and not table._new_rows
