"""Shared pieces for the hostile-provider tests: the hostile text, MockTransport routing, adapters
built on it, and a check that no string anywhere in an Offer or Instance can drive a terminal."""

from __future__ import annotations

import dataclasses
import struct
import unicodedata
import zlib
from collections.abc import Callable
from typing import Any

import httpx

from computehub_tui.clock import ManualClock
from computehub_tui.domain.models import Instance, Offer, SshEndpoint
from computehub_tui.domain.secret import Secret
from computehub_tui.providers.http import HttpPolicy
from computehub_tui.providers.lambdalabs import LambdaProvider
from computehub_tui.providers.runpod import RunpodProvider
from computehub_tui.providers.tensordock import TensordockProvider
from computehub_tui.providers.vastai import VastProvider

HOSTILE = (
    "\x1b]52;c;ZXZpbA==\x07"  # OSC 52: overwrite the clipboard
    "\x1b]0;pwned\x07"  # OSC 0: window title
    "\x1b[2J"  # clear the screen
    "\r"
    "\x9b31m"  # 8-bit CSI
    "\x00"
    "\u202e"  # right-to-left override
)
"""Every trick from the issue in one string."""

_UNSAFE_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"})
VISIBLE_CONTROLS = "␛"


def evil(word: str) -> str:
    """``word`` wrapped in the hostile set, so a test can see the visible part survived."""
    return f"{HOSTILE}{word}{HOSTILE}"


def unsafe_chars(text: str) -> list[str]:
    return [char for char in text if unicodedata.category(char) in _UNSAFE_CATEGORIES]


def strings_in(value: Any) -> list[str]:
    """Every string reachable in an Offer/Instance: fields, extras, ports, the SSH endpoint."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, (Offer, Instance, SshEndpoint)):
        return [text for f in dataclasses.fields(value) for text in strings_in(getattr(value, f.name))]
    if isinstance(value, dict):
        return [text for key, item in value.items() for text in strings_in(key) + strings_in(item)]
    if isinstance(value, (list, tuple)):
        return [text for item in value for text in strings_in(item)]
    return []


def assert_no_unsafe_text(values: list[Any]) -> None:
    assert values, "nothing parsed: the test would pass vacuously"
    bad = {text: unsafe_chars(text) for value in values for text in strings_in(value) if unsafe_chars(text)}
    assert bad == {}


Route = Callable[[httpx.Request], httpx.Response]


class Router:
    """A MockTransport handler: the first (method, path-part, body-part) rule that matches answers."""

    def __init__(self) -> None:
        self.rules: list[tuple[str, str, str, Route]] = []
        self.requests: list[httpx.Request] = []

    def on(self, method: str, path_part: str, answer: Route | Any, body_part: str = "") -> Router:
        route = answer if callable(answer) else (lambda _request, payload=answer: httpx.Response(200, json=payload))
        self.rules.append((method, path_part, body_part, route))
        return self

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        body = request.content.decode(errors="replace")
        for method, path_part, body_part, route in self.rules:
            if request.method == method and path_part in request.url.path and body_part in body:
                return route(request)
        return httpx.Response(404, json={"detail": "no route"})


def graphql(data: dict[str, Any]) -> dict[str, Any]:
    return {"data": data}


def quick_policy(**overrides: Any) -> HttpPolicy:
    """No pacing, one attempt: each test sees exactly the reply it scripted."""
    return HttpPolicy(endpoint_intervals={}, max_attempts=1, **overrides)


def client_for(router: Route) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.MockTransport(router))


KEYS = {
    "vast": "vastHOSTILE-3f9a27d8c4b15e60qz",
    "runpod": "rpa_HOSTILE7QK2M9X4TB8WN3VZ5X",
    "lambda": "secret_hostile-lambda_9b7d5e3c1a",
    "tensordock": "tdHOSTILE_5c0d8b2e9f1a7364kw",
}


def build(name: str, client: httpx.AsyncClient, clock: ManualClock | None = None,
          policy: HttpPolicy | None = None) -> Any:
    """One adapter of ``name`` on ``client`` with a quick policy."""
    clock = clock or ManualClock()
    policy = policy or quick_policy()
    key = Secret(KEYS[name])
    if name == "vast":
        return VastProvider(client, key, base_url="https://console.vast.ai", clock=clock, policy=policy)
    if name == "runpod":
        return RunpodProvider(client, key, graphql_url="https://api.runpod.io/graphql",
                              rest_url="https://api.runpod.io/v2", clock=clock, policy=policy, logs_timeout=5.0)
    if name == "lambda":
        return LambdaProvider(client, key, base_url="https://cloud.lambda.ai/api/v1", clock=clock, policy=policy,
                              ssh_key_name="me")
    return TensordockProvider(client, key, base_url="https://dashboard.tensordock.com/api/v2", clock=clock,
                              policy=policy, ssh_public_key="ssh-ed25519 AAAA me")


def json_number(text: str) -> httpx.Response:
    """A JSON reply whose body is written verbatim, so it can hold numbers json.dumps cannot."""
    return httpx.Response(200, content=text.encode(), headers={"content-type": "application/json"})


def gzip_bomb(decoded_mib: int) -> bytes:
    """A valid single-member gzip stream of ``decoded_mib`` MiB of zeros, about 1 KB per MiB.

    Built from full-flush blocks, which are byte-identical after the first, so it costs a CRC
    pass instead of compressing a gigabyte."""
    block = bytes(1 << 20)
    compressor = zlib.compressobj(9, zlib.DEFLATED, zlib.MAX_WBITS | 16)
    head = compressor.compress(block) + compressor.flush(zlib.Z_FULL_FLUSH)
    middle = compressor.compress(block) + compressor.flush(zlib.Z_FULL_FLUSH)
    crc = 0
    for _ in range(decoded_mib):
        crc = zlib.crc32(block, crc)
    final_empty_block = b"\x03\x00"
    trailer = struct.pack("<II", crc, (decoded_mib << 20) & 0xFFFFFFFF)
    return head + middle * (decoded_mib - 1) + final_empty_block + trailer
