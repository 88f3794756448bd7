"""The argument parser: every option checked (finite, bounded, well-formed) before anything is sent."""

from __future__ import annotations

import argparse
import math
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn

from computehub_tui import __version__
from computehub_tui.cli.exits import EXIT_USAGE, PROG
from computehub_tui.cli.output import emit, one_line
from computehub_tui.config import CONFIG_FILE_NAME
from computehub_tui.config.durations import DurationError, parse_duration
from computehub_tui.config.schema import ALERT_CHANNELS, MAX_DISK_GB
from computehub_tui.domain.ids import instance_id_problem
from computehub_tui.domain.models import PROVIDER_NAMES
from computehub_tui.domain.projects import ProjectNameError, project_name
from computehub_tui.domain.ranking import SORT_KEYS
from computehub_tui.domain.text import clean_text
from computehub_tui.engine.costs import SPEND_DIMENSIONS
from computehub_tui.engine.hub import split_key
from computehub_tui.notify.channels import SECRET_NAMES

if TYPE_CHECKING:
    from _typeshed import SupportsWrite

MAX_PRICE_HOUR = 1000.0
"""Dearest $/h a price cap or bid may name; the largest real nodes cost a few tens of $/h."""
MAX_LIMIT = 1_000_000
MAX_TAIL = 5000
"""RunPod's log API serves at most 5000 lines."""
MAX_LABEL = 64
MAX_IMAGE = 512
MAX_TEXT = 200
MAX_SPEND_WINDOW_S = 3650 * 86400.0
MAX_AUDIT = 100_000
MAX_ACTOR = 80

EPILOG = f"""\
Instance IDs are provider:id, e.g. vast:9104662; `{PROG} instances` prints them in full.
start, stop, restart and destroy first re-read the instance, then ask before anything that bills,
interrupts or deletes (--yes skips the question; without a terminal it is required).

Exit codes: 0 ok (also "nothing to do"); 1 a provider failed (when others answered, their rows are
printed and each failed provider is a warning on stderr; when all failed, stdout stays empty), or the
results could not be saved to the database; 2 usage error, a declined confirmation or a missing --yes
(nothing was sent); 70 internal error (please report); 130 cancelled (Ctrl+C).
"""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        # One readable line instead of argparse's usage dump.
        self.exit(EXIT_USAGE, f"{self.prog}: error: {one_line(message)} (see {self.prog} --help)\n")

    def _print_message(self, message: str, file: SupportsWrite[str] | None = None) -> None:
        # Help and errors echo argv, which may carry pasted escape sequences.
        if message:
            emit(message, file or sys.stderr)


def _bounded_int(low: int, high: int) -> Callable[[str], int]:
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a whole number, not {text!r}") from None
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"must be between {low} and {high}, not {value}")
        return value
    return parse


def _rule_name(text: str) -> str:
    name = clean_text(text, MAX_TEXT + 1)
    if not name or len(name) > MAX_TEXT:
        raise argparse.ArgumentTypeError(f"expected a rule name of 1-{MAX_TEXT} characters")
    return name


def _actor(text: str) -> str:
    actor = clean_text(text, MAX_ACTOR + 1)
    if not actor or len(actor) > MAX_ACTOR or (actor not in ("user", "cli", "rule") and not actor.startswith("rule:")):
        raise argparse.ArgumentTypeError(f"expected user, cli, rule or rule:NAME, not {clean_text(text, 40)!r}")
    return actor


def _price(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a price in $/h, not {text!r}") from None
    if not math.isfinite(value) or not 0 < value <= MAX_PRICE_HOUR:
        raise argparse.ArgumentTypeError(f"must be a price above 0 and at most {MAX_PRICE_HOUR:g} $/h, not {text}")
    return value


def _one_line_text(limit: int, what: str, *, spaces: bool = True, empty: bool = False) -> Callable[[str], str]:
    def parse(text: str) -> str:
        value = text.strip()
        if not value and not empty:
            raise argparse.ArgumentTypeError(f"{what} must not be empty")
        if len(value) > limit:
            raise argparse.ArgumentTypeError(f"{what} must be at most {limit} characters, not {len(value)}")
        if clean_text(value, limit) != value or (not spaces and " " in value):
            raise argparse.ArgumentTypeError(f"{what} must be one line of printable text"
                                             f"{'' if spaces else ' without spaces'}")
        return value
    return parse


def _window(text: str) -> float:
    try:
        seconds = parse_duration(text)
    except DurationError as error:
        raise argparse.ArgumentTypeError(str(error)) from None
    if not 0 < seconds <= MAX_SPEND_WINDOW_S:
        raise argparse.ArgumentTypeError(f"must be longer than 0 and at most 3650d, not {text!r}")
    return seconds


def _project_name(text: str) -> str:
    try:
        return project_name(text)
    except ProjectNameError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def instance_key(text: str) -> str:
    """``provider:id`` with a known provider and an ID of that provider's shape."""
    try:
        provider, instance_id = split_key(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None
    if provider not in PROVIDER_NAMES:
        raise argparse.ArgumentTypeError(
            f"unknown provider {provider!r} in {text!r} (known: {', '.join(PROVIDER_NAMES)})")
    problem = instance_id_problem(provider, instance_id)
    if problem:
        raise argparse.ArgumentTypeError(f"{text!r} is not a {provider} instance ID: {problem}")
    return text


def _common_options() -> _Parser:
    common = _Parser(add_help=False)
    common.add_argument("--demo", action="store_true", default=argparse.SUPPRESS,
                        help="use the built-in demo marketplace even when API keys are set")
    common.add_argument("--demo-reset", action="store_true", default=argparse.SUPPRESS,
                        help="start the demo marketplace over from its seed (forgets demo launches, "
                             "actions and spend); real accounts are not touched")
    common.add_argument("--data-dir", type=Path, default=argparse.SUPPRESS, metavar="DIR",
                        help="where the database and the vault key live (default: platform data dir)")
    common.add_argument("--config", type=Path, default=argparse.SUPPRESS, metavar="FILE",
                        help=f"config file (default: $COMPUTEHUB_CONFIG, else <config dir>/{CONFIG_FILE_NAME}); "
                             "a named file must exist")
    common.add_argument("--set", action="append", default=argparse.SUPPRESS, metavar="KEY=VALUE",
                        help="override one setting for this run, e.g. --set poll.instances_s=10 (beats the "
                             "environment and the file; repeatable)")
    return common


def build_parser() -> argparse.ArgumentParser:
    common = _common_options()
    parser = _Parser(
        prog=PROG, parents=[common], formatter_class=argparse.RawDescriptionHelpFormatter,
        description="A keyboard-driven cockpit for renting GPUs on Vast.ai, RunPod, Lambda and TensorDock. "
                    "With no arguments it starts the full-screen TUI.",
        epilog=EPILOG,
    )
    parser.add_argument("--version", action="version", version=f"{PROG} {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)

    def command(name: str, help_text: str) -> argparse.ArgumentParser:
        return commands.add_parser(name, parents=[common], help=help_text, epilog=EPILOG,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)

    offers = command("offers", "list GPU offers from every provider")
    offers.add_argument("filter", nargs="?", default="", metavar="FILTER",
                        help='filter language, e.g. "h100 vram>=80 price<2.5 region:US,CA spot:no"')
    offers.add_argument("--provider", choices=PROVIDER_NAMES)
    offers.add_argument("--gpu", type=_one_line_text(MAX_TEXT, "--gpu"),
                        help="GPU model substring, e.g. 4090 or 'H100 SXM'")
    offers.add_argument("--max-price", type=_price, metavar="X", help="maximum total $/h")
    offers.add_argument("--limit", type=_bounded_int(0, MAX_LIMIT), default=30, metavar="N",
                        help="rows to print (default 30; 0 = all)")
    offers.add_argument("--sort", choices=SORT_KEYS, default="price", help="sort order (default price)")
    output = offers.add_mutually_exclusive_group()
    output.add_argument("--json", action="store_true", help="print a JSON list")
    output.add_argument("--csv", action="store_true",
                        help="print CSV (text cells starting with = + - @ get a leading ' against formula injection)")

    instances = command("instances", "list instances on every bound account")
    instances.add_argument("--provider", choices=PROVIDER_NAMES)
    instances.add_argument("--json", action="store_true",
                           help="print a JSON list (with cost_so_far in USD and uptime_s in seconds)")

    keys = command("keys", "manage provider API keys (encrypted at rest)")
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

    launch = command("launch", "rent an offer (asks first)")
    launch.add_argument("provider", choices=PROVIDER_NAMES)
    launch.add_argument("offer_id", metavar="OFFER_ID", type=_one_line_text(MAX_TEXT, "OFFER_ID"))
    launch.add_argument("--image", required=True, type=_one_line_text(MAX_IMAGE, "--image", spaces=False),
                        help="Docker image (e.g. pytorch/pytorch:latest)")
    launch.add_argument("--disk", type=_bounded_int(1, MAX_DISK_GB), default=None, metavar="GB",
                        help="disk size in GB")
    launch.add_argument("--label", default="", type=_one_line_text(MAX_LABEL, "--label", empty=True),
                        help=f"instance name (at most {MAX_LABEL} characters)")
    launch.add_argument("--bid", type=_price, default=None, metavar="X",
                        help="interruptible bid in $/h for the whole offer")
    launch.add_argument("--max-price", type=_price, default=None, metavar="X",
                        help="refuse to launch when the live quote (all-in $/h) is above X")
    launch.add_argument("--yes", action="store_true", help="do not ask for confirmation")

    for action, help_text in (("start", "start a stopped instance (asks first: it bills)"),
                              ("stop", "stop an instance (asks first when storage keeps billing)"),
                              ("restart", "restart an instance (asks first: it interrupts the job)"),
                              ("destroy", "destroy an instance (irreversible; asks first)")):
        sub = command(action, help_text)
        sub.add_argument("instance_id", metavar="ID", type=instance_key, help="provider:id")
        sub.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    config = command("config", "show, check and change the config file")
    config_commands = config.add_subparsers(dest="config_command", metavar="ACTION", parser_class=_Parser,
                                            required=True)
    config_commands.add_parser("path", parents=[common], help="print where the config file is")
    show = config_commands.add_parser("show", parents=[common], help="print every effective setting")
    show.add_argument("--origin", action="store_true",
                      help="say where each value came from: default, file:line, environment variable or flag")
    show.add_argument("--defaults", action="store_true", help="print a complete commented example config")
    validate = config_commands.add_parser("validate", parents=[common],
                                          help="check a config file; print every problem (exit 2) or ok")
    validate.add_argument("file", nargs="?", metavar="FILE", help="the file to check (default: the one in use, "
                                                                  "with the environment and --set)")
    config_commands.add_parser("edit", parents=[common],
                               help="open the config file in $EDITOR; it is saved only once it is valid")
    config_set = config_commands.add_parser("set", parents=[common],
                                            help="change one setting in the file, keeping its comments")
    config_set.add_argument("key", metavar="KEY", help="dotted key, e.g. poll.instances_s")
    config_set.add_argument("value", metavar="VALUE", help="the new value, e.g. 10, \"2d\", true")

    metrics = command("metrics", "print the latest GPU sample of one instance (fresh over SSH where the provider has "
                                 "no metrics API)")
    metrics.add_argument("instance_id", metavar="ID", type=instance_key, help="provider:id")
    metrics.add_argument("--json", action="store_true",
                         help="print one JSON object (unknown values null, VRAM in GiB)")

    costs = command("costs", "spend by day, provider or project (in the [costs] time zone)")
    costs.add_argument("--by", choices=SPEND_DIMENSIONS, default="day", help="how to group spend (default day)")
    costs.add_argument("--since", type=_window, default=30 * 86400.0, metavar="DURATION",
                       help="how far back, e.g. 7d, 12h, 2w (default 30d)")
    costs.add_argument("--json", action="store_true", help="print JSON (USD; rows, total, today and this month)")

    project = command("project", "put instances in projects (default: the label up to its last -<number>)")
    project_commands = project.add_subparsers(dest="project_command", metavar="ACTION", parser_class=_Parser,
                                              required=True)
    project_set = project_commands.add_parser("set", parents=[common], help="put an instance in a project")
    project_set.add_argument("instance_id", metavar="ID", type=instance_key, help="provider:id")
    project_set.add_argument("name", metavar="NAME", type=_project_name,
                             help="1-40 characters of a-z, 0-9, '.', '_' and '-' (case-folded)")
    project_clear = project_commands.add_parser("clear", parents=[common],
                                                help="take an instance out of its project (its label's applies)")
    project_clear.add_argument("instance_id", metavar="ID", type=instance_key, help="provider:id")
    project_list = project_commands.add_parser("list", parents=[common], help="every instance's project")
    project_list.add_argument("--json", action="store_true", help="print a JSON list")

    daemon = command("daemon", "run the engine without a screen (polling, costs, automation): one line per event "
                               "on stdout; SIGTERM stops it")
    daemon.add_argument("--rules", type=Path, default=None, metavar="FILE",
                        help="the rule file (default: [automation] rules_file)")

    rules = command("rules", "the automation rules: check, list, import, export, switch, pause, resume, replay, "
                             "test")
    rule_commands = rules.add_subparsers(dest="rules_command", metavar="ACTION", parser_class=_Parser, required=True)
    rule_check = rule_commands.add_parser("check", parents=[common],
                                          help="check a rule file: exit 0, or 2 with every error (line, column)")
    rule_check.add_argument("file", type=Path, metavar="FILE")
    rule_list = rule_commands.add_parser("list", parents=[common], help="the rules in force, switches, last fired")
    rule_list.add_argument("--json", action="store_true", help="print a JSON list")
    rule_import = rule_commands.add_parser("import", parents=[common],
                                           help="check FILE and make it the rule file ([automation] rules_file)")
    rule_import.add_argument("file", type=Path, metavar="FILE")
    rule_commands.add_parser("export", parents=[common], help="print the rule file")
    for switch, text in (("enable", "let a rule act again"), ("disable", "stop a rule from acting"),
                         ("dry-run", "a rule only logs and alerts what it would do"), ("live", "a rule acts")):
        switched = rule_commands.add_parser(switch, parents=[common], help=text)
        switched.add_argument("name", metavar="NAME", type=_rule_name, help="the rule's name (see rules list)")
    rule_pause = rule_commands.add_parser("pause", parents=[common], help="no rule acts, in any process, until resume")
    rule_pause.add_argument("--reason", type=_rule_name, default=None, help="shown beside \"paused\"")
    rule_commands.add_parser("resume", parents=[common], help="let rules act again")
    rule_replay = rule_commands.add_parser("replay", parents=[common],
                                           help="what a rule file would have done over a trace or the stored "
                                                "history (nothing is executed, no alert is sent)")
    rule_replay.add_argument("file", type=Path, metavar="RULES_FILE")
    replay_source = rule_replay.add_mutually_exclusive_group(required=True)
    replay_source.add_argument("--trace", type=Path, default=None, metavar="FILE.csv",
                               help="a trace file (see the README: t, instance, status, gpu_util, ...)")
    replay_source.add_argument("--since", type=_window, default=None, metavar="DURATION",
                               help="the fleet's stored history over the last DURATION, e.g. 24h, 7d")
    rule_replay.add_argument("--json", action="store_true", help="one JSON object per line per firing")
    rule_replay.add_argument("--explain", type=_one_line_text(64, "--explain"), default=None, metavar="INSTANCE",
                             help="per tick, each rule's condition on INSTANCE: true / false / unknown and why")
    rule_test = rule_commands.add_parser("test", parents=[common],
                                         help="run rule test files (TOML): exit 0 all pass, 1 on a mismatch, "
                                              "2 for a malformed test file")
    rule_test.add_argument("files", type=Path, nargs="+", metavar="TESTFILE")
    rule_test.add_argument("--junit", type=Path, default=None, metavar="FILE", help="also write a JUnit XML report")

    audit = command("audit", "who did what: user, cli and rule actions, newest first")
    audit.add_argument("--limit", type=_bounded_int(1, MAX_AUDIT), default=50, metavar="N",
                       help=f"entries (default 50, at most {MAX_AUDIT})")
    audit.add_argument("--since", type=_window, default=None, metavar="DURATION", help="only the last, e.g. 1d, 6h")
    audit.add_argument("--actor", type=_actor, default=None, metavar="WHO",
                       help="only one actor: user, cli, rule (every rule) or rule:NAME")
    audit.add_argument("--json", action="store_true", help="print a JSON list (times in UTC)")

    notify = command("notify", "alerts: send a test through a channel, show the delivery log, set up Telegram")
    notify_commands = notify.add_subparsers(dest="notify_command", metavar="ACTION", parser_class=_Parser,
                                            required=True)
    notify_test = notify_commands.add_parser("test", parents=[common],
                                             help="send a test alert at once (exit 0 when the server took it)")
    notify_test.add_argument("channel", choices=ALERT_CHANNELS)
    notify_secret = notify_commands.add_parser("secret", parents=[common],
                                               help="seal a channel secret in the vault (from stdin or a hidden "
                                                    "prompt), or --remove it")
    notify_secret.add_argument("name", choices=SECRET_NAMES)
    notify_secret.add_argument("--remove", action="store_true", help="forget the stored secret")
    notify_log = notify_commands.add_parser("log", parents=[common],
                                            help="alert deliveries, newest first: queued, sent, retrying, dead")
    notify_log.add_argument("--json", action="store_true", help="print a JSON list (times in UTC)")
    notify_log.add_argument("--limit", type=_bounded_int(1, MAX_AUDIT), default=50, metavar="N",
                            help=f"entries (default 50, at most {MAX_AUDIT})")
    notify_log.add_argument("--channel", choices=ALERT_CHANNELS, default=None, help="only one channel")
    telegram_setup = notify_commands.add_parser(
        "telegram-setup", parents=[common],
        help="connect a Telegram bot: check its token, find your chat from a message you send it, save both")
    telegram_setup.add_argument("--timeout", type=_window, default=300.0, metavar="DURATION",
                                help="how long to wait for your message (default 5m)")
    telegram_setup.add_argument("--yes", action="store_true",
                                help="use the chat found without asking (required without a terminal)")

    logs = command("logs", "print an instance's logs")
    logs.add_argument("instance_id", metavar="ID", type=instance_key, help="provider:id")
    logs.add_argument("--tail", type=_bounded_int(1, MAX_TAIL), default=200, metavar="N",
                      help=f"lines (default 200, at most {MAX_TAIL})")
    return parser
