"""The Offers pane: every provider's offers in one virtual table, with `/` filter and sort keys."""

from __future__ import annotations

import gc
from collections.abc import Callable, Sequence

from rich.cells import cell_len, set_cell_size
from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.message import Message
from textual.widgets import Input, Static

from computehub_tui.domain.filtering import FilterError, OfferFilter, OfferIndex, parse_filter
from computehub_tui.domain.models import Offer, PricingKind
from computehub_tui.domain.ranking import effective_reliability, price_per_pflop_hour, sort_key
from computehub_tui.domain.text import clean_text
from computehub_tui.engine.hub import Hub
from computehub_tui.ui.format import age, rate
from computehub_tui.ui.problems import failed, failure_lines
from computehub_tui.ui.widgets.virtual_table import Column, VirtualTable

SORT_BINDINGS: tuple[tuple[str, str, str], ...] = (
    ("P", "price", "Price"),
    ("U", "pergpu", "$/GPU"),
    ("V", "value", "Value"),
    ("F", "pflop", "$/PFLOP"),
    ("M", "vram", "VRAM"),
    ("R", "rel", "Reliab."),
    ("A", "age", "Age"),
    ("N", "gpu", "GPU"),
)
_SORT_TITLES = {key: title for _, key, title in SORT_BINDINGS} | {
    "provider": "Provider", "count": "GPU count", "kind": "Kind", "cpu": "vCPU", "ram": "RAM", "location": "Location"}
COLUMN_SORTS = {"provider": "provider", "gpu": "gpu", "count": "count", "vram": "vram", "price": "price",
                "pergpu": "pergpu", "pflop": "pflop", "rel": "rel", "kind": "kind", "cpu": "cpu", "ram": "ram",
                "location": "location", "age": "age"}
"""Clicking a column title sorts by that column (clicking again reverses)."""
GPU_WIDTH, LOCATION_WIDTH = 15, 20
GPU_GROWTH = 10
"""Of a wide terminal's spare columns, GPU takes a third (up to this many) and LOCATION the rest."""
WAITING_TEXT = "no offers yet — the first quotes arrive within a few seconds"


def offer_columns(now: Callable[[], float], refresh_s: dict[str, float], spare: int = 0) -> list[Column[Offer]]:
    """Columns for the offer table; ``now`` is read at render time for quote ages; ``spare``
    columns of a wide terminal widen GPU and LOCATION."""
    gpu_extra = min(GPU_GROWTH, max(0, spare) // 3)
    location_extra = max(0, spare) - gpu_extra

    def age_cell(offer: Offer) -> tuple[str, str | None]:
        seconds = now() - offer.quoted_at
        stale = seconds > 2 * refresh_s.get(offer.provider, 60.0)
        return (age(seconds) + ("!" if stale else ""), "bold yellow" if stale else "dim")

    def rel_cell(offer: Offer) -> tuple[str, str | None]:
        if offer.reliability is None:
            return ("-", "dim")
        return (f"{offer.reliability:.3f}", "red" if offer.reliability < 0.9 else None)

    def pflop_cell(offer: Offer) -> tuple[str, str | None]:
        value = price_per_pflop_hour(offer)
        return ("-", "dim") if value is None else (f"${value:.2f}", None)

    columns: list[Column[Offer]] = [
        Column("provider", "PROVIDER", 10, lambda o: (o.provider, None)),
        Column("gpu", "GPU", GPU_WIDTH + gpu_extra, lambda o: (o.gpu, "bold")),
        Column("count", "N", 2, lambda o: (str(o.gpu_count), None), "right"),
        Column("vram", "VRAM", 5, lambda o: (f"{o.vram_gb:.0f}G", None), "right"),
        Column("price", "$/H", 8, lambda o: (rate(o.price_hour), "bold green"), "right"),
        Column("pergpu", "$/GPU·H", 8, lambda o: (rate(o.price_per_gpu_hour), None), "right"),
        Column("pflop", "$/PFLOP·H", 9, pflop_cell, "right"),
        Column("rel", "REL", 5, rel_cell, "right"),
        Column("kind", "KIND", 5, lambda o: ("spot", "magenta") if o.pricing is PricingKind.INTERRUPTIBLE
               else ("od", "dim")),
        Column("cpu", "vCPU", 5, lambda o: (f"{o.vcpus:.0f}", "dim"), "right"),
        Column("ram", "RAM", 5, lambda o: (f"{o.ram_gb:.0f}G", "dim"), "right"),
        Column("location", "LOCATION", LOCATION_WIDTH + location_extra,
               lambda o: (o.location or "-", None if o.available else "dim")),
        Column("age", "AGE", 5, age_cell, "right"),
    ]
    return columns


def _last_known(offers: Sequence[Offer], providers: set[str]) -> dict[str, float]:
    """For each of ``providers`` that has offers on show, when its newest one was quoted: offers
    remembered from the last run, shown until the provider's first poll answers."""
    newest: dict[str, float] = {}
    for offer in offers:
        if offer.provider in providers and offer.quoted_at > newest.get(offer.provider, float("-inf")):
            newest[offer.provider] = offer.quoted_at
    return newest


def filter_error_text(error: FilterError, width: int) -> Text:
    """The filter text, a ``^`` under the offending character, then the message: plain text only.
    A filter wider than the box is shown as a window around the caret so the caret stays on screen."""
    shown = "".join(ch if ch.isprintable() else "?" for ch in error.text)
    start = max(0, error.position - max(10, width // 2)) if cell_len(shown) >= width > 0 else 0
    before = ("…" if start else "") + shown[start:error.position]
    line = before + shown[error.position:]
    if width > 0 and cell_len(line) > width:
        line = set_cell_size(line, width - 1) + "…"
    text = Text(line, style="bold")
    text.append(f"\n{' ' * cell_len(before)}^\n", style="bold")
    text.append(error.message if error.incomplete else f"✖ {error.message}")
    return text


class FilterInput(Input):
    """The `/` box; ↑ and ↓ recall recent filters (newest first)."""

    BINDINGS = [
        Binding("up", "recall(1)", "Older filter", show=False),
        Binding("down", "recall(-1)", "Newer filter", show=False),
    ]

    def __init__(self, history: list[str], **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self.history = history
        self.position = -1

    def on_focus(self) -> None:
        self.position = -1

    def action_recall(self, step: int) -> None:
        if not self.history:
            return
        self.position = max(-1, min(len(self.history) - 1, self.position + step))
        self.value = self.history[self.position] if self.position >= 0 else ""
        self.cursor_position = len(self.value)


class OffersPane(Vertical):
    """Filter and sort happen here in the model; the table only ever paints what is visible."""

    class LaunchRequested(Message):
        """The user asked to launch ``offer`` (Enter on its row, or from its details)."""

        def __init__(self, offer: Offer) -> None:
            super().__init__()
            self.offer = offer

    BINDINGS = [
        Binding("slash", "start_filter", "Filter", key_display="/", id="filter"),
        Binding("escape", "clear_filter", "Clear filter", show=False),
        Binding("enter", "launch", "Launch"),
        Binding("i", "details", "Details", id="details"),
        Binding("m", "market", "Market", id="market"),
        *[Binding(key, f"sort('{name}')", f"Sort {title}", show=key in "PVUA", id=f"sort_{name}")
          for key, name, title in SORT_BINDINGS],
    ]

    DEFAULT_CSS = """
    OffersPane { height: 1fr; }
    OffersPane #offer-filter { display: none; height: 1; border: none; padding: 0 1; background: $boost; }
    OffersPane #offer-filter.visible { display: block; }
    OffersPane #offer-status { height: 1; padding: 0 1; background: $panel-darken-1; }
    OffersPane #offer-filter-error { height: auto; padding: 0 1; color: $error; display: none; }
    OffersPane #offer-filter-error.visible { display: block; }
    OffersPane #offer-filter-error.incomplete { color: $text-muted; }
    OffersPane #offer-detail { height: 2; padding: 0 1; color: $text-muted; background: $panel-darken-1;
                               text-wrap: nowrap; text-overflow: ellipsis; }
    """

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.hub: Hub | None = None
        self.filter: OfferFilter = parse_filter("")
        self.sort_name = "price"
        self.sort_reverse = False
        self.hidden_implausible = 0
        self.total_offers = 0
        self.recent_filters: list[str] = []
        self.render_now = 0.0
        """The time quote ages are computed against; moved on reload and tick."""
        self._base_index: tuple[int, OfferIndex] | None = None
        self._sorted_cache: tuple[tuple[int, str, bool], OfferIndex] | None = None
        self._spare_columns = 0

    def compose(self) -> ComposeResult:
        yield FilterInput(self.recent_filters,
                          placeholder="filter: h100 vram>=80 price<2.5 region:US,CA rel>=0.98 provider:vast spot:no"
                                      "   (↑↓ recent filters)",
                          id="offer-filter")
        yield Static(id="offer-filter-error")
        yield Static("waiting for offers…", id="offer-status")
        self.table: VirtualTable[Offer] = VirtualTable(
            offer_columns(lambda: self.render_now, {}), row_key=lambda offer: offer.key,
            empty_text=WAITING_TEXT, id="offer-table",
        )
        yield self.table
        yield Static("", id="offer-detail")

    # -- data -------------------------------------------------------------------------------

    def attach(self, hub: Hub) -> None:
        """Show ``hub``'s offers; called again with a new Hub when the session changes."""
        self.hub = hub
        self._base_index = self._sorted_cache = None  # a new Hub counts offers_version from zero again
        self._set_columns()
        self.reload()

    def _set_columns(self) -> None:
        refresh = {h.provider: self.hub.poll.offers_interval_s for h in self.hub.health()} if self.hub else {}
        self.table.set_columns(offer_columns(lambda: self.render_now, refresh, self._spare_columns))

    def on_resize(self) -> None:
        natural = sum(column.width + 1 for column in offer_columns(lambda: 0.0, {}))
        spare = max(0, self.table.size.width - self.table.styles.scrollbar_size_vertical - natural)
        if spare != self._spare_columns:
            self._spare_columns = spare
            self._set_columns()

    def reload(self, force: bool = False) -> None:
        """Re-apply filter and sort to the Hub's current offers."""
        if self.hub is None:
            return
        self.render_now = self.hub.clock.now()
        index = self._sorted_index()
        self.hidden_implausible = sum(self.hub.implausible_counts.values())
        self.total_offers = len(index.offers)
        shown = self.filter.select(index)  # a sorted list filtered stays sorted
        self.table.empty_text = self._empty_text()
        self.table.set_rows(shown)
        self._update_status(len(shown), index.offers)
        self._update_detail()

    def _sorted_index(self) -> OfferIndex:
        """All offers in the current sort order, indexed for filtering; rebuilt only when the
        offers or the sort change — so a filter keystroke never sorts."""
        assert self.hub is not None
        version = self.hub.offers_version
        if self._base_index is None or self._base_index[0] != version:
            self._base_index = (version, OfferIndex(self.hub.offers()))
            self._sorted_cache = None
        cache_key = (version, self.sort_name, self.sort_reverse)
        if self._sorted_cache is None or self._sorted_cache[0] != cache_key:
            base = self._base_index[1]
            key, default_reverse = sort_key(self.sort_name, self.hub.clock.now())
            order = base.sort_order(self.sort_name, key, reverse=self.sort_reverse != default_reverse)
            self._sorted_cache = (cache_key, base.reordered(order))
            # 20,000 long-lived offers make every full garbage collection slow; they hold no
            # cycles, so park them (and their columns) out of the collector's way.
            gc.freeze()
        return self._sorted_cache[1]

    def _empty_text(self) -> str:
        """Why the table is empty: the filter, a failing provider, or nothing has arrived yet."""
        assert self.hub is not None
        if self.total_offers:
            return (f"no offers match `{clean_text(self.filter.text, 80)}` (of {self.total_offers:,}) "
                    "— Esc clears the filter")
        return "\n".join(failure_lines(self.hub, self.hub.poll.offers_interval_s)) or WAITING_TEXT

    def tick(self) -> None:
        """Quote ages move with time; repaint the visible rows only."""
        if self.hub is not None:
            self.render_now = self.hub.clock.now()
            self.table.refresh()

    def _update_status(self, shown: int, offers: Sequence[Offer] = ()) -> None:
        text = Text()
        text.append(f"{shown:,}", style="bold")
        text.append(f" of {self.total_offers:,} offers", style="")
        direction = "↓" if self.sort_reverse else "↑"
        text.append(f"   sort: {_SORT_TITLES[self.sort_name]} {direction}", style="dim")
        if not self.filter.is_empty:
            text.append("   filter: ", style="dim")
            text.append(self.filter.text, style="bold cyan")
        if self.hidden_implausible:
            text.append(f"   {self.hidden_implausible} hidden: implausible price", style="yellow")
        hub = self.hub
        health = hub.health() if hub else []
        waiting = {h.provider for h in health if h.state == "waiting"}
        remembered = _last_known(offers, waiting) if waiting else {}
        if remembered and hub is not None:
            oldest = hub.clock.now() - min(remembered.values())
            text.append(f"   {', '.join(sorted(remembered))}: last known ({age(oldest)} old), refreshing…",
                        style="bold yellow")
        stale = [h.provider for h in health if h.offers_at and h.provider not in waiting
                 and hub is not None and hub.is_stale(h.provider, "offers")]
        if stale:
            text.append(f"   stale: {', '.join(stale)}", style="bold yellow")
        failing = [h.provider for h in health if failed(h)]
        if failing:
            text.append(f"   failing: {', '.join(failing)} (, Settings)", style="bold red")
        self.query_one("#offer-status", Static).update(text, layout=False)

    def _update_detail(self) -> None:
        offer = self.table.current_row
        detail = self.query_one("#offer-detail", Static)
        if offer is None:
            detail.update("", layout=False)
            return
        value = price_per_pflop_hour(offer)
        text = Text()
        text.append(f"{offer.provider}:{clean_text(offer.offer_id)}", style="bold")
        text.append(f"  {offer.gpu_count}x {clean_text(offer.gpu)} {offer.vram_gb:.0f} GB  {offer.vcpus:.0f} vCPU  "
                    f"{offer.ram_gb:.0f} GB RAM  disk {offer.disk_gb:.0f} GB  {clean_text(offer.location)}")
        text.append("\n")
        text.append(f"{rate(offer.price_hour)}/h all-in ({rate(offer.price_per_gpu_hour)} per GPU)")
        if value is not None:
            text.append(f" · ${value:.2f} per dense PFLOP-hour")
        text.append(f" · reliability {effective_reliability(offer):.2f}")
        if offer.reliability is None:
            text.append(" (assumed)", style="dim")
        if offer.storage_gb_month:
            text.append(f" · storage ${offer.storage_gb_month:.2f}/GB/mo", style="dim")
        detail.update(text, layout=False)

    # -- filter -----------------------------------------------------------------------------

    def action_start_filter(self) -> None:
        box = self.query_one("#offer-filter", Input)
        box.add_class("visible")
        box.value = self.filter.text
        box.focus()

    def action_clear_filter(self) -> None:
        box = self.query_one("#offer-filter", Input)
        if box.has_focus:
            box.remove_class("visible")
            self.table.focus()
            return
        if not self.filter.is_empty:
            self.apply_filter("")

    def apply_filter(self, text: str, *, partial: bool = False) -> bool:
        """Compile and apply; on a malformed or half-typed filter keep the last valid result and
        show why, with a caret under the offending character. ``partial`` while the user types."""
        error_box = self.query_one("#offer-filter-error", Static)
        try:
            compiled = parse_filter(text, partial=partial)
        except FilterError as error:
            error_box.set_class(error.incomplete, "incomplete")
            error_box.update(filter_error_text(error, self.size.width - 2))
            error_box.add_class("visible")
            return False
        error_box.remove_class("visible")
        self.filter = compiled
        self.reload()
        return True

    @on(Input.Changed, "#offer-filter")
    def _filter_changed(self, event: Input.Changed) -> None:
        self.apply_filter(event.value, partial=True)

    @on(Input.Submitted, "#offer-filter")
    def _filter_submitted(self, event: Input.Submitted) -> None:
        if self.apply_filter(event.value) and event.value.strip():
            if event.value in self.recent_filters:
                self.recent_filters.remove(event.value)
            self.recent_filters.insert(0, event.value)
            del self.recent_filters[10:]
        self.query_one("#offer-filter", Input).remove_class("visible")
        self.table.focus()

    # -- sort and launch --------------------------------------------------------------------

    def action_sort(self, name: str) -> None:
        if name == self.sort_name:
            self.sort_reverse = not self.sort_reverse
        else:
            self.sort_name, self.sort_reverse = name, False
        self.reload()

    def action_launch(self) -> None:
        offer = self.table.current_row
        if offer is None:
            self.app.notify("No offer selected", severity="warning")
            return
        self.post_message(self.LaunchRequested(offer))

    def action_details(self) -> None:
        from computehub_tui.ui.screens.offer_detail import OfferDetailScreen  # deferred: not on the first frame

        offer = self.table.current_row
        if offer is None or self.hub is None:
            return

        def closed(launch: bool | None) -> None:
            if launch:
                self.post_message(self.LaunchRequested(offer))

        self.app.push_screen(OfferDetailScreen(self.hub, offer), closed)

    def action_market(self) -> None:
        from computehub_tui.ui.screens.market import MarketScreen

        if self.hub is None:
            return

        def chosen(gpu: str | None) -> None:
            if gpu:
                self.apply_filter(f"gpu:{gpu.lower().replace(' ', '')}")

        self.app.push_screen(MarketScreen(self.hub), chosen)

    @on(VirtualTable.Activated, "#offer-table")
    def _activated(self, event: VirtualTable.Activated) -> None:
        self.action_launch()

    @on(VirtualTable.HeaderClicked, "#offer-table")
    def _header_clicked(self, event: VirtualTable.HeaderClicked) -> None:
        self.action_sort(COLUMN_SORTS.get(event.column_key, "price"))

    @on(VirtualTable.CursorMoved, "#offer-table")
    def _cursor_moved(self, event: VirtualTable.CursorMoved) -> None:
        self._update_detail()
