"""The Provider protocol every marketplace adapter implements, and the typed errors it raises."""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from computehub_tui.domain.models import Capabilities, Instance, LaunchSpec, Offer, OfferQuery
from computehub_tui.domain.secret import redact
from computehub_tui.domain.text import clean_text

MESSAGE_LIMIT = 600
"""Longest error message; provider text inside it is already bounded tighter where it is read."""


class ProviderError(Exception):
    """A provider call failed. ``str(error)`` is one readable line with no secrets in it.

    The message is cleaned and redacted here too, the last guard for text a provider sent."""

    kind = "error"

    def __init__(self, provider: str, message: str) -> None:
        message = redact(clean_text(message, MESSAGE_LIMIT))
        super().__init__(f"{provider}: {message}")
        self.provider = provider
        self.message = message


class AuthError(ProviderError):
    """The API key is missing, wrong, revoked or lacks the needed scope."""

    kind = "auth"


class RateLimitedError(ProviderError):
    """The provider said "too many requests"; ``retry_after`` is seconds to wait, if known."""

    kind = "rate-limited"

    def __init__(self, provider: str, message: str, retry_after: float | None = None) -> None:
        super().__init__(provider, message)
        self.retry_after = retry_after


class NotFoundError(ProviderError):
    """The instance or offer does not exist (any more)."""

    kind = "not-found"


class NoCapacityError(ProviderError):
    """The offer is gone or the provider has no machine left for it."""

    kind = "no-capacity"


class UnavailableError(ProviderError):
    """The provider could not be reached, timed out, or answered with a server error."""

    kind = "unavailable"
    reached_server = False
    """Set when the request may have reached the provider: it answered, or the connection broke
    after the request was sent (so a change it asked for may have happened)."""


class CircuitOpenError(UnavailableError):
    """Calls are paused after repeated failures; nothing was sent."""


class OutcomeUnknownError(UnavailableError):
    """A call that changes something may have reached the provider before the failure; whether it
    took effect is unknown, so the user must look before retrying."""


class ProtocolError(ProviderError):
    """The provider answered with something we cannot parse (malformed JSON, missing fields)."""

    kind = "protocol"


class ReplyTooLargeError(ProtocolError):
    """The reply passed a body cap and was refused before it was read (or decompressed) whole."""


class UnsupportedError(ProviderError):
    """The provider has no such operation (e.g. Lambda cannot stop an instance)."""

    kind = "unsupported"


class ConfigurationError(ProviderError):
    """Something the user must configure first (e.g. Lambda's SSH key name)."""

    kind = "config"


class RequestRejectedError(ProviderError):
    """The provider refused the request as invalid (bad image, bad bid, bad state)."""

    kind = "rejected"


@runtime_checkable
class Provider(Protocol):
    """A GPU marketplace account. Every method is async and raises ProviderError subclasses."""

    name: str
    """Short stable name used in instance keys: ``vast``, ``runpod``, ``lambda``, ``tensordock``."""
    title: str
    capabilities: Capabilities
    dropped_rows: int
    """Rows the last listing call (offers or instances) dropped as implausible, e.g. a GPU count
    outside 1..64; set when the call returns, so read it right after awaiting it."""

    async def list_offers(self, query: OfferQuery) -> list[Offer]: ...

    async def list_instances(self) -> list[Instance]: ...

    async def launch(self, offer: Offer, spec: LaunchSpec) -> str:
        """Rent ``offer``; returns the new instance id (without the provider prefix)."""
        ...

    async def start(self, instance_id: str) -> None: ...

    async def stop(self, instance_id: str) -> None: ...

    async def restart(self, instance_id: str) -> None: ...

    async def destroy(self, instance_id: str) -> None: ...

    async def logs(self, instance_id: str, tail: int = 200) -> str: ...

    async def check_auth(self) -> None:
        """A cheap authenticated call; raises AuthError on a bad key."""
        ...

    async def aclose(self) -> None: ...
