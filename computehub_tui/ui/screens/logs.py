"""Scrollable text views: an instance's logs (fetched in a worker, with progress) and the app's own warnings."""

from __future__ import annotations

from collections.abc import Iterable
from typing import ClassVar

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import RichLog
from textual.worker import Worker, WorkerState

from computehub_tui.domain.models import Instance
from computehub_tui.domain.text import show_controls
from computehub_tui.engine import ProviderError
from computehub_tui.engine.hub import Hub
from computehub_tui.ui.plain import PlainStatic, plain


class TextViewScreen(ModalScreen[None]):
    """A title line and lines of text shown exactly as written: every control character is made
    visible (␛, ␍, <U+202E>) and nothing is read as markup."""

    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape,q", "dismiss", "Close")]
    DEFAULT_CSS = """
    TextViewScreen { align: center middle; }
    TextViewScreen > Vertical { width: 95%; height: 90%; border: thick $accent; background: $surface; }
    TextViewScreen .view-title { height: 1; padding: 0 1; background: $panel; text-style: bold; }
    TextViewScreen RichLog { height: 1fr; }
    """

    def __init__(self, title: Text) -> None:
        super().__init__()
        self.view_title = title

    def compose(self) -> ComposeResult:
        with Vertical():
            yield PlainStatic(self.view_title, classes="view-title")
            yield RichLog(highlight=False, markup=False, wrap=False, id="logs")

    def show_lines(self, lines: Iterable[str]) -> None:
        log = self.query_one(RichLog)
        log.clear()
        for line in lines:
            log.write(Text(show_controls(line)))


class LogsScreen(TextViewScreen):
    BINDINGS: ClassVar[list[BindingType]] = [Binding("r", "reload", "Reload")]

    def __init__(self, hub: Hub, instance: Instance, tail: int = 500) -> None:
        title = Text(f"Logs · {instance.key} ")
        title.append_text(plain(instance.label, limit=60))
        title.append("   (r reload, esc close)")
        super().__init__(title)
        self.hub = hub
        self.instance = instance
        self.tail = tail

    def on_mount(self) -> None:
        self.action_reload()

    def action_reload(self) -> None:
        self.show_lines(["fetching logs…"])
        self._fetch()

    @work(exclusive=True, group="logs", exit_on_error=False)
    async def _fetch(self) -> str:
        try:
            return await self.hub.logs(self.instance.key, self.tail)
        except ProviderError as error:
            return f"could not fetch logs: {error}"

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        if event.worker.group != "logs" or event.state is not WorkerState.SUCCESS:
            return
        self.show_lines((event.worker.result or "").splitlines() or ["(no log lines yet)"])


class WarningsScreen(TextViewScreen):
    """The warnings and errors logged while the app runs (newest last); they are not written over the screen."""

    def __init__(self, lines: Iterable[str]) -> None:
        super().__init__(Text("Recent warnings (newest last)   (esc close)"))
        self.lines = list(lines)

    def on_mount(self) -> None:
        self.show_lines(self.lines or ["(nothing logged)"])
