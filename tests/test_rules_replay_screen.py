"""The editor's replay key: ReplayScreen over a rules source (snapshots at 160x48 and 80x24, keys), and the real
source's replay over a real store's history (what the key shows for a fleet)."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path

import pytest
from fakes.rules_source import HOSTILE_LABEL, IDLE, FakeRulesSource, sample_source
from test_snapshots import SIZES, app_of, settle
from textual.pilot import Pilot
from textual.widgets import TextArea
from tui import ready, small_app, wait_for

from computehub_tui.clock import ManualClock
from computehub_tui.domain.models import Instance, InstanceStatus, MetricSample
from computehub_tui.engine.automation.replay import replay, stored_trace
from computehub_tui.rules.parser import parse_rules
from computehub_tui.store import Store
from computehub_tui.ui.replay_view import MARK, ReplayFiring, ReplayView, timeline
from computehub_tui.ui.screens.rules_editor import RuleEditorScreen
from computehub_tui.ui.screens.rules_replay import ReplayScreen

pytestmark = pytest.mark.usefixtures("utc")
HOUR = 3600.0


def replay_source(clock: ManualClock) -> FakeRulesSource:
    now = clock.now()
    source = sample_source(clock)
    source.replay_view = ReplayView("", 0.0, 0.0, (
        ReplayFiring(now - 20 * HOUR, "vast:101", ("stop",), "gpu_util=1.0% < 5.0% for 30m; status=running"),
        ReplayFiring(now - 19.75 * HOUR, "vast:101", ("stop",), "gpu_util=0.0% < 5.0% for 34m; status=running"),
        ReplayFiring(now - 2 * HOUR, HOSTILE_LABEL, ("stop", "notify telegram"), f"label={HOSTILE_LABEL}"),
    ), ("vast:101", "vast:102", HOSTILE_LABEL), ((now - HOUR, "rule idle-stop would act on 3 of 3 instances"),))
    return source


async def open_replay(pilot: Pilot, *, loaded: bool = True) -> ReplayScreen:
    """The editor's replay of the rule under the cursor, once its result shows (``loaded``) or at once."""
    await pilot.press("4")
    await wait_for(pilot, lambda: bool(app_of(pilot).rules_pane.table.rows))
    await pilot.press("e")
    await wait_for(pilot, lambda: isinstance(app_of(pilot).screen, RuleEditorScreen))
    editor = app_of(pilot).screen
    assert isinstance(editor, RuleEditorScreen)
    editor.editor.cursor_blink = False
    editor.editor.move_cursor((1, 0))  # the idle-stop rule (line 2 of the file)
    await pilot.press("ctrl+t")
    await wait_for(pilot, lambda: isinstance(app_of(pilot).screen, ReplayScreen)
                   and (app_of(pilot).screen.view is not None or not loaded))
    screen = app_of(pilot).screen
    assert isinstance(screen, ReplayScreen)
    return screen


@pytest.mark.parametrize("size", SIZES)
def test_replay_screen(snap_compare: Callable[..., bool], tmp_path: Path, size: str) -> None:
    clock = ManualClock()
    app = small_app(tmp_path, clock)
    source = replay_source(clock)
    app.rules_source_for = lambda hub: source

    async def run_before(pilot: Pilot) -> None:
        await ready(pilot)
        pilot.app.clear_notifications()
        await open_replay(pilot)
        for area in pilot.app.query(TextArea):
            area.cursor_blink = False
        await settle(pilot)

    assert snap_compare(app, terminal_size=SIZES[size], run_before=run_before)


async def test_the_key_replays_the_rule_under_the_cursor_and_w_switches_to_7_days(tmp_path: Path) -> None:
    clock = ManualClock()
    app = small_app(tmp_path, clock)
    source = replay_source(clock)
    app.rules_source_for = lambda hub: source
    async with app.run_test(size=(120, 40)) as pilot:
        await ready(pilot)
        screen = await open_replay(pilot)
        assert source.replays == [("idle-stop", 86_400.0)]
        shown = str(screen.query_one("#replay-list").render())
        assert "vast:101  stop  gpu_util=1.0% < 5.0% for 30m" in shown
        assert "\x1b" not in shown and "held: rule idle-stop would act on 3 of 3 instances" in shown
        await pilot.press("w")
        await wait_for(pilot, lambda: len(source.replays) == 2 and screen.view is not None)
        assert source.replays[1] == ("idle-stop", 604_800.0)
        assert "over the last 7 d" in str(screen.query_one("#replay-title").render())


async def test_a_long_replay_shows_its_progress_and_closing_the_screen_stops_it(tmp_path: Path) -> None:
    clock = ManualClock()
    app = small_app(tmp_path, clock)
    source = replay_source(clock)
    source.long_replay = (4_000, 10_000)
    app.rules_source_for = lambda hub: source
    async with app.run_test(size=(120, 40)) as pilot:
        await ready(pilot)
        screen = await open_replay(pilot, loaded=False)
        summary = screen.query_one("#replay-summary")
        await wait_for(pilot, lambda: "40 % of 10,000 polls" in str(summary.render()))
        assert "esc stops it" in str(summary.render())
        [first] = source.replay_controls
        assert first is not None and not first.stopped
        await pilot.press("w")  # another window: the running replay is stopped first
        await wait_for(pilot, lambda: len(source.replay_controls) == 2)
        assert first.stopped
        second = source.replay_controls[1]
        assert second is not None and not second.stopped
        await pilot.press("escape")
        await wait_for(pilot, lambda: not isinstance(app.screen, ReplayScreen))
        assert second.stopped


def test_a_timeline_marks_each_firing_in_its_cell() -> None:
    fired = [ReplayFiring(at, name, ("stop",), "") for at, name in ((0.0, "a"), (55.0, "a"), (100.0, "a"), (10.0, "b"))]
    view = ReplayView("r", 0.0, 100.0, tuple(fired), ("a", "b"))
    assert timeline(view, "a", 10) == MARK + "····" + MARK + "···" + MARK
    assert timeline(view, "b", 10) == "·" + MARK + "········"


async def test_stored_history_replays_like_a_trace(tmp_path: Path) -> None:
    # A Vast machine polled once a minute for 3 h: busy for the first hour, then idle with its samples stored.
    # The idle rule's window [now - 1800, now] is all idle from start + 3600 + 1800; the cooldown then holds it
    # 15 minutes: firings at +5400, +6300, +7200, +8100, +9000, +9900, +10800 (the last poll is at +10800).
    start = 1_790_000_000.0
    store = await Store.open(tmp_path / "db.sqlite")
    try:
        machine = Instance(provider="vast", instance_id="7", status=InstanceStatus.RUNNING, provider_status="running",
                           gpu_count=1, price_hour=0.5, label="trainer", gpu="RTX 4090")
        for minute in range(181):
            at = start + 60 * minute
            await store.save_instances("vast", [machine], at)
            await store.add_metric_samples([("vast:7", MetricSample(at, (95.0 if minute < 60 else 1.0,), (3.0,),
                                                                    (24.0,)))])
        trace = await stored_trace(store, start - 60, start + 10_800)
    finally:
        await store.close()
    assert trace is not None and trace.instances == ("vast:7",)
    result = await replay(parse_rules(IDLE), trace)
    assert [(f.t - start, f.instance, f.actions) for f in result.firings] == [
        (offset, "vast:7", ("stop",)) for offset in (5400, 6300, 7200, 8100, 9000, 9900, 10800)]
    assert dataclasses.asdict(result.firings[0])["values"] == {"gpu_util": 1.0, "status": "running"}
