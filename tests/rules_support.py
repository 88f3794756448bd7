"""Test support for the rule runner: rules from their text (the real parser and evaluator), a scripted provider
whose machines change as a provider's would, and a Hub harness on a real store."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from computehub_tui.clock import ManualClock
from computehub_tui.domain.models import (
    Instance,
    InstanceStatus,
    LaunchSpec,
    MetricSample,
    Offer,
    OfferQuery,
    PricingKind,
)
from computehub_tui.engine.automation.settings import AutomationSettings
from computehub_tui.engine.events import EngineEvent
from computehub_tui.engine.hub import Hub, HubSettings, PollSettings
from computehub_tui.providers.base import NoCapacityError
from computehub_tui.providers.registry import PROVIDER_CAPABILITIES
from computehub_tui.rules.model import (
    Mode,
    Position,
    Rule,
    RuleSet,
)
from computehub_tui.rules.parser import parse_rules
from computehub_tui.store import Store

HERE = Position(1, 1)
MINUTE = 60.0
POLL_S = 60.0
"""The scenarios poll (and sample) once a minute."""


# -- rules ----------------------------------------------------------------------------------------------


def rule(name: str, text: str, mode: Mode | None = None) -> Rule:
    """The one rule in ``text``, compiled by the real parser, under ``name`` (and ``mode``, as the store may set)."""
    parsed = parse_rules(text)
    assert parsed.ok and len(parsed.rules) == 1, [error.render() for error in parsed.errors]
    return dataclasses.replace(parsed.rules[0], name=name, mode=mode)


def rules(*items: Rule) -> RuleSet:
    return RuleSet(tuple(items))


# -- a scripted provider --------------------------------------------------------------------------------


class Machines:
    """A provider account in memory: the test sets statuses and GPU use; actions change machines as a provider
    would (``hang_on`` makes an action never return; ``fail`` makes it raise)."""

    def __init__(self, name: str = "vast", clock: ManualClock | None = None) -> None:
        self.name = name
        self.title = name
        self.capabilities = PROVIDER_CAPABILITIES[name]
        self.dropped_rows = 0
        self.clock = clock or ManualClock()
        self.machines: dict[str, Instance] = {}
        self.util: dict[str, float | None] = {}
        """GPU use each running machine reports now; None: the sample is missing (a gap)."""
        self.vram_used: dict[str, float] = {}
        self.offers: list[Offer] = []
        self.calls: list[tuple[str, str]] = []
        self.fail: dict[str, Exception] = {}
        self.launch_status = InstanceStatus.PROVISIONING
        self._next_id = 100

    def add(self, instance_id: str, status: InstanceStatus = InstanceStatus.RUNNING, price: float = 1.0,
            util: float | None = 50.0, **changes: Any) -> None:
        fields: dict[str, Any] = {"label": f"m{instance_id}", "gpu": "RTX 4090", **changes}
        self.machines[instance_id] = Instance(provider=self.name, instance_id=instance_id, status=status,
                                              provider_status=status.value, gpu_count=1, price_hour=price, **fields)
        self.util[instance_id] = util

    def set(self, instance_id: str, status: InstanceStatus, **changes: Any) -> None:
        self.machines[instance_id] = dataclasses.replace(self.machines[instance_id], status=status,
                                                         provider_status=status.value, **changes)

    async def list_offers(self, query: OfferQuery) -> list[Offer]:
        return list(self.offers)

    async def list_instances(self) -> list[Instance]:
        if "list" in self.fail:
            raise self.fail["list"]
        now = self.clock.now()
        listed = []
        for key, machine in self.machines.items():
            util = self.util.get(key)
            sample = None
            if machine.status is InstanceStatus.RUNNING and util is not None:
                used = self.vram_used.get(key, 1.0)
                sample = MetricSample(now, (util,), (used,), (24.0,), (60.0,))
            listed.append(dataclasses.replace(machine, metrics=sample))
        return listed

    async def _act(self, verb: str, instance_id: str, status: InstanceStatus | None) -> None:
        self.calls.append((verb, instance_id))
        if verb in self.fail:
            raise self.fail[verb]
        if status is None:
            del self.machines[instance_id]
        else:
            self.set(instance_id, status)

    async def stop(self, instance_id: str) -> None:
        await self._act("stop", instance_id, InstanceStatus.STOPPED)

    async def start(self, instance_id: str) -> None:
        await self._act("start", instance_id, InstanceStatus.RUNNING)

    async def restart(self, instance_id: str) -> None:
        await self._act("restart", instance_id, InstanceStatus.RUNNING)

    async def destroy(self, instance_id: str) -> None:
        await self._act("destroy", instance_id, None)

    async def launch(self, offer: Offer, spec: LaunchSpec) -> str:
        self.calls.append(("launch", offer.offer_id))
        if "launch" in self.fail:
            raise self.fail["launch"]
        if not offer.available:
            raise NoCapacityError(self.name, "no capacity")
        self._next_id += 1
        instance_id = str(self._next_id)
        self.add(instance_id, self.launch_status, offer.price_hour, util=None, image=spec.image,
                 label=spec.label)
        self.machines[instance_id] = dataclasses.replace(self.machines[instance_id], gpu=offer.gpu,
                                                         location=f"machine {offer.extra.get('machine_id')}")
        return instance_id

    async def logs(self, instance_id: str, tail: int = 200) -> str:
        return ""

    async def check_auth(self) -> None:
        return None

    async def aclose(self) -> None:
        return None


def offer(offer_id: str, price: float, machine_id: int, *, gpu: str = "RTX 4090", available: bool = True,
          provider: str = "vast", pricing: PricingKind = PricingKind.ON_DEMAND) -> Offer:
    return Offer(provider=provider, offer_id=offer_id, gpu=gpu, gpu_count=1, vram_gb=24, vcpus=8, ram_gb=32,
                 disk_gb=20, price_hour=price, pricing=pricing, location="x", reliability=0.99, available=available,
                 quoted_at=0.0, extra={"machine_id": machine_id})


# -- a Hub with rules -----------------------------------------------------------------------------------


@dataclasses.dataclass
class Session:
    hub: Hub
    clock: ManualClock
    machines: Machines
    events: list[EngineEvent]

    async def poll(self) -> None:
        """One poll of instances (and offers), then the evaluation the poll asks for."""
        await self.hub.refresh_instances(self.machines.name)
        await self.hub.refresh_offers(self.machines.name)
        await self.hub.rules.lease.claim()  # the service's loop renews it every few seconds
        await self.hub.rules.tick()

    async def minutes(self, count: int, each: Callable[[int], None] | None = None) -> None:
        """``count`` minutes of polls; ``each(minute)`` sets the scene before each poll."""
        for minute in range(count):
            await self.clock.advance(POLL_S)
            if each is not None:
                each(minute)
            await self.poll()

    def calls(self, verb: str) -> list[str]:
        return [instance_id for done, instance_id in self.machines.calls if done == verb]

    def of(self, kind: type[Any]) -> list[Any]:
        return [event for event in self.events if isinstance(event, kind)]


@asynccontextmanager
async def session(db: Path, machines: Machines, rule_set: RuleSet, **settings: Any) -> AsyncIterator[Session]:
    """A Hub on ``machines`` and a real store at ``db``, holding the automation lease, running ``rule_set``."""
    clock = machines.clock
    store = await Store.open(db)
    automation = AutomationSettings(**settings)
    hub = Hub({machines.name: machines}, store, clock,  # type: ignore[dict-item]
              HubSettings(poll=PollSettings(POLL_S * 10, POLL_S), automation=automation),
)
    events: list[EngineEvent] = []
    hub.bus.subscribe(events.append)
    try:
        await hub.load_snapshot()  # what the store remembers, as the app and the daemon start
        assert hub.rules.use(rule_set).ok
        await hub.rules.start()
        assert await hub.rules.lease.claim()
        yield Session(hub, clock, machines, events)
    finally:
        await hub.stop()
        await store.close()
