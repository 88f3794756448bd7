"""A loopback fake of the Telegram Bot API (real HTTP/1.1 on 127.0.0.1) for channel, bot and setup tests.

Build a bot against it with ``base_url=fake.base_url`` (``http://127.0.0.1:<port>/bot``): python-telegram-bot
appends the token, so requests arrive as ``POST /bot<TOKEN>/<method>`` with form-encoded fields (each value
JSON-encoded unless it is a plain string).

Basics::

    from fakes.telegram_api import FakeTelegram

    with FakeTelegram("123:ABC") as fake:
        fake.user_message(555, "/status")                 # an update for getUpdates
        fake.callback_query(555, "snooze:w1", message_id=7)
        ...                                               # code under test polls and replies
        assert fake.sent[0].text == "..."                 # sendMessage calls, in order
        assert fake.sent[0].buttons == [("Snooze 1 h", "snooze:w1")]

Methods served: ``getMe``, ``getUpdates`` (``offset`` confirms earlier updates, which are then forgotten;
``timeout`` long-polls: the answer waits until an update arrives or the timeout passes, and ends at once when
the fake stops), ``sendMessage`` (recorded in ``sent``, with ``reply_markup`` parsed), ``answerCallbackQuery``
(``answered``), ``editMessageReplyMarkup`` (``edited``). Any other method answers 404 as Telegram does.

A token not in ``valid_tokens`` gets 401 "Unauthorized" for every method.

Two readers: as on Telegram, a getUpdates that arrives while another one is still waiting ends the waiting
one with 409 "Conflict: terminated by other getUpdates request" (counted in ``conflicts``).

Faults, per method and one-shot, in order: ``fail_next(method, status, description, retry_after=None)``
(Telegram's error envelope ``{"ok": false, "error_code", "description", "parameters": {"retry_after"}}``;
e.g. 429 with a retry_after, 403 "Forbidden: bot was blocked by the user", 401, 400 "Bad Request: chat not
found", 500) and ``slow_next(method, seconds)`` (the answer comes after ``seconds``, to trigger client
timeouts). ``calls(method)`` lists the recorded requests of one method; ``fields(request)`` decodes one.
"""

from __future__ import annotations

import json
import threading
import time
from collections import defaultdict, deque
from dataclasses import dataclass
from typing import Any, Self
from urllib.parse import parse_qsl

from loopback import LoopbackServer, RecordedRequest, Reply

BOT_ID = 4242
BOT_USERNAME = "computehub_test_bot"
MAX_LONG_POLL_S = 30.0
"""A fake long poll never holds a connection longer than this, whatever the client asks."""


@dataclass(frozen=True)
class SentMessage:
    """One sendMessage as the fake received it."""

    message_id: int
    chat_id: str
    text: str
    parse_mode: str | None
    buttons: list[tuple[str, str]]
    """(label, callback_data) of every inline button, row after row."""


class FakeTelegram:
    """The fake Bot API; see the module docstring."""

    def __init__(self, *valid_tokens: str) -> None:
        self.valid_tokens = set(valid_tokens)
        self.sent: list[SentMessage] = []
        self.answered: list[dict[str, str]] = []
        self.edited: list[dict[str, str]] = []
        self.server = LoopbackServer(default=self._dispatch)
        self._updates: list[dict[str, Any]] = []
        self._next_update_id = 1000
        self._next_message_id = 1
        self._faults: dict[str, deque[Reply]] = defaultdict(deque)
        self._changed = threading.Condition()
        self._closing = False
        self._poll_generation = 0
        """Bumped by every getUpdates: a waiting one that sees it change was overtaken by another reader."""
        self.conflicts = 0
        self.holds_long_polls = True
        """False: getUpdates answers at once whatever its ``timeout`` (as some Bot API stand-ins do)."""

    # -- lifecycle ----------------------------------------------------------------------------

    def __enter__(self) -> Self:
        self.server.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        with self._changed:
            self._closing = True
            self._changed.notify_all()
        self.server.stop()

    @property
    def base_url(self) -> str:
        """What ``Bot(token, base_url=...)`` takes: the token is appended to it."""
        return f"{self.server.url}/bot"

    # -- scripting ----------------------------------------------------------------------------

    def user_message(self, chat_id: int | str, text: str, *, chat_type: str | None = None, title: str = "",
                     username: str = "owner", first_name: str = "Owner", chat_username: str = "") -> int:
        """Queue a message in ``chat_id`` for getUpdates; returns its update_id."""
        kind = chat_type or ("private" if int(chat_id) > 0 else "group")
        chat: dict[str, Any] = {"id": int(chat_id), "type": kind}
        if kind == "private":
            chat.update(username=username, first_name=first_name)
        else:
            chat["title"] = title or "a group"
            if chat_username:
                chat["username"] = chat_username  # a public group: its @name
        message = {"message_id": self._message_id(), "date": int(time.time()), "chat": chat, "text": text,
                   "from": {"id": int(chat_id) if kind == "private" else 99, "is_bot": False,
                            "first_name": first_name, "username": username}}
        return self._add_update({"message": message})

    def callback_query(self, chat_id: int | str, data: str, *, message_id: int = 1, from_id: int | None = None) -> int:
        """Queue a press of an inline button under message ``message_id`` in ``chat_id``; returns its update_id."""
        chat_type = "private" if int(chat_id) > 0 else "group"
        query = {"id": f"cq{self._next_update_id}", "chat_instance": "ci",
                 "from": {"id": from_id if from_id is not None else int(chat_id), "is_bot": False,
                          "first_name": "Owner"},
                 "data": data,
                 "message": {"message_id": message_id, "date": int(time.time()),
                             "chat": {"id": int(chat_id), "type": chat_type}, "text": "an alert"}}
        return self._add_update({"callback_query": query})

    def fail_next(self, method: str, status: int, description: str, *, retry_after: float | None = None) -> None:
        """The next call of ``method`` answers with Telegram's error envelope."""
        payload: dict[str, Any] = {"ok": False, "error_code": status, "description": description}
        if retry_after is not None:
            payload["parameters"] = {"retry_after": retry_after}
        self._faults[method].append(Reply.json(payload, status=status))

    def slow_next(self, method: str, seconds: float) -> None:
        """The next call of ``method`` is answered (normally) only after ``seconds``."""
        self._faults[method].append(Reply(delay=seconds))

    # -- inspection ---------------------------------------------------------------------------

    def calls(self, method: str) -> list[RecordedRequest]:
        return [r for r in self.server.requests if r.path.rsplit("/", 1)[-1] == method]

    @staticmethod
    def fields(request: RecordedRequest) -> dict[str, str]:
        return dict(parse_qsl(request.body.decode()))

    @property
    def pending_updates(self) -> int:
        with self._changed:
            return len(self._updates)

    # -- the server side ----------------------------------------------------------------------

    def _message_id(self) -> int:
        with self._changed:
            self._next_message_id += 1
            return self._next_message_id

    def _add_update(self, body: dict[str, Any]) -> int:
        with self._changed:
            update_id = self._next_update_id
            self._next_update_id += 1
            self._updates.append({"update_id": update_id, **body})
            self._changed.notify_all()
            return update_id

    def _dispatch(self, request: RecordedRequest) -> Reply:
        token, _, method = request.path.removeprefix("/bot").partition("/")
        if token not in self.valid_tokens:
            return _error(401, "Unauthorized")
        faults = self._faults.get(method)
        if faults:
            fault = faults.popleft()
            if fault.delay <= 0:
                return fault
            # A slow answer: wait, then answer normally (the client may have given up by then).
            if not self.server._wait(fault.delay):
                return Reply(drop=True)
        if method == "getUpdates":
            updates = self._getUpdates(self.fields(request))
            if updates is None:
                return _error(409, "Conflict: terminated by other getUpdates request; make sure that only one "
                                   "bot instance is running")
            return Reply.json({"ok": True, "result": updates})
        handler = getattr(self, f"_{method}", None)
        if handler is None:
            return _error(404, "Not Found")
        result: Any = handler(self.fields(request))
        return Reply.json({"ok": True, "result": result})

    # Handlers are named after the Bot API methods they serve.
    def _getMe(self, fields: dict[str, str]) -> dict[str, Any]:
        return {"id": BOT_ID, "is_bot": True, "first_name": "ComputeHub", "username": BOT_USERNAME}

    def _getUpdates(self, fields: dict[str, str]) -> list[dict[str, Any]] | None:
        """The updates, or None when another reader's getUpdates overtook this one while it waited."""
        offset = int(fields.get("offset") or 0)
        wait_s = min(MAX_LONG_POLL_S, float(fields.get("timeout") or 0)) if self.holds_long_polls else 0.0
        deadline = time.monotonic() + wait_s
        with self._changed:
            self._poll_generation += 1
            generation = self._poll_generation
            self._changed.notify_all()
            if offset:
                self._updates = [u for u in self._updates if u["update_id"] >= offset]
            while not self._updates and not self._closing:
                if self._poll_generation != generation:
                    self.conflicts += 1
                    return None
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self._changed.wait(left)
            limit = int(fields.get("limit") or 100)
            return list(self._updates[:limit])

    def _sendMessage(self, fields: dict[str, str]) -> dict[str, Any]:
        markup = json.loads(fields["reply_markup"]) if "reply_markup" in fields else {}
        buttons = [(b["text"], b.get("callback_data", "")) for row in markup.get("inline_keyboard", []) for b in row]
        message_id = self._message_id()
        chat_id = fields["chat_id"]
        self.sent.append(SentMessage(message_id, chat_id, fields.get("text", ""), fields.get("parse_mode"), buttons))
        chat_type = "private" if chat_id.lstrip("-").isdigit() and int(chat_id) > 0 else "group"
        chat: dict[str, Any] = {"id": int(chat_id) if chat_id.lstrip("-").isdigit() else -100, "type": chat_type}
        return {"message_id": message_id, "date": int(time.time()), "chat": chat, "text": fields.get("text", "")}

    def _answerCallbackQuery(self, fields: dict[str, str]) -> bool:
        self.answered.append(fields)
        return True

    def _editMessageReplyMarkup(self, fields: dict[str, str]) -> dict[str, Any]:
        self.edited.append(fields)
        chat_id = int(fields.get("chat_id", "0"))
        return {"message_id": int(fields.get("message_id", "0")), "date": int(time.time()),
                "chat": {"id": chat_id, "type": "private" if chat_id > 0 else "group"}, "text": "an alert"}


def _error(status: int, description: str) -> Reply:
    return Reply.json({"ok": False, "error_code": status, "description": description}, status=status)
