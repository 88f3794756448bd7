"""The copy dialog: says honestly how the text was sent to the clipboard and shows it to select by hand."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import ClassVar

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button
from textual.worker import Worker, WorkerState

from computehub_tui.ui.plain import PlainStatic, plain

OSC52_NOTE = ("Sent to your terminal's clipboard (OSC 52). Many terminals ignore that request and none "
              "confirms it, so if nothing was copied, select it here (shift+drag in most terminals):")


class CopyScreen(ModalScreen[None]):
    """Shows ``text`` in full, and what ``local_copy`` (this machine's clipboard program, run in a
    thread because it may block) managed to do."""

    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape,enter,q", "dismiss", "Close")]
    DEFAULT_CSS = """
    CopyScreen { align: center middle; }
    CopyScreen > Vertical { width: 84; max-width: 100%; height: auto; max-height: 100%; border: thick $accent;
                            background: $surface; padding: 1 2; }
    CopyScreen #copy-text { margin: 1 0; padding: 0 1; background: $boost; text-style: bold; }
    CopyScreen #copy-local { color: $text-muted; }
    CopyScreen Horizontal { height: auto; align: right middle; margin-top: 1; }
    """

    def __init__(self, text: str, what: str, local_copy: Callable[[str], str]) -> None:
        super().__init__()
        self.text = text
        self.what = what
        self.local_copy = local_copy

    def compose(self) -> ComposeResult:
        with Vertical():
            yield PlainStatic(Text(f"Copy {self.what}", style="bold"))
            yield PlainStatic(OSC52_NOTE, id="copy-note")
            yield PlainStatic(plain(self.text, limit=1000), id="copy-text")
            yield PlainStatic(id="copy-local")
            with Horizontal():
                yield Button("Close (esc)", id="close", variant="primary")

    def on_mount(self) -> None:
        self.run_worker(partial(self.local_copy, self.text), thread=True, group="local-copy", exit_on_error=False)

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        if event.worker.group == "local-copy" and event.state is WorkerState.SUCCESS and event.worker.result:
            self.query_one("#copy-local", PlainStatic).update(f"Also copied with {event.worker.result} on this machine.")

    def on_button_pressed(self, event: Button.Pressed) -> None:
        self.dismiss()
