"""Price history: the demo replay, the market summary with its 24 h change, and value explanations."""

from __future__ import annotations

import asyncio
from pathlib import Path

from computehub_tui.clock import ManualClock
from computehub_tui.domain.history import PriceStat
from computehub_tui.domain.market import market_summary
from computehub_tui.domain.models import Offer, OfferQuery, PricingKind
from computehub_tui.domain.ranking import explain_value, value_cost
from computehub_tui.engine.hub import REPLAY_DELAY_S, Hub
from computehub_tui.providers.demo.history import replay_price_history
from computehub_tui.store import Store


def offer(provider: str, gpu: str, count: int, price: float, reliability: float | None = 0.99,
          offer_id: str = "x") -> Offer:
    return Offer(provider, offer_id, gpu, count, 24, 8, 32, 20, price, PricingKind.ON_DEMAND, "Oslo, NO",
                 reliability, True, 0.0)


async def test_replay_reads_the_simulation_past_through_the_adapters() -> None:
    now = 1_790_000_000.0
    stats = await replay_price_history(42, now, OfferQuery(), ages_s=(86400.0, 3600.0))
    assert {s.at for s in stats} == {now - 86400.0, now - 3600.0}
    assert {s.provider for s in stats} == {"vast", "runpod", "lambda", "tensordock"}
    day_ago = {(s.provider, s.gpu, s.gpu_count, s.pricing): s.min_price for s in stats if s.at == now - 86400}
    hour_ago = {(s.provider, s.gpu, s.gpu_count, s.pricing): s.min_price for s in stats if s.at == now - 3600}
    common = set(day_ago) & set(hour_ago)
    assert len(common) > 50
    assert any(day_ago[k] != hour_ago[k] for k in common)  # prices drift over time


async def test_hub_records_replayed_history_after_the_start_up_delay(tmp_path: Path) -> None:
    clock = ManualClock()
    store = await Store.open(tmp_path / "h.db")
    replayed = [PriceStat(clock.now() - 3600, "vast", "RTX 4090", 1, "on-demand", 0.3, 0.4, 0.5, 9)]
    calls: list[int] = []

    async def replay() -> list[PriceStat]:
        calls.append(1)
        return replayed

    hub = Hub({}, store, clock, history_replay=replay)
    runner = asyncio.create_task(hub.run())
    try:
        for _ in range(5):
            await asyncio.sleep(0)
        assert calls == []  # waits for start-up to settle
        await clock.advance(REPLAY_DELAY_S)
        for _ in range(200):
            if await store.price_history("RTX 4090", 0):
                break
            await asyncio.sleep(0.005)
        assert await store.price_history("RTX 4090", 0) == replayed
        assert calls == [1]
    finally:
        runner.cancel()
        await asyncio.gather(runner, return_exceptions=True)
        await store.close()


def test_market_summary_picks_cheapest_per_gpu_and_computes_24h_change() -> None:
    offers = [offer("vast", "RTX 4090", 2, 0.80, offer_id="a"), offer("runpod", "RTX 4090", 1, 0.34, offer_id="b"),
              offer("lambda", "H100 SXM", 1, 3.29, offer_id="c")]
    day_ago = [PriceStat(0, "vast", "RTX 4090", 2, "on-demand", 0.60, 0.7, 0.8, 3)]  # 0.30 per GPU
    rows = market_summary(offers, day_ago)
    assert [r.gpu for r in rows] == ["RTX 4090", "H100 SXM"]
    assert rows[0].cheapest.offer_id == "b" and rows[0].providers == ("runpod", "vast")
    assert round(rows[0].change_24h_pct or 0, 1) == round((0.34 - 0.30) / 0.30 * 100, 1)
    assert rows[1].change_24h_pct is None


def test_value_ranking_weighs_reliability_and_explains_itself() -> None:
    reliable = offer("vast", "RTX 4090", 1, 0.40, reliability=0.99, offer_id="r")
    flaky = offer("vast", "RTX 4090", 1, 0.39, reliability=0.70, offer_id="f")
    unknown = offer("vast", "Mystery GPU", 1, 0.10, offer_id="u")
    assert value_cost(reliable) < value_cost(flaky)  # type: ignore[operator]
    assert value_cost(unknown) is None
    peers = [reliable, flaky, unknown, offer("runpod", "RTX 4090", 1, 0.69, None, "p")]
    text = explain_value(reliable, peers)
    assert "Value rank #1 of 3" in text and "PFLOP-hour costs $2.42" in text and "Reliability 0.99" in text
    assert "not in the GPU spec catalogue" in explain_value(unknown, peers)
    assert "assumed for runpod" in explain_value(peers[3], peers)
