"""The ``instances``, ``start`` / ``stop`` / ``restart`` / ``destroy`` and ``logs`` commands."""

from __future__ import annotations

import argparse
from typing import Any

from computehub_tui.cli.exits import EXIT_FAILED, EXIT_OK, EXIT_USAGE
from computehub_tui.cli.output import Column, emit, fail, note, out, print_json, table
from computehub_tui.cli.prompts import confirm
from computehub_tui.cli.session import bound_provider_of, every_instance, fresh_instance
from computehub_tui.domain.models import Instance
from computehub_tui.domain.text import clean_text
from computehub_tui.engine.actions import ACTOR_CLI
from computehub_tui.engine.hub import Hub
from computehub_tui.engine.policy import ActionPlan, plan_action
from computehub_tui.ui.format import duration
from computehub_tui.wiring import Session

INSTANCE_COLUMNS = (
    Column("ID"), Column("LABEL", 20), Column("STATUS"), Column("GPU", 20), Column("$/H NOW", right=True),
    Column("COST", right=True), Column("UPTIME", right=True), Column("UTIL", right=True), Column("SSH"),
)


def instance_json(hub: Hub, instance: Instance) -> dict[str, Any]:
    """``Instance.to_json()`` plus what the engine knows: its local label (a rule's ``label``), spend so far
    (USD), uptime (seconds), its project and whether it bills storage while stopped."""
    uptime = hub.uptime(instance.key)
    return {**instance.to_json(), "local_label": hub.local_labels.get(instance.key), "cost_so_far": round(hub.cost_so_far(instance.key), 4),
            "uptime_s": None if uptime is None else round(uptime, 1), "project": hub.projects.project_of(instance),
            "billing_while_stopped": hub.costs.billing_while_stopped(instance)}


async def instances(args: argparse.Namespace, session: Session) -> int:
    hub = session.hub
    listed, refreshed = await every_instance(hub)
    if refreshed.all_failed:
        return EXIT_FAILED
    if args.json:
        print_json([instance_json(hub, instance) for instance in listed])
    elif listed:
        for line in table(INSTANCE_COLUMNS, [_instance_row(hub, instance) for instance in listed]):
            out(line)
    else:
        note("(no instances)")
    if session.demo:
        note("(DEMO marketplace — simulated instances)")
    return refreshed.exit_code


def _instance_row(hub: Hub, instance: Instance) -> list[str]:
    util = instance.metrics.mean_gpu_util if instance.metrics else None
    uptime = hub.uptime(instance.key)
    return [instance.key, hub.local_labels.shown(instance), instance.status.value, f"{instance.gpu_count}x {instance.gpu}",
            f"{instance.current_price_hour:.3f}", f"{hub.cost_so_far(instance.key):.2f}",
            "-" if uptime is None else duration(uptime), "" if util is None else f"{util:.0f}%",
            instance.ssh.command if instance.ssh else "-"]


async def act(args: argparse.Namespace, session: Session) -> int:
    """Re-read the instance, let the shared policy decide, ask when it says so, then send."""
    hub = session.hub
    instance = await fresh_instance(args.instance_id, session)
    plan = plan_action(args.command, [instance], hub.capabilities)
    if plan.skipped:
        (skipped,) = plan.skipped
        message = f"{instance.key}: {skipped.reason}; nothing sent"
        if not skipped.already_done:  # e.g. Lambda cannot stop: what was asked cannot happen
            return fail(message, EXIT_FAILED)
        out(message)
        return EXIT_OK
    if plan.needs_confirmation and not args.yes and not confirm(_question(plan, instance), args.command):
        note("cancelled")
        return EXIT_USAGE
    result = await hub.act(args.command, instance.key, refresh=False, actor=ACTOR_CLI)
    if not result.ok:
        return fail(result.message, EXIT_FAILED)
    out(result.message)
    return EXIT_OK


def _question(plan: ActionPlan, instance: Instance) -> str:
    label = f' "{clean_text(instance.label)}"' if instance.label else ""
    what = f"{instance.gpu_count}x {clean_text(instance.gpu)}, {instance.status.value}"
    lines = [f"{plan.summary()}: {clean_text(instance.key)}{label} ({what})"]
    if plan.destroys:
        lines.append("  - irreversible: its disk and data are deleted for good")
    lines += [f"  - {caveat}" for caveat in plan.caveats]
    return "\n".join([*lines, "Proceed?"])


async def logs(args: argparse.Namespace, session: Session) -> int:
    bound_provider_of(args.instance_id, session)
    text = await session.hub.logs(args.instance_id, args.tail)
    emit(text.rstrip("\n") + "\n")
    return EXIT_OK
