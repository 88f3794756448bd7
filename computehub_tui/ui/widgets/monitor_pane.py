"""The Monitor pane: a block of fixed-scale sparklines (GPU util, VRAM, temperature) per instance."""

from __future__ import annotations

from collections.abc import Sequence

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import VerticalScroll
from textual.widgets import Static

from computehub_tui.domain.models import PROVIDER_TITLES, Instance, InstanceStatus, MetricSample
from computehub_tui.domain.text import clean_text
from computehub_tui.engine.hub import Hub
from computehub_tui.ui.format import duration, level_style, rate, spark

LABEL_WIDTH = 9
VALUE_WIDTH = 22


class InstanceMonitor(Static):
    """One instance's block. Every scale is fixed (0–100 %, 0–100 °C), so a flat line means flat."""

    DEFAULT_CSS = """
    InstanceMonitor { height: auto; border: round $panel-lighten-2; padding: 0 1; margin: 0 0 1 0; }
    """

    def __init__(self, instance: Instance) -> None:
        super().__init__(id=f"mon-{_safe_id(instance.key)}")
        self.instance = instance
        self.border_title = Text(f"{instance.key}  {clean_text(instance.label)}")

    def show(self, instance: Instance, history: list[MetricSample], now: float, cost: float,
             live_metrics: bool = True, provider_title: str = "") -> None:
        self.instance = instance
        width = max(10, self.size.width - 4 - LABEL_WIDTH - VALUE_WIDTH) if self.size.width else 40
        self.border_title = Text(f"{instance.key}  {clean_text(instance.label)}")
        uptime = f" {duration(now - instance.started_at)}" if instance.started_at else ""
        self.border_subtitle = Text(f"{instance.gpu_count}x {clean_text(instance.gpu)} · {instance.status.value}{uptime} · "
                                    f"{rate(instance.price_hour)}/h · ${cost:.2f} so far")
        text = Text()
        if not history:
            if not live_metrics:
                message = (f"{provider_title} reports no live GPU metrics; "
                           "SSH in and run nvidia-smi (c in Instances copies the command)")
            elif instance.status is InstanceStatus.RUNNING:
                message = "waiting for the first sample…"
            else:
                message = f"{instance.status.value}: metrics start once it is running"
            text.append(message, style="dim italic")
            self.update(text)
            return
        latest = history[-1]
        utils = [s.mean_gpu_util or 0.0 for s in history]
        vram = [s.vram_pct for s in history]
        temps = [s.max_gpu_temp for s in history]
        per_gpu = " ".join(f"{u:.0f}" for u in latest.gpu_util)
        used = sum(latest.vram_used_gb)
        total = sum(latest.vram_total_gb)
        self._row(text, "GPU util", utils, width, f"{utils[-1]:5.1f}%  [{per_gpu}]", level_style(utils[-1]))
        vram_now = "    -" if vram[-1] is None else f"{vram[-1]:5.1f}%  {used:.1f}/{total:.0f} GB"
        self._row(text, "VRAM", vram, width, vram_now, "cyan")
        temp = latest.max_gpu_temp
        self._row(text, "Temp", temps, width, "   -" if temp is None else f"{temp:5.1f}°C",
                  "red" if (temp or 0) >= 83 else "magenta", last=True)
        if latest.cpu_pct is not None or latest.ram_pct is not None:
            text.append(f"\n{'':<{LABEL_WIDTH}}CPU {latest.cpu_pct or 0:.0f}%  RAM {latest.ram_pct or 0:.0f}%",
                        style="dim")
        self.update(text)

    @staticmethod
    def _row(text: Text, label: str, values: Sequence[float | None], width: int, value: str, style: str,
             last: bool = False) -> None:
        text.append(f"{label:<{LABEL_WIDTH}}", style="bold")
        text.append(spark(values, width), style=style)
        text.append(f" {value}")
        if not last:
            text.append("\n")


class MonitorPane(VerticalScroll):
    """Cards come and go with instances; off-screen cards are not painted by the compositor."""

    DEFAULT_CSS = """
    MonitorPane { height: 1fr; padding: 0 1; }
    MonitorPane #monitor-empty { color: $text-muted; padding: 1 2; }
    """

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.hub: Hub | None = None
        self.cards: dict[str, InstanceMonitor] = {}

    def compose(self) -> ComposeResult:
        yield Static("No running instances. Launch one from the Offers pane (1 → Enter).", id="monitor-empty")

    def attach(self, hub: Hub) -> None:
        self.hub = hub
        self.reload()

    def reload(self) -> None:
        if self.hub is None:
            return
        watched = [i for i in self.hub.instances()
                   if i.status in (InstanceStatus.RUNNING, InstanceStatus.STARTING, InstanceStatus.PROVISIONING)]
        watched.sort(key=lambda i: (i.status is not InstanceStatus.RUNNING, i.provider, i.label))
        keys = {instance.key for instance in watched}
        for key in list(self.cards):
            if key not in keys:
                self.cards.pop(key).remove()
        for instance in watched:
            card = self.cards.get(instance.key)
            if card is None:
                card = InstanceMonitor(instance)
                self.cards[instance.key] = card
                self.mount(card)
            card.show(instance, list(self.hub.metric_history(instance.key))[-240:], self.hub.clock.now(),
                      self.hub.cost_so_far(instance.key),
                      live_metrics=self.hub.capabilities(instance.provider).live_metrics,
                      provider_title=PROVIDER_TITLES.get(instance.provider, instance.provider))
        self.query_one("#monitor-empty", Static).display = not watched

    def on_resize(self) -> None:
        self.reload()


def _safe_id(key: str) -> str:
    return "".join(ch if ch.isalnum() else "-" for ch in key)
