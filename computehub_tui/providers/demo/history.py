"""The simulated market's past prices, read through the real adapters at earlier moments.

Demo mode starts with an empty database; replaying the seeded market's own history lets the
price chart and the 24 h change show something true to the simulation from the first minute.
"""

from __future__ import annotations

from computehub_tui.clock import ManualClock
from computehub_tui.domain.history import PriceStat, price_stats
from computehub_tui.domain.models import OfferQuery
from computehub_tui.domain.pricing import split_plausible
from computehub_tui.providers.demo.adapters import demo_providers
from computehub_tui.providers.demo.market import DemoMarket

HOUR = 3600.0
REPLAY_AGES_S: tuple[float, ...] = (
    *(h * HOUR for h in (3, 6, 9, 12, 15, 18, 21, 24)),
    *(d * 24 * HOUR for d in (2, 3, 4, 5, 6, 7)),
    *(d * 24 * HOUR for d in (10, 15, 20, 25, 30)),
)


async def replay_price_history(seed: int, now: float, query: OfferQuery,
                               ages_s: tuple[float, ...] = REPLAY_AGES_S,
                               vast_offer_count: int = 3200) -> list[PriceStat]:
    """Price statistics of the demo market at each ``now - age``, oldest first."""
    clock = ManualClock(start=now - max(ages_s))
    market = DemoMarket(clock, seed=seed, seed_instances=False, vast_offer_count=vast_offer_count)
    providers, clients = demo_providers(market, clock)
    stats: list[PriceStat] = []
    try:
        for age in sorted(ages_s, reverse=True):
            clock.set_time(now - age)
            for provider in providers.values():
                offers, _ = split_plausible(await provider.list_offers(query))
                stats.extend(price_stats(offers, now - age))
    finally:
        for client in clients:
            await client.aclose()
    return stats


def main(argv: list[str] | None = None) -> int:
    """Print the replayed statistics as JSON; run as a low-priority child of the app."""
    import argparse
    import asyncio
    import dataclasses
    import json
    import os

    parser = argparse.ArgumentParser(prog="python -m computehub_tui.providers.demo.history")
    parser.add_argument("--seed", type=int, required=True)
    parser.add_argument("--now", type=float, required=True)
    parser.add_argument("--disk", type=int, default=20)
    parser.add_argument("--reliability", type=float, default=0.95)
    parser.add_argument("--vast-offers", type=int, default=3200)
    parser.add_argument("--limit", type=int, default=10_000)
    args = parser.parse_args(argv)
    try:
        os.nice(10)  # history is a nicety; the user's terminal comes first
    except OSError:
        pass
    query = OfferQuery(min_reliability=args.reliability, disk_gb=args.disk, limit=args.limit)
    stats = asyncio.run(replay_price_history(args.seed, args.now, query, vast_offer_count=args.vast_offers))
    print(json.dumps([dataclasses.astuple(stat) for stat in stats]))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
