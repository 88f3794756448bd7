"""Changing one setting in the user's file without touching anything else: comments, order and
formatting stay byte for byte; an invalid result is never written."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

import tomlkit
from tomlkit.items import Table

from computehub_tui.config.loader import (
    LEAVES,
    ConfigError,
    Problem,
    _typed_text,
    _unknown,
    read_layers,
    validate,
    value_at,
)


def set_value(path: Path, key: str, value: Any) -> Any:
    """Write ``key = value`` into ``path`` (created if missing) and return the value as stored.

    ``value`` may be text as a user types it (``"10"``, ``"2d"``, ``"true"``): it is read with the
    setting's own type. The whole file is validated before anything is written."""
    leaf = LEAVES.get(key)
    if leaf is None:
        raise ConfigError([Problem(str(path), key, _unknown(key))])
    problems: list[Problem] = []
    typed = _typed_text(leaf, value, f"{key} = {value}", problems) if isinstance(value, str) else value
    if problems:
        raise ConfigError(problems)
    stored = typed if leaf.is_duration or leaf.is_table else _validated(key, typed, str(path))
    if isinstance(stored, float) and stored.is_integer() and isinstance(value, str) and value.strip().isdigit():
        stored = int(stored)  # "10" stays 10 in the file, not 10.0
    old_text = path.read_text(encoding="utf-8") if path.exists() else ""
    document = tomlkit.parse(old_text)
    _assign(document, key.split("."), stored)
    new_text = _space_new_tables(tomlkit.dumps(document), old_text)
    validate(read_layers(path, {}, text=new_text), str(path))
    write_atomically(path, new_text)
    return stored


def remove_table(path: Path, key: str) -> bool:
    """Remove table ``key`` (e.g. ``alerts.webhook``) from ``path``, keeping the rest byte for byte; False when the
    file has no such table."""
    if not path.exists():
        return False
    document = tomlkit.parse(path.read_text(encoding="utf-8"))
    node: Any = document
    parts = key.split(".")
    for part in parts[:-1]:
        if part not in node or not isinstance(node[part], Table | dict):
            return False
        node = node[part]
    if parts[-1] not in node:
        return False
    del node[parts[-1]]
    new_text = tomlkit.dumps(document)
    validate(read_layers(path, {}, text=new_text), str(path))
    write_atomically(path, new_text)
    return True


def _validated(key: str, value: Any, where: str) -> Any:
    """``value`` as the setting's type holds it ("10" → 10 for a whole number, "yes" → True)."""
    try:
        return value_at(validate(read_layers(None, {}, [f"{key}={value}"]), where), key)
    except ConfigError as error:
        raise ConfigError([Problem(where, problem.key, problem.message) for problem in error.problems]) from None


def _assign(document: tomlkit.TOMLDocument, parts: list[str], value: Any) -> None:
    node: Any = document
    for depth, part in enumerate(parts[:-1]):
        if part not in node:
            # A table that only holds tables (``providers``) is written as ``[providers.vast]``.
            node.add(part, tomlkit.table(is_super_table=depth < len(parts) - 2))
        node = node[part]
        if not isinstance(node, Table | dict):
            raise ConfigError([Problem("config file", ".".join(parts[: depth + 1]), "is a value, not a table")])
    item: Any = tomlkit.inline_table() if isinstance(value, dict) else value
    if isinstance(value, dict):
        item.update(value)
    node[parts[-1]] = item


def _space_new_tables(text: str, old_text: str) -> str:
    """A [table] starts after a blank line where this edit created it, or where the user had one
    before it: inserting a table must not glue the next one to it. Other lines stay as they were."""
    old_lines = old_text.splitlines()
    spaced_before = {line.strip(): index == 0 or not old_lines[index - 1].strip()
                     for index, line in enumerate(old_lines) if line.lstrip().startswith("[")}
    result: list[str] = []
    for line in text.splitlines(keepends=True):
        header = line.strip()
        if header.startswith("[") and spaced_before.get(header, True) and result and result[-1].strip():
            result.append("\n")
        result.append(line)
    return "".join(result)


def write_atomically(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    mode = path.stat().st_mode & 0o777 if path.exists() else 0o644
    descriptor, temporary = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(descriptor, "w", encoding="utf-8") as file:
            file.write(text)
            file.flush()
            os.fsync(file.fileno())
        os.chmod(temporary, mode)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
