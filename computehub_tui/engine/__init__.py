"""The engine: the Hub facade, polling, events and the errors callers may need to tell apart."""

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
