"""The engine: the Hub facade and its services, the supervisor, its own thread, events and typed errors."""

from computehub_tui.providers.base import (
    AuthError,
    ConfigurationError,
    NoCapacityError,
    NotFoundError,
    ProviderError,
    RateLimitedError,
    UnavailableError,
    UnsupportedError,
)

__all__ = [
    "AuthError",
    "ConfigurationError",
    "NoCapacityError",
    "NotFoundError",
    "ProviderError",
    "RateLimitedError",
    "UnavailableError",
    "UnsupportedError",
]
