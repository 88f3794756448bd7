"""The two sides under test: the real Offers pane, and Textual's DataTable doing the same job.

Both sides run the same model code (``parse_filter``, ``sort_key``, ``OfferIndex``) on the same
Hub offers and show the same 13 columns in the same terminal; they differ only in how the table
is updated.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from rich.text import Text
from textual.app import App, ComposeResult

from bench.datatable_app import TABLE_ID, OfferDataTableApp, styled_cell
from bench.offers import column_specs, offer_cells, table_columns
from bench.probe import data_table_settled
from computehub_tui.domain.filtering import OfferFilter, OfferIndex, parse_filter
from computehub_tui.domain.models import Offer
from computehub_tui.domain.ranking import sort_key
from computehub_tui.engine.hub import Hub
from computehub_tui.ui.widgets.offers_pane import OffersPane
from computehub_tui.ui.widgets.virtual_table import Column


class Side(Protocol):
    """What a benchmark does to a table, whichever widget backs it."""

    def load_all(self) -> None: ...

    def apply_filter(self, text: str) -> None: ...

    def sort(self, name: str) -> None: ...

    def settled(self) -> bool: ...

    def shown_keys(self) -> list[str]: ...


# -- the Offers pane --------------------------------------------------------------------------


class PaneApp(App[None]):
    """Just the Offers pane, fed by a Hub that does not poll."""

    def compose(self) -> ComposeResult:
        yield OffersPane(id="offers")

    def on_mount(self) -> None:
        self.query_one(f"#{TABLE_ID}").focus()


class PaneSide:
    def __init__(self, app: PaneApp, hub: Hub) -> None:
        self.hub = hub
        self.pane = app.query_one(OffersPane)

    def load_all(self) -> None:
        self.pane.attach(self.hub)

    def apply_filter(self, text: str) -> None:
        if not self.pane.apply_filter(text):
            raise ValueError(f"the pane rejected the filter {text!r}")

    def sort(self, name: str) -> None:
        self.pane.action_sort(name)

    def settled(self) -> bool:
        return True

    def shown_keys(self) -> list[str]:
        return [offer.key for offer in self.pane.table.rows]


# -- Textual's DataTable ----------------------------------------------------------------------


class DataTableSide:
    """Filter and sort in the model exactly as the pane does, then update the DataTable the
    usual way: ``clear`` + ``add_row`` (keyed by offer) for a new row set, ``sort`` to reorder.

    Cells are built once per offer and reused, the cheapest way to refill a DataTable.
    """

    def __init__(self, app: OfferDataTableApp, hub: Hub) -> None:
        self.hub = hub
        self.table = app.table
        self.columns: list[Column[Offer]] = table_columns(hub)
        self.filter: OfferFilter = parse_filter("")
        self.sort_name = "price"
        self.sort_reverse = False
        self._cells: dict[str, tuple[Text, ...]] = {}
        self._index: tuple[tuple[int, str, bool], OfferIndex] | None = None

    def load_all(self) -> None:
        self._refill(self._shown())

    def apply_filter(self, text: str) -> None:
        self.filter = parse_filter(text)
        self._refill(self._shown())

    def sort(self, name: str) -> None:
        if name == self.sort_name:
            self.sort_reverse = not self.sort_reverse
        else:
            self.sort_name, self.sort_reverse = name, False
        # DataTable's sort key sees only cell values; the first cell object is unique per offer.
        rank = {id(self._cells_of(offer)[0]): index for index, offer in enumerate(self._shown())}
        self.table.sort(key=lambda values: rank[id(values[0])])

    def settled(self) -> bool:
        return data_table_settled(self.table)

    def shown_keys(self) -> list[str]:
        return [str(row.key.value) for row in self.table.ordered_rows]

    def _shown(self) -> list[Offer]:
        return self.filter.select(self._sorted_index())

    def _sorted_index(self) -> OfferIndex:
        """Every offer in sort order, indexed for filtering; like the pane, rebuilt only when the
        offers or the sort change, so a keystroke only filters."""
        version = (self.hub.offers_version, self.sort_name, self.sort_reverse)
        if self._index is None or self._index[0] != version:
            key, default_reverse = sort_key(self.sort_name, self.hub.clock.now())
            reverse = self.sort_reverse != default_reverse
            ordered = sorted(self.hub.offers(), key=key, reverse=reverse)  # type: ignore[arg-type]
            self._index = (version, OfferIndex(ordered))
        return self._index[1]

    def _refill(self, offers: Sequence[Offer]) -> None:
        table = self.table
        table.clear()
        for offer in offers:
            table.add_row(*self._cells_of(offer), key=offer.key)

    def _cells_of(self, offer: Offer) -> tuple[Text, ...]:
        cells = self._cells.get(offer.key)
        if cells is None:
            texts = offer_cells(offer, self.columns)
            cells = tuple(styled_cell(cell, column.align)
                          for cell, column in zip(texts, self.columns))
            self._cells[offer.key] = cells
        return cells


def datatable_app_for(hub: Hub) -> OfferDataTableApp:
    return OfferDataTableApp(column_specs(table_columns(hub)))
