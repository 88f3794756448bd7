"""The Hub: the one facade the UI and CLI call, over the engine's services (polling, metrics, costs,
history, actions, keys) and the supervisor that runs their background tasks."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import tzinfo
from typing import TYPE_CHECKING

from computehub_tui.clock import Clock
from computehub_tui.domain.history import AuditEntry, PriceStat
from computehub_tui.domain.market import MarketRow
from computehub_tui.domain.models import Capabilities, Instance, LaunchSpec, MetricSample, Offer, OfferQuery
from computehub_tui.domain.status_timeline import StatusChange
from computehub_tui.domain.templates import Template
from computehub_tui.engine import policy
from computehub_tui.engine.actions import ACTOR_USER, ActionResult, ActionService, LaunchQuote, split_key
from computehub_tui.engine.alerts import AlertsService, AlertsSettings
from computehub_tui.engine.automation.labels import LocalLabels
from computehub_tui.engine.automation.settings import AutomationSettings
from computehub_tui.engine.costs import CostService
from computehub_tui.engine.crossing import carried, engine_side, engine_side_sync, running_loop
from computehub_tui.engine.events import (
    EventBus,
    InstancesUpdated,
    OffersUpdated,
    ProviderHealth,
    ProviderHealthChanged,
)
from computehub_tui.engine.health import Feed, HealthBook
from computehub_tui.engine.history import REPLAY_DELAY_S, HistoryReplay, HistoryService
from computehub_tui.engine.intake import PollIntake
from computehub_tui.engine.keys import KeyService, connection_verdict
from computehub_tui.engine.live import LiveData
from computehub_tui.engine.maintenance import MaintenanceService, RetentionSettings
from computehub_tui.engine.metrics import MetricsService, MetricWindow
from computehub_tui.engine.polling import PollingService, PollSettings
from computehub_tui.engine.projects import ProjectService
from computehub_tui.engine.safe_store import SafeStore
from computehub_tui.engine.ssh_sampler import SampleFailed, SshSampler, SshSettings
from computehub_tui.engine.status_history import StatusHistoryService
from computehub_tui.engine.supervisor import Supervisor
from computehub_tui.providers.base import Provider
from computehub_tui.providers.registry import PROVIDER_CAPABILITIES
from computehub_tui.store import Store

if TYPE_CHECKING:
    from computehub_tui.engine.automation.service import RulesService
    from computehub_tui.engine.telegram_bot import TelegramBot, TelegramLink

__all__ = ["REPLAY_DELAY_S", "ActionResult", "AlertsSettings", "AutomationSettings", "Hub", "HubSettings", "LaunchQuote",
           "PollSettings",
           "RetentionSettings", "SshSettings", "split_key"]

REPLAY_RESTARTS = 2
"""The demo's history replay is a nicety: after this many failed attempts it is left out."""


@dataclass(frozen=True, slots=True)
class HubSettings:
    """What a session was configured with."""

    offer_query: OfferQuery = field(default_factory=OfferQuery)
    poll: PollSettings = field(default_factory=PollSettings)
    demo: bool = False
    templates: Sequence[Template] = ()
    template_errors: Sequence[str] = ()
    """One line per user template file that could not be used."""
    zone: tzinfo | None = None
    """The user's time zone for spend today / this month; None is this machine's local time."""
    retention: RetentionSettings = field(default_factory=RetentionSettings)
    ssh: SshSettings = field(default_factory=SshSettings)
    """The SSH sampler ([monitor]); off unless it names providers."""
    automation: AutomationSettings = field(default_factory=AutomationSettings)
    """[automation]; rules run only when it names a rule file (wiring does, from the config)."""
    alerts: AlertsSettings = field(default_factory=AlertsSettings)
    """[alerts]: channels, routing, grouping; no channel configured means no alert task runs."""


class Hub:
    """The engine's facade. Each provider is polled on its own schedule; a failing provider keeps its
    last good data (marked stale) and never blanks the others.

    The Hub lives on the loop it was created on (its ``home_loop``: in the TUI, the engine thread's).
    Its async methods run there whoever calls them, and its reads return snapshots that never change
    under the caller, so the UI thread may call any public method.
    """

    def __init__(self, providers: Mapping[str, Provider], store: Store, clock: Clock,
                 settings: HubSettings | None = None, *, keys: KeyService | None = None,
                 history_replay: HistoryReplay | None = None,
                 telegram: Callable[[], TelegramLink] | None = None) -> None:
        settings = settings or HubSettings()
        self.settings = settings
        self.clock = clock
        self.demo = settings.demo
        self.templates = list(settings.templates)
        self.template_errors = list(settings.template_errors)
        self.offer_query = settings.offer_query
        self.home_loop = running_loop()
        self.bus = EventBus()
        self.supervisor = Supervisor(clock)
        self._store = store
        self._safe_store = SafeStore(store, clock, self.bus)
        self._live = LiveData(providers)
        self._health = HealthBook(self.bus, providers)
        self.metrics = MetricsService(self._safe_store, clock=clock, retention=settings.retention)
        self._projects = ProjectService(self._safe_store, clock)
        self._costs = CostService(self._safe_store, clock, settings.zone, capabilities=self.capabilities,
                                  projects=self._projects)
        self.history = HistoryService(self._safe_store, clock)
        self.maintenance = MaintenanceService(self._safe_store, clock, settings.retention)
        self._statuses = StatusHistoryService(self._safe_store)
        intake = PollIntake(self._live, self._health, self.metrics, self._costs, self.history, self._safe_store,
                            self.bus, self._projects, self._statuses)
        self.polling = PollingService(self._live, self._health, intake, self.supervisor, clock, settings.poll,
                                      settings.offer_query)
        self.ssh_sampler = SshSampler(settings.ssh, self._live, self.metrics, self.bus, clock, self.capabilities)
        self.actions = ActionService(self._live, self._costs, self._safe_store, self.bus, clock,
                                     self.polling.refresh_instances, settings.offer_query.disk_gb)
        self._labels = LocalLabels(self._safe_store, clock)
        self._rules: RulesService | None = None
        """Built on first use (``_automation``): the rule parser and runner are not imported before."""
        self._keys = keys
        self._alerts = AlertsService(store, self.bus, clock, settings.alerts, secrets_source=keys,
                                     instances=self.instances, start_task=self.supervisor.start)
        self._history_replay = history_replay
        self._telegram = telegram
        self.telegram_bot: TelegramBot | None = None
        """Commands and alert buttons from the configured Telegram chat, once started; None unless a chat and a
        token are set (the link is built only then: a one-shot command never loads python-telegram-bot)."""
        self._running = False

    # -- services and settings ----------------------------------------------------------------

    @property
    def keys(self) -> KeyService | None:
        """Binds and tests API keys; None where the caller manages keys itself."""
        return None if self._keys is None else carried(self._keys, self.home_loop)

    @keys.setter
    def keys(self, service: KeyService | None) -> None:
        self._keys = service
        self._alerts.secrets_source = service

    @property
    def alerts(self) -> AlertsService:
        """Alerts: raise / resolve / acknowledge, channels, the delivery log, test sends, channel settings."""
        return carried(self._alerts, self.home_loop)

    @property
    def costs(self) -> CostService:
        """Accrual, spend by day / provider / project (``spend_by``), ``billing_while_stopped``."""
        return carried(self._costs, self.home_loop)

    @property
    def projects(self) -> ProjectService:
        """Which project each instance is in: ``project_of``, ``set``, ``clear``, ``listing``."""
        return carried(self._projects, self.home_loop)

    @property
    def rules(self) -> RulesService:
        """Automation: load rules, list and switch them, preview, pause / resume, warnings, lease, firings."""
        return carried(self._automation(), self.home_loop)

    def _automation(self) -> RulesService:
        if self._rules is None:
            # Deferred: the runner and the lark rule parser cost ~100 ms of import, which one-shot commands and
            # `--help` need not pay.
            from computehub_tui.engine.automation.service import AutomationParts, build_rules_service

            self._rules = build_rules_service(
                AutomationParts(self._safe_store, self.bus, self.clock, self._live, self._health, self.metrics,
                                self._costs, self._projects, self.actions, self.polling, self._statuses,
                                self._labels, self.capabilities,
                                lambda name, job: self.supervisor.start(name, job, max_restarts=0),
                                self.sample_interval_cap_s),
                self.settings.automation)
        return self._rules

    @property
    def sample_interval_cap_s(self) -> float:
        """How often this engine samples an instance at the slowest: each instances poll, or the SSH sampler's
        interval where it runs. No instance's sample interval is taken to be longer (rules and replay)."""
        ssh = self.settings.ssh
        return max(self.polling.settings.instances_interval_s, ssh.interval_s if ssh.providers else 0.0)

    @property
    def local_labels(self) -> LocalLabels:
        """Labels the ``label`` rule action keeps locally: ``shown(instance)`` is the label to display."""
        return carried(self._labels, self.home_loop)

    @property
    def store(self) -> Store:
        return carried(self._store, self.home_loop)

    @property
    def poll(self) -> PollSettings:
        return self.polling.settings

    @property
    def providers(self) -> Mapping[str, Provider]:
        """The bound adapters by name (a read-only snapshot; change it with set/remove_provider)."""
        return self._live.providers

    @property
    def store_failures(self) -> int:
        """Store calls that failed in this process (a CLI command exits non-zero when any did)."""
        return self._safe_store.failures

    @property
    def last_store_error(self) -> str:
        return self._safe_store.last_error

    @property
    def implausible_counts(self) -> Mapping[str, int]:
        """Offers dropped per provider for zero or absurd prices (shown, never ranked)."""
        return self._live.implausible_counts

    @property
    def offers_version(self) -> int:
        """Bumped on every offers change so views can skip work when nothing moved."""
        return self._live.offers_version

    # -- lifecycle --------------------------------------------------------------------------

    @engine_side
    async def load_snapshot(self) -> None:
        """Show the last known offers (with their quote ages), instances and costs before the first poll
        answers. Their providers' health stays "waiting" (and ``is_stale``) until a poll answers."""
        remembered = await self._store.load_instances()
        for name in self._live.providers:
            self._live.set_instances(name, [i for i in remembered if i.provider == name])
        for name, (_, offers) in (await self._safe_store.load_offers()).items():
            self._live.set_offers(name, offers, 0)
        await self._projects.load()
        await self._costs.load()
        await self._statuses.load()
        await self._labels.load()

    @engine_side
    async def start(self) -> None:
        """Start polling every provider, pruning to the retention (and the demo's history replay) under
        the supervisor."""
        if self._running:
            return
        self._running = True
        for name in self._live.providers:
            self.polling.start(name)
        self.supervisor.start("maintenance", self.maintenance.run)
        if self.settings.ssh.providers:
            self.supervisor.start("ssh-sampler", self.ssh_sampler.run)
        automation = self.settings.automation
        if automation.enabled and automation.rules_path is not None:
            self.supervisor.start("automation", self._automation().run)
        self._alerts.start()
        if self._telegram is not None:
            from computehub_tui.engine.automation.lease import TELEGRAM_LEASE_NAME, LeaseKeeper
            from computehub_tui.engine.telegram_bot import TelegramBot  # deferred: python-telegram-bot is big

            lease = LeaseKeeper(self._safe_store, self.bus, self.clock, role=automation.role,
                                name=TELEGRAM_LEASE_NAME, announce=False)
            self.telegram_bot = TelegramBot(self, self._telegram(), alerts=self._alerts, lease=lease)
            self.supervisor.start("telegram-bot", self.telegram_bot.run)
        if self._history_replay is not None:
            replay = self._history_replay
            self.supervisor.start("history-replay", lambda: self.history.replay(replay),
                                  max_restarts=REPLAY_RESTARTS)

    @engine_side
    async def stop(self) -> None:
        """Stop every background task and wait until each has stopped."""
        self._running = False
        await self.supervisor.aclose()
        if self._rules is not None:
            await self._rules.aclose()
        bot, self.telegram_bot = self.telegram_bot, None
        if bot is not None:
            await bot.aclose()
        await self._alerts.aclose()

    async def run(self) -> None:
        """Poll until cancelled (for callers that own the loop: tests, a one-shot command)."""
        await self.start()
        try:
            await asyncio.Event().wait()
        finally:
            await self.stop()

    @engine_side_sync
    def set_provider(self, name: str, provider: Provider) -> None:
        """Add or replace a provider (a key was bound or replaced); its old data is dropped."""
        self.polling.stop(name)
        self._live.attach(name, provider)
        health = self._health.reset(name)
        if self._running:
            self.polling.start(name)
        self.bus.publish(ProviderHealthChanged(health))

    @engine_side_sync
    def remove_provider(self, name: str) -> None:
        if name not in self._live.providers:
            return
        self.polling.stop(name)
        self._live.detach(name)
        self._health.drop(name)
        self.bus.publish(OffersUpdated(name, 0, self.clock.now()))
        self.bus.publish(InstancesUpdated(name, 0, self.clock.now()))

    # -- reads (snapshots, safe from any thread) ----------------------------------------------

    def offers(self) -> tuple[Offer, ...]:
        """Every provider's current offers (last good data for failing providers)."""
        return self._live.offers

    def instances(self) -> tuple[Instance, ...]:
        return self._live.instances

    def instance(self, key: str) -> Instance | None:
        return self._live.instance(key)

    def health(self) -> list[ProviderHealth]:
        return self._health.in_order(self._live.providers)

    def health_of(self, provider: str) -> ProviderHealth:
        return self._health.of(provider)

    def capabilities(self, provider: str) -> Capabilities:
        adapter = self._live.providers.get(provider)
        return adapter.capabilities if adapter is not None else PROVIDER_CAPABILITIES[provider]

    def metric_history(self, key: str) -> Sequence[MetricSample]:
        return self.metrics.history(key)

    @engine_side
    async def sample_over_ssh(self, key: str) -> MetricSample:
        """A fresh nvidia-smi sample of instance ``key`` over SSH (kept and announced like any other).
        Raises SampleFailed with one readable line (also when the instance is unknown)."""
        instance = self.instance(key)
        if instance is None:
            raise SampleFailed(f"{key}: not found")
        return await self.ssh_sampler.sample_now(instance)

    @engine_side
    async def metric_chart(self, key: str, window_s: float) -> MetricWindow:
        """``key``'s stored metrics over the last ``window_s`` at the resolution that fits the window (raw
        up to 2 h, one-minute rollups up to 2 days, hourly beyond)."""
        return await self.metrics.chart(key, window_s)

    def status_since(self, key: str) -> float | None:
        """Since when ``key`` has had its current status, as first seen by a poll of any process (None: not
        known); a cheap in-memory read, e.g. for "status == provisioning FOR 20m"."""
        instance = self.instance(key)
        return None if instance is None else self._statuses.status_since(instance)

    @engine_side
    async def status_history(self, key: str, since: float) -> list[StatusChange]:
        """``key``'s status changes from ``since`` on, oldest first, led by the last one before ``since``."""
        return await self._statuses.history(key, since)

    def cost_so_far(self, key: str) -> float:
        """USD booked for ``key`` by every process so far (as of this process's last poll of it)."""
        return self._costs.cost_so_far(key)

    def running_since(self, key: str) -> float | None:
        """When ``key`` last entered a billing-compute state (see ``uptime``); None if it is not in one,
        or that moment is unknown."""
        return self._costs.running_since(self.instance(key))

    def uptime(self, key: str) -> float | None:
        """Seconds ``key`` has been in a billing-compute state (provisioning, starting, running) since it
        last entered one: the time it has been billing its full price. Stop and start begins a new run;
        a restart does not. Tracked from the status changes this app sees (polls and its own actions) and
        kept in the store, so every process agrees. A machine first seen already running starts from the
        provider's last-start time where it reports one (RunPod, Vast: ``Instance.running_since``), or our
        launch time if this app launched it; otherwise the uptime is unknown (None) until it is seen
        starting. Cost so far for a machine first seen running is estimated from the same moment."""
        return self._costs.uptime(self.instance(key))

    def burn_rate(self) -> float:
        """What every instance on every account costs per hour right now (implausible rates left out)."""
        return self._costs.burn_rate(self.instances())

    def spend_today(self) -> float:
        return self._costs.spend_today

    @engine_side
    async def audit_log(self, limit: int = 100, *, since: float | None = None,
                        actor: str | None = None) -> list[AuditEntry]:
        """Who did what, newest first (``actor`` ``rule`` means every rule); raises ``StoreError``."""
        return await self._store.audit_log(limit, since=since, actor=actor)

    def spend_this_month(self) -> float:
        return self._costs.spend_this_month

    def is_stale(self, provider: str, what: Feed = "instances") -> bool:
        return self.polling.is_stale(provider, what)

    def launch_quote(self, offer: Offer, spec: LaunchSpec) -> LaunchQuote:
        """What launching ``offer`` with ``spec`` would bill per hour at the freshest quote held."""
        return self.actions.quote(offer, spec)

    def next_best_offer(self, failed: Offer) -> Offer | None:
        """What to offer instead when ``failed`` has no capacity (see ``policy.next_best_offer``)."""
        return policy.next_best_offer(failed, self.offers())

    # -- polling ----------------------------------------------------------------------------

    @engine_side
    async def refresh_offers(self, provider: str) -> bool:
        """Fetch one provider's offers; on failure keep the last good ones. True on success."""
        return await self.polling.refresh_offers(provider)

    @engine_side
    async def refresh_instances(self, provider: str) -> bool:
        """Fetch one provider's instances and live metrics; accrue cost. True on success."""
        return await self.polling.refresh_instances(provider)

    @engine_side
    async def refresh_all(self) -> None:
        names = list(self._live.providers)
        await asyncio.gather(*(self.polling.refresh_instances(name) for name in names),
                             *(self.polling.refresh_offers(name) for name in names))

    # -- history ----------------------------------------------------------------------------

    @engine_side
    async def price_history(self, offer: Offer, window_s: float) -> list[PriceStat]:
        """Recorded min / median / p90 for the offer's configuration over the last ``window_s``."""
        return await self.history.price_history(offer, window_s)

    @engine_side
    async def market_summary(self) -> list[MarketRow]:
        """Per GPU model, the cheapest offer across providers now and its change over 24 h."""
        return await self.history.market_summary(self.offers())

    # -- commands ---------------------------------------------------------------------------

    @engine_side
    async def launch(self, offer: Offer, spec: LaunchSpec, *, refresh: bool = True, max_price: float | None = None,
                     actor: str = ACTOR_USER) -> str:
        """Rent ``offer`` at its freshest quote; returns the new instance key. Raises PriceAboveMaximum
        (nothing sent) when that quote bills more than ``max_price`` $/h, ProviderError on failure.
        ``refresh`` re-reads the provider's instances at once (the UI wants it; a one-shot CLI
        command does not)."""
        return await self.actions.launch(offer, spec, refresh=refresh, max_price=max_price, actor=actor)

    @engine_side
    async def act(self, action: str, key: str, *, refresh: bool = True, actor: str = ACTOR_USER) -> ActionResult:
        """Run start/stop/restart/destroy on one instance; never raises for provider errors."""
        return await self.actions.act(action, key, refresh=refresh, actor=actor)

    @engine_side
    async def act_many(self, action: str, keys: Sequence[str], *, actor: str = ACTOR_USER) -> list[ActionResult]:
        """The same action on a marked set, concurrently; one failure does not stop the others."""
        return await self.actions.act_many(action, keys, actor=actor)

    @engine_side
    async def logs(self, key: str, tail: int = 200) -> str:
        return await self.actions.logs(key, tail)

    @engine_side
    async def test_connection(self, provider: str) -> str:
        """A cheap authenticated call; returns a verdict for the settings screen."""
        return await connection_verdict(self._live.providers[provider])
