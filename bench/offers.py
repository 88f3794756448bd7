"""The offer sets the benchmarks use, and the offer table's cells as plain (text, style) pairs."""

from __future__ import annotations

import hashlib
import inspect
import tempfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from bench.datatable_app import CellText, ColumnSpec
from computehub_tui.clock import Clock, ManualClock, SystemClock
from computehub_tui.config import Config
from computehub_tui.domain.models import Offer, OfferQuery
from computehub_tui.engine.hub import Hub, HubSettings
from computehub_tui.providers.demo.adapters import demo_providers
from computehub_tui.providers.demo.market import DemoMarket
from computehub_tui.store import Store
from computehub_tui.ui.widgets.offers_pane import offer_columns
from computehub_tui.ui.widgets.virtual_table import Column

BIG_VAST_ASKS = 18_000
"""Asks in the big demo market; with the query below this yields ~20,300 offers (Vast asks
become an on-demand and an interruptible offer each)."""
BIG_QUERY_LIMIT = 10_000
"""Vast rows per search; the app's default (5,000) would cap Vast at ~10,000 offers."""



@dataclass
class OfferMarket:
    """A Hub filled once with offers from the simulated market; nothing polls afterwards."""

    hub: Hub
    store: Store
    clients: list[httpx.AsyncClient] = field(default_factory=list)

    async def aclose(self) -> None:
        for client in self.clients:
            await client.aclose()
        await self.store.close()


async def open_offer_market(data_dir: Path, *, vast_asks: int = BIG_VAST_ASKS,
                            query_limit: int = BIG_QUERY_LIMIT,
                            clock: Clock | None = None) -> OfferMarket:
    """The demo providers against a (possibly enlarged) market. The default clock is frozen, so
    every process that builds the market gets the same offers in the same order."""
    config = Config()
    clock = clock or ManualClock()
    market = DemoMarket(clock, seed=config.demo.seed, vast_offer_count=vast_asks)
    providers, clients = demo_providers(market, clock)
    store = await Store.open(data_dir / "bench.db")
    query = OfferQuery(min_reliability=config.offers.min_reliability, disk_gb=config.offers.disk_gb,
                       limit=query_limit)
    hub = Hub(providers, store, clock, HubSettings(offer_query=query, demo=True))
    for name in providers:
        if not await hub.refresh_offers(name):
            raise RuntimeError(f"the demo {name} provider did not answer its offer search")
    return OfferMarket(hub, store, clients)


def table_columns(hub: Hub) -> list[Column[Offer]]:
    """The Offers pane's own columns, so both tables show the very same cells."""
    refresh_s = {name: hub.poll.offers_interval_s for name in hub.providers}
    return offer_columns(hub.clock.now, refresh_s)


def column_specs(columns: Sequence[Column[Offer]]) -> list[ColumnSpec]:
    return [(column.key, column.title, column.width, column.align) for column in columns]


def fit(text: str, width: int, align: str) -> str:
    """Pad or cut a cell to its column width with an ellipsis, the way the virtual table does."""
    if len(text) > width:
        return text[: max(0, width - 1)] + "…" if width > 1 else text[:width]
    return text.rjust(width) if align == "right" else text.ljust(width)


def offer_cells(offer: Offer, columns: Sequence[Column[Offer]]) -> list[CellText]:
    cells: list[CellText] = []
    for column in columns:
        text, style = column.cell(offer)
        style_name = style if isinstance(style, str) else None
        cells.append((fit(text, column.width, column.align), style_name))
    return cells


def order_digest(keys: Iterable[str]) -> str:
    """A short fingerprint of rows in order, to check both tables really show the same thing."""
    return hashlib.sha1("\n".join(keys).encode()).hexdigest()[:16]


async def default_demo_rows() -> tuple[list[ColumnSpec], list[list[CellText]]]:
    """The offers `computehub-tui --demo` shows on start, formatted for a plain DataTable."""
    with tempfile.TemporaryDirectory(prefix="chub-bench-") as data_dir:
        market = await open_offer_market(Path(data_dir), vast_asks=default_vast_asks(),
                                         query_limit=OfferQuery().limit, clock=SystemClock())
        try:
            columns = table_columns(market.hub)
            rows = [offer_cells(offer, columns) for offer in market.hub.offers()]
        finally:
            await market.aclose()
    return column_specs(columns), rows


def default_vast_asks() -> int:
    """DemoMarket's own default size: what the app's demo mode shows."""
    return int(inspect.signature(DemoMarket).parameters["vast_offer_count"].default)
