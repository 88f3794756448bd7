"""The views driven with Pilot: keys that do what help says, the live filter, empty states, session
switching, the virtual Monitor, dialogs that fit at 80×24, and the offer detail's wording and chart."""

from __future__ import annotations

import io
import re
import time
from pathlib import Path

import pytest
from loopback import refused_port
from rich.console import Console
from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.containers import Vertical, VerticalScroll
from textual.pilot import Pilot
from textual.widgets import Input, Static
from textual_plotext import PlotextPlot
from tui import SIZE, ready, screen_lines, small_app, wait_for

from computehub_tui.clock import ManualClock
from computehub_tui.config import Config
from computehub_tui.domain.filtering import field_reference
from computehub_tui.domain.history import PriceStat
from computehub_tui.domain.models import (
    PROVIDER_TITLES,
    Capabilities,
    Instance,
    InstanceStatus,
    MetricSample,
    Offer,
    PricingKind,
)
from computehub_tui.domain.ranking import explain_value
from computehub_tui.engine.events import ProviderHealth
from computehub_tui.engine.hub import Hub
from computehub_tui.store import Store
from computehub_tui.ui.app import ComputeHubApp
from computehub_tui.ui.screens.confirm import ConfirmScreen
from computehub_tui.ui.screens.help import HelpScreen
from computehub_tui.ui.screens.launch import LaunchScreen
from computehub_tui.ui.screens.market import MarketScreen
from computehub_tui.ui.screens.offer_detail import WINDOWS, OfferDetailScreen
from computehub_tui.ui.screens.settings import KeyInputScreen, SettingsScreen
from computehub_tui.ui.widgets.header import HubHeader
from computehub_tui.ui.widgets.instances_pane import InstancesPane
from computehub_tui.ui.widgets.monitor_pane import SUMMARY_LINES, MonitorPane
from computehub_tui.ui.widgets.offers_pane import SORT_BINDINGS, WAITING_TEXT, OffersPane
from computehub_tui.ui.widgets.virtual_table import VirtualTable
from computehub_tui.wiring import open_session

README = Path(__file__).resolve().parent.parent / "README.md"


def keys_of(bindings: list[Binding]) -> set[str]:
    return {key for binding in bindings for key in binding.key.split(",")}


# -- 17: one key scheme ---------------------------------------------------------------------


@pytest.mark.parametrize("outer", [OffersPane, InstancesPane, ComputeHubApp])
def test_no_pane_key_is_swallowed_by_the_focused_table(outer: type) -> None:
    # Enter is shared on purpose: the table turns it into Activated, which the pane handles.
    assert keys_of(VirtualTable.BINDINGS) & keys_of(outer.BINDINGS) - {"enter"} == set()


def test_monitor_keys_leave_the_app_keys_alone() -> None:
    assert keys_of(MonitorPane.BINDINGS) & keys_of(ComputeHubApp.BINDINGS) == set()


def test_readme_documents_the_sort_keys_the_pane_binds() -> None:
    line = next(line for line in README.read_text().splitlines() if "sort by price" in line)
    assert re.findall(r"`(\w)`", line) == [key for key, _, _ in SORT_BINDINGS]


async def test_every_documented_sort_key_sorts_and_g_still_jumps(tmp_path: Path) -> None:
    async with small_app(tmp_path, ManualClock()).run_test(size=SIZE) as pilot:
        app = await ready(pilot)
        pane, table = app.offers_pane, app.offers_pane.table
        for key, name, _ in SORT_BINDINGS:
            if pane.sort_name == name:
                await pilot.press(key)  # pressing the current sort reverses it; start from a clean state
            await pilot.press(key)
            await pilot.pause()
            assert pane.sort_name == name and not pane.sort_reverse, key
        await pilot.press("G")
        assert table.cursor == len(table.rows) - 1 and pane.sort_name == SORT_BINDINGS[-1][1]
        await pilot.press("g")
        assert table.cursor == 0
        await pilot.press("question_mark")
        await wait_for(pilot, lambda: isinstance(app.screen, HelpScreen))
        rows = {keys: description for _, section in app.screen.sections for keys, description in section}
        assert rows["U"] == "Sort $/GPU" and rows["Home, g"] == "Top" and rows["End, G"] == "Bottom"


# -- 18: the live filter --------------------------------------------------------------------


async def type_text(pilot: Pilot, text: str) -> None:
    for char in text:
        await pilot.press("space" if char == " " else char)


def error_lines(pane: OffersPane) -> list[str]:
    box = pane.query_one("#offer-filter-error", Static)
    return str(box.render()).splitlines() if box.has_class("visible") else []


async def test_typing_price_then_a_typo_never_blanks_the_table_and_points_at_the_typo(tmp_path: Path) -> None:
    async with small_app(tmp_path, ManualClock()).run_test(size=SIZE) as pilot:
        app = await ready(pilot)
        pane = app.offers_pane
        everything = list(pane.table.rows)
        await pilot.press("slash")
        for char in "price<<3":
            await pilot.press(char)
            await pilot.pause()
            assert pane.table.rows == everything, pane.query_one("#offer-filter", Input).value
        lines = error_lines(pane)
        assert lines[:2] == ["price<<3", "      ^"]
        assert "'price<' needs a number, got '<'" in lines[2]
        assert not pane.query_one("#offer-filter-error").has_class("incomplete")
        await pilot.press("backspace", "backspace")
        assert "incomplete" in pane.query_one("#offer-filter-error").classes  # "price<": a hint, not an error
        await type_text(pilot, " 3")
        await pilot.pause()
        assert not error_lines(pane)
        assert pane.table.rows and all(o.price_hour < 3 for o in pane.table.rows)


async def test_typing_spot_no_keeps_the_last_result_until_the_value_is_complete(tmp_path: Path) -> None:
    async with small_app(tmp_path, ManualClock()).run_test(size=SIZE) as pilot:
        app = await ready(pilot)
        pane = app.offers_pane
        await pilot.press("slash")
        await type_text(pilot, '"rtx 4090" ')
        await pilot.pause()
        rtx = list(pane.table.rows)
        assert rtx and all(o.gpu == "RTX 4090" for o in rtx)
        for char in "spot:":
            await pilot.press(char)
            await pilot.pause()
            assert pane.table.rows == rtx
        await pilot.press("n")
        await pilot.pause()
        on_demand = [o for o in rtx if o.pricing is PricingKind.ON_DEMAND]
        assert pane.table.rows == on_demand
        await pilot.press("o")
        await pilot.pause()
        assert pane.table.rows == on_demand


async def test_an_empty_result_names_the_filter_and_esc_clears_it(tmp_path: Path) -> None:
    async with small_app(tmp_path, ManualClock()).run_test(size=SIZE) as pilot:
        app = await ready(pilot)
        pane = app.offers_pane
        total = len(pane.table.rows)
        assert pane.apply_filter("h100 price<0.01")
        await pilot.pause()
        assert pane.table.rows == []
        assert pane.table.empty_text == f"no offers match `h100 price<0.01` (of {total:,}) — Esc clears the filter"
        assert WAITING_TEXT not in pane.table.empty_text
        await pilot.press("escape")
        await pilot.pause()
        assert len(pane.table.rows) == total


# -- 20: provider failures in words, and the session that follows the keys -----------------


async def advance_until(pilot: Pilot, clock: ManualClock, condition: object, timeout: float = 20.0) -> None:
    """Move the manual clock (retry back-offs sleep on it) until ``condition()`` holds."""
    waited = 0.0
    while not condition():  # type: ignore[operator]
        if waited > timeout:
            raise AssertionError("condition not reached in time")
        await clock.advance(2.0)
        await pilot.pause(0.02)
        waited += 0.02


async def test_an_unreachable_key_shows_its_error_and_removing_it_returns_to_the_demo(tmp_path: Path) -> None:
    clock = ManualClock()
    port = refused_port()
    config = Config.model_validate({"providers": {"vast": {"url": f"http://127.0.0.1:{port}"}}})
    app = ComputeHubApp(lambda: open_session(config, tmp_path, clock=clock))
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        header = app.query_one(HubHeader)
        # Every demo provider has answered (the header learns it from the engine's events, a moment later).
        await wait_for(pilot, lambda: header.demo and header.status == "")
        await pilot.press("comma")
        await wait_for(pilot, lambda: isinstance(app.screen, SettingsScreen))
        settings = app.screen
        await pilot.press("b")
        await wait_for(pilot, lambda: isinstance(app.screen, KeyInputScreen))
        app.screen.query_one(Input).value = "vk_live_unreachable_0001"
        await pilot.press("enter")
        await advance_until(pilot, clock, lambda: app.hub is not None and not app.hub.demo
                            and app.hub.health_of("vast").state not in ("waiting", "ok"))
        health = app.hub.health_of("vast")
        assert f"127.0.0.1:{port}" in health.last_error
        await pilot.press("escape")
        await wait_for(pilot, lambda: not isinstance(app.screen, SettingsScreen))
        await advance_until(pilot, clock, lambda: health.last_error in app.offers_pane.table.empty_text)
        offers_text = app.offers_pane.table.empty_text
        assert app.offers_pane.table.rows == [] and "retrying every 60 s" in offers_text and "Settings" in offers_text
        assert "first quotes" not in offers_text
        assert health.last_error in app.instances_pane.table.empty_text
        await pilot.press("3")
        await wait_for(pilot, lambda: health.last_error in app.monitor_pane.empty_lines[0])
        # Not "connecting…" forever (the header hears of the failure from the same events, a moment apart).
        await wait_for(pilot, lambda: not header.demo and header.status == "" and "vast down" in header.render().plain)

        await pilot.press("comma")
        await wait_for(pilot, lambda: isinstance(app.screen, SettingsScreen))
        settings = app.screen
        await wait_for(pilot, lambda: settings.bindings_by_provider.get("vast") is not None
                       and settings.bindings_by_provider["vast"].source == "vault")
        await pilot.press("x")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmScreen))
        await pilot.press("y")
        await advance_until(pilot, clock, lambda: app.hub is not None and app.hub.demo
                            and all(h.offers_at for h in app.hub.health()))
        await pilot.press("escape", "1")
        await wait_for(pilot, lambda: len(app.offers_pane.table.rows) > 100)
        await wait_for(pilot, lambda: header.demo and "DEMO" in header.render().plain
                       and all(h.state in ("ok", "waiting") for h in header.health or []))
        assert {o.provider for o in app.offers_pane.table.rows} == {"vast", "runpod", "lambda", "tensordock"}
        assert "circuit-open" not in header.render().plain and "down" not in header.render().plain


def test_the_header_says_connecting_only_until_every_provider_has_answered_or_failed() -> None:
    header = HubHeader()
    assert header.status == "starting…"
    header.health = [ProviderHealth("vast", "ok"), ProviderHealth("runpod")]
    assert header.status == "connecting…"
    header.health = [ProviderHealth("vast", "ok"), ProviderHealth("runpod", "down", "runpod: cannot resolve x")]
    assert header.status == ""


async def test_a_provider_that_goes_away_leaves_no_chip_behind(tmp_path: Path) -> None:
    async with small_app(tmp_path, ManualClock()).run_test(size=SIZE) as pilot:
        app = await ready(pilot)
        header = app.query_one(HubHeader)
        assert "vast" in header.render().plain
        app.hub.remove_provider("vast")
        await wait_for(pilot, lambda: [h.provider for h in header.health or []] == ["runpod", "lambda", "tensordock"])
        assert "vast" not in header.render().plain


# -- 21: the virtual Monitor ----------------------------------------------------------------


class FleetProvider:
    """A provider with ``count`` running instances whose metrics move with the clock."""

    def __init__(self, count: int, clock: ManualClock, live_metrics: bool = True) -> None:
        self.count = count
        self.clock = clock
        self.capabilities = Capabilities(can_stop=True, can_restart=True, bills_storage_while_stopped=True,
                                         interruptible=True, logs=True, live_metrics=live_metrics)

    async def list_instances(self) -> list[Instance]:
        now = self.clock.now()
        metrics = MetricSample(now, (50.0 + now % 40, 20.0), (10.0, 4.0), (24.0, 24.0), (61.0, 58.0), 30.0, 45.0)
        return [Instance("vast", str(n), f"train-{n:05d}", InstanceStatus.RUNNING, "running", "RTX 4090", 2, 0.7,
                         started_at=now - 3600, metrics=metrics if self.capabilities.live_metrics else None)
                for n in range(self.count)]

    async def list_offers(self, query: object) -> list[Offer]:
        return []


class MonitorApp(App[None]):
    def __init__(self, hub: Hub) -> None:
        super().__init__()
        self.hub = hub

    def compose(self) -> ComposeResult:
        yield MonitorPane(id="monitor")


async def fleet_hub(tmp_path: Path, count: int, samples: int = 3, live_metrics: bool = True) -> Hub:
    clock = ManualClock()
    store = await Store.open(tmp_path / "fleet.db")
    hub = Hub({"vast": FleetProvider(count, clock, live_metrics)}, store, clock)  # type: ignore[dict-item]
    for _ in range(samples):
        await hub.refresh_instances("vast")
        await clock.advance(5)
    return hub


def visible_text(pane: MonitorPane) -> list[str]:
    return [pane.render_line(y).text for y in range(pane.size.height)]


async def test_five_thousand_instances_paint_and_repaint_in_well_under_a_second(tmp_path: Path) -> None:
    hub = await fleet_hub(tmp_path, 5000)
    async with MonitorApp(hub).run_test(size=(160, 45)) as pilot:
        pane = pilot.app.query_one(MonitorPane)
        started = time.thread_time()  # the app paints on this thread: its CPU, whatever else shares the cores
        pane.attach(hub)
        await pilot.pause()
        first_paint = time.thread_time() - started
        await hub.refresh_instances("vast")
        started = time.thread_time()
        pane.reload()
        await pilot.pause()
        repaint = time.thread_time() - started
        assert len(pane.watched) == 5000 and pane.virtual_size.height == SUMMARY_LINES + 5000 * 6  # title, readout, column titles, two GPUs, blank
        assert first_paint < 1.0 and repaint < 1.0, (first_paint, repaint)
        assert any(line.startswith("  GPU1") for line in visible_text(pane))
    await hub.store.close()


async def test_monitor_cards_scroll_with_the_cursor_and_keep_it_across_reloads(tmp_path: Path) -> None:
    hub = await fleet_hub(tmp_path, 40)
    async with MonitorApp(hub).run_test(size=(120, 30)) as pilot:
        pane = pilot.app.query_one(MonitorPane)
        pane.attach(hub)
        pane.focus()
        await pilot.pause()
        lines = visible_text(pane)
        # Vast's start time is not "last started", so a machine first seen running has no uptime yet.
        assert lines[0].startswith(" 40 running · GPUs: ")
        assert lines[1].startswith("▶ train-00000  2x RTX 4090 · running · $0.700/h · $0.00 so far  vast:0")
        assert lines[3].split() == ["util", "%", "VRAM", "%", "temp", "°C", "(20–95)"]
        assert [line.split()[0] for line in lines[4:6]] == ["GPU0", "GPU1"]
        await pilot.press("j", "down")
        assert pane.current is not None and pane.current.label == "train-00002"
        await pilot.press("G")
        assert pane.current.label == "train-00039"
        assert any(line.startswith("▶ train-00039") for line in visible_text(pane))  # scrolled into view
        await hub.refresh_instances("vast")
        pane.reload()
        await pilot.pause()
        assert pane.current.label == "train-00039"
        await pilot.press("g")
        assert pane.cursor == 0 and pane.scroll_offset.y == 0
    await hub.store.close()


async def test_monitor_says_when_a_provider_has_no_live_metrics(tmp_path: Path) -> None:
    hub = await fleet_hub(tmp_path, 2, live_metrics=False)
    async with MonitorApp(hub).run_test(size=(140, 20)) as pilot:
        pane = pilot.app.query_one(MonitorPane)
        pane.attach(hub)
        await pilot.pause()
        assert ('Vast.ai reports no live GPU metrics; add "vast" to [monitor] ssh_providers to sample it over SSH'
                in visible_text(pane)[2])
    await hub.store.close()


# -- 19: dialogs fit at 80×24 ---------------------------------------------------------------


async def assert_fits(pilot: Pilot, container: type, *visible: str) -> None:
    """The dialog lies inside the screen, and each named part is on screen, its right edge included
    (a part taller than the dialog only has to show its top: the dialog scrolls)."""
    await pilot.pause()
    screen = pilot.app.screen
    box = screen.query_one(container).region
    assert screen.region.contains_region(box), (type(screen).__name__, box)
    for selector in visible:
        part = screen.query_one(selector).region
        assert box.x <= part.x and part.right <= box.right, (selector, part, box)
        assert box.y <= part.y < box.bottom and part.area > 0, (selector, part, box)


async def test_every_dialog_fits_or_scrolls_at_80_by_24(tmp_path: Path) -> None:
    async with small_app(tmp_path, ManualClock()).run_test(size=(80, 24)) as pilot:
        app = await ready(pilot)
        await pilot.press("i")
        await wait_for(pilot, lambda: isinstance(app.screen, OfferDetailScreen))
        await assert_fits(pilot, VerticalScroll, "#detail-title", "#detail-body")
        scroller = app.screen.query_one(VerticalScroll)
        scroller.scroll_end(animate=False, immediate=True)
        await assert_fits(pilot, VerticalScroll, "#detail-chart")  # the chart is reached by scrolling
        await pilot.press("escape")
        await pilot.press("m")
        await wait_for(pilot, lambda: isinstance(app.screen, MarketScreen) and app.screen.table.rows)
        await assert_fits(pilot, Vertical, "#market-title", "#market-table", "#market-note")
        await pilot.press("escape")
        await pilot.press("comma")
        await wait_for(pilot, lambda: isinstance(app.screen, SettingsScreen))
        await assert_fits(pilot, Vertical, "#settings-title", "#settings-providers", "#settings-buttons")
        await pilot.press("b")
        await wait_for(pilot, lambda: isinstance(app.screen, KeyInputScreen))
        await assert_fits(pilot, Vertical, "#key-input", "#key-hint")
        await pilot.press("escape")
        await pilot.press("escape")
        await pilot.press("question_mark")
        await wait_for(pilot, lambda: isinstance(app.screen, HelpScreen))
        await assert_fits(pilot, VerticalScroll, "Static")


async def test_at_80_by_24_the_launch_form_needs_no_scrolling_and_detail_lines_do_not_wrap(tmp_path: Path) -> None:
    async with small_app(tmp_path, ManualClock()).run_test(size=(80, 24)) as pilot:
        app = await ready(pilot)
        lines = screen_lines(pilot)  # the two detail lines sit above the footer, each on its own row
        assert lines[-3].lstrip().startswith(f"vast:{app.offers_pane.table.rows[0].offer_id}"), lines[-3:]
        assert "/h all-in" in lines[-2] and lines[-2].rstrip().endswith(("…", "/mo", ")")), lines[-3:]
        await pilot.press("2")
        await pilot.pause()
        lines = screen_lines(pilot)
        current = app.instances_pane.table.current_row
        assert current is not None
        assert lines[-3].lstrip().startswith("SSH:"), lines[-4:]
        assert lines[-2].lstrip().startswith(f"{PROVIDER_TITLES[current.provider]}:"), lines[-4:]
        await pilot.press("1")
        assert app.offers_pane.apply_filter("provider:vast spot:yes")  # every field: image, disk, label, bid, max
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, LaunchScreen))
        await assert_fits(pilot, VerticalScroll, "#launch-template", "#launch-image", "#launch-disk",
                          "#launch-label", "#launch-bid", "#launch-max")
        await assert_fits(pilot, Vertical, "#launch-price", "#launch-caveats", "#launch")


# -- 27: wording, chart axes, the key prompt, help, wide terminals --------------------------


def test_unverified_specs_are_worded_for_users() -> None:
    offer = Offer("vast", "1", "B200", 1, 180, 16, 128, 100, 5.0, PricingKind.ON_DEMAND, "Oslo", 0.99, True, 0.0)
    explanation = explain_value(offer, [offer])
    assert "spec not independently verified" in explanation
    assert "memory" not in explanation and "PDF" not in explanation


@pytest.mark.parametrize(("key", "first", "labels"), [("d", -24, ["24", "18", "12", "6", "now"]),
                                                       ("w", -7, ["7", "6", "5", "4", "3", "2", "1", "now"]),
                                                       ("m", -30, ["30", "25", "20", "15", "10", "5", "now"])])
def test_chart_axes_span_the_whole_window_with_clean_ticks(key: str, first: int, labels: list[str]) -> None:
    positions, names = WINDOWS[key].ticks()
    assert positions[0] == first and positions[-1] == 0 and names == labels


async def test_the_seven_day_chart_reaches_back_seven_days_without_minus_zero(tmp_path: Path) -> None:
    clock = ManualClock()
    async with small_app(tmp_path, clock).run_test(size=SIZE) as pilot:
        app = await ready(pilot)
        offer = app.offers_pane.table.current_row
        assert offer is not None
        now = clock.now()
        stats = [PriceStat(now - hours * 3600, offer.provider, offer.gpu, offer.gpu_count, offer.pricing.value,
                           1.0 + hours / 100, 1.2, 1.5, 10) for hours in (30, 20, 10, 2)]
        await app.hub.store.record_price_stats(stats)
        await pilot.press("i")
        await wait_for(pilot, lambda: isinstance(app.screen, OfferDetailScreen))
        await pilot.press("w")
        note = app.screen.query_one("#detail-chart-note", Static)
        await wait_for(pilot, lambda: "points" in str(note.render()))
        await pilot.pause()
        chart = app.screen.query_one(PlotextPlot).render().plain  # type: ignore[union-attr]
        assert "-0.0" not in chart and "now" in chart and "days ago" in chart
        axis = next(line for line in chart.splitlines() if "now" in line)
        assert re.findall(r"\b[1-7]\b", axis) == ["7", "6", "5", "4", "3", "2", "1"]
        for key in ("m", "d"):  # inside the dialog m and d pick windows, not the market or destroy
            await pilot.press(key)
            assert isinstance(app.screen, OfferDetailScreen) and app.screen.window == key


async def test_the_key_prompt_cancels_on_the_first_ctrl_c_and_on_esc(tmp_path: Path) -> None:
    async with small_app(tmp_path, ManualClock()).run_test(size=SIZE) as pilot:
        app = await ready(pilot)
        await pilot.press("comma")
        await wait_for(pilot, lambda: isinstance(app.screen, SettingsScreen))
        for cancel in ("ctrl+c", "escape"):
            await pilot.press("b")
            await wait_for(pilot, lambda: isinstance(app.screen, KeyInputScreen))
            app.screen.query_one(Input).value = "half-typed-key"
            await pilot.press(cancel)
            await wait_for(pilot, lambda: isinstance(app.screen, SettingsScreen))
        assert not app.screen.bindings_by_provider["vast"].bound


async def test_help_lists_every_dialog_key_and_every_filter_field(tmp_path: Path) -> None:
    async with small_app(tmp_path, ManualClock()).run_test(size=SIZE) as pilot:
        app = await ready(pilot)
        await pilot.press("question_mark")
        await wait_for(pilot, lambda: isinstance(app.screen, HelpScreen))
        sections = dict(app.screen.sections)
        for title, screen in (("Offer details (i)", OfferDetailScreen), ("Settings (,)", SettingsScreen),
                              ("Market summary (m)", MarketScreen), ("Monitor (3)", MonitorPane)):
            assert [d for _, d in sections[title]] == [b.description for b in screen.BINDINGS], title
        assert ("Enter", "Show its offers") in sections["Market summary (m)"]
        assert ("d", "24 h") in sections["Offer details (i)"]
        console = Console(width=200, record=True, file=io.StringIO())
        console.print(app.screen.query_one("#help-keys", Static).content)
        rendered = console.export_text()
        for names, _, example in field_reference():
            assert names in rendered and example in rendered


async def test_a_wide_terminal_gives_spare_columns_to_gpu_and_location(tmp_path: Path) -> None:
    async with small_app(tmp_path, ManualClock()).run_test(size=(200, 45)) as pilot:
        app = await ready(pilot)
        table = app.offers_pane.table
        widths = {column.key: column.width for column in table.columns}
        assert widths["gpu"] > 15 and widths["location"] > 20
        assert table.total_width == table.scrollable_content_region.width  # no empty band on the right
        longest = max(len(o.location) for o in table.rows)
        assert widths["location"] >= min(longest, 20 + 200 - 160)
        await pilot.resize_terminal(100, 40)
        await pilot.pause()
        assert {column.key: column.width for column in table.columns}["location"] == 20
