"""Interactive prompts (hidden keys, passphrases, yes/no) that Ctrl+C cancels at once."""

from __future__ import annotations

import getpass
import signal
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TypeVar

from computehub_tui.cli.exits import Cancelled, UsageError
from computehub_tui.cli.output import emit
from computehub_tui.domain.models import PROVIDER_TITLES

T = TypeVar("T")


@contextmanager
def _interruptible() -> Iterator[None]:
    """Inside ``asyncio.run`` the first Ctrl+C only cancels the main task, which cannot happen
    while a blocking read holds the loop, and the read is retried: the prompt seemed to ignore
    it. Python's own handler makes Ctrl+C raise in the read at once."""
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def _prompted(read: Callable[[], T]) -> T:
    try:
        with _interruptible():
            return read()
    except (KeyboardInterrupt, EOFError):
        emit("\n", sys.stderr)  # end the prompt's line before "cancelled"
        raise Cancelled from None


def hidden(prompt: str) -> str:
    return _prompted(lambda: getpass.getpass(prompt))


def confirm(question: str, action: str) -> bool:
    """Ask on stderr (stdout stays clean for scripts); a non-interactive shell must pass --yes."""
    if not sys.stdin.isatty():
        raise UsageError(f"refusing to {action} without confirmation in a non-interactive shell; add --yes")
    return _yes_or_no(question, default_yes=False)


def confirm_default_yes(question: str) -> bool:
    """Ask ``[Y/n]`` on the terminal: Enter means yes."""
    return _yes_or_no(question, default_yes=True)


def _yes_or_no(question: str, *, default_yes: bool) -> bool:
    choices = "[Y/n]" if default_yes else "[y/N]"

    def ask() -> str:
        emit(f"{question} {choices} ", sys.stderr)
        sys.stderr.flush()
        return sys.stdin.readline()

    answer = _prompted(ask)
    if not answer:  # end of input: nobody is there to say yes
        raise Cancelled
    reply = answer.strip().lower()
    return reply in ("y", "yes") or (default_yes and reply == "")


def read_key(provider: str) -> str:
    """An API key from a hidden prompt or one line of stdin, never from argv."""
    return read_secret(f"{PROVIDER_TITLES[provider]} API key", "key")


def read_secret(what: str, noun: str) -> str:
    """A secret (``what``, e.g. "SMTP password") from a hidden prompt or one line of stdin, never from argv."""
    if sys.stdin.isatty():
        value = hidden(f"{what} (input hidden): ")
    else:
        value = sys.stdin.readline()
    value = value.strip()
    if not value:
        raise UsageError(f"no {noun} given (pipe it on stdin or type it at the prompt)")
    if any(ch.isspace() for ch in value):
        raise UsageError(f"the {noun} contains whitespace; paste only the {noun} itself")
    return value


def ask_passphrase() -> str:
    if not sys.stdin.isatty():
        raise UsageError("the vault is passphrase-protected: set COMPUTEHUB_PASSPHRASE_FILE or run interactively")
    return hidden("Vault passphrase: ")


def new_passphrase() -> str | None:
    """A new passphrase typed twice; None removes the protection."""
    if not sys.stdin.isatty():
        raise UsageError("setting a passphrase needs an interactive terminal (the new one is typed twice)")
    first = hidden("New vault passphrase (empty removes protection): ")
    if first and hidden("Repeat it: ") != first:
        raise UsageError("the two passphrases differ; nothing changed")
    if first and len(first) < 8:
        raise UsageError("use at least 8 characters; nothing changed")
    return first or None
