"""`python -m bench.alerts_latency`: a rule firing on the engine bus until the message reaches a loopback webhook
receiver, a loopback Telegram Bot API and a loopback SMTP server (through the outbox and the delivery worker), beside
a direct send of the same message by the channel alone (the baseline, same run). Target ≤ 2 s."""

from __future__ import annotations

import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.alerts_servers import TELEGRAM_CHAT, Arrivals, smtp_sink, telegram_sink, webhook_sink
from computehub_tui.clock import SystemClock
from computehub_tui.config.schema import AlertsSection
from computehub_tui.domain.secret import Secret
from computehub_tui.engine.alerts import AlertsService, AlertsSettings
from computehub_tui.engine.events import EventBus, RuleFired
from computehub_tui.notify.base import OutgoingMessage
from computehub_tui.store import Store

FIRINGS = 10
GROUP_INTERVAL_S = 1.0
"""Each firing is a new group's first alert (the later ones of a group would wait for its digest by design)."""
TARGET_S = 2.0


async def wait_for(arrivals: Arrivals, key: str, timeout_s: float = 10.0) -> float:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        at = arrivals.first(key)
        if at is not None:
            return at
        await asyncio.sleep(0.002)
    raise TimeoutError(f"{key} never arrived")


async def measure() -> dict[str, Any]:
    with webhook_sink() as (url, hooks), telegram_sink() as (bot_url, chats), \
            tempfile.TemporaryDirectory(prefix="chub-alerts-") as work:
        async with smtp_sink() as (port, mails):
            section = AlertsSection.model_validate({
                "group_interval": GROUP_INTERVAL_S, "webhook": {"url": url},
                "telegram": {"chat_id": TELEGRAM_CHAT, "base_url": bot_url},
                "email": {"host": "127.0.0.1", "port": port, "security": "none", "from": "bench@computehub.example",
                          "to": ["ops@example.com"]}})
            store = await Store.open(Path(work) / "alerts.db")
            bus = EventBus()
            service = AlertsService(store, bus, SystemClock(), AlertsSettings(section),
                                    secrets_source=_BenchSecrets())
            await service.load_channels()
            tasks = [asyncio.create_task(service.run_delivery()), asyncio.create_task(service.run_schedule())]
            try:
                receivers = {"webhook": hooks, "telegram": chats, "email": mails}
                direct = await direct_sends(service, receivers)
                fired: dict[str, list[float]] = {name: [] for name in receivers}
                for number in range(FIRINGS):
                    key = f"rule:bench-{number}:vast:1:stop"
                    started = time.monotonic()
                    bus.publish(RuleFired(f"bench-{number}", "vast:1", "stop", "stopped", True, False,
                                          "gpu_util < 5 for 30m", time.time()))
                    for name, arrivals in receivers.items():
                        fired[name].append(await wait_for(arrivals, key) - started)
                    await asyncio.sleep(GROUP_INTERVAL_S)
            finally:
                for task in tasks:
                    task.cancel()
                await asyncio.gather(*tasks, return_exceptions=True)
                await service.aclose()
                await store.close()
    return {"firings": FIRINGS, "fired_s": fired, "direct_s": direct, "target_s": TARGET_S}


class _BenchSecrets:
    """A made-up bot token (the loopback Bot API takes any)."""

    async def channel_secrets(self) -> dict[str, Secret]:
        return {"telegram_token": Secret("424242:bench-token-not-a-real-one-0123456789")}

    async def set_channel_secret(self, name: str, value: str | None) -> None:
        raise NotImplementedError("the bench saves no secret")


async def direct_sends(service: AlertsService, receivers: dict[str, Arrivals]) -> dict[str, list[float]]:
    """The same message sent by each channel itself: no bus, no outbox, no worker."""
    times: dict[str, list[float]] = {name: [] for name in receivers}
    for number in range(FIRINGS):
        for name, arrivals in receivers.items():
            key = f"direct:{name}:{number}"
            started = time.monotonic()
            channel = service.channel(name)
            assert channel is not None
            await channel.send(OutgoingMessage(f"direct-{name}-{number}", key, "rule_fired", "warning",
                                                      f"Rule bench: stop vast:1 ({key})", "stopped", {}))
            times[name].append(await wait_for(arrivals, key) - started)
    return times


def describe(result: dict[str, Any]) -> list[str]:
    lines = [f"rule firing → message received, {result['firings']} firings (target ≤ {result['target_s']:g} s)"]
    for name in result["fired_s"]:
        fired, direct = result["fired_s"][name], result["direct_s"][name]
        lines.append(f"{name:8} through the outbox: median {statistics.median(fired) * 1000:7.1f} ms, max "
                     f"{max(fired) * 1000:7.1f} ms; direct send (baseline) median "
                     f"{statistics.median(direct) * 1000:7.1f} ms")
    return lines


def main(argv: list[str]) -> int:
    result = asyncio.run(measure())
    if argv[:1] == ["--child"]:
        from bench.child import emit

        emit(result)
        return 0
    print("\n".join(describe(result)))
    return 0 if max(max(times) for times in result["fired_s"].values()) <= TARGET_S else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
