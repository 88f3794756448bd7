"""The Telegram channel against a loopback fake Bot API: plain text with buttons, every error mapped, no token leaks."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Iterator
from datetime import timedelta

import pytest
from fakes.telegram_api import BOT_USERNAME, FakeTelegram
from loopback import refused_port

from computehub_tui.domain.secret import Secret
from computehub_tui.notify.base import Button, DeliveryError, OutgoingMessage, PermanentError, TransientError
from computehub_tui.notify.telegram import (
    CONFLICT_PAUSE_S,
    GROUP_CHAT_INTERVAL_S,
    MAX_TEXT,
    PRIVATE_CHAT_INTERVAL_S,
    IncomingCallback,
    IncomingMessage,
    TelegramChannel,
    message_text,
    retry_after_seconds,
)

TOKEN = "4242:AAE-channel-test-token-0123456789"
CHAT = "555"


def alert(title: str = "Rule idle-stop fired", body: str = "stopped vast:123 after 30 min idle",
          buttons: tuple[Button, ...] = ()) -> OutgoingMessage:
    return OutgoingMessage("d1", "rule:idle-stop:vast:123", "rule_fired", "warning", title, body, {}, buttons)


@pytest.fixture
def fake() -> Iterator[FakeTelegram]:
    with FakeTelegram(TOKEN) as server:
        yield server


@pytest.fixture
async def channel(fake: FakeTelegram) -> AsyncIterator[TelegramChannel]:
    opened = TelegramChannel(Secret(TOKEN), CHAT, fake.base_url, timeout_s=2.0)
    yield opened
    await opened.aclose()


async def test_an_alert_goes_out_as_plain_text_with_its_buttons(fake: FakeTelegram, channel: TelegramChannel) -> None:
    hostile = "[bold]x[/] <b>y</b> *z* [@click=app.quit]q[/]"
    await channel.send(alert(title=f"GPU {hostile}", body="line 1\nline 2\x1b]52;c;Zm9v\x07",
                             buttons=(Button("Snooze 1 h", "snooze:w1"), Button("Cancel", "cancel:w1"))))

    [sent] = fake.sent
    assert sent.chat_id == CHAT
    assert sent.parse_mode is None  # provider text may carry markup: it is never parsed
    assert sent.text.startswith(f"GPU {hostile}\n\nline 1\nline 2")
    assert "\x1b" not in sent.text and "␛" in sent.text
    assert sent.buttons == [("Snooze 1 h", "snooze:w1"), ("Cancel", "cancel:w1")]


async def test_a_long_body_is_cut_to_telegrams_limit_with_a_marker() -> None:
    text = message_text("title", "x" * 10_000)
    assert len(text) == MAX_TEXT
    assert text.endswith("…(truncated)")


async def test_button_data_over_64_bytes_is_refused_before_sending(fake: FakeTelegram,
                                                                   channel: TelegramChannel) -> None:
    with pytest.raises(PermanentError, match="64 bytes"):
        await channel.send(alert(buttons=(Button("Ack", "ack:" + "k" * 70),)))
    assert fake.sent == []


def test_pacing_is_one_second_in_a_private_chat_and_three_in_groups_and_channels() -> None:
    assert TelegramChannel(Secret(TOKEN), "555", "http://127.0.0.1:1/bot").min_interval_s == PRIVATE_CHAT_INTERVAL_S
    assert TelegramChannel(Secret(TOKEN), "-100123", "http://127.0.0.1:1/bot").min_interval_s == GROUP_CHAT_INTERVAL_S
    assert TelegramChannel(Secret(TOKEN), "@gpu_alerts", "http://127.0.0.1:1/bot").min_interval_s == \
        GROUP_CHAT_INTERVAL_S


@pytest.mark.parametrize(("status", "description", "retry_after", "expected", "words"), [
    (429, "Too Many Requests: retry after 7", 7, TransientError, "rate limit"),
    (403, "Forbidden: bot was blocked by the user", None, PermanentError, "blocked"),
    (401, "Unauthorized", None, PermanentError, "token"),
    (400, "Bad Request: chat not found", None, PermanentError, "Chat not found"),
    (500, "Internal Server Error", None, TransientError, "Internal Server Error"),
    (502, "Bad Gateway", None, TransientError, "Bad Gateway"),
    (409, "Conflict: terminated by other getUpdates request", None, TransientError, "another program"),
])
async def test_every_server_error_is_mapped(fake: FakeTelegram, channel: TelegramChannel, status: int,
                                            description: str, retry_after: int | None,
                                            expected: type[DeliveryError], words: str) -> None:
    fake.fail_next("sendMessage", status, description, retry_after=retry_after)
    with pytest.raises(expected) as caught:
        await channel.send(alert())
    assert type(caught.value) is expected
    assert words in caught.value.reason
    assert TOKEN not in caught.value.reason and TOKEN not in str(caught.value)
    assert caught.value.__cause__ is None and caught.value.__suppress_context__
    if retry_after is not None:
        assert isinstance(caught.value, TransientError) and caught.value.retry_after == retry_after
    if status == 409:  # two of our processes poll one bot: the loser waits a minute, then tries again
        assert isinstance(caught.value, TransientError) and caught.value.retry_after == CONFLICT_PAUSE_S


async def test_a_slow_answer_is_a_transient_timeout(fake: FakeTelegram) -> None:
    channel = TelegramChannel(Secret(TOKEN), CHAT, fake.base_url, timeout_s=0.2)
    fake.slow_next("sendMessage", 5.0)
    try:
        with pytest.raises(TransientError, match="in time"):
            await channel.send(alert())
    finally:
        await channel.aclose()


async def test_a_refused_connection_is_transient() -> None:
    channel = TelegramChannel(Secret(TOKEN), CHAT, f"http://127.0.0.1:{refused_port()}/bot", timeout_s=2.0)
    try:
        with pytest.raises(TransientError, match="cannot reach Telegram"):
            await channel.send(alert())
    finally:
        await channel.aclose()


def test_retry_after_accepts_seconds_and_timedeltas_and_is_bounded() -> None:
    assert retry_after_seconds(timedelta(seconds=7)) == 7.0
    assert retry_after_seconds(3) == 3.0
    assert retry_after_seconds(1e308) == 3600.0
    assert retry_after_seconds(-5) == 0.0


async def test_the_token_is_in_no_log_line_even_at_debug(fake: FakeTelegram, caplog: pytest.LogCaptureFixture,
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    caplog.set_level(logging.DEBUG)
    for name in ("httpx", "httpcore", "telegram"):
        caplog.set_level(logging.DEBUG, logger=name)
    channel = TelegramChannel(Secret(TOKEN), CHAT, fake.base_url, timeout_s=2.0)
    try:
        await channel.send(alert())
        fake.fail_next("sendMessage", 401, "Unauthorized")
        with pytest.raises(PermanentError):
            await channel.send(alert())
        await channel.get_me()
        await channel.get_updates(None, 0)
    finally:
        await channel.aclose()
    logged = "\n".join(caplog.messages) + caplog.text
    assert "HTTP Request" in logged  # httpx did log each request: the test would see a token in it
    secret_part = TOKEN.split(":")[1]
    assert secret_part not in logged
    captured = capsys.readouterr()
    assert secret_part not in captured.out + captured.err


async def test_get_me_get_updates_answer_and_remove_buttons(fake: FakeTelegram, channel: TelegramChannel) -> None:
    identity = await channel.get_me()
    assert identity.username == BOT_USERNAME

    first = fake.user_message(555, "/status\x1b[2J", username="alice")
    fake.callback_query(555, "ack:instance-down:vast:1", message_id=9)
    batch = await channel.get_updates(None, 0)
    message, callback = batch.items
    assert isinstance(message, IncomingMessage) and message.text == "/status" and message.chat.id == "555"
    assert message.chat.title == "@alice" and message.update_id == first
    assert isinstance(callback, IncomingCallback) and callback.data == "ack:instance-down:vast:1"
    assert callback.message_id == 9

    assert (await channel.get_updates(batch.next_offset, 0)).items == []  # confirmed: never handed out again
    await channel.answer_callback(callback.callback_id, "acknowledged")
    await channel.remove_buttons(callback.chat.id, callback.message_id)
    assert fake.answered[0]["callback_query_id"] == callback.callback_id
    assert fake.edited[0]["message_id"] == "9" and "inline_keyboard" not in fake.edited[0].get("reply_markup", "")
