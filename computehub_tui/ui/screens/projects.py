"""Project dialogs: put instances in a project (the name checked on Enter), and pick a project to filter by."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Input, OptionList
from textual.widgets.option_list import Option

from computehub_tui.domain.projects import ProjectNameError, project_name
from computehub_tui.ui.plain import PlainStatic, plain

NO_PROJECT_TEXT = "(no project)"


@dataclass(frozen=True, slots=True)
class ProjectFilter:
    """Show only the instances in ``project`` (None: those in no project)."""

    project: str | None


@dataclass(frozen=True, slots=True)
class FilterPick:
    """What the filter dialog chose: a filter, or None to show every project again."""

    filter: ProjectFilter | None


_DIALOG_CSS = """
{screen} {{ align: center middle; }}
{screen} > Vertical {{ width: 100%; max-width: 70; height: auto; max-height: 100%; border: thick $accent;
                      background: $surface; padding: 1 2; }}
{screen} .title {{ text-style: bold; }}
{screen} .hint {{ color: $text-muted; margin-bottom: 1; }}
{screen} .error {{ color: $error; height: auto; }}
{screen} OptionList {{ height: auto; max-height: 12; }}
"""


class ProjectScreen(ModalScreen[str | None]):
    """Dismisses with the project name (folded by the domain rule), "" to clear the set project, or None."""

    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "cancel", "Cancel"),
                                             Binding("ctrl+c", "cancel", "Cancel", priority=True)]
    DEFAULT_CSS = _DIALOG_CSS.format(screen="ProjectScreen")

    def __init__(self, what: str, current: str, fallback: str) -> None:
        """``what`` names the targets ("vast:123 (llama-finetune)", "3 marked instances"); ``current`` is
        their set project ("" if none); ``fallback`` says what clearing returns to."""
        super().__init__()
        self.what = what
        self.current = current
        self.fallback = fallback

    def compose(self) -> ComposeResult:
        with Vertical():
            yield PlainStatic(Text.assemble("Project of ", plain(self.what, limit=120)), classes="title")
            yield PlainStatic(f"a-z, 0-9, '.', '_' and '-'; Enter saves, empty clears it ({self.fallback}), "
                              "esc cancels", classes="hint")
            yield Input(self.current, placeholder="project name, e.g. llm-train", id="project-input")
            yield PlainStatic("", id="project-error", classes="error")

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        if not event.value.strip():
            self.dismiss("")
            return
        try:
            self.dismiss(project_name(event.value))
        except ProjectNameError as error:
            self.query_one("#project-error", PlainStatic).update(f"✖ {error}")

    def action_cancel(self) -> None:
        self.dismiss(None)


class ProjectFilterScreen(ModalScreen[FilterPick | None]):
    """The projects present to pick from (↑↓ Enter), or a name typed; dismisses with None when cancelled."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "cancel", "Cancel"), Binding("ctrl+c", "cancel", "Cancel", priority=True),
        Binding("up", "move(-1)", "Previous", show=False), Binding("down", "move(1)", "Next", show=False),
    ]
    DEFAULT_CSS = _DIALOG_CSS.format(screen="ProjectFilterScreen")

    def __init__(self, present: Sequence[tuple[str | None, int]], active: ProjectFilter | None) -> None:
        """``present``: each project on show (None: no project) and how many instances it holds."""
        super().__init__()
        self.active = active
        self.choices: list[tuple[FilterPick, Text]] = [
            (FilterPick(ProjectFilter(project)),
             Text.assemble(plain(project or NO_PROJECT_TEXT, style="bold"),
                           (f"  {count} instance{'s' if count != 1 else ''}", "dim")))
            for project, count in present]
        if active is not None:
            self.choices.append((FilterPick(None), Text("every project (clear the filter)", style="italic")))

    def compose(self) -> ComposeResult:
        with Vertical():
            yield PlainStatic("Filter instances by project", classes="title")
            yield PlainStatic("↑↓ and Enter pick one, or type a project name; esc cancels", classes="hint")
            yield Input(placeholder="project name", id="project-filter-input")
            yield OptionList(*(Option(label) for _, label in self.choices), id="project-filter-options")
            yield PlainStatic("", id="project-filter-error", classes="error")

    def on_mount(self) -> None:
        options = self.query_one(OptionList)
        active = next((n for n, (pick, _) in enumerate(self.choices) if pick.filter == self.active), 0)
        options.highlighted = active if self.choices else None
        self.query_one(Input).focus()

    def action_move(self, step: int) -> None:
        options = self.query_one(OptionList)
        if self.choices:
            options.highlighted = ((options.highlighted or 0) + step) % len(self.choices)

    @on(Input.Submitted)
    def _typed(self, event: Input.Submitted) -> None:
        event.stop()
        if event.value.strip():
            try:
                self.dismiss(FilterPick(ProjectFilter(project_name(event.value))))
            except ProjectNameError as error:
                self.query_one("#project-filter-error", PlainStatic).update(f"✖ {error}")
            return
        highlighted = self.query_one(OptionList).highlighted
        if highlighted is not None:
            self.dismiss(self.choices[highlighted][0])

    @on(OptionList.OptionSelected)
    def _picked(self, event: OptionList.OptionSelected) -> None:
        self.dismiss(self.choices[event.option_index][0])

    def action_cancel(self) -> None:
        self.dismiss(None)
