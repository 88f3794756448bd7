"""Market summary: per GPU model, the cheapest offer across providers and its 24 h change."""

from __future__ import annotations

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Static
from textual.worker import Worker, WorkerState

from computehub_tui.domain.market import MarketRow
from computehub_tui.domain.ranking import price_per_pflop_hour
from computehub_tui.engine.hub import Hub
from computehub_tui.ui.format import rate
from computehub_tui.ui.widgets.virtual_table import Column, VirtualTable


def _change(row: MarketRow) -> tuple[str, str | None]:
    if row.change_24h_pct is None:
        return ("n/a", "dim")
    pct = row.change_24h_pct
    style = "green" if pct < -0.5 else "red" if pct > 0.5 else "dim"
    return (f"{pct:+.1f}%", style)


def _pflop(row: MarketRow) -> tuple[str, str | None]:
    value = price_per_pflop_hour(row.cheapest)
    return ("-", "dim") if value is None else (f"${value:.2f}", None)


MARKET_COLUMNS: list[Column[MarketRow]] = [
    Column("gpu", "GPU", 16, lambda r: (r.gpu, "bold")),
    Column("vram", "VRAM", 5, lambda r: (f"{r.cheapest.vram_gb:.0f}G", None), "right"),
    Column("pergpu", "CHEAPEST $/GPU·H", 16, lambda r: (rate(r.cheapest.price_per_gpu_hour), "bold green"), "right"),
    Column("change", "24H", 7, _change, "right"),
    Column("pflop", "$/PFLOP·H", 9, _pflop, "right"),
    Column("where", "WHERE", 28, lambda r: (f"{r.cheapest.provider} · {r.cheapest.location}", None)),
    Column("kind", "KIND", 5, lambda r: ("spot" if r.cheapest.pricing.value == "interruptible" else "od", "dim")),
    Column("count", "OFFERS", 6, lambda r: (f"{r.offer_count:,}", None), "right"),
    Column("providers", "PROVIDERS", 30, lambda r: (", ".join(r.providers), "dim")),
]


class MarketScreen(ModalScreen[str | None]):
    """Dismisses with a GPU name to filter the Offers pane by, or None."""

    BINDINGS = [Binding("escape,q", "dismiss(None)", "Close"), Binding("enter", "choose", "Show its offers")]
    DEFAULT_CSS = """
    MarketScreen { align: center middle; }
    MarketScreen > Vertical { width: 100%; max-width: 140; height: 100%; max-height: 50; border: thick $accent;
                              background: $surface; }
    MarketScreen #market-title { height: auto; padding: 0 1; background: $panel; text-style: bold; }
    MarketScreen #market-note { height: auto; padding: 0 1; color: $text-muted; }
    """

    def __init__(self, hub: Hub) -> None:
        super().__init__()
        self.hub = hub

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Static("Market summary · cheapest offer per GPU model across every provider   "
                         "(enter: show its offers, esc close)", id="market-title")
            self.table: VirtualTable[MarketRow] = VirtualTable(MARKET_COLUMNS, row_key=lambda r: r.gpu,
                                                               empty_text="loading…", id="market-table")
            yield self.table
            yield Static("", id="market-note")

    def on_mount(self) -> None:
        self.table.focus()
        self._load()

    @work(group="market", exclusive=True, exit_on_error=False)
    async def _load(self) -> list[MarketRow]:
        return await self.hub.market_summary()

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        if event.worker.group != "market" or event.state is not WorkerState.SUCCESS:
            return
        rows: list[MarketRow] = event.worker.result or []
        self.table.set_rows(rows, keep_cursor=False)
        with_history = sum(1 for r in rows if r.change_24h_pct is not None)
        note = Text(f"{len(rows)} GPU models · ")
        note.append(f"24 h change known for {with_history}" if with_history else
                    "24 h change appears once a day of price history is recorded", style="dim")
        self.query_one("#market-note", Static).update(note)

    def on_virtual_table_activated(self, event: VirtualTable.Activated) -> None:
        self.action_choose()

    def action_choose(self) -> None:
        row = self.table.current_row
        if row is not None:
            self.dismiss(row.gpu)
