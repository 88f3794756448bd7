"""The ``offers`` and ``launch`` commands."""

from __future__ import annotations

import argparse
import shlex

from computehub_tui.cli.exits import EXIT_FAILED, EXIT_OK, EXIT_USAGE, PROG, UsageError
from computehub_tui.cli.output import Column, csv_text, emit, fail, note, out, print_json, table
from computehub_tui.cli.prompts import confirm
from computehub_tui.cli.session import not_bound, refresh_every_provider
from computehub_tui.domain.models import PROVIDER_TITLES, LaunchSpec, Offer
from computehub_tui.domain.ranking import sort_offers
from computehub_tui.engine.actions import ACTOR_CLI
from computehub_tui.engine.policy import LaunchRefused, check_max_price
from computehub_tui.providers.base import NoCapacityError
from computehub_tui.wiring import Session

OFFER_COLUMNS = (
    Column("PROVIDER"), Column("OFFER"), Column("GPU", 16), Column("N", right=True), Column("VRAM", right=True),
    Column("$/H", right=True), Column("$/GPU-H", right=True), Column("REL", right=True), Column("LOCATION", 22),
    Column("AGE"),
)
CSV_FIELDS_WHEN_EMPTY = ("provider", "offer_id")


async def offers(args: argparse.Namespace, session: Session) -> int:
    hub = session.hub
    refreshed = await refresh_every_provider(hub, "offers")
    if refreshed.all_failed:
        return EXIT_FAILED
    chosen = args.compiled_filter.apply(hub.offers())
    if args.gpu:
        chosen = [o for o in chosen if args.gpu.lower() in o.gpu.lower()]
    if args.max_price is not None:
        chosen = [o for o in chosen if o.price_hour <= args.max_price]
    chosen = sort_offers(chosen, args.sort, now=hub.clock.now())
    if args.limit:
        chosen = chosen[: args.limit]
    if args.json:
        print_json([offer.to_json() for offer in chosen])
    elif args.csv:
        rows = [offer.to_json() for offer in chosen]
        emit(csv_text(list(rows[0]) if rows else CSV_FIELDS_WHEN_EMPTY, rows))
    elif chosen:
        now = hub.clock.now()
        for line in table(OFFER_COLUMNS, [_offer_row(offer, now) for offer in chosen]):
            out(line)
    else:
        note("(no offers match)")
    if session.demo:
        note("(DEMO marketplace — simulated offers)")
    return refreshed.exit_code


def _offer_row(offer: Offer, now: float) -> list[str]:
    rel = f"{offer.reliability:.3f}" if offer.reliability is not None else "-"
    return [offer.provider, offer.offer_id, offer.gpu, str(offer.gpu_count), f"{offer.vram_gb:.0f}",
            f"{offer.price_hour:.3f}", f"{offer.price_per_gpu_hour:.3f}", rel, offer.location,
            f"{max(0.0, now - offer.quoted_at):.0f}s"]


async def launch(args: argparse.Namespace, session: Session) -> int:
    hub = session.hub
    if args.provider not in hub.providers:
        raise UsageError(not_bound(args.provider))
    if not await hub.refresh_offers(args.provider):
        return fail(hub.health_of(args.provider).last_error, EXIT_FAILED)
    offer = next((o for o in hub.offers() if o.provider == args.provider and o.offer_id == args.offer_id), None)
    if offer is None:
        return fail(f"offer {args.offer_id} not found on {args.provider} (it may have been rented; "
                    f"run `{PROG} offers --provider {args.provider}`)", EXIT_FAILED)
    disk = args.disk or hub.offer_query.disk_gb
    spec = LaunchSpec(image=args.image, disk_gb=disk, label=args.label, bid_price=args.bid)
    quote = hub.launch_quote(offer, spec)
    try:
        check_max_price(quote.offer, quote.price_hour, args.max_price)  # before asking; the engine checks again
        price = f"bidding ${args.bid:.3f}/h" if args.bid is not None else f"for ${quote.price_hour:.3f}/h"
        summary = (f"{offer.gpu_count}x {offer.gpu} on {PROVIDER_TITLES[offer.provider]} ({offer.location}) "
                   f"{price}, image {args.image}, disk {disk} GB")
        if not args.yes and not confirm(f"Launch {summary}? Billing starts at once.", "launch"):
            note("cancelled")
            return EXIT_USAGE
        out(await hub.launch(quote.offer, spec, refresh=False, max_price=args.max_price, actor=ACTOR_CLI))
    except LaunchRefused as refusal:
        return fail(str(refusal), EXIT_FAILED)
    except NoCapacityError as error:
        return fail(f"{error}{_next_best_hint(hub.next_best_offer(quote.offer))}", EXIT_FAILED)
    return EXIT_OK


def _next_best_hint(alternative: Offer | None) -> str:
    """After "no capacity": the policy's next-best offer, as the rest of the error line."""
    if alternative is None:
        return ""
    return (f"; the next best is {alternative.provider} offer {alternative.offer_id} at "
            f"${alternative.price_hour:.3f}/h ({alternative.location}): run the same command with "
            f"{shlex.quote(alternative.offer_id)}")
