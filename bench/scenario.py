"""What the table benchmarks do: the keystrokes typed into the filter, and the sorts pressed."""

from __future__ import annotations

FILTER_KEYSTROKES: tuple[str, ...] = (
    # Typing a narrowing query (with a typo that matches nothing), backing out, clearing.
    "h", "h1", "h10", "h100", "h100 v", "h100 vr", "h100 vram>=8", "h100 vram>=80",
    "h100 vram>=80 price<3", "h100 vram>=80", "h100", "h1", "",
    # A consumer card by region, then clear (Escape) back to everything.
    "4090", "4090 us", "4090 region:us", "4090 region:us spot:no", "4090", "",
    # Predicates, a new query typed over them (select all, type), then clear.
    "provider:runpod", "provider:runpod,lambda", "provider:runpod,lambda rel>=0.99",
    "texas", "texas price<0.5", "",
)
"""Every state parses. A half-typed predicate such as ``vram>`` is rejected by the filter
parser and then neither table changes, so there is nothing to time. Clearing (``""``) brings
back all ~20,000 offers, the worst case for a table that is refilled."""

SORT_PRESSES: tuple[str, ...] = (
    "pergpu", "value", "pflop", "vram", "rel", "age", "gpu", "price", "price",
)
"""One press per sort key on the full offer set; the pane starts sorted by price, so the last
two presses return to price and then flip it to descending."""
