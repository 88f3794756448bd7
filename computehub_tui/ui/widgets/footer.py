"""The key footer, rebuilt only when the keys it shows change."""

from __future__ import annotations

from typing import Any

from textual.screen import Screen
from textual.widgets import Footer

Shown = tuple[tuple[str, str, str, bool], ...]


def shown_bindings(screen: Screen[Any]) -> Shown:
    """What a footer on ``screen`` would show: each visible binding's key, action, text and state."""
    return tuple((binding.key, binding.action, binding.description, enabled)
                 for _, binding, enabled, _ in screen.active_bindings.values() if binding.show)


class HubFooter(Footer):
    """Textual's Footer rebuilds all its keys on every binding refresh (each focus move, the app
    gaining focus, a screen resuming): in Textual 8.2, eight rebuilds of some twenty keys before
    the first offers are painted. This one skips a refresh that would show the same keys."""

    def __init__(self) -> None:
        super().__init__()
        self._composed_for: Shown | None = None

    def bindings_changed(self, screen: Screen[Any]) -> None:
        shown = shown_bindings(screen)
        if shown == self._composed_for:
            return
        if screen.app.app_focus and self.is_attached and screen is self.screen:
            self._composed_for = shown  # Footer recomposes exactly in this case
        super().bindings_changed(screen)
