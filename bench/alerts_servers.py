"""Loopback receivers for the alert benchmarks: a threaded HTTP webhook sink, a Telegram Bot API sink
(sendMessage) and an in-loop aiosmtpd server, each recording when every message arrived (time.monotonic())."""

from __future__ import annotations

import asyncio
import json
import re
import threading
import time
import urllib.parse
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from aiosmtpd.smtp import SMTP, Envelope, Session

HOST = "127.0.0.1"


class Arrivals:
    """Arrival times by key (the alert key for webhooks, the subject for mail)."""

    def __init__(self) -> None:
        self.times: list[tuple[str, float]] = []
        self._lock = threading.Lock()
        self.changed = threading.Condition(self._lock)

    def add(self, key: str) -> None:
        with self.changed:
            self.times.append((key, time.monotonic()))
            self.changed.notify_all()

    def count(self) -> int:
        with self._lock:
            return len(self.times)

    def first(self, key: str) -> float | None:
        with self._lock:
            return next((at for name, at in self.times if name == key), None)


class _QuietServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that hangs up at shutdown is no news."""


class _QuietHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        pass


@contextmanager
def _serving(handler: type[BaseHTTPRequestHandler]) -> Iterator[int]:
    """Serve ``handler`` on a loopback port on its own thread; yields the port."""
    server = _QuietServer((HOST, 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()


@contextmanager
def webhook_sink() -> Iterator[tuple[str, Arrivals]]:
    """``(url, arrivals)`` of a webhook receiver that answers 204 to every POST."""
    arrivals = Arrivals()

    class Handler(_QuietHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("content-length", "0")))
            payload: Any = json.loads(body or b"{}")
            data = payload.get("data") if isinstance(payload, dict) else None
            key = data.get("alert_key", "") if isinstance(data, dict) else str(payload.get("text", ""))[:80]
            arrivals.add(key)
            self.send_response(204)
            self.send_header("content-length", "0")
            self.end_headers()

    with _serving(Handler) as port:
        yield f"http://{HOST}:{port}/hook", arrivals


TELEGRAM_CHAT = "555"
_ALERT_IN_TEXT = re.compile(r"\((direct:telegram:\d+)\)|Rule (bench-\d+): stop vast:1")


@contextmanager
def telegram_sink() -> Iterator[tuple[str, Arrivals]]:
    """``(base_url, arrivals)`` of a Bot API that accepts every sendMessage (python-telegram-bot's ``base_url``
    form: the token follows it). An arrival's key is the rule firing's alert key, read back from the text."""
    arrivals = Arrivals()

    class Handler(_QuietHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("content-length", "0"))).decode()
            fields = (json.loads(body or "{}") if "json" in self.headers.get("content-type", "")
                      else {name: values[0] for name, values in urllib.parse.parse_qs(body).items()})
            if self.path.endswith("/sendMessage"):
                found = _ALERT_IN_TEXT.search(str(fields.get("text", "")))
                if found is not None:
                    arrivals.add(found.group(1) or f"rule:{found.group(2)}:vast:1:stop")
            answer = json.dumps({"ok": True, "result": {"message_id": arrivals.count(), "date": int(time.time()),
                                                        "chat": {"id": int(TELEGRAM_CHAT), "type": "private"}}})
            self.send_response(200)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(answer)))
            self.end_headers()
            self.wfile.write(answer.encode())

    with _serving(Handler) as port:
        yield f"http://{HOST}:{port}/bot", arrivals


class _Mailbox:
    def __init__(self, arrivals: Arrivals) -> None:
        self.arrivals = arrivals

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        content = envelope.content if isinstance(envelope.content, bytes) else str(envelope.content).encode()
        key = next((line.split(b":", 1)[1].strip().decode() for line in content.splitlines()
                    if line.lower().startswith(b"x-computehub-alert:")), "")
        self.arrivals.add(key)
        return "250 OK"


@asynccontextmanager
async def smtp_sink() -> AsyncIterator[tuple[int, Arrivals]]:
    """``(port, arrivals)`` of a plain SMTP server on this loop."""
    arrivals = Arrivals()
    server = await asyncio.get_running_loop().create_server(lambda: SMTP(_Mailbox(arrivals), hostname="bench"),
                                                            HOST, 0)
    try:
        yield server.sockets[0].getsockname()[1], arrivals
    finally:
        server.close()
        await server.wait_closed()
