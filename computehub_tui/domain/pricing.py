"""Price sanity and all-in adjustments: keep broken listings out of the ranking."""

from __future__ import annotations

from collections.abc import Sequence

from computehub_tui.domain import bounds
from computehub_tui.domain.gpus import gpu_spec
from computehub_tui.domain.models import Instance, Offer

MAX_PLAUSIBLE_GPUS_PER_INSTANCE = 16
"""Bounds the GPU count a running rate may be scaled by, so a claimed 1e9 GPUs cannot excuse $1e9/h."""

def is_plausible(offer: Offer) -> bool:
    """A price some real machine could rent for: per GPU in range, and not absurdly cheap per
    PFLOP (so a listing claiming 64 H100s for a dollar cannot top the value ranking)."""
    if not bounds.is_plausible_price(offer.price_hour, offer.gpu_count):
        return False
    spec = gpu_spec(offer.gpu)
    if spec is None:
        return True
    pflops = spec.fp16_tflops * offer.gpu_count / 1000.0
    return offer.price_hour / pflops >= bounds.MIN_PRICE_PER_PFLOP_HOUR


def plausible_rate(instance: Instance) -> float | None:
    """What ``instance`` costs per hour now, or None when that figure is not a believable price
    (negative, not finite, or beyond any GPU's rent): it is then neither summed nor booked."""
    gpus = min(max(instance.gpu_count, 1), MAX_PLAUSIBLE_GPUS_PER_INSTANCE)
    return bounds.billed_price(instance.current_price_hour, gpus)


def split_plausible(offers: Sequence[Offer]) -> tuple[list[Offer], int]:
    """Plausible offers, and how many were dropped as implausible (zero or absurd prices)."""
    kept = [offer for offer in offers if is_plausible(offer)]
    return kept, len(offers) - len(kept)


def price_at_disk(offer: Offer, disk_gb: int, planned_disk_gb: int) -> float:
    """The all-in $/h if the user picks ``disk_gb`` instead of the disk the quote assumed."""
    if offer.storage_gb_month is None:
        return offer.price_hour
    return max(0.0, offer.price_hour + (disk_gb - planned_disk_gb) * offer.storage_gb_month / 720.0)
