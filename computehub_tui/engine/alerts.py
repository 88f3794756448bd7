"""``hub.alerts``: turns engine events into alerts, writes them to the outbox (grouped, de-duplicated, repeated,
resolved) and runs the delivery worker under the supervisor."""

from __future__ import annotations

import asyncio
import logging
import os
import secrets
import socket
import uuid
from collections.abc import Callable, Coroutine, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, tzinfo
from pathlib import Path
from typing import Any, Protocol

from computehub_tui.clock import Clock, sleep_until_woken
from computehub_tui.config.editing import remove_table, set_value
from computehub_tui.config.schema import ALERT_CHANNELS, AlertsSection, quiet_window
from computehub_tui.domain.alerts import FIRING, NOTICE, QUEUED, RESOLVED, AlertRow, DeliveryRow, new_delivery_id
from computehub_tui.domain.models import Instance, InstanceStatus
from computehub_tui.domain.secret import Secret
from computehub_tui.domain.text import clean_text
from computehub_tui.engine.automation.lease import pid_alive
from computehub_tui.engine.events import (
    ActionFinished,
    ActionStarted,
    AlertQueued,
    DeliveryChanged,
    EngineEvent,
    EventBus,
    HealthState,
    InstancesUpdated,
    ProviderHealthChanged,
    RuleFired,
    RuleNotify,
    RuleWarningPending,
    SpendUpdated,
)
from computehub_tui.notify.base import Button, Channel, OutgoingMessage
from computehub_tui.notify.channels import (
    HOW_TO_CONFIGURE,
    SECRET_OF_CHANNEL,
    ChannelBuilder,
    ChannelConfigError,
    build_channel,
    build_channels,
    unconfigured,
)
from computehub_tui.notify.delivery import DeliveryOutcome, DeliveryWorker, RetryPolicy
from computehub_tui.notify.grouping import (
    GroupingSettings,
    Verdict,
    digest_text,
    group_of,
    on_raise,
    quiet_until,
    repeat_due_at,
    resolve_is_sent,
    worst_severity,
)
from computehub_tui.store.outbox import OutboxStore

log = logging.getLogger(__name__)

TITLE_LIMIT = 200
BODY_LINE_LIMIT = 500
BODY_LINES = 40
CALLBACK_DATA_BYTES = 64
"""Telegram's limit on a button's callback data."""
FIRING_KINDS = frozenset({"instance_down", "provider_down"})
"""Kinds that fire until resolved (and repeat until acknowledged); every other kind is a one-off notice."""
UNGROUPED_KINDS = frozenset({"rule_warning", "command_reply", "test"})
"""Sent at once, never folded into a digest: a WARN's Snooze / Cancel buttons must arrive before it acts."""
DOWN_STATES = frozenset({InstanceStatus.EXITED, InstanceStatus.ERROR, InstanceStatus.TERMINATED,
                         InstanceStatus.STOPPED})
UNREACHABLE = frozenset({HealthState.DOWN, HealthState.RATE_LIMITED, HealthState.CIRCUIT_OPEN})
EXPECTED_FOR_S = 1800.0
"""A machine that stops within this long after someone asked it to stop (or destroy, restart) did not go down."""
STOPPING_ACTIONS = frozenset({"stop", "destroy", "restart", "relaunch", "migrate"})


class ChannelSecrets(Protocol):
    """Where channel secrets are kept (``KeyService``): the vault, with environment overrides."""

    async def channel_secrets(self) -> dict[str, Secret]: ...

    async def set_channel_secret(self, name: str, value: str | None) -> None: ...


@dataclass(frozen=True, slots=True)
class AlertsSettings:
    section: AlertsSection = field(default_factory=AlertsSection)
    zone: tzinfo | None = None
    """[costs] timezone: quiet hours and "spend today" are in it."""
    config_path: Path | None = None
    """Where save_channel / remove_channel write ([alerts.<channel>] sections)."""
    reload: Callable[[], AlertsSection] | None = None
    """Reads ``[alerts]`` again (file and environment) after save_channel / remove_channel changed the file."""


def claimant_id(host: str | None = None, pid: int | None = None) -> str:
    """``host:pid:token``: who claimed a delivery, so another process can tell when that one is gone."""
    return f"{host or socket.gethostname()}:{os.getpid() if pid is None else pid}:{secrets.token_hex(4)}"


def claimant_gone(claimant: str, *, ours: str, alive: Callable[[int], bool] = pid_alive) -> bool:
    """A claim made on this host by a process that no longer runs."""
    host, _, rest = claimant.partition(":")
    pid_text = rest.partition(":")[0]
    if claimant == ours or host != ours.partition(":")[0] or not pid_text.isdigit():
        return False
    return not alive(int(pid_text))


def safe_body(text: str) -> str:
    """Plain multi-line text: each line made safe and bounded, at most BODY_LINES lines."""
    return "\n".join(clean_text(line, BODY_LINE_LIMIT) for line in text.splitlines()[:BODY_LINES]).strip()


class AlertsService:
    """``hub.alerts``. Every alert is written to the outbox before anything is sent; the worker delivers it."""

    def __init__(self, store: OutboxStore, bus: EventBus, clock: Clock, settings: AlertsSettings, *,
                 secrets_source: ChannelSecrets | None = None, instances: Callable[[], Sequence[Instance]] = tuple,
                 builder: ChannelBuilder = build_channel, claimant: str | None = None,
                 alive: Callable[[int], bool] = pid_alive, policy: RetryPolicy | None = None,
                 start_task: Callable[[str, Callable[[], Coroutine[Any, Any, None]]], None] | None = None) -> None:
        self._store = store
        self._bus = bus
        self._clock = clock
        self.settings = settings
        self.secrets_source = secrets_source
        self._start_task = start_task
        self._started = False
        self._wanted = False
        """start() was called: a channel configured later starts the tasks then."""
        self._instances = instances
        self._builder = builder
        self.claimant = claimant or claimant_id()
        self._channels: dict[str, Channel] = {}
        self._unconfigured_told: set[tuple[str, str]] = set()
        """(rule, channel) pairs already logged as notifying a channel that is not configured."""
        self.channel_errors: dict[str, str] = {}
        """Configured channels that could not be built, with why."""
        self._ready = False
        self._loading = asyncio.Lock()
        self._worker = DeliveryWorker(store, {}, clock, claimant=self.claimant,
                                      claimant_gone=lambda other: claimant_gone(other, ours=self.claimant,
                                                                                alive=alive),
                                      fallback=settings.section.fallback, policy=policy,
                                      on_outcome=self._delivery_changed)
        self._schedule_wake = asyncio.Event()
        self._tasks: set[asyncio.Task[None]] = set()
        self._statuses: dict[str, InstanceStatus] = {}
        self._expected_stop: dict[str, float] = {}
        self._down_since: dict[str, float] = {}
        self._spend_day = ""
        self._spend_crossed: set[float] = set()
        bus.subscribe(self._on_event)

    # -- setup --------------------------------------------------------------------------------

    @property
    def grouping(self) -> GroupingSettings:
        section = self.settings.section
        return GroupingSettings(section.group_interval, section.repeat_interval, quiet_window(section.quiet_hours),
                                self.settings.zone)

    @property
    def worker(self) -> DeliveryWorker:
        return self._worker

    async def load_channels(self) -> dict[str, str]:
        """Build every configured channel with the current secrets; returns the ones that failed, with why."""
        found = await self.secrets_source.channel_secrets() if self.secrets_source is not None else {}
        errors: dict[str, str] = {}
        channels = build_channels(self.settings.section, found, builder=self._builder, errors=errors)
        old = self._channels
        self._channels, self.channel_errors = channels, errors
        self._worker.set_channels(channels, self.settings.section.fallback)
        self._ready = True
        for name, channel in old.items():
            if channels.get(name) is not channel:
                await channel.aclose()
        return errors

    def start(self) -> None:
        """Run the worker and the timers under the supervisor once any channel is configured (none: no task)."""
        self._wanted = True
        if self._started or self._start_task is None or not self.settings.section.channel_names():
            return
        self._started = True
        self._start_task("alerts-delivery", self.run_delivery)
        self._start_task("alerts-schedule", self.run_schedule)

    def channel_names(self) -> list[str]:
        """The channels alerts go to (configured and usable)."""
        return [name for name in ALERT_CHANNELS if name in self._channels]

    def configured_channels(self) -> list[str]:
        """The channels whose section is present, usable or not (Settings → Notifications lists these)."""
        return self.settings.section.channel_names()

    def unconfigured(self, notified: Iterable[tuple[str, str]]) -> list[tuple[str, str]]:
        """Of ``notified`` (rule, channel) pairs, those whose channel is not set up (a toast needs none)."""
        return unconfigured(notified, self.configured_channels())

    async def channel_settings(self, name: str) -> tuple[dict[str, object], str]:
        """``[alerts.<name>]`` under its config names, and the channel's secret masked (``""``: none stored)."""
        values = getattr(self.settings.section, name).model_dump(by_alias=True)
        found = await self.secrets_source.channel_secrets() if self.secrets_source is not None else {}
        secret = found.get(SECRET_OF_CHANNEL[name])
        return values, secret.masked if secret else ""

    def channel(self, name: str) -> Channel | None:
        """The built channel ``name`` (None: not configured or not usable)."""
        return self._channels.get(name)

    async def run_delivery(self) -> None:
        """The delivery worker (a supervised task)."""
        await self._ensure_ready()
        await self._worker.run()

    async def _ensure_ready(self) -> None:
        """Build the channels once, before the first alert is routed (an alert raised earlier would find none)."""
        async with self._loading:
            if not self._ready:
                await self.load_channels()

    async def run_schedule(self) -> None:
        """Digests, repeats and provider-down timers (a supervised task): sleeps until the next one is due."""
        while True:
            self._schedule_wake.clear()
            due = await self.tick()
            await sleep_until_woken(self._clock, self._schedule_wake, due)

    async def settled(self) -> None:
        """Wait until every engine event received so far has been turned into alerts (tests, the daemon's stop)."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    async def aclose(self) -> None:
        """Stop queuing (the supervisor stops the worker) and close the channels' connections."""
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        for channel in self._channels.values():
            await channel.aclose()
        self._channels, self._ready, self._started, self._wanted = {}, False, False, False

    # -- the API --------------------------------------------------------------------------------

    async def raise_alert(self, kind: str, key: str, severity: str, title: str, body: str, *,
                          fields: Mapping[str, str] | None = None, buttons: Sequence[Button] = (),
                          channels: Sequence[str] | None = None) -> None:
        """Write an alert to the outbox: sent at once, folded into its group's digest, or dropped as a
        duplicate of one that still fires."""
        await self._ensure_ready()
        now = self._clock.now()
        title, body = clean_text(title, TITLE_LIMIT), safe_body(body)
        targets = self._targets(kind, channels)
        if not targets:
            return
        existing = await self._store.alert(key)
        state = FIRING if kind in FIRING_KINDS else NOTICE
        if state == FIRING:
            buttons = (*buttons, *_ack_button(key))
        group = group_of(kind)
        decision = on_raise(existing, severity, None if kind in UNGROUPED_KINDS else await self._store.group_state(
            group), now, self.grouping)
        first_at = existing.first_at if existing is not None and existing.state == state else now
        alert = AlertRow(key, kind, severity, title, body, state, first_at, now, channels=tuple(targets)
                         if channels is not None else None)
        if decision.verdict is Verdict.DROP:
            assert existing is not None
            await self._store.put_alert(replace(existing, last_at=now))
            return
        if decision.verdict is Verdict.FOLD:
            await self._store.put_alert(replace(alert, pending_digest=True))
            known = await self._store.group_state(group)
            await self._store.set_group_state(group, known[0] if known else now, decision.digest_due_at)
            self._bus.publish(AlertQueued(key, kind, severity, title, tuple(targets), folded=True))
            self._schedule_wake.set()
            return
        safe_fields = {clean_text(name, 64): clean_text(value, BODY_LINE_LIMIT) for name, value in (fields or {}).items()}
        rows = self._rows(targets, key, kind, severity, title, body, safe_fields, tuple(buttons), now)
        await self._store.enqueue(rows, replace(alert, last_sent_at=now))
        if kind not in UNGROUPED_KINDS:
            await self._store.set_group_state(group, now, None)
        self._queued(AlertQueued(key, kind, severity, title, tuple(targets)))

    async def resolve(self, key: str, title: str, body: str = "") -> None:
        """The alert ``key`` stopped firing: "resolved" goes out at once where its firing went (an alert that was
        still waiting for a digest is dropped silently)."""
        existing = await self._store.alert(key)
        if existing is None or existing.state != FIRING:
            return
        now = self._clock.now()
        resolved = replace(existing, state=RESOLVED, last_at=now, pending_digest=False)
        if not resolve_is_sent(existing):
            await self._store.put_alert(resolved)
            return
        targets = self._targets(existing.kind, existing.channels)
        title = clean_text(title, TITLE_LIMIT)
        rows = self._rows(targets, key, existing.kind, "resolved", title, safe_body(body), {"status": "resolved"}, (),
                          now)
        await self._store.enqueue(rows, resolved)
        self._queued(AlertQueued(key, existing.kind, "resolved", title, tuple(targets)))

    async def acknowledge(self, key: str, by: str) -> bool:
        """Stop the repeats of firing alert ``key``; False when no such alert fires."""
        done = await self._store.acknowledge_alert(key, clean_text(by, 80), self._clock.now())
        if done:
            self._schedule_wake.set()
        return done

    async def deliveries(self, limit: int = 100, channel: str | None = None) -> list[DeliveryRow]:
        return await self._store.deliveries(limit, channel)

    async def send_test(self, channel: str) -> str:
        """Send a test message at once (not through the outbox); raises ChannelConfigError when ``channel`` is
        not configured, DeliveryError when it did not take the message."""
        await self._ensure_ready()
        target = self._channels.get(channel)
        if target is None:
            raise ChannelConfigError(self.channel_errors.get(channel) or f"the {channel} channel is not configured: "
                                     f"{HOW_TO_CONFIGURE.get(channel, '')}")
        now = self._clock.now()
        await target.send(OutgoingMessage(uuid.uuid4().hex, f"test:{channel}", "test", "info",
                                          "computehub-tui test alert",
                                          f"If you can read this, {channel} alerts work.", {"channel": channel},
                                          created_at=now))
        return f"the {channel} channel accepted the test message"

    async def save_channel(self, name: str, values: dict[str, object], secret: str | None) -> None:
        """Write ``[alerts.<name>]`` ``values`` to the config file and ``secret`` (when given) to the vault, then
        rebuild the channels."""
        path = self._config_path(name)
        for key, value in values.items():
            await asyncio.to_thread(set_value, path, f"alerts.{name}.{key}", value)
        if secret is not None and self.secrets_source is not None:
            await self.secrets_source.set_channel_secret(SECRET_OF_CHANNEL[name], secret)
        await self._reloaded()

    async def remove_channel(self, name: str) -> None:
        """Remove ``[alerts.<name>]`` from the config file and its secret from the vault."""
        path = self._config_path(name)
        await asyncio.to_thread(remove_table, path, f"alerts.{name}")
        if self.secrets_source is not None:
            await self.secrets_source.set_channel_secret(SECRET_OF_CHANNEL[name], None)
        await self._reloaded()

    # -- timers -------------------------------------------------------------------------------

    async def tick(self) -> float | None:
        """Send what is due now (digests, repeats, provider-down alerts); returns when the next one is due."""
        now = self._clock.now()
        await self._send_digests(now)
        await self._send_repeats(now)
        await self._providers_down(now)
        return await self._next_due()

    async def _send_digests(self, now: float) -> None:
        for group, due_at in await self._store.due_digests():
            # Another process on the same database may find it due too: only the one that takes it sends.
            if due_at > now or not await self._store.take_digest(group, due_at, now):
                continue
            folded = [alert for alert in await self._store.alerts_where(pending_digest=True)
                      if group_of(alert.kind) == group]
            if folded:
                await self._send_digest(group, folded, now)

    async def _send_digest(self, group: str, folded: list[AlertRow], now: float) -> None:
        by_channel: dict[str, list[AlertRow]] = {}
        for alert in folded:
            for name in self._targets(alert.kind, alert.channels):
                by_channel.setdefault(name, []).append(alert)
        key = f"digest:{group}:{int(now)}"
        rows: list[DeliveryRow] = []
        for name, alerts in by_channel.items():
            title, body = digest_text(group, alerts)
            rows += self._rows([name], key, "digest", worst_severity(alerts), title, body,
                               {"count": str(len(alerts)), "group": group}, (), now)
        await self._store.enqueue(rows)
        for alert in folded:
            await self._store.put_alert(replace(alert, pending_digest=False, last_sent_at=now))
        self._queued(AlertQueued(key, "digest", worst_severity(folded), f"{len(folded)} {group} alerts",
                                 tuple(by_channel)))

    async def _send_repeats(self, now: float) -> None:
        for alert in await self._store.alerts_where(state=FIRING):
            due = repeat_due_at(alert, self.grouping)
            if due is None or due > now or alert.last_sent_at is None:
                continue
            if not await self._store.take_repeat(alert.alert_key, alert.last_sent_at, now):
                continue  # another process sent this repeat
            targets = self._targets(alert.kind, alert.channels)
            rows = self._rows(targets, alert.alert_key, alert.kind, alert.severity, f"Still firing: {alert.title}",
                              alert.body, {"repeat": "true"}, _ack_button(alert.alert_key), now)
            await self._store.enqueue(rows)
            self._queued(AlertQueued(alert.alert_key, alert.kind, alert.severity, alert.title, tuple(targets)))

    async def _providers_down(self, now: float) -> None:
        after = self.settings.section.provider_down_after
        for provider, since in list(self._down_since.items()):
            if now - since >= after:
                del self._down_since[provider]
                minutes = (now - since) / 60
                await self.raise_alert("provider_down", f"provider-down:{provider}", "critical",
                                       f"{provider} unreachable for {minutes:.0f} min",
                                       f"{provider} has not answered normally since "
                                       f"{_local_time(since, self.settings.zone)}; its data is stale.",
                                       fields={"provider": provider})

    async def _next_due(self) -> float | None:
        times = [at for _, at in await self._store.due_digests()]
        times += [due for alert in await self._store.alerts_where(state=FIRING)
                  if (due := repeat_due_at(alert, self.grouping)) is not None]
        times += [since + self.settings.section.provider_down_after for since in self._down_since.values()]
        return min(times, default=None)

    # -- events -------------------------------------------------------------------------------

    def _on_event(self, event: EngineEvent) -> None:
        if not self._channels and not self.settings.section.channel_names():
            return
        job = self._job_for(event)
        if job is not None:
            task = asyncio.get_running_loop().create_task(self._guarded(job))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    def _job_for(self, event: EngineEvent) -> Coroutine[Any, Any, None] | None:
        match event:
            case RuleFired():
                return self._rule_fired(event)
            case RuleWarningPending():
                return self._rule_warning(event)
            case RuleNotify():
                return self._rule_notify(event)
            case InstancesUpdated(provider=provider):
                return self._instances_changed(provider)
            case ActionStarted(action=action, target=target) if action in STOPPING_ACTIONS:
                self._expected_stop[target] = self._clock.now()
            case ActionFinished(action="launch"):
                return self._launch_finished(event)
            case ProviderHealthChanged(health=health):
                return self._health_changed(health.provider, health.state)
            case SpendUpdated(spend_today=spend_today):
                return self._spend(spend_today)
        return None

    async def _guarded(self, job: Coroutine[Any, Any, None]) -> None:
        try:
            await job
        except Exception as error:  # noqa: BLE001 - a failed alert must not stop the engine; it is logged
            log.error("alerts: could not queue an alert: %s", clean_text(error, 300))

    async def _rule_fired(self, event: RuleFired) -> None:
        mode = " (dry run)" if event.dry_run else ""
        severity = "info" if event.dry_run else "warning" if event.ok else "critical"
        outcome = "would run" if event.dry_run else "done" if event.ok else "failed"
        await self.raise_alert(
            "rule_fired", f"rule:{event.rule}:{event.target}:{event.action}", severity,
            f"Rule {event.rule}: {event.action} {event.target}{mode} — {outcome}",
            f"{event.result}\nBecause: {event.evidence}",
            fields={"rule": event.rule, "target": event.target, "action": event.action, "result": event.result,
                    "ok": str(event.ok).lower(), "dry_run": str(event.dry_run).lower()})

    async def _rule_warning(self, event: RuleWarningPending) -> None:
        at = _local_time(event.due_at, self.settings.zone)
        buttons = tuple(button for button in (Button("Snooze 1 h", f"snooze:{event.warning_id}"),
                                              Button("Cancel", f"cancel:{event.warning_id}"))
                        if len(button.data.encode()) <= CALLBACK_DATA_BYTES)
        await self.raise_alert(
            "rule_warning", f"warn:{event.warning_id}", "warning",
            f"Rule {event.rule} will {event.action} {event.target} at {at}",
            "Snooze or cancel it, or it runs when its condition still holds then.", buttons=buttons,
            fields={"rule": event.rule, "target": event.target, "action": event.action,
                    "warning_id": event.warning_id, "due_at": str(event.due_at)})

    async def _rule_notify(self, event: RuleNotify) -> None:
        await self._ensure_ready()
        channels = None if event.channel == "alert" else [event.channel]
        if channels is not None and event.channel not in self._channels:
            if (event.rule, event.channel) not in self._unconfigured_told:  # once: a rule may fire all night
                self._unconfigured_told.add((event.rule, event.channel))
                log.warning("alerts: rule %s notifies %s, which is not configured (`computehub-tui rules check` "
                            "says how to set it up)", event.rule, event.channel)
            return
        digest = uuid.uuid5(uuid.NAMESPACE_URL, event.message).hex[:12]
        await self.raise_alert("rule_notify", f"notify:{event.rule}:{event.target}:{digest}",
                               "warning" if channels is None else "info", f"{event.rule}: {event.message}",
                               event.message, fields={"rule": event.rule, "target": event.target}, channels=channels)

    async def _instances_changed(self, provider: str) -> None:
        now = self._clock.now()
        for instance in self._instances():
            if instance.provider != provider:
                continue
            before = self._statuses.get(instance.key)
            status = instance.status
            self._statuses[instance.key] = status
            if before is None or before == status:
                continue
            key = f"instance-down:{instance.key}"
            if status == InstanceStatus.RUNNING:
                await self.resolve(key, f"{instance.key} is running again")
            elif before == InstanceStatus.RUNNING and status in DOWN_STATES:
                asked = self._expected_stop.get(instance.key)
                if asked is not None and now - asked < EXPECTED_FOR_S:
                    continue
                await self.raise_alert("instance_down", key, "critical", f"{instance.key} went {status.value}",
                                       f"{instance.key} ({clean_text(instance.label, 80)}) was running and is now "
                                       f"{status.value}.", fields={"instance": instance.key, "status": status.value})

    async def _health_changed(self, provider: str, state: HealthState) -> None:
        if state in UNREACHABLE:
            if provider not in self._down_since:
                self._down_since[provider] = self._clock.now()
                self._schedule_wake.set()
            return
        if state == HealthState.OK:
            self._down_since.pop(provider, None)
            await self.resolve(f"provider-down:{provider}", f"{provider} answers again")

    async def _spend(self, spend_today: float) -> None:
        now = self._clock.now()
        day = datetime.fromtimestamp(now, self.settings.zone).date().isoformat() if self.settings.zone else \
            datetime.fromtimestamp(now).date().isoformat()
        if day != self._spend_day:
            self._spend_day, self._spend_crossed = day, set()
        for threshold in self.settings.section.spend_thresholds:
            if spend_today < threshold or threshold in self._spend_crossed:
                continue
            self._spend_crossed.add(threshold)
            key = f"spend:{day}:{threshold:g}"
            if await self._store.alert(key) is not None:  # another run already said so today
                continue
            await self.raise_alert("spend", key, "warning", f"Spend today passed ${threshold:,.2f}",
                                   f"Spend today is ${spend_today:,.2f} ({day}).",
                                   fields={"threshold": f"{threshold:g}", "spend_today": f"{spend_today:.2f}"})

    async def _launch_finished(self, event: ActionFinished) -> None:
        if event.ok:
            await self.raise_alert("launch", f"launch:{event.target}", "info", f"Launched {event.target}",
                                   event.message, fields={"instance": event.target, "ok": "true"})
        else:
            await self.raise_alert("launch", f"launch-failed:{event.target}", "warning",
                                   f"Launch of {event.target} failed", event.message,
                                   fields={"offer": event.target, "ok": "false"})

    # -- helpers --------------------------------------------------------------------------------

    def _targets(self, kind: str, channels: Sequence[str] | None) -> list[str]:
        configured = self.channel_names()
        if channels is not None:
            return [name for name in configured if name in channels]
        routed = self.settings.section.routes.get(kind)
        return [name for name in configured if routed is None or name in routed]

    def _rows(self, targets: Sequence[str], key: str, kind: str, severity: str, title: str, body: str,
              fields: dict[str, str], buttons: tuple[Button, ...], now: float) -> list[DeliveryRow]:
        due = quiet_until(now, severity, self.grouping) or now
        return [DeliveryRow(new_delivery_id(now), name, key, kind, title, QUEUED, 0, due, "", now, None, severity=severity,
                            body=body, fields=fields, buttons=tuple((b.label, b.data) for b in buttons))
                for name in targets]

    def _queued(self, event: AlertQueued) -> None:
        self._worker.wake()
        self._schedule_wake.set()
        self._bus.publish(event)

    def _delivery_changed(self, outcome: DeliveryOutcome) -> None:
        row = outcome.row
        self._bus.publish(DeliveryChanged(row.delivery_id, row.channel, row.alert_key, row.title, outcome.state,
                                          row.attempts, outcome.error))

    def _config_path(self, name: str) -> Path:
        if name not in ALERT_CHANNELS:
            raise ValueError(f"unknown channel {name!r} (known: {', '.join(ALERT_CHANNELS)})")
        if self.settings.config_path is None:
            raise ValueError("this session has no config file to write channels to")
        return self.settings.config_path

    async def _reloaded(self) -> None:
        reload = self.settings.reload
        if reload is not None:
            self.settings = replace(self.settings, section=await asyncio.to_thread(reload))
        await self.load_channels()
        if self._wanted:
            self.start()


def _ack_button(key: str) -> tuple[Button, ...]:
    data = f"ack:{key}"
    return (Button("Acknowledge", data),) if len(data.encode()) <= CALLBACK_DATA_BYTES else ()


def _local_time(at: float, zone: tzinfo | None) -> str:
    local = datetime.fromtimestamp(at, zone) if zone else datetime.fromtimestamp(at).astimezone()
    return local.strftime("%H:%M %Z").strip()
