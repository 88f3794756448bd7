"""``computehub-tui config path | show | validate | edit | set``: the config file from the command line."""

from __future__ import annotations

import argparse
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Mapping
from pathlib import Path

from computehub_tui.cli.exits import EXIT_OK, EXIT_USAGE, UsageError
from computehub_tui.cli.output import emit, note, out
from computehub_tui.cli.prompts import confirm_default_yes
from computehub_tui.config import ConfigError, config_file_path, load_config
from computehub_tui.config.editing import set_value, write_atomically
from computehub_tui.config.loader import LEAVES, read_layers, validate
from computehub_tui.config.render import render_example, render_settings, toml_value

FALLBACK_EDITORS = ("nano", "vi")


def config_command(args: argparse.Namespace, environ: Mapping[str, str] | None = None) -> int:
    environ = os.environ if environ is None else environ
    path, named = config_file_path(getattr(args, "config", None), environ)
    flags = getattr(args, "set", None) or []
    command = args.config_command
    if command == "path":
        out(str(path))
        if not path.exists():
            note(f"(it does not exist yet; `computehub-tui config edit` creates it, or write "
                 f"`computehub-tui config show --defaults > {path}`)")
        return EXIT_OK
    if command == "show":
        if args.defaults:
            emit(render_example())
            return EXIT_OK
        config = load_config(path, environ, must_exist=named, flags=flags)
        emit(render_settings(config, config.origin if args.origin else None))
        return EXIT_OK
    if command == "validate":
        return _validate(Path(args.file) if args.file else path, environ, flags,
                         whole=args.file is None, must_exist=named or args.file is not None)
    if command == "set":
        return _set(path, args.key, args.value, environ)
    return _edit(path, environ)


def _validate(path: Path, environ: Mapping[str, str], flags: list[str], *, whole: bool, must_exist: bool) -> int:
    """Every problem, one per line. A named FILE is checked alone; without one, the effective
    configuration (the file, the environment and --set) is."""
    try:
        if whole:
            config = load_config(path, environ, must_exist=must_exist, flags=flags)
        else:
            config = load_config(path, {}, must_exist=True)
    except ConfigError as error:
        for problem in error.problems:
            note(str(problem))
        note(f"{len(error.problems)} problem{'s' if len(error.problems) > 1 else ''}; nothing was changed")
        return EXIT_USAGE
    where = str(path) if path.exists() else f"{path} (no file: the defaults apply)"
    out(f"ok: {where}")
    for gap in config.alert_channel_gaps():
        note(f"warning: {gap}")
    return EXIT_OK


def _set(path: Path, key: str, value: str, environ: Mapping[str, str]) -> int:
    stored = set_value(path, key, value)
    out(f"{key} = {toml_value(LEAVES[key], stored) if not LEAVES[key].is_duration else repr(stored)}  (in {path})")
    variable = LEAVES[key].env
    if environ.get(variable):
        note(f"note: {variable} is set and overrides this value while it is")
    return EXIT_OK


def _edit(path: Path, environ: Mapping[str, str]) -> int:
    """Edit a copy; it replaces the file only once it is valid. An invalid edit is reopened on request,
    never saved; declined, the draft stays next to the file."""
    editor = _editor(environ)
    original = path.read_text(encoding="utf-8") if path.exists() else render_example()
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor, name = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=".toml", dir=path.parent)
    draft = Path(name)
    with os.fdopen(descriptor, "w", encoding="utf-8") as file:
        file.write(original)
    while True:
        _run_editor(editor, draft)
        text = draft.read_text(encoding="utf-8")
        if text == original and path.exists():
            draft.unlink()
            note("no changes")
            return EXIT_OK
        try:
            validate(read_layers(path, {}, text=text), str(path))
        except ConfigError as error:
            for problem in error.problems:
                note(str(problem))
            if sys.stdin.isatty() and confirm_default_yes("The file is not valid and was not saved. Reopen it?"):
                continue
            note(f"not saved; your edit is kept in {draft}")
            return EXIT_USAGE
        write_atomically(path, text)
        draft.unlink()
        out(f"saved {path}")
        return EXIT_OK


def _editor(environ: Mapping[str, str]) -> list[str]:
    for variable in ("VISUAL", "EDITOR"):
        if environ.get(variable, "").strip():
            return shlex.split(environ[variable])
    for name in FALLBACK_EDITORS:
        if shutil.which(name):
            return [name]
    raise UsageError("no editor found: set $EDITOR (e.g. EDITOR=nano)")


def _run_editor(editor: list[str], draft: Path) -> None:
    try:
        result = subprocess.run([*editor, str(draft)], check=False)
    except OSError as error:
        raise UsageError(f"cannot run the editor {editor[0]!r}: {error.strerror or error}") from None
    if result.returncode != 0:
        raise UsageError(f"the editor {editor[0]!r} exited with code {result.returncode}; nothing was saved "
                         f"(your edit is in {draft})")
