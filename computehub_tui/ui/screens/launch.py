"""The launch dialog: template, image, disk, label, bid; all-in price and caveats before confirm."""

from __future__ import annotations

from collections.abc import Callable

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label, Select, Static
from textual.worker import Worker, WorkerState

from computehub_tui.domain.models import PROVIDER_TITLES, LaunchSpec, Offer, PricingKind
from computehub_tui.domain.pricing import price_at_disk
from computehub_tui.domain.templates import Template
from computehub_tui.engine import NoCapacityError, ProviderError
from computehub_tui.engine.hub import Hub
from computehub_tui.ui.format import rate


class LaunchScreen(ModalScreen[str | None]):
    """Dismisses with the new instance key, or None when cancelled."""

    BINDINGS = [Binding("escape", "cancel", "Cancel"), Binding("ctrl+s", "launch", "Launch")]

    DEFAULT_CSS = """
    LaunchScreen { align: center middle; }
    LaunchScreen > Vertical { width: 84; height: auto; max-height: 95%; border: thick $accent;
                              background: $surface; padding: 1 2; }
    LaunchScreen #launch-offer { margin-bottom: 1; }
    LaunchScreen .field { height: auto; margin-bottom: 0; }
    LaunchScreen .field Label { width: 14; padding-top: 1; }
    LaunchScreen .field Input, LaunchScreen .field Select { width: 1fr; }
    LaunchScreen #launch-price { margin-top: 1; text-style: bold; }
    LaunchScreen #launch-caveats { color: $warning; }
    LaunchScreen #launch-error { color: $error; height: auto; }
    LaunchScreen #launch-progress { color: $accent; height: auto; }
    LaunchScreen #launch-buttons { height: auto; align: right middle; margin-top: 1; }
    LaunchScreen #launch-buttons Button { margin-left: 2; }
    """

    def __init__(self, hub: Hub, offer: Offer, next_best: Callable[[Offer], Offer | None] | None = None) -> None:
        super().__init__()
        self.hub = hub
        self.offer = offer
        self.next_best = next_best
        self.planned_disk = hub.offer_query.disk_gb
        self.alternative: Offer | None = None
        fallback = Template("custom", "Custom Docker", "ubuntu:22.04")
        self.templates = {template.name: template for template in hub.templates or [fallback]}
        self.default_template = "pytorch" if "pytorch" in self.templates else next(iter(self.templates), "")

    def template_named(self, name: str) -> Template:
        return self.templates[name]

    def compose(self) -> ComposeResult:
        offer = self.offer
        with Vertical():
            yield Static(self._offer_text(), id="launch-offer")
            with Horizontal(classes="field"):
                yield Label("Template")
                yield Select([(t.title, t.name) for t in self.templates.values()], value=self.default_template,
                             allow_blank=False, id="launch-template")
            default = self.template_named(self.default_template)
            with Horizontal(classes="field"):
                yield Label("Image")
                yield Input(default.image, id="launch-image")
            with Horizontal(classes="field"):
                yield Label("Disk (GB)")
                yield Input(str(max(self.planned_disk, default.disk_gb)), id="launch-disk", type="integer")
            with Horizontal(classes="field"):
                yield Label("Label")
                yield Input(f"chub-{offer.gpu.lower().replace(' ', '')}", id="launch-label")
            if offer.pricing is PricingKind.INTERRUPTIBLE:
                with Horizontal(classes="field"):
                    yield Label("Bid ($/h)")
                    yield Input(f"{offer.price_hour * 1.1:.3f}", id="launch-bid", type="number")
            with Horizontal(classes="field"):
                yield Label("Max $/h")
                yield Input(f"{offer.price_hour * 1.1:.3f}", id="launch-max", type="number",
                            tooltip="Refuse to launch if the quote has risen above this")
            yield Static(id="launch-price")
            yield Static(self._caveats(), id="launch-caveats")
            yield Static(id="launch-progress")
            yield Static(id="launch-error")
            with Horizontal(id="launch-buttons"):
                yield Button("Cancel (esc)", id="cancel")
                yield Button("Launch (ctrl+s)", id="launch", variant="success")

    def on_mount(self) -> None:
        self._update_price()
        self.query_one("#launch-image", Input).focus()

    def _offer_text(self) -> Text:
        offer = self.offer
        text = Text()
        text.append(f"Launch {offer.gpu_count}x {offer.gpu}", style="bold")
        text.append(f" on {PROVIDER_TITLES.get(offer.provider, offer.provider)}")
        text.append(f"\n{offer.location or '-'} · {offer.vram_gb:.0f} GB VRAM/GPU · {offer.vcpus:.0f} vCPU · "
                    f"{offer.ram_gb:.0f} GB RAM · offer {offer.offer_id}", style="dim")
        return text

    def _caveats(self) -> str:
        caps = self.hub.capabilities(self.offer.provider)
        notes = list(caps.notes)
        if self.offer.pricing is PricingKind.INTERRUPTIBLE:
            notes.insert(0, "interruptible: the machine can be taken back when outbid")
        return "\n".join(f"⚠ {note}" for note in notes)

    def _spec(self) -> LaunchSpec | str:
        """The launch spec from the form, or an error message."""
        template = self.template_named(str(self.query_one("#launch-template", Select).value))
        image = self.query_one("#launch-image", Input).value.strip()
        if not image:
            return "Image is required (e.g. pytorch/pytorch:latest)"
        try:
            disk = int(self.query_one("#launch-disk", Input).value)
        except ValueError:
            return "Disk must be a whole number of GB"
        if not 1 <= disk <= 10_000:
            return "Disk must be between 1 and 10000 GB"
        bid: float | None = None
        if self.offer.pricing is PricingKind.INTERRUPTIBLE:
            try:
                bid = float(self.query_one("#launch-bid", Input).value)
            except ValueError:
                return "Bid must be a number of $/h"
            if bid <= 0:
                return "Bid must be above $0/h"
        try:
            ceiling = float(self.query_one("#launch-max", Input).value)
        except ValueError:
            return "Max $/h must be a number"
        latest = next((o for o in self.hub.offers() if o.key == self.offer.key), None)
        if latest is not None:
            self.offer = latest  # launch at the freshest quote, not the one the dialog opened with
        all_in = price_at_disk(self.offer, disk, self.planned_disk)
        expected = bid if bid is not None else all_in
        if expected > ceiling:
            return (f"The price is now {rate(expected)}/h, above your max of {rate(ceiling)}/h; "
                    "raise the max or pick another offer")
        label = self.query_one("#launch-label", Input).value.strip()
        return LaunchSpec(image=image, disk_gb=disk, label=label, env=dict(template.env), ports=template.ports,
                          onstart=template.onstart, jupyter=template.jupyter, bid_price=bid, template=template.name)

    def _update_price(self) -> None:
        price = self.query_one("#launch-price", Static)
        try:
            disk = int(self.query_one("#launch-disk", Input).value)
        except ValueError:
            price.update("Total: enter a disk size")
            return
        total = price_at_disk(self.offer, disk, self.planned_disk)
        if self.offer.pricing is PricingKind.INTERRUPTIBLE:
            try:
                total = float(self.query_one("#launch-bid", Input).value)
            except ValueError:
                pass
        text = Text(f"Total: {rate(total)}/h all-in", style="bold green")
        text.append(f"  (≈ ${total * 24:,.2f}/day)", style="dim")
        if self.offer.storage_gb_month:
            text.append(f"  incl. {disk} GB disk", style="dim")
        price.update(text)

    @on(Select.Changed, "#launch-template")
    def _template_changed(self, event: Select.Changed) -> None:
        template = self.template_named(str(event.value))
        self.query_one("#launch-image", Input).value = template.image
        disk = self.query_one("#launch-disk", Input)
        disk.value = str(max(self.planned_disk, template.disk_gb))
        self._update_price()

    @on(Input.Changed)
    def _input_changed(self, event: Input.Changed) -> None:
        if event.input.id in ("launch-disk", "launch-bid"):
            self._update_price()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        if event.button.id == "cancel":
            self.dismiss(None)
        elif event.button.id == "launch":
            self.action_launch()
        elif event.button.id == "alternative" and self.alternative is not None:
            self.offer = self.alternative
            self.alternative = None
            event.button.remove()
            self.query_one("#launch-offer", Static).update(self._offer_text())
            self.query_one("#launch-error", Static).update("")
            self._update_price()

    def action_cancel(self) -> None:
        self.dismiss(None)

    def action_launch(self) -> None:
        spec = self._spec()
        error = self.query_one("#launch-error", Static)
        if isinstance(spec, str):
            error.update(f"✖ {spec}")
            return
        error.update("")
        self.query_one("#launch", Button).disabled = True
        title = PROVIDER_TITLES.get(self.offer.provider, self.offer.provider)
        self.query_one("#launch-progress", Static).update(f"⏳ Launching — waiting for {title} to accept…")
        self._launch(self.offer, spec)

    @work(exclusive=True, group="launch", exit_on_error=False)
    async def _launch(self, offer: Offer, spec: LaunchSpec) -> str | ProviderError:
        try:
            return await self.hub.launch(offer, spec)
        except ProviderError as error:
            return error

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        if event.worker.group != "launch" or event.state is not WorkerState.SUCCESS:
            return
        result = event.worker.result
        if isinstance(result, str):
            self.dismiss(result)
            return
        self.query_one("#launch", Button).disabled = False
        self.query_one("#launch-progress", Static).update("")
        self.query_one("#launch-error", Static).update(f"✖ {result}")
        if isinstance(result, NoCapacityError) and self.next_best is not None:
            self.alternative = self.next_best(self.offer)
            if self.alternative is not None:
                alt = self.alternative
                self.query_one("#launch-buttons", Horizontal).mount(
                    Button(f"Try next best: {alt.gpu_count}x {alt.gpu} {rate(alt.price_hour)}/h", id="alternative",
                           variant="warning"),
                    before=0,
                )
