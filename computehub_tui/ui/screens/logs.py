"""Scrollable text views: an instance's logs (fetched in a worker, with progress) and the app's own warnings."""

from __future__ import annotations

from collections.abc import Iterable
from typing import ClassVar

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.timer import Timer
from textual.widgets import Input, RichLog
from textual.worker import Worker, WorkerState

from computehub_tui.config.schema import INSTANCES_FLOOR_S
from computehub_tui.domain.models import Instance
from computehub_tui.domain.text import clean_text, show_controls
from computehub_tui.engine import ProviderError
from computehub_tui.engine.hub import Hub
from computehub_tui.ui.plain import PlainStatic, plain

LOG_FOLLOW_S = 5.0
"""How often followed logs are fetched again (never below the instance poll floor)."""


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
            yield from self.compose_below()

    def compose_below(self) -> ComposeResult:
        """Widgets under the text, inside the dialog (a status line, a search box)."""
        yield from ()

    def show_lines(self, lines: Iterable[str]) -> None:
        log = self.query_one(RichLog)
        log.clear()
        for line in lines:
            log.write(Text(show_controls(line)))


class LogsScreen(TextViewScreen):
    """Logs with follow mode (re-fetched every ``follow_interval_s`` while open, never faster than the
    poll floor) and a search that highlights matches as plain text."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "close", "Close"),
        Binding("r", "reload", "Reload"),
        Binding("f", "follow", "Follow"),
        Binding("slash", "search", "Search", key_display="/"),
        Binding("n", "next_match(1)", "Next match"),
        Binding("N", "next_match(-1)", "Previous match", key_display="N"),
    ]
    DEFAULT_CSS = """
    LogsScreen #log-search { display: none; height: 3; }
    LogsScreen #log-search.searching { display: block; }
    LogsScreen .view-status { height: 1; padding: 0 1; color: $text-muted; }
    """

    def __init__(self, hub: Hub, instance: Instance, tail: int = 500,
                 follow_interval_s: float = LOG_FOLLOW_S) -> None:
        title = Text(f"Logs · {instance.key} ")
        title.append_text(plain(instance.label, limit=60))
        title.append("   (r reload, f follow, / search, n/N next/prev, esc close)")
        super().__init__(title)
        self.hub = hub
        self.instance = instance
        self.tail = tail
        self.follow_interval_s = max(INSTANCES_FLOOR_S, follow_interval_s)
        self.follow_timer: Timer | None = None
        self.lines: list[str] = []
        self.query_text = ""
        self.matches: list[int] = []
        """Indexes of the lines that contain ``query_text``."""
        self.match_index = -1

    def compose_below(self) -> ComposeResult:
        yield PlainStatic("", classes="view-status", id="log-status")
        yield Input(placeholder="search the logs (enter to find, esc to close)", id="log-search")

    def on_mount(self) -> None:
        self.action_reload()

    def on_unmount(self) -> None:
        self._stop_following()

    def action_reload(self) -> None:
        self._show(["fetching logs…"])
        self._fetch()

    def action_follow(self) -> None:
        if self.follow_timer is not None:
            self._stop_following()
        else:
            self.follow_timer = self.set_interval(self.follow_interval_s, self.follow_tick)
            self._fetch()
        self._show_status()

    def follow_tick(self) -> None:
        """One follow step: fetch again unless the last fetch is still out."""
        if self.follow_timer is not None and not any(w.group == "logs" and w.is_running for w in self.workers):
            self._fetch()

    def _stop_following(self) -> None:
        if self.follow_timer is not None:
            self.follow_timer.stop()
            self.follow_timer = None

    @work(exclusive=True, group="logs", exit_on_error=False)
    async def _fetch(self) -> str:
        try:
            return await self.hub.logs(self.instance.key, self.tail)
        except ProviderError as error:
            return f"could not fetch logs: {error}"

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        if event.worker.group != "logs" or event.state is not WorkerState.SUCCESS:
            return
        self._show((event.worker.result or "").splitlines() or ["(no log lines yet)"])

    def _show(self, lines: list[str]) -> None:
        self.lines = [show_controls(line) for line in lines]
        self._find()
        self._paint(follow_end=self.follow_timer is not None and not self.matches)

    # -- search -----------------------------------------------------------------------------

    def action_search(self) -> None:
        box = self.query_one("#log-search", Input)
        box.add_class("searching")
        box.focus()

    @on(Input.Submitted, "#log-search")
    def _search_submitted(self, event: Input.Submitted) -> None:
        self.search(event.value)
        self.query_one(RichLog).focus()

    def action_close(self) -> None:
        """Esc leaves the search box first, then closes."""
        box = self.query_one("#log-search", Input)
        if box.has_class("searching"):
            box.remove_class("searching")
            self.query_one(RichLog).focus()
        else:
            self.dismiss()

    def search(self, query: str) -> None:
        """Find ``query`` (case-insensitive, literally: it is never a pattern or markup) and go to the
        first match."""
        self.query_text = query
        self.match_index = -1
        self._find()
        self.action_next_match(1)

    def action_next_match(self, step: int) -> None:
        if not self.matches:
            self._paint()
            return
        self.match_index = (self.match_index + step) % len(self.matches)
        self._paint()
        self.query_one(RichLog).scroll_to(y=max(0, self.matches[self.match_index] - 3), animate=False)

    def _find(self) -> None:
        needle = self.query_text.casefold()
        self.matches = [n for n, line in enumerate(self.lines) if needle and needle in line.casefold()]
        if self.match_index >= len(self.matches):
            self.match_index = len(self.matches) - 1

    def _paint(self, follow_end: bool = False) -> None:
        log = self.query_one(RichLog)
        current = self.matches[self.match_index] if 0 <= self.match_index < len(self.matches) else -1
        log.clear()
        for n, line in enumerate(self.lines):
            log.write(self._highlighted(line, n == current), scroll_end=follow_end)
        self._show_status()

    def _highlighted(self, line: str, current: bool) -> Text:
        text = Text(line)
        needle = self.query_text.casefold()
        if needle:
            folded, start = line.casefold(), 0
            while (found := folded.find(needle, start)) >= 0 and len(folded) == len(line):
                text.stylize("bold black on yellow" if current else "black on #7f7f00", found, found + len(needle))
                start = found + len(needle)
        return text

    def _show_status(self) -> None:
        parts = [f"following (every {self.follow_interval_s:g} s)" if self.follow_timer else "not following"]
        if self.query_text:
            found = (f"match {self.match_index + 1} of {len(self.matches)}" if self.matches else "no match")
            parts.append(f"search {clean_text(self.query_text, 60)!r}: {found}")
        self.query_one("#log-status", PlainStatic).update("   ".join(parts))


class WarningsScreen(TextViewScreen):
    """The warnings and errors logged while the app runs (newest last); they are not written over the screen."""

    def __init__(self, lines: Iterable[str]) -> None:
        super().__init__(Text("Recent warnings (newest last)   (esc close)"))
        self.lines = list(lines)

    def on_mount(self) -> None:
        self.show_lines(self.lines or ["(nothing logged)"])
