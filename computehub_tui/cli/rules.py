"""The ``rules`` commands: check a rule file, list, import, export, switch rules, pause and resume automation."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Collection
from pathlib import Path
from typing import TYPE_CHECKING

from computehub_tui.cli.exits import EXIT_OK, EXIT_USAGE, CommandFailed, UsageError
from computehub_tui.cli.output import Column, emit, note, out, print_json, table
from computehub_tui.domain.models import iso_utc
from computehub_tui.notify.channels import HOW_TO_CONFIGURE, unconfigured
from computehub_tui.rules.fields import nearest
from computehub_tui.rules.model import Mode, RuleSet
from computehub_tui.wiring import Session

if TYPE_CHECKING:
    from computehub_tui.engine.automation.service import RulesService

RULE_COLUMNS = (Column("NAME", 40), Column("ENABLED"), Column("MODE"), Column("LAST FIRED"), Column("FIRES", right=True))
MAX_RULE_FILE_BYTES = 2_000_000
"""Bigger than any hand-written rule file; the parser has its own, smaller bound on what it reads."""


def check_file(path: Path, configured: Collection[str] | None = None) -> int:
    """``rules check FILE``: 0 and a summary, or 2 with every error (line, column, caret), on stderr. With the
    ``configured`` alert channels, a rule that notifies another channel is warned of."""
    from computehub_tui.rules.parser import parse_rules  # deferred: lark is not imported for other commands

    rule_set = parse_rules(read_text(path))
    if not rule_set.ok:
        print_errors(path, rule_set)
        return EXIT_USAGE
    out(f"{path}: ok, {_count(len(rule_set.rules))}")
    if configured is not None:
        for rule, channel in unconfigured(rule_set.notified_channels(), configured):
            note(f"warning: rule {rule} notifies {channel}, which is not configured: {HOW_TO_CONFIGURE[channel]} "
                 "(until then the message shows only in the app)")
    return EXIT_OK


async def rules(args: argparse.Namespace, session: Session) -> int:
    service = session.hub.rules
    await service.runner.load()
    command = args.rules_command
    if command == "import":
        return _import(args.file, service)
    if command == "export":
        return _export(service)
    if command in ("pause", "resume"):
        return await _pause(command, args, service)
    path = _rules_path(service)
    loaded = service.load_file()
    if not loaded.ok:
        raise CommandFailed(f"{path}: has errors; fix them first (see `computehub-tui rules check {path}`)")
    if command == "list":
        return _list(args, service, path)
    return await _switch(command, args.name, service, path)


def _list(args: argparse.Namespace, service: RulesService, path: Path) -> int:
    listing = service.listing()
    if args.json:
        print_json([{"name": r.name, "enabled": r.enabled, "mode": r.mode.value,
                     "last_fired": None if r.last_fired is None else iso_utc(r.last_fired),
                     "fire_count": r.fire_count, "text": r.text} for r in listing])
        return EXIT_OK
    if not listing:
        note(f"(no rules in {path}; start from `computehub-tui rules import FILE`)")
        return EXIT_OK
    rows = [[r.name, "yes" if r.enabled else "no", r.mode.value,
             "never" if r.last_fired is None else iso_utc(r.last_fired), str(r.fire_count)] for r in listing]
    for line in table(RULE_COLUMNS, rows):
        out(line)
    if service.paused:
        note(f"automation is paused: {service.pause_reason} (`computehub-tui rules resume`)")
    return EXIT_OK


async def _switch(command: str, name: str, service: RulesService, path: Path) -> int:
    names = [rule.name for rule in service.rule_set.rules]
    if name not in names:
        close = nearest(name, names)
        hint = f"; did you mean {close!r}?" if close else (f" (its rules: {', '.join(names[:10])})" if names else "")
        raise UsageError(f"no rule named {name!r} in {path}{hint}")
    if command in ("enable", "disable"):
        await service.set_enabled(name, command == "enable")
        out(f"{name}: {command}d")
    else:
        await service.set_mode(name, Mode.DRY_RUN if command == "dry-run" else Mode.LIVE)
        out(f"{name}: {'dry-run (logs and alerts what it would do)' if command == 'dry-run' else 'live'}")
    return EXIT_OK


async def _pause(command: str, args: argparse.Namespace, service: RulesService) -> int:
    if command == "pause":
        await service.pause(args.reason or "paused from the command line")
        out("automation paused: no rule acts until `computehub-tui rules resume` (every process)")
    else:
        await service.resume()
        out("automation resumed")
    return EXIT_OK


def _import(path: Path, service: RulesService) -> int:
    text = read_text(path)
    rule_set = service.parse(text)
    if not rule_set.ok:
        print_errors(path, rule_set)
        note("nothing was imported")
        return EXIT_USAGE
    target = _rules_path(service)
    try:
        service.save(text, target, parsed=rule_set)
    except OSError as error:
        raise CommandFailed(f"{target}: cannot write it ({error.strerror or error})") from None
    out(f"imported {_count(len(rule_set.rules))} into {target}")
    return EXIT_OK


def _export(service: RulesService) -> int:
    path = _rules_path(service)
    try:
        text = service.file_text(path)
    except (OSError, UnicodeDecodeError) as error:
        raise CommandFailed(f"{path}: cannot read it ({error})") from None
    if text is None:
        note(f"(no rule file yet at {path})")
        return EXIT_OK
    emit(text if text.endswith("\n") or not text else text + "\n")
    return EXIT_OK


def _rules_path(service: RulesService) -> Path:
    path = service.runner.settings.rules_path
    if path is None:
        raise UsageError("no rule file is configured ([automation] rules_file)")
    return path


def read_text(path: Path, max_bytes: int = MAX_RULE_FILE_BYTES, what: str = "rule file") -> str:
    """A UTF-8 text file of at most ``max_bytes``; anything else is one readable error."""
    try:
        with path.open("rb") as file:
            data = file.read(max_bytes + 1)
    except FileNotFoundError:
        raise UsageError(f"{path}: no such file") from None
    except OSError as error:
        raise CommandFailed(f"{path}: cannot read it ({error.strerror or error})") from None
    if len(data) > max_bytes:
        raise UsageError(f"{path}: is over {max_bytes // 1_000_000} MB; not a {what}")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as error:
        raise UsageError(f"{path}: is not UTF-8 text (byte {error.start})") from None


def print_errors(path: Path, rule_set: RuleSet) -> None:
    for error in rule_set.errors:
        emit(f"{path}: {error.render()}\n", sys.stderr)
    emit(f"{path}: {len(rule_set.errors)} error{'s' if len(rule_set.errors) != 1 else ''}\n", sys.stderr)


def _count(rules: int) -> str:
    return f"{rules} rule{'s' if rules != 1 else ''}"
