"""Settings written out as TOML: the effective values (with where each came from) or a complete,
commented example of every key at its default."""

from __future__ import annotations

from collections.abc import Callable
from itertools import groupby
from typing import Any

import tomlkit

from computehub_tui.config.durations import format_duration
from computehub_tui.config.loader import LEAVES, Leaf, Origin, type_name, value_at
from computehub_tui.config.schema import Settings

EXAMPLE_HEADER = """\
# computehub-tui configuration. Every key is optional: the values below are the defaults.
# Where it is read from: --config FILE, else $COMPUTEHUB_CONFIG, else the user config dir.
# Every key can also be set in the environment as COMPUTEHUB_<SECTION>_<KEY>
# (e.g. COMPUTEHUB_POLL_INSTANCES_S=10, COMPUTEHUB_PROVIDERS_VAST_URL=http://127.0.0.1:9000)
# or for one run with --set KEY=VALUE (e.g. --set poll.instances_s=10).
# Precedence: --set flag > environment > this file > default.
# Secrets never go in this file: API keys live in the vault (`computehub-tui keys set vast`),
# in the provider's environment variable, or behind api_key_file / api_key_command.
"""


def render_settings(settings: Settings, origin: Callable[[str], Origin] | None = None) -> str:
    """Every effective value as TOML; with ``origin``, each line says where its value came from."""
    lines: list[str] = []
    for table, group in _tables():
        lines.append(f"[{table}]")
        for leaf in group:
            line = f"{_name(leaf)} = {toml_value(leaf, value_at(settings, leaf.key))}"
            if origin is not None:
                line = f"{line:<48} # {origin(leaf.key)}"
            lines.append(line)
        lines.append("")
    return "\n".join(lines)


def render_example() -> str:
    """A complete config file: every key at its default, with what it means and its variable."""
    defaults = Settings()
    lines = [EXAMPLE_HEADER]
    for table, group in _tables():
        lines.append(f"[{table}]")
        for leaf in group:
            lines.append(f"# {leaf.field.description or type_name(leaf)}  ({leaf.env})")
            lines.append(f"{_name(leaf)} = {toml_value(leaf, value_at(defaults, leaf.key))}")
        lines.append("")
    return "\n".join(lines)


def toml_value(leaf: Leaf, value: Any) -> str:
    """``value`` as TOML source: durations as their text ("90d"), whole floats without ".0"."""
    if leaf.is_duration:
        return f'"{format_duration(value)}"'
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, dict):
        table = tomlkit.inline_table()
        table.update(value)
        return table.as_string()
    return tomlkit.item(value).as_string()


def _tables() -> list[tuple[str, list[Leaf]]]:
    return [(table, list(group)) for table, group in groupby(LEAVES.values(), key=lambda l: l.key.rpartition(".")[0])]


def _name(leaf: Leaf) -> str:
    return leaf.key.rpartition(".")[2]
