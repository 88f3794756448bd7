"""The webhook channel: JSON over httpx, signed Standard Webhooks style, with Slack and Discord presets."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
from typing import Any
from urllib.parse import urlsplit

import httpx

from computehub_tui.clock import Clock, SystemClock
from computehub_tui.domain.secret import Secret
from computehub_tui.notify.base import OutgoingMessage, PermanentError, TransientError
from computehub_tui.notify.reasons import one_line, retry_after_seconds, utc_text

SECRET_PREFIX = "whsec_"
MIN_SECRET_BYTES = 16
DISCORD_LIMIT = 2000
SLACK_LIMIT = 39_000
TRUNCATED = "…(truncated)"
FORMATS = ("generic", "slack", "discord")
RETRYABLE_4XX = (408, 429)


class WebhookSecretError(ValueError):
    """The webhook secret is not ``whsec_<base64>`` (or too short to be worth signing with)."""


def signing_key(secret: Secret) -> bytes:
    """The HMAC key a ``whsec_<base64>`` secret stands for (its decoded bytes)."""
    text = secret.reveal().removeprefix(SECRET_PREFIX)
    try:
        key = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise WebhookSecretError("the webhook secret must be whsec_ followed by base64") from None
    if len(key) < MIN_SECRET_BYTES:
        raise WebhookSecretError(f"the webhook secret must hold at least {MIN_SECRET_BYTES} bytes")
    return key


def signature(key: bytes, message_id: str, timestamp: int, body: bytes) -> str:
    """``v1,<base64 HMAC-SHA256 over "id.timestamp.body">``."""
    signed = f"{message_id}.{timestamp}.".encode() + body
    return "v1," + base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()


def truncated(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - len(TRUNCATED)] + TRUNCATED


def _slack_escaped(text: str) -> str:
    # Slack reads <…> as links and mentions (<!channel>): provider text must not ping a workspace.
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def render_body(message: OutgoingMessage, preset: str, now: float) -> dict[str, Any]:
    """The JSON body for ``preset``."""
    text = f"{message.title}\n{message.body}" if message.body else message.title
    if preset == "slack":
        return {"text": truncated(_slack_escaped(text), SLACK_LIMIT), "mrkdwn": False}
    if preset == "discord":
        return {"content": truncated(text, DISCORD_LIMIT), "allowed_mentions": {"parse": []}}
    status = "resolved" if message.severity == "resolved" else "test" if message.kind == "test" else "firing"
    return {
        "type": f"alert.{status}",
        "timestamp": utc_text(now),
        "data": {"id": message.delivery_id, "alert_key": message.alert_key, "kind": message.kind,
                 "severity": message.severity, "title": message.title, "body": message.body,
                 "fields": dict(message.fields), "created_at": utc_text(message.created_at or now)},
    }


class WebhookChannel:
    """POSTs each alert once per attempt; ``webhook-id`` stays the same across retries (the receiver's dedup key)."""

    name = "webhook"

    def __init__(self, url: str, secret: Secret | None = None, preset: str = "generic", *, timeout_s: float = 15.0,
                 client: httpx.AsyncClient | None = None, clock: Clock | None = None) -> None:
        if preset not in FORMATS:
            raise ValueError(f"unknown webhook format {preset!r}")
        self.url = url
        self.preset = preset
        self.min_interval_s = 1.0 if preset in ("slack", "discord") else 0.0
        self._key = signing_key(secret) if secret else None
        self._clock = clock or SystemClock()
        self._owns_client = client is None
        self._client = client or httpx.AsyncClient(timeout=httpx.Timeout(timeout_s, connect=min(5.0, timeout_s)),
                                                   follow_redirects=False)
        # Slack's and Discord's URLs carry their token in the path: only the host may show in a reason.
        self._where = urlsplit(url).hostname or "the webhook"

    async def send(self, message: OutgoingMessage) -> None:
        now = self._clock.now()
        body = json.dumps(render_body(message, self.preset, now), ensure_ascii=False, separators=(",", ":")).encode()
        timestamp = int(now)
        headers = {"content-type": "application/json", "webhook-id": message.delivery_id,
                   "webhook-timestamp": str(timestamp), "user-agent": "computehub-tui"}
        if self._key is not None:
            headers["webhook-signature"] = signature(self._key, message.delivery_id, timestamp, body)
        try:
            response = await self._client.post(self.url, content=body, headers=headers)
        except httpx.TimeoutException:
            raise TransientError(f"{self._where} did not answer in time") from None
        except httpx.TransportError as error:
            raise TransientError(f"cannot reach {self._where} ({type(error).__name__})") from None
        self._judge(response, now)

    def _judge(self, response: httpx.Response, now: float) -> None:
        status = response.status_code
        if 200 <= status < 300:
            return
        said = one_line(response.text, 120)
        reason = f"{self._where} answered HTTP {status}" + (f": {said}" if said else "")
        if status in RETRYABLE_4XX or status >= 500:
            raise TransientError(reason, self._retry_after(response, now))
        if 300 <= status < 400:
            raise PermanentError(f"{self._where} answered HTTP {status} (a redirect; webhooks do not follow them)")
        raise PermanentError(reason)

    @staticmethod
    def _retry_after(response: httpx.Response, now: float) -> float | None:
        header = retry_after_seconds(response.headers.get("retry-after"), now)
        if header is not None:
            return header
        try:
            payload = response.json()
        except ValueError:
            return None
        return retry_after_seconds(payload.get("retry_after"), now) if isinstance(payload, dict) else None

    async def aclose(self) -> None:
        if self._owns_client:
            await self._client.aclose()
