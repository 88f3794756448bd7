"""hub.alerts on real SQLite with a manual clock: grouping into digests, de-duplication, repeats until
acknowledged, resolved at once, quiet hours, routing, and which engine events alert."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Mapping
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from fakes.alert_channels import ScriptedChannel

from computehub_tui.clock import ManualClock
from computehub_tui.config.schema import AlertsSection
from computehub_tui.domain.alerts import QUEUED, DeliveryRow
from computehub_tui.domain.models import Instance, InstanceStatus
from computehub_tui.domain.secret import Secret
from computehub_tui.engine.alerts import AlertsService, AlertsSettings, claimant_gone
from computehub_tui.engine.events import (
    ActionStarted,
    AlertQueued,
    EventBus,
    HealthState,
    InstancesUpdated,
    ProviderHealth,
    ProviderHealthChanged,
    RuleFired,
    RuleNotify,
    RuleWarningPending,
    SpendUpdated,
)
from computehub_tui.notify.base import Channel
from computehub_tui.store import Store

START = datetime(2026, 12, 2, 12, 0, tzinfo=UTC).timestamp()
BOTH = {"webhook": {"url": "https://hooks.example/a"},
        "email": {"host": "127.0.0.1", "from": "a@computehub.example", "to": ["ops@example.com"]}}


def section(**values: object) -> AlertsSection:
    return AlertsSection.model_validate({**BOTH, **values})


class Harness:
    def __init__(self, store: Store, settings: AlertsSection, instances: list[Instance] | None = None,
                 zone: ZoneInfo | None = None) -> None:
        self.clock = ManualClock(START)
        self.bus = EventBus()
        self.events: list[object] = []
        self.bus.subscribe(self.events.append)
        self.channels: dict[str, ScriptedChannel] = {}
        self.instances = instances if instances is not None else []
        self.service = AlertsService(store, self.bus, self.clock, AlertsSettings(settings, zone),
                                     instances=lambda: self.instances, builder=self._build)
        self.store = store

    def _build(self, name: str, _: AlertsSection, __: Mapping[str, Secret]) -> Channel:
        self.channels[name] = ScriptedChannel(name)
        return self.channels[name]

    async def rows(self, channel: str | None = None) -> list[DeliveryRow]:
        return sorted(await self.store.deliveries(1000, channel), key=lambda row: (row.created_at, row.delivery_id))

    async def titles(self, channel: str = "webhook") -> list[str]:
        return [row.title for row in await self.rows(channel)]


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    opened = await Store.open(tmp_path / "alerts.db")
    try:
        yield opened
    finally:
        await opened.close()


async def harness(store: Store, settings: AlertsSection | None = None, **kwargs: object) -> Harness:
    made = Harness(store, settings or section(), **kwargs)  # type: ignore[arg-type]
    await made.service.load_channels()
    return made


async def down(h: Harness, key: str) -> None:
    await h.service.raise_alert("instance_down", f"instance-down:{key}", "critical", f"{key} went exited", "gone")


async def test_the_first_of_a_group_goes_at_once_and_the_rest_fold_into_one_digest(store: Store) -> None:
    h = await harness(store)
    await down(h, "vast:1")
    await h.clock.advance(60)
    await down(h, "vast:2")
    await down(h, "vast:3")
    assert await h.titles() == ["vast:1 went exited"]
    assert await h.service.tick() == pytest.approx(START + 300)  # the digest is due one group interval on
    await h.clock.advance(240)
    await h.service.tick()
    titles = await h.titles()
    assert titles == ["vast:1 went exited", "2 more instance down alerts"]
    digest = (await h.rows("webhook"))[-1]
    assert digest.kind == "digest" and "- vast:2 went exited" in digest.body and "- vast:3 went exited" in digest.body
    assert [e.folded for e in h.events if isinstance(e, AlertQueued)] == [False, True, True, False]


async def test_the_same_key_firing_again_is_not_sent_again(store: Store) -> None:
    h = await harness(store)
    await down(h, "vast:1")
    await h.clock.advance(1000)
    await down(h, "vast:1")
    assert await h.titles() == ["vast:1 went exited"]


async def test_a_firing_alert_repeats_until_acknowledged_and_carries_an_acknowledge_button(store: Store) -> None:
    h = await harness(store, section(repeat_interval="4h"))
    await down(h, "vast:1")
    [first] = await h.rows("webhook")
    assert first.buttons == (("Acknowledge", "ack:instance-down:vast:1"),)
    assert await h.service.tick() == pytest.approx(START + 4 * 3600)
    await h.clock.advance(4 * 3600)
    await h.service.tick()
    assert await h.titles() == ["vast:1 went exited", "Still firing: vast:1 went exited"]
    assert await h.service.acknowledge("instance-down:vast:1", "telegram:42")
    await h.clock.advance(8 * 3600)
    await h.service.tick()
    assert len(await h.titles()) == 2
    assert await h.service.tick() is None  # nothing left to wake up for


async def test_resolved_goes_out_at_once_and_a_folded_alert_that_resolves_is_never_sent(store: Store) -> None:
    h = await harness(store)
    await down(h, "vast:1")
    await down(h, "vast:2")  # folded: within the group interval of vast:1
    await h.clock.advance(5)
    await h.service.resolve("instance-down:vast:1", "vast:1 is running again")
    await h.service.resolve("instance-down:vast:2", "vast:2 is running again")
    rows = await h.rows("webhook")
    assert [(row.title, row.severity) for row in rows] == [("vast:1 went exited", "critical"),
                                                           ("vast:1 is running again", "resolved")]
    assert rows[1].next_attempt_at == START + 5  # not a group interval later
    await h.clock.advance(600)
    await h.service.tick()
    assert len(await h.rows("webhook")) == 2  # no digest for an alert that resolved before it was told


async def test_quiet_hours_hold_all_but_critical_alerts_until_they_end(store: Store) -> None:
    h = await harness(store, section(quiet_hours="11:00-13:30"), zone=ZoneInfo("UTC"))
    await h.service.raise_alert("spend", "spend:x", "warning", "Spend passed $50", "")
    await down(h, "vast:1")
    by_title = {row.title: row for row in await h.rows("webhook")}
    assert by_title["Spend passed $50"].next_attempt_at == START + 90 * 60
    assert by_title["vast:1 went exited"].next_attempt_at == START


async def test_routes_narrow_who_gets_a_kind_and_a_rule_can_name_one_channel(store: Store) -> None:
    h = await harness(store, section(routes={"spend": ["email"]}))
    await h.service.raise_alert("spend", "spend:x", "warning", "Spend passed $50", "")
    h.bus.publish(RuleNotify("idle", "vast:1", "webhook", "idle for 2h"))
    h.bus.publish(RuleNotify("cap", "-", "alert", "automation paused"))
    await h.service.settled()
    assert await h.titles("email") == ["Spend passed $50", "cap: automation paused"]
    assert await h.titles("webhook") == ["idle: idle for 2h", "cap: automation paused"]


async def test_a_rule_notifying_a_channel_not_configured_is_logged_once_and_sends_nothing(
        store: Store, caplog: pytest.LogCaptureFixture) -> None:
    h = await harness(store)
    with caplog.at_level(logging.WARNING, logger="computehub_tui.engine.alerts"):
        for _ in range(3):  # a rule that fires all night
            h.bus.publish(RuleNotify("idle", "vast:1", "telegram", "idle for 2h"))
        await h.service.settled()
    told = [r.getMessage() for r in caplog.records if "not configured" in r.getMessage()]
    assert told == [("alerts: rule idle notifies telegram, which is not configured (`computehub-tui rules check` "
                     "says how to set it up)")]
    assert await h.titles("webhook") == []


async def test_a_warning_carries_snooze_and_cancel_and_a_rule_firing_says_what_it_did(store: Store) -> None:
    h = await harness(store)
    h.bus.publish(RuleWarningPending("w-7", "idle-stop", "vast:1", "stop", START + 600))
    h.bus.publish(RuleFired("idle-stop", "vast:1", "stop", "stopped \x1b]52;c;aGk=\x07[@click=app.quit]q[/]", True,
                            False, "gpu_util < 5 for 30m", START))
    await h.service.settled()
    warning, fired = await h.rows("webhook")
    assert fired.fields is not None and "\x1b" not in fired.fields["result"] and "\x07" not in fired.body
    assert warning.buttons == (("Snooze 1 h", "snooze:w-7"), ("Cancel", "cancel:w-7"))
    assert warning.title == "Rule idle-stop will stop vast:1 at 12:10 UTC"
    assert fired.title == "Rule idle-stop: stop vast:1 — done" and "gpu_util < 5 for 30m" in fired.body


def instance(status: InstanceStatus) -> Instance:
    return Instance(provider="vast", instance_id="1", label="[bold]x[/]\x1b]52;c;aGk=\x07", status=status,
                    provider_status=status.value, gpu="RTX 4090", gpu_count=1, price_hour=0.4)


async def test_an_instance_that_exits_alerts_and_resolves_when_it_runs_again(store: Store) -> None:
    h = await harness(store)
    for status in (InstanceStatus.RUNNING, InstanceStatus.EXITED, InstanceStatus.RUNNING):
        h.instances[:] = [instance(status)]
        h.bus.publish(InstancesUpdated("vast", 1, h.clock.now()))
        await h.service.settled()
    rows = await h.rows("webhook")
    assert [(row.title, row.severity) for row in rows] == [("vast:1 went exited", "critical"),
                                                           ("vast:1 is running again", "resolved")]
    assert "\x1b" not in rows[0].body and "52;c" not in rows[0].body


async def test_an_instance_someone_stopped_does_not_alert(store: Store) -> None:
    h = await harness(store)
    h.instances[:] = [instance(InstanceStatus.RUNNING)]
    h.bus.publish(InstancesUpdated("vast", 1, h.clock.now()))
    h.bus.publish(ActionStarted("stop", "vast:1"))
    h.instances[:] = [instance(InstanceStatus.STOPPED)]
    h.bus.publish(InstancesUpdated("vast", 1, h.clock.now()))
    await h.service.settled()
    assert await h.rows() == []


async def test_a_provider_down_longer_than_the_threshold_alerts_then_resolves(store: Store) -> None:
    h = await harness(store, section(provider_down_after="5m"))
    h.bus.publish(ProviderHealthChanged(ProviderHealth("runpod", HealthState.DOWN, "timed out")))
    await h.service.settled()
    assert await h.service.tick() == pytest.approx(START + 300)
    await h.clock.advance(299)
    await h.service.tick()
    assert await h.rows() == []
    await h.clock.advance(1)
    await h.service.tick()
    h.bus.publish(ProviderHealthChanged(ProviderHealth("runpod", HealthState.OK)))
    await h.service.settled()
    assert await h.titles() == ["runpod unreachable for 5 min", "runpod answers again"]


async def test_a_provider_that_recovers_in_time_never_alerts(store: Store) -> None:
    h = await harness(store)
    h.bus.publish(ProviderHealthChanged(ProviderHealth("runpod", HealthState.RATE_LIMITED)))
    await h.clock.advance(100)
    h.bus.publish(ProviderHealthChanged(ProviderHealth("runpod", HealthState.OK)))
    await h.service.settled()
    await h.clock.advance(600)
    await h.service.tick()
    assert await h.rows() == []


async def test_each_spend_threshold_alerts_once_a_day(store: Store) -> None:
    h = await harness(store, section(spend_thresholds=[50, 200]))
    for spend in (10.0, 60.0, 70.0, 250.0, 260.0):
        h.bus.publish(SpendUpdated(3.0, spend))
        await h.service.settled()
    assert await h.titles() == ["Spend today passed $50.00"]
    await h.clock.advance(300)
    await h.service.tick()  # a second threshold within the group interval came in its digest
    digest = (await h.rows("webhook"))[-1]
    assert digest.title == "1 more spend alert" and digest.body == "- Spend today passed $200.00"
    h.bus.publish(SpendUpdated(3.0, 300.0))
    await h.service.settled()
    assert len(await h.rows("webhook")) == 2


async def test_with_no_channel_configured_nothing_is_written(store: Store) -> None:
    h = await harness(store, AlertsSection())
    await down(h, "vast:1")
    h.bus.publish(RuleNotify("idle", "vast:1", "alert", "x"))
    await h.service.settled()
    assert await h.rows() == [] and h.service.channel_names() == []


def test_a_claim_is_gone_only_when_its_process_on_this_host_is() -> None:
    ours = "box:100:aa"
    assert claimant_gone("box:200:bb", ours=ours, alive=lambda pid: False)
    assert not claimant_gone("box:200:bb", ours=ours, alive=lambda pid: True)
    assert not claimant_gone("other:200:bb", ours=ours, alive=lambda pid: False)  # another host: wait for the lease
    assert not claimant_gone(ours, ours=ours, alive=lambda pid: False)


async def test_an_alert_raised_before_the_worker_started_is_not_lost(store: Store) -> None:
    h = Harness(store, section())  # load_channels not called yet: the engine has only just started
    h.bus.publish(RuleNotify("idle", "vast:1", "email", "idle for 2h"))
    await h.service.settled()
    await down(h, "vast:1")
    assert await h.titles("email") == ["idle: idle for 2h", "vast:1 went exited"]
    assert all(row.state == QUEUED for row in await h.rows())


async def test_two_processes_on_one_database_send_each_repeat_and_digest_once(store: Store) -> None:
    app, daemon = await harness(store, section(repeat_interval="1h")), await harness(store)
    daemon.clock = app.clock
    daemon.service = AlertsService(store, daemon.bus, app.clock, AlertsSettings(section(repeat_interval="1h")),
                                   builder=daemon._build)
    await daemon.service.load_channels()
    await down(app, "vast:1")
    await down(app, "vast:2")  # folded into the group's digest
    await app.clock.advance(3600)
    await asyncio.gather(app.service.tick(), daemon.service.tick())
    assert sorted(await app.titles()) == ["1 more instance down alert", "Still firing: vast:1 went exited",
                                          "vast:1 went exited"]
