"""Price sanity and all-in adjustments: keep broken listings out of the ranking."""

from __future__ import annotations

import math
from collections.abc import Sequence

from computehub_tui.domain.models import Instance, Offer

MAX_PLAUSIBLE_PER_GPU_HOUR = 40.0
"""No marketplace GPU rents for more than this per hour; anything above is a broken listing."""
MIN_PLAUSIBLE_PER_GPU_HOUR = 0.005
MAX_PLAUSIBLE_GPUS_PER_INSTANCE = 16
"""Bounds the GPU count a running rate may be scaled by, so a claimed 1e9 GPUs cannot excuse $1e9/h."""


def is_plausible(offer: Offer) -> bool:
    per_gpu = offer.price_per_gpu_hour
    return MIN_PLAUSIBLE_PER_GPU_HOUR <= per_gpu <= MAX_PLAUSIBLE_PER_GPU_HOUR


def plausible_rate(instance: Instance) -> float | None:
    """What ``instance`` costs per hour now, or None when that figure is not a believable price
    (negative, not finite, or beyond any GPU's rent): it is then neither summed nor booked."""
    rate = instance.current_price_hour
    gpus = min(max(instance.gpu_count, 1), MAX_PLAUSIBLE_GPUS_PER_INSTANCE)
    if not math.isfinite(rate) or not 0.0 <= rate <= MAX_PLAUSIBLE_PER_GPU_HOUR * gpus:
        return None
    return rate


def split_plausible(offers: Sequence[Offer]) -> tuple[list[Offer], int]:
    """Plausible offers, and how many were dropped as implausible (zero or absurd prices)."""
    kept = [offer for offer in offers if is_plausible(offer)]
    return kept, len(offers) - len(kept)


def price_at_disk(offer: Offer, disk_gb: int, planned_disk_gb: int) -> float:
    """The all-in $/h if the user picks ``disk_gb`` instead of the disk the quote assumed."""
    if offer.storage_gb_month is None:
        return offer.price_hour
    return max(0.0, offer.price_hour + (disk_gb - planned_disk_gb) * offer.storage_gb_month / 720.0)
