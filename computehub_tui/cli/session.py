"""Opening a session for one command, refreshing providers, and the checks every command ends with."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from pathlib import Path

from computehub_tui.cli.exits import EXIT_FAILED, EXIT_OK, PROG, CommandFailed, UsageError
from computehub_tui.cli.output import fail, note, warn
from computehub_tui.cli.prompts import ask_passphrase
from computehub_tui.config import Config
from computehub_tui.domain.models import PROVIDER_TITLES, Instance
from computehub_tui.engine.hub import Hub, split_key
from computehub_tui.vault import PassphraseRequired, read_passphrase_file
from computehub_tui.wiring import Session, open_session


@dataclass(frozen=True, slots=True)
class Options:
    """The common options every command takes."""

    config: Config
    data_dir: Path
    demo: bool = False
    demo_reset: bool = False


async def open_command_session(options: Options, *, only_provider: str | None = None,
                               announce_demo: bool = True, automation_role: str = "app") -> Session:
    passphrase = read_passphrase_file()

    async def opened(secret: str | None) -> Session:
        return await open_session(options.config, options.data_dir, demo=options.demo, passphrase=secret,
                                  only_provider=only_provider, demo_reset=options.demo_reset,
                                  automation_role=automation_role)

    try:
        session = await opened(passphrase)
    except PassphraseRequired:
        session = await opened(ask_passphrase())
    if session.demo and not options.demo and announce_demo:
        note(f"note: no API keys bound — showing the DEMO marketplace (bind one with `{PROG} keys set vast`)")
    if only_provider and not session.demo and only_provider not in session.hub.providers:
        await session.aclose()
        raise UsageError(not_bound(only_provider))
    return session


def not_bound(provider: str) -> str:
    return f"{provider} is not bound (run `{PROG} keys set {provider}`)"


def bound_provider_of(key: str, session: Session) -> str:
    """The provider of an (already well-formed) ``provider:id``; a usage error if it is not bound."""
    provider, _ = split_key(key)
    if provider not in session.hub.providers:
        raise UsageError(not_bound(provider))
    return provider


async def fresh_instance(key: str, session: Session) -> Instance:
    """Instance ``key`` as its provider reports it now; CommandFailed when the provider fails or has none."""
    hub = session.hub
    provider = bound_provider_of(key, session)
    if not await hub.refresh_instances(provider):
        raise CommandFailed(hub.health_of(provider).last_error)
    instance = hub.instance(key)
    if instance is None:
        raise CommandFailed(f"{key}: not found on {PROVIDER_TITLES[provider]} (run `{PROG} instances --provider "
                            f"{provider}`)")
    return instance


@dataclass(frozen=True, slots=True)
class Refreshed:
    failed: tuple[str, ...]
    asked: int

    @property
    def all_failed(self) -> bool:
        return bool(self.failed) and len(self.failed) == self.asked

    @property
    def exit_code(self) -> int:
        return EXIT_FAILED if self.failed else EXIT_OK


async def refresh_every_provider(hub: Hub, what: str) -> Refreshed:
    """Fetch ``what`` (offers or instances) from every provider at once; one stderr line per
    failed provider: errors when all failed (nothing else will be printed), else warnings."""
    refresh = hub.refresh_offers if what == "offers" else hub.refresh_instances
    names = list(hub.providers)
    results = await asyncio.gather(*(refresh(name) for name in names))
    failed = tuple(name for name, ok in zip(names, results, strict=True) if not ok)
    outcome = Refreshed(failed, len(names))
    for name in failed:
        message = hub.health_of(name).last_error
        if outcome.all_failed:
            fail(message, EXIT_FAILED)
        else:
            warn(message)
    return outcome


async def every_instance(hub: Hub) -> tuple[list[Instance], Refreshed]:
    """Every provider's instances as read now, in a stable order (provider, label, id), with their
    projects and local labels loaded; the outcome says which providers failed."""
    refreshed = await refresh_every_provider(hub, "instances")
    if refreshed.all_failed:
        return [], refreshed
    await hub.projects.load()
    await hub.local_labels.load()
    return sorted(hub.instances(), key=lambda i: (i.provider, i.label, i.instance_id)), refreshed


def store_verdict(hub: Hub, code: int) -> int:
    """A command whose results could not be saved did not fully succeed."""
    if hub.store_failures <= 0:
        return code
    fail(f"could not save to the database: {hub.last_store_error}; results above are not recorded", EXIT_FAILED)
    return code or EXIT_FAILED
