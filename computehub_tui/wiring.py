"""Assembles a running engine: config → vault → store → providers → Hub (demo or real)."""

from __future__ import annotations

import asyncio
import json
import os
import shlex
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import tzinfo
from pathlib import Path
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

import httpx

from computehub_tui.clock import Clock, SystemClock
from computehub_tui.config import Config, load_config
from computehub_tui.config.schema import AlertsSection
from computehub_tui.domain.history import PriceStat
from computehub_tui.domain.models import PROVIDER_NAMES, OfferQuery
from computehub_tui.domain.secret import Secret
from computehub_tui.engine.hub import (
    AlertsSettings,
    AutomationSettings,
    Hub,
    HubSettings,
    PollSettings,
    RetentionSettings,
    SshSettings,
)
from computehub_tui.engine.key_sources import indirections_of
from computehub_tui.engine.keys import KeyService
from computehub_tui.engine.remote import control_dir
from computehub_tui.notify.channels import TELEGRAM_TOKEN
from computehub_tui.private_files import describe_os_error, ensure_private_dir
from computehub_tui.providers.base import Provider
from computehub_tui.providers.demo.adapters import demo_providers
from computehub_tui.providers.demo.market import DemoMarket
from computehub_tui.providers.demo.world import DemoWorld, DemoWorldError
from computehub_tui.providers.registry import build_provider, new_http_client
from computehub_tui.store import Store, StoreError
from computehub_tui.template_files import load_templates

if TYPE_CHECKING:
    from computehub_tui.engine.telegram_bot import TelegramLink

DEMO_DATABASE_NAME = "demo.db"
DEMO_SSH_MODULE = "computehub_tui.providers.demo.ssh"


class LazyHttpClient:
    """The HTTP client for the real marketplaces, built on first use: its TLS context costs ~50 ms, which a
    demo session spends only once a key is bound or tested."""

    def __init__(self) -> None:
        self._client: httpx.AsyncClient | None = None

    @property
    def built(self) -> bool:
        return self._client is not None

    def get(self) -> httpx.AsyncClient:
        if self._client is None:
            self._client = new_http_client()
        return self._client

    async def aclose(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None


@dataclass
class Session:
    """Everything one run of the app or one CLI command owns; close it when done."""

    hub: Hub
    store: Store
    demo: bool
    keys: KeyService
    """Keys on the real database: in a real session its connection is ``store``; in a demo it opens
    that database only once keys are first needed."""
    market: DemoMarket | None = None
    clients: list[httpx.AsyncClient] = field(default_factory=list)
    real_client: LazyHttpClient | None = None
    """The real marketplaces' client; a demo session builds it only if a key is bound or tested."""
    key_sources: dict[str, str] = field(default_factory=dict)
    """Where each bound provider's key came from: "environment", "file", "command" or "vault"."""

    async def aclose(self) -> None:
        for client in self.clients:
            await client.aclose()
        if self.real_client is not None:
            await self.real_client.aclose()
        await self.keys.aclose()
        await self.store.close()


async def open_session(
    config: Config,
    data_dir: Path,
    *,
    demo: bool = False,
    clock: Clock | None = None,
    passphrase: str | None = None,
    environ: Mapping[str, str] | None = None,
    only_provider: str | None = None,
    demo_seed: int | None = None,
    demo_reset: bool = False,
    automation_role: str = "app",
) -> Session:
    """Open the store and build providers. With no key bound anywhere, the demo market runs.

    The demo world (its instances, costs and history) carries on from one session to the next;
    ``demo_reset`` starts it afresh from its seed. ``automation_role`` is how this process shows in the
    automation lease (``app``, ``daemon``).
    """
    clock = clock or SystemClock()
    environ = os.environ if environ is None else environ
    try:
        ensure_private_dir(data_dir)
    except OSError as error:
        raise StoreError(describe_os_error(error, data_dir, "create the data folder"),
                         "cannot-open") from error
    query = OfferQuery(min_reliability=config.offers.min_reliability, disk_gb=config.offers.disk_gb,
                       limit=config.offers.limit)
    poll = PollSettings(config.poll.offers_s, config.poll.instances_s)
    zone = cost_zone(config)
    retention = RetentionSettings(metrics_raw_s=config.retention.metrics_raw, metrics_1m_s=config.retention.metrics_1m,
                                  metrics_1h_s=config.retention.metrics_1h,
                                  price_history_s=config.retention.price_history, audit_s=config.retention.audit)
    templates, template_errors = load_templates(config.templates_dir)

    client = LazyHttpClient()

    def real_provider(name: str, secret: Secret) -> Provider:
        return build_provider(name, client.get(), secret, _settings_of(config, name), clock)

    keys = KeyService(data_dir, clock, real_provider, passphrase=passphrase, environ=environ,
                      indirections=indirections_of(config))

    def settings(demo: bool) -> HubSettings:
        return HubSettings(offer_query=query, poll=poll, demo=demo, templates=templates,
                           template_errors=template_errors, zone=zone, retention=retention,
                           ssh=ssh_settings(config, data_dir, environ, demo=demo),
                           automation=automation_settings(config, automation_role),
                           alerts=alerts_settings(config, environ, zone))
    try:
        if not demo:
            usable = {name: found for name, found in (await keys.resolve()).items()
                      if config.provider_settings(name).enabled}
            # With any key bound this is a real session, even if the one provider asked for is not
            # bound: falling back to the demo would show simulated data as if it were the account's.
            bound = {name: found for name, found in usable.items() if only_provider in (None, name)}
            if usable:
                real_store = await keys.store()  # the connection resolve() opened: one per process
                providers: dict[str, Provider] = {
                    name: real_provider(name, bound[name][0]) for name in PROVIDER_NAMES if name in bound
                }
                hub = Hub(providers, real_store, clock, settings(demo=False), keys=keys,
                          telegram=await telegram_link(config, keys))
                keys.attach_to(hub)
                return Session(hub, real_store, demo=False, keys=keys, real_client=client,
                               key_sources={name: source for name, (_, source) in bound.items()})

        market = DemoMarket(clock, seed=config.demo.seed if demo_seed is None else demo_seed,
                            vast_offer_count=config.demo.vast_offers)
        if demo_reset:
            _remove_database(data_dir / DEMO_DATABASE_NAME)
        try:
            world = DemoWorld.open(market, data_dir, reset=demo_reset)
        except DemoWorldError as error:
            raise StoreError(str(error), "corrupt") from None
        demo_adapters, demo_clients = demo_providers(market, clock, world,
                                                     lambda_ssh_key_name=config.providers.lambda_.ssh_key_name)
        if only_provider is not None:
            demo_adapters = {name: p for name, p in demo_adapters.items() if name == only_provider}
        store = await Store.open(data_dir / DEMO_DATABASE_NAME)
        seed = market.seed

        async def replay() -> list[PriceStat]:
            # A separate, niced process: parsing thousands of past offers must not share the UI's GIL.
            child = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "computehub_tui.providers.demo.history", "--seed", str(seed),
                "--now", str(clock.now()), "--disk", str(query.disk_gb), "--reliability", str(query.min_reliability),
                "--vast-offers", str(config.demo.vast_offers), "--limit", str(query.limit),
                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL,
            )
            try:
                output, _ = await child.communicate()
            except BaseException:
                # Stopped (the app quits, the session switches): the child would go on for seconds of CPU.
                if child.returncode is None:
                    child.kill()
                    await asyncio.shield(child.wait())
                raise
            if child.returncode != 0:
                raise RuntimeError(f"price-history replay exited with {child.returncode}")
            return [PriceStat(*row) for row in json.loads(output)]

        hub = Hub(demo_adapters, store, clock, settings(demo=True), keys=keys, history_replay=replay,
                  telegram=await telegram_link(config, keys))
        return Session(hub, store, demo=True, keys=keys, market=market, clients=demo_clients,
                       real_client=client)
    except BaseException:
        # The real database may be open already (resolve() read it): its thread would keep the process alive.
        await keys.aclose()
        await client.aclose()
        raise


async def telegram_link(config: Config, keys: KeyService) -> Callable[[], TelegramLink] | None:
    """What builds the Telegram channel the bot answers on: only when ``[alerts.telegram] chat_id`` is set and
    a token is known (``COMPUTEHUB_TELEGRAM_TOKEN``, else the vault's ``telegram_token``)."""
    section = config.alerts.telegram
    if not section.chat_id:
        return None
    token = (await keys.channel_secrets()).get(TELEGRAM_TOKEN)
    if token is None:
        return None

    def build() -> TelegramLink:
        from computehub_tui.notify.telegram import TelegramChannel  # deferred: python-telegram-bot is big

        return TelegramChannel(token, section.chat_id, section.base_url)
    return build


def cost_zone(config: Config) -> ZoneInfo | None:
    """``[costs] timezone``: where "today" and "this month" begin (None: this machine's local time)."""
    return ZoneInfo(config.costs.timezone) if config.costs.timezone else None  # the schema checked the name


def automation_settings(config: Config, role: str) -> AutomationSettings:
    """``[automation]`` for the engine: the rule file resolved against the config file's folder."""
    section = config.automation
    return AutomationSettings(enabled=section.enabled, rules_path=config.rules_path, role=role,
                              cooldown_s=section.cooldown, destructive_per_hour=section.destructive_per_hour,
                              fleet_share=section.fleet_share, dry_run=section.dry_run)


def alerts_settings(config: Config, environ: Mapping[str, str], zone: tzinfo | None) -> AlertsSettings:
    """``[alerts]`` for the engine; after a channel is saved it is read again from the same file and environment."""
    path = config.path

    def reload() -> AlertsSection:
        return load_config(path, environ).alerts

    return AlertsSettings(section=config.alerts, zone=zone, config_path=path, reload=reload)


def ssh_settings(config: Config, data_dir: Path, environ: Mapping[str, str], *, demo: bool) -> SshSettings:
    """The SSH sampler's settings from ``[monitor]``. The demo's hosts answer through a stand-in for ssh
    that reads the demo world, unless the user named an ssh command of their own."""
    monitor = config.monitor
    command = tuple(shlex.split(monitor.ssh_command))  # the schema checked that it splits
    if demo and config.origin("monitor.ssh_command").kind == "default":
        command = (sys.executable, "-m", DEMO_SSH_MODULE, "--world", str(data_dir))
    providers = tuple(monitor.ssh_providers)
    return SshSettings(command=command, user=monitor.ssh_user, identity=monitor.ssh_identity,
                       interval_s=monitor.interval_s, providers=providers,
                       control_dir=control_dir(environ, data_dir) if providers else None)


def _settings_of(config: Config, provider: str) -> dict[str, str]:
    section = config.provider_settings(provider)
    return {name: value for name, value in section.model_dump().items() if isinstance(value, str)}


def _remove_database(path: Path) -> None:
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
