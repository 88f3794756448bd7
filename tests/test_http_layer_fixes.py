"""Regression tests for HTTP-layer bugs: key leaks, raw httpx errors, NaN Retry-After, half-open probes."""

from __future__ import annotations

import asyncio
import math
from collections.abc import Iterator

import httpx
import pytest
from loopback import LoopbackServer, Reply, refused_port

from computehub_tui.clock import ManualClock
from computehub_tui.domain.secret import Secret
from computehub_tui.providers.base import ProviderError
from computehub_tui.providers.http import HttpPolicy, ProviderHttp, parse_retry_after

API_KEY = "sk-live-9f8e7d6c5b4a39281706f5e4d3c2b1a0"


@pytest.fixture
def server() -> Iterator[LoopbackServer]:
    with LoopbackServer() as running:
        yield running


def http_for(url: str, client: httpx.AsyncClient, **policy: object) -> ProviderHttp:
    return ProviderHttp("vast", client, url, api_key=Secret(API_KEY),
                        policy=HttpPolicy(**{"backoff_base": 0.0, "max_attempts": 1, **policy}),
                        clock=ManualClock())


async def test_bug1_malformed_json_error_echoes_the_key(server: LoopbackServer) -> None:
    server.default = Reply.text(f"<html>invalid key {API_KEY}</html>")
    async with httpx.AsyncClient() as client:
        with pytest.raises(ProviderError) as caught:
            await http_for(server.url, client).request_json("GET", "/x")
    assert API_KEY not in str(caught.value)


async def test_bug2_truncating_before_redacting_leaks_a_key_prefix(server: LoopbackServer) -> None:
    server.default = Reply.text("x" * 190 + API_KEY, status=401)
    async with httpx.AsyncClient() as client:
        with pytest.raises(ProviderError) as caught:
            await http_for(server.url, client).request("GET", "/x")
    assert API_KEY[:10] not in str(caught.value)


async def test_bug3_undecodable_body_escapes_as_a_raw_httpx_error(server: LoopbackServer) -> None:
    server.default = Reply(body=b"not gzip at all", headers={"Content-Encoding": "gzip"})
    async with httpx.AsyncClient() as client:
        with pytest.raises(ProviderError):
            await http_for(server.url, client).request("GET", "/x")


async def test_bug4_refused_connection_is_not_called_refused() -> None:
    port = refused_port()
    async with httpx.AsyncClient() as client:
        with pytest.raises(ProviderError) as caught:
            await http_for(f"http://127.0.0.1:{port}", client).request("GET", "/x")
    assert str(caught.value) == f"vast: can't reach 127.0.0.1:{port}: connection refused"


@pytest.mark.parametrize("header", ["nan", "NaN", "-nan"])
def test_bug5_nan_retry_after_is_not_a_number_of_seconds(header: str) -> None:
    value = parse_retry_after(header, 0.0)
    assert value is None or math.isfinite(value)


async def test_bug6_half_open_lets_every_concurrent_caller_through(server: LoopbackServer) -> None:
    server.default = Reply(status=503, delay=0.05)
    clock = ManualClock()
    async with httpx.AsyncClient() as client:
        http = ProviderHttp("vast", client, server.url, policy=HttpPolicy(
            max_attempts=1, breaker_threshold=1, breaker_cooldown=10.0), clock=clock)
        with pytest.raises(ProviderError):
            await http.request("GET", "/x")
        await clock.advance(10.0)
        results = await asyncio.gather(*(http.request("GET", "/x") for _ in range(5)), return_exceptions=True)
    assert all(isinstance(r, ProviderError) for r in results)
    assert server.count == 2  # one probe, not five


async def test_bug6_fix_a_cancelled_probe_frees_the_slot(server: LoopbackServer) -> None:
    server.default = Reply(status=503)
    clock = ManualClock()
    async with httpx.AsyncClient() as client:
        http = ProviderHttp("vast", client, server.url, policy=HttpPolicy(
            max_attempts=1, breaker_threshold=1, breaker_cooldown=10.0), clock=clock)
        with pytest.raises(ProviderError):
            await http.request("GET", "/x")
        await clock.advance(10.0)
        server.default = Reply(status=200, delay=5.0)
        probe = asyncio.ensure_future(http.request("GET", "/x"))
        for _ in range(200):
            if server.count == 2:
                break
            await asyncio.sleep(0.01)
        probe.cancel()
        with pytest.raises(asyncio.CancelledError):
            await probe
        server.default = Reply(status=200)
        assert (await http.request("GET", "/x")).status_code == 200


async def test_a_rate_limit_storm_never_opens_the_circuit() -> None:
    from computehub_tui.clock import ManualClock
    from computehub_tui.providers.base import RateLimitedError
    from computehub_tui.providers.http import HttpPolicy, ProviderHttp

    calls = []

    def throttled(request: httpx.Request) -> httpx.Response:
        calls.append(request)
        return httpx.Response(429, text="API requests too frequent: endpoint threshold=30")

    async with httpx.AsyncClient(transport=httpx.MockTransport(throttled)) as client:
        http = ProviderHttp("vast", client, "https://console.vast.ai", clock=ManualClock(),
                            policy=HttpPolicy(breaker_threshold=3))
        for _ in range(10):
            http.rate_limited_until = 0.0  # as if the wait had passed
            with pytest.raises(RateLimitedError):
                await http.request("GET", "/api/v0/instances/")
    assert len(calls) == 10
    assert http.breaker.state == "closed"
    assert http.health == "rate-limited"
