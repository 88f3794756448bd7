"""The Monitor pane: a fixed-height card of fixed-scale sparklines per instance, rendered virtually."""

from __future__ import annotations

from collections.abc import Sequence
from itertools import islice

from rich.segment import Segment
from rich.style import Style
from textual.binding import Binding
from textual.cache import LRUCache
from textual.geometry import Size
from textual.scroll_view import ScrollView
from textual.strip import Strip

from computehub_tui.domain.models import PROVIDER_TITLES, Instance, InstanceStatus, MetricSample, known
from computehub_tui.engine.hub import Hub
from computehub_tui.ui.format import duration, level_style, rate, spark
from computehub_tui.ui.problems import failure_lines
from computehub_tui.ui.widgets.instances_pane import STATUS_STYLE

LABEL_WIDTH = 10
VALUE_WIDTH = 24
CARD_HEIGHT = 7
"""Title, GPU util, VRAM, temperature, CPU, RAM, and a blank separator line."""
WATCHED = (InstanceStatus.RUNNING, InstanceStatus.STARTING, InstanceStatus.PROVISIONING)
EMPTY_TEXT = "No running instances. Launch one from the Offers pane (1 → Enter)."
CACHED_CARDS = 128
"""Rendered cards kept between frames: a screenful many times over, never the whole fleet."""

Piece = tuple[str, str | None]
"""Text and an optional style name for one run of a line."""


class MonitorPane(ScrollView, can_focus=True):
    """Only the cards on screen are rendered, so 5,000 instances cost what 5 do. Every scale is
    fixed (0–100 %, 0–100 °C), so a flat line means flat."""

    BINDINGS = [
        Binding("up,k", "cursor(-1)", "Previous instance", show=False),
        Binding("down,j", "cursor(1)", "Next instance", show=False),
        Binding("pageup", "page(-1)", "Page up", show=False),
        Binding("pagedown", "page(1)", "Page down", show=False),
        Binding("home,g", "jump(0)", "First instance", show=False),
        Binding("end,G", "jump(-1)", "Last instance", show=False),
    ]
    DEFAULT_CSS = """
    MonitorPane { height: 1fr; background: $surface; scrollbar-size-vertical: 1; }
    MonitorPane > .monitor--title { text-style: bold; background: $panel; }
    MonitorPane > .monitor--cursor { background: $accent 40%; }
    MonitorPane:focus > .monitor--cursor { background: $accent 70%; }
    MonitorPane > .monitor--empty { color: $text-muted; }
    """
    COMPONENT_CLASSES = {"monitor--title", "monitor--cursor", "monitor--empty"}

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.hub: Hub | None = None
        self.watched: list[Instance] = []
        self.cursor = 0
        self.render_now = 0.0
        self.empty_lines: list[str] = [EMPTY_TEXT]
        self._cards: LRUCache[tuple[object, ...], list[Strip]] = LRUCache(CACHED_CARDS)

    # -- data -------------------------------------------------------------------------------

    def attach(self, hub: Hub) -> None:
        """Watch ``hub``'s instances; called again with a new Hub when the session changes."""
        self.hub = hub
        self.watched, self.cursor = [], 0
        self.reload()

    @property
    def current(self) -> Instance | None:
        return self.watched[self.cursor] if 0 <= self.cursor < len(self.watched) else None

    def reload(self) -> None:
        """Take the Hub's current instances; the cursor stays on its instance."""
        if self.hub is None:
            return
        previous = self.current
        self.render_now = self.hub.clock.now()
        watched = [i for i in self.hub.instances() if i.status in WATCHED]
        watched.sort(key=lambda i: (i.status is not InstanceStatus.RUNNING, i.provider, i.label, i.instance_id))
        self.watched = watched
        if previous is not None:
            self.cursor = next((n for n, i in enumerate(watched) if i.key == previous.key),
                               min(self.cursor, max(0, len(watched) - 1)))
        self.empty_lines = failure_lines(self.hub, self.hub.poll.instances_interval_s) or [EMPTY_TEXT]
        self._cards.clear()
        self.virtual_size = Size(0, len(watched) * CARD_HEIGHT if watched else len(self.empty_lines))
        self.refresh()

    # -- keys -------------------------------------------------------------------------------

    def action_cursor(self, delta: int) -> None:
        self.move_to(self.cursor + delta)

    def action_page(self, direction: int) -> None:
        self.move_to(self.cursor + direction * max(1, self.size.height // CARD_HEIGHT))

    def action_jump(self, where: int) -> None:
        self.move_to(len(self.watched) - 1 if where < 0 else where)

    def move_to(self, index: int) -> None:
        if not self.watched:
            return
        self.cursor = max(0, min(len(self.watched) - 1, index))
        top, bottom = self.cursor * CARD_HEIGHT, (self.cursor + 1) * CARD_HEIGHT - 1
        if top < self.scroll_offset.y:
            self.scroll_to(y=top, animate=False, immediate=True)
        elif bottom >= self.scroll_offset.y + self.size.height:
            self.scroll_to(y=bottom - self.size.height + 2, animate=False, immediate=True)
        self.refresh()

    def on_resize(self) -> None:
        self._cards.clear()

    # -- rendering --------------------------------------------------------------------------

    def render_line(self, y: int) -> Strip:
        width = self.size.width
        base = self.rich_style
        row = int(self.scroll_offset.y) + y
        if not self.watched:
            if row < len(self.empty_lines):
                style = base + self.get_component_rich_style("monitor--empty")
                return Strip([Segment(f" {self.empty_lines[row]}", style)]).crop_extend(0, width, base)
            return Strip.blank(width, base)
        index, line = divmod(row, CARD_HEIGHT)
        if index >= len(self.watched):
            return Strip.blank(width, base)
        return self._card(index, width)[line]

    def _card(self, index: int, width: int) -> list[Strip]:
        instance = self.watched[index]
        history = self.hub.metric_history(instance.key) if self.hub else ()
        latest = history[-1].time if history else None
        key = (id(instance), latest, width, index == self.cursor, self.has_focus)
        strips = self._cards.get(key)
        if strips is None:
            strips = self._render_card(instance, history, width, index == self.cursor)
            self._cards[key] = strips
        return strips

    def _render_card(self, instance: Instance, history: Sequence[MetricSample], width: int,
                     selected: bool) -> list[Strip]:
        base = self.rich_style
        title_style = base + self.get_component_rich_style("monitor--cursor" if selected else "monitor--title")
        lines: list[list[Piece]] = [self._title(instance, selected)]
        spark_width = max(10, width - 2 - LABEL_WIDTH - VALUE_WIDTH)
        tail = list(islice(history, max(0, len(history) - spark_width), None))
        lines += _metric_lines(tail, spark_width) if tail else [[(f"  {self._no_data_message(instance)}",
                                                                   "dim italic")]]
        lines += [[]] * (CARD_HEIGHT - len(lines))
        return [_strip(pieces, title_style if n == 0 else base, width) for n, pieces in enumerate(lines)]

    def _title(self, instance: Instance, selected: bool) -> list[Piece]:
        uptime = self.hub.uptime(instance.key) if self.hub else None
        cost = self.hub.cost_so_far(instance.key) if self.hub else 0.0
        # Label, state and money first, the long instance key last: a narrow terminal cuts the key.
        return [
            ("▶ " if selected else "  ", None), (instance.label or "-", "cyan"),
            (f"  {instance.gpu_count}x {instance.gpu} · ", None),
            (instance.status.value, STATUS_STYLE[instance.status]),
            (f" {duration(uptime)}" if uptime is not None else "", None),
            (f" · {rate(instance.current_price_hour)}/h · ${cost:.2f} so far", None), (f"  {instance.key}", "dim"),
        ]

    def _no_data_message(self, instance: Instance) -> str:
        if self.hub is not None and not self.hub.capabilities(instance.provider).live_metrics:
            title = PROVIDER_TITLES.get(instance.provider, instance.provider)
            return f"{title} reports no live GPU metrics; SSH in and run nvidia-smi (c in Instances copies the command)"
        if instance.status is InstanceStatus.RUNNING:
            return "waiting for the first sample…"
        return f"{instance.status.value}: metrics start once it is running"


def _metric_lines(tail: list[MetricSample], width: int) -> list[list[Piece]]:
    latest = tail[-1]
    utils = [s.mean_gpu_util for s in tail]
    vram = [s.vram_pct for s in tail]
    temps = [s.max_gpu_temp for s in tail]
    util, vram_now, temp = utils[-1], vram[-1], temps[-1]
    per_gpu = " ".join("?" if u is None else f"{u:.0f}" for u in latest.gpu_util)
    used, total = sum(known(latest.vram_used_gb)), sum(known(latest.vram_total_gb))
    return [
        _metric("GPU util", utils, width, "-" if util is None else f"{util:5.1f}%  [{per_gpu}]", level_style(util)),
        _metric("VRAM", vram, width, "-" if vram_now is None else f"{vram_now:5.1f}%  {used:.1f}/{total:.0f} GB",
                "cyan"),
        _metric("Temp", temps, width, "-" if temp is None else f"{temp:5.1f}°C",
                "red" if (temp or 0) >= 83 else "magenta"),
        _metric("CPU", [s.cpu_pct for s in tail], width, _percent(latest.cpu_pct), "blue"),
        _metric("RAM", [s.ram_pct for s in tail], width, _percent(latest.ram_pct), "green"),
    ]


def _metric(label: str, values: Sequence[float | None], width: int, reading: str, style: str) -> list[Piece]:
    return [(f"  {label:<{LABEL_WIDTH - 2}}", "bold"), (spark(values, width), style), (f" {reading}", None)]


def _percent(value: float | None) -> str:
    return "-" if value is None else f"{value:5.1f}%"


def _strip(pieces: list[Piece], base: Style, width: int) -> Strip:
    segments = [Segment(text, base + Style.parse(style) if style else base) for text, style in pieces if text]
    return Strip(segments).crop_extend(0, width, base)
