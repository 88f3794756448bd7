"""The ``keys`` commands: bind, list, test, remove API keys and set the vault passphrase."""

from __future__ import annotations

import argparse

from computehub_tui.cli.exits import EXIT_FAILED, EXIT_OK, PROG
from computehub_tui.cli.output import Column, note, one_line, out, table
from computehub_tui.cli.prompts import ask_passphrase, new_passphrase, read_key
from computehub_tui.cli.session import Options, open_command_session
from computehub_tui.clock import SystemClock
from computehub_tui.domain.models import PROVIDER_TITLES
from computehub_tui.engine.key_sources import indirections_of
from computehub_tui.engine.keys import KeyService
from computehub_tui.vault import PassphraseRequired, read_passphrase_file

BINDING_COLUMNS = (Column("PROVIDER"), Column("SOURCE"), Column("KEY"))


async def keys(args: argparse.Namespace, options: Options) -> int:
    if args.keys_command == "test":
        return await _test(args, options)
    options.data_dir.mkdir(parents=True, exist_ok=True)
    # No session: this command only needs the real database, opened once and closed when it ends.
    service = KeyService(options.data_dir, SystemClock(), passphrase=read_passphrase_file(), actor="cli",
                         indirections=indirections_of(options.config))
    try:
        return await _run(args, service)
    except PassphraseRequired:
        service.passphrase = ask_passphrase()
        return await _run(args, service)
    finally:
        await service.aclose()


async def _run(args: argparse.Namespace, service: KeyService) -> int:
    if args.keys_command == "set":
        result = await service.bind(args.provider, read_key(args.provider))
        out(f"{PROVIDER_TITLES[args.provider]} key {result.binding.masked} saved (encrypted)")
        return EXIT_OK
    if args.keys_command == "passphrase":
        kdf = await service.set_passphrase(new_passphrase())
        if kdf:
            out(f"vault protected with a passphrase ({kdf}); the app will ask for it, or set "
                "COMPUTEHUB_PASSPHRASE_FILE to a 0600 file holding it")
        else:
            out("passphrase removed; the key file alone unlocks the stored keys")
        return EXIT_OK
    if args.keys_command == "remove":
        removed = await service.remove(args.provider)
        out(f"{args.provider}: {'removed' if removed else 'no stored key'}")
        return EXIT_OK if removed else EXIT_FAILED
    rows = [[b.provider, b.source or "-", b.masked or "not bound"] for b in await service.bindings()]
    for line in table(BINDING_COLUMNS, rows):
        out(line)
    return EXIT_OK


async def _test(args: argparse.Namespace, options: Options) -> int:
    session = await open_command_session(Options(options.config, options.data_dir), only_provider=args.provider,
                                         announce_demo=False)
    try:
        if session.demo:
            note(f"no API keys bound (run `{PROG} keys set PROVIDER`)")
            return EXIT_FAILED
        worst = EXIT_OK
        for name in session.hub.providers:
            verdict = await session.hub.test_connection(name)
            out(f"{name:<12} {one_line(verdict)}")
            if verdict != "ok":
                worst = EXIT_FAILED
        return worst
    finally:
        await session.aclose()
