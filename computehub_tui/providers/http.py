"""Shared HTTP layer for adapters: timeouts, safe retries, Retry-After, pacing, circuit breaker,
body caps, and the one HTTP status → typed error mapping."""

from __future__ import annotations

import asyncio
import codecs
import math
import random
import re
import socket
import zlib
from collections.abc import AsyncIterator, Callable, Collection, Iterator
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime
from typing import Any

import httpx

from computehub_tui.clock import Clock, SystemClock
from computehub_tui.domain.secret import Secret, redact
from computehub_tui.domain.text import clean_text
from computehub_tui.providers.base import (
    AuthError,
    CircuitOpenError,
    NotFoundError,
    OutcomeUnknownError,
    ProtocolError,
    ProviderError,
    RateLimitedError,
    ReplyTooLargeError,
    RequestRejectedError,
    UnavailableError,
)
from computehub_tui.providers.payload import UNREADABLE_JSON, json_or_none

RETRYABLE_STATUS = frozenset({429, 500, 502, 503, 504})
MAX_RETRY_AFTER = 3600.0
RATE_LIMIT_FIRST_WAIT_S = 2.0
RATE_LIMIT_BACKOFF_S = 10.0
RATE_LIMIT_BACKOFF_CAP_S = 160.0
SHORT_HOLD = 5.0
"""Longer provider-imposed waits fail fast instead of sleeping inside a call."""
_THRESHOLD = re.compile(r"threshold\s*=\s*([0-9]+(?:\.[0-9]+)?)")
ERROR_TEXT_LIMIT = 300
"""Longest provider error text quoted in a message."""
MB = 1 << 20
MAX_ENCODED_BODY = 32 * MB
"""Largest compressed reply read. JSON listings compress 5–20×, so this is far above any real one."""
MAX_DECODED_BODY = 64 * MB
"""Largest reply after decompression; a 20,000-row Vast offer listing is about 30 MB."""
INFLATE_STEP = 256 * 1024
"""Most bytes one decompression step may produce, so memory never runs far past the cap."""
ACCEPTED_ENCODINGS = "gzip, deflate"
"""Only encodings we can inflate with a ceiling; br and zstd are never asked for."""


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
    max_encoded_body: int = MAX_ENCODED_BODY
    max_decoded_body: int = MAX_DECODED_BODY


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


def clamp_retry_after(seconds: float | None) -> float | None:
    """The one rule for a provider-imposed wait: never negative, never more than an hour."""
    if seconds is None or math.isnan(seconds):
        return None
    return min(max(seconds, 0.0), MAX_RETRY_AFTER)


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
        except (TypeError, ValueError, IndexError, OverflowError):
            return None
    return clamp_retry_after(seconds)


def retry_after_from(response: httpx.Response, now: float) -> float | None:
    """Retry-After if sent; otherwise Vast's "endpoint threshold=4.5" text (seconds between calls).
    Either is clamped."""
    header = parse_retry_after(response.headers.get("retry-after"), now)
    if header is not None:
        return header
    return threshold_in(response.text[:500])


def threshold_in(text: str) -> float | None:
    """Vast's "endpoint threshold=4.5" (seconds between calls), clamped like Retry-After."""
    match = _THRESHOLD.search(text)
    return clamp_retry_after(float(match.group(1))) if match else None


def error_text(response: httpx.Response) -> str:
    """The provider's human message from whichever common error shape it used, else a short body;
    one safe line without secrets. An HTML error page says nothing a user can act on, so it is
    reported by its status."""
    try:
        body: Any = response.json()
    except UNREADABLE_JSON:
        text = readable(response.text)
        if text and not text.startswith("<"):
            return text
        return response.reason_phrase or f"HTTP {response.status_code}"
    return readable(_message_from(body)) or f"HTTP {response.status_code}"


def readable(text: str, limit: int = ERROR_TEXT_LIMIT) -> str:
    """Provider error text as one safe, bounded line with every known secret masked."""
    return redact(clean_text(text, limit))


def _message_from(body: Any) -> str:
    if isinstance(body, dict):
        error = body.get("error")
        if isinstance(error, dict):  # Lambda {"error": {"code", "message", "suggestion"}}
            parts = [_text(error.get("message")) or _text(error.get("code"))]
            parts.append(_text(error.get("suggestion")))
            return " — ".join(p for p in parts if p)
        errors = body.get("errors")
        if isinstance(errors, list) and errors:  # GraphQL
            first = errors[0]
            return _text(first.get("message")) if isinstance(first, dict) else _text(first)
        for key in ("msg", "message", "detail", "title"):
            if _text(body.get(key)):
                return _text(body[key])
        return _text(error)
    return _text(body)


def _text(value: Any) -> str:
    return clean_text(value, ERROR_TEXT_LIMIT)


# -- status → typed error --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ErrorReply:
    """What a failed call said: its HTTP status (None for an error inside a successful reply), the
    provider's error code ("" when it sent none) and its message as one safe line."""

    status: int | None
    code: str
    message: str


@dataclass(frozen=True, slots=True)
class ErrorRule:
    """One way a provider says what went wrong, and the typed error that means.

    A reply matches by any one of: its error code in ``codes``, its status in ``statuses``, or
    ``phrase`` found in its message. ``wording`` builds the error's message from ``{message}``,
    ``{status}`` and ``{credential}``."""

    error: type[ProviderError]
    wording: str
    codes: Collection[str] = ()
    statuses: Collection[int] = ()
    phrase: re.Pattern[str] | None = None

    def matches(self, reply: ErrorReply) -> bool:
        return (
            (bool(reply.code) and reply.code in self.codes)
            or reply.status in self.statuses
            or (self.phrase is not None and self.phrase.search(reply.message) is not None)
        )

    def error_for(self, provider: str, reply: ErrorReply, credential: str, context: str = "") -> ProviderError:
        """The typed error; ``context`` ("launching offer 12") leads its message."""
        message = self.wording.format(message=reply.message, status=reply.status, credential=credential)
        return self.error(provider, f"{context}: {message}" if context else message)


SERVER_STATUSES = frozenset(range(500, 600))
KEY_REJECTED = ErrorRule(AuthError, "{credential} rejected (HTTP {status}: {message})", statuses=(401, 403))
NOT_FOUND = ErrorRule(NotFoundError, "not found (HTTP {status}: {message})", statuses=(404, 410))
SERVER_ERROR = ErrorRule(UnavailableError, "server error HTTP {status}: {message}", statuses=SERVER_STATUSES)
STATUS_RULES: tuple[ErrorRule, ...] = (KEY_REJECTED, NOT_FOUND, SERVER_ERROR)
"""The one HTTP status → typed error mapping, for what a provider's own rules leave unnamed. Any
other failure status (400, 409 conflict, 422 validation, …) is a rejected request; 429 is
``rate_limited``."""
REJECTED = ErrorRule(RequestRejectedError, "request rejected (HTTP {status}: {message})")


def _no_code_or_message(body: Any) -> tuple[str, str]:
    return "", ""


@dataclass(frozen=True, slots=True)
class ErrorDialect:
    """How one provider words its failures; everything else about them is shared.

    ``read`` finds the error code and a safe message in a reply's JSON (an empty message falls back
    to ``error_text``). A 429 is a rate limit and a 5xx a server error whatever the body says. For
    anything else ``rules`` say which codes, phrases or statuses mean which typed error; the first
    match wins, ahead of STATUS_RULES, because a provider's own code is more precise than its status
    (Lambda may answer "no capacity" with a 403). ``in_reply`` words an error inside a successful
    reply that no rule names."""

    rules: tuple[ErrorRule, ...] = ()
    read: Callable[[Any], tuple[str, str]] = _no_code_or_message
    credential: str = "API key"
    in_reply: ErrorRule = ErrorRule(RequestRejectedError, "request rejected ({message})")

    def reply(self, response: httpx.Response) -> ErrorReply:
        """What a failed HTTP reply says, read in this provider's words."""
        code, message = self.read(json_or_none(response))
        return ErrorReply(response.status_code, code, message or error_text(response))

    def reply_error(self, provider: str, response: httpx.Response, now: float) -> ProviderError:
        """A failed HTTP reply as one typed error."""
        reply = self.reply(response)
        if reply.status == 429:
            return rate_limited(provider, response, reply.message, now)
        if reply.status in SERVER_STATUSES:
            # The provider's own trouble, whatever its body says; and a call that may have run.
            return SERVER_ERROR.error_for(provider, reply, self.credential)
        return self.error(provider, reply)

    def error(self, provider: str, reply: ErrorReply, context: str = "") -> ProviderError:
        rule = next((rule for rule in (*self.rules, *STATUS_RULES) if rule.matches(reply)), None)
        if rule is None:
            rule = self.in_reply if reply.status is None else REJECTED
        return rule.error_for(provider, reply, self.credential, context)


def rate_limited(provider: str, response: httpx.Response, message: str, now: float) -> RateLimitedError:
    """A 429 with its clamped Retry-After (or Vast's threshold text) as the wait, if it gave one."""
    retry_after = retry_after_from(response, now)
    hint = f"; retry in {retry_after:.1f}s" if retry_after is not None else ""
    return RateLimitedError(provider, f"rate limited ({message}){hint}", retry_after)


def describe_transport_error(
    error: httpx.TransportError, url: httpx.URL, timeout: float | None = None,
    connect_timeout: float | None = None,
) -> str:
    """One line in words a user knows, naming the host (never the path or query, which may carry a
    key); ``timeout``/``connect_timeout`` are the limits the call ran with, to say how long it waited."""
    host = url.host + (f":{url.port}" if url.port else "")
    if isinstance(error, httpx.ConnectTimeout):
        return f"can't reach {host}: timed out{_after(connect_timeout)}"
    if isinstance(error, httpx.PoolTimeout):
        return f"too many calls to {host} at once; gave up waiting{_after(timeout)}"
    if isinstance(error, httpx.TimeoutException):
        return f"{host} did not answer in time (timed out{_after(timeout)})"
    if isinstance(error, httpx.ConnectError):
        return f"can't reach {host}: {_connect_failure(error)}"
    if isinstance(error, httpx.RemoteProtocolError):
        return f"{host} closed the connection unexpectedly"
    if isinstance(error, (httpx.ReadError, httpx.WriteError)):
        return f"the connection to {host} broke off"
    return f"network error talking to {host} ({type(error).__name__})"


def _after(seconds: float | None) -> str:
    return f" after {seconds:g} s" if seconds is not None else ""


def _connect_failure(error: httpx.ConnectError) -> str:
    chain = _exception_chain(error)
    reason = " ".join(str(link) for link in chain).lower()
    if any(isinstance(link, ConnectionRefusedError) for link in chain) or "refused" in reason:
        return "connection refused"
    if "certificate" in reason:
        return "TLS certificate not trusted"
    if "ssl" in reason or "tls" in reason:
        return "TLS handshake failed"
    dns_words = ("name or service", "nodename", "getaddrinfo", "name resolution", "no address associated")
    if any(isinstance(link, socket.gaierror) for link in chain) or any(w in reason for w in dns_words):
        return "DNS lookup failed"
    if "unreachable" in reason:
        return "network unreachable"
    return "connection failed"


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


# -- body caps ------------------------------------------------------------------------------------


class _Inflater:
    """Streams gzip or deflate a bounded step at a time, so a compression bomb is refused once the
    cap is passed instead of being expanded whole."""

    def __init__(self, encoding: str) -> None:
        self._deflate = encoding == "deflate"
        self._started = False
        self._engine = self._new_engine()

    def _new_engine(self, raw: bool = False) -> Any:
        if raw:
            return zlib.decompressobj(-zlib.MAX_WBITS)
        return zlib.decompressobj(zlib.MAX_WBITS if self._deflate else zlib.MAX_WBITS | 16)

    def feed(self, data: bytes) -> Iterator[bytes]:
        """Inflate ``data`` in pieces of at most INFLATE_STEP bytes; the caller stops pulling (and
        so stops the inflating) as soon as it has too much."""
        while data:
            piece = self._inflate(data, INFLATE_STEP)
            if piece:
                yield piece
            if self._engine.unconsumed_tail:
                data = self._engine.unconsumed_tail
            elif self._engine.eof and self._engine.unused_data:  # another gzip member follows
                data, self._engine = self._engine.unused_data, self._new_engine()
            else:
                data = b""

    def _inflate(self, data: bytes, max_length: int) -> bytes:
        try:
            piece: bytes = self._engine.decompress(data, max_length)
        except zlib.error:
            if not (self._deflate and not self._started):
                raise
            # Some servers send raw deflate without the zlib header the standard asks for.
            self._engine = self._new_engine(raw=True)
            piece = self._engine.decompress(data, max_length)
        self._started = True
        return piece


def _inflater_for(provider: str, headers: httpx.Headers) -> _Inflater | None:
    encodings = [
        token.strip().lower()
        for token in headers.get("content-encoding", "").split(",")
        if token.strip() and token.strip().lower() != "identity"
    ]
    if not encodings:
        return None
    if len(encodings) > 1 or encodings[0] not in ("gzip", "x-gzip", "deflate"):
        named = clean_text(", ".join(encodings), 40)
        raise ProtocolError(provider, f"reply uses a content encoding we do not read ({named})")
    return _Inflater(encodings[0])


class _CappedBody:
    """Counts a streamed body against the encoded and decoded caps and inflates it.

    A response built in memory (MockTransport in tests and the demo) arrives already read and
    decoded; only its decoded size is checked."""

    def __init__(self, provider: str, response: httpx.Response, policy: HttpPolicy,
                 max_decoded: int | None) -> None:
        self.provider = provider
        self.prebuilt = response.is_stream_consumed
        self.inflater = None if self.prebuilt else _inflater_for(provider, response.headers)
        self.max_decoded = max_decoded or policy.max_decoded_body
        self.max_received = policy.max_encoded_body if self.inflater else self.max_decoded
        self.received = 0
        self.decoded = 0
        length = response.headers.get("content-length", "")
        if not self.prebuilt and length.isdigit() and int(length) > self.max_received:
            self._refuse()

    async def chunks(self, response: httpx.Response) -> AsyncIterator[bytes]:
        """The decoded body piece by piece, refusing it once a cap is passed."""
        if self.prebuilt:
            for piece in self.feed(response.content):
                yield piece
            return
        async for chunk in response.aiter_raw():
            for piece in self.feed(chunk):
                yield piece

    def feed(self, chunk: bytes) -> Iterator[bytes]:
        self.received += len(chunk)
        if self.received > self.max_received:
            self._refuse()
        pieces = self.inflater.feed(chunk) if self.inflater else iter((chunk,))
        try:
            for piece in pieces:
                self.decoded += len(piece)
                if self.decoded > self.max_decoded:
                    self._refuse(decoded=True)
                yield piece
        except zlib.error:
            raise ProtocolError(self.provider, "unreadable reply (corrupt compressed body)") from None

    def _refuse(self, decoded: bool = False) -> None:
        if self.inflater is None or decoded:
            raise ReplyTooLargeError(
                self.provider, f"reply too large (over {self.max_decoded / MB:g} MB decoded); refusing it"
            )
        raise ReplyTooLargeError(
            self.provider, f"reply too large (over {self.max_received / MB:g} MB compressed); refusing it"
        )


async def read_capped(response: httpx.Response, provider: str, policy: HttpPolicy,
                      max_decoded: int | None = None) -> httpx.Response:
    """The streamed ``response`` read whole within the body caps, as an ordinary decoded response.
    Raises ReplyTooLargeError as soon as a cap is passed."""
    body = _CappedBody(provider, response, policy, max_decoded)
    if body.prebuilt:
        for _ in body.feed(response.content):
            pass
        return response
    # Pieces, joined once at the end: a refused body never costs more than the cap in memory.
    pieces = [chunk async for chunk in body.chunks(response)]
    headers = [(name, value) for name, value in response.headers.multi_items()
               if name.lower() not in ("content-encoding", "content-length", "transfer-encoding")]
    return httpx.Response(response.status_code, headers=headers, content=b"".join(pieces),
                          request=response.request, extensions=response.extensions)


async def capped_lines(response: httpx.Response, provider: str, policy: HttpPolicy,
                       max_decoded: int | None = None) -> AsyncIterator[str]:
    """The lines of a streamed text body (server-sent events), within the body caps; a line keeps
    a trailing carriage return. Raises ReplyTooLargeError once a cap is passed."""
    body = _CappedBody(provider, response, policy, max_decoded)
    decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
    pending = ""
    async for chunk in body.chunks(response):
        pending += decoder.decode(chunk)
        *lines, pending = pending.split("\n")
        for line in lines:
            yield line
    pending += decoder.decode(b"", final=True)
    if pending:
        yield pending


@dataclass(frozen=True, slots=True)
class _Call:
    """One logical request as ``ProviderHttp.request`` was asked to send it."""

    method: str
    path: str
    json_body: Any
    params: dict[str, Any] | None
    idempotent: bool
    endpoint: str | None
    auth: bool
    ok_statuses: tuple[int, ...]
    timeout: float | None
    max_body: int | None


class ProviderHttp:
    """One provider's HTTP access: auth header, base URL, policy and error mapping in one place.

    ``errors`` is how the provider words its failures. ``error_mapper`` lets an adapter type a reply
    its dialect cannot describe (a rate limit worded its own way); None leaves it to ``errors``.
    ``listings`` are the endpoint keys the Hub polls: a 429 on one backs off longer each time in a
    row (see ListingBackoff) instead of being retried at once.
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
        errors: ErrorDialect | None = None,
        listings: Collection[str] = (),
    ) -> None:
        self.provider = provider
        self.client = client
        self.base_url = base_url.rstrip("/")
        self.api_key = api_key
        self.policy = policy or HttpPolicy()
        self.clock = clock or SystemClock()
        self.error_mapper = error_mapper
        self.errors = errors or ErrorDialect()
        self.listings = frozenset(listings)
        self.listing_backoff = ListingBackoff()
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
        headers = {"Accept": "application/json", "Accept-Encoding": ACCEPTED_ENCODINGS,
                   "User-Agent": "computehub-tui"}
        if auth and self.api_key:
            headers["Authorization"] = f"Bearer {self.api_key.reveal()}"
        return headers

    def describe(self, error: httpx.TransportError, url: str, timeout: float | None = None) -> str:
        """``describe_transport_error`` with this provider's time limits."""
        return describe_transport_error(error, httpx.URL(url), timeout or self.policy.timeout,
                                        self.policy.connect_timeout)

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
        max_body: int | None = None,
        outcome: str = "",
    ) -> httpx.Response:
        """Send one logical request, retrying only where that is safe; raise typed errors.

        ``max_body`` overrides the decoded body cap for this call. ``outcome`` names what a call
        that is not idempotent does ("destroy"); if it fails after it may have reached the
        provider, OutcomeUnknownError says so instead of a plain failure.
        """
        if idempotent is None:
            idempotent = method.upper() in ("GET", "HEAD", "OPTIONS")
        if not self.breaker.allow():
            raise CircuitOpenError(
                self.provider,
                f"paused after repeated failures ({self.breaker.last_error}); "
                f"retrying in {self.breaker.retry_in:.0f}s",
            )
        probe = self.breaker.probing
        call = _Call(method, path, json_body, params, idempotent, endpoint, auth, ok_statuses, timeout, max_body)
        try:
            return await self._attempts(call)
        except UnavailableError as error:
            if outcome and not idempotent and error.reached_server:
                raise OutcomeUnknownError(
                    self.provider, f"{outcome} outcome unknown ({error.message}); check Instances before retrying"
                ) from None
            raise
        finally:
            if probe:  # a probe that ended without a verdict (cancelled, held) frees the slot
                self.breaker.probing = False

    async def _attempts(self, call: _Call) -> httpx.Response:
        attempts = max(1, self.policy.max_attempts)
        url = self.url(call.path)
        endpoint = call.endpoint or f"{call.method.upper()} {call.path}"
        last_error: ProviderError | None = None
        for attempt in range(attempts):
            await self._pace(endpoint)
            self.request_count += 1
            try:
                response = await self._send(call, url)
            except httpx.TransportError as error:
                message = self.describe(error, url, call.timeout)
                unavailable = UnavailableError(self.provider, message)
                unavailable.reached_server = not _never_reached_server(error)
                last_error = unavailable
                if (call.idempotent or _never_reached_server(error)) and attempt + 1 < attempts:
                    await self.clock.sleep(self._backoff(attempt))
                    continue
                self.breaker.record_failure(message)
                raise last_error from None
            except httpx.RequestError as error:  # TooManyRedirects and the like: it did arrive
                host = httpx.URL(url).host
                raise ProtocolError(
                    self.provider, f"unreadable reply from {host} ({type(error).__name__})"
                ) from None
            if response.status_code in call.ok_statuses:
                self.breaker.record_success()
                self.listing_backoff.succeeded(endpoint)
                return response
            failure = self.error_for(response, endpoint)
            if isinstance(failure, UnavailableError):
                failure.reached_server = True
            if isinstance(failure, RateLimitedError):
                wait = failure.retry_after if failure.retry_after is not None else self._backoff(attempt)
                self.rate_limited_until = self.clock.monotonic() + wait
            retryable = response.status_code in RETRYABLE_STATUS
            long_wait = isinstance(failure, RateLimitedError) and (failure.retry_after or 0) > SHORT_HOLD
            if retryable and call.idempotent and not long_wait and attempt + 1 < attempts:
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

    async def _send(self, call: _Call, url: str) -> httpx.Response:
        request = self.client.build_request(
            call.method,
            url,
            json=call.json_body,
            params=call.params,
            headers=self.headers(call.auth),
            timeout=httpx.Timeout(call.timeout or self.policy.timeout, connect=self.policy.connect_timeout),
        )
        streamed = await self.client.send(request, stream=True)
        try:
            return await read_capped(streamed, self.provider, self.policy, call.max_body)
        finally:
            await streamed.aclose()

    async def request_json(self, method: str, path: str, **kwargs: Any) -> Any:
        response = await self.request(method, path, **kwargs)
        return self.parse_json(response)

    def parse_json(self, response: httpx.Response) -> Any:
        if response.status_code == 204 or not response.content:
            return None
        try:
            return response.json()
        except UNREADABLE_JSON:
            snippet = readable(response.text, 60)
            raise ProtocolError(
                self.provider,
                f"malformed JSON in reply (HTTP {response.status_code}, {len(response.content)} bytes: {snippet!r})",
            ) from None

    def error_for(self, response: httpx.Response, endpoint: str = "") -> ProviderError:
        """The typed error for a failed reply to ``endpoint`` (a key as pacing uses it)."""
        mapped = self.error_mapper(response) if self.error_mapper is not None else None
        error = mapped or self.errors.reply_error(self.provider, response, self.clock.now())
        if isinstance(error, RateLimitedError) and endpoint in self.listings:
            wait = self.listing_backoff.wait_after_429(endpoint, error.retry_after)
            if wait != error.retry_after:
                return RateLimitedError(self.provider, f"{error.message}; backing off {wait:g}s", wait)
        return error

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
