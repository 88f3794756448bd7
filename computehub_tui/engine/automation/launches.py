"""What each instance was launched from (offer and settings), recorded at launch, for relaunch and migrate."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Collection, Iterable, Sequence
from typing import Any

from computehub_tui.domain.models import LaunchSpec, Offer, PricingKind
from computehub_tui.store.automation import LaunchRecord

_SPEC_FIELDS = {f.name for f in dataclasses.fields(LaunchSpec)}
_OFFER_FIELDS = {f.name for f in dataclasses.fields(Offer)}


def launch_record(key: str, offer: Offer, spec: LaunchSpec, at: float) -> LaunchRecord:
    """The record of ``key`` launched from ``offer`` with ``spec`` (plain JSON objects)."""
    offer_json = dataclasses.asdict(offer) | {"pricing": offer.pricing.value}
    # ``extra`` came off the wire; anything JSON cannot hold is kept as text rather than failing the launch.
    offer_json["extra"] = json.loads(json.dumps(offer.extra, default=str))
    spec_json = dataclasses.asdict(spec) | {"ports": list(spec.ports)}
    return LaunchRecord(key, offer_json, spec_json, at)


def offer_of(record: LaunchRecord) -> Offer:
    fields: dict[str, Any] = {k: v for k, v in record.offer.items() if k in _OFFER_FIELDS}
    fields["pricing"] = PricingKind(fields.get("pricing", PricingKind.ON_DEMAND.value))
    return Offer(**fields)


def spec_of(record: LaunchRecord) -> LaunchSpec:
    fields: dict[str, Any] = {k: v for k, v in record.spec.items() if k in _SPEC_FIELDS}
    fields["ports"] = tuple(fields.get("ports", ("22/tcp",)))
    return LaunchSpec(**fields)


def host_of(offer: Offer) -> str:
    """The physical machine an offer runs on, where the provider says (Vast's machine id), else the offer."""
    machine = offer.extra.get("machine_id") or offer.extra.get("host_id")
    return f"{offer.provider}:host:{machine}" if machine is not None else offer.key


def replacement_offers(previous: Offer, offers: Sequence[Offer], *, provider: str | None = None,
                       gpu: str | None = None, max_price: float | None = None) -> list[Offer]:
    """Offers to launch ``previous``'s workload on, best first: the same GPU (or ``gpu``), count and pricing
    kind, available, within ``max_price``; another host before the same one, then the cheapest."""
    wanted_gpu = gpu or previous.gpu
    old_host = host_of(previous)
    candidates = [o for o in offers
                  if o.available and o.key != previous.key and o.gpu == wanted_gpu
                  and o.gpu_count == previous.gpu_count and o.pricing is previous.pricing
                  and (provider is None or o.provider == provider)
                  and (max_price is None or o.price_hour <= max_price)]
    return sorted(candidates, key=lambda o: (host_of(o) == old_host, o.price_hour, o.key))


def replacement_of(old: LaunchRecord, records: Iterable[LaunchRecord], since: float,
                   taken: Collection[str] = ()) -> str | None:
    """The instance launched at or after ``since`` with ``old``'s settings (a relaunch or migrate's replacement),
    the first if several, except those in ``taken`` (the replacements of other firings); None when there is none."""
    spec = spec_of(old)
    found = [r for r in records
             if r.instance_key != old.instance_key and r.instance_key not in taken and r.launched_at >= since
             and spec_of(r) == spec]
    return min(found, key=lambda r: (r.launched_at, r.instance_key)).instance_key if found else None
