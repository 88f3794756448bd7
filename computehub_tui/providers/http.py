"""Shared HTTP layer for adapters: timeouts, safe retries, Retry-After, pacing, circuit breaker."""

from __future__ import annotations

import asyncio
import json
import math
import random
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime
from typing import Any

import httpx

from computehub_tui.clock import Clock, SystemClock
from computehub_tui.domain.secret import Secret, redact
from computehub_tui.providers.base import (
    AuthError,
    NotFoundError,
    ProtocolError,
    ProviderError,
    RateLimitedError,
    RequestRejectedError,
    UnavailableError,
)

RETRYABLE_STATUS = frozenset({429, 500, 502, 503, 504})
MAX_RETRY_AFTER = 3600.0
RATE_LIMIT_FIRST_WAIT_S = 2.0
RATE_LIMIT_BACKOFF_S = 10.0
RATE_LIMIT_BACKOFF_CAP_S = 160.0
SHORT_HOLD = 5.0
"""Longer provider-imposed waits fail fast instead of sleeping inside a call."""
_THRESHOLD = re.compile(r"threshold\s*=\s*([0-9]+(?:\.[0-9]+)?)")


@dataclass
class HttpPolicy:
    """Per-provider network behaviour."""

    timeout: float = 20.0
    connect_timeout: float = 6.0
    max_attempts: int = 4
    """Attempts for idempotent calls (1 = no retry)."""
    backoff_base: float = 0.5
    backoff_cap: float = 30.0
    min_interval: float = 0.0
    """Seconds between any two calls to this provider (Lambda asks for about 1 per second)."""
    endpoint_intervals: dict[str, float] = field(default_factory=dict)
    """Extra spacing per endpoint key, e.g. Vast's per-endpoint thresholds."""
    breaker_threshold: int = 5
    """Consecutive failed calls that open the circuit."""
    breaker_cooldown: float = 30.0


class ListingBackoff:
    """How long to hold off after consecutive 429s on a polled listing (Vast sends no Retry-After).

    The first 429 waits the endpoint's threshold (or 2 s), short enough that the call retries it
    at once, so a one-off collision costs nothing. From the second on the wait starts at 10 s and
    doubles: longer than ProviderHttp sleeps inside a call, so the call fails fast and the Hub
    polls again only after the wait, instead of every attempt of every poll hitting the limit.
    """

    def __init__(self) -> None:
        self._streaks: dict[str, int] = {}

    def wait_after_429(self, endpoint: str, threshold: float | None) -> float:
        streak = self._streaks.get(endpoint, 0) + 1
        self._streaks[endpoint] = streak
        if streak == 1:
            return threshold if threshold is not None else RATE_LIMIT_FIRST_WAIT_S
        backoff = min(RATE_LIMIT_BACKOFF_CAP_S, RATE_LIMIT_BACKOFF_S * 2 ** (streak - 2))
        return max(threshold or 0.0, backoff)

    def succeeded(self, endpoint: str) -> None:
        self._streaks.pop(endpoint, None)


class CircuitBreaker:
    """Fails fast after repeated failures so a dead provider costs nothing; retries after cooldown."""

    def __init__(self, threshold: int, cooldown: float, clock: Clock) -> None:
        self.threshold = threshold
        self.cooldown = cooldown
        self._clock = clock
        self.failures = 0
        self.opened_at: float | None = None
        self.last_error: str = ""
        self.probing = False

    def allow(self) -> bool:
        """Closed: yes. Open: no. Half-open: only the first caller, as the probe."""
        state = self.state
        if state == "open" or (state == "half-open" and self.probing):
            return False
        self.probing = state == "half-open"
        return True

    @property
    def state(self) -> str:
        if self.opened_at is None:
            return "closed"
        if self._clock.monotonic() - self.opened_at >= self.cooldown:
            return "half-open"
        return "open"

    @property
    def retry_in(self) -> float:
        if self.opened_at is None:
            return 0.0
        return max(0.0, self.cooldown - (self._clock.monotonic() - self.opened_at))

    def record_success(self) -> None:
        self.probing = False
        self.failures = 0
        self.opened_at = None
        self.last_error = ""

    def record_failure(self, message: str) -> None:
        self.probing = False
        self.failures += 1
        self.last_error = message
        if self.failures >= self.threshold or self.state == "half-open":
            self.opened_at = self._clock.monotonic()


def parse_retry_after(value: str | None, now: float) -> float | None:
    """Seconds to wait from a Retry-After header (delay-seconds or an HTTP date), clamped."""
    if not value:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        try:
            seconds = parsedate_to_datetime(value).timestamp() - now
        except (TypeError, ValueError, IndexError):
            return None
    if math.isnan(seconds):
        return None
    return min(max(seconds, 0.0), MAX_RETRY_AFTER)


def retry_after_from(response: httpx.Response, now: float) -> float | None:
    """Retry-After if sent; otherwise Vast's "endpoint threshold=4.5" text (seconds between calls)."""
    header = parse_retry_after(response.headers.get("retry-after"), now)
    if header is not None:
        return header
    match = _THRESHOLD.search(response.text[:500])
    return float(match.group(1)) if match else None


def error_text(response: httpx.Response) -> str:
    """The provider's human message from whichever error shape it used, else a short body."""
    try:
        body: Any = response.json()
    except (json.JSONDecodeError, UnicodeDecodeError, ValueError):
        text = redact(" ".join(response.text.split()))[:200]
        return text or response.reason_phrase or f"HTTP {response.status_code}"
    return redact(_message_from(body))[:200] or f"HTTP {response.status_code}"


def _message_from(body: Any) -> str:
    if isinstance(body, dict):
        error = body.get("error")
        if isinstance(error, dict):  # Lambda {"error": {"code", "message", "suggestion"}}
            parts = [str(error.get("message") or error.get("code") or "")]
            if error.get("suggestion"):
                parts.append(str(error["suggestion"]))
            return " — ".join(p for p in parts if p)
        errors = body.get("errors")
        if isinstance(errors, list) and errors:  # GraphQL
            first = errors[0]
            return str(first.get("message", first)) if isinstance(first, dict) else str(first)
        for key in ("msg", "message", "detail", "title"):
            if body.get(key):
                return str(body[key])
        if isinstance(error, str) and error:
            return error
    if isinstance(body, str):
        return body
    return ""


def describe_transport_error(error: httpx.TransportError, url: httpx.URL) -> str:
    """One line naming the host (never the path or query, which may carry a key)."""
    host = url.host + (f":{url.port}" if url.port else "")
    if isinstance(error, httpx.ConnectTimeout):
        return f"timed out connecting to {host}"
    if isinstance(error, httpx.TimeoutException):
        return f"{host} did not answer in time"
    if isinstance(error, httpx.ConnectError):
        chain = _exception_chain(error)
        if any(isinstance(link, ConnectionRefusedError) for link in chain):
            return f"connection to {host} refused"
        reason = " ".join(str(link) for link in chain).lower()
        if "certificate" in reason or "ssl" in reason or "tls" in reason:
            return f"TLS error talking to {host} (certificate not trusted?)"
        if "name or service" in reason or "nodename" in reason or "getaddrinfo" in reason:
            return f"cannot resolve {host}"
        if "refused" in reason:
            return f"connection to {host} refused"
        return f"cannot connect to {host}"
    if isinstance(error, httpx.RemoteProtocolError):
        return f"{host} closed the connection unexpectedly"
    return f"network error talking to {host} ({type(error).__name__})"


def _exception_chain(error: BaseException) -> list[BaseException]:
    """The error and its causes (anyio hides ConnectionRefusedError behind a generic OSError)."""
    chain: list[BaseException] = []
    link: BaseException | None = error
    while link is not None and len(chain) < 8:
        chain.append(link)
        link = link.__cause__ or link.__context__
    return chain


def _never_reached_server(error: httpx.TransportError) -> bool:
    return isinstance(error, (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout))


class ProviderHttp:
    """One provider's HTTP access: auth header, base URL, policy and error mapping in one place.

    ``error_mapper`` lets an adapter turn a provider-specific error response into a better typed
    error before the generic status mapping applies.
    """

    def __init__(
        self,
        provider: str,
        client: httpx.AsyncClient,
        base_url: str,
        api_key: Secret | None = None,
        policy: HttpPolicy | None = None,
        clock: Clock | None = None,
        error_mapper: Callable[[httpx.Response], ProviderError | None] | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self.provider = provider
        self.client = client
        self.base_url = base_url.rstrip("/")
        self.api_key = api_key
        self.policy = policy or HttpPolicy()
        self.clock = clock or SystemClock()
        self.error_mapper = error_mapper
        self.breaker = CircuitBreaker(self.policy.breaker_threshold, self.policy.breaker_cooldown, self.clock)
        self.rate_limited_until = 0.0
        """Monotonic time before which the provider asked us to hold off."""
        self.request_count = 0
        self._rng = rng or random.Random()
        self._next_allowed: dict[str, float] = {}
        self._pace_locks: dict[str, asyncio.Lock] = {}

    @property
    def health(self) -> str:
        """``ok``, ``rate-limited``, ``circuit-open`` or ``failing`` for the UI."""
        if self.breaker.state == "open":
            return "circuit-open"
        if self.clock.monotonic() < self.rate_limited_until:
            return "rate-limited"
        if self.breaker.failures:
            return "failing"
        return "ok"

    def url(self, path: str) -> str:
        if path.startswith(("http://", "https://")):
            return path
        return f"{self.base_url}/{path.lstrip('/')}"

    def headers(self, auth: bool = True) -> dict[str, str]:
        headers = {"Accept": "application/json", "User-Agent": "computehub-tui"}
        if auth and self.api_key:
            headers["Authorization"] = f"Bearer {self.api_key.reveal()}"
        return headers

    async def request(
        self,
        method: str,
        path: str,
        *,
        json_body: Any = None,
        params: dict[str, Any] | None = None,
        idempotent: bool | None = None,
        endpoint: str | None = None,
        auth: bool = True,
        ok_statuses: tuple[int, ...] = (200, 201, 202, 204),
        timeout: float | None = None,
    ) -> httpx.Response:
        """Send one logical request, retrying only where that is safe; raise typed errors."""
        if idempotent is None:
            idempotent = method.upper() in ("GET", "HEAD", "OPTIONS")
        if not self.breaker.allow():
            raise UnavailableError(
                self.provider,
                f"paused after repeated failures ({self.breaker.last_error}); "
                f"retrying in {self.breaker.retry_in:.0f}s",
            )
        probe = self.breaker.probing
        try:
            return await self._attempts(
                method, path, json_body, params, idempotent, endpoint, auth, ok_statuses, timeout
            )
        finally:
            if probe:  # a probe that ended without a verdict (cancelled, held) frees the slot
                self.breaker.probing = False

    async def _attempts(
        self,
        method: str,
        path: str,
        json_body: Any,
        params: dict[str, Any] | None,
        idempotent: bool,
        endpoint: str | None,
        auth: bool,
        ok_statuses: tuple[int, ...],
        timeout: float | None,
    ) -> httpx.Response:
        attempts = max(1, self.policy.max_attempts)
        url = self.url(path)
        last_error: ProviderError | None = None
        for attempt in range(attempts):
            await self._pace(endpoint or f"{method.upper()} {path}")
            self.request_count += 1
            try:
                response = await self.client.request(
                    method,
                    url,
                    json=json_body,
                    params=params,
                    headers=self.headers(auth),
                    timeout=httpx.Timeout(timeout or self.policy.timeout, connect=self.policy.connect_timeout),
                )
            except httpx.TransportError as error:
                message = describe_transport_error(error, httpx.URL(url))
                last_error = UnavailableError(self.provider, message)
                if (idempotent or _never_reached_server(error)) and attempt + 1 < attempts:
                    await self.clock.sleep(self._backoff(attempt))
                    continue
                self.breaker.record_failure(message)
                raise last_error from None
            except httpx.RequestError as error:  # DecodingError, TooManyRedirects: it did arrive
                host = httpx.URL(url).host
                raise ProtocolError(
                    self.provider, f"unreadable reply from {host} ({type(error).__name__})"
                ) from None
            if response.status_code in ok_statuses:
                self.breaker.record_success()
                return response
            failure = self._error_for(response)
            if isinstance(failure, RateLimitedError):
                wait = failure.retry_after if failure.retry_after is not None else self._backoff(attempt)
                self.rate_limited_until = self.clock.monotonic() + wait
            retryable = response.status_code in RETRYABLE_STATUS
            long_wait = isinstance(failure, RateLimitedError) and (failure.retry_after or 0) > SHORT_HOLD
            if retryable and idempotent and not long_wait and attempt + 1 < attempts:
                wait = self._backoff(attempt)
                if isinstance(failure, RateLimitedError) and failure.retry_after is not None:
                    wait = failure.retry_after + self._rng.uniform(0, 0.25)
                last_error = failure
                await self.clock.sleep(wait)
                continue
            if isinstance(failure, RateLimitedError):
                # Throttled is not down: the backoff handles it, and a long storm must not show
                # the provider as circuit-open.
                self.breaker.probing = False
            elif retryable:
                self.breaker.record_failure(failure.message)
            else:
                self.breaker.record_success()  # the provider is up; it just said no
            raise failure
        assert last_error is not None
        raise last_error

    async def request_json(self, method: str, path: str, **kwargs: Any) -> Any:
        response = await self.request(method, path, **kwargs)
        return self.parse_json(response)

    def parse_json(self, response: httpx.Response) -> Any:
        if response.status_code == 204 or not response.content:
            return None
        try:
            return response.json()
        except (json.JSONDecodeError, UnicodeDecodeError, ValueError):
            snippet = redact(" ".join(response.text.split()))[:60]
            raise ProtocolError(
                self.provider,
                f"malformed JSON in reply (HTTP {response.status_code}, {len(response.content)} bytes: {snippet!r})",
            ) from None

    def _error_for(self, response: httpx.Response) -> ProviderError:
        if self.error_mapper is not None:
            mapped = self.error_mapper(response)
            if mapped is not None:
                return mapped
        status = response.status_code
        message = redact(error_text(response))
        if status == 429:
            retry_after = retry_after_from(response, self.clock.now())
            hint = f"; retry in {retry_after:.1f}s" if retry_after is not None else ""
            return RateLimitedError(self.provider, f"rate limited ({message}){hint}", retry_after)
        if status in (401, 403):
            return AuthError(self.provider, f"API key rejected (HTTP {status}: {message})")
        if status in (404, 410):
            return NotFoundError(self.provider, f"not found (HTTP {status}: {message})")
        if status >= 500:
            return UnavailableError(self.provider, f"server error HTTP {status}: {message}")
        return RequestRejectedError(self.provider, f"request rejected (HTTP {status}: {message})")

    def _backoff(self, attempt: int) -> float:
        """Full jitter: uniform between 0 and the capped exponential step."""
        ceiling = min(self.policy.backoff_cap, self.policy.backoff_base * (2**attempt))
        return self._rng.uniform(ceiling / 4, ceiling)

    async def _pace(self, endpoint: str) -> None:
        waits = [("*", self.policy.min_interval)]
        if endpoint in self.policy.endpoint_intervals:
            waits.append((endpoint, self.policy.endpoint_intervals[endpoint]))
        for key, interval in waits:
            if interval <= 0:
                continue
            lock = self._pace_locks.setdefault(key, asyncio.Lock())
            async with lock:
                delay = self._next_allowed.get(key, 0.0) - self.clock.monotonic()
                if delay > 0:
                    await self.clock.sleep(delay)
                self._next_allowed[key] = self.clock.monotonic() + interval
        hold = self.rate_limited_until - self.clock.monotonic()
        if hold > SHORT_HOLD:
            # Fail fast rather than freeze a caller for minutes; the poller retries later.
            raise RateLimitedError(self.provider, f"rate limited; retry in {hold:.0f}s", hold)
        if hold > 0:
            await self.clock.sleep(hold)
