"""Command line: start the TUI, or run one scriptable command (offers, instances, keys, actions)."""

from __future__ import annotations

import argparse
import asyncio
import csv
import getpass
import io
import json
import logging
import os
import sys
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import NoReturn

from computehub_tui import __version__
from computehub_tui.clock import SystemClock
from computehub_tui.config import (
    CONFIG_FILE_NAME,
    Config,
    ConfigError,
    default_config_dir,
    default_data_dir,
    load_config,
)
from computehub_tui.domain.filtering import FilterError, parse_filter
from computehub_tui.domain.models import (
    PROVIDER_NAMES,
    PROVIDER_TITLES,
    Instance,
    LaunchSpec,
    Offer,
)
from computehub_tui.domain.ranking import SORT_KEYS, sort_offers
from computehub_tui.domain.secret import RedactingFormatter
from computehub_tui.engine.hub import Hub, split_key
from computehub_tui.engine.keys import DATABASE_NAME, KeyService
from computehub_tui.providers.base import ProviderError
from computehub_tui.store import StoreError
from computehub_tui.vault import PassphraseRequired, Vault, VaultError, read_passphrase_file
from computehub_tui.wiring import Session, open_session

EXIT_OK, EXIT_PROVIDER, EXIT_USAGE = 0, 1, 2
PROG = "computehub-tui"


class UsageError(Exception):
    """The user asked for something malformed; exit code 2."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        # One readable line instead of argparse's usage dump.
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    common = _Parser(add_help=False)
    common.add_argument("--demo", action="store_true", default=argparse.SUPPRESS,
                        help="use the built-in demo marketplace even when API keys are set")
    common.add_argument("--data-dir", type=Path, default=argparse.SUPPRESS, metavar="DIR",
                        help="where the database and the vault key live (default: platform data dir)")
    common.add_argument("--config", type=Path, default=argparse.SUPPRESS, metavar="FILE",
                        help=f"config file (default: <config dir>/{CONFIG_FILE_NAME})")

    parser = _Parser(
        prog=PROG, parents=[common],
        description="A keyboard-driven cockpit for renting GPUs on Vast.ai, RunPod, Lambda and TensorDock. "
                    "With no arguments it starts the full-screen TUI.",
        epilog="Instance IDs are provider:id, e.g. vast:9104662. Exit codes: 0 ok, 1 provider error, 2 usage error.",
    )
    parser.add_argument("--version", action="version", version=f"{PROG} {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)

    offers = commands.add_parser("offers", parents=[common], help="list GPU offers from every provider")
    offers.add_argument("filter", nargs="?", default="", metavar="FILTER",
                        help='filter language, e.g. "h100 vram>=80 price<2.5 region:US,CA spot:no"')
    offers.add_argument("--provider", choices=PROVIDER_NAMES)
    offers.add_argument("--gpu", help="GPU model substring, e.g. 4090 or 'H100 SXM'")
    offers.add_argument("--max-price", type=float, metavar="X", help="maximum total $/h")
    offers.add_argument("--limit", type=int, default=30, metavar="N", help="rows to print (default 30; 0 = all)")
    offers.add_argument("--sort", choices=SORT_KEYS, default="price", help="sort order (default price)")
    output = offers.add_mutually_exclusive_group()
    output.add_argument("--json", action="store_true", help="print a JSON list")
    output.add_argument("--csv", action="store_true", help="print CSV")

    instances = commands.add_parser("instances", parents=[common], help="list instances on every bound account")
    instances.add_argument("--provider", choices=PROVIDER_NAMES)
    instances.add_argument("--json", action="store_true", help="print a JSON list")

    keys = commands.add_parser("keys", parents=[common], help="manage provider API keys (encrypted at rest)")
    key_commands = keys.add_subparsers(dest="keys_command", metavar="ACTION", parser_class=_Parser, required=True)
    key_set = key_commands.add_parser("set", parents=[common], help="store a key (read from stdin or a hidden prompt)")
    key_set.add_argument("provider", choices=PROVIDER_NAMES)
    key_commands.add_parser("list", parents=[common], help="show bound keys, masked")
    key_test = key_commands.add_parser("test", parents=[common], help="check that keys work")
    key_test.add_argument("provider", nargs="?", choices=PROVIDER_NAMES)
    key_commands.add_parser("passphrase", parents=[common],
                            help="set, change or remove the passphrase that protects stored keys (interactive)")
    key_remove = key_commands.add_parser("remove", parents=[common], help="forget a stored key")
    key_remove.add_argument("provider", choices=PROVIDER_NAMES)

    launch = commands.add_parser("launch", parents=[common], help="rent an offer")
    launch.add_argument("provider", choices=PROVIDER_NAMES)
    launch.add_argument("offer_id", metavar="OFFER_ID")
    launch.add_argument("--image", required=True, help="Docker image (e.g. pytorch/pytorch:latest)")
    launch.add_argument("--disk", type=int, default=None, metavar="GB", help="disk size in GB")
    launch.add_argument("--label", default="", help="instance name")
    launch.add_argument("--bid", type=float, default=None, metavar="X",
                        help="interruptible bid in $/h for the whole offer")
    launch.add_argument("--yes", action="store_true", help="do not ask for confirmation")

    for action in ("start", "stop", "restart"):
        sub = commands.add_parser(action, parents=[common], help=f"{action} an instance")
        sub.add_argument("instance_id", metavar="ID", help="provider:id")
    destroy = commands.add_parser("destroy", parents=[common], help="destroy an instance (irreversible)")
    destroy.add_argument("instance_id", metavar="ID", help="provider:id")
    destroy.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    logs = commands.add_parser("logs", parents=[common], help="print an instance's logs")
    logs.add_argument("instance_id", metavar="ID", help="provider:id")
    logs.add_argument("--tail", type=int, default=200, metavar="N", help="lines (default 200)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    _quiet_logging()
    args = build_parser().parse_args(argv)
    try:
        config_path = getattr(args, "config", None) or _env_path("COMPUTEHUB_CONFIG") or (
            default_config_dir() / CONFIG_FILE_NAME)
        config = load_config(config_path)
        data_dir = getattr(args, "data_dir", None) or _env_path("COMPUTEHUB_DATA_DIR") or default_data_dir()
        if args.command is None:
            return _run_tui(config, data_dir, demo=getattr(args, "demo", False))
        return asyncio.run(_dispatch(args, config, data_dir))
    except (ConfigError, UsageError, FilterError) as error:
        return _fail(str(error), EXIT_USAGE)
    except (ProviderError, StoreError, VaultError) as error:
        return _fail(str(error), EXIT_PROVIDER)
    except KeyboardInterrupt:
        return _fail("interrupted", 130)


async def _dispatch(args: argparse.Namespace, config: Config, data_dir: Path) -> int:
    if args.command == "keys":
        return await _keys(args, config, data_dir)
    if args.command == "offers":
        args.compiled_filter = parse_filter(args.filter)  # a malformed filter fails before any network call
    demo = getattr(args, "demo", False)
    only = getattr(args, "provider", None)
    session = await _open(config, data_dir, demo=demo, only_provider=only)
    try:
        handler: Callable[[argparse.Namespace, Session], Awaitable[int]] = {
            "offers": _offers, "instances": _instances, "launch": _launch, "start": _act,
            "stop": _act, "restart": _act, "destroy": _act, "logs": _logs,
        }[args.command]
        return await handler(args, session)
    finally:
        await session.aclose()


async def _open(config: Config, data_dir: Path, *, demo: bool, only_provider: str | None = None,
                announce_demo: bool = True) -> Session:
    passphrase = read_passphrase_file()
    try:
        session = await open_session(config, data_dir, demo=demo, passphrase=passphrase,
                                     only_provider=only_provider)
    except PassphraseRequired:
        session = await open_session(config, data_dir, demo=demo, passphrase=_ask_passphrase(),
                                     only_provider=only_provider)
    if session.demo and not demo and announce_demo:
        print("note: no API keys bound — showing the DEMO marketplace "
              f"(bind one with `{PROG} keys set vast`)", file=sys.stderr)
    if only_provider and not session.demo and only_provider not in session.hub.providers:
        await session.aclose()
        raise UsageError(f"{only_provider} is not bound (run `{PROG} keys set {only_provider}`)")
    return session


async def _refresh_all_providers(hub: Hub, what: str) -> bool:
    """Fetch ``what`` (offers or instances) from every provider at once; one stderr line per
    failure — errors when all failed, else warnings. True if every provider failed."""
    refresh = hub.refresh_offers if what == "offers" else hub.refresh_instances
    results = dict(zip(hub.providers, await asyncio.gather(*(refresh(name) for name in hub.providers)), strict=True))
    failed = [hub.health_of(name) for name, ok in results.items() if not ok]
    every = bool(failed) and len(failed) == len(results)
    for health in failed:
        print(f"{PROG}: error: {health.last_error}" if every else f"warning: {health.last_error}",
              file=sys.stderr)
    return every


async def _offers(args: argparse.Namespace, session: Session) -> int:
    hub = session.hub
    all_failed = await _refresh_all_providers(hub, "offers")
    offers = args.compiled_filter.apply(hub.offers())
    if args.gpu:
        offers = [o for o in offers if args.gpu.lower() in o.gpu.lower()]
    if args.max_price is not None:
        offers = [o for o in offers if o.price_hour <= args.max_price]
    offers = sort_offers(offers, args.sort, now=hub.clock.now())
    if args.limit:
        offers = offers[: args.limit]
    if args.json:
        print(json.dumps([offer.to_json() for offer in offers], indent=2))
    elif args.csv:
        print(_offers_csv(offers), end="")
    else:
        _print_offer_table(offers, session)
    return EXIT_PROVIDER if all_failed else EXIT_OK


async def _instances(args: argparse.Namespace, session: Session) -> int:
    hub = session.hub
    all_failed = await _refresh_all_providers(hub, "instances")
    instances = sorted(hub.instances(), key=lambda i: (i.provider, i.label, i.instance_id))
    if args.json:
        print(json.dumps([instance.to_json() for instance in instances], indent=2))
    else:
        _print_instance_table(instances, session)
    return EXIT_PROVIDER if all_failed else EXIT_OK


async def _launch(args: argparse.Namespace, session: Session) -> int:
    hub = session.hub
    if args.provider not in hub.providers:
        raise UsageError(f"{args.provider} is not bound (run `{PROG} keys set {args.provider}`)")
    if not await hub.refresh_offers(args.provider):
        return _fail(hub.health_of(args.provider).last_error, EXIT_PROVIDER)
    offer = next((o for o in hub.offers() if o.provider == args.provider and o.offer_id == args.offer_id), None)
    if offer is None:
        return _fail(f"offer {args.offer_id} not found on {args.provider} (it may have been rented; "
                     f"run `{PROG} offers --provider {args.provider}`)", EXIT_PROVIDER)
    disk = args.disk or hub.offer_query.disk_gb
    spec = LaunchSpec(image=args.image, disk_gb=disk, label=args.label, bid_price=args.bid)
    summary = (f"{offer.gpu_count}x {offer.gpu} on {PROVIDER_TITLES[offer.provider]} ({offer.location}) "
               f"for ${offer.price_hour:.3f}/h, image {args.image}, disk {disk} GB")
    if not args.yes and not _confirm(f"Launch {summary}?"):
        print("cancelled", file=sys.stderr)
        return EXIT_USAGE
    key = await hub.launch(offer, spec, refresh=False)
    print(key)
    return EXIT_OK


def _bound_provider_of(instance_id: str, session: Session) -> str:
    """The provider part of ``provider:id``; a usage error if malformed, unknown or not bound."""
    try:
        provider, _ = split_key(instance_id)
    except ValueError as error:
        raise UsageError(str(error)) from None
    if provider not in PROVIDER_NAMES:
        raise UsageError(f"unknown provider {provider!r} in {instance_id!r} (known: {', '.join(PROVIDER_NAMES)})")
    if provider not in session.hub.providers:
        raise UsageError(f"{provider} is not bound (run `{PROG} keys set {provider}`)")
    return provider


async def _act(args: argparse.Namespace, session: Session) -> int:
    _bound_provider_of(args.instance_id, session)
    if args.command == "destroy" and not args.yes:
        if not _confirm(f"Destroy {args.instance_id}? Its disk and data are deleted for good."):
            print("cancelled", file=sys.stderr)
            return EXIT_USAGE
    result = await session.hub.act(args.command, args.instance_id, refresh=False)
    if not result.ok:
        return _fail(result.message, EXIT_PROVIDER)
    print(result.message)
    return EXIT_OK


async def _logs(args: argparse.Namespace, session: Session) -> int:
    _bound_provider_of(args.instance_id, session)
    text = await session.hub.logs(args.instance_id, args.tail)
    print(text.rstrip("\n"))
    return EXIT_OK


async def _keys(args: argparse.Namespace, config: Config, data_dir: Path) -> int:
    if args.keys_command == "test":
        return await _keys_test(args, config, data_dir)
    data_dir.mkdir(parents=True, exist_ok=True)
    keys = KeyService(data_dir, SystemClock(), passphrase=read_passphrase_file())
    try:
        return await _keys_command(args, keys)
    except PassphraseRequired:
        keys.passphrase = _ask_passphrase()
        return await _keys_command(args, keys)


async def _keys_command(args: argparse.Namespace, keys: KeyService) -> int:
    if args.keys_command == "set":
        binding = await keys.bind(args.provider, _read_key(args.provider))
        print(f"{PROVIDER_TITLES[args.provider]} key {binding.masked} saved (encrypted)")
        return EXIT_OK
    if args.keys_command == "passphrase":
        return await _change_passphrase(keys)
    if args.keys_command == "remove":
        removed = await keys.remove(args.provider)
        print(f"{args.provider}: {'removed' if removed else 'no stored key'}")
        return EXIT_OK if removed else EXIT_PROVIDER
    bindings = await keys.bindings()
    print(f"{'PROVIDER':<12} {'SOURCE':<12} KEY")
    for binding in bindings:
        print(f"{binding.provider:<12} {binding.source or '-':<12} {binding.masked or 'not bound'}")
    return EXIT_OK


async def _change_passphrase(keys: KeyService) -> int:
    if not sys.stdin.isatty():
        raise UsageError("setting a passphrase needs an interactive terminal (the new one is typed twice)")
    first = getpass.getpass("New vault passphrase (empty removes protection): ")
    if first and getpass.getpass("Repeat it: ") != first:
        raise UsageError("the two passphrases differ; nothing changed")
    if first and len(first) < 8:
        raise UsageError("use at least 8 characters; nothing changed")
    kdf = await keys.set_passphrase(first or None)
    if kdf:
        print(f"vault protected with a passphrase ({kdf}); the app will ask for it, or set "
              "COMPUTEHUB_PASSPHRASE_FILE to a 0600 file holding it")
    else:
        print("passphrase removed; the key file alone unlocks the stored keys")
    return EXIT_OK


async def _keys_test(args: argparse.Namespace, config: Config, data_dir: Path) -> int:
    session = await _open(config, data_dir, demo=False, only_provider=args.provider, announce_demo=False)
    try:
        if session.demo:
            print(f"no API keys bound (run `{PROG} keys set PROVIDER`)", file=sys.stderr)
            return EXIT_PROVIDER
        worst = EXIT_OK
        for name in session.hub.providers:
            verdict = await session.hub.test_connection(name)
            print(f"{name:<12} {verdict}")
            if verdict != "ok":
                worst = EXIT_PROVIDER
        return worst
    finally:
        await session.aclose()


def _run_tui(config: Config, data_dir: Path, *, demo: bool) -> int:
    from computehub_tui.ui.app import ComputeHubApp  # deferred: keeps CLI commands fast

    passphrase = read_passphrase_file()
    if passphrase is None and Vault.is_passphrase_protected(data_dir) and _has_stored_keys(data_dir):
        passphrase = _ask_passphrase()

    async def session_factory() -> Session:
        return await open_session(config, data_dir, demo=demo, passphrase=passphrase)

    app = ComputeHubApp(session_factory)
    app.run()
    if app.startup_error:
        return _fail(app.startup_error, EXIT_PROVIDER)
    if app.return_code:  # Textual ended the app on an unhandled error: never report success
        error, report = app.save_crash_report(data_dir)
        saved = f"details in {report}" if report else "the details could not be saved"
        return _fail(f"the TUI stopped on an internal error: {error} ({saved})", EXIT_PROVIDER)
    return EXIT_OK


def _has_stored_keys(data_dir: Path) -> bool:
    return (data_dir / DATABASE_NAME).exists()


def _print_offer_table(offers: list[Offer], session: Session) -> None:
    now = session.hub.clock.now()
    print(f"{'PROVIDER':<10} {'OFFER':<28} {'GPU':<16} {'N':>2} {'VRAM':>5} {'$/H':>8} {'$/GPU-H':>8} "
          f"{'REL':>5} {'LOCATION':<22} AGE")
    for offer in offers:
        rel = f"{offer.reliability:.3f}" if offer.reliability is not None else "  -  "
        print(f"{offer.provider:<10} {offer.offer_id[:28]:<28} {offer.gpu[:16]:<16} {offer.gpu_count:>2} "
              f"{offer.vram_gb:>5.0f} {offer.price_hour:>8.3f} {offer.price_per_gpu_hour:>8.3f} {rel:>5} "
              f"{offer.location[:22]:<22} {max(0, now - offer.quoted_at):.0f}s")
    if session.demo:
        print("(DEMO marketplace — simulated offers)", file=sys.stderr)


def _print_instance_table(instances: list[Instance], session: Session) -> None:
    print(f"{'ID':<26} {'LABEL':<18} {'STATUS':<12} {'GPU':<16} {'$/H':>7} {'UTIL':>5}  SSH")
    for instance in instances:
        util = instance.metrics.mean_gpu_util if instance.metrics else None
        ssh = instance.ssh.command if instance.ssh else "-"
        print(f"{instance.key[:26]:<26} {instance.label[:18]:<18} {instance.status.value:<12} "
              f"{instance.gpu_count}x {instance.gpu[:13]:<13} {instance.price_hour:>7.3f} "
              f"{'' if util is None else f'{util:.0f}%':>5}  {ssh}")
    if not instances:
        print("(no instances)")
    if session.demo:
        print("(DEMO marketplace — simulated instances)", file=sys.stderr)


def _offers_csv(offers: list[Offer]) -> str:
    buffer = io.StringIO()
    rows = [offer.to_json() for offer in offers]
    writer = csv.DictWriter(buffer, fieldnames=list(rows[0]) if rows else ["provider", "offer_id"])
    writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue()


def _read_key(provider: str) -> str:
    if sys.stdin.isatty():
        value = getpass.getpass(f"{PROVIDER_TITLES[provider]} API key (input hidden): ")
    else:
        value = sys.stdin.readline()
    value = value.strip()
    if not value:
        raise UsageError("no key given (pipe it on stdin or type it at the prompt)")
    if any(ch.isspace() for ch in value):
        raise UsageError("the key contains whitespace; paste only the key itself")
    return value




def _ask_passphrase() -> str:
    if not sys.stdin.isatty():
        raise UsageError("the vault is passphrase-protected: set COMPUTEHUB_PASSPHRASE_FILE or run interactively")
    return getpass.getpass("Vault passphrase: ")


def _confirm(question: str) -> bool:
    if not sys.stdin.isatty():
        raise UsageError("refusing to act without confirmation in a non-interactive shell; add --yes")
    answer = input(f"{question} [y/N] ").strip().lower()
    return answer in ("y", "yes")


def _fail(message: str, code: int) -> int:
    print(f"{PROG}: error: {message}", file=sys.stderr)
    return code


def _env_path(name: str) -> Path | None:
    value = os.environ.get(name)
    return Path(value).expanduser() if value else None




def _quiet_logging() -> None:
    """Warnings to stderr through the redacting formatter; httpx's URL logging stays off."""
    handler = logging.StreamHandler()
    handler.setFormatter(RedactingFormatter("%(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.WARNING)
    for noisy in ("httpx", "httpcore", "telegram"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
