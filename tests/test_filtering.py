"""The filter language: words, numeric and list predicates, errors with positions, index agreement."""

from __future__ import annotations

import pytest

from computehub_tui.domain.filtering import FilterError, OfferIndex, parse_filter
from computehub_tui.domain.models import Offer, PricingKind


def offer(provider: str, gpu: str, count: int = 1, price: float = 1.0, vram: float = 24, rel: float | None = 0.99,
          location: str = "Oslo, NO", country: str = "NO", spot: bool = False, available: bool = True,
          cuda: float | None = 12.4) -> Offer:
    pricing = PricingKind.INTERRUPTIBLE if spot else PricingKind.ON_DEMAND
    return Offer(provider, f"{provider}-{gpu}-{price}", gpu, count, vram, 8, 32, 20, price, pricing, location, rel,
                 available, 0.0, country=country, cuda=cuda)


OFFERS = [
    offer("vast", "H100 SXM", 8, 18.0, 80, 0.99, "Texas, US", "US"),
    offer("runpod", "H100 SXM", 1, 2.99, 80, None, "Secure Cloud (CA)", "CA"),
    offer("lambda", "H100 PCIe", 1, 2.49, 80, None, "us-east-1", "US"),
    offer("vast", "RTX 4090", 1, 0.35, 24, 0.90, "Oslo, NO", "NO", spot=True),
    offer("tensordock", "RTX 4090", 2, 0.9, 24, None, "Chicago, United States", "US", cuda=None),
    offer("vast", "RTX A6000", 1, 0.45, 48, 0.999, "Bavaria, DE", "DE", available=False),
]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", 6),
        ("h100", 3),
        ("H100 sxm", 2),
        ("oslo", 1),
        ("vast", 3),
        ("h100 vram>=80 price<2.5", 1),
        ("gpus>=2", 2),
        ("region:US,CA", 4),
        ("region:oslo", 1),
        ("rel>=0.98", 2),
        ("provider:vast,runpod spot:no", 3),
        ("spot:yes", 1),
        ("cuda>=12.4", 5),
        ("avail:yes", 5),
        ("gpu:h100sxm", 2),
        ("gpu:4090 pergpu<0.5", 2),
        ("p:td", 1),
        ("totalvram>=160", 1),
    ],
)
def test_filter_selects_and_agrees_with_single_offer_matching(text: str, expected: int) -> None:
    compiled = parse_filter(text)
    selected = compiled.select(OfferIndex(OFFERS))
    assert len(selected) == expected
    assert selected == [o for o in OFFERS if compiled.matches(o)]
    assert selected == compiled.apply(OFFERS)


@pytest.mark.parametrize(
    ("text", "column", "fragment"),
    [
        ("h100 price<cheap", 6, "needs a number"),
        ("vram>=80 colour>3", 10, "unknown field 'colour'"),
        ("h100 nation:US", 6, "unknown field 'nation:'"),
        ("spot:maybe", 1, "yes or no"),
        ("price<", 1, "needs a number"),
        ("h100 >=2", 6, "incomplete predicate"),
        ("provider:", 1, "needs at least one value"),
    ],
)
def test_malformed_filters_name_the_token_and_column(text: str, column: int, fragment: str) -> None:
    with pytest.raises(FilterError) as caught:
        parse_filter(text)
    assert fragment in str(caught.value)
    assert f"column {column}" in str(caught.value)


def test_index_keeps_order_so_sorted_input_stays_sorted() -> None:
    ordered = sorted(OFFERS, key=lambda o: o.price_hour)
    assert [o.price_hour for o in parse_filter("vast").select(OfferIndex(ordered))] == [0.35, 0.45, 18.0]


def test_reordered_index_keeps_columns_aligned_with_offers() -> None:
    index = OfferIndex(OFFERS)
    index.column("rel")
    order = index.sort_order("price", lambda o: o.price_hour, reverse=False)
    ordered = index.reordered(order)
    assert [o.price_hour for o in ordered.offers] == sorted(o.price_hour for o in OFFERS)
    assert ordered.column("rel") == [o.reliability for o in ordered.offers]
    assert parse_filter("rel>=0.95").select(ordered) == [o for o in ordered.offers if (o.reliability or 0) >= 0.95]
