"""Test support for the rule runner: a small stand-in evaluator (Comparison / AllOf / AnyOf / Negation / FOR), rule
builders, a scripted provider whose machines change as a provider's would, and a Hub harness on a real store.

The stand-in evaluator follows the issue's semantics closely enough for the runner's scenarios; at merge the lead
switches the scenarios to ``rules.parser`` + ``rules.evaluate`` (each scenario carries its rule text).
"""

from __future__ import annotations

import dataclasses
import fnmatch
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
from computehub_tui.engine.automation.runner import AutomationSettings
from computehub_tui.engine.events import EngineEvent
from computehub_tui.engine.hub import Hub, HubSettings, PollSettings
from computehub_tui.providers.base import NoCapacityError
from computehub_tui.providers.registry import PROVIDER_CAPABILITIES
from computehub_tui.rules.model import (
    AccountFacts,
    Action,
    ActionKind,
    AllOf,
    AnyOf,
    Comparison,
    Condition,
    InstanceFacts,
    Mode,
    Negation,
    Position,
    Rule,
    RuleSet,
    Scalar,
    Truth,
    Value,
    Verdict,
)
from computehub_tui.store import Store

HERE = Position(1, 1)
MINUTE = 60.0
POLL_S = 60.0
"""The scenarios poll (and sample) once a minute."""


# -- the stand-in evaluator -----------------------------------------------------------------------------


def _holds(op: str, seen: Value, wanted: Scalar | tuple[Scalar, ...]) -> bool:
    if op == "in":
        return isinstance(wanted, tuple) and seen in wanted
    if op == "not in":
        return isinstance(wanted, tuple) and seen not in wanted
    if op == "~":
        return isinstance(seen, str) and isinstance(wanted, str) and fnmatch.fnmatchcase(seen, wanted)
    if op == "==":
        return seen == wanted
    if op == "!=":
        return seen != wanted
    if not isinstance(seen, float | int) or not isinstance(wanted, float | int):
        return False
    return {"<": seen < wanted, "<=": seen <= wanted, ">": seen > wanted, ">=": seen >= wanted}[op]


def _value(field: str, instance: InstanceFacts | None, account: AccountFacts) -> Value:
    if instance is not None and field in instance.values:
        return instance.values[field]
    return account.values.get(field)


def _window(c: Comparison, instance: InstanceFacts | None, now: float) -> Verdict:
    assert c.window_s is not None
    series = instance.series.get(c.field) if instance is not None else None
    if series is None or not series.points:
        return Verdict(Truth.UNKNOWN, reason=f"no {c.field} samples")
    limit = 3 * series.interval_s
    points = [p for p in series.points if p[0] <= now]
    if not points or now - points[-1][0] > limit:
        return Verdict(Truth.UNKNOWN, reason=f"no recent {c.field} samples")
    start = now - c.window_s
    run = [points[-1]]
    for point in reversed(points[:-1]):
        if run[-1][0] - point[0] > limit:  # a gap restarts the window
            break
        run.append(point)
    inside = [p for p in run if p[0] >= start]
    if not inside:
        return Verdict(Truth.UNKNOWN, reason=f"no {c.field} samples in the window")
    for _, seen in inside:
        if seen is None:
            return Verdict(Truth.UNKNOWN, reason=f"{c.field} unknown in the window")
        if not _holds(c.op, seen, c.value):
            return Verdict(Truth.FALSE, reason=f"{c.field}={seen} in the window")
    if inside[-1][0] > start + series.interval_s:
        return Verdict(Truth.FALSE, reason=f"{c.field} not covered for the whole window")
    return Verdict(Truth.TRUE, ((c.field, f"{inside[0][1]} for {c.window_s / 60:g}m"),))


def fake_evaluate(condition: Condition, instance: InstanceFacts | None, account: AccountFacts,
                  now: float) -> Verdict:
    if isinstance(condition, Comparison):
        if condition.window_s is not None:
            return _window(condition, instance, now)
        seen = _value(condition.field, instance, account)
        if seen is None:
            return Verdict(Truth.UNKNOWN, reason=f"{condition.field} unknown")
        truth = Truth.TRUE if _holds(condition.op, seen, condition.value) else Truth.FALSE
        return Verdict(truth, ((condition.field, str(seen)),))
    if isinstance(condition, Negation):
        inner = fake_evaluate(condition.part, instance, account, now)
        flipped = {Truth.TRUE: Truth.FALSE, Truth.FALSE: Truth.TRUE, Truth.UNKNOWN: Truth.UNKNOWN}[inner.truth]
        return Verdict(flipped, inner.evidence, inner.reason)
    verdicts = [fake_evaluate(part, instance, account, now) for part in condition.parts]
    decisive, neutral = (Truth.FALSE, Truth.TRUE) if isinstance(condition, AllOf) else (Truth.TRUE, Truth.FALSE)
    assert isinstance(condition, AllOf | AnyOf)
    if any(v.truth is decisive for v in verdicts):
        return Verdict(decisive, tuple(e for v in verdicts if v.truth is decisive for e in v.evidence))
    if any(v.truth is Truth.UNKNOWN for v in verdicts):
        return Verdict(Truth.UNKNOWN, reason="; ".join(v.reason for v in verdicts if v.reason))
    return Verdict(neutral, tuple(e for v in verdicts for e in v.evidence))


# -- building rules -------------------------------------------------------------------------------------


def cmp(field: str, op: str, value: Scalar | tuple[Scalar, ...], window_s: float | None = None) -> Comparison:
    return Comparison(field, op, value, HERE, window_s)


def all_of(*parts: Condition) -> AllOf:
    return AllOf(tuple(parts))


def act(kind: ActionKind, *, warn_s: float | None = None, where: Condition | None = None,
        **args: Scalar) -> Action:
    return Action(kind, HERE, dict(args), where, warn_s)


def rule(name: str, text: str, condition: Condition, *actions: Action, account_scope: bool = False,
         may_act_on_fleet: bool = False, mode: Mode | None = None) -> Rule:
    """A compiled rule; ``text`` is its source in the rule language, for the switch to the real parser."""
    return Rule(name, condition, tuple(actions), HERE, text, account_scope, may_act_on_fleet, mode)


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
              rule_evaluator=fake_evaluate)
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
