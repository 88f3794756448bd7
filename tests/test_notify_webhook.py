"""The webhook channel against a real loopback receiver that checks Standard Webhooks signatures, and its
Slack / Discord bodies and error classification on httpx.MockTransport."""

from __future__ import annotations

import base64
import json
import logging
from email.utils import formatdate

import httpx
import pytest
from fakes.webhook_receiver import WebhookReceiver
from loopback import Reply, refused_port

from computehub_tui.clock import ManualClock
from computehub_tui.domain.secret import Secret
from computehub_tui.notify.base import OutgoingMessage, PermanentError, TransientError
from computehub_tui.notify.webhook import DISCORD_LIMIT, WebhookChannel, WebhookSecretError

SECRET = "whsec_" + base64.b64encode(b"k3y-material-for-tests-0123456789").decode()
OTHER_SECRET = "whsec_" + base64.b64encode(b"another-key-material-987654321").decode()


def message(**changes: object) -> OutgoingMessage:
    values: dict[str, object] = {
        "delivery_id": "d-1", "alert_key": "instance-down:vast:123", "kind": "instance_down",
        "severity": "critical", "title": "vast:123 went exited", "body": "it was running", "fields": {"a": "b"},
        "created_at": 1_790_000_000.0}
    values.update(changes)
    return OutgoingMessage(**values)  # type: ignore[arg-type]


async def test_a_signed_alert_is_accepted_by_a_receiver_that_checks_the_signature() -> None:
    with WebhookReceiver(SECRET) as hook:
        channel = WebhookChannel(hook.url, Secret(SECRET))
        try:
            await channel.send(message())
        finally:
            await channel.aclose()
        assert hook.rejected == []
        [received] = hook.accepted
    assert received.webhook_id == "d-1"
    assert received.payload["type"] == "alert.firing"
    assert received.payload["data"]["alert_key"] == "instance-down:vast:123"
    assert received.payload["data"]["fields"] == {"a": "b"}


async def test_a_wrong_secret_is_refused_and_that_is_permanent() -> None:
    with WebhookReceiver(SECRET) as hook:
        channel = WebhookChannel(hook.url, Secret(OTHER_SECRET))
        try:
            with pytest.raises(PermanentError) as caught:
                await channel.send(message())
        finally:
            await channel.aclose()
        assert hook.rejected == ["bad signature"]
    assert "HTTP 401" in caught.value.reason


async def test_the_same_delivery_keeps_its_id_so_the_receiver_takes_it_once() -> None:
    with WebhookReceiver(SECRET) as hook:
        channel = WebhookChannel(hook.url, Secret(SECRET))
        try:
            await channel.send(message())
            await channel.send(message())
        finally:
            await channel.aclose()
        assert len(hook.accepted) == 1 and hook.duplicates == 1


@pytest.mark.parametrize(("reply", "retry_after"), [
    (Reply.json({"error": "slow down"}, status=429, headers={"Retry-After": "7"}), 7.0),
    (Reply.text("busy", status=503), None),
    (Reply.text("timeout", status=408), None),
])
async def test_throttling_and_server_errors_are_transient_and_retry_after_is_read(reply: Reply,
                                                                                   retry_after: float | None) -> None:
    with WebhookReceiver(SECRET) as hook:
        hook.script(reply)
        channel = WebhookChannel(hook.url, Secret(SECRET))
        try:
            with pytest.raises(TransientError) as caught:
                await channel.send(message())
        finally:
            await channel.aclose()
    assert caught.value.retry_after == retry_after


async def test_an_http_date_retry_after_is_seconds_from_now() -> None:
    clock = ManualClock()
    when = formatdate(clock.now() + 90, usegmt=True)
    transport = httpx.MockTransport(lambda _: httpx.Response(503, headers={"Retry-After": when}))
    async with httpx.AsyncClient(transport=transport) as client:
        channel = WebhookChannel("https://hooks.example/x", None, client=client, clock=clock)
        with pytest.raises(TransientError) as caught:
            await channel.send(message())
    assert caught.value.retry_after == pytest.approx(90, abs=1)


@pytest.mark.parametrize("status", [400, 404, 410, 301])
async def test_other_client_errors_and_redirects_are_permanent(status: int) -> None:
    transport = httpx.MockTransport(lambda _: httpx.Response(status, headers={"location": "https://elsewhere/"}))
    async with httpx.AsyncClient(transport=transport) as client:
        channel = WebhookChannel("https://hooks.example/x", None, client=client)
        with pytest.raises(PermanentError) as caught:
            await channel.send(message())
    assert f"HTTP {status}" in caught.value.reason


async def test_a_refused_connection_is_transient_and_the_reason_hides_the_url_token() -> None:
    token_path = "/services/T000/B000/sEcReTpAtHtOkEn"
    channel = WebhookChannel(f"http://127.0.0.1:{refused_port()}{token_path}", None, "slack")
    try:
        with pytest.raises(TransientError) as caught:
            await channel.send(message())
    finally:
        await channel.aclose()
    assert "127.0.0.1" in caught.value.reason and "sEcReT" not in caught.value.reason


async def test_slack_text_cannot_ping_the_workspace_and_discord_cannot_mention() -> None:
    sent: list[dict[str, object]] = []

    def record(request: httpx.Request) -> httpx.Response:
        sent.append(json.loads(request.content))
        return httpx.Response(200, text="ok")

    hostile = message(title="<!channel> [bold]x[/] @everyone", body="y" * 5000)
    async with httpx.AsyncClient(transport=httpx.MockTransport(record)) as client:
        for preset in ("slack", "discord"):
            channel = WebhookChannel("https://hooks.example/x", None, preset, client=client)
            await channel.send(hostile)
    slack, discord = sent
    assert "<!channel>" not in str(slack["text"]) and "&lt;!channel&gt;" in str(slack["text"])
    assert slack["mrkdwn"] is False
    assert discord["allowed_mentions"] == {"parse": []}
    assert len(str(discord["content"])) == DISCORD_LIMIT and str(discord["content"]).endswith("(truncated)")


def test_a_secret_that_is_not_whsec_base64_is_refused_without_echoing_it() -> None:
    with pytest.raises(WebhookSecretError) as caught:
        WebhookChannel("https://hooks.example/x", Secret("whsec_not base64 at all!!"))
    assert "not base64" not in str(caught.value)


async def test_the_secret_appears_in_no_log_line_even_with_httpx_at_debug(caplog: pytest.LogCaptureFixture,
                                                                         capsys: pytest.CaptureFixture[str]) -> None:
    caplog.set_level(logging.DEBUG)
    # An in-process CLI run earlier in this worker may have quietened these loggers (as the CLI does).
    for library in ("httpx", "httpcore"):
        caplog.set_level(logging.DEBUG, logger=library)
    with WebhookReceiver(SECRET) as hook:
        hook.script(Reply.text("nope", status=500))
        channel = WebhookChannel(hook.url, Secret(SECRET))
        try:
            with pytest.raises(TransientError):
                await channel.send(message())
            await channel.send(message(delivery_id="d-2"))
        finally:
            await channel.aclose()
    raw = SECRET.removeprefix("whsec_")
    captured = capsys.readouterr()
    everything = caplog.text + captured.out + captured.err
    assert any(record.name.startswith("httpx") for record in caplog.records)  # the debug logs did run
    assert raw not in everything and SECRET not in everything
