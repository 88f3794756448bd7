"""The Telegram channel on python-telegram-bot: plain-text alerts with inline buttons, and the calls the bot needs."""

from __future__ import annotations

import logging
import warnings
from collections.abc import Awaitable, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import TypeVar

from telegram import Bot, Chat, InlineKeyboardButton, InlineKeyboardMarkup, Message, Update
from telegram.error import (
    BadRequest,
    ChatMigrated,
    Conflict,
    Forbidden,
    InvalidToken,
    NetworkError,
    RetryAfter,
    TelegramError,
    TimedOut,
)
from telegram.request import HTTPXRequest
from telegram.warnings import PTBDeprecationWarning

from computehub_tui.domain.secret import Secret, redact
from computehub_tui.domain.text import clean_text, show_controls
from computehub_tui.notify.base import Button, DeliveryError, OutgoingMessage, PermanentError, TransientError

DEFAULT_BASE_URL = "https://api.telegram.org/bot"
MAX_TEXT = 4096
"""Telegram's limit on one message's text (characters)."""
TRUNCATED = "\n…(truncated)"
MAX_CALLBACK_DATA = 64
"""Telegram's limit on a button's callback data (bytes)."""
PRIVATE_CHAT_INTERVAL_S = 1.0
GROUP_CHAT_INTERVAL_S = 3.0
"""Telegram allows about 1 message/s in one chat and 20/min in a group or channel."""
MAX_REASON = 200
CONFLICT_PAUSE_S = 60.0
"""How long a poller that lost getUpdates to another reader of the same bot waits before trying again."""
MAX_RETRY_AFTER_S = 3600.0
"""A retry_after beyond an hour is not believed (the worker would park the channel for days)."""
T = TypeVar("T")
_GUARDED_LOGGERS = ("httpx", "httpcore", "telegram")
"""Libraries that log request URLs, and a Bot API URL carries the bot token."""


@dataclass(frozen=True, slots=True)
class BotIdentity:
    """What getMe says about the bot (made safe)."""

    id: int
    username: str
    first_name: str


@dataclass(frozen=True, slots=True)
class ChatInfo:
    """Where an update came from (made safe): ``title`` is a group's title or a person's @username / name."""

    id: str
    kind: str
    title: str
    username: str = ""
    """The chat's public @name without the @ (a person, a public group or channel); "" when it has none."""


@dataclass(frozen=True, slots=True)
class IncomingMessage:
    update_id: int
    chat: ChatInfo
    text: str


@dataclass(frozen=True, slots=True)
class IncomingCallback:
    """A press of an inline button: ``data`` is the button's callback data, ``message_id`` the message under it."""

    update_id: int
    chat: ChatInfo
    callback_id: str
    message_id: int
    data: str


Incoming = IncomingMessage | IncomingCallback


@dataclass(frozen=True, slots=True)
class UpdateBatch:
    """One getUpdates answer: ``next_offset`` confirms every update in it, also the kinds the bot ignores."""

    next_offset: int | None
    items: list[Incoming]


def pacing_for(chat_id: str) -> float:
    """Seconds between two sends to ``chat_id``: a private chat has a positive id, groups a negative one or
    an ``@name`` (a channel)."""
    return PRIVATE_CHAT_INTERVAL_S if chat_id.isdigit() and int(chat_id) > 0 else GROUP_CHAT_INTERVAL_S


def message_text(title: str, body: str) -> str:
    """The plain text sent for an alert: its title, a blank line, its body; cut to Telegram's limit."""
    text = clean_text(title, MAX_TEXT)
    safe_body = show_controls(body).strip()
    if safe_body:
        text = f"{text}\n\n{safe_body}" if text else safe_body
    return text if len(text) <= MAX_TEXT else text[: MAX_TEXT - len(TRUNCATED)] + TRUNCATED


def retry_after_seconds(value: float | timedelta | None) -> float | None:
    """RetryAfter's delay in seconds (PTB gives a number or, with PTB_TIMEDELTA, a timedelta), bounded."""
    if value is None:
        return None
    seconds = value.total_seconds() if isinstance(value, timedelta) else float(value)
    return min(MAX_RETRY_AFTER_S, max(0.0, seconds))


def delivery_error(error: TelegramError) -> DeliveryError:
    """The contract's error for a PTB error. Order matters: BadRequest and TimedOut are NetworkErrors."""
    reason = _reason(error)
    if isinstance(error, RetryAfter):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", PTBDeprecationWarning)
            wait = retry_after_seconds(error.retry_after)
        return TransientError(f"Telegram rate limit: retry in {wait:.0f} s", retry_after=wait)
    if isinstance(error, Forbidden):
        return PermanentError(f"Telegram refused the chat: {reason} (has the bot been blocked, or removed "
                              "from the group?)")
    if isinstance(error, InvalidToken):
        return PermanentError("Telegram rejected the bot token (401): check it with @BotFather")
    if isinstance(error, ChatMigrated):
        return PermanentError(f"the group became a supergroup: set [alerts.telegram] chat_id = "
                              f"{clean_text(error.new_chat_id, 30)}")
    if isinstance(error, BadRequest):
        return PermanentError(f"Telegram refused the message: {reason}")
    if isinstance(error, Conflict):
        # Two of our processes (the app and the daemon) poll the same bot: the other one answers meanwhile.
        return TransientError(f"another program reads this bot's updates: {reason}", retry_after=CONFLICT_PAUSE_S)
    if isinstance(error, TimedOut):
        return TransientError("Telegram did not answer in time")
    if isinstance(error, NetworkError):
        return TransientError(f"cannot reach Telegram: {reason}")
    return TransientError(f"Telegram error: {reason}")


def _reason(error: BaseException) -> str:
    """One line about ``error`` with every known secret (the token) masked."""
    return clean_text(redact(str(error)), MAX_REASON) or type(error).__name__


class _RedactRecords(logging.Filter):
    """Masks known secrets in a record before any handler (caplog, a file) sees it."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        masked = redact(message)
        if masked != message:
            record.msg, record.args = masked, None
        return True


_REDACT_RECORDS = _RedactRecords()


def guard_library_loggers() -> None:
    """Put the redacting filter on every httpx, httpcore and telegram logger: a logger's filter sees only
    records logged on it (not its children's), and httpx logs each request's URL, token included, at INFO."""
    names = [name for name in logging.root.manager.loggerDict
             if name.split(".")[0] in _GUARDED_LOGGERS]
    for name in {*_GUARDED_LOGGERS, *names}:
        logger = logging.getLogger(name)
        if _REDACT_RECORDS not in logger.filters:
            logger.addFilter(_REDACT_RECORDS)


def _markup(buttons: Sequence[Button]) -> InlineKeyboardMarkup | None:
    if not buttons:
        return None
    for button in buttons:
        if len(button.data.encode()) > MAX_CALLBACK_DATA:
            raise PermanentError(f"button data longer than {MAX_CALLBACK_DATA} bytes: {clean_text(button.data, 80)}")
    return InlineKeyboardMarkup([[InlineKeyboardButton(clean_text(button.label, 64), callback_data=button.data)
                                  for button in buttons]])


def _chat_target(chat_id: str) -> int | str:
    text = chat_id.strip()
    return int(text) if text.removeprefix("-").isdigit() else text


def _chat_info(chat: Chat) -> ChatInfo:
    title = chat.title
    if not title:
        title = f"@{chat.username}" if chat.username else " ".join(
            part for part in (chat.first_name, chat.last_name) if part)
    return ChatInfo(clean_text(chat.id, 30), clean_text(chat.type, 20), clean_text(title, 80),
                    clean_text(chat.username or "", 64))


def _incoming(update: Update) -> Incoming | None:
    """Our view of an update; None for kinds the bot ignores (edits, joins, inline queries…)."""
    message = update.message
    if message is not None and message.text is not None:
        return IncomingMessage(update.update_id, _chat_info(message.chat), clean_text(message.text, 500))
    query = update.callback_query
    if query is not None and isinstance(query.message, Message):
        return IncomingCallback(update.update_id, _chat_info(query.message.chat), clean_text(query.id, 100),
                                query.message.message_id, clean_text(query.data or "", MAX_CALLBACK_DATA))
    return None


class TelegramChannel:
    """Sends to one chat as one bot. Every failure is a DeliveryError whose reason never holds the token.

    The token goes on the wire only inside python-telegram-bot's URLs: requests go to ``base_url`` + token
    (a loopback URL works); the library loggers that print those URLs are guarded by a redacting filter.
    """

    name = "telegram"

    def __init__(self, token: Secret, chat_id: str, base_url: str = DEFAULT_BASE_URL, *,
                 timeout_s: float = 10.0) -> None:
        self.chat_id = chat_id.strip()
        self.min_interval_s = pacing_for(self.chat_id)
        self._timeout_s = timeout_s
        guard_library_loggers()
        self._request = HTTPXRequest(connect_timeout=timeout_s, read_timeout=timeout_s, write_timeout=timeout_s,
                                     pool_timeout=timeout_s)
        # getUpdates adds its long-poll timeout to this read timeout.
        self._updates_request = HTTPXRequest(connect_timeout=timeout_s, read_timeout=timeout_s,
                                             write_timeout=timeout_s, pool_timeout=timeout_s)
        self._bot = Bot(token.reveal(), base_url=base_url, request=self._request,
                        get_updates_request=self._updates_request)

    def __repr__(self) -> str:
        return f"TelegramChannel(chat_id={self.chat_id!r})"

    async def send(self, message: OutgoingMessage) -> None:
        await self.send_text(message_text(message.title, message.body), message.buttons)

    async def send_text(self, text: str, buttons: Sequence[Button] = (), *, chat_id: str | None = None) -> int:
        """Send plain ``text`` (never parsed as markup) with ``buttons`` to the chat (or ``chat_id``); returns
        the message id."""
        markup = _markup(buttons)
        sent = await _attempt(self._bot.send_message(_chat_target(chat_id or self.chat_id), text[:MAX_TEXT],
                                                     reply_markup=markup))
        return int(sent.message_id)

    async def answer_callback(self, callback_id: str, text: str = "") -> None:
        """Stop the button's spinner in the user's app, with a short notice."""
        await _attempt(self._bot.answer_callback_query(callback_id, text=clean_text(text, 200) or None))

    async def remove_buttons(self, chat_id: str, message_id: int) -> None:
        """Take the buttons off a message once one was chosen, so it cannot be pressed twice."""
        await _attempt(self._bot.edit_message_reply_markup(chat_id=_chat_target(chat_id), message_id=message_id,
                                                             reply_markup=None))

    async def get_me(self) -> BotIdentity:
        """Who the token belongs to (this also validates it)."""
        user = await _attempt(self._bot.get_me())
        return BotIdentity(int(user.id), clean_text(user.username or "", 64), clean_text(user.first_name, 64))

    async def get_updates(self, offset: int | None, timeout: float) -> UpdateBatch:
        """Updates from ``offset`` on (earlier ones are confirmed and never come again), waiting up to
        ``timeout`` seconds for one to arrive."""
        updates = await _attempt(self._bot.get_updates(offset=offset, timeout=int(timeout),
                                                       allowed_updates=["message", "callback_query"]))
        next_offset = max((update.update_id + 1 for update in updates), default=offset)
        return UpdateBatch(next_offset, [item for update in updates if (item := _incoming(update)) is not None])

    async def aclose(self) -> None:
        await self._request.shutdown()
        await self._updates_request.shutdown()


async def _attempt(call: Awaitable[T]) -> T:
    """Await one Bot API call; its failure becomes the contract's DeliveryError, with nothing chained (an
    httpx error's context names the URL, and the URL holds the token)."""
    try:
        return await call
    except TelegramError as error:
        raise delivery_error(error) from None
