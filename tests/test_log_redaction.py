"""Registered secrets never reach log output: httpx/httpcore at DEBUG, URLs, tracebacks."""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest
from loopback import LoopbackServer, Reply

from computehub_tui.clock import ManualClock
from computehub_tui.domain.secret import RedactingFormatter, Secret
from computehub_tui.providers.http import HttpPolicy, ProviderHttp

MASK = "••••"
TELEGRAM_TOKEN = "7501234567:AAHf4k3-t0k3n_for-redaction-tests-Zq9"
API_KEY = "rp_live_2c1f0e9d8b7a6c5d4e3f2a1b0c9d8e7f"
LOGGERS = ("httpx", "httpcore")


class RawCapture(logging.Handler):
    """Keeps each record's unredacted text, to prove the secret really was in the log line."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(logging.Formatter("%(name)s %(message)s").format(record))


@dataclass
class Captured:
    redacted: io.StringIO
    raw: RawCapture

    @property
    def text(self) -> str:
        return self.redacted.getvalue()

    @property
    def raw_text(self) -> str:
        return "\n".join(self.raw.lines)


@pytest.fixture
def logs() -> Iterator[Captured]:
    stream = io.StringIO()
    redacting = logging.StreamHandler(stream)
    redacting.setLevel(logging.DEBUG)
    redacting.setFormatter(RedactingFormatter("%(levelname)s %(name)s %(message)s"))
    raw = RawCapture()
    saved = []
    for name in LOGGERS:
        logger = logging.getLogger(name)
        saved.append((logger, logger.level))
        logger.setLevel(logging.DEBUG)
        logger.addHandler(redacting)
        logger.addHandler(raw)
    try:
        yield Captured(stream, raw)
    finally:
        for logger, level in saved:
            logger.removeHandler(redacting)
            logger.removeHandler(raw)
            logger.setLevel(level)


@pytest.fixture
def server() -> Iterator[LoopbackServer]:
    with LoopbackServer(default=Reply.json({"ok": True, "result": {"message_id": 1}})) as running:
        yield running


def assert_redacted(logs: Captured, secret: str) -> None:
    assert secret in logs.raw_text, "the test is vacuous: the secret never reached a log record"
    assert secret not in logs.text
    assert MASK in logs.text


async def test_token_in_a_url_path_is_masked_in_httpx_logs(
    logs: Captured, server: LoopbackServer
) -> None:
    token = Secret(TELEGRAM_TOKEN)

    async with httpx.AsyncClient(base_url=server.url) as client:
        response = await client.post(
            f"/bot{token.reveal()}/sendMessage", json={"chat_id": 1, "text": "hi"}
        )

    assert response.json()["ok"] is True
    assert server.requests[0].path == f"/bot{TELEGRAM_TOKEN}/sendMessage"
    assert_redacted(logs, TELEGRAM_TOKEN)
    assert f"/bot{MASK}/sendMessage" in logs.text
    assert "httpcore" in logs.text and "DEBUG" in logs.text  # the chatty loggers really were on


async def test_api_key_in_the_authorization_header_is_masked(
    logs: Captured, server: LoopbackServer
) -> None:
    async def log_headers(request: httpx.Request) -> None:
        # A debug hook someone might add: httpx.Headers' repr hides Authorization, a dict does not.
        logging.getLogger("httpx").debug("sending headers %s", dict(request.headers))

    async with httpx.AsyncClient(event_hooks={"request": [log_headers]}) as client:
        http = ProviderHttp(
            "runpod",
            client,
            server.url,
            api_key=Secret(API_KEY),
            policy=HttpPolicy(max_attempts=1),
            clock=ManualClock(),
        )
        await http.request("GET", "/v1/pods")

    assert server.requests[0].headers["authorization"] == f"Bearer {API_KEY}"
    assert_redacted(logs, API_KEY)
    assert f"'authorization': 'Bearer {MASK}'" in logs.text
    assert "GET" in logs.text and "/v1/pods" in logs.text


async def test_failed_request_logs_stay_redacted(logs: Captured, server: LoopbackServer) -> None:
    token = Secret(TELEGRAM_TOKEN)
    server.default = Reply.json({"ok": False, "description": "Unauthorized"}, status=401)

    async with httpx.AsyncClient(base_url=server.url) as client:
        response = await client.get(f"/bot{token.reveal()}/getMe")

    assert response.status_code == 401
    assert_redacted(logs, TELEGRAM_TOKEN)
    assert "401 Unauthorized" in logs.text


def test_traceback_carrying_the_secret_is_redacted(logs: Captured) -> None:
    token = Secret(TELEGRAM_TOKEN)

    try:
        try:
            raise ConnectionError(
                f"POST https://api.telegram.org/bot{token.reveal()}/sendMessage failed"
            )
        except ConnectionError as inner:
            raise RuntimeError(f"giving up on token {token.reveal()}") from inner
    except RuntimeError:
        logging.getLogger("httpx").exception("delivery to telegram failed")

    assert_redacted(logs, TELEGRAM_TOKEN)
    assert "Traceback (most recent call last)" in logs.text
    assert f"RuntimeError: giving up on token {MASK}" in logs.text
    assert (
        f"ConnectionError: POST https://api.telegram.org/bot{MASK}/sendMessage failed" in logs.text
    )


def test_unregistered_text_is_left_alone(logs: Captured) -> None:
    Secret(TELEGRAM_TOKEN)

    logging.getLogger("httpcore").debug("connect_tcp.started host='127.0.0.1' port=8080")

    assert "connect_tcp.started host='127.0.0.1' port=8080" in logs.text
    assert MASK not in logs.text
