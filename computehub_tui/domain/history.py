"""Records kept over time: market price statistics per GPU configuration and the audit trail."""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from computehub_tui.domain.models import Offer


@dataclass(frozen=True, slots=True)
class PriceStat:
    """The market for one (provider, gpu, gpu_count, pricing) configuration at one moment.

    Prices are all-in $/hour for the whole offer, like ``Offer.price_hour``.
    """

    at: float
    provider: str
    gpu: str
    gpu_count: int
    pricing: str
    min_price: float
    median_price: float
    p90_price: float
    offer_count: int


@dataclass(frozen=True, slots=True)
class AuditEntry:
    """One action taken by a user or by automation, and how it ended."""

    at: float
    actor: str
    action: str
    target: str
    detail: str = ""
    outcome: str = "ok"


PriceGroupKey = tuple[str, str, int, str]


def price_stats(offers: Iterable[Offer], at: float) -> list[PriceStat]:
    """Summarise rentable offers per (provider, gpu, gpu_count, pricing), sorted by that key.

    Unavailable offers and non-finite prices are left out: they are not a price anyone can rent at.
    """
    prices_by_group: dict[PriceGroupKey, list[float]] = defaultdict(list)
    for offer in offers:
        if offer.available and math.isfinite(offer.price_hour):
            group = (offer.provider, offer.gpu, offer.gpu_count, offer.pricing.value)
            prices_by_group[group].append(offer.price_hour)
    return [
        _stat_for_group(at, group, sorted(prices))
        for group, prices in sorted(prices_by_group.items())
    ]


def percentile(sorted_values: Sequence[float], fraction: float) -> float:
    """Linear-interpolated percentile (the numpy default) of an ascending, non-empty sequence."""
    if not sorted_values:
        raise ValueError("percentile of no values")
    position = (len(sorted_values) - 1) * fraction
    lower = math.floor(position)
    upper = math.ceil(position)
    weight = position - lower
    return sorted_values[lower] + (sorted_values[upper] - sorted_values[lower]) * weight


def _stat_for_group(at: float, group: PriceGroupKey, sorted_prices: list[float]) -> PriceStat:
    provider, gpu, gpu_count, pricing = group
    return PriceStat(
        at=at,
        provider=provider,
        gpu=gpu,
        gpu_count=gpu_count,
        pricing=pricing,
        min_price=sorted_prices[0],
        median_price=percentile(sorted_prices, 0.5),
        p90_price=percentile(sorted_prices, 0.9),
        offer_count=len(sorted_prices),
    )
