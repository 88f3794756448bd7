"""hub.alerts wired into a real Hub: tasks under the supervisor only when a channel is configured, a rule firing
reaching a loopback receiver well under 2 s, channels saved and removed at runtime, and the daemon's lines."""

from __future__ import annotations

import asyncio
import base64
import time
from pathlib import Path

from fakes.webhook_receiver import WebhookReceiver

from computehub_tui.cli.daemon import describe
from computehub_tui.clock import SystemClock
from computehub_tui.config import load_config
from computehub_tui.config.schema import AlertsSection
from computehub_tui.engine.alerts import AlertsSettings
from computehub_tui.engine.events import AlertQueued, DeliveryChanged, RuleFired
from computehub_tui.engine.hub import Hub, HubSettings
from computehub_tui.engine.keys import KeyService
from computehub_tui.store import Store

SECRET = "whsec_" + base64.b64encode(b"hub-test-signing-key-0123456789abc").decode()
ALERT_TASKS = {"alerts-delivery", "alerts-schedule"}


async def until(condition: object, timeout_s: float = 5.0) -> None:
    async with asyncio.timeout(timeout_s):
        while not condition():  # type: ignore[operator]
            await asyncio.sleep(0.002)  # the receiver answers on its own thread


async def test_a_rule_firing_reaches_the_webhook_well_under_two_seconds(tmp_path: Path) -> None:
    store = await Store.open(tmp_path / "hub.db")
    with WebhookReceiver() as hook:
        section = AlertsSection.model_validate({"webhook": {"url": hook.url}})
        hub = Hub({}, store, SystemClock(), HubSettings(alerts=AlertsSettings(section)))
        try:
            await hub.start()
            assert ALERT_TASKS <= set(hub.supervisor.running())
            started = time.monotonic()
            hub.bus.publish(RuleFired("idle-stop", "vast:1", "stop", "stopped", True, False, "idle 30m", time.time()))
            await until(lambda: hook.accepted)
            assert hook.accepted[0].received_at - started < 2.0
            assert hook.accepted[0].payload["data"]["kind"] == "rule_fired"
        finally:
            await hub.stop()
            await store.close()


async def test_with_no_channel_no_alert_task_runs(tmp_path: Path) -> None:
    store = await Store.open(tmp_path / "hub.db")
    hub = Hub({}, store, SystemClock(), HubSettings())
    try:
        await hub.start()
        assert not ALERT_TASKS & set(hub.supervisor.running())
        assert hub.alerts.channel_names() == []
    finally:
        await hub.stop()
        await store.close()


async def test_a_channel_saved_at_runtime_works_at_once_and_removing_it_forgets_its_secret(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text("[poll]\ninstances_s = 7\n", encoding="utf-8")
    clock = SystemClock()
    store = await Store.open(tmp_path / "hub.db")
    keys = KeyService(tmp_path / "data", clock, environ={})
    settings = AlertsSettings(load_config(path, {}).alerts, config_path=path,
                              reload=lambda: load_config(path, {}).alerts)
    with WebhookReceiver(SECRET) as hook:
        hub = Hub({}, store, clock, HubSettings(alerts=settings), keys=keys)
        try:
            await hub.start()
            await hub.alerts.save_channel("webhook", {"url": hook.url}, SECRET)
            assert hub.alerts.channel_names() == ["webhook"]
            assert ALERT_TASKS <= set(hub.supervisor.running())
            assert "accepted" in await hub.alerts.send_test("webhook")
            assert hook.rejected == [] and len(hook.accepted) == 1  # signed with the secret just stored
            assert 'url = "' in path.read_text(encoding="utf-8") and SECRET not in path.read_text(encoding="utf-8")
            await hub.alerts.remove_channel("webhook")
            assert hub.alerts.channel_names() == []
            assert "webhook_secret" not in await keys.channel_secrets()
            assert path.read_text(encoding="utf-8").startswith("[poll]\ninstances_s = 7\n")
        finally:
            await hub.stop()
            await keys.aclose()
            await store.close()


def test_the_daemon_prints_a_line_per_alert_queued_sent_and_dead() -> None:
    assert describe(AlertQueued("instance-down:vast:1", "instance_down", "critical", "vast:1 went exited",
                                ("webhook", "email"))) == (
        "alert-queued", "instance-down:vast:1", ("kind=instance_down severity=critical to=webhook,email "
                                                "vast:1 went exited"))
    assert describe(DeliveryChanged("d1", "email", "k", "t", "sent", 1)) == ("alert-sent", "k",
                                                                              "channel=email attempts=1 t")
    assert describe(DeliveryChanged("d1", "email", "k", "t", "dead", 3, "bad address")) == (
        "alert-dead", "k", "channel=email attempts=3 t error=bad address")
