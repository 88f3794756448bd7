"""Test helpers for wire-format tests: a recording MockTransport handler and an instant clock."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import httpx

Route = Callable[[httpx.Request], httpx.Response]


class InstantClock:
    """A clock whose sleeps return at once but move time, so waits can be asserted."""

    def __init__(self) -> None:
        self._now = 1_790_000_000.0
        self.sleeps: list[float] = []

    def now(self) -> float:
        return self._now

    def monotonic(self) -> float:
        return self._now - 1_790_000_000.0

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self._now += max(0.0, seconds)


class Wire:
    """Records every request and answers from a route function."""

    def __init__(self, route: Route, path_prefix: str = "") -> None:
        self.route = route
        self.path_prefix = path_prefix
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        return self.route(request)

    def body(self, index: int = -1) -> Any:
        return json.loads(self.requests[index].content)

    @property
    def calls(self) -> list[tuple[str, str]]:
        """(method, path without the API prefix) of every request, in order."""
        return [(r.method, r.url.path.removeprefix(self.path_prefix)) for r in self.requests]
