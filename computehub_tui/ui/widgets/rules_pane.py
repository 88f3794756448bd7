"""The Rules pane: the rule list with each rule's state, a preview of the selected rule against the fleet
now, and the keys that open the editor, recipes, the audit log and pending warnings."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import ClassVar

from rich.text import Text
from textual import work
from textual.app import App, ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical, VerticalScroll

from computehub_tui.clock import Clock
from computehub_tui.domain.text import clean_text, show_controls
from computehub_tui.rules.model import Mode, RuleSet, Truth
from computehub_tui.ui.format import age
from computehub_tui.ui.plain import PlainStatic, plain
from computehub_tui.ui.rules_source import PreviewRow, Recipe, RuleRow, RulesSource, automation_line
from computehub_tui.ui.screens.confirm import ConfirmScreen
from computehub_tui.ui.widgets.virtual_table import Cell, Column, VirtualTable

UNAVAILABLE_TEXT = "Automation is not available in this build."
RECIPE_NAMES = "idle stop, crash restart, daily cap, stuck provisioning, spot refill, price-rise migration"
NO_RULES_TEXT = f"No rules yet. Press n to start from a recipe: {RECIPE_NAMES}; or e to write one."
PREVIEW_LINES = 40
"""Instances listed per rule in a preview; the rest are counted."""
EVIDENCE_LIMIT = 160
NOTE_MIN = 16
"""Narrower than this, a rule's note shows only under the table, with the selected rule's preview."""
_TRUTH_MARK = {Truth.TRUE: ("●", "bold green"), Truth.UNKNOWN: ("?", "yellow"), Truth.FALSE: ("○", "dim")}
_TRUTH_ORDER = {Truth.TRUE: 0, Truth.UNKNOWN: 1, Truth.FALSE: 2}


def evidence_text(evidence: Sequence[tuple[str, str]]) -> str:
    return clean_text(", ".join(f"{field}={seen}" for field, seen in evidence), EVIDENCE_LIMIT)


def preview_text(rows: Sequence[PreviewRow], rule_names: Sequence[str]) -> Text:
    """For each rule, which instances match now (with the values) and, for the others, why not. Every
    label, value and reason is plain text: they quote provider data."""
    text = Text()
    for name in rule_names:
        mine = sorted((row for row in rows if row.rule == name),
                      key=lambda row: (_TRUTH_ORDER[row.truth], row.instance_key))
        matching = sum(1 for row in mine if row.truth is Truth.TRUE)
        text.append_text(plain(name, style="bold", limit=60))
        text.append(f"  matches {matching} of {len(mine)} now\n" if mine else "  nothing to evaluate now\n",
                    style="dim")
        for row in mine[:PREVIEW_LINES]:
            mark, style = _TRUTH_MARK[row.truth]
            text.append(f"  {mark} ", style=style)
            text.append_text(plain(row.instance_key or "account", style="bold", limit=60))
            if row.label:
                text.append("  ")
                text.append_text(plain(row.label, limit=40))
            text.append("  ")
            detail = evidence_text(row.evidence)
            if row.truth is not Truth.TRUE and row.reason:
                # The evaluator's reason often quotes the very value the evidence holds: say it once.
                extra = evidence_text(tuple(pair for pair in row.evidence if pair[1] not in row.reason))
                detail = f"{row.truth.value}: {clean_text(row.reason, EVIDENCE_LIMIT)}" + (
                    f" ({extra})" if extra else "")
            text.append(detail or row.truth.value, style=style if row.truth is not Truth.TRUE else "")
            text.append("\n")
        if len(mine) > PREVIEW_LINES:
            text.append(f"  … and {len(mine) - PREVIEW_LINES} more\n", style="dim")
    text.rstrip()
    return text

EXCERPT = 60
"""Characters of an erring line shown around its error: the caret line fits an 80-column terminal."""


def check_text(ruleset: RuleSet, unconfigured: Sequence[tuple[str, str]] = ()) -> Text:
    """Every error of a check with its line, column and caret; or how many rules it found, and each ``notify``
    to a channel that is not set up (``unconfigured``: rule, channel)."""
    if ruleset.ok:
        count = len(ruleset.rules)
        text = Text(f"✓ valid: {count} rule{'' if count == 1 else 's'}", style="green")
        for rule, channel in unconfigured:
            text.append(f"\n⚠ {show_controls(rule)} notifies {channel}, which is not set up (Settings → Notifications)",
                        style="yellow")
        return text
    text = Text()
    text.append(f"✖ {len(ruleset.errors)} error{'' if len(ruleset.errors) == 1 else 's'} (not saved)", style="bold red")
    for error in ruleset.errors:
        where, source_line, caret = show_controls(error.render()).split("\n", 2)
        excerpt, at = _excerpt(source_line[2:], max(0, caret.find("^") - 2))
        text.append(f"\n{where}", style="red")
        text.append(f"\n  {excerpt}")
        text.append(f"\n  {' ' * at}^", style="bold red")
    return text


def _excerpt(line: str, at: int) -> tuple[str, int]:
    """At most EXCERPT characters of ``line`` around column ``at`` (0-based), and where ``at`` falls in them:
    a long line would wrap on a narrow terminal and leave the caret under the wrong character."""
    if len(line) <= EXCERPT:
        return line, at
    start = max(0, min(at - EXCERPT // 2, len(line) - EXCERPT))
    end = start + EXCERPT
    shown = ("…" if start else "") + line[start:end] + ("…" if end < len(line) else "")
    return shown, at - start + (1 if start else 0)


async def applied(app: App[object], change: Awaitable[None], done: str) -> bool:
    """Await a change through the source and say how it went; False (and an error toast) if it failed."""
    try:
        await change
    except Exception as error:  # noqa: BLE001 - shown to the user; the app keeps running
        app.notify(clean_text(str(error), 300) or type(error).__name__, title="Rules", severity="error", timeout=10)
        return False
    app.notify(clean_text(done, 300), title="Rules", timeout=4)
    return True


def rule_columns(now: Callable[[], float], width: int) -> list[Column[RuleRow]]:
    """The columns for a table ``width`` cells wide: the note takes what is left, or goes below NOTE_MIN."""
    def last_fired(row: RuleRow) -> Cell:
        if row.last_fired_at is None:
            return "never", "dim"
        return f"{age(now() - row.last_fired_at)} ago", None

    columns = [
        Column("name", "RULE", 28, lambda row: (row.name, "bold")),
        Column("enabled", "STATE", 6, lambda row: ("on", "green") if row.enabled else ("off", "dim")),
        Column("mode", "MODE", 8, lambda row: (row.mode.value, "yellow" if row.mode is Mode.DRY_RUN else None)),
        Column("last", "LAST FIRED", 10, last_fired, align="right"),
        Column("count", "FIRED", 6, lambda row: (str(row.fire_count), None), align="right"),
    ]
    room = width - sum(column.width + 1 for column in columns) - 1
    if room >= NOTE_MIN:
        columns.append(Column("problem", "NOTE", room, lambda row: (row.problem, "red")))
    return columns


class RulesPane(Vertical):
    """Reads the source's snapshots on reload; every change goes through the source and then reloads."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("e", "edit", "Edit"),
        Binding("n", "new_from_recipe", "Recipe"),
        Binding("space", "toggle_enabled", "On/off"),
        Binding("t", "toggle_dry_run", "Dry-run"),
        # The key works everywhere (an App binding); the footer shows it where the rules are in view.
        Binding("exclamation_mark", "app.toggle_automation", "Pause all", key_display="!"),
        Binding("d", "delete", "Delete"),
        Binding("a", "audit", "Audit"),
        Binding("w", "pending", "Warnings"),
    ]
    DEFAULT_CSS = """
    RulesPane { height: 1fr; }
    RulesPane #rules-status { height: auto; max-height: 2; padding: 0 1; background: $panel-darken-1; }
    RulesPane #rules-table { height: 1fr; min-height: 4; }
    RulesPane #rules-preview-box { height: 1fr; max-height: 50%; background: $panel-darken-1; padding: 0 1; }
    """

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.source: RulesSource | None = None
        self.clock: Clock | None = None
        self.render_now = 0.0

    def compose(self) -> ComposeResult:
        yield PlainStatic("", id="rules-status")
        self.table: VirtualTable[RuleRow] = VirtualTable(rule_columns(self._now, 80),
                                                         row_key=lambda row: row.name,
                                                         empty_text=UNAVAILABLE_TEXT, id="rules-table")
        yield self.table
        with VerticalScroll(id="rules-preview-box"):
            yield PlainStatic("", id="rules-preview")

    def _now(self) -> float:
        return self.render_now

    def on_resize(self) -> None:
        columns = rule_columns(self._now, self.table.size.width - self.table.styles.scrollbar_size_vertical)
        if [(c.key, c.width) for c in columns] != [(c.key, c.width) for c in self.table.columns]:
            self.table.set_columns(columns)

    def attach(self, source: RulesSource | None, clock: Clock) -> None:
        self.source, self.clock = source, clock
        self.reload()

    @property
    def current(self) -> RuleRow | None:
        return self.table.current_row

    def reload(self) -> None:
        """Re-read the rules and their state, and preview the selected rule against the fleet now."""
        if self.clock is not None:
            self.render_now = self.clock.now()
        source = self.source
        if source is None:
            self.table.empty_text = UNAVAILABLE_TEXT
            self.table.set_rows([])
            self._show_status(UNAVAILABLE_TEXT)
            return
        rows = list(source.rows())
        self.table.empty_text = NO_RULES_TEXT
        self.table.set_rows(rows)
        enabled = sum(1 for row in rows if row.enabled)
        pending = len(source.pending())
        status = f"{automation_line(source)} · {len(rows)} rules, {enabled} enabled"
        if pending:
            status += f" · {pending} pending warning{'' if pending == 1 else 's'} (w)"
        self._show_status(status)
        self._preview_current()

    def _show_status(self, status: str) -> None:
        self.query_one("#rules-status", PlainStatic).update(status)

    def on_virtual_table_cursor_moved(self, message: VirtualTable.CursorMoved) -> None:
        if message.table is self.table:
            self._preview_current()

    def on_virtual_table_activated(self, message: VirtualTable.Activated) -> None:
        if message.table is self.table:
            self.action_edit()

    def _preview_current(self) -> None:
        row = self.current
        if row is None or self.source is None:
            self.query_one("#rules-preview", PlainStatic).update("")
            return
        self._load_preview(row)

    @work(group="rules-preview", exclusive=True, exit_on_error=False)
    async def _load_preview(self, row: RuleRow) -> None:
        assert self.source is not None
        body = preview_text(await self.source.preview(row.text), [row.name])
        if row.problem:
            body.append("\n")
            body.append_text(plain(row.problem, style="red", limit=300))
        self.query_one("#rules-preview", PlainStatic).update(body)

    # -- keys -------------------------------------------------------------------------------

    def action_toggle_enabled(self) -> None:
        row = self.current
        if row is not None and self.source is not None:
            self._change(self.source.set_enabled(row.name, not row.enabled),
                         f"{row.name} {'disabled' if row.enabled else 'enabled'}")

    def action_toggle_dry_run(self) -> None:
        row = self.current
        if row is not None and self.source is not None:
            mode = Mode.LIVE if row.mode is Mode.DRY_RUN else Mode.DRY_RUN
            self._change(self.source.set_mode(row.name, mode), f"{row.name} now runs {mode.value}")

    def action_delete(self) -> None:
        row = self.current
        source = self.source
        if row is None or source is None:
            return

        def answered(yes: bool | None) -> None:
            if yes:
                self._change(source.delete(row.name), f"{row.name} deleted from the rules file")

        body = Text("It is removed from the rules file, with its state. The audit log keeps its firings.\n\n")
        body.append(show_controls(row.text))
        self.app.push_screen(ConfirmScreen(Text(f"Delete the rule {clean_text(row.name, 60)}?"), body,
                                           yes_label="Delete", danger=True), answered)

    @work(group="rules-change", exit_on_error=False)
    async def _change(self, change: Awaitable[None], done: str) -> None:
        if await applied(self.app, change, done):
            self.reload()

    def action_edit(self) -> None:
        if self.source is not None:
            row = self.current
            text = self._file_text(self.source)
            if text is not None:
                self.open_editor(text, row.text if row is not None else "")

    def _file_text(self, source: RulesSource) -> str | None:
        """The rules file, or None (and why, in a toast) when it cannot be read: editing an empty stand-in
        would then save over what the file holds."""
        try:
            return source.file_text()
        except OSError as error:
            self.app.notify(clean_text(str(error), 300), title="Rules file not readable", severity="error",
                            timeout=10, markup=False)
            return None

    def action_new_from_recipe(self) -> None:
        from computehub_tui.ui.screens.rules_recipes import RecipeScreen

        source = self.source
        if source is None:
            return

        def chosen(recipe: Recipe | None) -> None:
            text = None if recipe is None else self._file_text(source)
            if recipe is not None and text is not None:
                joined = f"{text.rstrip()}\n\n{recipe.text}" if text.strip() else recipe.text
                self.open_editor(joined, recipe.text)

        self.app.push_screen(RecipeScreen(source.recipes()), chosen)

    def open_editor(self, text: str, focus_on: str) -> None:
        """The editor on the whole rules file, the cursor on ``focus_on``'s first line when it is there."""
        from computehub_tui.ui.screens.rules_editor import RuleEditorScreen

        if self.source is None:
            return
        line = text[:text.find(focus_on)].count("\n") if focus_on and focus_on in text else 0

        def closed(saved: bool | None) -> None:
            if saved:
                self.reload()

        self.app.push_screen(RuleEditorScreen(self.source, text, cursor_line=line), closed)

    def action_audit(self) -> None:
        from computehub_tui.ui.screens.rules_audit import AuditScreen

        if self.source is not None:
            self.app.push_screen(AuditScreen(self.source))

    def action_pending(self) -> None:
        from computehub_tui.ui.screens.rules_pending import PendingScreen

        if self.source is not None and self.clock is not None:
            self.app.push_screen(PendingScreen(self.source, self.clock), lambda _: self.reload())
