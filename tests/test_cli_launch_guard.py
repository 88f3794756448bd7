"""`launch --max-price`: the CLI refuses with one line and exit 1 above the live quote, and launches below it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fakes.accounts import Market, ok, one_error_line, open_market

OFFER = "21934711"
"""The fake Vast offer at $0.385556/h all-in."""
CREATE = f"/api/v0/asks/{OFFER}/"


@pytest.fixture
def market(tmp_path: Path) -> Iterator[Market]:
    with open_market(tmp_path) as opened:
        yield opened


def test_launch_max_price_refuses_above_the_live_quote_and_launches_below_it(market: Market) -> None:
    # One after the other: the launch that goes through rents the offer.
    above = market.run("launch", "vast", OFFER, "--image", "pytorch/pytorch:latest", "--max-price", "0.30", "--yes")
    below = market.run("launch", "vast", OFFER, "--image", "pytorch/pytorch:latest", "--max-price", "0.40", "--yes")
    refusal = one_error_line(above, 1)
    assert "$0.386/h, above your max of $0.300/h; nothing was launched" in refusal, above.describe()
    assert ok(below).stdout.strip().startswith("vast:"), below.describe()
    assert len(market.vast.calls("PUT", CREATE)) == 1  # only the launch under the max reached Vast
