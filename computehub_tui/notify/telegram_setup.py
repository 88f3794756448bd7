"""Telegram onboarding: check the bot token with getMe, then find the owner's chat from the first message it gets."""

from __future__ import annotations

from computehub_tui.clock import Clock
from computehub_tui.domain.secret import Secret
from computehub_tui.notify.base import DeliveryError, PermanentError, TransientError
from computehub_tui.notify.telegram import BotIdentity, ChatInfo, IncomingMessage, TelegramChannel

WAIT_FOR_MESSAGE_S = 300.0
LONG_POLL_S = 10.0
RETRY_PAUSE_S = 2.0
"""After a failed getUpdates (a network blip) the wait goes on after this pause."""


class SetupError(Exception):
    """Onboarding cannot go on; the message is one line for the user and holds no secret."""


def token_problem(token: str) -> str | None:
    """Why ``token`` cannot be a bot token (BotFather's form is ``<digits>:<35 characters>``); None if it may be."""
    bot_id, colon, rest = token.partition(":")
    if not colon or not bot_id.isdigit() or not rest or any(char.isspace() for char in token):
        return "that is not a bot token: BotFather gives one like 123456789:AAE…"
    return None


class TelegramSetup:
    """One onboarding run on one token. ``close`` it when done."""

    def __init__(self, token: Secret, base_url: str, clock: Clock, *, timeout_s: float = 10.0) -> None:
        self.clock = clock
        self._channel = TelegramChannel(token, "0", base_url, timeout_s=timeout_s)
        self._offset: int | None = None

    async def identify(self) -> BotIdentity:
        """The bot the token belongs to; raises SetupError for a rejected token or no network."""
        try:
            return await self._channel.get_me()
        except PermanentError as error:
            raise SetupError(f"the token was not accepted: {error.reason}") from None
        except TransientError as error:
            raise SetupError(f"{error.reason}; check the network (or [alerts.telegram] base_url) and try again") \
                from None

    async def wait_for_chat(self, timeout_s: float = WAIT_FOR_MESSAGE_S) -> ChatInfo:
        """The chat of the newest message the bot receives within ``timeout_s`` (long-polling getUpdates)."""
        deadline = self.clock.monotonic() + timeout_s
        while (left := deadline - self.clock.monotonic()) > 0:
            try:
                # getUpdates waits whole seconds: at least one, or it would not wait at all.
                batch = await self._channel.get_updates(self._offset, max(1.0, min(LONG_POLL_S, left)))
            except PermanentError as error:
                raise SetupError(error.reason) from None
            except TransientError:
                await self.clock.sleep(min(RETRY_PAUSE_S, max(0.0, deadline - self.clock.monotonic())))
                continue
            self._offset = batch.next_offset
            messages = [item for item in batch.items if isinstance(item, IncomingMessage)]
            if messages:
                return messages[-1].chat
        raise SetupError(f"no message reached the bot within {timeout_s:.0f} s: send it a message in Telegram "
                         "and run the setup again")

    async def finish(self, chat: ChatInfo) -> None:
        """Confirm the updates read so far (the bot must not handle the setup message later) and greet the chat."""
        try:
            await self._channel.get_updates(self._offset, 0)
            await self._channel.send_text("ComputeHub alerts will come to this chat. Send /help for commands.",
                                          chat_id=chat.id)
        except DeliveryError as error:
            raise SetupError(f"the chat was found but the bot cannot write to it: {error.reason}") from None

    async def close(self) -> None:
        await self._channel.aclose()
