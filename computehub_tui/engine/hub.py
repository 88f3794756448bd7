"""The Hub: the one facade the UI and CLI call — polling, last-good data, actions, cost, events."""

from __future__ import annotations

import asyncio
import logging
import math
from collections import deque
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import TypeVar

from computehub_tui.clock import Clock
from computehub_tui.domain.history import PriceStat, price_stats
from computehub_tui.domain.market import MarketRow, market_summary
from computehub_tui.domain.models import (
    Capabilities,
    Instance,
    InstanceStatus,
    LaunchSpec,
    MetricSample,
    Offer,
    OfferQuery,
)
from computehub_tui.domain.pricing import plausible_rate, split_plausible
from computehub_tui.domain.templates import Template
from computehub_tui.engine.events import (
    ActionFinished,
    ActionStarted,
    EventBus,
    InstancesUpdated,
    MetricsSampled,
    OffersUpdated,
    ProviderHealth,
    ProviderHealthChanged,
    SpendUpdated,
    StoreFailed,
)
from computehub_tui.engine.keys import KeyService, connection_verdict
from computehub_tui.providers.base import (
    AuthError,
    CircuitOpenError,
    NotFoundError,
    Provider,
    ProviderError,
    RateLimitedError,
)
from computehub_tui.providers.registry import PROVIDER_CAPABILITIES
from computehub_tui.store import Observation, Store

log = logging.getLogger(__name__)
T = TypeVar("T")

METRIC_HISTORY_SAMPLES = 720
"""Samples kept in memory per instance for sparklines (an hour at the default 5 s)."""
ACTIONS = ("start", "stop", "restart", "destroy")
REPLAY_DELAY_S = 3.0
MAX_THROTTLED_WAIT_S = 300.0
STORE_FAILURE_REPORT_S = 60.0
MAX_UPTIME_S = 400 * 86400.0
"""A provider start time further back than this is not believed."""
BILLING_AFTER_ACTION = {"start": True, "restart": True, "stop": False, "destroy": False}


@dataclass(frozen=True, slots=True)
class PollSettings:
    offers_interval_s: float = 60.0
    instances_interval_s: float = 5.0


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


class Hub:
    """Owns provider state. Polls each provider on its own schedule; one failing provider keeps
    its last good data (marked stale) and never blanks the others."""

    def __init__(
        self,
        providers: dict[str, Provider],
        store: Store,
        clock: Clock,
        *,
        offer_query: OfferQuery | None = None,
        poll: PollSettings | None = None,
        demo: bool = False,
        templates: Sequence[Template] = (),
        template_errors: Sequence[str] = (),
        keys: KeyService | None = None,
        history_replay: Callable[[], Awaitable[list[PriceStat]]] | None = None,
    ) -> None:
        self.providers = providers
        self.store = store
        self.clock = clock
        self.offer_query = offer_query or OfferQuery()
        self.poll = poll or PollSettings()
        self.demo = demo
        self.templates = list(templates)
        self.template_errors = list(template_errors)
        """One line per user template file that could not be used."""
        self.bus = EventBus()
        self._offers: dict[str, list[Offer]] = {name: [] for name in providers}
        self._all_offers: list[Offer] | None = []
        self._instances: dict[str, list[Instance]] = {name: [] for name in providers}
        self._health: dict[str, ProviderHealth] = {name: ProviderHealth(name) for name in providers}
        self._metrics: dict[str, deque[MetricSample]] = {}
        self._costs: dict[str, float] = {}
        self._running_since: dict[str, float | None] = {}
        self._unbelievable_rates: set[str] = set()
        """Instances whose implausible price was logged once already."""
        self._spend_today = 0.0
        self._locks: dict[tuple[str, str], asyncio.Lock] = {}
        self._retry_after: dict[tuple[str, str], float] = {}
        self._failures: dict[tuple[str, str], tuple[str, str]] = {}
        self.implausible_counts: dict[str, int] = {name: 0 for name in providers}
        """Offers dropped per provider for zero or absurd prices (shown, never ranked)."""
        self.offers_version = 0
        self.keys: KeyService | None = keys
        """Binds and tests API keys; None where the caller manages keys itself."""
        self._tasks: dict[str, list[asyncio.Task[None]]] = {}
        self._store_failure_reported_at = float("-inf")
        self.store_failures = 0
        """Store calls that failed in this process (a CLI command exits non-zero when any did)."""
        self.last_store_error = ""
        self._history_replay = history_replay
        """Demo only: fills price history with the simulation's past, after start-up settles."""
        self._running = False
        """Bumped on every offers change so views can skip work when nothing moved."""

    # -- lifecycle --------------------------------------------------------------------------

    async def load_snapshot(self) -> None:
        """Show the last known instances and costs before the first poll answers."""
        remembered = await self.store.load_instances()
        for instance in remembered:
            if instance.provider in self._instances:
                self._instances[instance.provider].append(instance)
        states = await self._store_call(self.store.cost_states())
        for key, state in (states or {}).items():
            self._costs[key] = state.usd
            self._running_since[key] = state.running_since
        await self._refresh_spend()

    async def run(self) -> None:
        """Poll every provider until cancelled; providers added later start polling at once."""
        self._running = True
        for name in list(self.providers):
            self._start_loops(name)
        if self._history_replay is not None:
            self._tasks["history-replay"] = [asyncio.create_task(self._replay_history(self._history_replay))]
        try:
            await asyncio.Event().wait()
        finally:
            self._running = False
            for name in list(self._tasks):
                self._stop_loops(name)

    async def _replay_history(self, replay: Callable[[], Awaitable[list[PriceStat]]]) -> None:
        await self.clock.sleep(REPLAY_DELAY_S)  # let the first frame and first polls finish first
        try:
            stats = await replay()
        except Exception:  # noqa: BLE001 - history is a nicety; polling must go on
            log.exception("replaying demo price history failed")
            return
        await self._store_call(self.store.record_price_stats(stats))

    def _start_loops(self, name: str) -> None:
        self._tasks[name] = [
            asyncio.create_task(self._loop(name, "instances", self.poll.instances_interval_s)),
            asyncio.create_task(self._loop(name, "offers", self.poll.offers_interval_s)),
        ]

    def _stop_loops(self, name: str) -> None:
        for task in self._tasks.pop(name, []):
            task.cancel()

    def set_provider(self, name: str, provider: Provider) -> None:
        """Add or replace a provider (a key was bound or replaced); its old data is dropped."""
        self.remove_provider(name)
        self.providers[name] = provider
        self._offers[name] = []
        self._instances[name] = []
        self._health[name] = ProviderHealth(name)
        self._all_offers = None
        self.offers_version += 1
        if self._running:
            self._start_loops(name)
        self.bus.publish(ProviderHealthChanged(self._health[name]))

    def remove_provider(self, name: str) -> None:
        if name not in self.providers:
            return
        self._stop_loops(name)
        del self.providers[name]
        for table in (self._offers, self._instances, self._health):
            table.pop(name, None)  # type: ignore[attr-defined]
        self._failures = {k: v for k, v in self._failures.items() if k[0] != name}
        self._all_offers = None
        self.offers_version += 1
        self.bus.publish(OffersUpdated(name, 0, self.clock.now()))
        self.bus.publish(InstancesUpdated(name, 0, self.clock.now()))

    async def _loop(self, provider: str, what: str, interval: float) -> None:
        refresh = self.refresh_instances if what == "instances" else self.refresh_offers
        throttled_in_a_row = 0
        while True:
            await refresh(provider)
            wait = max(interval, self._retry_after.pop((provider, what), 0.0))
            failure = self._failures.get((provider, what))
            if failure is not None and failure[0] == "rate-limited":
                # Providers that send no Retry-After get an exponential pause, so a 429 storm
                # costs a handful of requests rather than one per poll.
                throttled_in_a_row += 1
                wait = max(wait, min(MAX_THROTTLED_WAIT_S, interval * 2 ** throttled_in_a_row))
            else:
                throttled_in_a_row = 0
            await self.clock.sleep(wait)

    # -- reads ------------------------------------------------------------------------------

    def offers(self) -> list[Offer]:
        """Every provider's current offers (last good data for failing providers)."""
        if self._all_offers is None:
            self._all_offers = [offer for offers in self._offers.values() for offer in offers]
        return self._all_offers

    def instances(self) -> list[Instance]:
        return [instance for instances in self._instances.values() for instance in instances]

    def instance(self, key: str) -> Instance | None:
        return next((i for i in self.instances() if i.key == key), None)

    def health(self) -> list[ProviderHealth]:
        return [self._health[name] for name in self.providers]

    def health_of(self, provider: str) -> ProviderHealth:
        return self._health[provider]

    def capabilities(self, provider: str) -> Capabilities:
        if provider in self.providers:
            return self.providers[provider].capabilities
        return PROVIDER_CAPABILITIES[provider]

    def metric_history(self, key: str) -> Sequence[MetricSample]:
        return self._metrics.get(key, ())

    def cost_so_far(self, key: str) -> float:
        """USD booked for ``key`` by every process so far (as of this process's last poll of it)."""
        return self._costs.get(key, 0.0)

    def running_since(self, key: str) -> float | None:
        """When ``key`` last entered a billing-compute state (see ``uptime``); None if it is not in one,
        or that moment is unknown."""
        instance = self.instance(key)
        if instance is None or not instance.status.is_billing_compute:
            return None
        return self._running_since.get(key)

    def uptime(self, key: str) -> float | None:
        """Seconds ``key`` has been in a billing-compute state (provisioning, starting, running) since it
        last entered one: the time it has been billing its full price. Stop and start begins a new run;
        a restart does not. Tracked from the status changes this app sees (polls and its own actions) and
        kept in the store, so every process agrees. A machine first seen already running starts from the
        provider's last-start time where it reports one (RunPod, Vast: ``Instance.running_since``), or our launch time if this app launched
        it; otherwise the uptime is unknown (None) until it is seen starting. Cost so far for a machine
        first seen running is estimated from the same moment."""
        since = self.running_since(key)
        return None if since is None else max(0.0, self.clock.now() - since)

    def burn_rate(self) -> float:
        """What every instance on every account costs per hour right now (implausible rates left out)."""
        return sum(rate for instance in self.instances() if (rate := plausible_rate(instance)) is not None)

    def spend_today(self) -> float:
        return self._spend_today

    def is_stale(self, provider: str, what: str = "instances") -> bool:
        health = self._health[provider]
        at = health.instances_at if what == "instances" else health.offers_at
        interval = self.poll.instances_interval_s if what == "instances" else self.poll.offers_interval_s
        return at is None or self.clock.now() - at > 2 * interval

    # -- polling ----------------------------------------------------------------------------

    async def refresh_offers(self, provider: str) -> bool:
        """Fetch one provider's offers; on failure keep the last good ones. True on success."""
        async with self._lock(provider, "offers"):
            try:
                offers = await self.providers[provider].list_offers(self.offer_query)
            except Exception as error:  # noqa: BLE001 - any failure keeps the last good data
                self._record_failure(provider, "offers", error)
                return False
            now = self.clock.now()
            offers, self.implausible_counts[provider] = split_plausible(offers)
            self.implausible_counts[provider] += self.providers[provider].dropped_rows
            self._offers[provider] = offers
            self._all_offers = None
            self.offers_version += 1
            self._set_health(provider, offers_at=now)
            await self._store_call(self.store.record_price_stats(price_stats(offers, now)))
            self.bus.publish(OffersUpdated(provider, len(offers), now))
            return True

    async def refresh_instances(self, provider: str) -> bool:
        """Fetch one provider's instances and live metrics; accrue cost. True on success."""
        async with self._lock(provider, "instances"):
            try:
                instances = await self.providers[provider].list_instances()
            except Exception as error:  # noqa: BLE001
                self._record_failure(provider, "instances", error)
                return False
            now = self.clock.now()
            self._instances[provider] = instances
            self._set_health(provider, instances_at=now)
            samples = self._collect_metrics(instances)
            await self._accrue_costs(instances, now)
            await self._store_call(self.store.save_instances(provider, instances, now))
            if samples:
                await self._store_call(self.store.add_metric_samples(samples))
            self.bus.publish(InstancesUpdated(provider, len(instances), now))
            if samples:
                self.bus.publish(MetricsSampled(now, tuple(key for key, _ in samples)))
            self.bus.publish(SpendUpdated(self.burn_rate(), self._spend_today))
            return True

    async def refresh_all(self) -> None:
        await asyncio.gather(*(self.refresh_instances(name) for name in self.providers),
                             *(self.refresh_offers(name) for name in self.providers))

    def _collect_metrics(self, instances: Iterable[Instance]) -> list[tuple[str, MetricSample]]:
        samples = []
        for instance in instances:
            sample = instance.metrics
            if sample is None or instance.status is not InstanceStatus.RUNNING:
                continue
            history = self._metrics.setdefault(instance.key, deque(maxlen=METRIC_HISTORY_SAMPLES))
            if history and history[-1].time >= sample.time:
                continue
            history.append(sample)
            samples.append((instance.key, sample))
        return samples

    async def _accrue_costs(self, instances: Iterable[Instance], now: float) -> None:
        observations = [
            Observation(i.key, i.status.is_billing_compute, plausible_rate(i), _last_started_hint(i, now))
            for i in instances
        ]
        for observation in observations:
            if observation.rate_hour is None and observation.key not in self._unbelievable_rates:
                self._unbelievable_rates.add(observation.key)
                log.warning("not booking cost for %s: its hourly price is not believable", observation.key)
        states = await self._store_call(self.store.accrue(observations, now))
        for key, state in (states or {}).items():
            self._costs[key] = state.usd
            self._running_since[key] = state.running_since
        if states:
            await self._refresh_spend()

    async def _record_transition(self, key: str, billing: bool) -> None:
        state = await self._store_call(self.store.record_transition(key, billing, self.clock.now()))
        if state is not None:
            self._costs[key] = state.usd
            self._running_since[key] = state.running_since

    async def _refresh_spend(self) -> None:
        now = self.clock.now()
        midnight = datetime.fromtimestamp(now).replace(hour=0, minute=0, second=0, microsecond=0)
        spent = await self._store_call(self.store.spend_between(midnight.timestamp(), now + 1))
        if spent is not None:
            self._spend_today = spent

    def _record_failure(self, provider: str, what: str, error: Exception) -> None:
        if isinstance(error, ProviderError):
            message = str(error)
            state = _state_for(error)
            if isinstance(error, RateLimitedError) and error.retry_after:
                self._retry_after[(provider, what)] = error.retry_after
        else:
            log.exception("unexpected failure polling %s %s", provider, what)
            message = f"{provider}: internal error while reading {what} ({type(error).__name__})"
            state = "down"
        self._failures[(provider, what)] = (state, message)
        self._set_health(provider)

    def _set_health(self, provider: str, *, offers_at: float | None = None,
                    instances_at: float | None = None) -> None:
        """Recompute a provider's health from its latest offers and instances outcomes."""
        if offers_at is not None:
            self._failures.pop((provider, "offers"), None)
        if instances_at is not None:
            self._failures.pop((provider, "instances"), None)
        failure = self._failures.get((provider, "instances")) or self._failures.get((provider, "offers"))
        old = self._health[provider]
        new = replace(
            old,
            state=failure[0] if failure else "ok",
            last_error=failure[1] if failure else "",
            offers_at=offers_at if offers_at is not None else old.offers_at,
            instances_at=instances_at if instances_at is not None else old.instances_at,
        )
        self._health[provider] = new
        if (new.state, new.last_error) != (old.state, old.last_error):
            self.bus.publish(ProviderHealthChanged(new))

    def _lock(self, provider: str, what: str) -> asyncio.Lock:
        return self._locks.setdefault((provider, what), asyncio.Lock())

    async def _store_call(self, call: Awaitable[T]) -> T | None:
        """Store failures (e.g. a full disk) must not stop polling; they are logged and reported
        once a minute at most."""
        try:
            return await call
        except Exception as error:  # noqa: BLE001
            log.warning("store write failed: %s", error)
            self.store_failures += 1
            self.last_store_error = str(error)
            now = self.clock.monotonic()
            if now - self._store_failure_reported_at >= STORE_FAILURE_REPORT_S:
                self._store_failure_reported_at = now
                self.bus.publish(StoreFailed(str(error)))
            return None

    # -- history ----------------------------------------------------------------------------

    async def price_history(self, offer: Offer, window_s: float) -> list[PriceStat]:
        """Recorded min / median / p90 for the offer's configuration over the last ``window_s``."""
        history = await self._store_call(self.store.price_history(
            offer.gpu, self.clock.now() - window_s, provider=offer.provider, gpu_count=offer.gpu_count,
            pricing=offer.pricing.value))
        return history or []

    async def market_summary(self) -> list[MarketRow]:
        """Per GPU model, the cheapest offer across providers now and its change over 24 h."""
        now = self.clock.now()
        offers = self.offers()
        day_ago: list[PriceStat] = []
        for gpu in sorted({offer.gpu for offer in offers}):
            stats = await self._store_call(self.store.price_history(gpu, now - 26 * 3600)) or []
            day_ago.extend(stat for stat in stats if stat.at <= now - 22 * 3600)
        return market_summary(offers, day_ago)

    # -- commands ---------------------------------------------------------------------------

    async def launch(self, offer: Offer, spec: LaunchSpec, *, refresh: bool = True) -> str:
        """Rent ``offer``; returns the new instance key. Raises ProviderError on failure.
        ``refresh`` re-reads the provider's instances at once (the UI wants it; a one-shot CLI
        command does not)."""
        provider = self.providers[offer.provider]
        target = offer.key
        self.bus.publish(ActionStarted("launch", target))
        try:
            instance_id = await provider.launch(offer, spec)
        except ProviderError as error:
            await self._audit("launch", target, f"{offer.gpu_count}x {offer.gpu} ${offer.price_hour:.3f}/h", str(error))
            self.bus.publish(ActionFinished("launch", target, False, str(error)))
            raise
        key = f"{offer.provider}:{instance_id}"
        await self._record_transition(key, True)  # its uptime and cost start now, whatever the provider says
        await self._audit("launch", key, f"{offer.gpu_count}x {offer.gpu} from offer {offer.offer_id} "
                                         f"at ${offer.price_hour:.3f}/h, image {spec.image}")
        self.bus.publish(ActionFinished("launch", key, True, f"launched {key}"))
        if refresh:
            await self.refresh_instances(offer.provider)
        return key

    async def act(self, action: str, key: str, *, refresh: bool = True) -> ActionResult:
        """Run start/stop/restart/destroy on one instance; never raises for provider errors."""
        if action not in ACTIONS:
            raise ValueError(f"unknown action {action!r}")
        try:
            provider_name, instance_id = split_key(key)
        except ValueError as error:
            return ActionResult(key, False, str(error))
        provider = self.providers.get(provider_name)
        if provider is None:
            return ActionResult(key, False, f"{provider_name!r} is not a bound provider ({key})")
        self.bus.publish(ActionStarted(action, key))
        try:
            await getattr(provider, action)(instance_id)
        except ProviderError as error:
            await self._audit(action, key, "", str(error))
            self.bus.publish(ActionFinished(action, key, False, str(error)))
            return ActionResult(key, False, str(error))
        await self._record_transition(key, BILLING_AFTER_ACTION[action])
        await self._audit(action, key, "")
        self.bus.publish(ActionFinished(action, key, True, f"{action} {key}: done"))
        if refresh:
            await self.refresh_instances(provider_name)
        return ActionResult(key, True, f"{action} {key}: done")

    async def act_many(self, action: str, keys: Sequence[str]) -> list[ActionResult]:
        """The same action on a marked set, concurrently; one failure does not stop the others."""
        return list(await asyncio.gather(*(self.act(action, key) for key in keys)))

    async def logs(self, key: str, tail: int = 200) -> str:
        provider_name, instance_id = split_key(key)
        if provider_name not in self.providers:
            raise NotFoundError(provider_name, f"provider {provider_name!r} is not configured")
        return await self.providers[provider_name].logs(instance_id, tail)

    async def test_connection(self, provider: str) -> str:
        """A cheap authenticated call; returns a verdict for the settings screen."""
        return await connection_verdict(self.providers[provider])

    async def _audit(self, action: str, target: str, detail: str, error: str = "") -> None:
        await self._store_call(self.store.audit(self.clock.now(), "user", action, target,
                                                detail or error, "error" if error else "ok"))


def _last_started_hint(instance: Instance, now: float) -> float | None:
    """The provider's own "last started" time, where it has one and it is believable."""
    started = instance.running_since
    if started is None or not math.isfinite(started):
        return None
    if started < now - MAX_UPTIME_S:
        return None
    return min(started, now)


def _state_for(error: ProviderError) -> str:
    if isinstance(error, AuthError):
        return "auth-error"
    if isinstance(error, RateLimitedError):
        return "rate-limited"
    if isinstance(error, CircuitOpenError):
        return "circuit-open"
    return "down"
