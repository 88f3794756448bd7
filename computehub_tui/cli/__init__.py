"""Command line: start the TUI, or run one scriptable command (offers, instances, keys, actions)."""

from __future__ import annotations

from computehub_tui.cli.entry import main
from computehub_tui.cli.parser import build_parser

__all__ = ["build_parser", "main"]
