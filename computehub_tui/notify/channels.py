"""Builds the configured channels from ``[alerts]`` and the channel secrets (vault, or the environment's)."""

from __future__ import annotations

import importlib
import logging
import ssl
from collections.abc import Callable, Collection, Iterable, Mapping
from typing import Any

from computehub_tui.config.schema import EMAIL_NEEDS_ADDRESSES, AlertsSection
from computehub_tui.domain.secret import Secret
from computehub_tui.notify.base import Channel

log = logging.getLogger(__name__)

TELEGRAM_TOKEN = "telegram_token"
SMTP_PASSWORD = "smtp_password"
WEBHOOK_SECRET = "webhook_secret"
SECRET_NAMES = (TELEGRAM_TOKEN, SMTP_PASSWORD, WEBHOOK_SECRET)
SECRET_ENV = {TELEGRAM_TOKEN: "COMPUTEHUB_TELEGRAM_TOKEN", SMTP_PASSWORD: "COMPUTEHUB_SMTP_PASSWORD",
              WEBHOOK_SECRET: "COMPUTEHUB_WEBHOOK_SECRET"}
"""Each variable overrides the vault's secret of that name."""
SECRET_OF_CHANNEL = {"telegram": TELEGRAM_TOKEN, "email": SMTP_PASSWORD, "webhook": WEBHOOK_SECRET}
HOW_TO_CONFIGURE = {
    "telegram": "add [alerts.telegram] chat_id to the config file and the bot token with "
                "`computehub-tui notify telegram-setup` (or COMPUTEHUB_TELEGRAM_TOKEN)",
    "email": "add [alerts.email] host, from and to (and username) to the config file; the password goes in the "
             "vault or COMPUTEHUB_SMTP_PASSWORD",
    "webhook": "add [alerts.webhook] url (and format) to the config file; a whsec_ signing secret goes in the vault "
               "or COMPUTEHUB_WEBHOOK_SECRET",
}


def unconfigured(notified: Iterable[tuple[str, str]], configured: Collection[str]) -> list[tuple[str, str]]:
    """Of ``notified`` (rule, channel) pairs, those whose alert channel is not in ``configured`` (a toast needs
    no channel)."""
    return [(rule, channel) for rule, channel in notified if channel in HOW_TO_CONFIGURE and channel not in configured]


class ChannelConfigError(Exception):
    """A configured channel cannot be built (a missing or malformed secret); the message says what to do."""


def secrets_from_environment(environ: Mapping[str, str]) -> dict[str, Secret]:
    return {name: Secret(environ[variable]) for name, variable in SECRET_ENV.items()
            if environ.get(variable, "").strip()}


def build_channel(name: str, settings: AlertsSection, secrets: Mapping[str, Secret], *,
                  tls_context: ssl.SSLContext | None = None) -> Channel:
    """The channel ``name`` as configured; raises ChannelConfigError when it is not configured or cannot work."""
    if name not in settings.channel_names():
        raise ChannelConfigError(f"the {name} channel is not configured: {HOW_TO_CONFIGURE.get(name, '')}".rstrip(": "))
    secret = secrets.get(SECRET_OF_CHANNEL[name])
    if name == "telegram":
        if not secret:
            raise ChannelConfigError(f"the telegram channel has no bot token: {HOW_TO_CONFIGURE['telegram']}")
        module: Any = importlib.import_module("computehub_tui.notify.telegram")
        channel: Channel = module.TelegramChannel(secret, settings.telegram.chat_id, settings.telegram.base_url)
        return channel
    if name == "email":
        email = settings.email
        if not email.from_ or not email.to:
            raise ChannelConfigError(EMAIL_NEEDS_ADDRESSES)
        if email.username and not secret:
            raise ChannelConfigError(f"[alerts.email] logs in as {email.username!r} but no password is stored: put "
                                     "it in the vault or COMPUTEHUB_SMTP_PASSWORD")
        from computehub_tui.notify.email import EmailChannel  # deferred: aiosmtplib only where e-mail is set up

        return EmailChannel(email.host, email.effective_port, email.security, email.from_, email.to,
                            username=email.username, password=secret, tls_context=tls_context)
    from computehub_tui.notify.webhook import WebhookChannel, WebhookSecretError

    try:
        return WebhookChannel(settings.webhook.url, secret, settings.webhook.format)
    except WebhookSecretError as error:
        raise ChannelConfigError(str(error)) from None


ChannelBuilder = Callable[[str, AlertsSection, Mapping[str, Secret]], Channel]


def build_channels(settings: AlertsSection, secrets: Mapping[str, Secret], *, builder: ChannelBuilder = build_channel,
                   errors: dict[str, str] | None = None) -> dict[str, Channel]:
    """Every configured channel that can be built; one that cannot is logged, put in ``errors`` with why, and left
    out (the others work)."""
    channels: dict[str, Channel] = {}
    for name in settings.channel_names():
        try:
            channels[name] = builder(name, settings, secrets)
        except (ChannelConfigError, ImportError, ValueError) as error:
            log.warning("alerts: the %s channel is off: %s", name, error)
            if errors is not None:
                errors[name] = str(error)
    return channels
