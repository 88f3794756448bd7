"""The store's codec round trips and the pure price-statistics helper it records."""

from __future__ import annotations

import json

import pytest

from computehub_tui.domain.history import percentile, price_stats
from computehub_tui.domain.models import (
    Instance,
    InstanceStatus,
    MetricSample,
    PricingKind,
    Offer,
    PricingKind,
    SshEndpoint,
)
from computehub_tui.store._codec import (
    SnapshotDecodeError,
    decode_instance,
    decode_metric_sample,
    encode_instance,
    encode_metric_sample,
)

T0 = 1_790_000_000.0


def make_offer(
    price: float,
    provider: str = "vast",
    gpu: str = "RTX 4090",
    gpu_count: int = 1,
    pricing: PricingKind = PricingKind.ON_DEMAND,
    available: bool = True,
) -> Offer:
    return Offer(
        provider=provider,
        offer_id=f"{provider}-{gpu}-{price}",
        gpu=gpu,
        gpu_count=gpu_count,
        vram_gb=24,
        vcpus=16,
        ram_gb=64,
        disk_gb=20,
        price_hour=price,
        pricing=pricing,
        location="US",
        reliability=0.99,
        available=available,
        quoted_at=T0,
    )


# -- codec --------------------------------------------------------------------------------


def test_instance_snapshot_round_trips_every_field_but_metrics() -> None:
    instance = Instance(
        provider="runpod",
        instance_id="pod-9x",
        label="train «λ»",
        status=InstanceStatus.PROVISIONING,
        provider_status="CREATED",
        gpu="H100 SXM",
        gpu_count=8,
        price_hour=21.52,
        ssh=SshEndpoint("203.0.113.5", 40022, "ubuntu"),
        ports={"8888/http": "203.0.113.5:40888"},
        started_at=T0 + 0.25,
        running_since=T0 + 60.5,
        location="EU-RO-1",
        image="runpod/pytorch:2.4",
        storage_price_hour=0.03,
        status_message="pulling image",
        metrics=MetricSample(time=T0, gpu_util=(1.0,)),
        pricing=PricingKind.INTERRUPTIBLE,
    )

    text = encode_instance(instance)
    decoded = decode_instance(text)

    for name, field in Instance.__dataclass_fields__.items():
        expected = None if name == "metrics" else getattr(instance, name)
        assert getattr(decoded, name) == expected, name
        assert name == "metrics" or expected != field.default, f"set {name} so its loss would show"
    assert "metrics" not in json.loads(text)


def test_instance_snapshot_from_a_newer_version_degrades_gracefully() -> None:
    snapshot = {"provider": "vast", "instance_id": "7", "status": "hibernating", "future_field": 1}
    decoded = decode_instance(json.dumps(snapshot))
    assert decoded.key == "vast:7"
    assert decoded.status is InstanceStatus.UNKNOWN
    assert decoded.ssh is None and decoded.ports == {}


@pytest.mark.parametrize(
    "text",
    [
        "{broken",
        "[]",
        '{"provider": "vast"}',
        '{"provider": "v", "instance_id": "1", "ssh": {"host": "h"}}',
    ],
)
def test_unreadable_instance_snapshot_raises_decode_error(text: str) -> None:
    with pytest.raises(SnapshotDecodeError):
        decode_instance(text)


def test_metric_sample_round_trips_including_missing_values() -> None:
    full = MetricSample(
        time=T0 + 0.5,
        gpu_util=(99.5, 0.0, 12.3),
        vram_used_gb=(79.125, 0.5, 3.0),
        vram_total_gb=(80.0, 80.0, 80.0),
        gpu_temp_c=(71.0, 35.0, 40.0),
        cpu_pct=0.0,
        ram_pct=88.8,
    )
    empty = MetricSample(time=T0)

    for sample in (full, empty):
        assert decode_metric_sample(encode_metric_sample(sample)) == sample
    # Packed: seven series lengths, then 2 bytes per utilisation, 4 per VRAM figure, 1 per temperature, CPU, RAM.
    assert len(encode_metric_sample(full)[1]) == 7 + 3 * 2 + 2 * 3 * 4 + 3 * 1 + 4 + 2


# -- price statistics ----------------------------------------------------------------------


def test_price_stats_group_and_summarise() -> None:
    offers = [make_offer(float(p)) for p in range(10, 0, -1)]  # 1..10, unsorted
    offers += [make_offer(0.3, pricing=PricingKind.INTERRUPTIBLE)]
    offers += [make_offer(2.0, gpu_count=2), make_offer(2.2, gpu_count=2)]
    offers += [make_offer(0.5, provider="runpod")]

    stats = price_stats(offers, T0)

    assert [(s.at, s.provider, s.gpu, s.gpu_count, s.pricing, s.offer_count) for s in stats] == [
        (T0, "runpod", "RTX 4090", 1, "on-demand", 1),
        (T0, "vast", "RTX 4090", 1, "interruptible", 1),
        (T0, "vast", "RTX 4090", 1, "on-demand", 10),
        (T0, "vast", "RTX 4090", 2, "on-demand", 2),
    ]
    prices = [(s.min_price, s.median_price, s.p90_price) for s in stats]
    assert prices == [
        (0.5, 0.5, 0.5),
        (0.3, 0.3, 0.3),
        (1.0, 5.5, pytest.approx(9.1)),
        (2.0, pytest.approx(2.1), pytest.approx(2.18)),
    ]


def test_price_stats_leave_out_offers_nobody_can_rent() -> None:
    offers = [
        make_offer(1.0),
        make_offer(0.01, available=False),
        make_offer(float("nan")),
        make_offer(5.0, gpu="A100 SXM", available=False),
    ]

    stats = price_stats(offers, T0)

    assert [(s.gpu, s.min_price, s.offer_count) for s in stats] == [("RTX 4090", 1.0, 1)]
    assert price_stats([], T0) == []


def test_percentile_interpolates_linearly() -> None:
    assert percentile([1.0, 2.0, 3.0, 4.0], 0.5) == 2.5
    assert percentile([1.0, 2.0, 3.0, 4.0], 0.9) == pytest.approx(3.7)
    assert percentile([7.0], 0.9) == 7.0
    with pytest.raises(ValueError):
        percentile([], 0.5)
