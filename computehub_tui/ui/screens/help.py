"""The `?` help screen: every key in every pane, generated from the live bindings."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static

from computehub_tui.domain.filtering import field_reference
from computehub_tui.ui.keymap import binding_label

KeySection = tuple[str, list[tuple[str, str]]]


def describe_bindings(bindings: Sequence[Binding | tuple[str, ...]],
                      keymap: Mapping[str, str] | None = None) -> list[tuple[str, str]]:
    """Each binding's key(s) and what it does; ``keymap`` (binding id → keys) shows rebound keys."""
    rows = []
    for entry in bindings:
        if isinstance(entry, Binding):
            binding = entry
        else:
            binding = Binding(entry[0], entry[1], entry[2] if len(entry) > 2 else "")
        rows.append((binding_label(binding, keymap or {}), binding.description or binding.action))
    return rows


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
