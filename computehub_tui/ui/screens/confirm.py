"""A yes/no dialog for destructive or billing-relevant actions, and the body that explains an action plan."""

from __future__ import annotations

from typing import ClassVar

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Button

from computehub_tui.engine.policy import ActionPlan
from computehub_tui.ui.format import rate
from computehub_tui.ui.plain import PlainStatic, plain

LISTED_TARGETS = 12
"""Beyond this many instances the dialog says how many more, so it stays readable."""


class ConfirmScreen(ModalScreen[bool]):
    """Dismisses with True only on an explicit yes. Title and body are plain text, never markup;
    the body scrolls so the buttons stay on screen at any terminal size."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("y", "answer(True)", "Yes"),
        Binding("n,escape", "answer(False)", "No"),
    ]

    DEFAULT_CSS = """
    ConfirmScreen { align: center middle; }
    ConfirmScreen > Vertical { width: 76; max-width: 100%; height: auto; max-height: 100%; border: thick $warning;
                               background: $surface; padding: 0 2; }
    ConfirmScreen #confirm-title { dock: top; text-style: bold; padding: 1 0; }
    ConfirmScreen #confirm-scroll { height: auto; max-height: 1fr; }
    ConfirmScreen #confirm-buttons { dock: bottom; height: auto; align: right middle; padding-bottom: 1; }
    ConfirmScreen Button { margin-left: 2; }
    """

    def __init__(self, title: str | Text, body: str | Text, *, yes_label: str = "Yes", danger: bool = False) -> None:
        super().__init__()
        self.title_text = str(title)
        self.body = str(body)
        self._title_content = title
        self._body_content = body
        self.yes_label = yes_label
        self.danger = danger

    def compose(self) -> ComposeResult:
        with Vertical():
            yield PlainStatic(self._title_content, id="confirm-title")
            with VerticalScroll(id="confirm-scroll"):
                yield PlainStatic(self._body_content, id="confirm-body")
            with Horizontal(id="confirm-buttons"):
                yield Button("No (n)", id="no")
                yield Button(f"{self.yes_label} (y)", id="yes", variant="error" if self.danger else "primary")

    def on_mount(self) -> None:
        self.query_one("#no", Button).focus()

    def action_answer(self, answer: bool) -> None:
        self.dismiss(answer)

    def on_button_pressed(self, event: Button.Pressed) -> None:
        self.dismiss(event.button.id == "yes")


def plan_confirmation(plan: ActionPlan) -> ConfirmScreen:
    """The dialog for an action plan: every target, what is skipped and why, caveats, what starts billing."""
    body = Text()
    for instance in plan.targets[:LISTED_TARGETS]:
        body.append(f"  {instance.key}  ", style="bold")
        body.append_text(plain(instance.label or "-", limit=40))
        body.append("  ")
        body.append_text(plain(f"{instance.gpu_count}x {instance.gpu}", limit=40))
        body.append(f"  {rate(instance.current_price_hour)}/h now\n", style="dim")
    if len(plan.targets) > LISTED_TARGETS:
        body.append(f"  … and {len(plan.targets) - LISTED_TARGETS} more\n", style="dim")
    if plan.skipped:
        body.append(f"\nSkipped ({len(plan.skipped)}), nothing is sent for these:\n", style="bold")
        for skipped in plan.skipped[:LISTED_TARGETS]:
            body.append(f"  {skipped.instance.key}  ", style="dim")
            body.append_text(plain(skipped.reason, style="dim"))
            body.append("\n")
        if len(plan.skipped) > LISTED_TARGETS:
            body.append(f"  … and {len(plan.skipped) - LISTED_TARGETS} more\n", style="dim")
    if plan.caveats:
        body.append("\n")
        for caveat in plan.caveats:
            body.append_text(plain(f"⚠ {caveat}", style="yellow"))
            body.append("\n")
    if plan.starts_billing_hour > 0:
        body.append(f"\nStarts billing {rate(plan.starts_billing_hour)}/h "
                    f"(≈ ${plan.starts_billing_hour * 24:,.2f}/day) once running.\n", style="bold yellow")
    if plan.destroys:
        body.append("\nDestroy deletes the machine and its disk for good.\n", style="bold red")
    body.rstrip()
    action = plan.action.capitalize()
    return ConfirmScreen(f"{plan.summary()}?", body, yes_label=action, danger=plan.destroys)
