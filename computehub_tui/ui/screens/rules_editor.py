"""The rules editor: the whole rules file in a TextArea, checked as you type, previewed against the fleet."""

from __future__ import annotations

import asyncio
import dataclasses
from typing import ClassVar

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import VerticalScroll
from textual.screen import Screen
from textual.timer import Timer
from textual.widgets import TextArea
from textual.widgets.text_area import Edit, EditResult

from computehub_tui.domain.text import clean_text, show_controls
from computehub_tui.rules.model import RuleSet
from computehub_tui.ui.plain import PlainStatic
from computehub_tui.ui.rules_source import Recipe, RulesSource
from computehub_tui.ui.screens.confirm import ConfirmScreen
from computehub_tui.ui.widgets.footer import HubFooter
from computehub_tui.ui.widgets.rules_pane import check_text, preview_text

CHECK_DELAY_S = 0.2
"""Typing restarts this wait: the text is checked once the keys pause, never on every keystroke."""
TITLE = "Rules file · checked as you type · the preview shows what each rule matches now (nothing acts)"


class RulesTextArea(TextArea):
    """A TextArea that shows control characters as ␛ ␇ <U+202E> instead of sending them to the terminal
    (TextArea draws text as it is): a rules file or a paste may come from anywhere."""

    def __init__(self, text: str, *, id: str | None = None, placeholder: str = "") -> None:
        super().__init__(show_controls(text), id=id, show_line_numbers=True, soft_wrap=False, placeholder=placeholder)

    def load_text(self, text: str) -> None:
        super().load_text(show_controls(text))

    def edit(self, edit: Edit) -> EditResult:
        visible = show_controls(edit.text)
        return super().edit(edit if visible == edit.text else dataclasses.replace(edit, text=visible))


class RuleEditorScreen(Screen[bool]):
    """Dismisses with True once the text is saved. Saving refuses an invalid text with its errors listed;
    closing with unsaved edits asks first."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("ctrl+s", "save", "Save"),
        Binding("ctrl+n", "insert_recipe", "Insert recipe"),
        Binding("ctrl+t", "replay", "Replay 24 h / 7 d"),
        Binding("escape", "close", "Close"),
    ]
    DEFAULT_CSS = """
    RuleEditorScreen { layout: vertical; }
    RuleEditorScreen #editor-title { height: 1; padding: 0 1; background: $panel; text-style: bold; }
    RuleEditorScreen #editor-text { height: 1fr; min-height: 5; }
    RuleEditorScreen #editor-check-box { height: auto; max-height: 8; padding: 0 1; background: $panel-darken-1; }
    RuleEditorScreen #editor-preview-box { height: auto; max-height: 8; padding: 0 1; background: $panel-darken-2; }
    """

    def __init__(self, source: RulesSource, text: str, *, cursor_line: int = 0,
                 check_delay_s: float = CHECK_DELAY_S) -> None:
        super().__init__()
        self.source = source
        self.initial_text = text
        try:
            self.saved_text = source.file_text()
        except OSError:  # the pane read it a moment ago: what it opened with is what the file held
            self.saved_text = text
        """What the file holds: edits differ from it (a recipe inserted before opening counts as an edit)."""
        self.cursor_line = cursor_line
        self.check_delay_s = check_delay_s
        self.ruleset: RuleSet | None = None
        """The last check of the text, None while a check is due."""
        self._check_timer: Timer | None = None

    def compose(self) -> ComposeResult:
        yield PlainStatic(TITLE, id="editor-title")
        yield RulesTextArea(self.initial_text, id="editor-text",
                            placeholder='rule "idle-stop": IF gpu_util < 5 FOR 30m AND status == "running" THEN stop')
        with VerticalScroll(id="editor-check-box"):
            yield PlainStatic("", id="editor-check")
        with VerticalScroll(id="editor-preview-box"):
            yield PlainStatic("", id="editor-preview")
        yield HubFooter()

    @property
    def editor(self) -> TextArea:
        return self.query_one("#editor-text", TextArea)

    @property
    def unsaved(self) -> bool:
        return self.editor.text != self.saved_text

    def on_mount(self) -> None:
        self.editor.move_cursor((self.cursor_line, 0), center=True)
        self.editor.focus()
        self._check_now()

    @on(TextArea.Changed, "#editor-text")
    def _edited(self) -> None:
        self.ruleset = None
        if self._check_timer is not None:
            self._check_timer.stop()
        self._check_timer = self.set_timer(self.check_delay_s, self._check_now)

    def _check_now(self) -> None:
        self._check_timer = None
        self._run_check(self.editor.text)

    @work(group="rules-check", exclusive=True, exit_on_error=False)
    async def _run_check(self, text: str) -> None:
        """Off the event loop, and cancelled by the next edit's check, so a stale result never shows."""
        ruleset = await asyncio.to_thread(self.source.check, text)
        self.ruleset = ruleset
        self.query_one("#editor-check", PlainStatic).update(
            check_text(ruleset, self.source.unconfigured_notifications(ruleset)))
        if not ruleset.rules:
            self.query_one("#editor-preview", PlainStatic).update(Text("no rule to preview yet", style="dim"))
            return
        rows = await self.source.preview(text)
        self.query_one("#editor-preview", PlainStatic).update(
            preview_text(rows, [rule.name for rule in ruleset.rules]))

    def action_save(self) -> None:
        self._save(self.editor.text)

    @work(group="rules-save", exclusive=True, exit_on_error=False)
    async def _save(self, text: str) -> None:
        ruleset = await asyncio.to_thread(self.source.check, text)
        if ruleset.ok:
            try:
                ruleset = await self.source.save(text)
            except Exception as error:  # noqa: BLE001 - the edits stay in the editor; nothing is lost
                self.app.notify(f"not saved: {clean_text(str(error), 300) or type(error).__name__}", title="Rules",
                                severity="error", timeout=10)
                return
        self.query_one("#editor-check", PlainStatic).update(check_text(ruleset))
        if not ruleset.ok:
            count = len(ruleset.errors)
            self.app.notify(f"Not saved: {count} error{'' if count == 1 else 's'} (listed under the editor). "
                            "The rules file keeps its last good version.", title="Rules", severity="error",
                            timeout=8)
            return
        self.saved_text = text
        self.app.notify(f"Saved {len(ruleset.rules)} rules", title="Rules", timeout=4)
        self.dismiss(True)

    def action_insert_recipe(self) -> None:
        from computehub_tui.ui.screens.rules_recipes import RecipeScreen

        def chosen(recipe: Recipe | None) -> None:
            if recipe is not None:
                editor = self.editor
                row, _ = editor.cursor_location
                line = editor.document.get_line(row)
                editor.move_cursor((row, len(line)))  # after the rule the cursor is in, never inside it
                editor.insert(f"\n{recipe.text}" if line else recipe.text)
                editor.focus()

        self.app.push_screen(RecipeScreen(self.source.recipes()), chosen)

    def action_replay(self) -> None:
        """What the rule under the cursor would have done over the stored history (nothing acts)."""
        from computehub_tui.ui.screens.rules_replay import ReplayScreen

        text = self.editor.text
        ruleset = self.ruleset or self.source.check(text)
        row = self.editor.cursor_location[0] + 1
        above = [rule for rule in ruleset.rules if rule.position.line <= row]
        rule = above[-1] if above else (ruleset.rules[0] if ruleset.rules else None)
        if rule is None:
            self.app.notify("No rule to replay: write one first", title="Rules", severity="warning", timeout=4)
            return
        self.app.push_screen(ReplayScreen(self.source, text, rule.name))

    def action_close(self) -> None:
        if not self.unsaved:
            self.dismiss(False)
            return

        def answered(discard: bool | None) -> None:
            if discard:
                self.dismiss(False)

        self.app.push_screen(ConfirmScreen("Discard unsaved edits?",
                                           "The rules file keeps what it had; your edits here are lost.",
                                           yes_label="Discard", danger=True), answered)
