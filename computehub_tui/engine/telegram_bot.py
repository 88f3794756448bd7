"""The Telegram bot, inbound: commands and alert buttons from the configured chat only, read by long-polling getUpdates."""

from __future__ import annotations

import logging
import secrets
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from computehub_tui.domain.idle import idle_readout, span
from computehub_tui.domain.models import Instance, InstanceStatus
from computehub_tui.domain.text import clean_text, show_controls
from computehub_tui.engine import policy
from computehub_tui.notify.base import Button, DeliveryError, PermanentError, TransientError
from computehub_tui.notify.telegram import ChatInfo, Incoming, IncomingCallback, IncomingMessage, UpdateBatch

if TYPE_CHECKING:
    from computehub_tui.engine.automation.lease import LeaseKeeper
    from computehub_tui.engine.hub import Hub

log = logging.getLogger(__name__)

ACTOR = "telegram"
"""Who the audit log says acted when a confirmed Telegram command stops an instance."""
OFFSET_FLAG = "telegram.offset"
"""The next update id to ask for, kept in the store: a restart never handles an update twice."""
LONG_POLL_S = 25.0
RETRY_S = 5.0
REPLY_ATTEMPTS = 3
MAX_REPLY_WAIT_S = 60.0
"""A reply the server asks to hold longer than this is dropped (logged): the user will have asked again."""
MIN_POLL_GAP_S = 1.0
"""An empty answer that came sooner than this (a Bot API server that does not hold long polls) waits the rest:
the loop must not spin."""
STANDBY_S = 10.0
"""How often a process whose bot lease another one holds asks again (the holder may have quit)."""
PERMANENT_PAUSE_S = 300.0
"""After a permanent error (a revoked token, another reader of the bot) polling waits this long."""
CONFIRM_TTL_S = 300.0
SNOOZE_S = 3600.0
MAX_LISTED = 20
"""Lines of instances one reply lists; the rest is counted."""
MAX_ARGUMENT = 120

HELP = """Commands:
/status – running machines, burn rate, spend today
/idle – idle GPUs and what they cost per hour
/pause – stop automation from acting (every process)
/resume – let automation act again
/stop <instance> – stop one instance (asks to confirm)
/stopidle – stop every idle instance (asks to confirm)
/help – this list"""


class TelegramLink(Protocol):
    """What the bot needs of the Telegram channel (``notify.telegram.TelegramChannel``)."""

    chat_id: str

    async def send_text(self, text: str, buttons: Sequence[Button] = (), *, chat_id: str | None = None) -> int: ...

    async def answer_callback(self, callback_id: str, text: str = "") -> None: ...

    async def remove_buttons(self, chat_id: str, message_id: int) -> None: ...

    async def get_updates(self, offset: int | None, timeout: float) -> UpdateBatch: ...

    async def aclose(self) -> None: ...


class Acknowledger(Protocol):
    """The alerts service's acknowledge (``hub.alerts``): stops the repeats of one alert key."""

    async def acknowledge(self, key: str, by: str) -> bool: ...


@dataclass(frozen=True, slots=True)
class PendingConfirmation:
    """A destructive command waiting for its Confirm button: ``keys`` are what it was planned on."""

    action: str
    keys: tuple[str, ...]
    expires_at: float


class TelegramBot:
    """Long-polls the bot's updates and answers the configured chat. Anything from another chat is logged at
    INFO with its chat id and never answered. Replies go straight to Telegram (not through the outbox).

    With a ``lease``, ``run`` polls only while this process holds it: the app and a daemon on one database
    take turns instead of fighting over the bot (Telegram answers a second reader 409 Conflict)."""

    def __init__(self, hub: Hub, link: TelegramLink, *, alerts: Acknowledger | None = None,
                 long_poll_s: float = LONG_POLL_S, lease: LeaseKeeper | None = None,
                 standby_s: float = STANDBY_S) -> None:
        self._hub = hub
        self._link = link
        self._alerts = alerts
        self._long_poll_s = long_poll_s
        self._lease = lease
        self._standby_s = standby_s
        self._standing_by = False
        self._offset: int | None = None
        self._confirmations: dict[str, PendingConfirmation] = {}
        self._commands: dict[str, Callable[[str], Awaitable[str]]] = {
            "status": self._status, "idle": self._idle, "pause": self._pause, "resume": self._resume,
            "help": self._help, "start": self._help,
        }

    @property
    def chat_id(self) -> str:
        return self._link.chat_id

    async def aclose(self) -> None:
        """Close the link and give the lease up, so another process answers the bot at once."""
        await self._link.aclose()
        if self._lease is not None:
            await self._lease.release()

    # -- the loop -------------------------------------------------------------------------------

    async def run(self) -> None:
        """Poll until cancelled (the engine stopping cancels the long poll in flight at once)."""
        while True:
            if self._lease is not None and not await self._lease.claim():
                self._note_standby(self._lease.holder_description)
                await self._hub.clock.sleep(self._standby_s)
                continue
            self._note_standby(None)
            asked_at = self._hub.clock.monotonic()
            if not await self.poll_once(self._long_poll_s):
                waited = self._hub.clock.monotonic() - asked_at
                if waited < MIN_POLL_GAP_S:
                    await self._hub.clock.sleep(MIN_POLL_GAP_S - waited)

    def _note_standby(self, holder: str | None) -> None:
        """Logs each change between polling and standing by (not every standby round)."""
        if (holder is not None) == self._standing_by:
            return
        self._standing_by = holder is not None
        if holder is not None:
            log.info("telegram: %s answers the bot; this process stands by", holder)
        else:
            log.info("telegram: this process now answers the bot")

    async def poll_once(self, timeout: float = 0.0) -> int:
        """One getUpdates (waiting up to ``timeout`` s) and the handling of what it brought; returns how many
        updates were handled. Failures wait (the server's retry_after, else a pause) rather than raise."""
        # Read every time: another process (the app beside the daemon) may have handled updates meanwhile.
        self._offset = _later(self._offset, await self._stored_offset())
        try:
            batch = await self._link.get_updates(self._offset, timeout)
        except TransientError as error:
            log.info("telegram: polling failed (%s); retrying", error.reason)
            await self._hub.clock.sleep(error.retry_after if error.retry_after is not None else RETRY_S)
            return 0
        except PermanentError as error:
            log.error("telegram: polling stopped for %.0f s: %s", PERMANENT_PAUSE_S, error.reason)
            await self._hub.clock.sleep(PERMANENT_PAUSE_S)
            return 0
        if batch.next_offset is not None and batch.next_offset != self._offset:
            # Saved before handling: a crash while handling loses a command rather than running it twice.
            self._offset = batch.next_offset
            await self._hub.store.set_flag(OFFSET_FLAG, str(batch.next_offset), self._hub.clock.now())
        for item in batch.items:
            await self.handle(item)
        return len(batch.items)

    async def _stored_offset(self) -> int | None:
        stored = await self._hub.store.flag(OFFSET_FLAG)
        return int(stored) if stored is not None and stored.isdigit() else None

    # -- one update -----------------------------------------------------------------------------

    async def handle(self, item: Incoming) -> None:
        if not self._from_our_chat(item.chat):
            log.info("telegram: ignored an update from chat %s (not the configured chat)", item.chat.id)
            return
        if isinstance(item, IncomingMessage):
            reply = await self._command(item.text)
            if reply is not None:
                await self._reply(*reply)
        elif isinstance(item, IncomingCallback):
            await self._button(item)

    def _from_our_chat(self, chat: ChatInfo) -> bool:
        configured = self.chat_id
        if configured.startswith("@"):  # updates carry numeric ids; a public chat also carries its @name
            return bool(chat.username) and chat.username.lower() == configured[1:].lower()
        return bool(chat.id) and chat.id == configured

    async def _command(self, text: str) -> tuple[str, Sequence[Button]] | None:
        if not text.startswith("/"):
            return None
        word, _, argument = text[1:].partition(" ")
        name = word.split("@", 1)[0].lower()
        argument = clean_text(argument, MAX_ARGUMENT)
        if name == "stop":
            return await self._ask_to_stop(argument)
        if name == "stopidle":
            return self._ask_to_stop_idle()
        handler = self._commands.get(name)
        if handler is None:
            return f"Unknown command /{clean_text(name, 40)}. Send /help for the list.", ()
        return await handler(argument), ()

    async def _reply(self, text: str, buttons: Sequence[Button] = ()) -> None:
        """Send a reply; a 429 or an outage is retried (after the server's retry_after) a few times."""
        for attempt in range(1, REPLY_ATTEMPTS + 1):
            try:
                await self._link.send_text(show_controls(text), buttons)
                return
            except TransientError as error:
                wait_s = error.retry_after if error.retry_after is not None else RETRY_S
                if attempt == REPLY_ATTEMPTS or wait_s > MAX_REPLY_WAIT_S:
                    log.warning("telegram: a reply could not be sent (%d attempts): %s", attempt, error.reason)
                    return
                log.info("telegram: a reply waits %.0f s to be sent again: %s", wait_s, error.reason)
                await self._hub.clock.sleep(wait_s)
            except DeliveryError as error:
                log.warning("telegram: a reply could not be sent: %s", error.reason)
                return

    # -- read-only commands ---------------------------------------------------------------------

    async def _status(self, _: str) -> str:
        instances = self._hub.instances()
        running = [i for i in instances if i.status is InstanceStatus.RUNNING]
        by_provider = Counter(i.provider for i in running)
        providers = ", ".join(f"{name} {count}" for name, count in sorted(by_provider.items()))
        stopped = sum(1 for i in instances if i.status in (InstanceStatus.STOPPED, InstanceStatus.EXITED))
        costs = self._hub.costs
        rules = self._hub.rules
        automation = f"paused ({clean_text(rules.pause_reason, 80)})" if rules.paused else "on"
        return "\n".join([
            f"Running: {len(running)}" + (f" ({providers})" if providers else "") + f"; stopped: {stopped}",
            f"Burn rate: ${costs.burn_rate(instances):,.3f}/h",
            f"Spend today: ${costs.spend_today:,.2f}",
            f"Automation: {automation}",
        ])

    def _idle_instances(self) -> list[tuple[Instance, str]]:
        now = self._hub.clock.now()
        found = []
        for instance in self._hub.instances():
            if instance.status is not InstanceStatus.RUNNING:
                continue
            readout = idle_readout(self._hub.metric_history(instance.key), now, instance.gpu_count)
            if readout.state == "idle":
                since = f" for {span(readout.idle_for_s)}" if readout.idle_for_s else ""
                found.append((instance, f"{readout.idle_gpus} GPU idle{since}"))
        return found

    async def _idle(self, _: str) -> str:
        idle = self._idle_instances()
        if not idle:
            return "No idle GPUs (a machine with no recent samples counts as unknown, not idle)."
        total = 0.0
        lines = []
        for instance, what in idle:
            rate = self._hub.costs.rate_now(instance)
            total += rate or 0.0
            price = f"${rate:,.3f}/h" if rate is not None else "price unknown"
            lines.append(f"{_name(instance)}: {clean_text(instance.gpu, 60)}, {what}, {price}")
        return "\n".join([f"Idle: {len(idle)} instance(s), ${total:,.3f}/h", *_bounded(lines)])

    async def _pause(self, argument: str) -> str:
        await self._hub.rules.pause(f"paused from Telegram{': ' + argument if argument else ''}")
        return "Automation paused: no rule acts, in any process, until /resume."

    async def _resume(self, _: str) -> str:
        await self._hub.rules.resume()
        return "Automation resumed."

    async def _help(self, _: str) -> str:
        return HELP

    # -- destructive commands: planned here, run only after Confirm ------------------------------

    async def _ask_to_stop(self, argument: str) -> tuple[str, Sequence[Button]]:
        if not argument:
            return "Which instance? e.g. /stop vast:123456 (see /status).", ()
        matches = self._find(argument)
        if len(matches) != 1:
            found = "no instance" if not matches else f"{len(matches)} instances"
            return f"{found} called {argument}; use its full id, e.g. vast:123456.", ()
        return self._ask_to_confirm("stop", matches)

    def _ask_to_stop_idle(self) -> tuple[str, Sequence[Button]]:
        idle = [instance for instance, _ in self._idle_instances()]
        if not idle:
            return "No idle instances to stop.", ()
        return self._ask_to_confirm("stop", idle)

    def _find(self, name: str) -> list[Instance]:
        instances = self._hub.instances()
        for same in (lambda i: i.key == name, lambda i: i.instance_id == name, lambda i: i.label == name):
            found = [instance for instance in instances if same(instance)]
            if found:
                return found
        return []

    def _ask_to_confirm(self, action: str, instances: Sequence[Instance]) -> tuple[str, Sequence[Button]]:
        plan = policy.plan_action(action, instances, self._hub.capabilities)
        skipped = [f"{_name(s.instance)}: {s.reason}" for s in plan.skipped]
        if not plan.targets:
            return "\n".join(["Nothing to do.", *_bounded(skipped)]), ()
        now = self._hub.clock.now()
        self._confirmations = {token: pending for token, pending in self._confirmations.items()
                               if pending.expires_at > now}
        token = secrets.token_urlsafe(12)
        self._confirmations[token] = PendingConfirmation(action, tuple(plan.keys), now + CONFIRM_TTL_S)
        lines = [f"{plan.summary()}:", *_bounded([_name(i) for i in plan.targets]), *plan.caveats]
        if skipped:
            lines += ["Skipped:", *_bounded(skipped)]
        lines.append(f"Press Confirm within {CONFIRM_TTL_S / 60:.0f} min to go ahead.")
        return "\n".join(lines), (Button("Confirm", f"confirm:{token}"),)

    async def _confirmed(self, token: str) -> str:
        pending = self._confirmations.pop(token, None)
        if pending is None or pending.expires_at <= self._hub.clock.now():
            return "That confirmation has expired or was used; send the command again."
        # Planned again on what the engine sees now: a machine stopped meanwhile is skipped, not re-sent.
        current = [i for key in pending.keys if (i := self._hub.instance(key)) is not None]
        plan = policy.plan_action(pending.action, current, self._hub.capabilities)
        results = await self._hub.act_many(pending.action, plan.keys, actor=ACTOR)
        lines = [f"{result.key}: {'done' if result.ok else 'failed'} – {clean_text(result.message, 200)}"
                 for result in results]
        lines += [f"{_name(s.instance)}: {s.reason}" for s in plan.skipped]
        return "\n".join(_bounded(lines)) or "Nothing to do."

    # -- buttons ----------------------------------------------------------------------------------

    async def _button(self, press: IncomingCallback) -> None:
        kind, _, value = press.data.partition(":")
        if kind == "confirm":
            notice, reply = "working…", await self._confirmed(value)
        elif kind == "snooze":
            snoozed = await self._hub.rules.snooze(value, SNOOZE_S)
            notice = "snoozed for 1 h" if snoozed is not None else "that warning is no longer pending"
            reply = None
        elif kind == "cancel":
            notice = "cancelled" if await self._hub.rules.cancel(value) else "that warning is no longer pending"
            reply = None
        elif kind == "ack":
            acknowledged = self._alerts is not None and await self._alerts.acknowledge(value, ACTOR)
            notice, reply = ("acknowledged" if acknowledged else "nothing to acknowledge"), None
        else:
            notice, reply = "unknown button", None
        try:
            await self._link.answer_callback(press.callback_id, notice)
            # The choice is made: its buttons go, so it cannot be pressed twice.
            await self._link.remove_buttons(press.chat.id, press.message_id)
        except DeliveryError as error:
            log.warning("telegram: a button could not be answered: %s", error.reason)
        if reply is not None:
            await self._reply(reply)


def _later(first: int | None, second: int | None) -> int | None:
    return first if second is None else second if first is None else max(first, second)


def _name(instance: Instance) -> str:
    label = clean_text(instance.label, 60)
    return f"{instance.key} ({label})" if label and label != instance.instance_id else instance.key


def _bounded(lines: list[str]) -> list[str]:
    if len(lines) <= MAX_LISTED:
        return lines
    return [*lines[:MAX_LISTED], f"… and {len(lines) - MAX_LISTED} more"]
