"""The e-mail channel on aiosmtplib: STARTTLS, implicit TLS or none, optional login, one message to every recipient."""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Sequence
from email.message import EmailMessage
from email.utils import formatdate, make_msgid

import aiosmtplib

from computehub_tui.domain.secret import Secret
from computehub_tui.domain.text import clean_text
from computehub_tui.notify.base import OutgoingMessage, PartialDelivery, PermanentError, TransientError
from computehub_tui.notify.reasons import one_line

SECURITY_MODES = ("starttls", "tls", "none")
SUBJECT_LIMIT = 200
SUBJECT_PREFIX = "[computehub] "


class EmailChannel:
    """Sends each alert as one plain-text message. Recipients the server refuses make a PartialDelivery naming
    them, so the worker retries only those (``send_to``)."""

    name = "email"
    min_interval_s = 0.5

    def __init__(self, host: str, port: int, security: str, sender: str, recipients: Sequence[str], *,
                 username: str = "", password: Secret | None = None, timeout_s: float = 20.0,
                 tls_context: ssl.SSLContext | None = None) -> None:
        if security not in SECURITY_MODES:
            raise ValueError(f"unknown security {security!r}")
        self.host = host
        self.port = port
        self.security = security
        self.sender = sender
        self.recipients = tuple(recipients)
        self.username = username
        self._password = password
        self.timeout_s = timeout_s
        self._tls_context = tls_context

    async def send(self, message: OutgoingMessage) -> None:
        await self.send_to(message, self.recipients)

    async def send_to(self, message: OutgoingMessage, recipients: Sequence[str]) -> None:
        """Send ``message`` to ``recipients`` only (a retry after some refused it)."""
        email = self._compose(message, recipients)
        try:
            async with asyncio.timeout(self.timeout_s * 3):
                refused, _ = await aiosmtplib.send(
                    email, sender=self.sender, recipients=list(recipients), hostname=self.host, port=self.port,
                    use_tls=self.security == "tls", start_tls=self.security == "starttls",
                    username=self.username or None,
                    password=self._password.reveal() if self.username and self._password else None,
                    timeout=self.timeout_s, tls_context=self._tls_context)
        except TimeoutError:
            raise TransientError(f"{self.host}:{self.port} did not answer in time") from None
        except aiosmtplib.SMTPRecipientsRefused as error:
            raise _all_refused(error) from None
        except aiosmtplib.SMTPAuthenticationError as error:
            raise PermanentError(f"{self.host} refused the login for {self.username!r} ({error.code})") from None
        except aiosmtplib.SMTPResponseException as error:
            raise _by_code(error.code, f"{self.host} answered {error.code}: {one_line(error.message, 160)}") from None
        except aiosmtplib.SMTPNotSupported as error:
            raise PermanentError(f"{self.host}: {one_line(error, 160)}") from None
        except (aiosmtplib.SMTPConnectError, aiosmtplib.SMTPServerDisconnected, aiosmtplib.SMTPTimeoutError) as error:
            raise TransientError(f"cannot reach {self.host}:{self.port} ({type(error).__name__})") from None
        except ssl.SSLError as error:
            raise PermanentError(f"TLS with {self.host} failed ({one_line(getattr(error, 'reason', '') or error, 120)})"
                                 ) from None
        except aiosmtplib.SMTPException as error:
            raise PermanentError(f"{self.host}: {one_line(error, 160)}") from None
        except OSError as error:
            raise TransientError(f"cannot reach {self.host}:{self.port} ({type(error).__name__})") from None
        if refused:
            refusals = ", ".join(f"{address} ({response.code})" for address, response in sorted(refused.items()))
            delivered = tuple(address for address in recipients if address not in refused)
            raise PartialDelivery(f"{self.host} refused {refusals}", tuple(sorted(refused)), delivered)

    def _compose(self, message: OutgoingMessage, recipients: Sequence[str]) -> EmailMessage:
        email = EmailMessage()
        email["Subject"] = clean_text(SUBJECT_PREFIX + message.title, SUBJECT_LIMIT)
        email["From"] = self.sender
        email["To"] = ", ".join(recipients)
        email["Date"] = formatdate(message.created_at or None, usegmt=True)
        email["Message-ID"] = make_msgid(idstring=clean_text(message.delivery_id, 64).replace(" ", "") or None,
                                         domain="computehub-tui")
        email["X-Computehub-Alert"] = clean_text(message.alert_key, 200)
        email.set_content(f"{message.body}\n" if message.body else f"{message.title}\n")
        return email

    async def aclose(self) -> None:
        """Each send opens its own connection: nothing to close."""


def _by_code(code: int, reason: str) -> TransientError | PermanentError:
    return TransientError(reason) if 400 <= code < 500 else PermanentError(reason)


def _all_refused(error: aiosmtplib.SMTPRecipientsRefused) -> TransientError | PermanentError:
    refusals = [f"{refusal.recipient} ({refusal.code})" for refusal in error.recipients]
    reason = "every recipient was refused: " + ", ".join(refusals)
    permanent = all(refusal.code >= 500 for refusal in error.recipients)
    return PermanentError(reason) if permanent else TransientError(reason)
