"""Borderless fields and buttons on short terminals, so a dialog's controls fit without scrolling."""

from __future__ import annotations

from typing import Any

from textual.screen import Screen
from textual.widgets import Button, Input, Select

COMPACT_BELOW_ROWS = 36
"""A bordered field or button takes three rows; below this terminal height each takes one."""


def fit_to_height(screen: Screen[Any]) -> None:
    """Call on every resize: ``screen`` gets the ``-compact`` class and borderless controls when short."""
    compact = screen.size.height < COMPACT_BELOW_ROWS
    screen.set_class(compact, "-compact")
    for control in screen.query("Input, Select, Button").results():
        if isinstance(control, (Input, Select, Button)):
            control.compact = compact
