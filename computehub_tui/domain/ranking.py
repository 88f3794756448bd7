"""Value ranking: what a GPU-hour is really worth, in dollars per dense PFLOP-hour."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence

from computehub_tui.domain.gpus import gpu_spec
from computehub_tui.domain.models import Offer

SORT_KEYS: tuple[str, ...] = ("value", "price", "pergpu", "pflop", "vram", "rel", "age", "gpu", "provider",
                              "count", "kind", "cpu", "ram", "location")

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
        "count": (lambda o: (-o.gpu_count, o.price_hour), False),
        "kind": (lambda o: (o.pricing.value, o.price_hour), False),
        "cpu": (lambda o: -o.vcpus, False),
        "ram": (lambda o: -o.ram_gb, False),
        "location": (lambda o: (o.location, o.price_hour), False),
    }
    if name not in keys:
        raise ValueError(f"unknown sort {name!r}; choose one of {', '.join(SORT_KEYS)}")
    return keys[name]


def sort_offers(offers: Iterable[Offer], name: str, now: float, reverse: bool = False) -> list[Offer]:
    key, default_reverse = sort_key(name, now)
    return sorted(offers, key=key, reverse=reverse != default_reverse)  # type: ignore[arg-type]


def _or(value: float | None, default: float) -> float:
    return default if value is None else value


def explain_value(offer: Offer, offers: Sequence[Offer], reliability_weight: float = 1.0) -> str:
    """Why this offer ranks where it does, in plain words."""
    spec = gpu_spec(offer.gpu)
    if spec is None:
        return (f"{offer.gpu} is not in the GPU spec catalogue, so it has no value rank; "
                f"compare it by $/GPU-hour (${offer.price_per_gpu_hour:.3f}).")
    own = value_cost(offer, reliability_weight)
    per_pflop = price_per_pflop_hour(offer)
    assert own is not None and per_pflop is not None
    ranked = sorted(v for v in (value_cost(o, reliability_weight) for o in offers) if v is not None)
    position = sum(1 for v in ranked if v < own) + 1
    reliability = effective_reliability(offer)
    assumed = "" if offer.reliability is not None else f" (assumed for {offer.provider})"
    same_model = sorted(v for v in (price_per_pflop_hour(o) for o in offers if o.gpu == offer.gpu) if v is not None)
    lines = [
        f"Value rank #{position:,} of {len(ranked):,} offers with known specs.",
        f"{offer.gpu_count}x {offer.gpu} delivers {spec.fp16_tflops * offer.gpu_count:,.0f} dense FP16/BF16 TFLOPS "
        f"for ${offer.price_hour:.3f}/h all-in, so one PFLOP-hour costs ${per_pflop:.2f}.",
        f"Reliability {reliability:.2f}{assumed} raises the expected cost of a useful PFLOP-hour to ${own:.2f}.",
    ]
    if len(same_model) >= 3:
        median = same_model[len(same_model) // 2]
        delta = (per_pflop - median) / median * 100 if median else 0.0
        verdict = "cheaper" if delta < 0 else "dearer"
        lines.append(f"The median {offer.gpu} offer costs ${median:.2f}/PFLOP-h: this one is "
                     f"{abs(delta):.0f}% {verdict}.")
    lines.append(f"Spec source: {spec.source}.")
    return "\n".join(lines)
