"""The market at a glance: per GPU model, the cheapest offer across providers and its 24 h change."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from computehub_tui.domain.history import PriceStat
from computehub_tui.domain.models import Offer


@dataclass(frozen=True, slots=True)
class MarketRow:
    gpu: str
    cheapest: Offer
    """The offer with the lowest $/GPU-hour for this model right now."""
    offer_count: int
    providers: tuple[str, ...]
    change_24h_pct: float | None
    """Change of the cheapest $/GPU-hour against 24 h ago; None without history."""


def market_summary(offers: Iterable[Offer], day_ago: Iterable[PriceStat]) -> list[MarketRow]:
    """One row per GPU model, cheapest per-GPU price first. ``day_ago`` are stats from ~24 h back."""
    by_gpu: dict[str, list[Offer]] = {}
    for offer in offers:
        if offer.available:
            by_gpu.setdefault(offer.gpu, []).append(offer)
    then: dict[str, float] = {}
    for stat in day_ago:
        per_gpu = stat.min_price / max(1, stat.gpu_count)
        then[stat.gpu] = min(per_gpu, then.get(stat.gpu, per_gpu))
    rows = []
    for gpu, group in by_gpu.items():
        cheapest = min(group, key=lambda o: o.price_per_gpu_hour)
        before = then.get(gpu)
        change = None if not before else (cheapest.price_per_gpu_hour - before) / before * 100
        rows.append(MarketRow(gpu, cheapest, len(group), tuple(sorted({o.provider for o in group})), change))
    rows.sort(key=lambda row: row.cheapest.price_per_gpu_hour)
    return rows
