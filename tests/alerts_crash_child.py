"""A process that queues alerts and delivers them to a webhook, for the SIGKILL test (test_alerts_crash.py).

``python alerts_crash_child.py DB URL SECRET COUNT queue|deliver``: ``queue`` first writes COUNT alerts to the
outbox and prints ``queued``; both modes then deliver until killed, printing ``sent <id>`` for each delivery.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

from computehub_tui.clock import SystemClock
from computehub_tui.config.schema import AlertsSection
from computehub_tui.domain.secret import Secret
from computehub_tui.engine.alerts import AlertsService, AlertsSettings
from computehub_tui.engine.events import DeliveryChanged, EngineEvent, EventBus
from computehub_tui.store import Store


class EnvironmentSecrets:
    def __init__(self, secret: str) -> None:
        self.secret = secret

    async def channel_secrets(self) -> dict[str, Secret]:
        return {"webhook_secret": Secret(self.secret)}

    async def set_channel_secret(self, name: str, value: str | None) -> None:
        raise NotImplementedError


async def main(database: str, url: str, secret: str, count: int, mode: str) -> None:
    store = await Store.open(Path(database))
    bus = EventBus()

    def report(event: EngineEvent) -> None:
        if isinstance(event, DeliveryChanged) and event.state == "sent":
            print("sent", event.delivery_id, flush=True)

    bus.subscribe(report)
    section = AlertsSection.model_validate({"webhook": {"url": url}})
    service = AlertsService(store, bus, SystemClock(), AlertsSettings(section),
                            secrets_source=EnvironmentSecrets(secret))
    await service.load_channels()
    if mode == "queue":
        for number in range(count):
            await service.raise_alert("rule_warning", f"warn:{number}", "warning", f"warning {number}", "body")
        print("queued", flush=True)
    await service.run_delivery()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), sys.argv[5]))
