"""The ``project`` commands: put an instance in a project, take it out, list every instance's project."""

from __future__ import annotations

import argparse

from computehub_tui.cli.exits import EXIT_FAILED, EXIT_OK
from computehub_tui.cli.output import Column, note, out, print_json, table
from computehub_tui.cli.session import bound_provider_of, every_instance, fresh_instance
from computehub_tui.engine.actions import ACTOR_CLI
from computehub_tui.wiring import Session

PROJECT_COLUMNS = (Column("ID"), Column("LABEL", 30), Column("PROJECT"), Column("FROM"))


async def project(args: argparse.Namespace, session: Session) -> int:
    if args.project_command == "set":
        return await _set(args, session)
    if args.project_command == "clear":
        return await _clear(args, session)
    return await _list(args, session)


async def _set(args: argparse.Namespace, session: Session) -> int:
    hub = session.hub
    await fresh_instance(args.instance_id, session)
    name = await hub.projects.set(args.instance_id, args.name, actor=ACTOR_CLI)
    out(f"{args.instance_id}: project {name}")
    return EXIT_OK


async def _clear(args: argparse.Namespace, session: Session) -> int:
    hub = session.hub
    bound_provider_of(args.instance_id, session)
    await hub.projects.load()
    cleared = await hub.projects.clear(args.instance_id, actor=ACTOR_CLI)
    out(f"{args.instance_id}: {'project cleared' if cleared else 'no project was set'}")
    return EXIT_OK


async def _list(args: argparse.Namespace, session: Session) -> int:
    hub = session.hub
    listed, refreshed = await every_instance(hub)
    if refreshed.all_failed:
        return EXIT_FAILED
    assignments = hub.projects.listing(listed)
    if args.json:
        print_json([{"id": instance.key, "label": instance.label, "project": a.project, "source": a.source}
                    for instance, a in zip(listed, assignments, strict=True)])
    elif listed:
        rows = [[instance.key, instance.label, a.project or "-", a.source or "-"]
                for instance, a in zip(listed, assignments, strict=True)]
        for line in table(PROJECT_COLUMNS, rows):
            out(line)
    else:
        note("(no instances)")
    return refreshed.exit_code
