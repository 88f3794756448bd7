"""The ``audit`` command: who did what (the user, the CLI, each rule), newest first, as a table or JSON."""

from __future__ import annotations

import argparse
from datetime import datetime

from computehub_tui.cli.exits import EXIT_OK
from computehub_tui.cli.output import Column, note, out, print_json, table
from computehub_tui.domain.models import iso_utc
from computehub_tui.wiring import Session

AUDIT_COLUMNS = (Column("TIME"), Column("ACTOR", 24), Column("ACTION", 16), Column("TARGET", 32), Column("OUTCOME", 10),
                 Column("DETAIL", 80))


async def audit(args: argparse.Namespace, session: Session) -> int:
    hub = session.hub
    since = None if args.since is None else hub.clock.now() - args.since
    entries = await hub.audit_log(args.limit, since=since, actor=args.actor)
    if args.json:
        print_json([{"at": iso_utc(e.at), "actor": e.actor, "action": e.action, "target": e.target,
                     "detail": e.detail, "outcome": e.outcome} for e in entries])
        return EXIT_OK
    if not entries:
        note("(no audit entries" + ("" if args.since is None and args.actor is None else " match") + ")")
        return EXIT_OK
    rows = [[_local(e.at), e.actor, e.action, e.target, e.outcome, e.detail or "-"] for e in entries]
    for line in table(AUDIT_COLUMNS, rows):
        out(line)
    return EXIT_OK


def _local(at: float) -> str:
    return datetime.fromtimestamp(at).astimezone().strftime("%Y-%m-%d %H:%M:%S")
