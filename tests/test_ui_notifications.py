"""Settings → Notifications driven with Pilot over an in-memory alerts source: channels, the form, send test, the log."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from pathlib import Path
from types import SimpleNamespace
from typing import Any, cast

import pytest
from fakes.alerts_source import HOSTILE, NOW, TOKEN, FakeAlertsSource, configured_source, delivery
from textual.app import App
from textual.pilot import Pilot
from textual.widgets import Input, OptionList, Select
from tui import run_palette, screen_text, small_app, wait_for

from computehub_tui.domain.secret import Secret
from computehub_tui.engine.events import AlertQueued
from computehub_tui.engine.hub import Hub
from computehub_tui.engine.runtime import EngineRuntime
from computehub_tui.ui.alerts_source import (
    ATTEMPTS_SHOWN,
    UNAVAILABLE,
    AlertsError,
    AlertsUnavailable,
    ChannelInfo,
    HubAlertsSource,
    destination,
    masked_secret,
)
from computehub_tui.ui.screens.confirm import ConfirmScreen
from computehub_tui.ui.screens.help import HelpScreen
from computehub_tui.ui.screens.notifications import (
    NO_CHANNELS_TEXT,
    NOTHING_DELIVERED_TEXT,
    ChannelKindScreen,
    DeliveryLogScreen,
    NotificationsScreen,
)
from computehub_tui.ui.screens.notifications_form import DEFAULT_BASE_URL, ChannelFormScreen, validate_channel
from computehub_tui.ui.screens.settings import SettingsScreen

SIZE = (120, 36)
pytestmark = pytest.mark.usefixtures("utc")


class Host(App[None]):
    """Only the Notifications screen, over ``source``: the screens need nothing else of the app."""

    def __init__(self, source: Any) -> None:
        super().__init__()
        self.source = source

    def on_mount(self) -> None:
        self.push_screen(NotificationsScreen(self.source))


async def on_channels(pilot: Pilot) -> NotificationsScreen:
    await wait_for(pilot, lambda: isinstance(pilot.app.screen, NotificationsScreen) and pilot.app.screen.is_mounted
                   and bool(pilot.app.screen.table.rows))
    screen = pilot.app.screen
    assert isinstance(screen, NotificationsScreen)
    return screen


async def select_channel(pilot: Pilot, screen: NotificationsScreen, name: str) -> None:
    screen.table.move_to(screen.table.index_of(name))
    await pilot.pause()


async def open_form(pilot: Pilot, keys: tuple[str, ...]) -> ChannelFormScreen:
    await pilot.press(*keys)
    await wait_for(pilot, lambda: isinstance(pilot.app.screen, ChannelFormScreen))
    form = pilot.app.screen
    assert isinstance(form, ChannelFormScreen)
    return form


async def add_form(pilot: Pilot, kind: str) -> ChannelFormScreen:
    await pilot.press("a")
    await wait_for(pilot, lambda: isinstance(pilot.app.screen, ChannelKindScreen))
    options = pilot.app.screen.query_one(OptionList)
    options.highlighted = ["telegram", "email", "webhook"].index(kind)
    return await open_form(pilot, ("enter",))


def field(form: ChannelFormScreen, name: str) -> Input:
    return form.query_one(f"#field-{name}", Input)


def error_under(form: ChannelFormScreen, name: str) -> str:
    return str(form.query_one(f"#{name}-error").render())


def row_line(pilot: Pilot, word: str) -> str:
    return next(line for line in screen_text(pilot).splitlines() if word in line)


async def run_host(source: Any, steps: Callable[[Pilot], Awaitable[None]]) -> None:
    async with Host(source).run_test(size=SIZE) as pilot:
        await steps(pilot)


# -- the channel list --------------------------------------------------------------------------


async def test_the_list_shows_each_channel_with_its_destination_and_only_the_last_four_of_its_secret() -> None:
    async def steps(pilot: Pilot) -> None:
        await on_channels(pilot)
        text = screen_text(pilot)
        telegram = row_line(pilot, "Telegram")
        assert " on " in telegram and "-1001234567890" in telegram and "••••Dsaw" in telegram
        email = row_line(pilot, "E-mail")
        assert " on " in email and "me@example.com, oncall@example.com" in email and "••••aple" in email
        assert " off " in row_line(pilot, "Webhook")
        assert TOKEN not in text and "correct-horse" not in text
        assert NO_CHANNELS_TEXT not in text

    await run_host(configured_source(), steps)


async def test_with_no_channel_the_list_says_how_to_add_one() -> None:
    async def steps(pilot: Pilot) -> None:
        await on_channels(pilot)
        assert NO_CHANNELS_TEXT in screen_text(pilot)
        assert all(" off " in row_line(pilot, name) for name in ("Telegram", "E-mail", "Webhook"))

    await run_host(FakeAlertsSource(), steps)


class CarelessSource(FakeAlertsSource):
    """Hands the whole secret over where only its mask belongs."""

    async def channels(self) -> list[ChannelInfo]:
        return [replace(channel, secret_masked=self.secrets.get(channel.name, ""))
                for channel in await super().channels()]


async def test_a_source_that_hands_over_a_whole_secret_still_shows_only_its_last_four() -> None:
    source = CarelessSource(configured={"telegram": {"chat_id": "42"}}, secrets={"telegram": TOKEN})

    async def steps(pilot: Pilot) -> None:
        screen = await on_channels(pilot)
        assert "••••Dsaw" in row_line(pilot, "Telegram") and TOKEN not in screen_text(pilot)
        form = await open_form(pilot, ("e",))
        assert form.query_one("#field-secret", Input).placeholder.startswith("••••Dsaw stored")
        await pilot.press("escape")
        await wait_for(pilot, lambda: pilot.app.screen is screen)
        await pilot.press("x")
        await wait_for(pilot, lambda: isinstance(pilot.app.screen, ConfirmScreen))
        confirm = pilot.app.screen
        assert isinstance(confirm, ConfirmScreen) and TOKEN not in confirm.body and "••••Dsaw" in confirm.body

    await run_host(source, steps)


def test_a_secret_handed_over_in_full_is_still_shown_as_its_last_four() -> None:
    assert masked_secret(TOKEN) == "••••Dsaw"
    assert masked_secret("••••Dsaw") == "••••Dsaw"
    assert masked_secret("short") == "••••"
    assert masked_secret("") == ""


def test_a_webhook_destination_is_only_its_host_because_the_path_is_often_the_secret() -> None:
    channel = ChannelInfo("webhook", True, {"url": "https://hooks.slack.com/services/T0/B0/s3cr3tpath",
                                            "format": "slack"})
    assert destination(channel) == "hooks.slack.com (slack)"


# -- add / edit / remove --------------------------------------------------------------------------


async def test_adding_telegram_saves_the_contract_names_and_the_token() -> None:
    source = FakeAlertsSource()

    async def steps(pilot: Pilot) -> None:
        screen = await on_channels(pilot)
        form = await add_form(pilot, "telegram")
        assert field(form, "base_url").value == DEFAULT_BASE_URL
        field(form, "chat_id").value = "@gpu_alerts"
        secret = field(form, "secret")
        assert secret.password
        secret.value = TOKEN
        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: pilot.app.screen is screen and " on " in row_line(pilot, "Telegram"))
        assert source.saves == [("telegram", {"chat_id": "@gpu_alerts", "base_url": DEFAULT_BASE_URL}, TOKEN)]
        assert "••••Dsaw" in row_line(pilot, "Telegram") and TOKEN not in screen_text(pilot)

    await run_host(source, steps)


async def test_editing_shows_the_settings_never_the_secret_and_an_empty_secret_keeps_the_stored_one() -> None:
    source = configured_source()

    async def steps(pilot: Pilot) -> None:
        screen = await on_channels(pilot)
        await select_channel(pilot, screen, "email")
        form = await open_form(pilot, ("e",))
        assert field(form, "host").value == "smtp.example.com"
        assert field(form, "port").value == "587"
        assert field(form, "to").value == "me@example.com, oncall@example.com"
        assert field(form, "secret").value == ""
        assert "••••aple" in field(form, "secret").placeholder and "correct-horse" not in screen_text(pilot)
        field(form, "port").value = "465"
        form.query_one("#field-security", Select).value = "tls"
        field(form, "to").value = "me@example.com,  , pager@example.org"
        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: pilot.app.screen is screen and bool(source.saves))
        name, values, secret = source.saves[-1]
        assert (name, secret) == ("email", None)
        assert values == {"host": "smtp.example.com", "port": 465, "security": "tls", "username": "alerts",
                          "from": "alerts@example.com", "to": ["me@example.com", "pager@example.org"]}
        assert source.secrets["email"] == "correct-horse-battery-staple"

    await run_host(source, steps)


async def test_enter_on_a_row_opens_its_form_and_esc_leaves_without_saving() -> None:
    source = configured_source()

    async def steps(pilot: Pilot) -> None:
        screen = await on_channels(pilot)
        await select_channel(pilot, screen, "telegram")
        form = await open_form(pilot, ("enter",))
        assert field(form, "chat_id").value == "-1001234567890"
        await pilot.press("escape")
        await wait_for(pilot, lambda: pilot.app.screen is screen)
        assert source.saves == []

    await run_host(source, steps)


async def test_wrong_values_show_their_reason_under_the_field_and_nothing_is_saved() -> None:
    source = FakeAlertsSource()

    async def steps(pilot: Pilot) -> None:
        await on_channels(pilot)
        form = await add_form(pilot, "email")
        field(form, "host").value = "smtp.example.com"
        field(form, "port").value = "70000"
        field(form, "from").value = "alerts"
        field(form, "to").value = "me@example.com, nobody"
        await pilot.press("ctrl+s")
        await pilot.pause()
        assert "1 to 65535" in error_under(form, "port")
        assert "an address like" in error_under(form, "from")
        assert "not an address: nobody" in error_under(form, "to")
        assert error_under(form, "host") == ""
        assert source.saves == [] and pilot.app.screen is form
        assert form.focused is field(form, "port")
        field(form, "port").value = "2525"
        field(form, "from").value = "alerts@example.com"
        field(form, "to").value = "me@example.com"
        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: bool(source.saves))
        assert source.saves[0][1]["port"] == 2525 and source.saves[0][1]["to"] == ["me@example.com"]

    await run_host(source, steps)


def test_each_check_names_what_a_right_value_looks_like() -> None:
    _, telegram = validate_channel("telegram", {"chat_id": "my chat", "base_url": "ftp://x"}, "", secret_stored=False)
    assert telegram == {"chat_id": "a number (123456789, -100…) or an @channelname",
                        "base_url": "an http:// or https:// URL", "secret": "paste the bot token from @BotFather"}
    _, kept = validate_channel("telegram", {"chat_id": "-100123", "base_url": DEFAULT_BASE_URL}, "",
                               secret_stored=True)
    assert kept == {}
    _, bad_token = validate_channel("telegram", {"chat_id": "42", "base_url": DEFAULT_BASE_URL}, "not-a-token",
                                    secret_stored=True)
    assert bad_token == {"secret": "a bot token looks like 123456789:AAH…"}
    _, webhook = validate_channel("webhook", {"url": "hooks.example.com", "format": "generic"}, "whsec_%%%",
                                  secret_stored=False)
    assert webhook == {"url": "an http:// or https:// URL",
                       "secret": "a signing secret looks like whsec_ followed by base64"}
    _, signed = validate_channel("webhook", {"url": "http://127.0.0.1:9000/hook", "format": "slack"},
                                 "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", secret_stored=False)
    assert signed == {}
    _, email = validate_channel("email", {"host": "", "port": "0", "to": " , "}, "", secret_stored=False)
    assert email["host"] == "enter the SMTP server's host name" and email["port"] == "a port number from 1 to 65535"
    assert email["to"] == "at least one address, like me@example.com"


async def test_a_failed_save_keeps_everything_typed_and_says_why() -> None:
    source = FakeAlertsSource(save_error="cannot write ~/.config/computehub/config.toml: permission denied")

    async def steps(pilot: Pilot) -> None:
        await on_channels(pilot)
        form = await add_form(pilot, "webhook")
        field(form, "url").value = "https://hooks.example.com/x"
        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: "could not save" in str(form.query_one("#form-status").render()))
        assert "permission denied" in str(form.query_one("#form-status").render())
        assert pilot.app.screen is form and field(form, "url").value == "https://hooks.example.com/x"
        source.save_error = ""
        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: isinstance(pilot.app.screen, NotificationsScreen))
        assert len(source.saves) == 2

    await run_host(source, steps)


async def test_remove_asks_first_and_only_yes_removes() -> None:
    source = configured_source()

    async def steps(pilot: Pilot) -> None:
        screen = await on_channels(pilot)
        await select_channel(pilot, screen, "telegram")
        await pilot.press("x")
        await wait_for(pilot, lambda: isinstance(pilot.app.screen, ConfirmScreen))
        confirm = pilot.app.screen
        assert isinstance(confirm, ConfirmScreen)
        assert "Remove the Telegram channel?" in confirm.title_text and "••••Dsaw" in confirm.body
        await pilot.press("n")
        await wait_for(pilot, lambda: pilot.app.screen is screen)
        assert source.removed == []
        await pilot.press("x")
        await wait_for(pilot, lambda: isinstance(pilot.app.screen, ConfirmScreen))
        await pilot.press("y")
        await wait_for(pilot, lambda: " off " in row_line(pilot, "Telegram"))
        assert source.removed == ["telegram"]
        assert "Telegram channel removed." in screen_text(pilot)

    await run_host(source, steps)


async def test_remove_and_test_on_a_channel_that_is_off_only_say_so() -> None:
    source = configured_source()

    async def steps(pilot: Pilot) -> None:
        screen = await on_channels(pilot)
        await select_channel(pilot, screen, "webhook")
        await pilot.press("x", "t")
        await pilot.pause()
        assert pilot.app.screen is screen and source.removed == [] and source.tests_sent == []
        assert "Webhook channel is off" in screen_text(pilot)

    await run_host(source, steps)


# -- send test --------------------------------------------------------------------------------------


async def test_send_test_shows_progress_without_blocking_and_then_the_answer() -> None:
    source = configured_source()
    source.test_gate = asyncio.Event()
    source.test_answers["telegram"] = "message 42 delivered"

    async def steps(pilot: Pilot) -> None:
        screen = await on_channels(pilot)
        await select_channel(pilot, screen, "telegram")
        await pilot.press("t")
        await wait_for(pilot, lambda: "sending…" in row_line(pilot, "Telegram"))
        await select_channel(pilot, screen, "email")  # the UI answers while the test is on its way
        assert screen.table.current_row is not None and screen.table.current_row.name == "email"
        assert source.test_gate is not None
        source.test_gate.set()
        await wait_for(pilot, lambda: "✔ message 42 delivered" in row_line(pilot, "Telegram"))
        assert any("message 42 delivered" in str(n.message) for n in pilot.app._notifications)

    await run_host(source, steps)


class ChannelRefused(Exception):
    """Shaped like notify's DeliveryError: a one-line ``reason``."""

    def __init__(self, reason: str) -> None:
        super().__init__(f"long internal text {reason}")
        self.reason = reason


async def test_a_failed_test_shows_its_one_line_reason_in_the_row_and_a_toast() -> None:
    source = configured_source()
    source.test_answers["email"] = ChannelRefused("535 5.7.8 authentication failed\nfor user alerts")

    async def steps(pilot: Pilot) -> None:
        screen = await on_channels(pilot)
        await select_channel(pilot, screen, "email")
        await pilot.press("t")
        reason = "535 5.7.8 authentication failed for user alerts"
        await wait_for(pilot, lambda: f"✖ test to E-mail failed: {reason}" in screen_text(pilot))
        assert screen.tests["email"] == (f"✖ {reason}", "red") and "✖ 535 5.7.8" in row_line(pilot, "E-mail")
        toasts = [n for n in pilot.app._notifications if n.severity == "error"]
        assert [str(n.message) for n in toasts] == ["535 5.7.8 authentication failed for user alerts"]
        assert "long internal text" not in screen_text(pilot)

    await run_host(source, steps)


# -- the delivery log ------------------------------------------------------------------------------


async def open_log(pilot: Pilot) -> DeliveryLogScreen:
    await on_channels(pilot)
    await pilot.press("l")
    await wait_for(pilot, lambda: isinstance(pilot.app.screen, DeliveryLogScreen) and pilot.app.screen.is_mounted
                   and pilot.app.screen.table.empty_text != "loading…")
    log = pilot.app.screen
    assert isinstance(log, DeliveryLogScreen)
    return log


async def test_the_log_lists_every_state_newest_first_with_attempts_next_try_and_error() -> None:
    source = configured_source()

    async def steps(pilot: Pilot) -> None:
        log = await open_log(pilot)
        assert [row.delivery_id for row in log.table.rows] == ["d6", "d5", "d4", "d3", "d2", "d1"]
        text = screen_text(pilot)
        for state in ("sending", "queued", "dead ×1", "retrying ×3", "sent"):
            assert state in text
        retrying = row_line(pilot, "went down")
        assert "retrying ×3" in retrying and "08:00:30" in retrying and "HTTP 503" in retrying
        log.table.move_to(log.table.index_of("d4"))
        await pilot.pause()
        detail = str(log.query_one("#log-detail").render())
        assert "Forbidden: bot was blocked by the user" in detail and "rule_warning" in detail
        await pilot.press("escape")
        await wait_for(pilot, lambda: isinstance(pilot.app.screen, NotificationsScreen))

    await run_host(source, steps)


async def test_an_empty_log_says_nothing_was_delivered_and_r_reloads() -> None:
    source = FakeAlertsSource()

    async def steps(pilot: Pilot) -> None:
        log = await open_log(pilot)
        assert NOTHING_DELIVERED_TEXT in screen_text(pilot)
        source.rows = [delivery(1, "queued", attempts=0)]
        await pilot.press("r")
        await wait_for(pilot, lambda: len(log.table.rows) == 1)
        assert source.delivery_reads == 2

    await run_host(source, steps)


# -- hostile text ------------------------------------------------------------------------------------


async def test_hostile_text_from_the_source_is_shown_literally_and_never_acted_on() -> None:
    source = configured_source()
    source.configured["telegram"]["chat_id"] = HOSTILE
    source.rows = [delivery(1, "dead", title=HOSTILE, error=HOSTILE)]
    source.test_answers["telegram"] = ChannelRefused(HOSTILE)

    async def steps(pilot: Pilot) -> None:
        screen = await on_channels(pilot)
        assert "[bold]x[/] [@click=app.quit]q[/]" in row_line(pilot, "Telegram")
        await select_channel(pilot, screen, "telegram")
        await pilot.press("t")
        await wait_for(pilot, lambda: "✖ [bold]x[/]" in row_line(pilot, "Telegram"))
        form = await open_form(pilot, ("e",))
        assert "\x1b" not in field(form, "chat_id").value and "[@click=app.quit]" in field(form, "chat_id").value
        await pilot.press("escape")
        log = await open_log(pilot)
        assert "[bold]x[/] [@click=app.qui" in row_line(pilot, "dead")
        assert "[bold]x[/] [@click=app.quit]q[/] end" in screen_text(pilot)
        await pilot.click(log.query_one("#log-detail"))
        text = screen_text(pilot)
        assert "\x1b" not in text and "\x07" not in text and "ZXZpbA==" not in text  # the OSC 52 is gone whole
        assert pilot.app.is_running and isinstance(pilot.app.screen, DeliveryLogScreen)

    await run_host(source, steps)


# -- the adapter over hub.alerts ------------------------------------------------------------------------


def test_without_hub_alerts_the_adapter_says_alerts_are_not_available() -> None:
    source = HubAlertsSource(cast(Hub, SimpleNamespace(home_loop=None)))
    with pytest.raises(AlertsUnavailable, match=UNAVAILABLE):
        asyncio.run(source.channels())


async def test_the_screen_says_so_when_alerts_are_not_available() -> None:
    async def steps(pilot: Pilot) -> None:
        await wait_for(pilot, lambda: UNAVAILABLE in screen_text(pilot))
        await pilot.press("a", "t", "x", "l")
        await wait_for(pilot, lambda: isinstance(pilot.app.screen, DeliveryLogScreen)
                       and UNAVAILABLE in screen_text(pilot))

    await run_host(HubAlertsSource(cast(Hub, SimpleNamespace(home_loop=None))), steps)


class ServiceStandIn:
    """hub.alerts as the contract names it; records which loop each call ran on."""

    def __init__(self) -> None:
        self.loops: list[asyncio.AbstractEventLoop] = []
        self.leak = Secret("sk-live-QwErTyUiOpAsDfSECRET")

    def configured_channels(self) -> list[str]:
        return ["webhook"]

    async def channel_settings(self, name: str) -> tuple[dict[str, object], str]:
        return {"url": "https://hooks.example.com/path", "format": "discord"}, self.leak.reveal()

    async def deliveries(self, limit: int = 100, channel: str | None = None) -> list[Any]:
        self.loops.append(asyncio.get_running_loop())
        row = SimpleNamespace(delivery_id="7", channel="webhook", alert_key="k", kind="test", title="t\x1b[2J",
                              state="dead", attempts=1e308, next_attempt_at=float("nan"), created_at=NOW,
                              sent_at=None, last_error=f"401 for {self.leak.reveal()}")
        return [row] * (limit + 5)

    async def save_channel(self, name: str, values: dict[str, object], secret: str | None) -> None:
        raise ValueError(f"bad section\nwith {self.leak.reveal()}")

    async def remove_channel(self, name: str) -> None: ...

    async def send_test(self, channel: str) -> str:
        self.loops.append(asyncio.get_running_loop())
        return "200 OK"


def test_the_adapter_runs_on_the_engine_loop_and_hands_back_only_safe_bounded_text() -> None:
    runtime = EngineRuntime()
    runtime.start()
    try:
        async def make_hub() -> Any:
            return SimpleNamespace(home_loop=asyncio.get_running_loop(), alerts=ServiceStandIn())

        hub = runtime.submit(make_hub()).result(5)
        source = HubAlertsSource(cast(Hub, hub))

        async def from_the_ui_loop() -> None:
            ui_loop = asyncio.get_running_loop()
            assert await source.send_test("webhook") == "200 OK"
            rows = await source.deliveries(3)
            assert hub.alerts.loops == [hub.home_loop, hub.home_loop] and ui_loop is not hub.home_loop
            assert len(rows) == 3
            assert rows[0].title == "t" and rows[0].attempts == ATTEMPTS_SHOWN and rows[0].next_attempt_at is None
            assert "SECRET" not in rows[0].last_error and rows[0].last_error.startswith("401 for")
            channels = await source.channels()
            webhook = next(c for c in channels if c.name == "webhook")
            assert webhook.secret_masked == "••••CRET" and destination(webhook) == "hooks.example.com (discord)"
            assert [c.configured for c in channels] == [False, False, True]
            with pytest.raises(AlertsError) as raised:
                await source.save_channel("webhook", {}, None)
            assert "\n" not in str(raised.value) and "SECRET" not in str(raised.value)
            assert str(raised.value).startswith("bad section with")

        asyncio.run(from_the_ui_loop())
    finally:
        runtime.stop()


# -- in the app: Settings, the palette, help, engine events ------------------------------------------


async def test_settings_n_and_the_palette_open_notifications_and_a_queued_alert_reloads_the_log(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    source = configured_source()
    app = small_app(tmp_path)
    app.alerts_source_for = lambda hub: source
    async with app.run_test(size=(160, 45)) as pilot:
        await wait_for(pilot, lambda: app.hub is not None)
        await pilot.press("comma")
        await wait_for(pilot, lambda: isinstance(app.screen, SettingsScreen))
        await pilot.press("n")
        await on_channels(pilot)
        await pilot.press("l")
        await wait_for(pilot, lambda: isinstance(app.screen, DeliveryLogScreen) and source.delivery_reads == 1)
        source.rows = [*source.rows, delivery(9, "queued", attempts=0, title="new alert")]
        assert app.hub is not None
        app.hub.bus.publish(AlertQueued("rule:idle-stop:vast:109", "rule_fired", "warning", "new alert", ("webhook",)))
        await wait_for(pilot, lambda: source.delivery_reads == 2 and "new alert" in screen_text(pilot))
        await pilot.press("escape", "escape", "escape")
        await wait_for(pilot, lambda: len(app.screen_stack) == 1)
        await run_palette(pilot, "alert delivery log")
        await wait_for(pilot, lambda: isinstance(app.screen, DeliveryLogScreen))
        await pilot.press("escape")
        await run_palette(pilot, "Settings → Notifications")
        await on_channels(pilot)
        await pilot.press("question_mark")
        await wait_for(pilot, lambda: isinstance(app.screen, HelpScreen))
        help_screen = app.screen
        assert isinstance(help_screen, HelpScreen)
        sections = dict(help_screen.sections)
        assert ("t", "Send test") in sections["Notifications (n in Settings)"]
        assert ("n", "Notifications (alerts)") in sections["Settings (,)"]
        assert ("ctrl+s", "Save") in sections["Channel form (a or e in Notifications)"]
