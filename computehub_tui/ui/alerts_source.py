"""What Settings → Notifications reads and asks of alerting: the one seam between those screens and hub.alerts."""

from __future__ import annotations

import math
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol, TypeVar, cast
from urllib.parse import urlsplit

from computehub_tui.domain.secret import redact
from computehub_tui.domain.text import clean_text
from computehub_tui.engine.crossing import run_on, running_loop
from computehub_tui.engine.hub import Hub

T = TypeVar("T")
ChannelKind = Literal["telegram", "email", "webhook"]
CHANNEL_KINDS: tuple[ChannelKind, ...] = ("telegram", "email", "webhook")
CHANNEL_TITLES: Mapping[str, str] = {"telegram": "Telegram", "email": "E-mail", "webhook": "Webhook"}
DELIVERY_STATES = ("queued", "sending", "sent", "retrying", "dead")
ERROR_LIMIT = 300
"""A delivery's last error is shown at most this long (the detail line shows the whole bounded text)."""
MASK = "••••"
ATTEMPTS_SHOWN = 10_000
"""An attempt count above this (an absurd one from a broken store) is shown as this."""
UNAVAILABLE = "alerts are not available in this session"


class AlertsError(Exception):
    """A call to alerting failed; ``str()`` is one safe line for the user (never a secret)."""


class AlertsUnavailable(AlertsError):
    """The session has no alerting service (a build or session without hub.alerts)."""

    def __init__(self) -> None:
        super().__init__(UNAVAILABLE)


@dataclass(frozen=True, slots=True)
class ChannelInfo:
    """One channel kind as the list shows it."""

    name: str
    configured: bool
    """The channel is on: its ``[alerts.<name>]`` section is present."""
    values: Mapping[str, object] = field(default_factory=dict)
    """Its settings under the config's names (``chat_id``, ``to``, ``url`` …); never the secret."""
    secret_masked: str = ""
    """The stored secret as ``••••last4``; "" when none is stored."""


@dataclass(frozen=True, slots=True)
class Delivery:
    """One outbox row: an alert on its way to one channel."""

    delivery_id: str
    channel: str
    alert_key: str
    kind: str
    title: str
    state: str
    """queued | sending | sent | retrying | dead"""
    attempts: int
    next_attempt_at: float | None
    last_error: str
    created_at: float
    sent_at: float | None


class AlertsSource(Protocol):
    """Everything the Notifications screens need. Every call may wait on the engine; none blocks the UI."""

    async def channels(self) -> list[ChannelInfo]:
        """Every channel kind, configured or not, in CHANNEL_KINDS order."""
        ...

    async def deliveries(self, limit: int) -> list[Delivery]:
        """The newest ``limit`` deliveries, newest first."""
        ...

    async def save_channel(self, name: str, values: Mapping[str, object], secret: str | None) -> None:
        """Write ``[alerts.<name>]`` with ``values``; ``secret`` None keeps the stored one."""
        ...

    async def remove_channel(self, name: str) -> None: ...

    async def send_test(self, name: str) -> str:
        """Send a test message at once (not through the outbox); the server's answer in words."""
        ...


class _HubAlerts(Protocol):
    """The part of ``hub.alerts`` (issue 12's alerts service) this adapter calls."""

    def configured_channels(self) -> list[str]: ...

    async def channel_settings(self, name: str) -> tuple[Mapping[str, object], str]: ...

    async def deliveries(self, limit: int = 100, channel: str | None = None) -> list[Any]: ...

    async def save_channel(self, name: str, values: dict[str, object], secret: str | None) -> None: ...

    async def remove_channel(self, name: str) -> None: ...

    async def send_test(self, channel: str) -> str: ...


def alerts_source_for(hub: Hub) -> AlertsSource:
    """The Notifications screens' source for ``hub``: the one place that knows where alerting lives."""
    return HubAlertsSource(hub)


class HubAlertsSource:
    """``hub.alerts`` as the screens need it. Each call runs on the engine's loop, where the store and the
    channels' HTTP and SMTP clients live; a session without ``hub.alerts`` answers AlertsUnavailable."""

    def __init__(self, hub: Hub) -> None:
        self._hub = hub

    def _alerts(self) -> _HubAlerts:
        alerts = getattr(self._hub, "alerts", None)
        if alerts is None:
            raise AlertsUnavailable()
        return cast(_HubAlerts, alerts)

    async def _on_engine(self, call: Callable[[_HubAlerts], Awaitable[T]]) -> T:
        alerts = self._alerts()
        home = self._hub.home_loop

        async def there() -> T:
            return await call(alerts)

        try:
            if home is None or running_loop() is home:
                return await there()
            return await run_on(home, there())
        except AlertsError:
            raise
        except Exception as error:  # noqa: BLE001 - every failure reaches the user as one safe line
            raise AlertsError(one_line_error(error)) from None

    async def channels(self) -> list[ChannelInfo]:
        return await self._on_engine(_channel_infos)

    async def deliveries(self, limit: int) -> list[Delivery]:
        rows = await self._on_engine(lambda alerts: alerts.deliveries(limit=limit))
        return [_delivery(row) for row in rows[:limit]]

    async def save_channel(self, name: str, values: Mapping[str, object], secret: str | None) -> None:
        await self._on_engine(lambda alerts: alerts.save_channel(name, dict(values), secret))

    async def remove_channel(self, name: str) -> None:
        await self._on_engine(lambda alerts: alerts.remove_channel(name))

    async def send_test(self, name: str) -> str:
        return await self._on_engine(lambda alerts: alerts.send_test(name))


async def _channel_infos(alerts: _HubAlerts) -> list[ChannelInfo]:
    """Each kind with its settings. ``channel_settings(name)`` -> (values, masked secret) is read where the
    service offers it; without it the list still says which channels are on."""
    configured = set(alerts.configured_channels())
    settings = alerts.channel_settings
    infos = []
    for name in CHANNEL_KINDS:
        if name not in configured:
            infos.append(ChannelInfo(name, False))
            continue
        values, secret = await settings(name)
        infos.append(ChannelInfo(name, True, dict(values), masked_secret(secret)))
    return infos


def _delivery(row: Any) -> Delivery:
    return Delivery(
        delivery_id=clean_text(row.delivery_id, 80), channel=clean_text(row.channel, 20),
        alert_key=clean_text(row.alert_key, 200), kind=clean_text(row.kind, 40), title=clean_text(row.title, 200),
        state=clean_text(row.state, 20), attempts=_count(row.attempts),
        next_attempt_at=_moment(row.next_attempt_at), last_error=safe_line(str(row.last_error or "")),
        created_at=_moment(row.created_at) or 0.0, sent_at=_moment(row.sent_at))


def _count(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        return 0
    return int(min(max(value, 0), ATTEMPTS_SHOWN))


def _moment(value: object) -> float | None:
    """A wall-clock time from the store; anything that is not a sane one is unknown."""
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        return None
    seconds = float(value)
    return seconds if 0 < seconds < 1e11 else None


def one_line_error(error: BaseException) -> str:
    """A failure in one safe line: a channel error's ``reason`` if it has one, secrets masked."""
    reason = getattr(error, "reason", None)
    return safe_line(reason if isinstance(reason, str) and reason else str(error) or type(error).__name__)


def safe_line(text: str) -> str:
    """Text from a server or the store as one bounded line, with any known secret masked."""
    return clean_text(redact(text), ERROR_LIMIT)


def masked_secret(text: str) -> str:
    """``••••last4`` whatever the service handed over: a full secret is never shown."""
    text = clean_text(text, 200)
    if not text:
        return ""
    if text.startswith(MASK) and len(text) <= len(MASK) + 4:
        return text
    tail = text.removeprefix(MASK)
    return f"{MASK}{tail[-4:]}" if len(tail) >= 12 else MASK


def channel_title(name: str) -> str:
    """How a channel is named on screen (a name the source made up is shown as plain text)."""
    return CHANNEL_TITLES.get(name) or clean_text(name, 20)


def destination(channel: ChannelInfo) -> str:
    """Where the channel sends, in one safe line: the chat, the recipients or the webhook's host."""
    values = channel.values
    if channel.name == "telegram":
        text = str(values.get("chat_id", ""))
    elif channel.name == "email":
        recipients = values.get("to", ())
        text = ", ".join(str(r) for r in recipients) if isinstance(recipients, Sequence) and not isinstance(
            recipients, str) else str(recipients)
    else:
        text = _host(str(values.get("url", "")))
        style = str(values.get("format", ""))
        text = f"{text} ({style})" if text and style and style != "generic" else text
    return clean_text(text, 120)


def _host(url: str) -> str:
    """Only the host of a webhook URL: its path often is the secret (Slack, Discord)."""
    try:
        return urlsplit(url).hostname or ""
    except ValueError:
        return ""
