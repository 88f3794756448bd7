"""The Monitor pane: a fleet summary line, then a card per instance with fixed-scale sparklines per GPU
and an idle readout that explains itself, rendered virtually."""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from itertools import accumulate, islice
from typing import ClassVar

from rich.segment import Segment
from rich.style import Style
from textual.binding import Binding, BindingType
from textual.cache import LRUCache
from textual.geometry import Region, Size
from textual.message import Message
from textual.scroll_view import ScrollView
from textual.strip import Strip

from computehub_tui.domain.idle import STALE_AFTER_S, FleetIdle, IdleReadout, fleet_idle, idle_readout
from computehub_tui.domain.models import PROVIDER_TITLES, Instance, InstanceStatus, MetricSample
from computehub_tui.domain.pricing import plausible_rate
from computehub_tui.domain.text import clean_text
from computehub_tui.engine.hub import Hub
from computehub_tui.engine.sampler_state import SamplerStatus
from computehub_tui.ui.format import BARS, duration, level_style, rate
from computehub_tui.ui.metrics_source import gpu_power_w, recent_history, sample_problem
from computehub_tui.ui.problems import failure_lines
from computehub_tui.ui.widgets.instances_pane import STATUS_STYLE

GPU_LABEL_WIDTH = 7
READING_WIDTH = 5
GROUP_GAP = 2
MIN_SPARK_WIDTH = 4
MAX_GPU_LINES = 8
"""GPU rows per card; a bigger machine says how many more it has."""
POWER_SCALE_W = (0.0, 700.0)
"""Fixed power scale: 0 W to an SXM H100's 700 W limit."""
SUMMARY_LINES = 1
"""The fleet summary stays on the top line while the cards scroll under it."""
WATCHED = (InstanceStatus.RUNNING, InstanceStatus.STARTING, InstanceStatus.PROVISIONING)
EMPTY_TEXT = "No running instances. Launch one from the Offers pane (1 → Enter)."
CACHED_CARDS = 128
"""Rendered cards kept between frames: a screenful many times over, never the whole fleet."""
LABEL_LIMIT = 60

Piece = tuple[str, str | None]
"""Text and an optional style name for one run of a line."""


def util_style(value: float) -> str:
    return level_style(value)


def vram_style(value: float) -> str:
    return "bold red" if value >= 95 else "yellow" if value >= 80 else "cyan"


def temp_style(value: float) -> str:
    return "bold red" if value >= 83 else "yellow" if value >= 70 else "green"


def power_style(value: float) -> str:
    return "blue"


@dataclass(frozen=True, slots=True)
class Gauge:
    """One per-GPU metric: its column title, fixed scale, load colouring and reading."""

    title: str
    low: float
    high: float
    style: Callable[[float], str]
    unit: str
    values: Callable[[MetricSample], Sequence[float | None]]


def _vram_pcts(sample: MetricSample) -> list[float | None]:
    return [100.0 * used / total if used is not None and total is not None and total > 0 else None
            for used, total in zip(sample.vram_used_gb, sample.vram_total_gb, strict=False)]


GAUGES = (
    Gauge("util %", 0.0, 100.0, util_style, "%", lambda s: s.gpu_util),
    Gauge("VRAM %", 0.0, 100.0, vram_style, "%", _vram_pcts),
    Gauge("temp °C (20–95)", 20.0, 95.0, temp_style, "°", lambda s: s.gpu_temp_c),
)
POWER_GAUGE = Gauge("power W", *POWER_SCALE_W, power_style, "W", gpu_power_w)


@dataclass(frozen=True, slots=True)
class Card:
    """What one card shows, taken at reload so a repaint never sees a newer sample than its layout."""

    instance: Instance
    history: Sequence[MetricSample]
    readout: IdleReadout

    @property
    def gpu_lines(self) -> int:
        if not self.history:
            return 0
        return min(MAX_GPU_LINES, max(self.instance.gpu_count, len(self.history[-1].gpu_util), 1))

    @property
    def more_gpus(self) -> int:
        if not self.history:
            return 0
        return max(0, self.readout.gpus - MAX_GPU_LINES)

    @property
    def height(self) -> int:
        """Title, readout, column titles, a line per GPU (and one for the rest), a blank; or title,
        message, blank while there is no sample."""
        if not self.history:
            return 3
        return 4 + self.gpu_lines + (1 if self.more_gpus else 0)


class MonitorPane(ScrollView, can_focus=True):
    """Only the cards on screen are rendered, so 5,000 instances cost what 5 do. Every scale is
    fixed (0–100 %, 20–95 °C), so a flat line means flat."""

    class DetailsRequested(Message):
        """Open the detail screen of ``instance``."""

        def __init__(self, instance: Instance) -> None:
            super().__init__()
            self.instance = instance

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("up,k", "cursor(-1)", "Previous instance", show=False),
        Binding("down,j", "cursor(1)", "Next instance", show=False),
        Binding("pageup", "page(-1)", "Page up", show=False),
        Binding("pagedown", "page(1)", "Page down", show=False),
        Binding("home,g", "jump(0)", "First instance", show=False),
        Binding("end,G", "jump(-1)", "Last instance", show=False),
        Binding("enter,i", "details", "Details"),
    ]
    DEFAULT_CSS = """
    MonitorPane { height: 1fr; background: $surface; scrollbar-size-vertical: 1; }
    MonitorPane > .monitor--title { text-style: bold; background: $panel; }
    MonitorPane > .monitor--cursor { background: $accent 40%; }
    MonitorPane:focus > .monitor--cursor { background: $accent 70%; }
    MonitorPane > .monitor--empty { color: $text-muted; }
    MonitorPane > .monitor--summary { background: $panel-darken-1; }
    """
    COMPONENT_CLASSES: ClassVar[set[str]] = {"monitor--title", "monitor--cursor", "monitor--empty", "monitor--summary"}

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.hub: Hub | None = None
        self.watched: list[Instance] = []
        self.cards: list[Card] = []
        self.fleet = FleetIdle()
        self.cursor = 0
        self.render_now = 0.0
        self.empty_lines: list[str] = [EMPTY_TEXT]
        self._starts: list[int] = [0]
        """Each card's first row (and the total after the last), for the rows on screen."""
        self._cards: LRUCache[tuple[object, ...], list[Strip]] = LRUCache(CACHED_CARDS)
        self._painted: dict[int, Strip] = {}
        """What each line on screen was last rendered as, so a reload repaints only the lines that changed."""

    # -- data -------------------------------------------------------------------------------

    def attach(self, hub: Hub) -> None:
        """Watch ``hub``'s instances; called again with a new Hub when the session changes."""
        self.hub = hub
        self.watched, self.cards, self.cursor = [], [], 0
        self.reload()

    @property
    def current(self) -> Instance | None:
        return self.watched[self.cursor] if 0 <= self.cursor < len(self.watched) else None

    def reload(self) -> None:
        """Take the Hub's current instances and samples; the cursor stays on its instance."""
        if self.hub is None:
            return
        hub = self.hub
        previous = self.current
        now = self.render_now = hub.clock.now()
        watched = [i for i in hub.instances() if i.status in WATCHED]
        watched.sort(key=lambda i: (i.status is not InstanceStatus.RUNNING, i.provider, i.label, i.instance_id))
        stale_after = max(STALE_AFTER_S, 3 * hub.poll.instances_interval_s)
        self.cards = [_card_of(hub, instance, now, stale_after) for instance in watched]
        self.watched = watched
        self.fleet = fleet_idle([(card.readout, plausible_rate(card.instance)) for card in self.cards
                                 if card.instance.status is InstanceStatus.RUNNING])
        if previous is not None:
            self.cursor = next((n for n, i in enumerate(watched) if i.key == previous.key),
                               min(self.cursor, max(0, len(watched) - 1)))
        self.empty_lines = failure_lines(hub, hub.poll.instances_interval_s) or [EMPTY_TEXT]
        self._starts = [0, *accumulate(card.height for card in self.cards)]
        rows = SUMMARY_LINES + self._starts[-1] if watched else len(self.empty_lines)
        resized = rows != self.virtual_size.height
        self.virtual_size = Size(0, rows)
        self._repaint_changed_lines(everything=resized)

    def _repaint_changed_lines(self, *, everything: bool) -> None:
        """Textual writes every cell of a refreshed region to the terminal, and a poll changes a few lines of
        each card (sparklines, readings, uptime): refresh only those, each up to its last changed cell."""
        painted, self._painted = self._painted, {}
        height = self.size.height
        if everything or not self.is_mounted or any(y not in painted for y in range(height)):
            self.refresh()
            return
        for y in range(height):
            end = changed_width(painted[y], self.render_line(y))
            if end:
                self.refresh(Region(0, y, end, 1))

    # -- keys -------------------------------------------------------------------------------

    def action_cursor(self, delta: int) -> None:
        self.move_to(self.cursor + delta)

    def action_page(self, direction: int) -> None:
        height = self.cards[self.cursor].height if self.cards else 1
        self.move_to(self.cursor + direction * max(1, (self.size.height - SUMMARY_LINES) // height))

    def action_jump(self, where: int) -> None:
        self.move_to(len(self.watched) - 1 if where < 0 else where)

    def action_details(self) -> None:
        if self.current is not None:
            self.post_message(self.DetailsRequested(self.current))

    def move_to(self, index: int) -> None:
        if not self.watched:
            return
        self.cursor = max(0, min(len(self.watched) - 1, index))
        top, bottom = self._starts[self.cursor], self._starts[self.cursor + 1] - 1
        shown = self.size.height - SUMMARY_LINES
        if top < self.scroll_offset.y:
            self.scroll_to(y=top, animate=False, immediate=True)
        elif bottom >= self.scroll_offset.y + shown:
            self.scroll_to(y=bottom - shown + 2, animate=False, immediate=True)
        self.refresh()

    def on_resize(self) -> None:
        self._cards.clear()

    def notify_style_update(self) -> None:
        super().notify_style_update()
        self._cards.clear()  # rendered cards hold the old theme's colours

    # -- rendering --------------------------------------------------------------------------

    def render_line(self, y: int) -> Strip:
        strip = self._line(y)
        self._painted[y] = strip
        return strip

    def _line(self, y: int) -> Strip:
        width = self.size.width
        base = self.rich_style
        if not self.watched:
            if y < len(self.empty_lines):
                style = base + self.get_component_rich_style("monitor--empty")
                return Strip([Segment(f" {self.empty_lines[y]}", style)]).crop_extend(0, width, base)
            return Strip.blank(width, base)
        if y < SUMMARY_LINES:
            return _strip(self._summary(), base + self.get_component_rich_style("monitor--summary"), width)
        row = int(self.scroll_offset.y) + y - SUMMARY_LINES
        index = bisect_right(self._starts, row) - 1
        if index >= len(self.cards):
            return Strip.blank(width, base)
        return self._card(index, width)[row - self._starts[index]]

    def _summary(self) -> list[Piece]:
        fleet = self.fleet
        running = sum(1 for card in self.cards if card.instance.status is InstanceStatus.RUNNING)
        return [
            (f" {running} running · GPUs: ", "bold"), (f"{fleet.busy_gpus} busy", "green"), (" · ", None),
            (f"{fleet.idle_gpus} idle", "bold red" if fleet.idle_gpus else None), (" · ", None),
            (f"{fleet.unknown_gpus} unknown", "magenta" if fleet.unknown_gpus else None),
            (f"   idle GPUs cost {rate(fleet.idle_cost_hour)}/h", "bold red" if fleet.idle_cost_hour else "dim"),
        ]

    def _card(self, index: int, width: int) -> list[Strip]:
        """A card's lines, rendered again only when what it shows changed: a poll of one provider leaves the
        other providers' cards as they were."""
        card = self.cards[index]
        selected = index == self.cursor
        title = self._title(card.instance, selected)
        status: list[Piece] = (self._readout(card) if card.history
                               else [(f"  {self._no_data_message(card.instance)}", "dim italic")])
        latest = card.history[-1].time if card.history else None
        key = (tuple(title), tuple(status), latest, len(card.history), card.instance.gpu_count, card.readout, width,
               selected, self.has_focus)
        strips = self._cards.get(key)
        if strips is None:
            strips = self._render_card(card, width, selected, title, status)
            self._cards[key] = strips
        return strips

    def _render_card(self, card: Card, width: int, selected: bool, title: list[Piece],
                     status: list[Piece]) -> list[Strip]:
        base = self.rich_style
        title_style = base + self.get_component_rich_style("monitor--cursor" if selected else "monitor--title")
        lines: list[list[Piece]] = [title, status]
        if card.history:
            lines += _gpu_lines(card, width)
        lines += [[]] * (card.height - len(lines))
        return [_strip(pieces, title_style if n == 0 else base, width) for n, pieces in enumerate(lines)]

    def _title(self, instance: Instance, selected: bool) -> list[Piece]:
        uptime = self.hub.uptime(instance.key) if self.hub else None
        cost = self.hub.cost_so_far(instance.key) if self.hub else 0.0
        # Label, state and money first, the long instance key last: a narrow terminal cuts the key.
        return [
            ("▶ " if selected else "  ", None), (clean_text(instance.label, LABEL_LIMIT) or "-", "cyan"),
            (f"  {instance.gpu_count}x {clean_text(instance.gpu, LABEL_LIMIT)} · ", None),
            (instance.status.value, STATUS_STYLE[instance.status]),
            (f" {duration(uptime)}" if uptime is not None else "", None),
            (f" · {rate(instance.current_price_hour)}/h · ${cost:.2f} so far", None), (f"  {instance.key}", "dim"),
        ]

    def _readout(self, card: Card) -> list[Piece]:
        readout = card.readout
        style = {"idle": "bold red", "busy": "green", "unknown": "magenta"}[readout.state]
        latest = card.history[-1]
        host = " · ".join(f"{name} {value:.0f} %" for name, value in (("CPU", latest.cpu_pct), ("RAM", latest.ram_pct))
                          if value is not None)
        problem = clean_text(sample_problem(self.hub, card.instance.key), 160) if self.hub else ""
        return [("  ", None), (readout.text, style), (f"   {host}" if host else "", "dim"),
                (f"   {problem}" if problem else "", "yellow")]

    def _no_data_message(self, instance: Instance) -> str:
        hub = self.hub
        sampled = hub is not None and hub.ssh_sampler.covers(instance.provider)
        state = hub.metrics.sampler_state(instance.key) if hub is not None else None
        if state is not None and state.status is SamplerStatus.FAILED:
            return clean_text(f"SSH sample failed: {state.message}", 200)
        if hub is not None and not sampled and not hub.capabilities(instance.provider).live_metrics:
            title = PROVIDER_TITLES.get(instance.provider, instance.provider)
            return (f"{title} reports no live GPU metrics; add \"{instance.provider}\" to [monitor] ssh_providers "
                    "to sample it over SSH")
        if sampled and instance.status is InstanceStatus.RUNNING:
            return "waiting for the first SSH sample (nvidia-smi)…"
        if instance.status is InstanceStatus.RUNNING:
            return "waiting for the first sample…"
        return f"{instance.status.value}: metrics start once it is running"


def _card_of(hub: Hub, instance: Instance, now: float, stale_after_s: float) -> Card:
    history = recent_history(hub, instance.key)
    return Card(instance, history, idle_readout(history, now, instance.gpu_count, stale_after_s=stale_after_s))


def spark_width(width: int, gauges: int) -> int:
    """Columns for each sparkline: the history drawn is as many samples as this."""
    return max(MIN_SPARK_WIDTH, (width - 1 - GPU_LABEL_WIDTH) // gauges - READING_WIDTH - GROUP_GAP)


def _gpu_lines(card: Card, width: int) -> list[list[Piece]]:
    gauges = GAUGES + ((POWER_GAUGE,) if any(gpu_power_w(s) for s in card.history[-3:]) else ())
    columns = spark_width(width, len(gauges))
    tail = list(islice(card.history, max(0, len(card.history) - columns), None))
    group = columns + READING_WIDTH + GROUP_GAP
    lines: list[list[Piece]] = [[(" " * GPU_LABEL_WIDTH, None),
                                 *((f"{gauge.title[:group - 1]:<{group}}", "dim") for gauge in gauges)]]
    per_sample = [[gauge.values(sample) for sample in tail] for gauge in gauges]
    for gpu in range(card.gpu_lines):
        line: list[Piece] = [(f"  GPU{gpu:<{GPU_LABEL_WIDTH - 5}}"[:GPU_LABEL_WIDTH], "bold")]
        for gauge, readings in zip(gauges, per_sample, strict=True):
            values = [_bounded(r[gpu], gauge) if gpu < len(r) else None for r in readings]
            line += _spark_pieces(values, columns, gauge)
            now = values[-1] if values else None
            line.append((f"{'-' if now is None else f'{now:.0f}{gauge.unit}':>{READING_WIDTH}}", None))
            line.append((" " * GROUP_GAP, None))
        lines.append(line)
    if card.more_gpus:
        lines.append([(f"  … and {card.more_gpus} more GPUs (details: enter)", "dim")])
    return lines


def _bounded(value: float | None, gauge: Gauge) -> float | None:
    """A reading outside any sane range (NaN, 1e308, -5 %) is unknown, never drawn as a bar."""
    if value is None or not (-1000.0 <= value <= 10_000.0):
        return None
    return value if gauge.unit != "%" or 0.0 <= value <= 100.0 else None


def _spark_pieces(values: Sequence[float | None], width: int, gauge: Gauge) -> list[Piece]:
    """A sparkline on the gauge's fixed scale, newest at the right, each bar coloured by its load
    (runs of one colour share a segment)."""
    span = (gauge.high - gauge.low) or 1.0
    pieces: list[Piece] = [(" " * (width - len(values)), None)] if len(values) < width else []
    for value in values[-width:]:
        if value is None:
            bar, style = " ", None
        else:
            level = min(len(BARS) - 1, max(0, int((value - gauge.low) / span * len(BARS))))
            bar, style = BARS[level], gauge.style(value)
        if pieces and pieces[-1][1] == style:
            pieces[-1] = (pieces[-1][0] + bar, style)
        else:
            pieces.append((bar, style))
    return pieces


def changed_width(old: Strip, new: Strip) -> int:
    """How many cells from the left a repaint must write so that a line showing ``old`` shows ``new``
    (Textual writes a refreshed line from its left edge): 0 when they are the same."""
    if old == new:
        return 0
    # The shortest common tail, by bisection: a tail equal from x is equal from x + 1 too.
    differs, same = 0, max(old.cell_length, new.cell_length)
    while same - differs > 1:
        middle = (differs + same) // 2
        if old.crop(middle) == new.crop(middle):
            same = middle
        else:
            differs = middle
    return same


def _strip(pieces: list[Piece], base: Style, width: int) -> Strip:
    segments = [Segment(text, base + Style.parse(style) if style else base) for text, style in pieces if text]
    return Strip(segments).crop_extend(0, width, base)
