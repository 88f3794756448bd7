"""The ``notify`` commands: send a test alert through one channel at once, keep a channel secret in the vault,
and print the delivery log."""

from __future__ import annotations

import argparse
import os
from datetime import datetime

from computehub_tui.cli.exits import EXIT_FAILED, EXIT_OK, EXIT_USAGE
from computehub_tui.cli.output import Column, fail, note, out, print_json, table
from computehub_tui.cli.prompts import read_secret
from computehub_tui.domain.alerts import DeliveryRow
from computehub_tui.domain.models import iso_utc
from computehub_tui.domain.secret import Secret
from computehub_tui.notify.base import DeliveryError
from computehub_tui.notify.channels import SECRET_ENV, ChannelConfigError
from computehub_tui.notify.reasons import one_line
from computehub_tui.notify.webhook import WebhookSecretError, signing_key
from computehub_tui.wiring import Session

LOG_COLUMNS = (Column("CREATED"), Column("CHANNEL", 8), Column("STATE", 8), Column("TRIES", 5), Column("KIND", 13),
               Column("TITLE", 48), Column("LAST ERROR", 60))


SECRET_TITLES = {"telegram_token": ("Telegram bot token", "token"), "smtp_password": ("SMTP password", "password"),
                 "webhook_secret": ("webhook signing secret (whsec_…)", "secret")}


async def notify(args: argparse.Namespace, session: Session) -> int:
    if args.notify_command == "test":
        return await send_test(args.channel, session)
    if args.notify_command == "secret":
        return await store_secret(args.name, session, remove=args.remove)
    return await delivery_log(args, session)


async def store_secret(name: str, session: Session, *, remove: bool) -> int:
    """Seal a channel secret in the vault (read from a hidden prompt or stdin), or remove it."""
    if remove:
        await session.keys.set_channel_secret(name, None)
        out(f"{name}: removed from the vault")
        return EXIT_OK
    what, noun = SECRET_TITLES[name]
    value = read_secret(what, noun)
    if name == "webhook_secret":
        try:
            signing_key(Secret(value))
        except WebhookSecretError as error:
            return fail(str(error), EXIT_USAGE)
    await session.keys.set_channel_secret(name, value)
    out(f"{name} {Secret(value).masked} saved (encrypted)" + (f"; {SECRET_ENV[name]} still overrides it"
                                                              if os.environ.get(SECRET_ENV[name]) else ""))
    return EXIT_OK


async def send_test(channel: str, session: Session) -> int:
    """Exit 0 when the channel's server took the message, 1 when it did not, 2 when the channel is not set up."""
    try:
        verdict = await session.hub.alerts.send_test(channel)
    except ChannelConfigError as error:
        return fail(str(error), EXIT_USAGE)
    except DeliveryError as error:
        return fail(f"{channel}: {one_line(error.reason)}", EXIT_FAILED)
    out(verdict)
    return EXIT_OK


async def delivery_log(args: argparse.Namespace, session: Session) -> int:
    rows = await session.hub.alerts.deliveries(args.limit, args.channel)
    if args.json:
        print_json([_as_json(row) for row in rows])
        return EXIT_OK
    if not rows:
        note("(no alert deliveries" + (f" for {args.channel}" if args.channel else "") + ")")
        return EXIT_OK
    for line in table(LOG_COLUMNS, ([_local(row.created_at), row.channel, row.state, str(row.attempts), row.kind,
                                     row.title, row.last_error or "-"] for row in rows)):
        out(line)
    return EXIT_OK


def _as_json(row: DeliveryRow) -> dict[str, object]:
    return {"delivery_id": row.delivery_id, "channel": row.channel, "alert_key": row.alert_key, "kind": row.kind,
            "severity": row.severity, "title": row.title, "state": row.state, "attempts": row.attempts,
            "next_attempt_at": iso_utc(row.next_attempt_at), "last_error": row.last_error,
            "created_at": iso_utc(row.created_at), "sent_at": iso_utc(row.sent_at) if row.sent_at else None}


def _local(at: float) -> str:
    return datetime.fromtimestamp(at).astimezone().strftime("%Y-%m-%d %H:%M:%S")
