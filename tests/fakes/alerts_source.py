"""An in-memory AlertsSource for the Notifications screens' tests: it keeps what is saved and records every call."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass, field

from computehub_tui.ui.alerts_source import CHANNEL_KINDS, AlertsError, ChannelInfo, Delivery, masked_secret

HOSTILE = "[bold]x[/] [@click=app.quit]q[/] \x1b]52;c;ZXZpbA==\x07\x1b[2Jend"
TOKEN = "123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw"
NOW = 1_800_000_000.0


@dataclass
class FakeAlertsSource:
    configured: dict[str, dict[str, object]] = field(default_factory=dict)
    secrets: dict[str, str] = field(default_factory=dict)
    rows: list[Delivery] = field(default_factory=list)
    test_answers: dict[str, str | Exception] = field(default_factory=dict)
    saves: list[tuple[str, dict[str, object], str | None]] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    tests_sent: list[str] = field(default_factory=list)
    delivery_reads: int = 0
    save_error: str = ""
    test_gate: asyncio.Event | None = None
    """When set, send_test waits for it: a test that is still on its way."""

    async def channels(self) -> list[ChannelInfo]:
        return [ChannelInfo(name, name in self.configured, dict(self.configured.get(name, {})),
                            masked_secret(self.secrets.get(name, ""))) for name in CHANNEL_KINDS]

    async def deliveries(self, limit: int) -> list[Delivery]:
        self.delivery_reads += 1
        return sorted(self.rows, key=lambda row: row.created_at, reverse=True)[:limit]

    async def save_channel(self, name: str, values: Mapping[str, object], secret: str | None) -> None:
        self.saves.append((name, dict(values), secret))
        if self.save_error:
            raise AlertsError(self.save_error)
        self.configured[name] = dict(values)
        if secret is not None:
            self.secrets[name] = secret

    async def remove_channel(self, name: str) -> None:
        self.removed.append(name)
        self.configured.pop(name, None)
        self.secrets.pop(name, None)

    async def send_test(self, name: str) -> str:
        self.tests_sent.append(name)
        if self.test_gate is not None:
            await self.test_gate.wait()
        answer = self.test_answers.get(name, "accepted")
        if isinstance(answer, Exception):
            raise answer
        return answer


def delivery(number: int, state: str, *, channel: str = "telegram", title: str = "", attempts: int = 1,
             error: str = "", next_at: float | None = None, kind: str = "rule_fired") -> Delivery:
    created = NOW - 60 * (10 - number)
    return Delivery(f"d{number}", channel, f"rule:idle-stop:vast:{100 + number}", kind,
                    title or f"idle-stop stopped vast:{100 + number}", state, attempts, next_at, error, created,
                    created + 2 if state == "sent" else None)


def sample_rows() -> list[Delivery]:
    return [
        delivery(1, "sent", title="idle-stop stopped vast:101 (saved $1.20/h)"),
        delivery(2, "sent", channel="email", kind="spend", title="Spend today passed $50"),
        delivery(3, "retrying", channel="webhook", attempts=3, error="HTTP 503 from hooks.example.com; retry after 30 s",
                 next_at=NOW + 30, kind="instance_down", title="vast:102 went down"),
        delivery(4, "dead", channel="telegram", attempts=1, error="Forbidden: bot was blocked by the user",
                 kind="rule_warning", title="crash-restart will restart vast:103 in 10m"),
        delivery(5, "queued", channel="email", attempts=0, next_at=NOW + 5, kind="launch",
                 title="Launched 1x H100 on runpod"),
        delivery(6, "sending", channel="telegram", attempts=1, kind="price", title="H100 under $2.00/h on vast"),
    ]


def configured_source() -> FakeAlertsSource:
    return FakeAlertsSource(
        configured={
            "telegram": {"chat_id": "-1001234567890", "base_url": "https://api.telegram.org/bot"},
            "email": {"host": "smtp.example.com", "port": 587, "security": "starttls", "username": "alerts",
                      "from": "alerts@example.com", "to": ["me@example.com", "oncall@example.com"]},
        },
        secrets={"telegram": TOKEN, "email": "correct-horse-battery-staple"},
        rows=sample_rows(),
    )
