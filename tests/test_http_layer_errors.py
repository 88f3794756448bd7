"""One HTTP status → typed error mapping for every adapter, with each provider's own codes and words
on top, and the plumbing the adapters share (listing backoff, the caller's HTTP client)."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from hostile import Router, build, client_for, quick_policy

from computehub_tui.clock import ManualClock
from computehub_tui.domain.models import LaunchSpec, Offer, OfferQuery, PricingKind
from computehub_tui.providers.base import (
    AuthError,
    NoCapacityError,
    NotFoundError,
    OutcomeUnknownError,
    ProviderError,
    RateLimitedError,
    RequestRejectedError,
    UnavailableError,
)
from computehub_tui.providers.http import ErrorDialect, ErrorReply, ErrorRule

PROVIDERS = ("vast", "runpod", "lambda", "tensordock")
HTML_PAGE = "<html><head><title>503</title></head><body><h1>Service Unavailable</h1></body></html>"


def answering(reply: httpx.Response) -> Router:
    return answering_with(lambda _request: reply)


def answering_with(route: Callable[[httpx.Request], httpx.Response]) -> Router:
    return Router().on("GET", "/", route).on("POST", "/", route)


def adapter(name: str, router: Router, clients: list[httpx.AsyncClient]) -> Any:
    client = client_for(router)
    clients.append(client)
    return build(name, client, policy=quick_policy())


def vast_offer(ask_id: int) -> Offer:
    return Offer(provider="vast", offer_id=str(ask_id), gpu="RTX 4090", gpu_count=1, vram_gb=24.0, vcpus=8.0,
                 ram_gb=32.0, disk_gb=20.0, price_hour=0.4, pricing=PricingKind.ON_DEMAND, location="Oslo, NO",
                 reliability=0.99, available=True, quoted_at=0.0, extra={"ask_id": ask_id})


def lambda_offer() -> Offer:
    return Offer(provider="lambda", offer_id="gpu_1x_h100_sxm5@us-east-1", gpu="H100 SXM", gpu_count=1,
                 vram_gb=80.0, vcpus=26.0, ram_gb=200.0, disk_gb=1000.0, price_hour=3.29,
                 pricing=PricingKind.ON_DEMAND, location="us-east-1", reliability=None, available=True, quoted_at=0.0,
                 extra={"instance_type_name": "gpu_1x_h100_sxm5", "region_name": "us-east-1"})


# -- the shared mapping ---------------------------------------------------------------------------


@pytest.mark.parametrize("name", PROVIDERS)
@pytest.mark.parametrize(("status", "error_type", "words"), [
    (409, RequestRejectedError, "request rejected (HTTP 409: pod is busy)"),
    (422, RequestRejectedError, "request rejected (HTTP 422: pod is busy)"),
])
async def test_a_status_no_provider_explains_is_worded_the_same_by_every_adapter(
    name: str, status: int, error_type: type[ProviderError], words: str, clients: list[httpx.AsyncClient]
) -> None:
    provider = adapter(name, answering(httpx.Response(status, json={"detail": "pod is busy"})), clients)

    with pytest.raises(ProviderError) as caught:
        await provider.list_instances()

    assert type(caught.value) is error_type
    assert str(caught.value) == f"{name}: {words}"


@pytest.mark.parametrize("name", PROVIDERS)
async def test_an_html_error_page_is_reported_by_its_status_not_its_markup(
    name: str, clients: list[httpx.AsyncClient]
) -> None:
    page = httpx.Response(503, text=HTML_PAGE, headers={"content-type": "text/html"})
    provider = adapter(name, answering(page), clients)

    with pytest.raises(UnavailableError) as caught:
        await provider.list_instances()

    assert str(caught.value) == f"{name}: server error HTTP 503: Service Unavailable"


@pytest.mark.parametrize("name", PROVIDERS)
async def test_every_adapter_types_the_statuses_with_one_meaning(name: str, clients: list[httpx.AsyncClient]) -> None:
    expected = {401: AuthError, 403: AuthError, 404: NotFoundError, 410: NotFoundError, 500: UnavailableError,
                400: RequestRejectedError}
    seen = {}
    for status in expected:
        provider = adapter(name, answering(httpx.Response(status, json={"detail": "no"})), clients)
        with pytest.raises(ProviderError) as caught:
            await provider.list_instances()
        seen[status] = type(caught.value)
    assert seen == expected


async def test_a_server_error_stays_a_server_error_whatever_its_body_says(clients: list[httpx.AsyncClient]) -> None:
    body = {"success": False, "error": "invalid_args", "msg": "bad disk size"}
    vast = adapter("vast", Router().on("PUT", "/asks/", lambda _r: httpx.Response(502, json=body)), clients)

    with pytest.raises(OutcomeUnknownError, match="launch outcome unknown"):
        await vast.launch(vast_offer(5), LaunchSpec(image="img"))


# -- each provider's own words --------------------------------------------------------------------


async def test_a_lambda_error_code_decides_over_its_status(clients: list[httpx.AsyncClient]) -> None:
    # The reference notes launch may answer "no capacity" with a 403: the code must win over "forbidden".
    body = {"error": {"code": "instance-operations/launch/insufficient-capacity", "message": "Not enough capacity"}}
    lam = adapter("lambda", Router().on("POST", "/launch", lambda _r: httpx.Response(403, json=body)), clients)

    with pytest.raises(NoCapacityError, match="no capacity for this instance type"):
        await lam.launch(lambda_offer(), LaunchSpec(image=""))


async def test_vast_answers_a_bad_key_on_bundles_with_404_and_that_is_an_auth_error(
    clients: list[httpx.AsyncClient],
) -> None:
    reply = httpx.Response(404, json={"success": False, "msg": "Invalid user key"})
    vast = adapter("vast", Router().on("POST", "/bundles/", lambda _r: reply), clients)

    with pytest.raises(AuthError, match="API key rejected"):
        await vast.list_offers(OfferQuery())


async def test_renting_a_vast_offer_that_vanished_names_the_offer(clients: list[httpx.AsyncClient]) -> None:
    # Vast also says so inside a 200 reply, without repeating the offer's id.
    body = {"success": False, "error": "no_such_ask", "msg": "error 404/3603: no_such_ask Instance type is gone."}
    vast = adapter("vast", Router().on("PUT", "/asks/", lambda _r: httpx.Response(200, json=body)), clients)

    with pytest.raises(NoCapacityError) as caught:
        await vast.launch(vast_offer(18812345), LaunchSpec(image="img"))

    assert str(caught.value) == "vast: offer 18812345 is no longer available (rented or withdrawn); refresh offers"


async def test_vast_no_such_ask_outside_a_launch_is_not_found(clients: list[httpx.AsyncClient]) -> None:
    body = {"success": False, "error": "no_such_ask", "msg": "no such thing"}
    vast = adapter("vast", Router().on("DELETE", "/instances/", lambda _r: httpx.Response(200, json=body)), clients)

    with pytest.raises(NotFoundError, match="^vast: destroying instance 7: not found"):
        await vast.destroy("7")


# -- the rules themselves -------------------------------------------------------------------------


RULES = ErrorDialect(
    rules=(
        ErrorRule(NoCapacityError, "sold out ({message})", phrase=re.compile("no machines", re.IGNORECASE)),
        ErrorRule(AuthError, "key revoked ({message})", codes={"revoked"}),
        ErrorRule(RequestRejectedError, "bad bid ({message})", statuses=(400,)),
    ),
    credential="API token",
    in_reply=ErrorRule(RequestRejectedError, "refused: {message}"),
)


@pytest.mark.parametrize(("reply", "expected"), [
    (ErrorReply(403, "revoked", "No machines"), (NoCapacityError, "sold out (No machines)")),
    (ErrorReply(404, "revoked", "gone"), (AuthError, "key revoked (gone)")),
    (ErrorReply(400, "", "too low"), (RequestRejectedError, "bad bid (too low)")),
    (ErrorReply(401, "", "who are you"), (AuthError, "API token rejected (HTTP 401: who are you)")),
    (ErrorReply(410, "", "gone"), (NotFoundError, "not found (HTTP 410: gone)")),
    (ErrorReply(409, "", "busy"), (RequestRejectedError, "request rejected (HTTP 409: busy)")),
    (ErrorReply(None, "", "busy"), (RequestRejectedError, "refused: busy")),
])
def test_the_first_rule_that_matches_words_the_error_then_the_shared_statuses(
    reply: ErrorReply, expected: tuple[type[ProviderError], str]
) -> None:
    error = RULES.error("acme", reply)

    assert (type(error), error.message) == expected


def test_context_leads_the_message_of_an_error_in_a_reply() -> None:
    error = RULES.error("acme", ErrorReply(None, "revoked", "expired"), context="launching offer 9")

    assert str(error) == "acme: launching offer 9: key revoked (expired)"


# -- shared plumbing ------------------------------------------------------------------------------


EMPTY_LISTING = {
    "vast": {"instances": []},
    "runpod": {"data": {"myself": {"pods": []}}},
    "lambda": {"data": []},
    "tensordock": {"data": {"instances": []}},
}


@pytest.mark.parametrize(("name", "waits"), [
    ("vast", [2.0, 10.0, 20.0, 2.0]),
    ("lambda", [2.0, 10.0, 20.0, 2.0]),
    ("runpod", [None, None, None, None]),  # not polled listings: a 429 says only what the provider said
    ("tensordock", [None, None, None, None]),
])
async def test_a_polled_listing_backs_off_longer_after_each_429_in_a_row_until_one_succeeds(
    name: str, waits: list[float | None], clients: list[httpx.AsyncClient]
) -> None:
    statuses = iter([429, 429, 429, 200, 429])

    def reply(_request: httpx.Request) -> httpx.Response:
        status = next(statuses)
        return httpx.Response(status, json=EMPTY_LISTING[name] if status == 200 else {"detail": "slow down"})

    clock = ManualClock()
    client = client_for(answering_with(reply))
    clients.append(client)
    provider = build(name, client, clock=clock, policy=quick_policy())
    seen: list[float | None] = []
    for _ in range(5):
        try:
            await provider.list_instances()
        except RateLimitedError as error:
            seen.append(error.retry_after)
        await clock.advance(60)  # past any wait, so each call reaches the provider

    assert seen == waits


async def test_closing_an_adapter_leaves_the_shared_client_open(clients: list[httpx.AsyncClient]) -> None:
    shared = client_for(Router())
    clients.append(shared)
    for name in PROVIDERS:
        await build(name, shared).aclose()

    assert not shared.is_closed, "one pooled client serves every adapter; closing one must not close it"
