"""Replay one rule over the last 24 h / 7 d of stored history: its firings in a list and a timeline per instance."""

from __future__ import annotations

import asyncio
import time
from typing import ClassVar

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical, VerticalScroll
from textual.screen import ModalScreen

from computehub_tui.domain.text import clean_text
from computehub_tui.engine.automation.replay import ReplayControl, ReplayStopped
from computehub_tui.ui.plain import PlainStatic, plain
from computehub_tui.ui.replay_view import MARK, ReplayView, fired_instances, strips
from computehub_tui.ui.rules_source import RulesSource

DAY_S = 86_400.0
WEEK_S = 7 * DAY_S
WINDOWS = {DAY_S: "24 h", WEEK_S: "7 d"}
EVIDENCE_LIMIT = 200


def _when(at: float) -> str:
    return time.strftime("%m-%d %H:%M", time.localtime(at))


class ReplayScreen(ModalScreen[None]):
    """What the rule being edited would have done over the stored history (nothing is executed)."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape,q", "dismiss", "Close"),
        Binding("d", "window(86400)", "Last 24 h"),
        Binding("w", "window(604800)", "Last 7 d"),
    ]
    DEFAULT_CSS = """
    ReplayScreen { align: center middle; }
    ReplayScreen > Vertical { width: 100%; height: 100%; border: thick $accent; background: $surface; }
    ReplayScreen .title { text-style: bold; padding: 0 1; }
    ReplayScreen #replay-summary { height: auto; padding: 0 1; color: $text-muted; }
    ReplayScreen #replay-list-box { height: 1fr; min-height: 3; padding: 0 1; }
    ReplayScreen #replay-timeline-box { height: auto; max-height: 50%; padding: 0 1; background: $panel-darken-1; }
    """

    def __init__(self, source: RulesSource, text: str, rule: str, window_s: float = DAY_S) -> None:
        super().__init__()
        self.source = source
        self.text = text
        self.rule = rule
        self.window_s = window_s
        self.view: ReplayView | None = None
        """The last replay shown; None while one runs."""
        self._control: ReplayControl | None = None
        """Follows the replay running now (stopped when another starts or the screen closes)."""

    def compose(self) -> ComposeResult:
        with Vertical():
            yield PlainStatic("", classes="title", id="replay-title")
            yield PlainStatic("", id="replay-summary")
            with VerticalScroll(id="replay-list-box"):
                yield PlainStatic("", id="replay-list")
            with VerticalScroll(id="replay-timeline-box"):
                yield PlainStatic("", id="replay-timeline")

    def on_mount(self) -> None:
        self._start()

    def on_unmount(self) -> None:
        if self._control is not None:  # a week of ticks must not go on burning a core once nobody looks
            self._control.stop()

    def on_resize(self) -> None:
        if self.view is not None:
            self._show(self.view)

    def action_window(self, seconds: float) -> None:
        if seconds != self.window_s:
            self.window_s = seconds
            self._start()

    def _start(self) -> None:
        if self._control is not None:
            self._control.stop()
        self.view = None
        self.query_one("#replay-title", PlainStatic).update(plain(
            f"Replay of {self.rule} over the last {WINDOWS.get(self.window_s, '')} · d 24 h · w 7 d · esc close",
            limit=200))
        self.query_one("#replay-summary", PlainStatic).update("replaying the stored history… (nothing is executed)")
        self.query_one("#replay-list", PlainStatic).update("")
        self.query_one("#replay-timeline", PlainStatic).update("")
        self._load(self.window_s)

    def _progress(self, window_s: float, done: int, total: int) -> None:
        if window_s == self.window_s and self.view is None:
            self.query_one("#replay-summary", PlainStatic).update(
                f"replaying the stored history… {done * 100 // max(1, total)} % of {total:,} polls "
                "(nothing is executed; esc stops it)")

    @work(group="rules-replay", exclusive=True, exit_on_error=False)
    async def _load(self, window_s: float) -> None:
        loop = asyncio.get_running_loop()

        def progress(done: int, total: int) -> None:  # on the replay's thread
            try:
                loop.call_soon_threadsafe(self._progress, window_s, done, total)
            except RuntimeError:  # the app has closed meanwhile
                control.stop()

        control = self._control = ReplayControl(progress)
        try:
            view = await self.source.replay(self.text, self.rule, window_s, control)
        except ReplayStopped:
            return
        except Exception as error:  # noqa: BLE001 - a failed replay is a message, never a crashed screen
            self.query_one("#replay-summary", PlainStatic).update(
                plain(f"replay failed: {clean_text(str(error), 300) or type(error).__name__}", "red", 400))
            return
        if window_s == self.window_s:
            self.view = view
            self._show(view)

    def _show(self, view: ReplayView) -> None:
        summary = self.query_one("#replay-summary", PlainStatic)
        if view.problem:
            summary.update(plain(view.problem, "yellow", 300))
            return
        count = len(view.firings)
        summary.update(plain(f"{count} firing{'' if count == 1 else 's'} on {fired_instances(view.firings)} of "
                             f"{len(view.instances)} instances, {_when(view.start)} to {_when(view.end)} · nothing "
                             "was executed, no alert was sent", limit=300))
        self.query_one("#replay-list", PlainStatic).update(self._firing_lines(view))
        self.query_one("#replay-timeline", PlainStatic).update(self._timeline(view))

    def _firing_lines(self, view: ReplayView) -> Text:
        if not view.firings and not view.held:
            return Text("it would not have fired", style="dim")
        lines = [(firing.at, Text.assemble((_when(firing.at), "dim"), "  ", plain(firing.instance_key, "bold"), "  ",
                                           plain(", ".join(firing.actions)), "  ",
                                           plain(firing.evidence, "dim", EVIDENCE_LIMIT)))
                 for firing in view.firings]
        lines += [(at, Text.assemble((_when(at), "dim"), "  ", plain(f"held: {message}", "yellow", EVIDENCE_LIMIT)))
                  for at, message in view.held]
        return Text("\n").join(line for _, line in sorted(lines, key=lambda item: item[0]))

    def _timeline(self, view: ReplayView) -> Text:
        width = max(20, self.size.width - 4)
        rows = strips(view, width)
        header = Text(f"{_when(view.start)} … {_when(view.end)}   {MARK} fired", style="dim")
        body = [Text.assemble((name, "bold"), "  ", (strip, "")) for name, strip in rows]
        return Text("\n").join([header, *body])
