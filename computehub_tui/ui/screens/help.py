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


def _pretty_key(key: str) -> str:
    return {"question_mark": "?", "slash": "/", "space": "space", "escape": "esc"}.get(key, key)


class HelpScreen(ModalScreen[None]):
    BINDINGS = [Binding("escape,q,question_mark", "dismiss", "Close")]

    DEFAULT_CSS = """
    HelpScreen { align: center middle; }
    HelpScreen > VerticalScroll { width: 90; height: 85%; border: thick $accent; background: $surface; padding: 0 2; }
    """

    def __init__(self, sections: list[KeySection]) -> None:
        super().__init__()
        self.sections = sections

    def compose(self) -> ComposeResult:
        with VerticalScroll():
            yield Static(self._render_sections())

    def _render_sections(self) -> Table:
        table = Table.grid(padding=(0, 2))
        table.add_column(style="bold cyan", no_wrap=True, min_width=14)
        table.add_column()
        table.add_row(Text("computehub-tui — keys", style="bold"), "")
        for title, rows in self.sections:
            table.add_row("", "")
            table.add_row(Text(title, style="bold underline"), "")
            for keys, description in rows:
                table.add_row(keys, description)
        table.add_row("", "")
        table.add_row(Text("Filter language", style="bold underline"), "")
        table.add_row("words", "match GPU, provider or location (h100, runpod, oslo)")
        table.add_row("field op value",
                      "price<2.5  pergpu<=1  vram>=80  gpus>=2  rel>=0.98  cuda>=12.4  vcpus>=16  ram>=64")
        table.add_row("field:a,b", "provider:vast,runpod  region:US,CA  gpu:4090  spot:no  avail:yes")
        table.add_row("", "")
        table.add_row(Text("esc / ? / q", style="dim"), Text("close this help", style="dim"))
        return table
