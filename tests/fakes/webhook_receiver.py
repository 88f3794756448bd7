"""A loopback webhook receiver that checks Standard Webhooks signatures the way a receiver would.

It verifies independently of the channel's own code: the secret is decoded from its ``whsec_`` form here,
the signed content is rebuilt from the raw bytes received, the timestamp must be within five minutes of the
receiver's clock, and each ``webhook-id`` is taken once (a repeat is acknowledged but not counted again).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Self

from loopback import LoopbackServer, RecordedRequest, Reply

TOLERANCE_S = 300


@dataclass(frozen=True)
class Received:
    webhook_id: str
    timestamp: int
    payload: Any
    received_at: float
    """time.monotonic() when it arrived (for latency measurements)."""


class WebhookReceiver:
    """``with WebhookReceiver(secret) as hook: ... hook.url ...``; ``hook.accepted`` holds verified deliveries,
    ``hook.rejected`` why others were refused (401). ``hook.script(Reply…)`` answers the next requests first."""

    def __init__(self, secret: str | None = None, *, now: Callable[[], float] = time.time,
                 path: str = "/hooks/alerts", delay_s: float = 0.0) -> None:
        self._key = base64.b64decode(secret.removeprefix("whsec_")) if secret else None
        self._now = now
        self.path = path
        self.delay_s = delay_s
        """How long each accepted delivery waits before its answer (a slow receiver, to kill a sender mid-send)."""
        self.accepted: list[Received] = []
        self.duplicates = 0
        self.rejected: list[str] = []
        self._lock = threading.Lock()
        self._arrived = threading.Condition(self._lock)
        self.server = LoopbackServer(default=self._receive)

    def __enter__(self) -> Self:
        self.server.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.server.stop()

    @property
    def url(self) -> str:
        return f"{self.server.url}{self.path}"

    def script(self, *replies: Reply) -> None:
        self.server.enqueue(*replies)

    def wait_for(self, count: int, timeout_s: float = 5.0) -> bool:
        """Block (a test thread, not a loop) until ``count`` deliveries were accepted."""
        with self._arrived:
            return self._arrived.wait_for(lambda: len(self.accepted) >= count, timeout_s)

    def _receive(self, request: RecordedRequest) -> Reply:
        problem = self._problem(request)
        if problem:
            with self._lock:
                self.rejected.append(problem)
            return Reply.json({"error": problem}, status=401)
        webhook_id = request.headers["webhook-id"]
        with self._arrived:
            if any(item.webhook_id == webhook_id for item in self.accepted):
                self.duplicates += 1
            else:
                self.accepted.append(Received(webhook_id, int(request.headers["webhook-timestamp"]),
                                              json.loads(request.body), time.monotonic()))
                self._arrived.notify_all()
        return Reply(status=204, delay=self.delay_s)

    def _problem(self, request: RecordedRequest) -> str:
        if request.method != "POST" or request.path != self.path:
            return f"unexpected {request.method} {request.path}"
        webhook_id = request.headers.get("webhook-id", "")
        stamp = request.headers.get("webhook-timestamp", "")
        if not webhook_id or not stamp.isdigit():
            return "missing webhook-id or webhook-timestamp"
        if abs(self._now() - int(stamp)) > TOLERANCE_S:
            return "timestamp outside the tolerance"
        if self._key is None:
            return ""
        signed = webhook_id.encode() + b"." + stamp.encode() + b"." + request.body
        expected = base64.b64encode(hmac.new(self._key, signed, hashlib.sha256).digest()).decode()
        offered = [part.split(",", 1)[1] for part in request.headers.get("webhook-signature", "").split()
                   if part.startswith("v1,")]
        if not any(hmac.compare_digest(expected, candidate) for candidate in offered):
            return "bad signature"
        return ""
