"""API keys the config points to: the contents of a private file or the output of a command."""

from __future__ import annotations

import asyncio
import shlex
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from computehub_tui.config import Config, ConfigError, Problem
from computehub_tui.domain.models import PROVIDER_NAMES
from computehub_tui.domain.secret import Secret
from computehub_tui.domain.text import clean_text
from computehub_tui.vault import VaultError, read_private_file

COMMAND_TIMEOUT_S = 10.0
MAX_OUTPUT_BYTES = 64 * 1024
"""A key is a line of text; more output than this is not a key (and is not read into memory)."""
_PROGRAM_NAME_LIMIT = 60


@dataclass(frozen=True, slots=True)
class KeyIndirection:
    """Where the config says one provider's key is: ``api_key_file`` or ``api_key_command``."""

    provider: str
    kind: Literal["file", "command"]
    target: str
    """The path or the command line, as written."""
    where: str = "configuration"
    """Where it was set: ``config.toml:7``, an environment variable or a ``--set`` flag."""

    @property
    def setting(self) -> str:
        return f"providers.{self.provider}.api_key_{self.kind}"

    def problem(self, message: str) -> ConfigError:
        """A user config error: one line naming where the setting is, the setting and what is wrong."""
        return ConfigError([Problem(self.where, self.setting, message)])


def indirections_of(config: Config) -> dict[str, KeyIndirection]:
    """The key file or command of every enabled provider that has one (the schema allows at most one)."""
    found: dict[str, KeyIndirection] = {}
    for provider in PROVIDER_NAMES:
        section = config.provider_settings(provider)
        if not section.enabled:
            continue
        kind: Literal["file", "command"]
        for kind, target in (("file", section.api_key_file), ("command", section.api_key_command)):
            if target:
                indirection = KeyIndirection(provider, kind, target)
                where = config.origin(indirection.setting).where
                found[provider] = KeyIndirection(provider, kind, target, where or indirection.where)
    return found


async def read_indirect_key(indirection: KeyIndirection, timeout_s: float = COMMAND_TIMEOUT_S) -> Secret:
    """The key behind ``indirection``; ConfigError (one line, never the key) when it cannot be had."""
    if indirection.kind == "file":
        return await asyncio.to_thread(_key_from_file, indirection)
    return await _key_from_command(indirection, timeout_s)


def _key_from_file(indirection: KeyIndirection) -> Secret:
    path = Path(indirection.target).expanduser()
    try:
        # The same refusals as ssh and the vault's own files: not ours, readable by others, too big.
        data = read_private_file(path, str(path))
    except VaultError as error:
        raise indirection.problem(str(error)) from None
    return _one_line_key(indirection, data, f"{path} is empty", f"{path} holds")


async def _key_from_command(indirection: KeyIndirection, timeout_s: float) -> Secret:
    words = shlex.split(indirection.target)
    # Only the program's name is ever quoted: its arguments may say more than the user wants shown.
    program = clean_text(Path(words[0]).name, _PROGRAM_NAME_LIMIT) if words else "the command"
    try:
        child = await asyncio.create_subprocess_exec(
            *words, stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.DEVNULL)
    except (OSError, ValueError) as error:
        reason = error.strerror if isinstance(error, OSError) and error.strerror else type(error).__name__
        raise indirection.problem(f"cannot run {program}: {reason}") from None
    try:
        async with asyncio.timeout(timeout_s):
            output = await _bounded_output(child, indirection, program)
            code = await child.wait()
    except TimeoutError:
        raise indirection.problem(f"{program} did not finish within {timeout_s:g} s") from None
    finally:
        if child.returncode is None:
            with suppress(ProcessLookupError):
                child.kill()
            await child.wait()
    if code != 0:
        ended = f"was stopped by signal {-code}" if code < 0 else f"exited with {code}"
        raise indirection.problem(f"{program} {ended} (run it yourself to see why)")
    return _one_line_key(indirection, output, f"{program} printed nothing", f"{program} printed")


async def _bounded_output(child: asyncio.subprocess.Process, indirection: KeyIndirection, program: str) -> bytes:
    chunks: list[bytes] = []
    size = 0
    while child.stdout is not None and (chunk := await child.stdout.read(MAX_OUTPUT_BYTES)):
        size += len(chunk)
        if size > MAX_OUTPUT_BYTES:
            raise indirection.problem(f"{program} printed more than {MAX_OUTPUT_BYTES // 1024} KiB; "
                                      "it must print only the key")
        chunks.append(chunk)
    return b"".join(chunks)


def _one_line_key(indirection: KeyIndirection, data: bytes, empty: str, holds: str) -> Secret:
    try:
        text = data.decode("utf-8").strip()
    except UnicodeDecodeError:
        raise indirection.problem(f"{holds} text that is not UTF-8") from None
    if not text:
        raise indirection.problem(empty)
    if "\n" in text or "\r" in text:
        raise indirection.problem(f"{holds} several lines; the key must be the only line")
    if not text.isprintable():
        raise indirection.problem(f"{holds} control characters; the key must be plain text")
    return Secret(text)
