"""The one-line header: app name, DEMO badge, provider health chips, automation state, burn rate, spend today."""

from __future__ import annotations

from rich.text import Text
from textual.widget import Widget

from computehub_tui.engine.events import ProviderHealth
from computehub_tui.ui.format import money, rate

_CHIP_STYLE = {
    "ok": "green",
    "waiting": "dim",
    "stale": "yellow",
    "rate-limited": "yellow",
    "circuit-open": "red",
    "auth-error": "bold red",
    "down": "red",
}
NARROW_WIDTH = 110
"""Below this width the header drops the app name and tightens the chips so money stays visible."""
_CHIP_MARK = {"ok": "●", "waiting": "○", "rate-limited": "◐", "stale": "◐"}


class HubHeader(Widget):
    """Repaints only when the engine reports a change; no clock, so it costs nothing when idle."""

    DEFAULT_CSS = """
    HubHeader { height: 1; background: $panel; color: $text; }
    """

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.demo = False
        self.health: list[ProviderHealth] | None = None
        """None until a session is open."""
        self.burn_rate = 0.0
        self.spend_today = 0.0
        self.automation = ""
        """The automation state in words ("automation: this app"); "" where there is no automation."""
        self.automation_paused = False
        self._shown_before: tuple[object, ...] | None = None

    @property
    def status(self) -> str:
        """"connecting…" until every provider has answered or failed once."""
        if self.health is None:
            return "starting…"
        return "connecting…" if any(h.state == "waiting" for h in self.health) else ""

    def update_state(self, *, demo: bool | None = None, health: list[ProviderHealth] | None = None,
                     burn_rate: float | None = None, spend_today: float | None = None,
                     automation: str | None = None, automation_paused: bool | None = None) -> None:
        if demo is not None:
            self.demo = demo
        if health is not None:
            self.health = health
        if burn_rate is not None:
            self.burn_rate = burn_rate
        if spend_today is not None:
            self.spend_today = spend_today
        if automation is not None:
            self.automation = automation
        if automation_paused is not None:
            self.automation_paused = automation_paused
        shown = self._shown()
        if shown != self._shown_before:  # every poll reports health and spend; most change nothing shown
            self._shown_before = shown
            self.refresh()

    def _shown(self) -> tuple[object, ...]:
        chips = tuple((h.provider, h.state) for h in self.health) if self.health is not None else None
        return self.demo, chips, rate(self.burn_rate), money(self.spend_today), self.automation, self.automation_paused

    def render(self) -> Text:
        narrow = self.size.width < NARROW_WIDTH
        text = Text(" ⚡ " if narrow else " ⚡ computehub ", style="bold")
        if self.demo:
            text.append(" DEMO ", style="bold black on yellow")
            text.append(" ")
        for health in self.health or ():
            style = _CHIP_STYLE.get(health.state, "red")
            mark = _CHIP_MARK.get(health.state, "✖")
            text.append(f" {mark}{'' if narrow else ' '}{health.provider}", style=style)
            if health.state not in ("ok", "waiting"):
                text.append(f" {health.state}", style=style)
        if self.status and not narrow:
            text.append(f"  {self.status}", style="dim")
        right = Text()
        right.append("burn ", style="dim")
        right.append(f"{rate(self.burn_rate)}/h", style="bold yellow" if self.burn_rate > 0 else "dim")
        right.append(" today " if narrow else "   today ", style="dim")
        right.append(money(self.spend_today), style="bold")
        right.append(" ")
        self._append_automation(text, self.size.width - text.cell_len - right.cell_len)
        gap = max(1, self.size.width - text.cell_len - right.cell_len)
        text.append(" " * gap)
        text.append_text(right)
        return text

    def _append_automation(self, text: Text, room: int) -> None:
        """Paused always shows (it is why nothing acts); the longer lease line only where it fits."""
        paused = self.automation_paused
        shown = "⏸ paused" if paused and room < len(self.automation) + 3 else self.automation
        if shown and (paused or room >= len(shown) + 3):
            text.append(f"  {shown}", style="bold yellow" if paused else "dim")
