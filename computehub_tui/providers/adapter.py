"""What every marketplace adapter shares: its HTTP connection, clock, dropped-row count, and the notes
an instance gets when its provider sent something implausible."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import ClassVar, TypedDict, TypeVar

import httpx

from computehub_tui.clock import Clock, SystemClock
from computehub_tui.domain import bounds
from computehub_tui.domain.models import Offer, OfferQuery, SshEndpoint
from computehub_tui.domain.secret import Secret
from computehub_tui.providers.base import ProviderError
from computehub_tui.providers.http import ErrorDialect, HttpPolicy, ProviderHttp

IMPLAUSIBLE_PRICE = "provider sent an implausible price; not counted"
INVALID_SSH = "provider sent an invalid SSH address"

Row = TypeVar("Row")


class Connection(TypedDict, total=False):
    """How an adapter reaches its provider; every adapter takes these keywords."""

    base_url: str
    clock: Clock | None
    policy: HttpPolicy | None
    """Used as given (the demo turns pacing off); None means the provider's own default_policy()."""


class HttpAdapter:
    """The plumbing of an adapter over HTTP; a subclass says what its provider's API looks like.

    The caller owns the ``httpx.AsyncClient`` (one pooled client serves every adapter), so closing
    an adapter never closes it.
    """

    name: str
    default_base_url: ClassVar[str]
    errors: ClassVar[ErrorDialect] = ErrorDialect()
    """How the provider words its failures (codes, phrases, shapes)."""
    listings: ClassVar[frozenset[str]] = frozenset()
    """Endpoint keys the Hub polls; a rate-limited poll backs off rather than retrying at once."""
    make_policy: ClassVar[Callable[[], HttpPolicy]] = HttpPolicy
    """The provider's own network policy (pacing, timeouts), for when the caller passes none."""

    def __init__(
        self,
        client: httpx.AsyncClient,
        api_key: Secret | None,
        *,
        base_url: str | None = None,
        clock: Clock | None = None,
        policy: HttpPolicy | None = None,
    ) -> None:
        self.clock: Clock = clock or SystemClock()
        self.dropped_rows = 0
        self.http = ProviderHttp(
            self.name,
            client,
            base_url or self.default_base_url,
            api_key=api_key,
            policy=policy or type(self).make_policy(),
            clock=self.clock,
            error_mapper=self.typed_reply,
            errors=self.errors,
            listings=self.listings,
        )

    def typed_reply(self, response: httpx.Response) -> ProviderError | None:
        """A failed reply typed in a way ``errors`` cannot say; None leaves it to ``errors``."""
        return None

    async def aclose(self) -> None:
        """Nothing to release: the caller owns the HTTP client."""

    def plausible(self, rows: Iterable[Row], implausible: Callable[[Row], bool]) -> list[Row]:
        """``rows`` without the implausible ones (e.g. a GPU count outside 1..64), which
        ``dropped_rows`` then counts."""
        every = list(rows)
        kept = [row for row in every if not implausible(row)]
        self.dropped_rows = len(every) - len(kept)
        return kept


def checked_price(price: float | None, gpus: int, notes: list[str], *, sent: bool = True) -> float:
    """The billed $/h if it is plausible for ``gpus`` GPUs, else 0.0 (never ranked or summed) with a
    note saying so, where the provider ``sent`` a price at all."""
    billed = bounds.billed_price(price, gpus)
    if billed is None and sent:
        notes.append(IMPLAUSIBLE_PRICE)
    return billed or 0.0


def checked_ssh(ssh: SshEndpoint | None, offered: bool, notes: list[str]) -> SshEndpoint | None:
    """``ssh`` as parsed; where the provider ``offered`` an address that is not valid, a note says so."""
    if ssh is None and offered:
        notes.append(INVALID_SSH)
    return ssh


def offers_matching(offers: Iterable[Offer], query: OfferQuery) -> list[Offer]:
    """The offers ``query`` asks for, at most its limit, for providers that cannot filter themselves."""
    return [offer for offer in offers if query.matches(offer)][: query.limit]
