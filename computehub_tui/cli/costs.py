"""The ``costs`` command: spend by day, provider or project, as a table or JSON."""

from __future__ import annotations

import argparse

from computehub_tui.cli.exits import EXIT_FAILED
from computehub_tui.cli.output import Column, note, out, print_json, table
from computehub_tui.cli.session import refresh_every_provider
from computehub_tui.domain.models import iso_utc
from computehub_tui.wiring import Session

NO_PROJECT = "(none)"


async def costs(args: argparse.Namespace, session: Session) -> int:
    hub = session.hub
    refreshed = await refresh_every_provider(hub, "instances")  # books every instance up to now
    if refreshed.all_failed:
        return EXIT_FAILED
    await hub.projects.load()
    now = hub.clock.now()
    since = now - args.since
    lines = await hub.costs.spend_by([args.by], since, now + 1)
    total = sum(line.usd for line in lines)
    if args.json:
        print_json({
            "by": args.by, "since": iso_utc(since), "until": iso_utc(now), "time_zone": _zone_name(hub.costs.zone),
            "rows": [{args.by: line.keys[0], "usd": round(line.usd, 4)} for line in lines],
            "total_usd": round(total, 4), "today_usd": round(hub.spend_today(), 4),
            "this_month_usd": round(hub.spend_this_month(), 4),
        })
    else:
        rows = [[line.keys[0] or NO_PROJECT, f"{line.usd:.2f}"] for line in lines]
        for text in table((Column(args.by.upper(), 40), Column("USD", right=True)), [*rows, ["total", f"{total:.2f}"]]):
            out(text)
        note(f"today {hub.spend_today():.2f} USD, this month {hub.spend_this_month():.2f} USD "
             f"({_zone_name(hub.costs.zone)} time)")
    if session.demo:
        note("(DEMO marketplace — simulated spend)")
    return refreshed.exit_code


def _zone_name(zone: object) -> str:
    return "local" if zone is None else str(zone)
