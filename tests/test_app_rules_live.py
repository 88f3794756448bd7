"""The Rules pane on the real automation of a demo session: the rules file, switches kept in the store, a preview of
the demo fleet with its values, and the lease this app holds."""

from __future__ import annotations

from pathlib import Path

from computehub_tui.clock import ManualClock
from computehub_tui.config import Config
from computehub_tui.rules.model import Mode
from computehub_tui.ui.app import ComputeHubApp
from tests.tui import SIZE, screen_text, small_app, wait_for

RULES = ('rule "running-note": IF status == "running" THEN notify toast "up {label}"\n'
         'rule "big-spend": IF spend_today > $100000 THEN stop_all\n')


async def test_the_pane_lists_switches_and_previews_the_rules_file_on_the_demo_fleet(tmp_path: Path) -> None:
    rules_file = tmp_path / "my.rules"
    rules_file.write_text(RULES, encoding="utf-8")
    config = Config.model_validate({"monitor": {"ssh_providers": []}, "automation": {"rules_file": str(rules_file)}})
    app = small_app(tmp_path, ManualClock(), config=config)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: app.hub is not None and app.rules_source is not None
                       and app.hub.rules.holds_lease, timeout=20)
        assert isinstance(app, ComputeHubApp) and app.hub is not None
        await pilot.press("4")
        await wait_for(pilot, lambda: [row.name for row in app.rules_pane.table.rows] == ["running-note", "big-spend"])
        running = next(i for i in app.hub.instances() if i.status.value == "running")
        await wait_for(pilot, lambda: running.label in str(app.rules_pane.query_one("#rules-preview").render()))
        assert "automation: this app" in screen_text(pilot)

        await pilot.press("t")  # the first rule to dry-run, kept in the store by name
        await wait_for(pilot, lambda: app.hub is not None and app.hub.rules.listing()[0].mode is Mode.DRY_RUN)
        await wait_for(pilot, lambda: "dry-run" in screen_text(pilot))
        assert rules_file.read_text(encoding="utf-8") == RULES  # a switch never rewrites the file


async def test_a_rules_file_that_cannot_be_read_is_never_edited_over(tmp_path: Path) -> None:
    rules_file = tmp_path / "my.rules"
    rules_file.write_bytes(b'rule "x": IF label == "\xff\xfe" THEN stop\n')  # not UTF-8: unreadable as text
    config = Config.model_validate({"monitor": {"ssh_providers": []}, "automation": {"rules_file": str(rules_file)}})
    app = small_app(tmp_path, ManualClock(), config=config)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: app.hub is not None and app.rules_source is not None)
        await pilot.press("4")
        await wait_for(pilot, lambda: app.current_pane == "rules")
        await pilot.press("e")
        await wait_for(pilot, lambda: any("not UTF-8" in n.message for n in app._notifications))
        assert app.screen is app.screen_stack[0]  # no editor over a file it could not read
        assert rules_file.read_bytes() == b'rule "x": IF label == "\xff\xfe" THEN stop\n'


async def test_the_editor_warns_of_a_notify_to_a_channel_that_is_not_set_up(tmp_path: Path) -> None:
    from textual.widgets import TextArea

    from computehub_tui.ui.screens.rules_editor import RuleEditorScreen

    rules_file = tmp_path / "my.rules"
    rules_file.write_text(RULES, encoding="utf-8")
    config = Config.model_validate({"monitor": {"ssh_providers": []}, "automation": {"rules_file": str(rules_file)},
                                    "alerts": {"webhook": {"url": "https://hooks.example.com/x"}}})
    app = small_app(tmp_path, ManualClock(), config=config)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: app.hub is not None and app.rules_source is not None)
        await pilot.press("4")
        await wait_for(pilot, lambda: bool(app.rules_pane.table.rows))
        await pilot.press("e")
        await wait_for(pilot, lambda: isinstance(app.screen, RuleEditorScreen))
        check = app.screen.query_one("#editor-check")
        await wait_for(pilot, lambda: "valid: 2 rules" in str(check.render()))
        assert "⚠" not in str(check.render())  # a toast needs no channel
        app.screen.query_one(TextArea).text = RULES + ('rule "tell": IF spend_today > 50 THEN notify telegram; '
                                                       'notify webhook\n')
        await wait_for(pilot, lambda: "valid: 3 rules" in str(check.render()))
        shown = str(check.render())
        assert "⚠ tell notifies telegram, which is not set up (Settings → Notifications)" in shown
        assert "notifies webhook" not in shown  # the webhook is set up
