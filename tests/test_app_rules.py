"""The Rules pane (key 4) driven with Pilot on the demo market, over an in-memory rules source."""

from __future__ import annotations

from pathlib import Path

from fakes.rules_source import CRASH, IDLE, RECIPES, RULES_FILE, FakeRulesSource, sample_source
from textual import events
from textual.pilot import Pilot
from textual.widgets import TextArea
from tui import SIZE, run_palette, screen_text, small_app, wait_for

from computehub_tui.clock import ManualClock
from computehub_tui.config import Config
from computehub_tui.rules.model import Mode, RuleSet
from computehub_tui.rules.parser import parse_rules
from computehub_tui.ui.app import ComputeHubApp
from computehub_tui.ui.rules_source import FiringRow, LeaseInfo, PendingWarning, automation_line
from computehub_tui.ui.screens.confirm import ConfirmScreen
from computehub_tui.ui.screens.help import HelpScreen
from computehub_tui.ui.screens.rules_audit import AuditScreen
from computehub_tui.ui.screens.rules_editor import RuleEditorScreen
from computehub_tui.ui.screens.rules_pending import PendingScreen
from computehub_tui.ui.screens.rules_recipes import RecipeScreen
from computehub_tui.ui.widgets.rules_pane import EXCERPT, check_text

NOW = 1_800_000_000.0
def fake_source(text: str = RULES_FILE) -> FakeRulesSource:
    return sample_source(ManualClock(NOW), text)


def rules_app(tmp_path: Path, source: FakeRulesSource | None) -> ComputeHubApp:
    app = small_app(tmp_path, source.clock if source is not None else ManualClock(NOW))  # type: ignore[arg-type]
    app.rules_source_for = lambda hub: source
    return app


async def on_rules_pane(pilot: Pilot) -> ComputeHubApp:
    app = pilot.app
    assert isinstance(app, ComputeHubApp)
    await wait_for(pilot, lambda: app.hub is not None and app.rules_pane.source is app.rules_source)
    await pilot.press("4")
    await wait_for(pilot, lambda: app.current_pane == "rules")
    return app


def preview_shown(app: ComputeHubApp) -> str:
    return str(app.rules_pane.query_one("#rules-preview").render())


async def open_editor(pilot: Pilot) -> RuleEditorScreen:
    await pilot.press("e")
    await wait_for(pilot, lambda: isinstance(pilot.app.screen, RuleEditorScreen))
    screen = pilot.app.screen
    assert isinstance(screen, RuleEditorScreen)
    screen.editor.cursor_blink = False
    return screen


# -- list ---------------------------------------------------------------------------------------


async def test_the_list_shows_each_rule_with_its_state(tmp_path: Path) -> None:
    source = fake_source()
    async with rules_app(tmp_path, source).run_test(size=SIZE) as pilot:
        app = await on_rules_pane(pilot)
        text = screen_text(pilot)
        idle = next(line for line in text.splitlines() if "idle-stop" in line and " on " in line)
        assert "live" in idle and "5m ago" in idle and idle.rstrip().endswith("3")
        crash = next(line for line in text.splitlines() if "crash-restart" in line and "dry-run" in line)
        assert "never" in crash and "held until 14:05" in crash
        assert [row.name for row in app.rules_pane.table.rows] == ["idle-stop", "crash-restart"]
        assert "2 rules, 2 enabled" in text


async def test_without_a_source_the_pane_says_automation_is_not_available(tmp_path: Path) -> None:
    async with rules_app(tmp_path, None).run_test(size=SIZE) as pilot:
        app = await on_rules_pane(pilot)
        assert "Automation is not available in this build." in screen_text(pilot)
        await pilot.press("e", "n", "exclamation_mark")  # nothing to edit, nothing to pause: no crash
        await pilot.pause()
        assert app.screen is app.screen_stack[0]
        assert "automation is not available" in " ".join(n.message for n in app._notifications).lower()


async def test_an_empty_rules_file_teaches_the_recipes(tmp_path: Path) -> None:
    async with rules_app(tmp_path, fake_source("")).run_test(size=SIZE) as pilot:
        await on_rules_pane(pilot)
        assert "No rules yet. Press n to start from a recipe: idle stop, crash restart, daily cap" in screen_text(pilot)


async def test_space_disables_and_t_toggles_dry_run(tmp_path: Path) -> None:
    source = fake_source()
    async with rules_app(tmp_path, source).run_test(size=SIZE) as pilot:
        app = await on_rules_pane(pilot)
        await pilot.press("space")
        await wait_for(pilot, lambda: not app.rules_pane.table.rows[0].enabled)
        assert source.states["idle-stop"].enabled is False
        await pilot.press("space")
        await wait_for(pilot, lambda: app.rules_pane.table.rows[0].enabled)
        await pilot.press("t")
        await wait_for(pilot, lambda: app.rules_pane.table.rows[0].mode is Mode.DRY_RUN)
        assert source.states["idle-stop"].mode is Mode.DRY_RUN
        await pilot.press("down", "t")
        await wait_for(pilot, lambda: source.states["crash-restart"].mode is Mode.LIVE)


async def test_delete_asks_first_and_no_keeps_the_rule(tmp_path: Path) -> None:
    source = fake_source()
    async with rules_app(tmp_path, source).run_test(size=SIZE) as pilot:
        app = await on_rules_pane(pilot)
        await pilot.press("d")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmScreen))
        assert "Delete the rule idle-stop?" in screen_text(pilot)
        await pilot.press("n")
        await wait_for(pilot, lambda: not isinstance(app.screen, ConfirmScreen))
        assert IDLE in source.text
        await pilot.press("d")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmScreen))
        await pilot.press("y")
        await wait_for(pilot, lambda: [row.name for row in app.rules_pane.table.rows] == ["crash-restart"])
        assert IDLE not in source.text and CRASH in source.text


# -- preview ------------------------------------------------------------------------------------


async def test_the_preview_shows_what_matches_now_with_the_values_and_why_not(tmp_path: Path) -> None:
    async with rules_app(tmp_path, fake_source()).run_test(size=SIZE) as pilot:
        app = await on_rules_pane(pilot)
        await wait_for(pilot, lambda: "matches" in preview_shown(app))
        shown = preview_shown(app)
        assert "idle-stop  matches 1 of 3 now" in shown
        assert "● vast:101  llama-finetune  gpu_util=2.0 for 31m, status=running" in shown
        assert "○ vast:102  sd-webui  false: gpu_util is 87.0" in shown and "(gpu_util=87.0)" not in shown
        assert "unknown: no gpu_util samples for 4m" in shown
        await pilot.press("down")  # the dry-run rule: nothing in the preview, and why it is held
        await wait_for(pilot, lambda: "crash-restart" in preview_shown(app))
        assert "nothing to evaluate now" in preview_shown(app) and "held until 14:05" in preview_shown(app)


async def test_hostile_labels_show_literally_and_never_drive_the_terminal(tmp_path: Path) -> None:
    async with rules_app(tmp_path, fake_source()).run_test(size=SIZE) as pilot:
        app = await on_rules_pane(pilot)
        await wait_for(pilot, lambda: "runpod:abc" in screen_text(pilot))
        text = screen_text(pilot)
        assert "runpod:abc  [bold]x[/] [@click=app.quit]q[/] end  unknown: no gpu_util samples" in text
        assert "\x1b" not in text and "\x07" not in text and "ZXZpbA" not in text
        assert app.is_running


# -- editor -------------------------------------------------------------------------------------


async def test_the_editor_checks_once_typing_pauses_and_shows_the_error_under_it(tmp_path: Path) -> None:
    source = fake_source()
    async with rules_app(tmp_path, source).run_test(size=SIZE) as pilot:
        await on_rules_pane(pilot)
        editor = await open_editor(pilot)
        await wait_for(pilot, lambda: editor.ruleset is not None)
        assert "✓ valid: 2 rules" in screen_text(pilot)
        editor.check_delay_s = 30.0  # a pause longer than any test: only the debounce could run a check
        checks = source.checks
        editor.editor.move_cursor((3, 0))
        await pilot.press(*'IF gpu_util < 5 FOR 30x THEN sto')
        assert source.checks == checks and editor.ruleset is None  # no check on any keystroke
        editor.check_delay_s = 0.01
        await pilot.press("p")  # the last key restarts the wait, now short
        await wait_for(pilot, lambda: editor.ruleset is not None)
        assert source.checks == checks + 1
        text = screen_text(pilot)
        assert "1 error (not saved)" in text
        assert "line 4, col 21: expected a duration like 30m after FOR" in text
        lines = text.splitlines()
        error_at = next(n for n, line in enumerate(lines) if "line 4, col 21" in line)  # under the editor
        source_line = error_at + 1
        assert "IF gpu_util < 5 FOR 30x THEN stop" in lines[source_line]
        column = lines[source_line].index("30x")
        assert lines[source_line + 1][column] == "^"


async def test_save_refuses_an_invalid_text_and_keeps_the_edits(tmp_path: Path) -> None:
    source = fake_source()
    async with rules_app(tmp_path, source).run_test(size=SIZE) as pilot:
        app = await on_rules_pane(pilot)
        editor = await open_editor(pilot)
        broken = RULES_FILE + "IF status == \"exited\"\n"
        editor.editor.load_text(broken)
        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: "error (not saved)" in screen_text(pilot))
        assert source.saves == [] and source.text == RULES_FILE
        assert app.screen is editor and editor.editor.text == broken
        assert "line 4, col 22: expected THEN and an action" in screen_text(pilot)
        fixed = broken.replace('"exited"\n', '"exited" THEN restart\n')
        editor.editor.load_text(fixed)
        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: app.screen is not editor)
        assert source.saves == [fixed]
        await wait_for(pilot, lambda: len(app.rules_pane.table.rows) == 3)


async def test_escape_asks_before_discarding_unsaved_edits(tmp_path: Path) -> None:
    source = fake_source()
    async with rules_app(tmp_path, source).run_test(size=SIZE) as pilot:
        app = await on_rules_pane(pilot)
        editor = await open_editor(pilot)
        await pilot.press("escape")  # nothing edited: closes at once
        await wait_for(pilot, lambda: app.screen is not editor)
        editor = await open_editor(pilot)
        await pilot.press("x")
        await pilot.press("escape")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmScreen))
        assert "Discard unsaved edits?" in screen_text(pilot)
        await pilot.press("n")
        await wait_for(pilot, lambda: app.screen is editor)
        assert editor.editor.text == RULES_FILE.replace(IDLE, "x" + IDLE)  # the cursor starts on the rule
        await pilot.press("escape")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmScreen))
        await pilot.press("y")
        await wait_for(pilot, lambda: app.screen is app.screen_stack[0])
        assert source.saves == [] and source.text == RULES_FILE


async def test_the_editor_previews_the_text_being_edited(tmp_path: Path) -> None:
    async with rules_app(tmp_path, fake_source()).run_test(size=SIZE) as pilot:
        await on_rules_pane(pilot)
        editor = await open_editor(pilot)
        preview = editor.query_one("#editor-preview")
        await wait_for(pilot, lambda: "matches" in str(preview.render()))
        assert "● vast:101  llama-finetune  gpu_util=2.0 for 31m" in str(preview.render())
        editor.editor.load_text(CRASH + "\n")  # the idle rule is gone from the text: so is its preview
        await wait_for(pilot, lambda: "idle-stop" not in str(preview.render()))
        assert "crash-restart  nothing to evaluate now" in str(preview.render())


# -- recipes ------------------------------------------------------------------------------------


async def test_n_starts_a_rule_from_a_recipe_in_the_editor(tmp_path: Path) -> None:
    source = fake_source()
    async with rules_app(tmp_path, source).run_test(size=SIZE) as pilot:
        app = await on_rules_pane(pilot)
        await pilot.press("n")
        await wait_for(pilot, lambda: isinstance(app.screen, RecipeScreen))
        assert "Daily cap" in screen_text(pilot)
        await pilot.press("down", "enter")
        await wait_for(pilot, lambda: isinstance(app.screen, RuleEditorScreen))
        editor = app.screen
        assert isinstance(editor, RuleEditorScreen)
        assert editor.editor.text == RULES_FILE.rstrip() + "\n\n" + RECIPES[1].text
        assert editor.unsaved  # the recipe is not in the file until saved
        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: source.saves != [])
        assert source.text.endswith(RECIPES[1].text)


async def test_ctrl_n_inserts_a_recipe_where_the_cursor_is(tmp_path: Path) -> None:
    async with rules_app(tmp_path, fake_source()).run_test(size=SIZE) as pilot:
        app = await on_rules_pane(pilot)
        editor = await open_editor(pilot)
        editor.editor.move_cursor((1, 0))
        await pilot.press("ctrl+n")
        await wait_for(pilot, lambda: isinstance(app.screen, RecipeScreen))
        await pilot.press("enter")
        await wait_for(pilot, lambda: app.screen is editor)
        assert editor.editor.text == f"# my rules\n{IDLE}\n{RECIPES[0].text}\n{CRASH}\n"
        assert isinstance(editor.focused, TextArea)


# -- audit, pending, pause, lease ---------------------------------------------------------------


async def test_the_audit_view_lists_firings_newest_first(tmp_path: Path) -> None:
    source = fake_source()
    source.firing_rows = [
        FiringRow(NOW - 3600, "idle-stop", "vast:101", "stop", False, "stopped", (("gpu_util", "2.0 for 31m"),)),
        FiringRow(NOW - 60, "crash-restart", "vast:102", "restart", True, "would restart", (("status", "exited"),)),
    ]
    async with rules_app(tmp_path, source).run_test(size=SIZE) as pilot:
        app = await on_rules_pane(pilot)
        await pilot.press("a")
        await wait_for(pilot, lambda: isinstance(app.screen, AuditScreen) and bool(app.screen.table.rows))
        lines = screen_text(pilot).splitlines()
        newest = next(n for n, line in enumerate(lines) if "crash-restart" in line and "dry-run" in line)
        oldest = next(n for n, line in enumerate(lines) if "idle-stop" in line and "live" in line)
        assert newest < oldest
        assert "would restart" in lines[newest] and "status=exited" in lines[newest]
        assert "gpu_util=2.0 for 31m" in lines[oldest]


async def test_pending_warnings_snooze_and_cancel(tmp_path: Path) -> None:
    source = fake_source()
    source.warnings = [PendingWarning("w1", "idle-stop", "vast:101", "stop", NOW + 600),
                       PendingWarning("w2", "idle-stop", "vast:103", "stop", NOW + 120)]
    async with rules_app(tmp_path, source).run_test(size=SIZE) as pilot:
        app = await on_rules_pane(pilot)
        assert "2 pending warnings (w)" in screen_text(pilot)
        await pilot.press("w")
        await wait_for(pilot, lambda: isinstance(app.screen, PendingScreen))
        assert "10m00s" in screen_text(pilot)
        await pilot.press("z")
        await wait_for(pilot, lambda: source.snoozed == [("w1", 900.0)])
        await wait_for(pilot, lambda: "25m00s" in screen_text(pilot))
        await pilot.press("down", "c")
        await wait_for(pilot, lambda: source.cancelled == ["w2"])
        await pilot.press("escape")
        await wait_for(pilot, lambda: "1 pending warning (w)" in screen_text(pilot))


async def test_the_pause_key_pauses_at_once_and_resuming_asks(tmp_path: Path) -> None:
    source = fake_source()
    source.holder = LeaseInfo("this app", 42, "laptop", NOW - 60)
    async with rules_app(tmp_path, source).run_test(size=SIZE) as pilot:
        app = await on_rules_pane(pilot)
        assert "automation: this app" in screen_text(pilot).splitlines()[0]
        await pilot.press("1", "exclamation_mark")  # from any pane
        await wait_for(pilot, lambda: source.paused)
        await wait_for(pilot, lambda: "automation paused" in screen_text(pilot).splitlines()[0])
        await pilot.press("exclamation_mark")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmScreen))
        assert "Resume automation?" in screen_text(pilot) and "idle-stop" in screen_text(pilot)
        await pilot.press("n")
        await pilot.pause()
        assert source.paused
        await pilot.press("exclamation_mark")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmScreen))
        await pilot.press("y")
        await wait_for(pilot, lambda: not source.paused)
        await wait_for(pilot, lambda: "automation: this app" in screen_text(pilot).splitlines()[0])


async def test_the_header_and_pane_say_when_a_daemon_holds_the_lease(tmp_path: Path) -> None:
    source = fake_source()
    source.holder = LeaseInfo("daemon", 1234, "gpu-box", NOW - 600)
    async with rules_app(tmp_path, source).run_test(size=SIZE) as pilot:
        await on_rules_pane(pilot)
        lines = screen_text(pilot).splitlines()
        assert "automation: daemon pid 1234 on gpu-box holds the lease" in lines[0]
        assert any(line.strip().startswith("automation: daemon pid 1234 on gpu-box holds the lease · 2 rules")
                   for line in lines)
        source.holder = None  # the daemon stopped: the next refresh says so
        await pilot.press("3", "4")
        await wait_for(pilot, lambda: "automation off · 2 rules" in screen_text(pilot))


# -- palette and help ---------------------------------------------------------------------------


async def test_the_palette_and_help_know_the_rules_pane(tmp_path: Path) -> None:
    async with rules_app(tmp_path, fake_source()).run_test(size=SIZE) as pilot:
        app = pilot.app
        assert isinstance(app, ComputeHubApp)
        await wait_for(pilot, lambda: app.hub is not None)
        await run_palette(pilot, "Go to Rules")
        await wait_for(pilot, lambda: app.current_pane == "rules")
        await run_palette(pilot, "Rules: audit log")
        await wait_for(pilot, lambda: isinstance(app.screen, AuditScreen))
        await pilot.press("escape", "question_mark")
        await wait_for(pilot, lambda: isinstance(app.screen, HelpScreen))
        sections = dict(app.screen.sections)
        assert ("!", "Pause/resume rules") in sections["Everywhere"]
        assert ("t", "Dry-run") in sections["Rules (4)"]
        assert ("ctrl+s", "Save") in sections["Rules editor (e or Enter in Rules)"]


async def test_the_rules_pane_may_be_the_start_pane(tmp_path: Path) -> None:
    assert Config.model_validate({"ui": {"default_pane": "rules"}}).ui.default_pane == "rules"
    async with rules_app(tmp_path, fake_source()).run_test(size=SIZE) as pilot:
        app = await on_rules_pane(pilot)
        await app.run_action("make_default_pane")
        await pilot.pause()
        messages = [n.message for n in app._notifications]
        assert not any("cannot start on Rules" in message for message in messages)
        assert any("no config file to save the default pane in" in message for message in messages)


async def test_control_characters_in_the_rules_file_show_visibly_in_the_editor_and_its_errors(tmp_path: Path) -> None:
    hostile = 'rule "x": IF label == "\x1b]52;c;ZXZpbA==\x07\x1b[2J" FOR 5q THEN stop\n'
    async with rules_app(tmp_path, fake_source(RULES_FILE + hostile)).run_test(size=SIZE) as pilot:
        app = await on_rules_pane(pilot)
        editor = await open_editor(pilot)
        await wait_for(pilot, lambda: editor.ruleset is not None)
        text = screen_text(pilot)
        assert "expected a duration like 30m after FOR" in text
        assert "\x1b" not in text and "\x07" not in text
        assert '"␛]52;c;ZXZpbA==␇␛[2J" FOR 5q THEN stop' in text  # under the editor, shown, not obeyed
        editor.editor.move_cursor((0, 0))
        app.post_message(events.Paste("\x1b[31mred "))  # as the driver delivers a bracketed paste
        await wait_for(pilot, lambda: editor.editor.text.startswith("␛[31mred # my rules"))
        assert "\x1b" not in editor.editor.text and app.is_running


async def test_a_save_that_fails_keeps_the_edits_and_says_why(tmp_path: Path) -> None:
    source = fake_source()

    async def disk_full(text: str) -> RuleSet:
        raise OSError(28, "No space left on device")

    source.save = disk_full  # type: ignore[method-assign]
    async with rules_app(tmp_path, source).run_test(size=SIZE) as pilot:
        app = await on_rules_pane(pilot)
        editor = await open_editor(pilot)
        edited = RULES_FILE + CRASH.replace("crash-restart", "again") + "\n"
        editor.editor.load_text(edited)
        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: any("not saved" in n.message for n in app._notifications))
        assert "No space left on device" in " ".join(n.message for n in app._notifications)
        assert app.screen is editor and editor.editor.text == edited and source.text == RULES_FILE


def test_the_automation_line_names_who_runs_automation() -> None:
    source = fake_source()
    assert automation_line(None) == "automation is not available in this build"
    assert automation_line(source) == "automation off"
    source.holder = LeaseInfo("this app", 1, "laptop", NOW)
    assert automation_line(source) == "automation: this app"
    source.holder = LeaseInfo("daemon", 1234, "gpu-box", NOW)
    assert automation_line(source) == "automation: daemon pid 1234 on gpu-box holds the lease"
    source.holder = LeaseInfo("other", 99, "\x1b[2Jbox", NOW)
    assert automation_line(source) == "automation: another process pid 99 on box holds the lease"
    source.is_paused = True
    assert automation_line(source) == "automation paused"


async def test_a_change_the_source_refuses_is_shown_and_changes_nothing(tmp_path: Path) -> None:
    source = fake_source()

    async def store_down(name: str, enabled: bool) -> None:
        raise RuntimeError("database is locked")

    source.set_enabled = store_down  # type: ignore[method-assign]
    async with rules_app(tmp_path, source).run_test(size=SIZE) as pilot:
        app = await on_rules_pane(pilot)
        await pilot.press("space")
        await wait_for(pilot, lambda: any("database is locked" in n.message for n in app._notifications))
        assert app.rules_pane.table.rows[0].enabled and app.is_running


def test_a_long_erring_line_is_cut_around_its_error_so_the_caret_stays_under_it() -> None:
    line = 'rule "idle-stop": IF gpu_util < 5 FOR 30m AND status == "running" THEN WARN 10m stop FOR 5q'
    shown = check_text(parse_rules(line + "\n")).plain.splitlines()
    excerpt, caret = shown[2], shown[3]
    assert len(excerpt) <= 2 + EXCERPT + 2 and excerpt.startswith("  …")
    assert excerpt[caret.index("^"):].startswith("FOR 5q")  # the column the parser named (col 86)
