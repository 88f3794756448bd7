"""The action policy every caller shares: what an action applies to, what it costs, when to confirm, and
what a launch may cost (the max-price guard) and try next (the next-best offer)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from computehub_tui.domain.models import PROVIDER_TITLES, Capabilities, Instance, InstanceStatus, Offer, PricingKind
from computehub_tui.domain.pricing import price_at_disk

ACTIONS = ("start", "stop", "restart", "destroy")

_ALREADY: dict[str, frozenset[InstanceStatus]] = {
    "start": frozenset({InstanceStatus.RUNNING, InstanceStatus.STARTING, InstanceStatus.PROVISIONING}),
    "stop": frozenset({InstanceStatus.STOPPED, InstanceStatus.EXITED}),
    "restart": frozenset(),
    "destroy": frozenset(),
}
_ALREADY_REASON = {"start": "already running", "stop": "already stopped"}
INTERRUPTIBLE_CAVEAT = "interruptible: the machine can be taken back when outbid"
_INTERRUPTION_WORDS = ("interruptible", "outbid", "spot", "bid ")
_RESTARTABLE = frozenset({InstanceStatus.RUNNING, InstanceStatus.STARTING, InstanceStatus.ERROR,
                          InstanceStatus.UNKNOWN, InstanceStatus.EXITED})


@dataclass(frozen=True, slots=True)
class Skipped:
    instance: Instance
    reason: str

    @property
    def already_done(self) -> bool:
        """The instance is already where the action would take it (nothing to do is not a failure)."""
        return self.reason.startswith("already ")


@dataclass(frozen=True, slots=True)
class ActionPlan:
    """One action over a set of instances, decided before anything is sent.

    ``targets`` are the instances the action will be sent to; ``skipped`` the ones it will not,
    each with a reason the user can read (``already stopped``, ``Lambda cannot stop``).
    """

    action: str
    targets: tuple[Instance, ...]
    skipped: tuple[Skipped, ...]
    caveats: tuple[str, ...]
    needs_confirmation: bool
    starts_billing_hour: float = 0.0
    """What the targets will cost per hour once started (start / restart of stopped machines)."""

    @property
    def keys(self) -> list[str]:
        return [instance.key for instance in self.targets]

    @property
    def destroys(self) -> bool:
        return self.action == "destroy"

    def summary(self) -> str:
        """One line: what will happen, for a confirmation title or a CLI prompt."""
        count = len(self.targets)
        noun = "instance" if count == 1 else "instances"
        line = f"{self.action.capitalize()} {count} {noun}"
        if self.starts_billing_hour > 0:
            line += f" (billing ${self.starts_billing_hour:.3f}/h once running)"
        return line


def plan_action(action: str, instances: Sequence[Instance],
                capabilities: Callable[[str], Capabilities]) -> ActionPlan:
    """Apply the rules every caller shares (TUI key, palette, bulk, CLI, later the rule runner):

    - start, stop and restart skip instances already in the wanted state, and providers that
      cannot do the action (Lambda has no stop);
    - destroy always confirms; start confirms because it starts billing; restart confirms
      because it interrupts what runs; stop confirms when it keeps billing storage or acts on
      more than one instance.
    """
    if action not in ACTIONS:
        raise ValueError(f"unknown action {action!r} (known: {', '.join(ACTIONS)})")
    targets: list[Instance] = []
    skipped: list[Skipped] = []
    for instance in instances:
        reason = _skip_reason(action, instance, capabilities(instance.provider))
        if reason:
            skipped.append(Skipped(instance, reason))
        else:
            targets.append(instance)
    caveats = _caveats(action, targets, capabilities)
    # Only machines not billing compute now add to the bill when started or restarted.
    bills = sum(i.price_hour for i in targets if action in ("start", "restart")
                and not i.status.is_billing_compute)
    confirm = bool(targets) and (
        action in ("destroy", "start", "restart") or bool(caveats) or len(targets) > 1)
    return ActionPlan(action, tuple(targets), tuple(skipped), tuple(caveats), confirm, round(bills, 6))


def _skip_reason(action: str, instance: Instance, caps: Capabilities) -> str:
    title = PROVIDER_TITLES.get(instance.provider, instance.provider)
    if instance.status is InstanceStatus.TERMINATED:
        return "already destroyed"
    if action in ("start", "stop") and not caps.can_stop:
        return f"{title} has no stop/start (terminate only; billing runs until destroy)"
    if action == "restart" and not caps.can_restart:
        return f"{title} cannot restart an instance"
    if instance.status in _ALREADY[action]:
        return _ALREADY_REASON[action]
    if action == "restart" and instance.status not in _RESTARTABLE:
        return f"{instance.status.value}; use start instead"
    return ""


def _caveats(action: str, targets: Sequence[Instance], capabilities: Callable[[str], Capabilities]) -> list[str]:
    caveats: list[str] = []
    for provider in sorted({t.provider for t in targets}):
        caps = capabilities(provider)
        title = PROVIDER_TITLES.get(provider, provider)
        if action == "stop" and caps.bills_storage_while_stopped:
            caveats.append(f"{title}: stopped instances still bill storage")
        if action == "restart" and not caps.can_stop:
            caveats.append(f"{title}: restart reboots in place; billing continues")
    if action == "restart" and any(t.status is InstanceStatus.RUNNING for t in targets):
        caveats.append("restart interrupts whatever is running on the machine")
    if action == "start":
        caveats.append("starting bills the full GPU price from the moment the machine is scheduled")
    return caveats


def launch_caveats(offer: Offer, capabilities: Capabilities) -> tuple[str, ...]:
    """What to know before renting ``offer``, each point once: the provider's notes, without the ones
    about interruptible machines unless this offer is one; an interruptible offer leads with the risk
    of losing the machine, in the provider's own words where it has them."""
    about_interruption = [note for note in capabilities.notes if _mentions_interruption(note)]
    general = [note for note in capabilities.notes if note not in about_interruption]
    if offer.pricing is not PricingKind.INTERRUPTIBLE:
        return tuple(dict.fromkeys(general))
    return tuple(dict.fromkeys([*(about_interruption or [INTERRUPTIBLE_CAVEAT]), *general]))


def _mentions_interruption(note: str) -> bool:
    lowered = note.lower()
    return any(word in lowered for word in _INTERRUPTION_WORDS)


# -- launching --------------------------------------------------------------------------------


class LaunchRefused(Exception):
    """The policy would not send this launch: nothing reached the provider."""


class PriceAboveMaximum(LaunchRefused):
    def __init__(self, offer: Offer, price_hour: float, maximum: float) -> None:
        self.offer = offer
        self.price_hour = price_hour
        self.maximum = maximum
        title = PROVIDER_TITLES.get(offer.provider, offer.provider)
        super().__init__(f"the live quote for offer {offer.offer_id} on {title} is ${price_hour:.3f}/h, "
                         f"above your max of ${maximum:.3f}/h; nothing was launched")


def launch_price(offer: Offer, *, disk_gb: int, planned_disk_gb: int, bid: float | None = None) -> float:
    """What a launch of ``offer`` bills per hour, all in: the bid for an interruptible bid, else the
    quote at the chosen disk size (the quote assumed ``planned_disk_gb``)."""
    return bid if bid is not None else price_at_disk(offer, disk_gb, planned_disk_gb)


def check_max_price(offer: Offer, price_hour: float, maximum: float | None) -> None:
    """Raise PriceAboveMaximum when ``price_hour`` (for the freshest quote of ``offer``) is above ``maximum``."""
    if maximum is not None and price_hour > maximum:
        raise PriceAboveMaximum(offer, price_hour, maximum)


def next_best_offer(failed: Offer, offers: Sequence[Offer]) -> Offer | None:
    """After "no capacity": the cheapest other available offer with the same GPU, count and pricing kind."""
    candidates = [o for o in offers
                  if o.key != failed.key and o.available and o.gpu == failed.gpu
                  and o.gpu_count == failed.gpu_count and o.pricing is failed.pricing]
    return min(candidates, key=lambda o: o.price_hour, default=None)
