"""``computehub-tui notify telegram-setup``: connect a Telegram bot and the owner's chat for alerts, step by step."""

from __future__ import annotations

import argparse
import sys

from computehub_tui.cli.exits import EXIT_OK, EXIT_USAGE, CommandFailed, UsageError
from computehub_tui.cli.output import note, out
from computehub_tui.cli.prompts import ask_passphrase, confirm_default_yes, hidden
from computehub_tui.cli.session import Options
from computehub_tui.clock import SystemClock
from computehub_tui.config import config_file_path
from computehub_tui.config.editing import set_value
from computehub_tui.domain.secret import Secret
from computehub_tui.engine.keys import KeyService
from computehub_tui.notify.channels import TELEGRAM_TOKEN
from computehub_tui.notify.telegram import ChatInfo
from computehub_tui.notify.telegram_setup import SetupError, TelegramSetup, token_problem
from computehub_tui.vault import PassphraseRequired, read_passphrase_file

CHAT_ID_KEY = "alerts.telegram.chat_id"


async def telegram_setup(args: argparse.Namespace, options: Options) -> int:
    token = _read_token()
    setup = TelegramSetup(token, options.config.alerts.telegram.base_url, SystemClock())
    try:
        bot = await setup.identify()
        note(f"token accepted: the bot is @{bot.username or bot.first_name}")
        note(f"now open Telegram and send any message to @{bot.username or bot.first_name} from the chat that "
             f"should get alerts (waiting up to {args.timeout:.0f} s; Ctrl+C stops)")
        chat = await setup.wait_for_chat(args.timeout)
        if not _accepted(chat, yes=args.yes):
            note("nothing saved")
            return EXIT_USAGE
        await setup.finish(chat)
    except SetupError as error:
        raise CommandFailed(str(error)) from None
    finally:
        await setup.close()
    await _save_token(options, token)
    config_path, _ = config_file_path(getattr(args, "config", None))
    set_value(config_path, CHAT_ID_KEY, chat.id)
    out(f"Telegram alerts go to {_describe(chat)}; chat_id saved in {config_path}, the token encrypted "
        f"in the vault ({token.masked})")
    return EXIT_OK


def _read_token() -> Secret:
    """The bot token from a hidden prompt, or one line of stdin; never from argv."""
    if sys.stdin.isatty():
        value = hidden("Bot token from @BotFather (input hidden): ")
    else:
        value = sys.stdin.readline()
    value = value.strip()
    if not value:
        raise UsageError("no token given (pipe it on stdin or type it at the prompt)")
    problem = token_problem(value)
    if problem:
        raise UsageError(problem)
    return Secret(value)


def _describe(chat: ChatInfo) -> str:
    kind = "your private chat" if chat.kind == "private" else f"the {chat.kind or 'chat'}"
    return f"{kind} {chat.title or '(no name)'} (id {chat.id})"


def _accepted(chat: ChatInfo, *, yes: bool) -> bool:
    note(f"message received from {_describe(chat)}")
    if yes:
        return True
    if not sys.stdin.isatty():
        raise UsageError("refusing to choose the chat without confirmation in a non-interactive shell; add --yes")
    return confirm_default_yes("Send alerts to this chat?")


async def _save_token(options: Options, token: Secret) -> None:
    keys = KeyService(options.data_dir, SystemClock(), passphrase=read_passphrase_file(), actor="cli")
    try:
        try:
            await keys.set_channel_secret(TELEGRAM_TOKEN, token.reveal())
        except PassphraseRequired:
            keys.passphrase = ask_passphrase()
            await keys.set_channel_secret(TELEGRAM_TOKEN, token.reveal())
    finally:
        await keys.aclose()
