"""`launch` in the CLI follows the engine's launch policy: `--max-price` refuses with one line and exit 1 above
the live quote and launches below it; "no capacity" names the next-best offer."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fakes.accounts import KEYS, Market, ok, one_error_line, open_market
from fakes.lambda_cloud import FakeLambda

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


def test_no_capacity_names_the_next_best_offer(market: Market) -> None:
    full = market.start(FakeLambda(KEYS["lambda"]))
    full.capacity = False
    run = market.run("launch", "lambda", "gpu_1x_h100_sxm5@us-east-1", "--image", "x", "--yes",
                     env=market.environment(**full.endpoint_env()))
    line = one_error_line(run, 1)
    assert "lambda: no capacity" in line, run.describe()
    assert ("the next best is lambda offer gpu_1x_h100_sxm5@europe-central-1 at $3.290/h (europe-central-1): "
            "run the same command with gpu_1x_h100_sxm5@europe-central-1") in line, run.describe()
