"""One instance in full: status and its timeline, SSH command and ready URLs for its ports, and charts of its
GPUs and booked spend, redrawn as polls and samples arrive."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import ClassVar

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Grid, VerticalScroll
from textual.message import Message
from textual.screen import ModalScreen
from textual.worker import Worker, WorkerState

from computehub_tui.domain.models import PROVIDER_TITLES, Instance, MetricSample, valid_host, valid_port
from computehub_tui.domain.status_timeline import StatusChange
from computehub_tui.engine.events import InstancesUpdated
from computehub_tui.engine.hub import Hub
from computehub_tui.ui.format import duration, money, rate
from computehub_tui.ui.messages import InstanceDataArrived
from computehub_tui.ui.metrics_source import history_for_window, spend_for_window
from computehub_tui.ui.plain import PlainStatic, plain
from computehub_tui.ui.screens.offer_detail import ChartWindow
from computehub_tui.ui.widgets.status_timeline import StatusTimeline

WINDOWS: dict[str, ChartWindow] = {
    "1": ChartWindow("15 m", 900.0, "minutes", 60.0, 5),
    "2": ChartWindow("1 h", 3600.0, "minutes", 60.0, 15),
    "3": ChartWindow("24 h", 86400.0, "hours", 3600.0, 6),
    "4": ChartWindow("7 d", 7 * 86400.0, "days", 86400.0, 1),
}
KNOWN_SERVICES = {8888: "Jupyter", 8188: "ComfyUI", 8000: "vLLM"}
SSH_PORT = 22
MAX_CHART_POINTS = 400
"""Plotext redraws every point on each paint: a week of 5 s samples is thinned to this."""
CHART_GPUS = 8
CHARTS = (("util", "GPU util %"), ("vram", "VRAM GB used"), ("temp", "temperature °C"), ("spend", "$ spent"))


@dataclass(frozen=True, slots=True)
class PortLink:
    """A container port the provider maps to a public address, and the URL that opens it."""

    container_port: int
    url: str
    service: str


def port_links(instance: Instance) -> list[PortLink]:
    """A link per mapped port whose public host and port both validate (SSH is left to its own line);
    the known services (Jupyter, ComfyUI, vLLM) first, then the rest by port."""
    links = []
    for container, public in instance.ports.items():
        port = valid_port(container.split("/", 1)[0])
        host_text, _, port_text = public.rpartition(":")
        host, public_port = valid_host(host_text), valid_port(port_text)
        if port is None or port == SSH_PORT or host is None or public_port is None:
            continue
        shown_host = f"[{host}]" if ":" in host else host
        links.append(PortLink(port, f"http://{shown_host}:{public_port}", KNOWN_SERVICES.get(port, "")))
    return sorted(links, key=lambda link: (link.service == "", link.container_port))


@dataclass(frozen=True, slots=True)
class WindowData:
    """Everything one chart window draws, read in one worker."""

    window: str
    """Which of ``WINDOWS``."""
    now: float
    samples: list[MetricSample]
    spent: list[tuple[float, float]] = field(default_factory=list)
    """``(time, USD booked so far)``."""
    changes: list[StatusChange] = field(default_factory=list)


def thinned(samples: Sequence[MetricSample], limit: int = MAX_CHART_POINTS) -> list[MetricSample]:
    step = max(1, -(-len(samples) // limit))
    return list(samples[::step])


class InstanceDetailScreen(ModalScreen[None]):
    """Charts load in a worker when a window is picked, and again when a poll or a sample of this instance
    arrives while the screen is shown (at most one load running and one waiting; nothing here has a timer)."""

    class CopyRequested(Message):
        """Copy ``text`` (the SSH command, the URLs) through the app's copy dialog."""

        def __init__(self, text: str, what: str) -> None:
            super().__init__()
            self.text = text
            self.what = what

    class LogsRequested(Message):
        def __init__(self, instance: Instance) -> None:
            super().__init__()
            self.instance = instance

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape,q", "dismiss", "Close"),
        *[Binding(key, f"window('{key}')", window.label) for key, window in WINDOWS.items()],
        Binding("c", "copy_ssh", "Copy SSH"),
        Binding("u", "copy_urls", "Copy URLs"),
        Binding("l", "logs", "Logs"),
    ]
    DEFAULT_CSS = """
    InstanceDetailScreen { align: center middle; }
    InstanceDetailScreen > VerticalScroll { width: 100%; max-width: 160; height: 100%; border: thick $accent;
                                            background: $surface; }
    InstanceDetailScreen #instance-title { height: auto; padding: 0 1; background: $panel; text-style: bold; }
    InstanceDetailScreen #instance-body { height: auto; padding: 0 1; }
    InstanceDetailScreen #instance-chart-note { height: auto; padding: 0 1; color: $text-muted; }
    InstanceDetailScreen StatusTimeline { background: $surface; }
    InstanceDetailScreen Grid { grid-size: 2; grid-rows: 14; height: auto; }
    InstanceDetailScreen PlotextPlot { height: 14; }
    """

    def __init__(self, hub: Hub, instance: Instance) -> None:
        super().__init__()
        self.hub = hub
        self.instance = instance
        self.window = "2"
        self.draws = 0
        """Windows drawn so far (the first one, each window picked, each live refresh)."""
        self._loading: Worker[WindowData] | None = None
        self._reload_waiting = False
        self._stale = False
        """Data arrived while another screen covered this one: reload when it shows again."""

    def compose(self) -> ComposeResult:
        from textual_plotext import PlotextPlot  # deferred: plotext is only needed on demand

        instance = self.instance
        title = plain(self.hub.local_labels.shown(instance) or "(no label)")
        title.append(f" · {instance.key}   (1–4 chart window, c copy SSH, u copy URLs, l logs, esc close)")
        with VerticalScroll():
            yield PlainStatic(title, id="instance-title")
            yield PlainStatic(self._body(), id="instance-body")
            yield StatusTimeline(id="instance-timeline")
            yield PlainStatic("", id="instance-chart-note")
            with Grid():
                for name, _ in CHARTS:
                    yield PlotextPlot(id=f"chart-{name}")

    def on_mount(self) -> None:
        self.action_window(self.window)

    def _body(self) -> Text:
        instance, hub = self.instance, self.hub
        rows: list[tuple[str, Text]] = [
            ("Machine", plain(f"{instance.gpu_count}x {instance.gpu} · "
                              f"{PROVIDER_TITLES.get(instance.provider, instance.provider)} · {instance.location or '-'}")),
            ("Status", self._status()),
            ("Money", Text(f"{rate(instance.current_price_hour)}/h now · {money(hub.cost_so_far(instance.key))} so far")),
            ("SSH", plain(instance.ssh.command, style="bold") if instance.ssh else Text("not available yet", "dim")),
        ]
        links = port_links(instance)
        for n, link in enumerate(links):
            line = Text(f"{link.container_port:>5} → ")
            line.append(link.url, style="bold")
            if link.service:
                line.append(f"  {link.service}", style="green")
            rows.append(("Ports" if n == 0 else "", line))
        if not links:
            rows.append(("Ports", Text("no mapped web ports", style="dim")))
        return Text("\n").join(Text.assemble((f"{label:<9}", "bold"), value) for label, value in rows)

    def _status(self) -> Text:
        """The current status and since when it has had it (first seen by a poll; else since its billing run
        began), and what a stopped one still bills."""
        instance, hub = self.instance, self.hub
        text = Text(instance.status.value, style="bold")
        if hub.costs.billing_while_stopped(instance):
            text.append(f"·bills {rate(hub.costs.rate_now(instance) or 0.0)}/h", style="bold yellow")
        since = hub.status_since(instance.key) or hub.running_since(instance.key)
        if since is not None:
            at = datetime.fromtimestamp(since, tz=UTC).strftime("%Y-%m-%d %H:%M UTC")
            text.append(f" for {duration(hub.clock.now() - since)} (since {at})")
        if instance.provider_status:
            text.append(" · provider says ", style="dim")
            text.append_text(plain(instance.provider_status, style="dim", limit=80))
        if instance.status_message:
            text.append(" — ", style="dim")
            text.append_text(plain(instance.status_message, style="dim", limit=160))
        return text

    # -- keys -------------------------------------------------------------------------------

    def action_window(self, key: str) -> None:
        self.window = key
        self.query_one("#instance-chart-note", PlainStatic).update(f"Last {WINDOWS[key].label}: loading…")
        self._reload_waiting = False
        self._loading = self._load(key)

    def on_instance_data_arrived(self, message: InstanceDataArrived) -> None:
        """A poll or a sample arrived: redraw when it concerns this instance (later, if the screen is covered)."""
        event = message.event
        concerns = (event.provider == self.instance.provider if isinstance(event, InstancesUpdated)
                    else self.instance.key in event.instance_keys)
        if not concerns:
            return
        if not self.is_active:  # covered (logs, a dialog): nobody sees a redraw
            self._stale = True
            return
        self._refresh_live()

    def on_screen_resume(self) -> None:
        if self._stale:
            self._stale = False
            self._refresh_live()

    def _refresh_live(self) -> None:
        latest = self.hub.instance(self.instance.key)
        if latest is not None:
            self.instance = latest
        self.query_one("#instance-body", PlainStatic).update(self._body())
        if self._loading is not None and not self._loading.is_finished:
            self._reload_waiting = True  # coalesced: one more load once this one ends
        else:
            self._loading = self._load(self.window)

    def action_copy_ssh(self) -> None:
        if self.instance.ssh is None:
            self.notify("No SSH endpoint for this instance yet", severity="warning")
            return
        self.post_message(self.CopyRequested(self.instance.ssh.command, "the SSH command"))

    def action_copy_urls(self) -> None:
        links = port_links(self.instance)
        if not links:
            self.notify("This instance maps no web ports", severity="warning")
            return
        self.post_message(self.CopyRequested("\n".join(link.url for link in links), "the port URLs"))

    def action_logs(self) -> None:
        self.post_message(self.LogsRequested(self.instance))

    # -- charts -----------------------------------------------------------------------------

    @work(group="instance-history", exclusive=True, exit_on_error=False)
    async def _load(self, key: str) -> WindowData:
        seconds, hub, instance_key = WINDOWS[key].seconds, self.hub, self.instance.key
        now = hub.clock.now()
        return WindowData(key, now, thinned(await history_for_window(hub, instance_key, seconds)),
                          await spend_for_window(hub, instance_key, seconds),
                          await hub.status_history(instance_key, now - seconds))

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        if event.worker is not self._loading or not event.worker.is_finished:
            return
        if event.state is WorkerState.SUCCESS and isinstance(event.worker.result, WindowData):
            self._draw(event.worker.result)
        if self._reload_waiting:
            self._reload_waiting = False
            self._loading = self._load(self.window)

    def _draw(self, data: WindowData) -> None:
        from textual_plotext import PlotextPlot

        samples, now = data.samples, data.now
        window = WINDOWS[data.window]
        self.query_one(StatusTimeline).show(data.changes, now - window.seconds, now)
        xs = [(sample.time - now) / window.unit_s for sample in samples]
        gpus = min(CHART_GPUS, max((len(s.gpu_util) for s in samples), default=0))
        series = {
            "util": [[_at(s.gpu_util, n) for s in samples] for n in range(gpus)],
            "vram": [[_at(s.vram_used_gb, n) for s in samples] for n in range(gpus)],
            "temp": [[_at(s.gpu_temp_c, n) for s in samples] for n in range(gpus)],
        }
        limits = {"util": (0.0, 100.0), "temp": (20.0, 95.0)}
        for name, title in CHARTS:
            chart = self.query_one(f"#chart-{name}", PlotextPlot)
            plt = chart.plt
            plt.clear_data()
            plt.clear_figure()
            plt.title(title)
            if name == "spend":
                plt.plot([(at - now) / window.unit_s for at, _ in data.spent], [usd for _, usd in data.spent],
                         color="green")
            else:
                plotted = False
                for n, values in enumerate(series[name]):
                    known = [(x, v) for x, v in zip(xs, values, strict=True) if v is not None]
                    if known:
                        plt.plot([x for x, _ in known], [v for _, v in known], label=f"GPU{n}")
                        plotted = True
                if not plotted:  # an empty frame alone would read as "zero"
                    plt.title(f"{title}: not reported in this window")
                if name in limits:
                    plt.ylim(*limits[name])
            plt.xlim(-window.span, 0)
            plt.xticks(*window.ticks())
            plt.xlabel(f"{window.unit} ago")
            chart.refresh()
        note = (f"Last {window.label}: {len(samples)} sample{'s' if len(samples) != 1 else ''}" if samples else
                f"Last {window.label}: no samples recorded in this window")
        self.query_one("#instance-chart-note", PlainStatic).update(
            f"{note}; $ spent is what was booked, hour by hour.")
        self.draws += 1


def _at(values: Sequence[float | None], index: int) -> float | None:
    return values[index] if index < len(values) else None

