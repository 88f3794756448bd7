"""The add / edit form of one alert channel: its settings under the config's names, a masked secret, checks."""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import ClassVar
from urllib.parse import urlsplit

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label, Select

from computehub_tui.domain.text import clean_text
from computehub_tui.ui.alerts_source import AlertsSource, ChannelInfo, channel_title, masked_secret, one_line_error
from computehub_tui.ui.plain import PlainStatic
from computehub_tui.ui.screens.compact import fit_to_height
from computehub_tui.ui.widgets.footer import HubFooter

SECRET = "secret"
"""The form's name for the channel's secret (token, SMTP password, webhook signing secret)."""
VALUE_LIMIT = 500
DEFAULT_BASE_URL = "https://api.telegram.org/bot"
_CHAT_ID = re.compile(r"-?\d{1,20}|@[A-Za-z][A-Za-z0-9_]{3,31}")
_BOT_TOKEN = re.compile(r"\d{1,20}:[A-Za-z0-9_-]{20,}")
_ADDRESS = re.compile(r"[^@\s,;<>\"]+@[^@\s,;<>\".]+(\.[^@\s,;<>\".]+)*")


@dataclass(frozen=True, slots=True)
class FieldSpec:
    name: str
    """The setting's name in ``[alerts.<channel>]``."""
    label: str
    placeholder: str = ""
    default: str = ""
    choices: tuple[str, ...] = ()
    """A fixed set of values (a Select) instead of free text."""


FIELDS: Mapping[str, tuple[FieldSpec, ...]] = {
    "telegram": (
        FieldSpec("chat_id", "Chat id", "123456789, -1001234567890 or @channelname"),
        FieldSpec("base_url", "Bot API base URL", DEFAULT_BASE_URL, DEFAULT_BASE_URL),
    ),
    "email": (
        FieldSpec("host", "SMTP host", "smtp.example.com"),
        FieldSpec("port", "Port", "587", "587"),
        FieldSpec("security", "Security", default="starttls", choices=("starttls", "tls", "none")),
        FieldSpec("username", "Username", "optional"),
        FieldSpec("from", "From", "alerts@example.com"),
        FieldSpec("to", "To (comma-separated)", "me@example.com, oncall@example.com"),
    ),
    "webhook": (
        FieldSpec("url", "URL", "https://hooks.example.com/computehub"),
        FieldSpec("format", "Format", default="generic", choices=("generic", "slack", "discord")),
    ),
}
SECRET_LABELS: Mapping[str, str] = {"telegram": "Bot token", "email": "SMTP password",
                                    "webhook": "Signing secret (whsec_…)"}
SECRET_REQUIRED = frozenset({"telegram"})
"""A Telegram channel cannot send without its token; SMTP may need no login and a webhook may go unsigned."""

Check = Callable[[str], str]
"""Returns why a value is wrong, or "" when it is fine."""


def _required(what: str) -> Check:
    return lambda value: "" if value else f"enter {what}"


def _chat_id(value: str) -> str:
    return "" if _CHAT_ID.fullmatch(value) else "a number (123456789, -100…) or an @channelname"


def _http_url(value: str) -> str:
    try:
        parts = urlsplit(value)
    except ValueError:
        parts = None
    if parts is None or parts.scheme not in ("http", "https") or not parts.hostname or any(c.isspace() for c in value):
        return "an http:// or https:// URL"
    return ""


def _host(value: str) -> str:
    if not value:
        return "enter the SMTP server's host name"
    return "a host name has no spaces or slashes" if re.search(r"[\s/]", value) else ""


def _port(value: str) -> str:
    return "" if value.isdigit() and 1 <= int(value) <= 65535 else "a port number from 1 to 65535"


def _username(value: str) -> str:
    return "a user name has no spaces" if any(c.isspace() for c in value) else ""


def _address(value: str) -> str:
    return "" if _ADDRESS.fullmatch(value) else "an address like alerts@example.com"


def recipients(value: str) -> list[str]:
    return [part.strip() for part in value.split(",") if part.strip()]


def _to(value: str) -> str:
    addresses = recipients(value)
    if not addresses:
        return "at least one address, like me@example.com"
    bad = next((a for a in addresses if _ADDRESS.fullmatch(a) is None), None)
    return "" if bad is None else f"not an address: {clean_text(bad, 60)}"


CHECKS: Mapping[str, Check] = {
    "chat_id": _chat_id, "base_url": _http_url, "url": _http_url, "host": _host, "port": _port,
    "username": _username, "from": _address, "to": _to,
}


def _secret_problem(kind: str, secret: str, stored: bool) -> str:
    if not secret:
        return "paste the bot token from @BotFather" if kind in SECRET_REQUIRED and not stored else ""
    if any(c.isspace() for c in secret):
        return "paste only the secret itself (no spaces)"
    if kind == "telegram" and not _BOT_TOKEN.fullmatch(secret):
        return "a bot token looks like 123456789:AAH…"
    if kind == "webhook" and not _signing_secret(secret):
        return "a signing secret looks like whsec_ followed by base64"
    return ""


def _signing_secret(secret: str) -> bool:
    encoded = secret.removeprefix("whsec_")
    if encoded == secret or not encoded:
        return False
    try:
        return bool(base64.b64decode(encoded, validate=True))
    except (binascii.Error, ValueError):
        return False


def validate_channel(kind: str, raw: Mapping[str, str], secret: str, *, secret_stored: bool
                     ) -> tuple[dict[str, object], dict[str, str]]:
    """The settings to save under the config's names and types (``port`` an int, ``to`` a list), and the
    problems by field name (``secret`` for the secret); nothing is saved while there are problems."""
    values: dict[str, object] = {}
    problems: dict[str, str] = {}
    for spec in FIELDS[kind]:
        value = raw.get(spec.name, "").strip()
        problem = CHECKS.get(spec.name, lambda _: "")(value)
        if problem:
            problems[spec.name] = problem
        values[spec.name] = value
    if "port" in values and "port" not in problems:
        values["port"] = int(str(values["port"]))
    if "to" in values:
        values["to"] = recipients(str(values["to"]))
    secret_problem = _secret_problem(kind, secret.strip(), secret_stored)
    if secret_problem:
        problems[SECRET] = secret_problem
    return values, problems


def initial_value(spec: FieldSpec, channel: ChannelInfo | None) -> str:
    """What a field starts with: the channel's setting, made one safe line, else the default."""
    if channel is None or spec.name not in channel.values:
        return spec.default
    value = channel.values[spec.name]
    if isinstance(value, (list, tuple)):
        return ", ".join(clean_text(item, VALUE_LIMIT) for item in value)
    return clean_text(value, VALUE_LIMIT)


class ChannelFormScreen(ModalScreen[bool]):
    """Dismisses True once the channel was saved. A wrong value shows its reason under its field and
    nothing is saved; a failed save keeps everything typed."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "cancel", "Cancel"),
        Binding("ctrl+s", "save", "Save"),
        # The focused Input maps ctrl+c to copy; a priority binding makes ctrl+c cancel.
        Binding("ctrl+c", "cancel", "Cancel", show=False, priority=True),
    ]
    DEFAULT_CSS = """
    ChannelFormScreen { align: center middle; }
    ChannelFormScreen > Vertical { width: 100%; max-width: 84; height: auto; max-height: 100%;
                                   border: thick $accent; background: $surface; }
    ChannelFormScreen #form-title { text-style: bold; padding: 0 1; background: $panel; }
    ChannelFormScreen #form-fields { height: auto; max-height: 1fr; padding: 0 1; }
    ChannelFormScreen Label { text-style: bold; }
    ChannelFormScreen .field-error { color: $error; height: auto; display: none; }
    ChannelFormScreen #form-status { height: auto; padding: 0 1; }
    ChannelFormScreen #form-buttons { height: auto; padding: 0 1; align: right middle; }
    ChannelFormScreen #form-buttons Button { margin-left: 1; }
    """

    def __init__(self, source: AlertsSource, kind: str, channel: ChannelInfo | None = None) -> None:
        super().__init__()
        self.source = source
        self.kind = kind
        self.channel = channel if channel is not None and channel.configured else None
        self.saving = False

    @property
    def secret_stored(self) -> bool:
        return self.channel is not None and bool(self.channel.secret_masked)

    def compose(self) -> ComposeResult:
        verb = "Edit" if self.channel is not None else "Add"
        with Vertical():
            yield PlainStatic(f"{verb} the {channel_title(self.kind)} channel   (ctrl+s save, esc cancel)",
                              id="form-title")
            with VerticalScroll(id="form-fields"):
                for spec in FIELDS[self.kind]:
                    yield Label(spec.label)
                    yield self._control(spec)
                    yield PlainStatic("", id=f"{spec.name}-error", classes="field-error")
                yield Label(SECRET_LABELS[self.kind])
                yield Input(password=True, placeholder=self._secret_placeholder(), id=f"field-{SECRET}")
                yield PlainStatic("", id=f"{SECRET}-error", classes="field-error")
            yield PlainStatic("", id="form-status")
            with Horizontal(id="form-buttons"):
                yield Button("Cancel (esc)", id="cancel")
                yield Button("Save (ctrl+s)", id="save", variant="primary")
            yield HubFooter()

    def _control(self, spec: FieldSpec) -> Input | Select[str]:
        value = initial_value(spec, self.channel)
        if spec.choices:
            chosen = value if value in spec.choices else spec.choices[0]
            return Select([(choice, choice) for choice in spec.choices], value=chosen, allow_blank=False,
                          id=f"field-{spec.name}")
        return Input(value, placeholder=spec.placeholder, id=f"field-{spec.name}")

    def _secret_placeholder(self) -> str:
        if self.channel is not None and self.channel.secret_masked:
            return f"{masked_secret(self.channel.secret_masked)} stored — leave empty to keep it"
        return "required" if self.kind in SECRET_REQUIRED else "optional"

    def on_mount(self) -> None:
        self.query_one(f"#field-{FIELDS[self.kind][0].name}").focus()

    def on_resize(self) -> None:
        fit_to_height(self)

    def raw_values(self) -> dict[str, str]:
        """What each field holds now, as text."""
        raw = {}
        for spec in FIELDS[self.kind]:
            control = self.query_one(f"#field-{spec.name}")
            raw[spec.name] = str(control.value) if isinstance(control, (Input, Select)) else ""
        return raw

    def action_cancel(self) -> None:
        self.dismiss(False)

    @on(Input.Submitted)
    def _submitted(self) -> None:
        self.action_save()

    @on(Button.Pressed, "#save")
    def _save_pressed(self) -> None:
        self.action_save()

    @on(Button.Pressed, "#cancel")
    def _cancel_pressed(self) -> None:
        self.action_cancel()

    def action_save(self) -> None:
        if self.saving:
            return
        secret = self.query_one(f"#field-{SECRET}", Input).value
        values, problems = validate_channel(self.kind, self.raw_values(), secret, secret_stored=self.secret_stored)
        for name in [spec.name for spec in FIELDS[self.kind]] + [SECRET]:
            error = self.query_one(f"#{name}-error", PlainStatic)
            error.update(f"✖ {problems[name]}" if name in problems else "")
            error.display = name in problems
        if problems:
            self._status("Fix the fields marked ✖; nothing was saved.", "bold red")
            self.query_one(f"#field-{next(iter(problems))}").focus()
            return
        self.saving = True
        self._status("Saving…", "")
        self._save(values, secret.strip() or None)

    @work(group="channel-save", exclusive=True, exit_on_error=False)
    async def _save(self, values: dict[str, object], secret: str | None) -> None:
        try:
            await self.source.save_channel(self.kind, values, secret)
        except Exception as error:  # noqa: BLE001 - shown in the form; what was typed stays
            self.saving = False
            self._status(f"✖ could not save: {one_line_error(error)}", "bold red")
            return
        self.dismiss(True)

    def _status(self, message: str, style: str) -> None:
        self.query_one("#form-status", PlainStatic).update(Text(message, style=style))
