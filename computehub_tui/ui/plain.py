"""Where provider text meets the screen: plain text (never markup), cleaned again, render errors contained."""

from __future__ import annotations

import logging

from rich.segment import Segment
from rich.style import Style
from rich.text import Text
from textual.geometry import Region, Size
from textual.strip import Strip
from textual.visual import VisualType
from textual.widget import Widget
from textual.widgets import Static

from computehub_tui.domain.text import LABEL_LIMIT, clean_text

log = logging.getLogger(__name__)

MESSAGE_LIMIT = 2000
"""Bound for one line of a message built from provider text (an error body, a notification)."""
_FAILURE_STYLE = Style(color="red", italic=True)


def plain(value: object, style: str = "", limit: int = LABEL_LIMIT) -> Text:
    """One line of provider text for any widget: never parsed as markup, controls and escapes removed."""
    return Text(clean_text(value, limit), style=style)


def plain_lines(text: str, limit: int = MESSAGE_LIMIT) -> str:
    """A multi-line message made safe line by line; the line breaks survive, nothing else does."""
    return "\n".join(clean_text(line, limit) for line in text.splitlines())


class RenderGuard(Widget):
    """Mixin for widgets that show provider data: an exception while measuring or painting shows
    "(cannot display: …)" in place instead of reaching Textual, which would end the whole app
    (the compositor hands any render error to ``App._handle_exception``, which exits).

    List it *after* the widget class (``class X(Static, RenderGuard)``): Textual inherits CSS
    along the first base only, and the widget's own methods still come first."""

    _render_failure = ""

    def render_lines(self, crop: Region) -> list[Strip]:
        try:
            return super().render_lines(crop)
        except Exception as error:  # noqa: BLE001 - the whole point: one bad value must not kill the app
            self._note_failure(error)
            text = f" (cannot display: {self._render_failure})"
            first = Strip([Segment(text, _FAILURE_STYLE)]).crop_extend(0, crop.width, None)
            return [first, *[Strip.blank(crop.width) for _ in range(crop.height - 1)]]

    def get_content_height(self, container: Size, viewport: Size, width: int) -> int:
        try:
            return super().get_content_height(container, viewport, width)
        except Exception as error:  # noqa: BLE001
            self._note_failure(error)
            return 1

    def get_content_width(self, container: Size, viewport: Size) -> int:
        try:
            return super().get_content_width(container, viewport)
        except Exception as error:  # noqa: BLE001
            self._note_failure(error)
            return container.width

    def _note_failure(self, error: Exception) -> None:
        summary = clean_text(f"{type(error).__name__}: {error}", 160)
        if summary != self._render_failure:  # every repaint retries; log each distinct failure once
            self._render_failure = summary
            log.warning("cannot display %s: %s", type(self).__name__, summary)


class PlainStatic(Static, RenderGuard):
    """A Static whose strings are plain text, never markup, and whose render errors stay inside it."""

    def __init__(self, content: VisualType = "", *, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(content, markup=False, id=id, classes=classes)
