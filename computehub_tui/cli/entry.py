"""``main()``: parse, run one command (or the TUI), and turn every outcome into an exit code and one line."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path

from computehub_tui.cli import instances as instance_commands
from computehub_tui.cli import market
from computehub_tui.cli import metrics as metric_commands
from computehub_tui.cli.audit import audit
from computehub_tui.cli.config import config_command
from computehub_tui.cli.costs import costs
from computehub_tui.cli.daemon import daemon, daemon_options
from computehub_tui.cli.exits import (
    EXIT_FAILED,
    EXIT_INTERNAL,
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_USAGE,
    PROG,
    Cancelled,
    CommandFailed,
    UsageError,
)
from computehub_tui.cli.keys import keys
from computehub_tui.cli.notify import notify
from computehub_tui.cli.output import emit, fail, note, one_line
from computehub_tui.cli.parser import build_parser
from computehub_tui.cli.projects import project
from computehub_tui.cli.prompts import ask_passphrase
from computehub_tui.cli.rules import check_file, rules
from computehub_tui.cli.session import Options, open_command_session, store_verdict
from computehub_tui.config import ConfigError, config_file_path, default_data_dir, load_config
from computehub_tui.domain.filtering import FilterError, parse_filter
from computehub_tui.engine.hub import split_key
from computehub_tui.engine.keys import DATABASE_NAME
from computehub_tui.providers.base import ProviderError
from computehub_tui.store import StoreError
from computehub_tui.vault import Vault, VaultError, read_passphrase_file
from computehub_tui.wiring import Session, automation_settings, cost_zone, open_session

DEBUG_ENV = "COMPUTEHUB_DEBUG"
"""Set it to see the traceback of an internal error instead of the one-line summary."""

Handler = Callable[[argparse.Namespace, Session], Awaitable[int]]
HANDLERS: dict[str, Handler] = {
    "offers": market.offers, "launch": market.launch, "instances": instance_commands.instances,
    "start": instance_commands.act, "stop": instance_commands.act, "restart": instance_commands.act,
    "destroy": instance_commands.act, "logs": instance_commands.logs, "metrics": metric_commands.metrics,
    "costs": costs, "project": project, "audit": audit, "daemon": daemon, "rules": rules, "notify": notify,
}


def main(argv: Sequence[str] | None = None) -> int:
    _tolerate_unencodable_output()
    args = build_parser().parse_args(argv)
    _one_line_logging(logging.WARNING if args.command is None else logging.ERROR)
    try:
        if args.command == "config":  # works on a broken config: it is how one is fixed
            return config_command(args)
        if args.command == "rules" and args.rules_command == "check":  # needs no store or provider
            return check_file(args.file, _alert_channels(args))
        if args.command == "rules" and args.rules_command == "test":  # the test file says everything
            from computehub_tui.cli.rules_test import run_tests  # deferred: the parser and runner are big

            return asyncio.run(run_tests(args.files, args.junit))
        options = _options(args)
        if args.command == "rules" and args.rules_command == "replay" and args.trace is not None:
            from computehub_tui.cli.rules_replay import replay_trace_command

            return asyncio.run(replay_trace_command(args, automation_settings(options.config, "replay"),
                                                    cost_zone(options.config)))
        if args.command is None:
            return _run_tui(options)
        return asyncio.run(_dispatch(args, options))
    except (ConfigError, UsageError, FilterError) as error:
        return fail(str(error), EXIT_USAGE)
    except (ProviderError, StoreError, VaultError, CommandFailed) as error:
        return fail(str(error), EXIT_FAILED)
    except Cancelled:
        note("cancelled")
        return EXIT_INTERRUPTED
    except KeyboardInterrupt:
        note("interrupted")
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        _discard_stdout()  # the reader (e.g. `head`) has gone; say nothing more
        return EXIT_FAILED
    except OSError as error:
        return fail(_os_problem(error), EXIT_FAILED)
    except Exception as error:
        if os.environ.get(DEBUG_ENV):
            raise
        return fail(f"internal error: {type(error).__name__}: {error}; please report it "
                    f"(set {DEBUG_ENV}=1 to see the traceback)", EXIT_INTERNAL)


def _alert_channels(args: argparse.Namespace) -> list[str] | None:
    """The alert channels the config sets up; None when it cannot be read (``rules check`` works without it)."""
    try:
        path, named = config_file_path(getattr(args, "config", None))
        return load_config(path, must_exist=named, flags=getattr(args, "set", None) or []).alerts.channel_names()
    except (ConfigError, OSError):
        return None


def _options(args: argparse.Namespace) -> Options:
    path, named = config_file_path(getattr(args, "config", None))
    config = load_config(path, must_exist=named, flags=getattr(args, "set", None) or [])
    data_dir = getattr(args, "data_dir", None) or _env_path("COMPUTEHUB_DATA_DIR") or default_data_dir()
    return Options(config, data_dir, demo=getattr(args, "demo", False), demo_reset=getattr(args, "demo_reset", False))


async def _dispatch(args: argparse.Namespace, options: Options) -> int:
    if args.command == "keys":
        return await keys(args, options)
    if args.command == "notify" and args.notify_command == "telegram-setup":  # needs no session
        from computehub_tui.cli.notify_telegram import telegram_setup  # deferred: python-telegram-bot is big

        return await telegram_setup(args, options)
    if args.command == "offers":
        args.compiled_filter = parse_filter(args.filter)  # a malformed filter fails before any network call
    if args.command == "daemon":
        options = daemon_options(args, options)
    key = getattr(args, "instance_id", None)
    only = split_key(key)[0] if key else getattr(args, "provider", None)
    session = await open_command_session(options, only_provider=only,
                                         automation_role="daemon" if args.command == "daemon" else "app")
    try:
        if args.command == "rules" and args.rules_command == "replay":
            from computehub_tui.cli.rules_replay import replay_history_command

            code = await replay_history_command(args, session)
        else:
            code = await HANDLERS[args.command](args, session)
        return store_verdict(session.hub, code)
    finally:
        await session.aclose()


def _run_tui(options: Options) -> int:
    from computehub_tui.ui.app import ComputeHubApp  # deferred: keeps CLI commands fast

    passphrase = read_passphrase_file()
    if passphrase is None and Vault.is_passphrase_protected(options.data_dir) and _has_stored_keys(options.data_dir):
        passphrase = ask_passphrase()

    reset_pending = options.demo_reset

    async def session_factory() -> Session:
        # The app reopens its session when keys change; only the first one starts the demo over.
        nonlocal reset_pending
        reset, reset_pending = reset_pending, False
        return await open_session(options.config, options.data_dir, demo=options.demo, passphrase=passphrase,
                                  demo_reset=reset)

    app = ComputeHubApp(session_factory, config=options.config)
    app.run()
    if app.startup_error:
        # A setting that cannot be used (a failing api_key_command) is the user's to fix, as at load time.
        return fail(app.startup_error, EXIT_USAGE if isinstance(app.startup_failure, ConfigError) else EXIT_FAILED)
    if app.return_code:  # Textual ended the app on an unhandled error: never report success
        error, report = app.save_crash_report(options.data_dir)
        saved = f"details in {report}" if report else "the details could not be saved"
        return fail(f"the TUI stopped on an internal error: {error} ({saved})", EXIT_FAILED)
    return EXIT_OK


def _has_stored_keys(data_dir: Path) -> bool:
    return (data_dir / DATABASE_NAME).exists()


def _os_problem(error: OSError) -> str:
    where = f" {error.filename}" if error.filename else ""
    reason = error.strerror or str(error)
    return (f"cannot write{where}: {reason} (check its permissions and free space, "
            "or choose another --data-dir / COMPUTEHUB_DATA_DIR)")


def _env_path(name: str) -> Path | None:
    value = os.environ.get(name)
    return Path(value).expanduser() if value else None


def _tolerate_unencodable_output() -> None:
    """A C-locale terminal cannot encode ␛ or •; show an escape instead of crashing."""
    for stream in (sys.stdout, sys.stderr):
        reconfigure = getattr(stream, "reconfigure", None)
        if reconfigure is not None:
            reconfigure(errors="backslashreplace")


def _discard_stdout() -> None:
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())


class _OneLineHandler(logging.Handler):
    """Log records as single safe stderr lines: no tracebacks, no escape sequences, no secrets."""

    def emit(self, record: logging.LogRecord) -> None:
        message = record.getMessage()
        if record.exc_info and record.exc_info[1] is not None:
            error = record.exc_info[1]
            message += f": {type(error).__name__}: {error}"
        emit(one_line(f"{PROG}: {record.levelname.lower()}: {record.name}: {message}") + "\n", sys.stderr)


def _one_line_logging(level: int) -> None:
    root = logging.getLogger()
    root.handlers[:] = [_OneLineHandler()]
    root.setLevel(level)
    for noisy in ("httpx", "httpcore", "telegram"):
        logging.getLogger(noisy).setLevel(max(level, logging.WARNING))
