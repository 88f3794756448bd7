"""Assembles a running engine: config → vault → store → providers → Hub (demo or real)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from computehub_tui.clock import Clock, SystemClock
from computehub_tui.config import Config
from computehub_tui.domain.models import PROVIDER_NAMES, OfferQuery
from computehub_tui.domain.secret import Secret
from computehub_tui.engine.hub import Hub, PollSettings
from computehub_tui.providers.base import Provider
from computehub_tui.providers.demo import demo_providers
from computehub_tui.providers.demo.market import DemoMarket
from computehub_tui.providers.registry import build_provider, new_http_client
from computehub_tui.store import Store
from computehub_tui.vault import Vault, key_from_environment

DATABASE_NAME = "computehub.db"
DEMO_DATABASE_NAME = "demo.db"
API_KEY_FIELD = "api_key"


@dataclass
class Session:
    """Everything one run of the app or one CLI command owns; close it when done."""

    hub: Hub
    store: Store
    demo: bool
    market: DemoMarket | None = None
    clients: list[httpx.AsyncClient] = field(default_factory=list)
    key_sources: dict[str, str] = field(default_factory=dict)
    """Where each bound provider's key came from: "environment" or "vault"."""

    async def aclose(self) -> None:
        for client in self.clients:
            await client.aclose()
        await self.store.close()


async def stored_keys(store: Store, data_dir: Path, passphrase: str | None) -> dict[str, Secret]:
    """Keys saved with ``keys set``; opens the vault only if there is something to decrypt."""
    rows = [row for row in await store.list_secrets() if row[1] == API_KEY_FIELD]
    if not rows:
        return {}
    vault = Vault.open(data_dir, passphrase, create=False)
    keys: dict[str, Secret] = {}
    for provider, field_name, _ in rows:
        blob = await store.get_secret(provider, field_name)
        if blob is not None:
            keys[provider] = vault.unseal(provider, field_name, blob)
    return keys


def environment_keys(environ: Mapping[str, str] | None = None) -> dict[str, Secret]:
    keys = {}
    for provider in PROVIDER_NAMES:
        secret = key_from_environment(provider, environ)
        if secret is not None:
            keys[provider] = secret
    return keys


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
) -> Session:
    """Open the store and build providers. With no key bound anywhere, the demo market runs."""
    clock = clock or SystemClock()
    environ = os.environ if environ is None else environ
    data_dir.mkdir(parents=True, exist_ok=True)
    query = OfferQuery(min_reliability=config.min_reliability, disk_gb=config.default_disk_gb)
    poll = PollSettings(config.offers_interval_s, config.instances_interval_s)

    keys: dict[str, Secret] = {}
    sources: dict[str, str] = {}
    if not demo:
        real_store = await Store.open(data_dir / DATABASE_NAME)
        try:
            keys = await stored_keys(real_store, data_dir, passphrase)
        except BaseException:
            await real_store.close()
            raise
        sources = {name: "vault" for name in keys}
        for name, secret in environment_keys(environ).items():
            keys[name], sources[name] = secret, "environment"
        keys = {name: key for name, key in keys.items()
                if getattr(config.provider_settings(name), "enabled", True)}
        if keys:
            client = new_http_client()
            providers: dict[str, Provider] = {
                name: build_provider(name, client, keys[name], _settings_of(config, name), clock)
                for name in PROVIDER_NAMES
                if name in keys and (only_provider is None or name == only_provider)
            }
            hub = Hub(providers, real_store, clock, offer_query=query, poll=poll, demo=False)
            return Session(hub, real_store, demo=False, clients=[client], key_sources=sources)
        await real_store.close()

    market = DemoMarket(clock, seed=config.demo_seed if demo_seed is None else demo_seed)
    providers, clients = demo_providers(market, clock)
    if only_provider is not None:
        providers = {name: p for name, p in providers.items() if name == only_provider}
    store = await Store.open(_fresh(data_dir / DEMO_DATABASE_NAME))
    hub = Hub(providers, store, clock, offer_query=query, poll=poll, demo=True)
    return Session(hub, store, demo=True, market=market, clients=clients)


def _settings_of(config: Config, provider: str) -> dict[str, str]:
    section = config.provider_settings(provider)
    return {name: value for name, value in section.model_dump().items() if isinstance(value, str)}


def _fresh(path: Path) -> Path:
    """The demo market restarts from its seed each run, so its database does too."""
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    return path
