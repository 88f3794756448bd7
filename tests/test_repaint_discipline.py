"""Idle bandwidth: a poll repaints the Monitor pane once, and only the lines (and cells) that changed; the
header repaints only when what it shows changes."""

from __future__ import annotations

from functools import partial
from pathlib import Path
from typing import Any

import pytest
from rich.segment import Segment
from rich.style import Style
from test_app_views import MonitorApp, fleet_hub
from textual.geometry import Region
from textual.strip import Strip
from tui import SIZE, ready, small_app, wait_for

import computehub_tui.ui.app as app_module
from computehub_tui.clock import ManualClock
from computehub_tui.engine.events import InstancesUpdated, MetricsSampled, ProviderHealth
from computehub_tui.ui.messages import EngineEventPosted
from computehub_tui.ui.widgets.header import HubHeader
from computehub_tui.ui.widgets.monitor_pane import MonitorPane, changed_width


def strip(*runs: tuple[str, str]) -> Strip:
    return Strip([Segment(text, Style.parse(style)) for text, style in runs])


def test_a_line_is_rewritten_up_to_its_last_changed_cell() -> None:
    line = strip(("GPU0 ", "bold"), ("▁▂▃", "green"), ("  42%", ""))
    assert changed_width(line, strip(("GPU0 ", "bold"), ("▁▂▃", "green"), ("  42%", ""))) == 0
    assert changed_width(line, strip(("GPU0 ", "bold"), ("▂▃▄", "green"), ("  42%", ""))) == 8
    assert changed_width(line, strip(("GPU0 ", "bold"), ("▁▂▃", "red"), ("  42%", ""))) == 8  # colour only
    assert changed_width(line, strip(("GPU0 ", "bold"), ("▁▂▃", "green"), ("  43%", ""))) == 12  # the "%" after it is the same
    assert changed_width(line, strip(("GPU1 ", "bold"), ("▁▂▃", "green"), ("  42%", ""))) == 4


async def test_a_poll_repaints_only_the_monitor_lines_that_changed(tmp_path: Path) -> None:
    hub = await fleet_hub(tmp_path, 3)
    async with MonitorApp(hub).run_test(size=(120, 30)) as pilot:
        pane = pilot.app.query_one(MonitorPane)
        pane.attach(hub)
        await pilot.pause()
        before = [line.text for line in pilot.app.screen._compositor.render_strips()]
        refreshed: list[tuple[Region, ...]] = []
        refresh = pane.refresh

        def recorded(*regions: Region, **kwargs: Any) -> Any:
            refreshed.append(regions)
            return refresh(*regions, **kwargs)

        pane.refresh = recorded  # type: ignore[method-assign]
        await hub.clock.advance(5)  # type: ignore[attr-defined]
        await hub.refresh_instances("vast")  # every card gets a new sample: sparklines shift, readings move
        pane.reload()
        await pilot.pause()
        shown = [line.text for line in pilot.app.screen._compositor.render_strips()]
        pane.refresh = refresh  # type: ignore[method-assign]
        pane.refresh()
        await pilot.pause()
        assert shown == [line.text for line in pilot.app.screen._compositor.render_strips()]  # nothing left stale
        assert refreshed and all(regions for regions in refreshed), "no full repaint"
        lines = {region.y for regions in refreshed for region in regions}
        changed = {y for y, (old, new) in enumerate(zip(before, shown, strict=True)) if old != new}
        assert changed and changed <= lines
        titles_and_blanks = {y for y, text in enumerate(shown) if "train-" in text or not text.strip()}
        assert not lines & titles_and_blanks
        assert all(region.x == 0 and region.height == 1 and region.width <= pane.size.width
                   for regions in refreshed for region in regions)


async def test_the_header_repaints_only_when_what_it_shows_changes(tmp_path: Path) -> None:
    async with MonitorApp(await fleet_hub(tmp_path, 1)).run_test(size=SIZE) as pilot:
        header = HubHeader()
        await pilot.app.mount(header)
        repaints: list[int] = []
        refresh = header.refresh
        header.refresh = lambda *a, **k: (repaints.append(1), refresh(*a, **k))[1]  # type: ignore[method-assign]
        health = [ProviderHealth("vast", instances_at=10.0)]
        header.update_state(demo=True, health=health, burn_rate=1.5, spend_today=2.0)
        assert len(repaints) == 1
        header.update_state(health=[ProviderHealth("vast", instances_at=15.0)], burn_rate=1.5001, spend_today=2.001)
        assert len(repaints) == 1  # a newer poll, the same chips and the same money on screen
        header.update_state(spend_today=2.5)
        assert len(repaints) == 2


async def test_the_events_of_one_poll_cost_one_monitor_repaint(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    app = small_app(tmp_path, ManualClock())
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        await pilot.press("3")
        await wait_for(pilot, lambda: app.current_pane == "monitor")
        await pilot.pause()
        log: list[str] = []
        refresh_pane, set_timer = app._refresh_pane, app.set_timer

        def logged_refresh(pane: str) -> None:
            log.append(f"repaint {pane}")
            refresh_pane(pane)

        def logged_timer(delay: float, callback: Any = None, **kwargs: Any) -> Any:
            if isinstance(callback, partial) and callback.func == logged_refresh:
                log.append(f"scheduled {callback.args[0]}")
            return set_timer(delay, callback, **kwargs)

        # Only the events posted below count: the engine's own (late start-up polls on a loaded machine) are
        # not forwarded from here on.
        assert app._unsubscribe is not None
        app._unsubscribe()
        await pilot.pause()
        monkeypatch.setattr(app, "_refresh_pane", logged_refresh)
        monkeypatch.setattr(app, "set_timer", logged_timer)
        monkeypatch.setattr(app, "_refreshed_at", {})  # long since the last repaint
        at = app.hub.clock.now()  # type: ignore[union-attr]
        key = app.hub.instances()[0].key  # type: ignore[union-attr]
        app.post_message(EngineEventPosted(InstancesUpdated("vast", 1, at)))  # as the intake publishes them
        app.post_message(EngineEventPosted(MetricsSampled(at, (key,))))
        await wait_for(pilot, lambda: "repaint monitor" in log)
        await pilot.pause()
        assert [entry for entry in log if entry.endswith("monitor")] == ["repaint monitor"]
    assert app_module.COALESCE_S > 0


async def test_a_reload_with_nothing_new_renders_and_repaints_nothing(tmp_path: Path) -> None:
    hub = await fleet_hub(tmp_path, 3)
    async with MonitorApp(hub).run_test(size=(120, 30)) as pilot:
        pane = pilot.app.query_one(MonitorPane)
        pane.attach(hub)
        await pilot.pause()
        rendered: list[str] = []
        refreshed: list[tuple[Region, ...]] = []
        render_card, refresh = pane._render_card, pane.refresh

        def counted(card: Any, *args: Any) -> list[Strip]:
            rendered.append(card.instance.key)
            return render_card(card, *args)

        pane._render_card = counted  # type: ignore[method-assign]
        pane.refresh = lambda *regions, **kwargs: (refreshed.append(regions), refresh(*regions, **kwargs))[1]  # type: ignore[method-assign]
        pane.reload()  # as another provider's poll does: this one's cards show what they showed
        await pilot.pause()
        assert rendered == [] and refreshed == []
        await hub.clock.advance(5)  # type: ignore[attr-defined]
        await hub.refresh_instances("vast")
        pane.reload()
        await pilot.pause()
        assert sorted(set(rendered)) == sorted(i.key for i in hub.instances())
        rendered.clear()
        pilot.app.theme = "textual-light" if pilot.app.theme != "textual-light" else "nord"
        await pilot.pause()
        assert sorted(set(rendered)) == sorted(i.key for i in hub.instances())  # the new theme's colours
