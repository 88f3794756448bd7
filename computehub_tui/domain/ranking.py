"""Value ranking: what a GPU-hour is really worth, in dollars per dense PFLOP-hour."""

from __future__ import annotations

from collections.abc import Callable, Iterable

from computehub_tui.domain.gpus import gpu_spec
from computehub_tui.domain.models import Offer

SORT_KEYS: tuple[str, ...] = ("value", "price", "pergpu", "pflop", "vram", "rel", "age", "gpu", "provider")

ASSUMED_RELIABILITY: dict[str, float] = {"vast": 0.95, "runpod": 0.98, "lambda": 0.99, "tensordock": 0.97}
"""Used where a provider publishes no per-offer reliability (only Vast does)."""


def dense_pflops(offer: Offer) -> float | None:
    """Dense FP16/BF16 tensor PFLOPS of the whole offer, from the spec catalogue."""
    spec = gpu_spec(offer.gpu)
    return None if spec is None else spec.fp16_tflops * offer.gpu_count / 1000.0


def price_per_pflop_hour(offer: Offer) -> float | None:
    pflops = dense_pflops(offer)
    return None if not pflops else offer.price_hour / pflops


def effective_reliability(offer: Offer) -> float:
    if offer.reliability is not None:
        return max(0.01, min(1.0, offer.reliability))
    return ASSUMED_RELIABILITY.get(offer.provider, 0.95)


def value_cost(offer: Offer, reliability_weight: float = 1.0) -> float | None:
    """$/PFLOP-h divided by reliability^weight: the expected price of a useful PFLOP-hour.
    Lower is better; None when the GPU is not in the catalogue."""
    per_pflop = price_per_pflop_hour(offer)
    if per_pflop is None:
        return None
    return per_pflop / effective_reliability(offer) ** reliability_weight


def sort_key(name: str, now: float) -> tuple[Callable[[Offer], object], bool]:
    """A key function and whether to reverse, for one of SORT_KEYS. Unknowns sort last."""
    inf = float("inf")
    keys: dict[str, tuple[Callable[[Offer], object], bool]] = {
        "value": (lambda o: _or(value_cost(o), inf), False),
        "price": (lambda o: o.price_hour, False),
        "pergpu": (lambda o: o.price_per_gpu_hour, False),
        "pflop": (lambda o: _or(price_per_pflop_hour(o), inf), False),
        "vram": (lambda o: -o.vram_gb, False),
        "rel": (lambda o: -effective_reliability(o), False),
        "age": (lambda o: now - o.quoted_at, False),
        "gpu": (lambda o: (o.gpu, o.price_hour), False),
        "provider": (lambda o: (o.provider, o.price_hour), False),
    }
    if name not in keys:
        raise ValueError(f"unknown sort {name!r}; choose one of {', '.join(SORT_KEYS)}")
    return keys[name]


def sort_offers(offers: Iterable[Offer], name: str, now: float, reverse: bool = False) -> list[Offer]:
    key, default_reverse = sort_key(name, now)
    return sorted(offers, key=key, reverse=reverse != default_reverse)  # type: ignore[arg-type]


def _or(value: float | None, default: float) -> float:
    return default if value is None else value
