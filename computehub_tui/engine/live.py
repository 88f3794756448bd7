"""What the engine knows now: each bound provider's adapter and its last good offers and instances.

Everything here is replaced whole, never changed in place: the engine's loop writes, while the UI
thread reads whatever snapshot is current (a tuple or mapping that cannot change under it).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from types import MappingProxyType
from typing import TypeVar

from computehub_tui.domain.models import Instance, Offer
from computehub_tui.providers.base import Provider

T = TypeVar("T")


class LiveData:
    def __init__(self, providers: Mapping[str, Provider]) -> None:
        self._providers: Mapping[str, Provider] = MappingProxyType(dict(providers))
        self._offers: dict[str, tuple[Offer, ...]] = {name: () for name in providers}
        self._instances: dict[str, tuple[Instance, ...]] = {name: () for name in providers}
        self._all_offers: tuple[Offer, ...] = ()
        self._all_instances: tuple[Instance, ...] = ()
        self._by_key: Mapping[str, Instance] = {}
        self._implausible: Mapping[str, int] = MappingProxyType({name: 0 for name in providers})
        self.offers_version = 0
        """Bumped on every offers change so views can skip work when nothing moved."""

    # -- providers ------------------------------------------------------------------------------

    @property
    def providers(self) -> Mapping[str, Provider]:
        """The bound adapters by name (a read-only snapshot)."""
        return self._providers

    def attach(self, name: str, provider: Provider) -> None:
        """Add or replace ``name``'s adapter; whatever the old one fetched is dropped."""
        self._providers = MappingProxyType({**self._providers, name: provider})
        self._set_offers(name, (), 0)
        self._set_instances(name, ())

    def detach(self, name: str) -> None:
        self._providers = MappingProxyType({n: p for n, p in self._providers.items() if n != name})
        self._publish_offers({n: o for n, o in self._offers.items() if n != name},
                             {n: c for n, c in self._implausible.items() if n != name})
        self._publish_instances({n: i for n, i in self._instances.items() if n != name})

    # -- offers ---------------------------------------------------------------------------------

    @property
    def offers(self) -> tuple[Offer, ...]:
        return self._all_offers

    @property
    def implausible_counts(self) -> Mapping[str, int]:
        """Offers dropped per provider for zero or absurd prices (shown, never ranked)."""
        return self._implausible

    def offer(self, key: str) -> Offer | None:
        provider = key.partition(":")[0]
        return next((o for o in self._offers.get(provider, ()) if o.key == key), None)

    def set_offers(self, provider: str, offers: Sequence[Offer], implausible: int) -> None:
        if provider in self._providers:
            self._set_offers(provider, tuple(offers), implausible)

    def _set_offers(self, provider: str, offers: tuple[Offer, ...], implausible: int) -> None:
        self._publish_offers({**self._offers, provider: offers}, {**self._implausible, provider: implausible})

    def _publish_offers(self, by_provider: dict[str, tuple[Offer, ...]], implausible: dict[str, int]) -> None:
        everything = _joined(by_provider.values())
        self._offers, self._all_offers = by_provider, everything
        self._implausible = MappingProxyType(implausible)
        self.offers_version += 1

    # -- instances ------------------------------------------------------------------------------

    @property
    def instances(self) -> tuple[Instance, ...]:
        return self._all_instances

    def instance(self, key: str) -> Instance | None:
        return self._by_key.get(key)

    def set_instances(self, provider: str, instances: Sequence[Instance]) -> None:
        if provider in self._providers:
            self._set_instances(provider, tuple(instances))

    def _set_instances(self, provider: str, instances: tuple[Instance, ...]) -> None:
        self._publish_instances({**self._instances, provider: instances})

    def _publish_instances(self, by_provider: dict[str, tuple[Instance, ...]]) -> None:
        # Everything is built before anything is replaced: a bad row leaves the old view whole.
        everything = _joined(by_provider.values())
        by_key = MappingProxyType({instance.key: instance for instance in everything})
        self._instances, self._all_instances, self._by_key = by_provider, everything, by_key


def _joined(groups: Iterable[tuple[T, ...]]) -> tuple[T, ...]:
    return tuple(item for group in groups for item in group)
