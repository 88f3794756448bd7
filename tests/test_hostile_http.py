"""Items 3, 20 and 27 (HTTP side): body caps against compression bombs, Retry-After clamped for
every provider, unknown outcomes said as such, and network errors in words a user knows."""

from __future__ import annotations

import gzip
import json
import os
import socket
import tracemalloc
import zlib
from typing import Any

import httpx
import pytest
from hostile import Router, build, client_for, graphql, gzip_bomb, quick_policy
from loopback import LoopbackServer, Reply

from computehub_tui.domain.models import OfferQuery
from computehub_tui.engine.health import health_state_for
from computehub_tui.providers.base import (
    CircuitOpenError,
    OutcomeUnknownError,
    ProtocolError,
    RateLimitedError,
    ReplyTooLargeError,
    UnavailableError,
)
from computehub_tui.providers.http import MB, ProviderHttp, describe_transport_error

QUERY = OfferQuery(min_reliability=0.0)
PROVIDERS = ("vast", "runpod", "lambda", "tensordock")


@pytest.fixture(scope="module")
def bomb() -> bytes:
    """1 GiB of zeros in about 1 MB of gzip."""
    return gzip_bomb(1024)



def adapter(name: str, router: Any, clients: list[httpx.AsyncClient], **policy: Any) -> Any:
    client = client_for(router)
    clients.append(client)
    return build(name, client, policy=quick_policy(**policy))


def streamed(body: bytes, **headers: str) -> httpx.Response:
    """A reply that arrives as a stream (like one off the network), not already read."""
    return httpx.Response(200, headers={"content-type": "application/json", **headers},
                          stream=httpx.ByteStream(body))


# -- item 3: body caps ----------------------------------------------------------------------------


async def test_a_gzip_bomb_is_refused_without_inflating_it(
    bomb: bytes, clients: list[httpx.AsyncClient]
) -> None:
    vast = adapter("vast", lambda _request: streamed(bomb, **{"content-encoding": "gzip"}), clients)
    tracemalloc.start()
    try:
        with pytest.raises(ReplyTooLargeError) as caught:
            await vast.list_offers(QUERY)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert str(caught.value) == "vast: reply too large (over 64 MB decoded); refusing it"
    assert len(bomb) < 2 * MB and peak < 72 * MB, peak  # the cap plus one step, not a gigabyte


async def test_a_per_policy_decoded_cap_bounds_memory_further(
    bomb: bytes, clients: list[httpx.AsyncClient]
) -> None:
    runpod = adapter("runpod", lambda _request: streamed(bomb, **{"content-encoding": "gzip"}), clients,
                     max_decoded_body=4 * MB)
    tracemalloc.start()
    try:
        with pytest.raises(ReplyTooLargeError, match=r"^runpod: reply too large \(over 4 MB decoded\)"):
            await runpod.list_instances()
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 8 * MB, peak


async def test_a_gzip_bomb_over_a_real_socket_is_refused(bomb: bytes) -> None:
    with LoopbackServer(default=Reply(body=bomb, headers={"Content-Encoding": "gzip",
                                                          "Content-Type": "application/json"})) as server:
        async with httpx.AsyncClient() as client:
            http = ProviderHttp("lambda", client, server.url, policy=quick_policy(max_decoded_body=8 * MB))
            with pytest.raises(ReplyTooLargeError, match="over 8 MB decoded"):
                await http.request("GET", "/instance-types")
    assert server.requests[0].headers["accept-encoding"] == "gzip, deflate"  # never br or zstd


async def test_an_oversized_compressed_body_is_refused_by_its_length() -> None:
    noise = gzip.compress(os.urandom(300_000))
    with LoopbackServer(default=Reply(body=noise, headers={"Content-Encoding": "gzip"})) as server:
        async with httpx.AsyncClient() as client:
            http = ProviderHttp("tensordock", client, server.url, policy=quick_policy(max_encoded_body=MB // 4))
            with pytest.raises(ReplyTooLargeError, match=r"over 0\.25 MB compressed"):
                await http.request("GET", "/locations")


async def test_a_streamed_body_without_length_is_counted_as_it_arrives(clients: list[httpx.AsyncClient]) -> None:
    noise = gzip.compress(os.urandom(300_000))
    vast = adapter("vast", lambda _request: streamed(noise, **{"content-encoding": "gzip"}), clients,
                   max_encoded_body=MB // 4)
    with pytest.raises(ReplyTooLargeError, match=r"over 0\.25 MB compressed"):
        await vast.list_instances()
    plain = json.dumps({"instances": [], "pad": "x" * 300_000}).encode()
    vast = adapter("vast", lambda _request: streamed(plain), clients, max_decoded_body=MB // 4)
    with pytest.raises(ReplyTooLargeError, match=r"over 0\.25 MB decoded"):
        await vast.list_instances()


@pytest.mark.parametrize("encode, encoding", [
    (gzip.compress, "gzip"),
    (zlib.compress, "deflate"),
    (lambda data: zlib.compress(data)[2:-4], "deflate"),  # raw deflate, as some servers send it
])
async def test_compressed_replies_within_the_caps_still_read(
    encode: Any, encoding: str, clients: list[httpx.AsyncClient]
) -> None:
    payload = json.dumps({"instances": [{"id": 7, "actual_status": "stopped", "num_gpus": 1}]}).encode()
    vast = adapter("vast", lambda _request: streamed(encode(payload), **{"content-encoding": encoding}), clients)
    [instance] = await vast.list_instances()
    assert instance.instance_id == "7"


async def test_an_encoding_we_cannot_bound_is_refused(clients: list[httpx.AsyncClient]) -> None:
    vast = adapter("vast", lambda _request: streamed(b"\x1b\x00", **{"content-encoding": "br"}), clients)
    with pytest.raises(ProtocolError, match=r"content encoding we do not read \(br\)"):
        await vast.list_instances()


# -- item 27: Retry-After, unknown outcomes, "null" statuses -------------------------------------


def rate_limited(retry_after: str, text: str = "slow down") -> httpx.Response:
    return httpx.Response(429, text=text, headers={"retry-after": retry_after, "content-type": "text/plain"})


@pytest.mark.parametrize("name", PROVIDERS)
async def test_every_provider_clamps_a_huge_retry_after(name: str, clients: list[httpx.AsyncClient]) -> None:
    provider = adapter(name, lambda _request: rate_limited("999999"), clients)
    with pytest.raises(RateLimitedError) as caught:
        await provider.list_instances()
    assert caught.value.retry_after == 3600.0


async def test_vast_honours_retry_after_and_clamps_its_threshold_text(clients: list[httpx.AsyncClient]) -> None:
    vast = adapter("vast", lambda _request: rate_limited("12"), clients)
    with pytest.raises(RateLimitedError) as caught:
        await vast.check_auth()
    assert caught.value.retry_after == 12.0
    vast = adapter("vast", lambda _request: httpx.Response(429, text="API requests too frequent: threshold=999999"),
                   clients)
    with pytest.raises(RateLimitedError) as caught:
        await vast.check_auth()
    assert caught.value.retry_after == 3600.0


DESTROY = {
    "vast": ("DELETE", "/api/v0/instances/123/", ""),
    "runpod": ("POST", "/graphql", "Terminate"),
    "lambda": ("POST", "/instance-operations/terminate", ""),
    "tensordock": ("DELETE", "/instances/123", ""),
}


def failing(error: Exception) -> Any:
    def answer(_request: httpx.Request) -> httpx.Response:
        raise error

    return answer


@pytest.mark.parametrize("name", PROVIDERS)
@pytest.mark.parametrize("failure", [
    httpx.ReadError("connection reset by peer"),
    httpx.RemoteProtocolError("server disconnected without sending a response"),
    httpx.ReadTimeout("timed out"),
])
async def test_destroy_after_a_dropped_connection_says_the_outcome_is_unknown(
    name: str, failure: Exception, clients: list[httpx.AsyncClient]
) -> None:
    method, path, body = DESTROY[name]
    provider = adapter(name, Router().on(method, path, failing(failure), body_part=body), clients)
    with pytest.raises(OutcomeUnknownError) as caught:
        await provider.destroy("123")
    message = str(caught.value)
    assert message.startswith(f"{name}: destroy outcome unknown (") and message.endswith(
        "; check Instances before retrying"), message


@pytest.mark.parametrize("name", PROVIDERS)
async def test_destroy_answered_by_a_gateway_error_is_unknown_too(
    name: str, clients: list[httpx.AsyncClient]
) -> None:
    method, path, body = DESTROY[name]
    reply = httpx.Response(502, text="bad gateway")
    provider = adapter(name, Router().on(method, path, lambda _request: reply, body_part=body), clients)
    with pytest.raises(OutcomeUnknownError, match="destroy outcome unknown"):
        await provider.destroy("123")


@pytest.mark.parametrize("name", PROVIDERS)
async def test_destroy_that_never_connected_is_a_plain_failure(name: str, clients: list[httpx.AsyncClient]) -> None:
    method, path, body = DESTROY[name]
    refused = failing(httpx.ConnectError("[Errno 111] Connection refused"))
    provider = adapter(name, Router().on(method, path, refused, body_part=body), clients)
    with pytest.raises(UnavailableError) as caught:
        await provider.destroy("123")
    assert not isinstance(caught.value, OutcomeUnknownError)
    assert "connection refused" in str(caught.value)


async def test_non_idempotent_stop_start_restart_say_unknown_where_it_matters(
    clients: list[httpx.AsyncClient],
) -> None:
    reset = failing(httpx.ReadError("reset"))
    tensordock = adapter("tensordock", Router().on("POST", "/stop", reset).on("POST", "/start", reset), clients)
    with pytest.raises(OutcomeUnknownError, match="^tensordock: stop outcome unknown"):
        await tensordock.stop("123")
    with pytest.raises(OutcomeUnknownError, match="^tensordock: start outcome unknown"):
        await tensordock.start("123")
    vast = adapter("vast", Router().on("PUT", "/reboot/", reset), clients)
    with pytest.raises(OutcomeUnknownError, match="^vast: restart outcome unknown"):
        await vast.restart("123")
    runpod = adapter("runpod", Router().on("POST", "/graphql", reset, body_part="Stop"), clients)
    with pytest.raises(OutcomeUnknownError, match="^runpod: stop outcome unknown"):
        await runpod.stop("123")


@pytest.mark.parametrize("name, router", [
    ("vast", Router().on("GET", "/instances/", {"instances": [{"id": 1, "actual_status": None, "num_gpus": 1}]})),
    ("runpod", Router().on("POST", "/graphql", graphql({"myself": {"pods": [
        {"id": "p", "desiredStatus": "null", "gpuCount": 1}]}}))),
    ("lambda", Router().on("GET", "/instances", {"data": [{"id": "i", "status": "None"}]})),
    ("tensordock", Router().on("GET", "/instances", {"data": [{"id": "t", "status": "null"}]})
     .on("GET", "/instances/t", {"data": {"id": "t", "status": "None"}})),
])
async def test_a_missing_status_is_a_real_word_never_null(
    name: str, router: Router, clients: list[httpx.AsyncClient]
) -> None:
    [instance] = await adapter(name, router, clients).list_instances()
    assert instance.provider_status.lower() not in ("", "null", "none"), instance.provider_status


# -- item 20: errors in words a user knows --------------------------------------------------------


def connect_error(message: str, cause: BaseException | None = None) -> httpx.ConnectError:
    error = httpx.ConnectError(message)
    error.__cause__ = cause
    return error


@pytest.mark.parametrize("error, url, expected", [
    (connect_error("[Errno -2] Name or service not known", socket.gaierror(-2, "Name or service not known")),
     "https://console.vast.ai/api/v0/instances/?api_key=x", "can't reach console.vast.ai: DNS lookup failed"),
    (connect_error("[Errno 111] Connection refused", ConnectionRefusedError(111, "Connection refused")),
     "https://api.runpod.io/graphql", "can't reach api.runpod.io: connection refused"),
    (connect_error("[SSL: CERTIFICATE_VERIFY_FAILED] certificate verify failed: self-signed certificate"),
     "https://cloud.lambda.ai/api/v1/instances", "can't reach cloud.lambda.ai: TLS certificate not trusted"),
    (httpx.ConnectTimeout("timed out"), "https://dashboard.tensordock.com/api/v2/locations",
     "can't reach dashboard.tensordock.com: timed out after 6 s"),
    (httpx.ReadTimeout("timed out"), "http://127.0.0.1:8080/x",
     "127.0.0.1:8080 did not answer in time (timed out after 20 s)"),
])
def test_transport_errors_are_described_in_plain_words(error: httpx.TransportError, url: str, expected: str) -> None:
    assert describe_transport_error(error, httpx.URL(url), 20.0, 6.0) == expected


async def test_a_dns_failure_reaches_the_user_as_one_plain_line(clients: list[httpx.AsyncClient]) -> None:
    failure = connect_error("[Errno -3] Temporary failure in name resolution", socket.gaierror(-3, "x"))
    vast = adapter("vast", failing(failure), clients)
    with pytest.raises(UnavailableError) as caught:
        await vast.list_instances()
    assert str(caught.value) == "vast: can't reach console.vast.ai: DNS lookup failed"


async def test_an_open_breaker_raises_a_typed_error_the_hub_recognises(clients: list[httpx.AsyncClient]) -> None:
    vast = adapter("vast", lambda _request: httpx.Response(503, text="down"), clients, breaker_threshold=1)
    with pytest.raises(UnavailableError):
        await vast.list_instances()
    with pytest.raises(CircuitOpenError) as caught:
        await vast.list_instances()
    assert health_state_for(caught.value) == "circuit-open"
    # The state comes from the type, not from matching the words of the message.
    assert health_state_for(UnavailableError("vast", "paused after repeated failures (x)")) == "down"
