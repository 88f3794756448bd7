"""Snapshots of the Rules pane and its screens over an in-memory rules source, at 160x48 and 80x24.

Plain ``def`` tests, as in test_snapshots.py (the plugin runs its own loop). Regenerate with
``pytest tests/test_snapshots_rules.py --snapshot-update``, then look at every image.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest
from fakes.rules_source import FakeRulesSource, sample_source
from test_snapshots import SIZES, app_of, settle
from textual.pilot import Pilot
from textual.widgets import TextArea
from tui import ready, small_app, wait_for

from computehub_tui.clock import ManualClock
from computehub_tui.ui.app import ComputeHubApp
from computehub_tui.ui.rules_source import FiringRow, LeaseInfo, PendingWarning
from computehub_tui.ui.screens.rules_audit import AuditScreen
from computehub_tui.ui.screens.rules_editor import RuleEditorScreen
from computehub_tui.ui.screens.rules_pending import PendingScreen
from computehub_tui.ui.screens.rules_recipes import RecipeScreen

Steps = Callable[[Pilot], Awaitable[None]]

pytestmark = pytest.mark.usefixtures("utc")


def rules_source(clock: ManualClock) -> FakeRulesSource:
    now = clock.now()
    source = sample_source(clock)
    source.holder = LeaseInfo("daemon", 1234, "gpu-box", now - 600)
    source.warnings = [PendingWarning("w1", "idle-stop", "vast:101", "stop", now + 600)]
    source.firing_rows = [
        FiringRow(now - 3600, "idle-stop", "vast:101", "stop", False, "stopped", (("gpu_util", "2.0 for 31m"),
                                                                                  ("status", "running"))),
        FiringRow(now - 60, "crash-restart", "vast:102", "restart", True, "would restart", (("status", "exited"),)),
    ]
    return source


def preview_loaded(app: ComputeHubApp) -> bool:
    return "matches" in str(app.rules_pane.query_one("#rules-preview").render())


async def rules_list(pilot: Pilot) -> None:
    await pilot.press("4")
    await wait_for(pilot, lambda: preview_loaded(app_of(pilot)))


async def rules_editor_error(pilot: Pilot) -> None:
    await rules_list(pilot)
    await pilot.press("e")
    await wait_for(pilot, lambda: isinstance(app_of(pilot).screen, RuleEditorScreen))
    editor = app_of(pilot).screen
    assert isinstance(editor, RuleEditorScreen)
    editor.editor.cursor_blink = False
    editor.editor.load_text(editor.editor.text + 'rule "late": IF gpu_util < 5 FOR 30x THEN stop\n')
    await wait_for(pilot, lambda: editor.ruleset is not None and not editor.ruleset.ok
                   and "matches" in str(editor.query_one("#editor-preview").render()))


async def rules_recipes(pilot: Pilot) -> None:
    await rules_list(pilot)
    await pilot.press("n")
    await wait_for(pilot, lambda: isinstance(app_of(pilot).screen, RecipeScreen))


async def rules_audit(pilot: Pilot) -> None:
    await rules_list(pilot)
    await pilot.press("a")
    await wait_for(pilot, lambda: isinstance(app_of(pilot).screen, AuditScreen)
                   and bool(app_of(pilot).screen.table.rows))


async def rules_pending(pilot: Pilot) -> None:
    await rules_list(pilot)
    await pilot.press("w")
    await wait_for(pilot, lambda: isinstance(app_of(pilot).screen, PendingScreen))


SCREENS: dict[str, Steps] = {step.__name__: step for step in (
    rules_list, rules_editor_error, rules_recipes, rules_audit, rules_pending)}


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("screen", SCREENS)
def test_rules_screen(snap_compare: Callable[..., bool], tmp_path: Path, screen: str, size: str) -> None:
    clock = ManualClock()
    app = small_app(tmp_path, clock)
    source = rules_source(clock)
    app.rules_source_for = lambda hub: source

    async def run_before(pilot: Pilot) -> None:
        await ready(pilot)
        pilot.app.clear_notifications()
        await SCREENS[screen](pilot)
        for area in pilot.app.screen.query(TextArea):
            area.cursor_blink = False
        await settle(pilot)

    assert snap_compare(app, terminal_size=SIZES[size], run_before=run_before)
