"""How each rule action is carried out: through the engine's actions and policy, never the UI."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass

from computehub_tui.clock import Clock
from computehub_tui.domain.models import PROVIDER_TITLES, Capabilities, InstanceStatus, LaunchSpec, Offer
from computehub_tui.domain.text import clean_text
from computehub_tui.engine.actions import ActionService
from computehub_tui.engine.automation.labels import LocalLabels
from computehub_tui.engine.automation.launches import offer_of, replacement_of, replacement_offers, spec_of
from computehub_tui.engine.events import EventBus, RuleNotify
from computehub_tui.engine.live import LiveData
from computehub_tui.engine.policy import PriceAboveMaximum, plan_action
from computehub_tui.engine.safe_store import SafeStore
from computehub_tui.providers.base import ProviderError
from computehub_tui.rules.messages import render_message
from computehub_tui.rules.model import Action, ActionKind, Value
from computehub_tui.store.automation import LaunchRecord

MIGRATE_TIMEOUT_S = 20 * 60.0
"""A replacement that is not running after this long is given up (destroyed) and the old instance kept."""
RELAUNCH_TRIES = 3
"""Offers tried in turn when the best ones have no capacity."""
MESSAGE_LIMIT = 500

MACHINE_ACTIONS = {ActionKind.STOP: "stop", ActionKind.START: "start", ActionKind.RESTART: "restart",
                   ActionKind.DESTROY: "destroy", ActionKind.STOP_ALL: "stop"}
"""Rule actions that are one engine action on one instance."""


@dataclass(frozen=True, slots=True)
class Outcome:
    ok: bool
    message: str
    permanent: bool = False
    """A failure that retrying cannot mend (no launch settings, a provider that cannot stop)."""


class Executor:
    def __init__(self, *, live: LiveData, actions: ActionService, capabilities: Callable[[str], Capabilities],
                 store: SafeStore, bus: EventBus, clock: Clock, poll: Callable[[str], Awaitable[bool]],
                 poll_interval_s: float, labels: LocalLabels) -> None:
        self._live = live
        self._actions = actions
        self._capabilities = capabilities
        self._store = store
        self._bus = bus
        self._clock = clock
        self._poll = poll
        self._poll_interval_s = poll_interval_s
        self._labels = labels
        self.launches: dict[str, LaunchRecord] = {}
        """What each instance was launched from, as the store has it (loaded by the runner)."""
        self._resumed: dict[str, str] = {}
        """Old instance → the replacement ``resume`` found for it: two firings on machines launched with the same
        settings never claim one replacement."""

    async def load(self) -> None:
        self.launches = await self._store.call(self._store.store.launch_records()) or {}

    def pricing_of(self, key: str) -> str | None:
        record = self.launches.get(key)
        pricing = record.offer.get("pricing") if record is not None else None
        return pricing if isinstance(pricing, str) else None

    async def run(self, actor: str, rule: str, action: Action, target: str, values: Mapping[str, Value]) -> Outcome:
        """Carry out ``action`` on ``target`` (an instance key, or ``account``) for ``actor`` (``rule:<name>``)."""
        if action.kind in MACHINE_ACTIONS:
            return await self._machine(actor, MACHINE_ACTIONS[action.kind], target)
        if action.kind is ActionKind.NOTIFY:
            return await self._notify(rule, action, target, values)
        if action.kind is ActionKind.LABEL:
            return await self._label(action, target)
        if action.kind is ActionKind.RELAUNCH:
            return await self._relaunch(actor, target)
        return await self.migrate(actor, action, target)

    async def _machine(self, actor: str, verb: str, key: str) -> Outcome:
        instance = self._live.instance(key)
        if instance is None:
            return Outcome(False, f"{key}: not found", permanent=True)
        plan = plan_action(verb, [instance], self._capabilities)
        if plan.skipped:
            skipped = plan.skipped[0]
            return Outcome(skipped.already_done, f"{verb} {key}: {skipped.reason}", permanent=True)
        result = await self._actions.act(verb, key, refresh=False, actor=actor, audited=False)
        return Outcome(result.ok, result.message)

    async def _notify(self, rule: str, action: Action, target: str, values: Mapping[str, Value]) -> Outcome:
        channel = str(action.args.get("channel", "toast"))
        template = action.args.get("template")
        if isinstance(template, str) and template:
            text = render_message(template, values)
        else:
            text = f"rule {rule} matched {target}"
        message = clean_text(text, MESSAGE_LIMIT)
        # hub.alerts sends it to the named channel; the app also shows it as a toast.
        self._bus.publish(RuleNotify(rule, target, channel, message))
        return Outcome(True, f"notify {channel}: {message}")

    async def _label(self, action: Action, key: str) -> Outcome:
        text = await self._labels.set(key, str(action.args.get("text", "")))
        provider = key.partition(":")[0]
        title = PROVIDER_TITLES.get(provider, provider)
        return Outcome(True, f"labelled {key} {text!r} locally ({title} has no call to rename an instance)")

    async def labelled(self, key: str) -> bool:
        """Whether ``key`` has a local label (a ``label`` action reached the store)."""
        await self._labels.load()
        return bool(self._labels.get(key))

    async def _relaunch(self, actor: str, key: str) -> Outcome:
        launch = await self._launch_settings(key)
        if isinstance(launch, Outcome):
            return launch
        previous, spec = launch
        last_error = "no matching offer is available"
        for offer in replacement_offers(previous, self._live.offers)[:RELAUNCH_TRIES]:
            try:
                new_key = await self._actions.launch(offer, spec, refresh=False, actor=actor, audited=False)
            except ProviderError as error:
                last_error = str(error)
                continue
            await self.load()
            return await self._retire(actor, key, f"relaunched {key} as {new_key} on offer {offer.offer_id}")
        return Outcome(False, f"relaunch {key}: {last_error}")

    async def _launch_settings(self, key: str) -> tuple[Offer, LaunchSpec] | Outcome:
        if key not in self.launches:  # launched since the records were read (by this process or another)
            await self.load()
        record = self.launches.get(key)
        if record is not None:
            return offer_of(record), spec_of(record)
        return Outcome(False, f"{key}: its launch settings were not recorded (it was not launched by this app), "
                              "so it cannot be launched again", permanent=True)

    async def migrate(self, actor: str, action: Action, key: str) -> Outcome:
        """Launch the replacement, wait until it runs, then destroy ``key``; if the replacement fails or does not
        run in time, destroy the replacement and keep ``key``."""
        launch = await self._launch_settings(key)
        if isinstance(launch, Outcome):
            return launch
        previous, spec = launch
        provider = action.args.get("provider")
        gpu = action.args.get("gpu")
        max_price = action.args.get("max_price")
        offers = replacement_offers(previous, self._live.offers, provider=provider if isinstance(provider, str)
                                    else None, gpu=gpu if isinstance(gpu, str) else None,
                                    max_price=float(max_price) if isinstance(max_price, float | int) else None)
        if not offers:
            return Outcome(False, f"migrate {key}: no matching offer is available; the instance is kept")
        offer = offers[0]
        try:
            new_key = await self._actions.launch(offer, spec, refresh=False, actor=actor, audited=False,
                                                 max_price=float(max_price) if isinstance(max_price, float | int)
                                                 else None)
        except (ProviderError, PriceAboveMaximum) as error:
            return Outcome(False, f"migrate {key}: the replacement could not be launched ({error}); the instance "
                                  "is kept")
        await self.load()
        if not await self._runs(new_key):
            return await self._give_up(actor, key, new_key)
        return await self._retire(actor, key, f"migrated {key} to {new_key}")

    async def resume(self, actor: str, verb: str, key: str, attempted_at: float) -> Outcome | None:
        """Settle a ``relaunch`` or ``migrate`` of ``key`` that an earlier process left in flight at
        ``attempted_at``, from what the provider shows now: find the replacement it launched (recorded with
        ``key``'s settings since then) and finish the job; never launch a second one. None: not settled yet
        (a migration's replacement is still starting: ask again after the next poll)."""
        await self.load()
        old = self.launches.get(key)
        new_key = self._resumed.get(key)
        if new_key is None and old is not None:
            taken = set(self._resumed.values())
            new_key = replacement_of(old, self.launches.values(), attempted_at, taken)
        if new_key is None:
            return Outcome(False, f"{verb} {key}: in flight when the last run ended and no replacement was found; "
                                  "not repeated (held until its cooldown ends)", permanent=True)
        self._resumed[key] = new_key
        if verb == "relaunch":
            return await self._retire(actor, key, f"relaunched {key} as {new_key} (found after a restart)")
        new = self._live.instance(new_key)
        if new is not None and new.status is InstanceStatus.RUNNING:
            return await self._retire(actor, key, f"migrated {key} to {new_key} (finished after a restart)")
        failed = new is not None and new.status in (InstanceStatus.ERROR, InstanceStatus.TERMINATED,
                                                    InstanceStatus.EXITED)
        if not failed and self._clock.now() < attempted_at + MIGRATE_TIMEOUT_S:
            return None
        return await self._give_up(actor, key, new_key)

    async def _give_up(self, actor: str, key: str, new_key: str) -> Outcome:
        """A migration whose replacement did not run: destroy the replacement, keep ``key``."""
        new = self._live.instance(new_key)
        if new is None or new.status is not InstanceStatus.TERMINATED:
            await self._actions.act("destroy", new_key, refresh=False, actor=actor, audited=False)
        return Outcome(False, f"migrate {key}: the replacement {new_key} did not start running; it was destroyed "
                              "and the instance is kept", permanent=True)

    async def _retire(self, actor: str, key: str, done: str) -> Outcome:
        """Destroy ``key`` now that its replacement is in place (if it is still there)."""
        instance = self._live.instance(key)
        if instance is None or instance.status is InstanceStatus.TERMINATED:
            return Outcome(True, done)
        old = await self._actions.act("destroy", key, refresh=False, actor=actor, audited=False)
        return Outcome(True, done if old.ok else f"{done}; destroying the old one failed: {old.message}")

    async def _runs(self, key: str) -> bool:
        """Poll ``key``'s provider until ``key`` runs (True), fails or goes (False), or the timeout passes."""
        provider = key.partition(":")[0]
        deadline = self._clock.now() + MIGRATE_TIMEOUT_S
        while self._clock.now() < deadline:
            await self._clock.sleep(self._poll_interval_s)
            await self._poll(provider)
            instance = self._live.instance(key)
            if instance is not None and instance.status is InstanceStatus.RUNNING:
                return True
            # Not listed yet is not failed: a provider may take a poll or two to show a new instance.
            if instance is not None and instance.status in (InstanceStatus.ERROR, InstanceStatus.TERMINATED,
                                                            InstanceStatus.EXITED):
                return False
        return False
