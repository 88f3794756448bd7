"""Loopback fakes of the four marketplaces, speaking each provider's documented wire format.

Every fake wraps a ``LoopbackServer`` (real HTTP/1.1 on 127.0.0.1) whose default reply is the
fake's own dispatcher, so ``server.enqueue(...)`` and ``server.route(...)`` still override single
answers for error scripts. Payloads are written here from ``shared/reference/providers.md``.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable
from typing import Any, Self

from loopback import LoopbackServer, RecordedRequest, Reply

from fakes.utilisation import Stretch, UtilisationScript

Handler = Callable[[RecordedRequest, re.Match[str]], Reply]


class FakeMarketplace:
    """Base for one provider's fake: bearer-key check, regex routing, request inspection."""

    env_urls: dict[str, str] = {}
    """Endpoint variable → path appended to the server URL."""

    def __init__(self, *valid_keys: str) -> None:
        self.valid_keys = set(valid_keys)
        self.server = LoopbackServer(default=self._dispatch)
        self._routes: list[tuple[str, re.Pattern[str], Handler]] = []
        self.utilisation: dict[str, UtilisationScript] = {}
        """Instance id → the script its GPU utilisation follows; instances without one report what they hold."""
        self.served: list[tuple[str, Stretch]] = []
        """Each scripted reading a reply carried: (instance id, the stretch in force), errors included."""
        self._answered = threading.Condition()

    # -- lifecycle ----------------------------------------------------------------------------

    def __enter__(self) -> Self:
        self.server.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.server.stop()

    @property
    def url(self) -> str:
        return self.server.url

    def endpoint_env(self) -> dict[str, str]:
        return {variable: f"{self.url}{suffix}" for variable, suffix in self.env_urls.items()}

    # -- routing ------------------------------------------------------------------------------

    def on(self, method: str, pattern: str, handler: Handler) -> None:
        self._routes.append((method.upper(), re.compile(f"^{pattern}$"), handler))

    def unauthorized(self, request: RecordedRequest) -> Reply:
        raise NotImplementedError

    def public(self, request: RecordedRequest) -> bool:
        """Paths that need no key (e.g. a pre-signed log URL)."""
        return False

    def _dispatch(self, request: RecordedRequest) -> Reply:
        try:
            return self._route(request)
        finally:
            with self._answered:
                self._answered.notify_all()

    def _route(self, request: RecordedRequest) -> Reply:
        if not self.public(request) and self.bearer(request) not in self.valid_keys:
            return self.unauthorized(request)
        for method, pattern, handler in self._routes:
            match = pattern.match(request.path)
            if method == request.method and match:
                return handler(request, match)
        return self.not_routed(request)

    def wait_until(self, condition: Callable[[], bool], timeout: float) -> bool:
        """Block until ``condition`` holds, checked after each request is handled (a reply's delay may still
        be running); False if it still does not after ``timeout`` seconds."""
        with self._answered:
            return self._answered.wait_for(condition, timeout)

    # -- scripted utilisation -----------------------------------------------------------------

    def stretch_of(self, instance_id: object) -> Stretch | None:
        script = self.utilisation.get(str(instance_id))
        if script is None:
            return None
        stretch = script.now()
        self.served.append((str(instance_id), stretch))
        return stretch

    def failing(self) -> bool:
        """True while a scripted instance is in a stretch where the provider fails its instance list."""
        now = [(key, script.now()) for key, script in self.utilisation.items()]
        failing = [(key, stretch) for key, stretch in now if stretch.error]
        self.served.extend(failing)
        return bool(failing)

    def not_routed(self, request: RecordedRequest) -> Reply:
        return Reply.json({"detail": "Not Found"}, status=404)

    # -- inspection ---------------------------------------------------------------------------

    @staticmethod
    def bearer(request: RecordedRequest) -> str:
        header = request.headers.get("authorization", "")
        return header.removeprefix("Bearer ") if header.startswith("Bearer ") else ""

    def calls(self, method: str, path_pattern: str) -> list[RecordedRequest]:
        pattern = re.compile(f"^{path_pattern}$")
        return [r for r in self.server.requests if r.method == method and pattern.match(r.path)]

    def authorizations(self) -> set[str]:
        return {r.headers.get("authorization", "") for r in self.server.requests}


def json_body(request: RecordedRequest) -> Any:
    return request.json() if request.body else None
