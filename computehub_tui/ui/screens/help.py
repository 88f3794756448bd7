"""The `?` help screen: every key in every pane, generated from the live bindings."""

from __future__ import annotations

from collections.abc import Sequence

from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static

from computehub_tui.domain.filtering import field_reference

KeySection = tuple[str, list[tuple[str, str]]]


def describe_bindings(bindings: Sequence[Binding | tuple[str, ...]]) -> list[tuple[str, str]]:
    rows = []
    for entry in bindings:
        if isinstance(entry, Binding):
            binding = entry
        else:
            binding = Binding(entry[0], entry[1], entry[2] if len(entry) > 2 else "")
        keys = binding.key_display or ", ".join(_pretty_key(key) for key in binding.key.split(","))
        rows.append((keys, binding.description or binding.action))
    return rows


_KEY_NAMES = {"question_mark": "?", "slash": "/", "comma": ",", "escape": "esc", "enter": "Enter", "up": "↑",
              "down": "↓", "pageup": "PgUp", "pagedown": "PgDn", "home": "Home", "end": "End", "delete": "Del"}


def _pretty_key(key: str) -> str:
    return _KEY_NAMES.get(key, key)


class HelpScreen(ModalScreen[None]):
    BINDINGS = [Binding("escape,q,question_mark", "dismiss", "Close")]

    DEFAULT_CSS = """
    HelpScreen { align: center middle; }
    HelpScreen > VerticalScroll { width: 100%; max-width: 100; height: 90%; border: thick $accent;
                                  background: $surface; padding: 0 2; }
    """

    def __init__(self, sections: list[KeySection]) -> None:
        super().__init__()
        self.sections = sections

    def compose(self) -> ComposeResult:
        with VerticalScroll():
            yield Static(self._render_sections(), id="help-keys")

    def _render_sections(self) -> Table:
        table = Table.grid(padding=(0, 2))
        table.add_column(style="bold cyan", min_width=14, max_width=24)
        table.add_column()
        table.add_row(Text("computehub-tui — keys", style="bold"), "")
        for title, rows in self.sections:
            table.add_row("", "")
            table.add_row(Text(title, style="bold underline"), "")
            for keys, description in rows:
                table.add_row(keys, description)
        table.add_row("", "")
        table.add_row(Text("Filter language (/)", style="bold underline"), "")
        table.add_row("words", "match GPU, provider or location: h100 runpod oslo")
        table.add_row('"a phrase"', 'matches as one phrase: "rtx 4090"')
        table.add_row("field op value", "compare with < <= > >= = != (spaces allowed): price < 2.5")
        table.add_row("field:a,b", 'any of the values: provider:vast,runpod  gpu:"rtx 4090"')
        for names, meaning, example in field_reference():
            table.add_row(Text(names, style="cyan"), Text(f"{meaning} — {example}"))
        table.add_row("", "")
        table.add_row(Text("esc / ? / q", style="dim"), Text("close this help", style="dim"))
        return table
