"""Pick a ready-made rule (idle stop, crash restart, daily cap, ...) to insert into the rules file."""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import OptionList
from textual.widgets.option_list import Option

from computehub_tui.domain.text import show_controls
from computehub_tui.ui.plain import PlainStatic, plain
from computehub_tui.ui.rules_source import Recipe


class RecipeScreen(ModalScreen[Recipe | None]):
    """Each recipe with what it does and its rule text; Enter picks one, esc picks none."""

    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape,q", "cancel", "Cancel")]
    DEFAULT_CSS = """
    RecipeScreen { align: center middle; }
    RecipeScreen > Vertical { width: 100; max-width: 100%; height: auto; max-height: 100%; border: thick $accent;
                              background: $surface; padding: 0 1; }
    RecipeScreen .title { text-style: bold; }
    RecipeScreen .hint { color: $text-muted; }
    RecipeScreen OptionList { height: auto; max-height: 1fr; }
    """

    def __init__(self, recipes: Sequence[Recipe]) -> None:
        super().__init__()
        self.recipes = list(recipes)

    def compose(self) -> ComposeResult:
        with Vertical():
            yield PlainStatic("Start from a recipe", classes="title")
            yield PlainStatic("↑↓ and Enter insert one into the editor; edit it there before saving. esc cancels",
                              classes="hint")
            yield OptionList(*(Option(self._option(recipe)) for recipe in self.recipes), id="recipe-options")

    @staticmethod
    def _option(recipe: Recipe) -> Text:
        return Text.assemble(plain(recipe.title, style="bold"), "\n", plain(recipe.description, style="dim",
                                                                           limit=300),
                             "\n", (show_controls(recipe.text), "cyan"))

    def on_mount(self) -> None:
        self.query_one(OptionList).focus()

    @on(OptionList.OptionSelected)
    def _picked(self, event: OptionList.OptionSelected) -> None:
        self.dismiss(self.recipes[event.option_index])

    def action_cancel(self) -> None:
        self.dismiss(None)
