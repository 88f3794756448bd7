"""Commands that change machines: start / stop / restart / destroy and launch, each audited with its actor."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

from computehub_tui.clock import Clock
from computehub_tui.domain.models import LaunchSpec, Offer
from computehub_tui.engine.automation.launches import launch_record
from computehub_tui.engine.costs import CostService
from computehub_tui.engine.events import ActionFinished, ActionStarted, EventBus
from computehub_tui.engine.live import LiveData
from computehub_tui.engine.policy import ACTIONS, check_max_price, launch_price
from computehub_tui.engine.safe_store import SafeStore
from computehub_tui.providers.base import NotFoundError, ProviderError

BILLING_AFTER_ACTION = {"start": True, "restart": True, "stop": False, "destroy": False}
ACTOR_USER = "user"
"""Who acted, as the audit log records it: the TUI's user; the CLI; (next) the rule runner's "rule:<name>"."""
ACTOR_CLI = "cli"


@dataclass(frozen=True, slots=True)
class LaunchQuote:
    offer: Offer
    """The freshest quote the engine holds for the offer asked for."""
    price_hour: float
    """What the launch would bill per hour, all in (disk size and bid included)."""


@dataclass(frozen=True, slots=True)
class ActionResult:
    key: str
    ok: bool
    message: str


def split_key(key: str) -> tuple[str, str]:
    """``"vast:123"`` → ``("vast", "123")``; raises ValueError for anything else."""
    provider, sep, instance_id = key.partition(":")
    if not sep or not provider or not instance_id:
        raise ValueError(f"instance IDs look like provider:id (e.g. vast:1234567), not {key!r}")
    return provider, instance_id


class ActionService:
    """Sends commands to providers. Callers decide *whether* with ``engine.policy``; launches are
    re-checked here against the freshest quote, since the caller's copy may be minutes old."""

    def __init__(self, live: LiveData, costs: CostService, store: SafeStore, bus: EventBus, clock: Clock,
                 reread: Callable[[str], Awaitable[bool]], planned_disk_gb: int) -> None:
        self._live = live
        self._costs = costs
        self._store = store
        self._bus = bus
        self._clock = clock
        self._reread = reread
        """Re-reads one provider's instances (after an action, so the UI shows the new state)."""
        self._planned_disk_gb = planned_disk_gb

    def quote(self, offer: Offer, spec: LaunchSpec) -> LaunchQuote:
        """What launching ``offer`` with ``spec`` would cost at the freshest quote the engine holds."""
        fresh = self._live.offer(offer.key) or offer
        return LaunchQuote(fresh, launch_price(fresh, disk_gb=spec.disk_gb, planned_disk_gb=self._planned_disk_gb,
                                               bid=spec.bid_price))

    async def launch(self, offer: Offer, spec: LaunchSpec, *, refresh: bool = True, max_price: float | None = None,
                     actor: str = ACTOR_USER, audited: bool = True) -> str:
        """Rent ``offer`` at its freshest known quote; returns the new instance key. Raises
        PriceAboveMaximum (nothing sent) when that quote bills more than ``max_price`` per hour, and
        ProviderError when the provider refuses. ``audited=False``: the caller writes the audit row (a rule's
        firing is one row)."""
        offer, price = (quote := self.quote(offer, spec)).offer, quote.price_hour
        check_max_price(offer, price, max_price)
        provider = self._live.providers[offer.provider]
        self._bus.publish(ActionStarted("launch", offer.key))
        try:
            instance_id = await provider.launch(offer, spec)
        except ProviderError as error:
            if audited:
                await self._audit(actor, "launch", offer.key, f"{offer.gpu_count}x {offer.gpu} ${price:.3f}/h",
                                  str(error))
            self._bus.publish(ActionFinished("launch", offer.key, False, str(error)))
            raise
        key = f"{offer.provider}:{instance_id}"
        # Relaunch and migrate launch the same settings again later: keep what this one was made from.
        await self._store.call(self._store.store.record_launch(launch_record(key, offer, spec, self._clock.now())))
        await self._costs.record_transition(key, True)  # its uptime and cost start now, whatever the provider says
        if audited:
            await self._audit(actor, "launch", key, f"{offer.gpu_count}x {offer.gpu} from offer {offer.offer_id} "
                                                    f"at ${price:.3f}/h, image {spec.image}")
        self._bus.publish(ActionFinished("launch", key, True, f"launched {key}"))
        if refresh:
            await self._reread(offer.provider)
        return key

    async def act(self, action: str, key: str, *, refresh: bool = True, actor: str = ACTOR_USER,
                  audited: bool = True) -> ActionResult:
        """Run start/stop/restart/destroy on one instance; never raises for provider errors. ``audited=False``:
        the caller writes the audit row."""
        if action not in ACTIONS:
            raise ValueError(f"unknown action {action!r}")
        try:
            provider_name, instance_id = split_key(key)
        except ValueError as error:
            return ActionResult(key, False, str(error))
        provider = self._live.providers.get(provider_name)
        if provider is None:
            return ActionResult(key, False, f"{provider_name!r} is not a bound provider ({key})")
        self._bus.publish(ActionStarted(action, key))
        try:
            await getattr(provider, action)(instance_id)
        except ProviderError as error:
            if audited:
                await self._audit(actor, action, key, "", str(error))
            self._bus.publish(ActionFinished(action, key, False, str(error)))
            return ActionResult(key, False, str(error))
        await self._costs.record_transition(key, BILLING_AFTER_ACTION[action])
        if audited:
            await self._audit(actor, action, key, "")
        self._bus.publish(ActionFinished(action, key, True, f"{action} {key}: done"))
        if refresh:
            await self._reread(provider_name)
        return ActionResult(key, True, f"{action} {key}: done")

    async def act_many(self, action: str, keys: Sequence[str], *, actor: str = ACTOR_USER) -> list[ActionResult]:
        """The same action on a marked set, concurrently; one failure does not stop the others."""
        return list(await asyncio.gather(*(self.act(action, key, actor=actor) for key in keys)))

    async def logs(self, key: str, tail: int = 200) -> str:
        provider_name, instance_id = split_key(key)
        provider = self._live.providers.get(provider_name)
        if provider is None:
            raise NotFoundError(provider_name, f"provider {provider_name!r} is not configured")
        return await provider.logs(instance_id, tail)

    async def _audit(self, actor: str, action: str, target: str, detail: str, error: str = "") -> None:
        await self._store.call(self._store.store.audit(self._clock.now(), actor, action, target,
                                                       detail or error, "error" if error else "ok"))
