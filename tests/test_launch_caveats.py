"""The caveats shown before a launch: each once, and only those that apply to the offer's pricing."""

from __future__ import annotations

from dataclasses import replace

import pytest

from computehub_tui.domain.models import Capabilities, Offer, PricingKind
from computehub_tui.engine.policy import INTERRUPTIBLE_CAVEAT, launch_caveats
from computehub_tui.providers.registry import PROVIDER_CAPABILITIES

OFFER = Offer("vast", "1", "RTX 4090", 1, 24.0, 16.0, 64.0, 20.0, 0.4, PricingKind.ON_DEMAND, "Quebec, CA", 0.99,
              True, 0.0)
SPOT = replace(OFFER, pricing=PricingKind.INTERRUPTIBLE)


def about_interruption(caveats: tuple[str, ...]) -> list[str]:
    return [c for c in caveats if any(word in c.lower() for word in ("interruptible", "outbid", "spot", "bid "))]


@pytest.mark.parametrize("provider", sorted(PROVIDER_CAPABILITIES))
def test_on_demand_offers_get_no_interruption_caveat_and_spot_offers_exactly_one(provider: str) -> None:
    caps = PROVIDER_CAPABILITIES[provider]
    on_demand = launch_caveats(replace(OFFER, provider=provider), caps)
    spot = launch_caveats(replace(SPOT, provider=provider), caps)
    assert about_interruption(on_demand) == []
    assert len(about_interruption(spot)) == 1 and spot[0] == about_interruption(spot)[0]
    assert len(set(spot)) == len(spot) and set(on_demand) <= set(spot)


def test_the_providers_own_words_lead_and_the_generic_warning_fills_in() -> None:
    vast = launch_caveats(SPOT, PROVIDER_CAPABILITIES["vast"])
    assert vast[0] == "interruptible instances stop when outbid" and INTERRUPTIBLE_CAVEAT not in vast
    plain = launch_caveats(SPOT, Capabilities(notes=("disk size is fixed at launch", "disk size is fixed at launch")))
    assert plain == (INTERRUPTIBLE_CAVEAT, "disk size is fixed at launch")
