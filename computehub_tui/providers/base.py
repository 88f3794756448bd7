"""The Provider protocol every marketplace adapter implements, and the typed errors it raises."""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from computehub_tui.domain.models import Capabilities, Instance, LaunchSpec, Offer, OfferQuery


class ProviderError(Exception):
    """A provider call failed. ``str(error)`` is one readable line with no secrets in it."""

    kind = "error"

    def __init__(self, provider: str, message: str) -> None:
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


class ProtocolError(ProviderError):
    """The provider answered with something we cannot parse (malformed JSON, missing fields)."""

    kind = "protocol"


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
