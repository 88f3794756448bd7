"""The offers snapshot: each provider's last good offers survive a restart exactly, fast enough for 20,000."""

from __future__ import annotations

import dataclasses
import json
import logging
import sqlite3
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest

from computehub_tui.domain.models import Offer, PricingKind
from computehub_tui.store import Store
from computehub_tui.store import _offer_codec as codec
from computehub_tui.store import offers as offers_module

T0 = 1_790_000_000.0
GPUS = ("RTX 4090", "H100 SXM", "A100 80GB", "L40S", "RTX 3090")
LOCATIONS = ("Quebec, CA", "Texas, US", "Oslo, NO", "Tokyo, JP")


def every_field_offer(provider: str = "vast", n: int = 0) -> Offer:
    """An offer whose every field differs from its default, so a field the store drops shows up."""
    return Offer(
        provider=provider,
        offer_id=f"{1_000_000 + n}-bid",
        gpu="H100 SXM «80GB»",
        gpu_count=8,
        vram_gb=79.6,
        vcpus=95.5,
        ram_gb=1_007.7,
        disk_gb=512.25,
        price_hour=21.123456789,
        pricing=PricingKind.INTERRUPTIBLE,
        location="Montréal, \"QC\" [bold]x[/]",
        reliability=0.99713,
        available=False,
        quoted_at=T0 + 0.123456,
        country="CA",
        cuda=12.4,
        inet_down_mbps=9_123.75,
        storage_gb_month=0.15,
        min_bid=1.0000001,
        raw_gpu_name="NVIDIA H100 80GB HBM3",
        extra={"ask_id": 1_000_000 + n, "host_id": 201456, "prices": {"gpu": 2.5, "disk": [0.1, None]},
               "label": "ünïcode ✓"},
    )


def many_offers(count: int, provider: str = "vast") -> list[Offer]:
    """A market shaped like Vast's: repeated GPU names and places, unique ids and prices, a few unknowns."""
    return [
        Offer(
            provider=provider, offer_id=str(30_000_000 + n), gpu=GPUS[n % 5], gpu_count=1 << (n % 4),
            vram_gb=24.0 + n % 3, vcpus=16.0, ram_gb=64.0 + n % 7, disk_gb=50.0, price_hour=0.1 + n * 0.000137,
            pricing=PricingKind.ON_DEMAND if n % 3 else PricingKind.INTERRUPTIBLE, location=LOCATIONS[n % 4],
            reliability=None if n % 11 == 0 else 0.9 + (n % 100) / 1000, available=n % 13 != 0,
            quoted_at=T0 + n / 1000, country=LOCATIONS[n % 4][-2:], cuda=None if n % 17 == 0 else 12.2,
            inet_down_mbps=100.0 + n % 900, storage_gb_month=0.2, min_bid=None if n % 3 else 0.05 + n / 1e6,
            raw_gpu_name=GPUS[n % 5], extra=vast_extra(n),
        )
        for n in range(count)
    ]


def vast_extra(n: int) -> dict[str, object]:
    """What the Vast adapter keeps per offer to launch it again; some offers lack a figure."""
    return {"ask_id": 30_000_000 + n, "machine_id": n // 4, "host_id": None if n % 50 == 0 else n // 16,
            "dph_base": 0.1 + n * 0.0001, "storage_hour": 0.0055 if n % 9 else None, "max_disk_gb": 412.3,
            "direct_port_count": 64, "hosting_type": n % 2}


def assert_same_offers(loaded: list[Offer], saved: list[Offer]) -> None:
    assert loaded == saved
    # ``extra`` is left out of Offer equality, and launching an offer again needs it.
    assert [offer.extra for offer in loaded] == [offer.extra for offer in saved]


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    async with await Store.open(tmp_path / "offers.db") as opened:
        yield opened


def test_the_codec_stores_every_offer_field() -> None:
    assert [name for name, _ in codec.OFFER_COLUMNS] == [f.name for f in dataclasses.fields(Offer)]
    offer = every_field_offer()
    for field in dataclasses.fields(Offer):
        assert getattr(offer, field.name) != field.default, f"set {field.name} in every_field_offer"


async def test_offers_round_trip_exactly_with_their_fetch_time(store: Store, tmp_path: Path) -> None:
    vast = [every_field_offer("vast", n) for n in range(3)] + many_offers(50)
    lambda_ = [dataclasses.replace(every_field_offer("lambda"), reliability=None, cuda=None, min_bid=None,
                                   storage_gb_month=None, inet_down_mbps=None, extra={})]
    await store.save_offers("vast", vast, T0 + 5)
    await store.save_offers("lambda", lambda_, T0 + 7)
    await store.close()

    async with await Store.open(tmp_path / "offers.db") as reopened:
        loaded = await reopened.load_offers()
    assert sorted(loaded) == ["lambda", "vast"]
    assert loaded["vast"][0] == T0 + 5 and loaded["lambda"][0] == T0 + 7
    assert_same_offers(loaded["vast"][1], vast)
    assert_same_offers(loaded["lambda"][1], lambda_)
    assert loaded["vast"][1][0].pricing is PricingKind.INTERRUPTIBLE
    assert [o.quoted_at for o in loaded["vast"][1]] == [o.quoted_at for o in vast]


async def test_numbers_at_the_edges_survive_bit_for_bit(store: Store) -> None:
    edges = [dataclasses.replace(every_field_offer(n=n), price_hour=price, vram_gb=-0.0, gpu_count=count)
             for n, (price, count) in enumerate([(1e308, 0), (5e-324, 2**40), (0.1 + 0.2, -3)])]
    await store.save_offers("vast", edges, T0)
    loaded = (await store.load_offers())["vast"][1]
    assert [o.price_hour for o in loaded] == [1e308, 5e-324, 0.1 + 0.2]
    assert [o.gpu_count for o in loaded] == [0, 2**40, -3]
    assert all(str(o.vram_gb) == "-0.0" for o in loaded)


async def test_a_new_save_replaces_only_that_providers_snapshot(store: Store) -> None:
    await store.save_offers("vast", many_offers(10), T0)
    await store.save_offers("runpod", many_offers(3, "runpod"), T0)
    await store.save_offers("vast", many_offers(4), T0 + 60)
    await store.save_offers("runpod", [], T0 + 60)  # the provider answered: nothing is on offer now
    loaded = await store.load_offers()
    assert {name: (at, len(offers)) for name, (at, offers) in loaded.items()} == {
        "vast": (T0 + 60, 4), "runpod": (T0 + 60, 0)}


async def test_saving_another_providers_offers_is_refused(store: Store) -> None:
    with pytest.raises(ValueError, match="runpod"):
        await store.save_offers("vast", [every_field_offer("vast"), every_field_offer("runpod")], T0)
    assert await store.load_offers() == {}


def corrupt_payloads() -> dict[str, bytes]:
    good = codec.encode_offers(many_offers(5))
    return {
        "truncated": good[:-3],
        "trailing bytes": good + b"\0",
        "not a payload": b"\xff\xff\xff\x7f{",
        "a future format": good.replace(b'"format":1', b'"format":9'),
    }


@pytest.mark.parametrize("how", sorted(corrupt_payloads()))
async def test_an_unreadable_snapshot_is_skipped_and_the_others_load(
    store: Store, tmp_path: Path, how: str, caplog: pytest.LogCaptureFixture
) -> None:
    await store.save_offers("vast", many_offers(5), T0)
    await store.save_offers("runpod", many_offers(2, "runpod"), T0)
    with sqlite3.connect(tmp_path / "offers.db") as db:
        db.execute("UPDATE offers_snapshot SET payload = ? WHERE provider = 'vast'", (corrupt_payloads()[how],))
    with caplog.at_level(logging.WARNING):
        loaded = await store.load_offers()
    assert list(loaded) == ["runpod"] and len(loaded["runpod"][1]) == 2
    assert "skipping the stored vast offers" in caplog.text


def test_a_payload_without_a_newer_field_takes_its_default(monkeypatch: pytest.MonkeyPatch) -> None:
    offers = [every_field_offer(n=n) for n in range(3)]
    older = tuple(column for column in codec.OFFER_COLUMNS if column[0] not in ("raw_gpu_name", "extra"))
    with monkeypatch.context() as patch:
        patch.setattr(codec, "OFFER_COLUMNS", older)
        payload = codec.encode_offers(offers)
    decoded = codec.decode_offers(payload)
    assert [o.raw_gpu_name for o in decoded] == ["", "", ""] and [o.extra for o in decoded] == [{}, {}, {}]
    assert decoded[0].extra is not decoded[1].extra
    assert [dataclasses.replace(o, raw_gpu_name="") for o in offers] == decoded


def test_a_payload_missing_a_required_field_is_unreadable(monkeypatch: pytest.MonkeyPatch) -> None:
    with monkeypatch.context() as patch:
        patch.setattr(codec, "OFFER_COLUMNS", codec.OFFER_COLUMNS[1:])
        payload = codec.encode_offers([every_field_offer()])
    with pytest.raises(codec.OffersDecodeError, match="provider"):
        codec.decode_offers(payload)


def with_added_column(payload: bytes, name: str, kind: str, section: bytes) -> bytes:
    """``payload`` as a newer version might write it: one more column at the end."""
    size = int.from_bytes(payload[:4], "little")
    header = json.loads(payload[4:4 + size])
    header["columns"].append([name, kind, len(section)])
    new_header = json.dumps(header).encode()
    return len(new_header).to_bytes(4, "little") + new_header + payload[4 + size:] + section


def test_a_column_from_a_newer_version_is_ignored() -> None:
    offers = [every_field_offer(n=n) for n in range(2)]
    payload = with_added_column(codec.encode_offers(offers), "carbon_g", "float", b"\0" * 16)
    payload = with_added_column(payload, "gpu", "future-kind", b"\1" * 5)
    assert_same_offers(codec.decode_offers(payload), offers)


def test_extras_of_every_shape_and_type_round_trip_exactly() -> None:
    extras: list[dict[str, object]] = [
        {}, {"a": 1, "b": "x"}, {"b": "y", "a": 2}, {"a": 2**70, "b": "z"}, {"f": 1.5}, {"f": None}, {"f": float("inf")},
        {"mixed": [1, "two", {"three": 3.0}]}, {"t": True}, {}, {"a": 3, "b": "x"}, {"n": -(2**63)},
    ]
    offers = [dataclasses.replace(every_field_offer(n=n), extra=extra) for n, extra in enumerate(extras)]
    decoded = codec.decode_offers(codec.encode_offers(offers))
    assert [o.extra for o in decoded] == extras
    assert [list(o.extra) for o in decoded] == [list(extra) for extra in extras]  # key order too
    assert [type(v) for o in decoded for v in o.extra.values()] == [type(v) for e in extras for v in e.values()]


async def best_cpu_ms(action: Callable[[], Awaitable[object]], runs: int = 3) -> float:
    """The least process CPU time (all threads) over ``runs``: other processes' load does not count."""
    timings = []
    for _ in range(runs):
        started = time.process_time()
        await action()
        timings.append((time.process_time() - started) * 1000)
    return min(timings)


def as_json(offers: list[Offer]) -> bytes:
    """The obvious encoding, as the baseline: every field of every offer as a JSON object."""
    names = [field.name for field in dataclasses.fields(Offer)]
    return json.dumps([{name: getattr(offer, name) for name in names} for offer in offers]).encode()


def from_json(payload: bytes) -> list[Offer]:
    return [Offer(**{**fields, "pricing": PricingKind(fields["pricing"])}) for fields in json.loads(payload)]


async def test_twenty_thousand_offers_save_and_load_in_milliseconds(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    offers = many_offers(20_000)
    save_ms = await best_cpu_ms(lambda: store.save_offers("vast", offers, T0))
    load_ms = await best_cpu_ms(store.load_offers)
    loaded = await store.load_offers()
    (size,) = (await store._fetch("size", "SELECT length(payload) FROM offers_snapshot"))[0]
    # The baseline: the same store calls with the JSON codec, measured in the same run so that a loaded
    # machine slows both alike.
    with monkeypatch.context() as patch:
        patch.setattr(offers_module, "encode_offers", as_json)
        patch.setattr(offers_module, "decode_offers", from_json)
        json_save_ms = await best_cpu_ms(lambda: store.save_offers("vast", offers, T0), runs=2)
        json_load_ms = await best_cpu_ms(store.load_offers, runs=2)
        (json_size,) = (await store._fetch("size", "SELECT length(payload) FROM offers_snapshot"))[0]
    print(f"\n20,000 offers, CPU ms: save {save_ms:.0f} (with JSON {json_save_ms:.0f}), "
          f"load {load_ms:.0f} (with JSON {json_load_ms:.0f}); {size / len(offers):.0f} bytes each "
          f"(JSON {json_size / len(offers):.0f})")
    assert_same_offers(loaded["vast"][1], offers)
    # Measured here (2 slow vCPUs, other work running): save 85-135 ms, a quarter of JSON's; load 140-220 ms,
    # most of it building the Offer objects, a third of JSON's.
    assert size < json_size / 3
    assert save_ms < json_save_ms / 2
    assert load_ms < json_load_ms / 1.5
