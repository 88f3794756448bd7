"""One offer in full: specs, the value rank explained in words, and its price history chart."""

from __future__ import annotations

from dataclasses import dataclass

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static
from textual.worker import Worker, WorkerState

from computehub_tui.domain.history import PriceStat
from computehub_tui.domain.models import PROVIDER_TITLES, Offer
from computehub_tui.domain.ranking import explain_value
from computehub_tui.engine.hub import Hub
from computehub_tui.ui.format import age, rate


@dataclass(frozen=True, slots=True)
class ChartWindow:
    """One price-history window and its x axis: from -``span`` to now in ``unit``s, a tick every ``step``."""

    label: str
    seconds: float
    unit: str
    unit_s: float
    step: int

    @property
    def span(self) -> int:
        return round(self.seconds / self.unit_s)

    def ticks(self) -> tuple[list[float], list[str]]:
        """Whole-unit ticks from -span to 0 (never "-0.0"); the last one reads "now"."""
        positions = list(range(-self.span, 1, self.step))
        return [float(p) for p in positions], [str(-p) if p else "now" for p in positions]


WINDOWS: dict[str, ChartWindow] = {
    "d": ChartWindow("24 h", 86400.0, "hours", 3600.0, 6),
    "w": ChartWindow("7 d", 7 * 86400.0, "days", 86400.0, 1),
    "m": ChartWindow("30 d", 30 * 86400.0, "days", 86400.0, 5),
}


class OfferDetailScreen(ModalScreen[bool]):
    """Dismisses with True when the user asks to launch the offer."""

    BINDINGS = [
        Binding("escape,q", "dismiss(False)", "Close"),
        Binding("d", "window('d')", "24 h"),
        Binding("w", "window('w')", "7 d"),
        Binding("m", "window('m')", "30 d"),
        Binding("enter", "launch", "Launch"),
    ]
    DEFAULT_CSS = """
    OfferDetailScreen { align: center middle; }
    OfferDetailScreen > VerticalScroll { width: 100%; max-width: 110; height: 100%; max-height: 46;
                                         border: thick $accent; background: $surface; }
    OfferDetailScreen #detail-title { height: auto; padding: 0 1; background: $panel; text-style: bold; }
    OfferDetailScreen #detail-body { height: auto; padding: 0 1; }
    OfferDetailScreen #detail-value { height: auto; padding: 0 1; margin-top: 1; }
    OfferDetailScreen #detail-chart-note { height: auto; padding: 0 1; color: $text-muted; }
    OfferDetailScreen PlotextPlot { height: 1fr; min-height: 12; }
    """

    def __init__(self, hub: Hub, offer: Offer) -> None:
        super().__init__()
        self.hub = hub
        self.offer = offer
        self.window = "d"

    def compose(self) -> ComposeResult:
        from textual_plotext import PlotextPlot  # deferred: plotext is only needed on demand

        offer = self.offer
        with VerticalScroll():
            yield Static(Text(f"{offer.gpu_count}x {offer.gpu} · {PROVIDER_TITLES.get(offer.provider, offer.provider)}"
                              f" · offer {offer.offer_id}   (d/w/m chart window, enter launch, esc close)"),
                         id="detail-title")
            yield Static(self._body(), id="detail-body")
            yield Static(Text(explain_value(offer, self.hub.offers())), id="detail-value")
            yield Static("", id="detail-chart-note")
            yield PlotextPlot(id="detail-chart")

    def on_mount(self) -> None:
        self.action_window(self.window)

    def _body(self) -> Text:
        offer = self.offer
        rows = [
            ("Price", f"{rate(offer.price_hour)}/h all-in · {rate(offer.price_per_gpu_hour)} per GPU-hour · "
                      f"{offer.pricing.value}"),
            ("Machine", f"{offer.gpu_count}x {offer.gpu} ({offer.vram_gb:.0f} GB each) · {offer.vcpus:.0f} vCPU · "
                        f"{offer.ram_gb:.0f} GB RAM · disk {offer.disk_gb:.0f} GB (priced in)"),
            ("Where", f"{offer.location or '-'}" + (f" ({offer.country})" if offer.country else "")),
            ("Reliability", "-" if offer.reliability is None else f"{offer.reliability:.4f}"),
            ("Quote", f"{age(self.hub.clock.now() - offer.quoted_at)} old"),
        ]
        if offer.storage_gb_month is not None:
            rows.append(("Storage", f"${offer.storage_gb_month:.3f}/GB/month — keeps billing while stopped"))
        if offer.min_bid is not None:
            rows.append(("Min bid", f"{rate(offer.min_bid)}/h"))
        if offer.cuda is not None:
            rows.append(("CUDA", f"up to {offer.cuda}"))
        if offer.inet_down_mbps is not None:
            rows.append(("Network", f"{offer.inet_down_mbps:,.0f} Mb/s down (bandwidth billed separately where "
                                    "the provider charges for it)"))
        return Text("\n").join(Text.assemble((f"{label:<12}", "bold"), value) for label, value in rows)

    def action_window(self, key: str) -> None:
        self.window = key
        self.query_one("#detail-chart-note", Static).update(f"Price history, last {WINDOWS[key].label}: loading…")
        self._load(key)

    def action_launch(self) -> None:
        self.dismiss(True)

    @work(group="history", exclusive=True, exit_on_error=False)
    async def _load(self, key: str) -> tuple[str, list[PriceStat]]:
        return key, await self.hub.price_history(self.offer, WINDOWS[key].seconds)

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        if event.worker.group != "history" or event.state is not WorkerState.SUCCESS:
            return
        if event.worker.result is None:
            return
        key, stats = event.worker.result
        self._draw(key, stats)

    def _draw(self, key: str, stats: list[PriceStat]) -> None:
        from textual_plotext import PlotextPlot

        window = WINDOWS[key]
        label = window.label
        note = self.query_one("#detail-chart-note", Static)
        chart = self.query_one(PlotextPlot)
        plt = chart.plt
        plt.clear_data()
        plt.clear_figure()
        if len(stats) < 2:
            note.update(f"Price history, last {label}: not enough points yet ({len(stats)}); a point is recorded "
                        "on every offers refresh.")
            chart.refresh()
            return
        now = self.hub.clock.now()
        xs = [(stat.at - now) / window.unit_s for stat in stats]
        plt.plot(xs, [s.p90_price for s in stats], label="p90", color="red")
        plt.plot(xs, [s.median_price for s in stats], label="median", color="yellow")
        plt.plot(xs, [s.min_price for s in stats], label="min", color="green")
        plt.xlim(-window.span, 0)
        plt.xticks(*window.ticks())
        plt.xlabel(f"{window.unit} ago")
        plt.ylabel("$/h")
        plt.title(f"{self.offer.gpu_count}x {self.offer.gpu} on {self.offer.provider} ({self.offer.pricing.value})")
        low = min(s.min_price for s in stats)
        high = max(s.p90_price for s in stats)
        note.update(f"Price history, last {label}: {len(stats)} points · min ${low:.3f} · p90 up to ${high:.3f}")
        chart.refresh()
