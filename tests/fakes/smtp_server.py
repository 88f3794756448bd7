"""A real SMTP server (aiosmtpd) on 127.0.0.1, created in the test's own loop: plain, AUTH, STARTTLS or
implicit TLS, with recipients it refuses."""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from email import message_from_bytes
from email.message import Message
from typing import Any

from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session

HOST = "127.0.0.1"


@dataclass
class Mailbox:
    """What the server took: one entry per accepted message, with the recipients it accepted."""

    messages: list[tuple[list[str], Message]] = field(default_factory=list)
    refuse: set[str] = field(default_factory=set)
    """Recipients answered 550 (permanently)."""
    refuse_for_now: set[str] = field(default_factory=set)
    """Recipients answered 450 (try later)."""
    arrived: asyncio.Event = field(default_factory=asyncio.Event)

    async def handle_RCPT(self, server: SMTP, session: Session, envelope: Envelope, address: str,
                          options: list[str]) -> str:
        if address in self.refuse:
            return "550 5.1.1 no such user"
        if address in self.refuse_for_now:
            return "450 4.2.1 mailbox busy, try later"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        content = envelope.content if isinstance(envelope.content, bytes) else str(envelope.content).encode()
        self.messages.append((list(envelope.rcpt_tos), message_from_bytes(content)))
        self.arrived.set()
        return "250 Message accepted"

    def delivered_to(self) -> list[str]:
        return [address for recipients, _ in self.messages for address in recipients]


class Credentials:
    """An authenticator that accepts one user and password (and answers 535 otherwise, never hangs)."""

    def __init__(self, user: str, password: str) -> None:
        self.user, self.password = user.encode(), password.encode()

    def __call__(self, server: SMTP, session: Session, envelope: Envelope, mechanism: str, data: Any) -> AuthResult:
        ok = isinstance(data, LoginPassword) and data.login == self.user and data.password == self.password
        return AuthResult(success=True) if ok else AuthResult(success=False, handled=False)


@dataclass
class RunningSmtp:
    port: int
    mailbox: Mailbox


@asynccontextmanager
async def smtp_server(*, credentials: Credentials | None = None, starttls: ssl.SSLContext | None = None,
                      implicit_tls: ssl.SSLContext | None = None, refuse: Iterable[str] = (),
                      refuse_for_now: Iterable[str] = ()) -> AsyncIterator[RunningSmtp]:
    mailbox = Mailbox(refuse=set(refuse), refuse_for_now=set(refuse_for_now))

    def protocol() -> SMTP:
        return SMTP(mailbox, hostname="fake-smtp", tls_context=starttls, require_starttls=starttls is not None,
                    authenticator=credentials, auth_required=credentials is not None,
                    auth_require_tls=starttls is not None)

    server = await asyncio.get_running_loop().create_server(protocol, HOST, 0, ssl=implicit_tls)
    try:
        yield RunningSmtp(server.sockets[0].getsockname()[1], mailbox)
    finally:
        server.close()
        await server.wait_closed()
