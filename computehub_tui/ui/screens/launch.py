"""The launch dialog: template, image, disk, label, bid; all-in price and caveats before confirm."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widget import Widget
from textual.widgets import Button, Input, Label, Select
from textual.worker import Worker, WorkerState

from computehub_tui.domain.models import PROVIDER_TITLES, LaunchSpec, Offer, PricingKind
from computehub_tui.domain.templates import Template
from computehub_tui.domain.text import clean_text
from computehub_tui.engine import NoCapacityError, ProviderError
from computehub_tui.engine.hub import Hub
from computehub_tui.engine.policy import LaunchRefused, check_max_price, launch_caveats, launch_price
from computehub_tui.ui.format import rate
from computehub_tui.ui.plain import PlainStatic, plain
from computehub_tui.ui.screens.compact import fit_to_height

MAX_DISK_GB = 10_000
BID_HINT = "your $/h bid for the whole machine; you keep the machine while it wins"
MAX_HINT = "refuse to launch if the quote has risen above this"


@dataclass(frozen=True, slots=True)
class LaunchForm:
    """The dialog's fields, validated."""

    template: Template
    image: str
    disk_gb: int
    label: str
    bid: float | None
    ceiling: float


class LaunchScreen(ModalScreen[str | None]):
    """Dismisses with the new instance key, or None when cancelled.

    The offer line sits on top and the total, caveats and buttons at the bottom, both fixed; only
    the form between them scrolls, so at any size the price is on screen before ctrl+s launches.
    """

    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "cancel", "Cancel"),
                                             Binding("ctrl+s", "launch", "Launch")]

    DEFAULT_CSS = """
    LaunchScreen { align: center middle; }
    LaunchScreen > Vertical { width: 84; max-width: 100%; height: auto; max-height: 100%; border: thick $accent;
                              background: $surface; padding: 0 1; }
    LaunchScreen #launch-offer { dock: top; padding: 1 1 0 1; margin-bottom: 1; }
    LaunchScreen #launch-form { height: auto; max-height: 1fr; padding: 0 1; }
    LaunchScreen .field { height: auto; }
    LaunchScreen .field Label { width: 14; padding-top: 1; }
    LaunchScreen .field Input, LaunchScreen .field Select { width: 1fr; }
    LaunchScreen .hint { color: $text-muted; padding-left: 14; }
    LaunchScreen #launch-footer { dock: bottom; height: auto; padding: 0 1 1 1; }
    LaunchScreen #launch-price { margin-top: 1; text-style: bold; }
    LaunchScreen #launch-caveats { color: $warning; height: auto; }
    LaunchScreen #launch-error { color: $error; height: auto; }
    LaunchScreen #launch-progress { color: $accent; height: auto; }
    LaunchScreen #launch-buttons { height: auto; align: right middle; }
    LaunchScreen #launch-buttons Button { margin-left: 2; }
    LaunchScreen.-compact #launch-offer { padding-top: 0; }
    LaunchScreen.-compact .field Label { padding-top: 0; }
    LaunchScreen.-compact #launch-footer { padding-bottom: 0; }
    """

    def __init__(self, hub: Hub, offer: Offer) -> None:
        super().__init__()
        self.hub = hub
        self.offer = offer
        self.planned_disk = hub.offer_query.disk_gb
        self.alternative: Offer | None = None
        self.shown_price: float | None = None
        """The total on screen; ctrl+s launches only at this price."""
        self.capabilities = hub.capabilities(offer.provider)
        fallback = Template("custom", "Custom Docker", "ubuntu:22.04")
        self.templates = {template.name: template for template in hub.templates or [fallback]}
        self.default_template = "pytorch" if "pytorch" in self.templates else next(iter(self.templates), "")

    def template_named(self, name: str) -> Template:
        return self.templates[name]

    @property
    def interruptible(self) -> bool:
        return self.offer.pricing is PricingKind.INTERRUPTIBLE

    def compose(self) -> ComposeResult:
        offer = self.offer
        default = self.template_named(self.default_template)
        with Vertical():
            yield PlainStatic(self._offer_text(), id="launch-offer")
            with VerticalScroll(id="launch-form"):
                yield from self._field("Template", Select(
                    [(plain(t.title, limit=60), t.name) for t in self.templates.values()], value=self.default_template,
                    allow_blank=False, id="launch-template"))
                if self.capabilities.custom_image:
                    yield from self._field("Image", Input(default.image, id="launch-image"))
                if self.capabilities.custom_disk:
                    yield from self._field("Disk (GB)", Input(
                        str(max(self.planned_disk, default.disk_gb)), id="launch-disk", type="integer"))
                yield from self._field("Label", Input(
                    clean_text(f"chub-{offer.gpu.lower().replace(' ', '')}", 40), id="launch-label"))
                if self.interruptible:
                    yield from self._field("Bid ($/h)", Input(
                        f"{offer.price_hour * 1.1:.3f}", id="launch-bid", type="number"), hint=BID_HINT)
                yield from self._field("Max $/h", Input(
                    f"{offer.price_hour * 1.1:.3f}", id="launch-max", type="number"), hint=MAX_HINT)
            with Vertical(id="launch-footer"):
                yield PlainStatic(id="launch-price")
                yield PlainStatic(self._caveats_text(), id="launch-caveats")
                yield PlainStatic(id="launch-progress")
                yield PlainStatic(id="launch-error")
                with Horizontal(id="launch-buttons"):
                    yield Button("Cancel (esc)", id="cancel")
                    yield Button("Launch (ctrl+s)", id="launch", variant="success")

    @staticmethod
    def _field(title: str, control: Widget, hint: str = "") -> ComposeResult:
        with Horizontal(classes="field"):
            yield Label(title)
            yield control
        if hint:
            yield PlainStatic(hint, classes="hint")

    def on_mount(self) -> None:
        self._update_price()
        first = "#launch-image" if self.capabilities.custom_image else "#launch-label"
        self.query_one(first, Input).focus()

    def on_resize(self) -> None:
        fit_to_height(self)

    def _offer_text(self) -> Text:
        offer = self.offer
        text = Text()
        text.append_text(plain(f"Launch {offer.gpu_count}x {offer.gpu}", style="bold", limit=60))
        text.append(f" on {PROVIDER_TITLES.get(offer.provider, offer.provider)}")
        if self.interruptible:
            text.append(" (interruptible)", style="bold magenta")
        text.append("\n")
        text.append_text(plain(f"{offer.location or '-'} · {offer.vram_gb:.0f} GB VRAM/GPU · {offer.vcpus:.0f} vCPU · "
                               f"{offer.ram_gb:.0f} GB RAM · offer {offer.offer_id}", style="dim"))
        return text

    def _caveats_text(self) -> Text:
        text = Text()
        for caveat in launch_caveats(self.offer, self.capabilities):
            text.append_text(plain(f"⚠ {caveat}"))
            text.append("\n")
        text.rstrip()
        return text

    # -- the form ---------------------------------------------------------------------------

    def _value(self, selector: str) -> str:
        return self.query_one(selector, Input).value.strip()

    def read_form(self) -> LaunchForm | str:
        """The validated form, or what to fix first."""
        template = self.template_named(str(self.query_one("#launch-template", Select).value))
        image = template.image
        if self.capabilities.custom_image:
            image = self._value("#launch-image")
            if not image:
                return "Image is required (e.g. pytorch/pytorch:latest)"
        disk = self.planned_disk
        if self.capabilities.custom_disk:
            try:
                disk = int(self._value("#launch-disk"))
            except ValueError:
                return "Disk must be a whole number of GB"
            if not 1 <= disk <= MAX_DISK_GB:
                return f"Disk must be between 1 and {MAX_DISK_GB} GB"
        bid: float | None = None
        if self.interruptible:
            bid = _positive(self._value("#launch-bid"))
            if bid is None:
                return "Bid must be a number of $/h above $0"
        ceiling = _positive(self._value("#launch-max"))
        if ceiling is None:
            return "Max $/h must be a number of $/h above $0"
        return LaunchForm(template, image, disk, self._value("#launch-label"), bid, ceiling)

    def _total(self, form: LaunchForm) -> float:
        return launch_price(self.offer, disk_gb=form.disk_gb, planned_disk_gb=self.planned_disk, bid=form.bid)

    def _update_price(self) -> None:
        """Validate first, then price: an invalid field shows its problem, never a made-up total."""
        price = self.query_one("#launch-price", PlainStatic)
        form = self.read_form()
        if isinstance(form, str):
            self.shown_price = None
            price.update(Text("Total: fix the field below to see the price", style="bold yellow"))
            self._show_error(form)
            return
        self._show_error("")
        total = self._total(form)
        self.shown_price = total
        text = Text(f"Total: {rate(total)}/h all-in", style="bold green")
        text.append(f"  (≈ ${total * 24:,.2f}/day)", style="dim")
        if self.offer.storage_gb_month and self.capabilities.custom_disk:
            text.append(f"  incl. {form.disk_gb} GB disk", style="dim")
        price.update(text)

    def _show_error(self, message: str) -> None:
        self.query_one("#launch-error", PlainStatic).update(plain(f"✖ {message}", limit=600) if message else "")

    @on(Select.Changed, "#launch-template")
    def _template_changed(self, event: Select.Changed) -> None:
        template = self.template_named(str(event.value))
        if self.capabilities.custom_image:
            self.query_one("#launch-image", Input).value = template.image
        if self.capabilities.custom_disk:
            self.query_one("#launch-disk", Input).value = str(max(self.planned_disk, template.disk_gb))
        self._update_price()

    @on(Input.Changed)
    def _input_changed(self, event: Input.Changed) -> None:
        self._update_price()

    # -- launching --------------------------------------------------------------------------

    def on_button_pressed(self, event: Button.Pressed) -> None:
        if event.button.id == "cancel":
            self.dismiss(None)
        elif event.button.id == "launch":
            self.action_launch()
        elif event.button.id == "alternative" and self.alternative is not None:
            self.offer = self.alternative
            self.alternative = None
            event.button.remove()
            self.query_one("#launch-offer", PlainStatic).update(self._offer_text())
            self.query_one("#launch-caveats", PlainStatic).update(self._caveats_text())
            self._update_price()

    def action_cancel(self) -> None:
        self.dismiss(None)

    def _on_screen(self, selector: str) -> bool:
        region = self.query_one(selector).region
        return region.height > 0 and self.region.contains_region(region)

    def action_launch(self) -> None:
        if self.query_one("#launch", Button).disabled:
            return  # a launch is already on its way
        form = self.read_form()
        if isinstance(form, str):
            self._show_error(form)
            return
        if not (self._on_screen("#launch-offer") and self._on_screen("#launch-price")):
            self._show_error("Make the terminal larger: the offer and its price must be on screen to launch")
            return
        latest = next((o for o in self.hub.offers() if o.key == self.offer.key), None)
        if latest is not None and latest != self.offer:
            self.offer = latest  # launch at the freshest quote, never at one the user has not seen
            self.query_one("#launch-offer", PlainStatic).update(self._offer_text())
        total = self._total(form)
        if self.shown_price is None or not math.isclose(total, self.shown_price, abs_tol=5e-4):
            self._update_price()
            self._show_error(f"The quote changed to {rate(total)}/h; check the total and press ctrl+s again")
            return
        try:
            check_max_price(self.offer, total, form.ceiling)  # the engine checks again at launch
        except LaunchRefused:
            self._show_error(f"The price is now {rate(total)}/h, above your max of {rate(form.ceiling)}/h; "
                             "raise the max or pick another offer")
            return
        template = form.template
        spec = LaunchSpec(image=form.image, disk_gb=form.disk_gb, label=form.label, env=dict(template.env),
                          ports=template.ports, onstart=template.onstart, jupyter=template.jupyter,
                          bid_price=form.bid, template=template.name)
        self._show_error("")
        self.query_one("#launch", Button).disabled = True
        title = PROVIDER_TITLES.get(self.offer.provider, self.offer.provider)
        self.query_one("#launch-progress", PlainStatic).update(f"⏳ Launching — waiting for {title} to accept…")
        self._launch(self.offer, spec, form.ceiling)

    @work(exclusive=True, group="launch", exit_on_error=False)
    async def _launch(self, offer: Offer, spec: LaunchSpec, ceiling: float) -> str | ProviderError | LaunchRefused:
        try:
            return await self.hub.launch(offer, spec, max_price=ceiling)
        except (ProviderError, LaunchRefused) as error:
            return error

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        if event.worker.group != "launch" or event.state not in (WorkerState.SUCCESS, WorkerState.ERROR):
            return
        result = event.worker.result if event.state is WorkerState.SUCCESS else event.worker.error
        if isinstance(result, str):
            self.dismiss(result)
            return
        self.query_one("#launch", Button).disabled = False
        self.query_one("#launch-progress", PlainStatic).update("")
        self._show_error(str(result) if isinstance(result, (ProviderError, LaunchRefused))
                         else f"internal error while launching: {type(result).__name__}: {result}")
        if isinstance(result, NoCapacityError):
            self.alternative = self.hub.next_best_offer(self.offer)
            if self.alternative is not None:
                alt = self.alternative
                self.query_one("#launch-buttons", Horizontal).mount(
                    Button(plain(f"Try next best: {alt.gpu_count}x {alt.gpu} {rate(alt.price_hour)}/h", limit=60),
                           id="alternative", variant="warning", compact=self.has_class("-compact")),
                    before=0,
                )


def _positive(text: str) -> float | None:
    """A finite number above zero, or None (the Input accepts 'inf' and '1e999' too)."""
    try:
        value = float(text)
    except ValueError:
        return None
    return value if math.isfinite(value) and value > 0 else None
