"""A scriptable real HTTP/1.1 server on 127.0.0.1 for tests that need sockets, not MockTransport.

Use it when the behaviour under test lives in the network stack: real timeouts, refused or dropped
connections, keep-alive, what actually went over the wire. For wire-format unit tests prefer
``httpx.MockTransport``.

Basics::

    from loopback import LoopbackServer, Reply, refused_port

    with LoopbackServer() as server:
        server.route("GET", "/api/v0/bundles", Reply.json({"offers": []}))
        client = httpx.AsyncClient(base_url=server.url)
        ...
        assert server.requests[0].headers["authorization"] == "Bearer ..."

Or take the ``loopback_server`` fixture by importing it into a test module
(``from loopback import loopback_server  # noqa: F401``); it stops the server after the test.

How a reply is chosen for each request, first match wins:

1. ``server.enqueue(reply, ...)`` — one-shot replies consumed in order by the next requests,
   whatever their path (for "503, 503, then 200" scripts).
2. ``server.route(method, path, reply, ...)`` — replies for one method and path (query string
   ignored); with several, each request takes the next and the last one repeats.
3. ``server.default`` — 404 with a JSON error unless changed.

A reply is a ``Reply`` or a callable taking the ``RecordedRequest`` and returning one, so a test
can compute answers (echo a header, count calls). ``Reply`` controls status, headers, body
(bytes, text, or JSON via ``Reply.json``), ``delay`` seconds before answering (to trigger client
timeouts), and ``drop=True`` to close the connection without answering a byte.

Every request is recorded (method, path with query, lower-cased headers, body) *before* the reply
is chosen or delayed, so ``server.requests`` / ``server.count`` are exact even for requests the
client gave up on. Delays end early when the server stops, so tests never wait them out.

``refused_port()`` gives a local port with nothing listening, for "connection refused" tests
(bound then released, so another process could in theory grab it; fine on a test machine).
"""

from __future__ import annotations

import json
import socket
import threading
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Self
from urllib.parse import parse_qs, urlsplit

import pytest

HOST = "127.0.0.1"


@dataclass(frozen=True)
class RecordedRequest:
    """One request as the server received it."""

    method: str
    target: str
    """Path plus query string, exactly as sent."""
    headers: dict[str, str]
    """Header names lower-cased."""
    body: bytes

    @property
    def path(self) -> str:
        return urlsplit(self.target).path

    @property
    def query(self) -> dict[str, list[str]]:
        return parse_qs(urlsplit(self.target).query)

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class Reply:
    """What the server does for one request."""

    status: int = 200
    body: bytes | str = b""
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0
    """Seconds to wait before answering (ends early if the server stops)."""
    drop: bool = False
    """Close the connection without sending anything."""

    @classmethod
    def json(cls, payload: Any, status: int = 200, **kwargs: Any) -> Reply:
        headers = {"Content-Type": "application/json", **kwargs.pop("headers", {})}
        return cls(status=status, body=json.dumps(payload), headers=headers, **kwargs)

    @classmethod
    def text(cls, text: str, status: int = 200, **kwargs: Any) -> Reply:
        headers = {"Content-Type": "text/plain; charset=utf-8", **kwargs.pop("headers", {})}
        return cls(status=status, body=text, headers=headers, **kwargs)

    @property
    def body_bytes(self) -> bytes:
        return self.body.encode("utf-8") if isinstance(self.body, str) else self.body


Responder = Reply | Callable[[RecordedRequest], Reply]


class _Route:
    """Replies for one (method, path): each request takes the next, the last one repeats."""

    def __init__(self, responders: tuple[Responder, ...]) -> None:
        self._responders = deque(responders)

    def next(self) -> Responder:
        return self._responders.popleft() if len(self._responders) > 1 else self._responders[0]


class LoopbackServer:
    """A ThreadingHTTPServer on 127.0.0.1:<free port>, answering as the test scripts it."""

    def __init__(self, default: Responder | None = None) -> None:
        self.default: Responder = default or Reply.json({"error": "no route"}, status=404)
        self._lock = threading.Lock()
        self._queue: deque[Responder] = deque()
        self._routes: dict[tuple[str, str], _Route] = {}
        self._requests: list[RecordedRequest] = []
        self._stopping = threading.Event()
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle ----------------------------------------------------------------------------

    def start(self) -> Self:
        self._stopping.clear()
        httpd = _Server((HOST, 0), _Handler)
        httpd.loopback = self
        self._httpd = httpd
        self._thread = threading.Thread(
            target=httpd.serve_forever, args=(0.02,), name="loopback-http", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._httpd = None
        self._thread = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    # -- addresses ----------------------------------------------------------------------------

    @property
    def port(self) -> int:
        assert self._httpd is not None, "server not started"
        return int(self._httpd.server_address[1])

    @property
    def host_port(self) -> str:
        return f"{HOST}:{self.port}"

    @property
    def url(self) -> str:
        """Base URL without a trailing slash, e.g. ``http://127.0.0.1:41234``."""
        return f"http://{self.host_port}"

    # -- scripting ----------------------------------------------------------------------------

    def enqueue(self, *responders: Responder) -> None:
        """One-shot replies for the next requests on any path, in order."""
        with self._lock:
            self._queue.extend(responders)

    def route(self, method: str, path: str, *responders: Responder) -> None:
        """Replies for ``method path``; each request takes the next, the last one repeats."""
        if not responders:
            raise ValueError("route() needs at least one reply")
        with self._lock:
            self._routes[(method.upper(), path)] = _Route(responders)

    # -- inspection ---------------------------------------------------------------------------

    @property
    def requests(self) -> list[RecordedRequest]:
        with self._lock:
            return list(self._requests)

    @property
    def count(self) -> int:
        with self._lock:
            return len(self._requests)

    def requests_to(self, method: str, path: str) -> list[RecordedRequest]:
        return [r for r in self.requests if r.method == method.upper() and r.path == path]

    def clear(self) -> None:
        """Forget recorded requests and queued replies (routes stay)."""
        with self._lock:
            self._requests.clear()
            self._queue.clear()

    # -- used by the handler thread -----------------------------------------------------------

    def _record_and_choose(self, request: RecordedRequest) -> Reply:
        with self._lock:
            self._requests.append(request)
            if self._queue:
                responder = self._queue.popleft()
            elif (request.method, request.path) in self._routes:
                responder = self._routes[(request.method, request.path)].next()
            else:
                responder = self.default
        return responder(request) if callable(responder) else responder

    def _wait(self, seconds: float) -> bool:
        """Sleep up to ``seconds``; False if the server is stopping."""
        return not self._stopping.wait(seconds)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    loopback: LoopbackServer

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Clients that hang up on a delayed reply are expected here; stay quiet."""


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def handle_one_request(self) -> None:
        try:
            self.raw_requestline = self.rfile.readline(65537)
        except (ConnectionError, TimeoutError):
            self.close_connection = True
            return
        if not self.raw_requestline:
            self.close_connection = True
            return
        if not self.parse_request():
            return
        self._serve()

    def _serve(self) -> None:
        loopback = self.server.loopback
        recorded = RecordedRequest(
            method=self.command,
            target=self.path,
            headers={name.lower(): value for name, value in self.headers.items()},
            body=self._read_body(),
        )
        reply = loopback._record_and_choose(recorded)
        if reply.delay > 0 and not loopback._wait(reply.delay):
            self.close_connection = True
            return
        if reply.drop:
            self.close_connection = True
            return
        self._send(reply)

    def _read_body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            return b"".join(self._chunks())
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _chunks(self) -> Iterator[bytes]:
        while True:
            size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
            if size == 0:
                while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                    pass  # trailers
                return
            yield self.rfile.read(size)
            self.rfile.readline()

    def _send(self, reply: Reply) -> None:
        body = reply.body_bytes
        self.send_response(reply.status)
        names = {name.lower() for name in reply.headers}
        for name, value in reply.headers.items():
            self.send_header(name, value)
        if "content-length" not in names:
            self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)
        self.wfile.flush()

    def log_message(self, format: str, *args: Any) -> None:
        """Silence the per-request stderr log line."""


def refused_port() -> int:
    """A loopback port with nothing listening: connecting to it is refused at once."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((HOST, 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def loopback_server() -> Iterator[LoopbackServer]:
    """A started ``LoopbackServer``, stopped after the test."""
    with LoopbackServer() as server:
        yield server
