"""The shared provider HTTP layer: Retry-After, safe retries, errors, breaker, pacing, sockets."""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from email.utils import formatdate
from typing import Any, TypeVar

import httpx
import pytest
from loopback import LoopbackServer, Reply, refused_port

from computehub_tui.clock import ManualClock
from computehub_tui.domain.secret import Secret
from computehub_tui.providers.base import (
    AuthError,
    NotFoundError,
    ProtocolError,
    ProviderError,
    RateLimitedError,
    RequestRejectedError,
    UnavailableError,
)
from computehub_tui.providers.http import (
    MAX_RETRY_AFTER,
    HttpPolicy,
    ProviderHttp,
    parse_retry_after,
    retry_after_from,
)

T = TypeVar("T")
NOW = 1_790_000_000.0
API_KEY = "sk-live-9f8e7d6c5b4a39281706f5e4d3c2b1a0"
Handler = Callable[[httpx.Request], httpx.Response]


class RecordingClock(ManualClock):
    """A manual clock that remembers every sleep the code under test asked for."""

    def __init__(self) -> None:
        super().__init__(start=NOW)
        self.slept: list[float] = []

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        await super().sleep(seconds)


async def run_on(clock: ManualClock, call: Awaitable[T], step: float = 0.01) -> T:
    """Run ``call`` to completion, moving the manual clock only while it is asleep on it."""
    task = asyncio.ensure_future(call)
    for _ in range(200_000):
        if task.done():
            return task.result()
        if clock.sleeper_count:
            await clock.advance(step)
        else:
            await asyncio.sleep(0)
    task.cancel()
    raise AssertionError("the call never finished")


class Script:
    """A MockTransport handler answering from a list, recording each request and its clock time."""

    def __init__(self, clock: ManualClock, *answers: httpx.Response | Exception) -> None:
        self.clock = clock
        self.answers = list(answers)
        self.requests: list[httpx.Request] = []
        self.times: list[float] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        self.times.append(self.clock.monotonic())
        answer = self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]
        if isinstance(answer, Exception):
            raise answer
        # A fresh copy: a response object is consumed by the client that receives it.
        return httpx.Response(answer.status_code, headers=answer.headers, content=answer.content)

    @property
    def gaps(self) -> list[float]:
        return [later - earlier for earlier, later in zip(self.times, self.times[1:])]


@pytest.fixture
def clock() -> RecordingClock:
    return RecordingClock()


@pytest.fixture
def api_key() -> Secret:
    return Secret(API_KEY)


def mock_http(
    clock: ManualClock,
    handler: Handler,
    policy: HttpPolicy | None = None,
    api_key: Secret | None = None,
) -> ProviderHttp:
    client = httpx.AsyncClient(transport=httpx.MockTransport(handler))
    return ProviderHttp(
        "vast",
        client,
        "https://console.vast.ai/api/v0",
        api_key=api_key,
        policy=policy or HttpPolicy(backoff_base=1.0),
        clock=clock,
        rng=random.Random(7),
    )


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient() as real_client:
        yield real_client


@pytest.fixture
def server() -> Iterator[LoopbackServer]:
    with LoopbackServer() as running:
        yield running


def loopback_http(
    server_url: str,
    client: httpx.AsyncClient,
    clock: ManualClock | None = None,
    api_key: Secret | None = None,
    **policy: Any,
) -> ProviderHttp:
    return ProviderHttp(
        "vast",
        client,
        server_url,
        api_key=api_key,
        policy=HttpPolicy(**{"backoff_base": 0.0, **policy}),
        clock=clock or ManualClock(),
    )


def connect_error() -> httpx.ConnectError:
    return httpx.ConnectError("[Errno 111] Connection refused")


def read_timeout() -> httpx.ReadTimeout:
    return httpx.ReadTimeout("timed out")


# --- Retry-After parsing -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("7", 7.0),
        (" 2.5 ", 2.5),
        ("0", 0.0),
        ("-3", 0.0),
        ("86400", MAX_RETRY_AFTER),
        (None, None),
        ("", None),
        ("soon", None),
    ],
)
def test_retry_after_seconds_are_parsed_and_clamped(
    header: str | None, expected: float | None
) -> None:
    assert parse_retry_after(header, NOW) == expected


@pytest.mark.parametrize(
    ("offset", "expected"), [(120, 120.0), (-600, 0.0), (7 * 86400, MAX_RETRY_AFTER)]
)
def test_retry_after_http_date_is_relative_to_now_and_clamped(offset: int, expected: float) -> None:
    header = formatdate(NOW + offset, usegmt=True)  # "Wed, 21 Oct 2026 07:28:00 GMT"

    assert parse_retry_after(header, NOW) == pytest.approx(expected)


def test_vast_plain_text_threshold_gives_retry_after() -> None:
    response = httpx.Response(429, text="API requests too frequent endpoint threshold=4.5")

    assert retry_after_from(response, NOW) == 4.5


def test_retry_after_header_wins_over_body_threshold() -> None:
    response = httpx.Response(429, headers={"Retry-After": "2"}, text="threshold=4.5")

    assert retry_after_from(response, NOW) == 2.0
    assert retry_after_from(httpx.Response(429, text="slow down"), NOW) is None


async def test_vast_429_text_becomes_rate_limited_error_with_retry_after(
    clock: RecordingClock,
) -> None:
    script = Script(
        clock, httpx.Response(429, text="API requests too frequent endpoint threshold=4.5")
    )
    http = mock_http(clock, script, HttpPolicy(max_attempts=1))

    with pytest.raises(RateLimitedError) as caught:
        await http.request("GET", "/bundles/")

    assert caught.value.retry_after == 4.5
    assert "retry in 4.5s" in str(caught.value)
    assert http.health == "rate-limited"


# --- retries -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "failure",
    [
        httpx.Response(503, json={"msg": "overloaded"}),
        httpx.Response(502),
        connect_error(),
        read_timeout(),
    ],
)
async def test_get_is_retried_with_growing_backoff_then_succeeds(
    clock: RecordingClock, failure: httpx.Response | Exception
) -> None:
    script = Script(clock, failure, failure, httpx.Response(200, json={"ok": True}))
    http = mock_http(clock, script, HttpPolicy(max_attempts=4, backoff_base=1.0))

    response = await run_on(clock, http.request("GET", "/instances/"))

    assert response.status_code == 200
    assert len(script.requests) == 3
    assert http.request_count == 3
    first, second = clock.slept
    assert 0.25 <= first <= 1.0  # full jitter in [ceiling/4, ceiling], ceiling = base * 2**attempt
    assert 0.5 <= second <= 2.0
    assert script.gaps == pytest.approx(clock.slept, abs=0.02)
    assert http.breaker.failures == 0
    assert http.health == "ok"


async def test_get_429_waits_the_retry_after_then_succeeds(clock: RecordingClock) -> None:
    script = Script(clock, httpx.Response(429, headers={"Retry-After": "3"}), httpx.Response(200))
    http = mock_http(clock, script)

    await run_on(clock, http.request("GET", "/instances/"))

    assert len(script.requests) == 2
    assert 3.0 <= script.gaps[0] <= 3.3  # the server's delay plus at most 0.25 s jitter


async def test_backoff_is_capped(clock: RecordingClock) -> None:
    script = Script(
        clock, httpx.Response(503), httpx.Response(503), httpx.Response(503), httpx.Response(200)
    )
    http = mock_http(clock, script, HttpPolicy(max_attempts=4, backoff_base=10.0, backoff_cap=12.0))

    await run_on(clock, http.request("GET", "/x"), step=0.1)

    assert len(clock.slept) == 3
    assert all(sleep <= 12.0 for sleep in clock.slept)
    assert clock.slept[2] >= 3.0  # ceiling 12/4 even though 10 * 2**2 = 40


async def test_get_gives_up_after_max_attempts_with_the_last_error(clock: RecordingClock) -> None:
    script = Script(clock, httpx.Response(503, json={"msg": "maintenance"}))
    http = mock_http(clock, script, HttpPolicy(max_attempts=3))

    with pytest.raises(UnavailableError, match="server error HTTP 503: maintenance"):
        await run_on(clock, http.request("GET", "/x"))

    assert len(script.requests) == 3
    assert http.breaker.failures == 1  # one logical call, one breaker failure


async def test_long_retry_after_fails_fast_and_holds_later_calls(clock: RecordingClock) -> None:
    script = Script(clock, httpx.Response(429, headers={"Retry-After": "60"}), httpx.Response(200))
    http = mock_http(clock, script)

    with pytest.raises(RateLimitedError) as caught:
        await run_on(clock, http.request("GET", "/x"))
    assert caught.value.retry_after == 60.0
    assert clock.slept == []  # no sleeping inside a call for a minute

    with pytest.raises(RateLimitedError, match="retry in 60s"):
        await run_on(clock, http.request("GET", "/x"))
    assert len(script.requests) == 1  # the held call never reached the provider

    await clock.advance(60.0)
    assert (await run_on(clock, http.request("GET", "/x"))).status_code == 200


@pytest.mark.parametrize(
    "failure", [httpx.Response(503), httpx.Response(500), httpx.Response(429), read_timeout()]
)
async def test_post_is_not_retried_once_it_may_have_reached_the_server(
    clock: RecordingClock, failure: httpx.Response | Exception
) -> None:
    script = Script(clock, failure, httpx.Response(200))
    http = mock_http(clock, script)

    with pytest.raises((UnavailableError, RateLimitedError)):
        await run_on(clock, http.request("POST", "/asks/123/", json_body={"price": 0.4}))

    assert len(script.requests) == 1
    assert clock.slept == []


async def test_post_is_retried_when_the_connection_was_refused(clock: RecordingClock) -> None:
    script = Script(clock, connect_error(), httpx.Response(200, json={"new_contract": 42}))
    http = mock_http(clock, script)

    reply = await run_on(clock, http.request_json("PUT", "/asks/123/", json_body={"price": 0.4}))

    assert reply == {"new_contract": 42}
    assert len(script.requests) == 2


async def test_explicitly_idempotent_delete_is_retried(clock: RecordingClock) -> None:
    script = Script(clock, httpx.Response(503), httpx.Response(204))
    http = mock_http(clock, script)

    await run_on(clock, http.request("DELETE", "/instances/9/", idempotent=True))

    assert len(script.requests) == 2


# --- error mapping -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("response", "error_type", "text"),
    [
        (httpx.Response(401, json={"detail": "invalid api key"}), AuthError, "invalid api key"),
        (httpx.Response(403, json={"error": "forbidden"}), AuthError, "HTTP 403"),
        (httpx.Response(404, json={"msg": "no such instance"}), NotFoundError, "no such instance"),
        (httpx.Response(410, text="gone"), NotFoundError, "HTTP 410"),
        (
            httpx.Response(
                400,
                json={
                    "error": {
                        "code": "bad-image",
                        "message": "image not found",
                        "suggestion": "check the tag",
                    }
                },
            ),
            RequestRejectedError,
            "image not found — check the tag",
        ),
        (
            httpx.Response(422, json={"errors": [{"message": "bid too low"}]}),
            RequestRejectedError,
            "bid too low",
        ),
    ],
)
async def test_status_codes_map_to_typed_errors(
    clock: RecordingClock, response: httpx.Response, error_type: type[ProviderError], text: str
) -> None:
    script = Script(clock, response)
    http = mock_http(clock, script)

    with pytest.raises(error_type) as caught:
        await run_on(clock, http.request("GET", "/x"))

    assert type(caught.value) is error_type
    assert text in str(caught.value)
    assert str(caught.value).startswith("vast: ")
    assert len(script.requests) == 1  # permanent errors are not retried
    assert http.breaker.failures == 0  # the provider is up; it just said no


@pytest.mark.parametrize(
    "body", [b"<html>502 Bad Gateway</html>", b'{"offers": [', b"\xff\xfe\x00"]
)
async def test_malformed_json_becomes_protocol_error(clock: RecordingClock, body: bytes) -> None:
    http = mock_http(clock, Script(clock, httpx.Response(200, content=body)))

    with pytest.raises(ProtocolError, match=r"malformed JSON in reply \(HTTP 200"):
        await run_on(clock, http.request_json("GET", "/bundles/"))


async def test_empty_and_204_replies_parse_to_none(clock: RecordingClock) -> None:
    http = mock_http(clock, Script(clock, httpx.Response(204), httpx.Response(200, content=b"")))

    assert await run_on(clock, http.request_json("DELETE", "/instances/1/")) is None
    assert await run_on(clock, http.request_json("GET", "/instances/")) is None


async def test_error_mapper_takes_precedence(clock: RecordingClock) -> None:
    def mapper(response: httpx.Response) -> ProviderError | None:
        return NotFoundError("vast", "offer gone") if response.status_code == 400 else None

    http = mock_http(clock, Script(clock, httpx.Response(400, json={"msg": "no_such_ask"})))
    http.error_mapper = mapper

    with pytest.raises(NotFoundError, match="offer gone"):
        await run_on(clock, http.request("PUT", "/asks/1/"))


async def test_bearer_header_is_sent_only_when_auth_is_wanted(
    clock: RecordingClock, api_key: Secret
) -> None:
    script = Script(clock, httpx.Response(200))
    http = mock_http(clock, script, api_key=api_key)

    await run_on(clock, http.request("GET", "/users/current/"))
    await run_on(clock, http.request("GET", "/public/", auth=False))

    assert script.requests[0].headers["authorization"] == f"Bearer {API_KEY}"
    assert "authorization" not in script.requests[1].headers
    assert str(script.requests[0].url) == "https://console.vast.ai/api/v0/users/current/"


# --- circuit breaker -----------------------------------------------------------------------


async def test_breaker_opens_fails_fast_half_opens_and_closes(
    server: LoopbackServer, client: httpx.AsyncClient
) -> None:
    clock = ManualClock()
    http = loopback_http(
        server.url, client, clock, max_attempts=1, breaker_threshold=3, breaker_cooldown=30.0
    )
    server.route("GET", "/instances/", Reply.json({"msg": "upstream down"}, status=503))

    for expected_failures in (1, 2):
        with pytest.raises(UnavailableError, match="server error HTTP 503"):
            await http.request("GET", "/instances/")
        assert http.breaker.state == "closed" and http.breaker.failures == expected_failures
        assert http.health == "failing"
    with pytest.raises(UnavailableError):
        await http.request("GET", "/instances/")
    assert http.breaker.state == "open" and http.health == "circuit-open"
    assert server.count == 3

    for _ in range(5):
        with pytest.raises(
            UnavailableError, match=r"paused after repeated failures .*retrying in 30s"
        ):
            await http.request("GET", "/instances/")
    assert server.count == 3  # fast failures never reach the provider

    await clock.advance(29.0)
    with pytest.raises(UnavailableError, match="retrying in 1s"):
        await http.request("GET", "/instances/")
    await clock.advance(1.0)
    assert http.breaker.state == "half-open"

    server.route("GET", "/instances/", Reply.json({"instances": []}))
    assert await http.request_json("GET", "/instances/") == {"instances": []}
    assert server.count == 4
    assert http.breaker.state == "closed" and http.breaker.failures == 0 and http.health == "ok"


async def test_failed_probe_reopens_the_breaker_for_a_full_cooldown(
    server: LoopbackServer, client: httpx.AsyncClient
) -> None:
    clock = ManualClock()
    http = loopback_http(
        server.url, client, clock, max_attempts=1, breaker_threshold=2, breaker_cooldown=10.0
    )
    server.default = Reply(status=500)
    for _ in range(2):
        with pytest.raises(UnavailableError):
            await http.request("GET", "/x")
    await clock.advance(10.0)

    with pytest.raises(UnavailableError, match="server error"):
        await http.request("GET", "/x")  # the half-open probe

    assert http.breaker.state == "open"
    assert http.breaker.retry_in == pytest.approx(10.0)
    assert server.count == 3


async def test_permanent_errors_do_not_trip_the_breaker(
    server: LoopbackServer, client: httpx.AsyncClient
) -> None:
    http = loopback_http(server.url, client, max_attempts=1, breaker_threshold=2)
    server.default = Reply.json({"msg": "bad request"}, status=400)

    for _ in range(5):
        with pytest.raises(RequestRejectedError):
            await http.request("GET", "/x")

    assert http.breaker.state == "closed"
    assert server.count == 5


# --- pacing --------------------------------------------------------------------------------


async def test_min_interval_spaces_sequential_calls(clock: RecordingClock) -> None:
    script = Script(clock, httpx.Response(200))
    http = mock_http(clock, script, HttpPolicy(min_interval=1.0))

    for _ in range(4):
        await run_on(clock, http.request("GET", "/instances/"))

    assert script.gaps == pytest.approx([1.0, 1.0, 1.0], abs=0.02)


async def test_min_interval_spaces_concurrent_calls(clock: RecordingClock) -> None:
    script = Script(clock, httpx.Response(200))
    http = mock_http(clock, script, HttpPolicy(min_interval=1.0))

    calls = asyncio.gather(*(http.request("GET", f"/instances/{n}/") for n in range(3)))
    await run_on(clock, calls)

    assert sorted(script.times) == pytest.approx([0.0, 1.0, 2.0], abs=0.02)


async def test_calls_spread_out_in_time_are_not_delayed(clock: RecordingClock) -> None:
    script = Script(clock, httpx.Response(200))
    http = mock_http(clock, script, HttpPolicy(min_interval=1.0))

    await run_on(clock, http.request("GET", "/a"))
    await clock.advance(5.0)
    await run_on(clock, http.request("GET", "/b"))

    assert clock.slept == []
    assert script.gaps == pytest.approx([5.0])


async def test_endpoint_interval_applies_only_to_that_endpoint(clock: RecordingClock) -> None:
    script = Script(clock, httpx.Response(200))
    http = mock_http(clock, script, HttpPolicy(endpoint_intervals={"bundles": 4.5}))

    await run_on(clock, http.request("GET", "/bundles/", endpoint="bundles"))
    await run_on(clock, http.request("GET", "/instances/"))
    await run_on(clock, http.request("GET", "/bundles/", endpoint="bundles"))

    assert script.gaps == pytest.approx([0.0, 4.5], abs=0.02)


# --- real sockets --------------------------------------------------------------------------


async def test_slow_server_times_out_quickly_and_get_is_retried(
    server: LoopbackServer, client: httpx.AsyncClient
) -> None:
    http = loopback_http(server.url, client, timeout=0.2, max_attempts=2)
    server.default = Reply.json({}, delay=5.0)

    started = time.monotonic()
    with pytest.raises(UnavailableError) as caught:
        await http.request("GET", "/instances/")
    elapsed = time.monotonic() - started

    assert str(caught.value) == f"vast: {server.host_port} did not answer in time (timed out after 0.2 s)"
    assert 0.35 <= elapsed < 2.0
    assert server.count == 2


async def test_slow_server_post_times_out_once_and_is_not_repeated(
    server: LoopbackServer, client: httpx.AsyncClient
) -> None:
    http = loopback_http(server.url, client, timeout=0.2, max_attempts=4)
    server.default = Reply.json({}, delay=5.0)

    with pytest.raises(UnavailableError, match="did not answer in time"):
        await http.request("POST", "/instances/", json_body={"gpu": "RTX 4090"})

    assert server.count == 1
    assert server.requests[0].json() == {"gpu": "RTX 4090"}


async def test_per_call_timeout_overrides_the_policy(
    server: LoopbackServer, client: httpx.AsyncClient
) -> None:
    http = loopback_http(server.url, client, timeout=30.0, max_attempts=1)
    server.default = Reply.json({}, delay=5.0)

    started = time.monotonic()
    with pytest.raises(UnavailableError, match="did not answer in time"):
        await http.request("GET", "/x", timeout=0.2)
    assert time.monotonic() - started < 2.0


async def test_dropped_connection_retries_get_but_not_post(
    server: LoopbackServer, client: httpx.AsyncClient
) -> None:
    http = loopback_http(server.url, client, max_attempts=3)
    server.enqueue(Reply(drop=True))
    server.route("GET", "/instances/", Reply.json({"instances": [1]}))

    assert await http.request_json("GET", "/instances/") == {"instances": [1]}
    assert server.count == 2

    server.clear()
    server.enqueue(Reply(drop=True))
    with pytest.raises(
        UnavailableError, match=f"{server.host_port} closed the connection unexpectedly"
    ):
        await http.request("POST", "/instances/", json_body={})
    assert server.count == 1


async def test_refused_port_names_only_host_and_port(
    client: httpx.AsyncClient, api_key: Secret
) -> None:
    port = refused_port()
    http = loopback_http(f"http://127.0.0.1:{port}/api/v0", client, api_key=api_key, max_attempts=3)

    with pytest.raises(UnavailableError) as caught:
        await http.request("POST", f"/instances/create/?api_key={API_KEY}&owner=me", json_body={})

    message = str(caught.value)
    assert f"127.0.0.1:{port}" in message
    assert message.startswith("vast: ") and "\n" not in message
    for fragment in ("api", "v0", "instances", "create", "owner", API_KEY, "http://"):
        assert fragment not in message.removeprefix("vast: ")
    assert http.request_count == 3  # refused means it never arrived: even a POST is retried


async def test_api_key_never_appears_in_any_error(
    server: LoopbackServer, client: httpx.AsyncClient, api_key: Secret
) -> None:
    def echo_authorization(status: int) -> Callable[[Any], Reply]:
        return lambda request: Reply.json(
            {"message": f"bad token: {request.headers['authorization']}"}, status
        )

    server.route("GET", "/auth", echo_authorization(401))
    server.route("GET", "/forbidden", echo_authorization(403))
    server.route("GET", "/crash", echo_authorization(500))
    server.route("GET", "/reject", echo_authorization(400))
    server.route(
        "GET", "/limit", lambda r: Reply.text(f"too many for {r.headers['authorization']}", 429)
    )
    server.route("GET", "/slow", Reply.json({}, delay=5.0))
    server.route("GET", "/drop", Reply(drop=True))
    http = loopback_http(
        server.url, client, api_key=api_key, max_attempts=1, timeout=0.2, breaker_threshold=100
    )
    refused = loopback_http(
        f"http://127.0.0.1:{refused_port()}", client, api_key=api_key, max_attempts=1
    )

    errors: list[ProviderError] = []
    for path in ("/auth", "/forbidden", "/crash", "/reject", "/limit", "/slow", "/drop"):
        with pytest.raises(ProviderError) as caught:
            await http.request("GET", f"{path}?api_key={API_KEY}")
        errors.append(caught.value)
    with pytest.raises(ProviderError) as caught:
        await refused.request("GET", f"/x?api_key={API_KEY}")
    errors.append(caught.value)

    assert all(r.headers["authorization"] == f"Bearer {API_KEY}" for r in server.requests)
    assert "bad token: Bearer ••••" in str(errors[0])  # the echo arrived, masked
    for error in errors:
        assert API_KEY not in str(error), f"{type(error).__name__} leaked the key: {error}"
        assert API_KEY not in repr(error)
        assert API_KEY[:12] not in str(error)
