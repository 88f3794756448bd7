"""The e-mail channel against a real aiosmtpd server on 127.0.0.1: plain, AUTH, STARTTLS and implicit TLS with
trustme certificates, refused recipients, bad passwords, untrusted certificates, no server."""

from __future__ import annotations

import logging
import ssl
from collections.abc import Iterator

import pytest
import trustme
from fakes.smtp_server import HOST, Credentials, smtp_server
from loopback import refused_port

from computehub_tui.domain.secret import Secret
from computehub_tui.notify.base import OutgoingMessage, PartialDelivery, PermanentError, TransientError
from computehub_tui.notify.email import EmailChannel

pytestmark = pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS:UserWarning")

PASSWORD = "smtp-Pa55word-9f8e7d6c5b4a"
SENDER = "alerts@computehub.example"


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture
def server_tls(ca: trustme.CA) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert(HOST, "localhost").configure_cert(context)
    return context


@pytest.fixture
def client_tls(ca: trustme.CA) -> ssl.SSLContext:
    context = ssl.create_default_context()
    ca.configure_trust(context)
    return context


@pytest.fixture(autouse=True)
def quiet_aiosmtpd() -> Iterator[None]:
    logging.getLogger("mail.log").setLevel(logging.ERROR)  # "login_data is deprecated" on every AUTH
    yield


def message(**changes: object) -> OutgoingMessage:
    values: dict[str, object] = {"delivery_id": "d1", "alert_key": "spend:2026-12-02:50", "kind": "spend",
                                 "severity": "warning", "title": "Spend today passed $50.00\r\nBcc: evil@x.example",
                                 "body": "Spend today is $51.20.", "fields": {}}
    values.update(changes)
    return OutgoingMessage(**values)  # type: ignore[arg-type]


def channel(port: int, security: str = "none", recipients: tuple[str, ...] = ("ops@example.com",), *,
            username: str = "", password: str | None = None, tls: ssl.SSLContext | None = None) -> EmailChannel:
    return EmailChannel(HOST, port, security, SENDER, recipients, username=username,
                        password=Secret(password) if password else None, timeout_s=5.0, tls_context=tls)


async def test_a_plain_server_gets_one_message_with_a_safe_subject() -> None:
    async with smtp_server() as smtp:
        await channel(smtp.port).send(message())
    [(recipients, mail)] = smtp.mailbox.messages
    assert recipients == ["ops@example.com"]
    assert mail["Subject"] == "[computehub] Spend today passed $50.00 Bcc: evil@x.example"
    assert mail["Bcc"] is None  # a line break in provider text cannot add a header
    assert "Spend today is $51.20." in mail.get_payload()


async def test_login_on_a_plaintext_server_with_the_right_password() -> None:
    async with smtp_server(credentials=Credentials("alerts", PASSWORD)) as smtp:
        await channel(smtp.port, username="alerts", password=PASSWORD).send(message())
    assert len(smtp.mailbox.messages) == 1


async def test_a_wrong_password_is_permanent_and_never_named(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    async with smtp_server(credentials=Credentials("alerts", PASSWORD)) as smtp:
        with pytest.raises(PermanentError) as caught:
            await channel(smtp.port, username="alerts", password=PASSWORD + "x").send(message())
    assert "refused the login" in caught.value.reason
    assert PASSWORD not in caught.value.reason and PASSWORD not in caplog.text
    assert smtp.mailbox.messages == []


async def test_starttls_with_login(server_tls: ssl.SSLContext, client_tls: ssl.SSLContext) -> None:
    async with smtp_server(credentials=Credentials("alerts", PASSWORD), starttls=server_tls) as smtp:
        await channel(smtp.port, "starttls", username="alerts", password=PASSWORD, tls=client_tls).send(message())
    assert len(smtp.mailbox.messages) == 1


async def test_implicit_tls(server_tls: ssl.SSLContext, client_tls: ssl.SSLContext) -> None:
    async with smtp_server(implicit_tls=server_tls) as smtp:
        await channel(smtp.port, "tls", tls=client_tls).send(message())
    assert len(smtp.mailbox.messages) == 1


async def test_an_untrusted_certificate_is_permanent(server_tls: ssl.SSLContext) -> None:
    async with smtp_server(starttls=server_tls) as smtp:
        with pytest.raises(PermanentError) as caught:
            await channel(smtp.port, "starttls", tls=ssl.create_default_context()).send(message())
    assert "TLS" in caught.value.reason
    assert smtp.mailbox.messages == []


async def test_refused_recipients_are_named_and_the_others_got_it() -> None:
    recipients = ("ops@example.com", "gone@example.com", "busy@example.com")
    async with smtp_server(refuse={"gone@example.com"}, refuse_for_now={"busy@example.com"}) as smtp:
        sender = channel(smtp.port, recipients=recipients)
        with pytest.raises(PartialDelivery) as caught:
            await sender.send(message())
        assert smtp.mailbox.delivered_to() == ["ops@example.com"]
        smtp.mailbox.refuse_for_now.clear()
        with pytest.raises(PartialDelivery) as again:  # the retry goes to the refused ones only
            await sender.send_to(message(), caught.value.refused)
    assert caught.value.refused == ("busy@example.com", "gone@example.com")
    assert caught.value.delivered == ("ops@example.com",)
    assert smtp.mailbox.messages[1][0] == ["busy@example.com"]
    assert again.value.refused == ("gone@example.com",) and again.value.delivered == ("busy@example.com",)


async def test_every_recipient_refused_for_good_is_permanent_and_for_now_is_transient() -> None:
    async with smtp_server(refuse={"gone@example.com"}, refuse_for_now={"busy@example.com"}) as smtp:
        with pytest.raises(PermanentError):
            await channel(smtp.port, recipients=("gone@example.com",)).send(message())
        with pytest.raises(TransientError):
            await channel(smtp.port, recipients=("busy@example.com",)).send(message())


async def test_no_server_is_transient() -> None:
    with pytest.raises(TransientError) as caught:
        await channel(refused_port()).send(message())
    assert "cannot reach" in caught.value.reason
