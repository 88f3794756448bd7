"""Every setting, by section: names, types, defaults, bounds and the one-line help users read."""

from __future__ import annotations

import json
import re
import shlex
from collections.abc import Collection
from difflib import get_close_matches
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationInfo, field_validator

from computehub_tui.config.durations import DurationError, parse_duration

INTERVAL_CEILING_S = 86_400.0
"""No refresh interval is longer than a day: anything longer is a typo (or ``inf``)."""
OFFERS_FLOOR_S = 10.0
INSTANCES_FLOOR_S = 2.0
"""Polling faster than this only burns the provider's rate limit (k9s uses the same floor)."""
MONITOR_FLOOR_S = 5.0
"""Sampling over SSH faster than this costs the hosts more than the readings are worth."""
MAX_DISK_GB = 10_000
HOUR = 3600.0
DAY = 86_400.0
PANES = ("offers", "instances", "monitor", "rules")
KEY_ACTIONS = (
    "offers", "instances", "monitor", "rules", "help", "settings", "refresh", "quit", "filter", "details", "market",
    "sort_price", "sort_pergpu", "sort_value", "sort_pflop", "sort_vram", "sort_rel", "sort_age", "sort_gpu",
)
"""What ``[ui] keys`` may rebind: the pane keys, the global keys and the Offers sort keys. Each is the id of
a binding in ui/ (a test there keeps the two equal), so ``config validate`` can check ids without Textual."""


class Section(BaseModel):
    """A table of the config file: unknown keys are errors, numbers must be finite."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False, validate_default=True)


class DurationField:
    """Marks a field written as a duration ("2d") and held in seconds, so it prints as one."""


def _seconds(value: object) -> float:
    if isinstance(value, str):
        try:
            return parse_duration(value)
        except DurationError as error:
            raise ValueError(str(error)) from None
    if isinstance(value, bool) or not isinstance(value, int | float):
        # pydantic reports a ValueError (not a TypeError) as a validation message
        raise ValueError('must be a duration such as "30m", "2d" or "90d"')  # noqa: TRY004
    return float(value)


Seconds = Annotated[float, BeforeValidator(_seconds), DurationField()]
"""A duration: ``"90d"`` in the file (or a number of seconds), seconds in the program."""


def command_line(value: str, when_empty: str) -> str:
    """``value`` if it splits into words (as it will be run: no shell) and names a program."""
    try:
        words = shlex.split(value)
    except ValueError as error:
        raise ValueError(f"cannot be split into words ({error})") from None
    if not words:
        raise ValueError(when_empty)
    return value


def endpoint_url(value: str) -> str:
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"endpoint URLs are http:// or https:// with a host, not {value!r}")
    return value


def absolute_path(value: str) -> str:
    """An absolute path, one starting with ~/, or empty."""
    # A relative path would depend on the folder the app happens to start in (/ under systemd).
    if value and not Path(value).expanduser().is_absolute():
        raise ValueError(f"must be an absolute path or start with ~/, not {value!r}")
    return value


class PollSection(Section):
    offers_s: float = Field(60.0, ge=OFFERS_FLOOR_S, le=INTERVAL_CEILING_S,
                            description="seconds between offer refreshes (at least 10)")
    instances_s: float = Field(5.0, ge=INSTANCES_FLOOR_S, le=INTERVAL_CEILING_S,
                               description="seconds between instance and metric refreshes (at least 2)")


class OffersSection(Section):
    disk_gb: int = Field(20, ge=1, le=MAX_DISK_GB, description="the disk you plan to rent; prices are quoted "
                                                               "all-in at this size (GB)")
    min_reliability: float = Field(0.95, ge=0.0, le=1.0, description="hide Vast hosts below this reliability "
                                                                      "(a fraction, 0–1)")
    limit: int = Field(10_000, ge=100, le=50_000, description="most offers asked of one provider per refresh")


class ProviderSection(Section):
    enabled: bool = Field(True, description="false keeps the provider off even when a key is bound")
    api_key_file: str = Field("", description="read the API key from this file instead of the vault")
    api_key_command: str = Field("", description="run this command and use its output as the API key "
                                                 "(e.g. \"pass show vast\")")

    _check_key_file = field_validator("api_key_file")(absolute_path)

    @field_validator("api_key_command")
    @classmethod
    def _one_key_source(cls, value: str, info: ValidationInfo) -> str:
        # A field validator rather than a model one: its error names this key, so it gets a file:line.
        if not value:
            return value
        command_line(value, "must name a program to run")
        if info.data.get("api_key_file"):
            raise ValueError("set api_key_file or api_key_command, not both")
        return value


class VastSection(ProviderSection):
    url: str = Field("https://console.vast.ai", description="API endpoint")

    _check_url = field_validator("url")(endpoint_url)


class RunpodSection(ProviderSection):
    graphql_url: str = Field("https://api.runpod.io/graphql", description="GraphQL endpoint")
    rest_url: str = Field("https://api.runpod.io/v2", description="REST endpoint (restart, logs)")

    _check_urls = field_validator("graphql_url", "rest_url")(endpoint_url)


class LambdaSection(ProviderSection):
    url: str = Field("https://cloud.lambda.ai/api/v1", description="API endpoint")
    ssh_key_name: str = Field("", description="name of an SSH key registered at cloud.lambda.ai; Lambda "
                                              "needs exactly one per launch")

    _check_url = field_validator("url")(endpoint_url)


class TensordockSection(ProviderSection):
    url: str = Field("https://dashboard.tensordock.com/api/v2", description="API endpoint")
    ssh_public_key: str = Field("", description="public key text (ssh-ed25519 …) put on new TensorDock VMs")

    _check_url = field_validator("url")(endpoint_url)


class ProvidersSection(Section):
    vast: VastSection = VastSection()
    runpod: RunpodSection = RunpodSection()
    lambda_: LambdaSection = Field(LambdaSection(), alias="lambda")
    tensordock: TensordockSection = TensordockSection()

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False, populate_by_name=True)

    def of(self, provider: str) -> ProviderSection:
        """The section of ``provider`` (``vast``, ``runpod``, ``lambda``, ``tensordock``)."""
        return {"vast": self.vast, "runpod": self.runpod, "lambda": self.lambda_,
                "tensordock": self.tensordock}[provider]


class DemoSection(Section):
    seed: int = Field(42, description="the simulated market's seed (the same seed gives the same market)")
    vast_offers: int = Field(3200, ge=100, le=30_000, description="simulated Vast machines; 18000 fills the "
                                                                   "table with ~20,000 offers")


class UiSection(Section):
    theme: str = Field("textual-dark", min_length=1, max_length=64,
                       description="a Textual theme, e.g. textual-dark, textual-light, nord, gruvbox; written back "
                                   "when you change the theme in the app")
    default_pane: Literal["offers", "instances", "monitor", "rules"] = Field(
        "offers", description="the pane shown at start; written back by the palette's \"Make this pane the default\"")
    keys: dict[str, str] = Field(default_factory=dict,
                                 description=f"rebind keys by id ({', '.join(KEY_ACTIONS)}) to a key or "
                                             "comma-separated keys, e.g. { sort_pergpu = \"u\", monitor = \"f3\" }")

    @field_validator("keys")
    @classmethod
    def _known_actions(cls, keys: dict[str, str]) -> dict[str, str]:
        for action, key in keys.items():
            if action not in KEY_ACTIONS:
                raise ValueError(f"unknown action {action!r}{did_you_mean(action, KEY_ACTIONS)} "
                                 f"(known: {', '.join(KEY_ACTIONS)})")
            if not key.strip() or len(key) > 32:
                raise ValueError(f"key for {action!r} must be a key name such as \"u\" or \"f3\"")
        return keys


class CostsSection(Section):
    timezone: str = Field("", description="IANA time zone for \"today\" and \"this month\" (empty: the "
                                          "system's), e.g. Europe/Berlin")

    @field_validator("timezone")
    @classmethod
    def _real_zone(cls, value: str) -> str:
        if not value:
            return value
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            hint = did_you_mean(value, sorted(available_timezones()))
            raise ValueError(f"unknown time zone {value!r}{hint}") from None
        return value


class RetentionSection(Section):
    metrics_raw: Seconds = Field(4 * HOUR, gt=0, description=(
        "how long raw metric samples are kept at their native rate (charts up to 2 h and rules' FOR windows read "
        "them; about 6 MB an hour for 100 four-GPU instances at 5 s)"))
    metrics_1m: Seconds = Field(7 * DAY, gt=0, description="how long one-minute metric rollups are kept")
    metrics_1h: Seconds = Field(90 * DAY, gt=0, description="how long hourly metric rollups are kept")
    price_history: Seconds = Field(90 * DAY, gt=0, description="how long offer price statistics are kept")
    audit: Seconds = Field(365 * DAY, gt=0, description="how long the audit log of actions is kept")


def _word_list(value: object) -> object:
    """A list as TOML writes it, or as text from the environment or --set: ``["a", "b"]`` or ``a,b``."""
    if not isinstance(value, str):
        return value
    text = value.strip()
    if text.startswith("["):
        try:
            parsed: Any = json.loads(text)
        except ValueError:
            raise ValueError('write a list such as ["lambda", "tensordock"] or lambda,tensordock') from None
        return parsed
    return [word.strip() for word in text.split(",") if word.strip()]


WordList = Annotated[list[str], BeforeValidator(_word_list)]
_SSH_USER = re.compile(r"[A-Za-z_][A-Za-z0-9_.-]{0,31}")


class MonitorSection(Section):
    ssh_command: str = Field("ssh", description="the ssh program, or a command line such as \"tsh ssh\"; it is "
                                                "run as COMMAND -p PORT [-i IDENTITY] USER@HOST nvidia-smi …")
    ssh_user: str = Field("", description="log in as this user (empty: the provider's usual one, e.g. ubuntu on "
                                          "Lambda, root on Vast and RunPod)")
    ssh_identity: str = Field("", description="private key file passed as -i (empty: ssh's own choice)")
    interval_s: float = Field(15.0, ge=MONITOR_FLOOR_S, le=INTERVAL_CEILING_S,
                              description="seconds between nvidia-smi samples of one instance (at least 5)")
    ssh_providers: WordList = Field(["lambda", "tensordock"],
                                    description="providers sampled over SSH (vast and runpod only when their own "
                                                "metrics are empty); [] turns the sampler off")

    @field_validator("ssh_command")
    @classmethod
    def _a_command_line(cls, value: str) -> str:
        return command_line(value, "must name a program to run, e.g. \"ssh\"")

    @field_validator("ssh_user")
    @classmethod
    def _a_user_name(cls, value: str) -> str:
        if value and not _SSH_USER.fullmatch(value):
            raise ValueError(f"must be a user name (letters, digits, _ . -), not {value!r}")
        return value

    _check_identity = field_validator("ssh_identity")(absolute_path)

    @field_validator("ssh_providers")
    @classmethod
    def _known_providers(cls, names: list[str]) -> list[str]:
        known = tuple(field.alias or name for name, field in ProvidersSection.model_fields.items())
        for name in names:
            if name not in known:
                raise ValueError(f"unknown provider {name!r}{did_you_mean(name, known)} (known: {', '.join(known)})")
        return list(dict.fromkeys(names))


class AutomationSection(Section):
    enabled: bool = Field(True, description="false: this process never runs rules (another may, e.g. the daemon)")
    rules_file: str = Field("automation.rules", min_length=1,
                            description="the rule file; a relative path is relative to the config file's folder")
    cooldown: Seconds = Field(15 * 60.0, ge=1.0, le=7 * DAY,
                              description="after a rule acts on an instance it waits this long before acting on it "
                                          "again (failed attempts are retried inside it)")
    destructive_per_hour: int = Field(10, ge=1, le=1000,
                                      description="at most this many stop / destroy / restart / relaunch / migrate "
                                                  "firings per hour; the next one pauses automation")
    fleet_share: float = Field(0.5, gt=0.0, le=1.0,
                               description="a rule that would act on more than this share of the fleet (and on "
                                           "more than 2 instances) at once does nothing and alerts (a fraction, 0–1)")
    dry_run: bool = Field(False, description="the mode of a rule that does not say: true only logs and alerts what "
                                             "it would do")

    @field_validator("rules_file")
    @classmethod
    def _a_file_name(cls, value: str) -> str:
        if value.endswith(("/", "\\")) or "\x00" in value:
            raise ValueError(f"must name a file, not {value!r}")
        return value


ALERT_CHANNELS = ("telegram", "email", "webhook")
ALERT_KINDS = ("rule_fired", "rule_warning", "rule_notify", "instance_down", "provider_down", "spend", "launch",
               "price", "digest")
"""The event kinds ``[alerts] routes`` may name (tests and digests are not routed)."""
_QUIET_HOURS = re.compile(r"([01]\d|2[0-3]):([0-5]\d)-([01]\d|2[0-3]):([0-5]\d)")
_CHAT_ID = re.compile(r"-?\d{1,20}|@[A-Za-z][A-Za-z0-9_]{3,31}")
_ADDRESS = re.compile(r"[^@\s<>\"',;]+@[^@\s<>\"',;]+\.[^@\s<>\"',;]+")
MAX_SPEND_THRESHOLD = 1_000_000.0
EMAIL_NEEDS_ADDRESSES = "[alerts.email] needs from (the sender) and to (at least one recipient) besides host"


def _email_address(value: str) -> str:
    if not _ADDRESS.fullmatch(value):
        raise ValueError(f"must be an e-mail address such as ops@example.com, not {value!r}")
    return value


def quiet_window(text: str) -> tuple[int, int] | None:
    """``"23:00-07:00"`` as minutes after midnight (start, end); None for ``""``."""
    found = _QUIET_HOURS.fullmatch(text)
    if found is None:
        return None
    hour_1, minute_1, hour_2, minute_2 = (int(part) for part in found.groups())
    return hour_1 * 60 + minute_1, hour_2 * 60 + minute_2


class TelegramAlertsSection(Section):
    chat_id: str = Field("", description="the chat alerts go to: a number (-100… for groups) or an @channel name; "
                                         "the bot token lives in the vault or COMPUTEHUB_TELEGRAM_TOKEN")
    base_url: str = Field("https://api.telegram.org/bot", description="the Bot API base URL (a local Bot API "
                                                                     "server or a loopback fake works too)")

    _check_url = field_validator("base_url")(endpoint_url)

    @field_validator("chat_id")
    @classmethod
    def _a_chat(cls, value: str) -> str:
        if value and not _CHAT_ID.fullmatch(value):
            raise ValueError(f"must be a chat number such as -1001234567890 or an @channel name, not {value!r}")
        return value


class EmailAlertsSection(Section):
    host: str = Field("", max_length=253, description="the SMTP server; the password lives in the vault or "
                                                      "COMPUTEHUB_SMTP_PASSWORD")
    port: int = Field(0, ge=0, le=65535, description="the SMTP port (0: 587 for starttls, 465 for tls, 25 for none)")
    security: Literal["starttls", "tls", "none"] = Field("starttls", description="starttls, tls (implicit, SMTPS) "
                                                                                 "or none")
    username: str = Field("", description="log in as this user (empty: no login)")
    from_: str = Field("", alias="from", description="the sender address")
    to: WordList = Field([], description="the recipients, e.g. [\"ops@example.com\"]")

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False, validate_default=True, populate_by_name=True)

    @field_validator("host")
    @classmethod
    def _a_host(cls, value: str) -> str:
        if value and not re.fullmatch(r"[A-Za-z0-9.:\[\]-]+", value):
            raise ValueError(f"must be a host name or address, not {value!r}")
        return value

    @field_validator("from_")
    @classmethod
    def _a_sender(cls, value: str) -> str:
        return _email_address(value) if value else value

    @field_validator("to")
    @classmethod
    def _recipients(cls, value: list[str]) -> list[str]:
        return list(dict.fromkeys(_email_address(address) for address in value))

    @property
    def effective_port(self) -> int:
        return self.port or {"starttls": 587, "tls": 465, "none": 25}[self.security]


class WebhookAlertsSection(Section):
    url: str = Field("", description="where alerts are POSTed as JSON, signed Standard Webhooks style with the "
                                     "secret in the vault or COMPUTEHUB_WEBHOOK_SECRET (whsec_…)")
    format: Literal["generic", "slack", "discord"] = Field("generic", description="generic (signed JSON), slack "
                                                                                  "or discord")

    @field_validator("url")
    @classmethod
    def _an_endpoint(cls, value: str) -> str:
        return endpoint_url(value) if value else value


class AlertsSection(Section):
    routes: dict[str, WordList] = Field(
        default_factory=dict, description=f"which channels get which kind of alert ({', '.join(ALERT_KINDS)}), "
                                          "e.g. { spend = [\"email\"] }; a kind not named goes to every channel")
    group_interval: Seconds = Field(300.0, ge=1.0, le=DAY, description="later alerts of the same kind within this "
                                                                       "time fold into one digest")
    repeat_interval: Seconds = Field(4 * HOUR, ge=60.0, le=7 * DAY,
                                     description="a firing alert nobody acknowledged is sent again this often")
    quiet_hours: str = Field("", description="e.g. \"23:00-07:00\" in [costs] timezone: only critical alerts go "
                                             "out then, the rest wait until it ends (empty: never quiet)")
    fallback: str = Field("", description="the channel that gets a copy of what another channel could not deliver")
    provider_down_after: Seconds = Field(300.0, ge=10.0, le=DAY,
                                         description="alert when a provider is unreachable or rate-limited this long")
    spend_thresholds: list[float] = Field(default_factory=list, description="alert when spend today crosses each "
                                                                            "of these dollar amounts, e.g. [50, 200]")
    telegram: TelegramAlertsSection = TelegramAlertsSection()
    email: EmailAlertsSection = EmailAlertsSection()
    webhook: WebhookAlertsSection = WebhookAlertsSection()

    @field_validator("routes")
    @classmethod
    def _known_routes(cls, routes: dict[str, list[str]]) -> dict[str, list[str]]:
        for kind, channels in routes.items():
            if kind not in ALERT_KINDS:
                raise ValueError(f"unknown alert kind {kind!r}{did_you_mean(kind, ALERT_KINDS)} "
                                 f"(known: {', '.join(ALERT_KINDS)})")
            for channel in channels:
                _a_channel(channel)
        return routes

    @field_validator("quiet_hours")
    @classmethod
    def _a_window(cls, value: str) -> str:
        if value and quiet_window(value) is None:
            raise ValueError(f"must be a time window such as \"23:00-07:00\", not {value!r}")
        return value

    @field_validator("fallback")
    @classmethod
    def _a_fallback(cls, value: str) -> str:
        return _a_channel(value) if value else value

    @field_validator("spend_thresholds", mode="before")
    @classmethod
    def _listed(cls, value: object) -> object:
        return _word_list(value)

    @field_validator("spend_thresholds")
    @classmethod
    def _plausible_amounts(cls, amounts: list[float]) -> list[float]:
        for amount in amounts:
            if not 0 < amount <= MAX_SPEND_THRESHOLD:
                raise ValueError(f"each amount must be > 0 and ≤ {MAX_SPEND_THRESHOLD:g} dollars, not {amount:g}")
        return sorted(set(amounts))

    def channel_names(self) -> list[str]:
        """The channels that are on: a channel is on once its section names where to send."""
        on = {"telegram": bool(self.telegram.chat_id), "email": bool(self.email.host),
              "webhook": bool(self.webhook.url)}
        return [name for name in ALERT_CHANNELS if on[name]]

    def channel_gaps(self, present: Collection[str]) -> list[str]:
        """Why each channel whose section is ``present`` (names some setting) cannot send, secrets aside: the
        file loads, but the channel stays off or fails; ``config validate`` warns of these."""
        gaps: list[str] = []
        if "telegram" in present and not self.telegram.chat_id:
            gaps.append("[alerts.telegram] has no chat_id, so Telegram is off: run `computehub-tui notify "
                        "telegram-setup` to find it")
        if "email" in present:
            if not self.email.host:
                gaps.append("[alerts.email] has no host, so e-mail is off")
            elif not self.email.from_ or not self.email.to:
                gaps.append(EMAIL_NEEDS_ADDRESSES)
        if "webhook" in present and not self.webhook.url:
            gaps.append("[alerts.webhook] has no url, so the webhook is off")
        return gaps


def _a_channel(name: str) -> str:
    if name not in ALERT_CHANNELS:
        raise ValueError(f"unknown channel {name!r}{did_you_mean(name, ALERT_CHANNELS)} "
                         f"(known: {', '.join(ALERT_CHANNELS)})")
    return name


class Settings(Section):
    """The whole config file."""

    poll: PollSection = PollSection()
    offers: OffersSection = OffersSection()
    providers: ProvidersSection = ProvidersSection()
    demo: DemoSection = DemoSection()
    ui: UiSection = UiSection()
    costs: CostsSection = CostsSection()
    retention: RetentionSection = RetentionSection()
    monitor: MonitorSection = MonitorSection()
    automation: AutomationSection = AutomationSection()
    alerts: AlertsSection = AlertsSection()


def did_you_mean(word: str, choices: tuple[str, ...] | list[str]) -> str:
    """`` (did you mean 'x'?)`` for the closest of ``choices``, or ""."""
    close = get_close_matches(word, choices, n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""
