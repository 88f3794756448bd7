"""``notify telegram-setup`` against the loopback fake Bot API: token, getMe, getUpdates, confirm, config + vault."""

from __future__ import annotations

import asyncio
import os
import pty
import select
import sys
import time
import tomllib
from collections.abc import Iterator
from pathlib import Path

import pytest
from fakes.cli import base_environment, run_cli
from fakes.telegram_api import FakeTelegram
from loopback import refused_port

from computehub_tui.clock import ManualClock, SystemClock
from computehub_tui.domain.secret import Secret
from computehub_tui.engine.keys import KeyService
from computehub_tui.notify.telegram_setup import SetupError, TelegramSetup

TOKEN = "4242:AAE-setup-test-token-0123456789ab"
DEADLINE_S = 30.0


@pytest.fixture
def fake() -> Iterator[FakeTelegram]:
    with FakeTelegram(TOKEN) as server:
        yield server


def environment(tmp_path: Path, fake_url: str) -> tuple[dict[str, str], Path, Path]:
    config = tmp_path / "config.toml"
    data = tmp_path / "data"
    config.write_text(f'[alerts.telegram]\nbase_url = "{fake_url}"\n', encoding="utf-8")
    return base_environment({"COMPUTEHUB_CONFIG": str(config), "COMPUTEHUB_DATA_DIR": str(data)}), config, data


async def stored_token(data: Path) -> Secret | None:
    keys = KeyService(data, SystemClock(), environ={})
    try:
        return (await keys.channel_secrets()).get("telegram_token")
    finally:
        await keys.aclose()


def run_in_terminal(args: list[str], env: dict[str, str], script: list[tuple[bytes, bytes]]) -> tuple[int, str]:
    """Run the CLI on a pseudo-terminal; each time the next prompt of ``script`` shows, type its answer."""
    pid, fd = pty.fork()
    if pid == 0:
        os.execve(sys.executable, [sys.executable, "-m", "computehub_tui", *args], env)
    output = b""
    pending = list(script)
    deadline = time.monotonic() + DEADLINE_S
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([fd], [], [], deadline - time.monotonic())
            if not ready:
                continue
            try:
                chunk = os.read(fd, 4096)
            except OSError:  # the child closed the terminal
                break
            if not chunk:
                break
            output += chunk
            if pending and pending[0][0] in output:
                os.write(fd, pending.pop(0)[1])
    finally:
        _, status = os.waitpid(pid, 0)
        os.close(fd)
    return os.waitstatus_to_exitcode(status), output.decode("utf-8", errors="replace")


async def test_the_interactive_setup_saves_the_chat_and_the_token(tmp_path: Path, fake: FakeTelegram) -> None:
    env, config, data = environment(tmp_path, fake.base_url)
    fake.user_message(777001, "hello bot", username="alice")

    code, output = run_in_terminal(["notify", "telegram-setup"], env,
                                   [(b"input hidden", TOKEN.encode() + b"\r"), (b"[Y/n]", b"y\r")])

    assert code == 0, output
    assert TOKEN not in output and TOKEN.split(":")[1] not in output  # the hidden prompt did not echo it
    assert "@alice (id 777001)" in output
    assert len(fake.calls("getMe")) == 1 and fake.calls("getUpdates")
    assert tomllib.loads(config.read_text())["alerts"]["telegram"] == {"base_url": fake.base_url,
                                                                       "chat_id": "777001"}
    assert await stored_token(data) == Secret(TOKEN)
    assert TOKEN not in (data / "computehub.db").read_bytes().decode("latin-1")
    assert fake.pending_updates == 0  # the setup message was confirmed: the bot will not handle it again
    assert [m.chat_id for m in fake.sent] == ["777001"]  # the greeting


def test_declining_the_chat_saves_nothing(tmp_path: Path, fake: FakeTelegram) -> None:
    env, config, data = environment(tmp_path, fake.base_url)
    before = config.read_text()
    fake.user_message(-100500, "hi", title="Strangers")

    code, output = run_in_terminal(["notify", "telegram-setup"], env,
                                   [(b"input hidden", TOKEN.encode() + b"\r"), (b"[Y/n]", b"n\r")])

    assert code == 2, output
    assert "Strangers (id -100500)" in output and "nothing saved" in output
    assert config.read_text() == before
    assert not (data / "computehub.db").exists()


def test_a_piped_token_with_yes_works_without_a_terminal(tmp_path: Path, fake: FakeTelegram) -> None:
    env, config, _ = environment(tmp_path, fake.base_url)
    fake.user_message(-100777, "/start", title="GPU \x1b[31mops[/]")

    run = run_cli(["notify", "telegram-setup", "--yes"], env, stdin=TOKEN + "\n")

    assert run.code == 0, run.describe()
    assert "the group GPU ops[/] (id -100777)" in run.stderr  # hostile title shown plain, escape removed
    assert tomllib.loads(config.read_text())["alerts"]["telegram"]["chat_id"] == "-100777"


def test_without_a_terminal_the_chat_needs_yes(tmp_path: Path, fake: FakeTelegram) -> None:
    env, config, _ = environment(tmp_path, fake.base_url)
    fake.user_message(555, "hi")
    run = run_cli(["notify", "telegram-setup"], env, stdin=TOKEN + "\n")
    assert run.code == 2
    assert run.error_lines[-1].startswith("computehub-tui: error: refusing to choose the chat")
    assert "chat_id" not in config.read_text()


@pytest.mark.parametrize(("token", "reason"), [
    ("4242:AAE-wrong-token-0123456789abcdefg", "the token was not accepted: Telegram rejected the bot token (401)"),
    ("not a token", "that is not a bot token"),
])
def test_a_bad_token_is_one_line(tmp_path: Path, fake: FakeTelegram, token: str, reason: str) -> None:
    env, _, data = environment(tmp_path, fake.base_url)
    run = run_cli(["notify", "telegram-setup", "--yes"], env, stdin=token + "\n")
    assert run.code in (1, 2), run.describe()
    assert run.error_lines == [line for line in run.error_lines if "Traceback" not in line]
    assert reason in run.error_lines[-1] and run.error_lines[-1].startswith("computehub-tui: error: ")
    assert token.split(":")[-1] not in run.stderr + run.stdout
    assert not (data / "computehub.db").exists()


def test_no_network_is_one_line(tmp_path: Path) -> None:
    env, _, _ = environment(tmp_path, f"http://127.0.0.1:{refused_port()}/bot")
    run = run_cli(["notify", "telegram-setup", "--yes"], env, stdin=TOKEN + "\n")
    assert run.code == 1
    assert run.error_lines[-1].startswith("computehub-tui: error: cannot reach Telegram")
    assert "check the network" in run.error_lines[-1]


async def test_waiting_for_a_message_times_out_with_a_clear_message(fake: FakeTelegram) -> None:
    setup = TelegramSetup(Secret(TOKEN), fake.base_url, SystemClock(), timeout_s=5.0)
    try:
        with pytest.raises(SetupError, match="no message reached the bot within 1 s"):
            await setup.wait_for_chat(1.0)  # one long poll of a second on the fake
    finally:
        await setup.close()


async def test_a_network_blip_while_waiting_does_not_end_the_setup(fake: FakeTelegram) -> None:
    clock = ManualClock()
    setup = TelegramSetup(Secret(TOKEN), fake.base_url, clock, timeout_s=2.0)
    fake.fail_next("getUpdates", 502, "Bad Gateway")
    fake.user_message(555, "hi")
    try:
        waiting = asyncio.ensure_future(setup.wait_for_chat(60))
        while clock.sleeper_count == 0 and not waiting.done():
            await asyncio.sleep(0.01)
        await clock.advance(2.0)
        chat = await asyncio.wait_for(waiting, 10)
    finally:
        await setup.close()
    assert chat.id == "555"
    assert len(fake.calls("getUpdates")) == 2


def test_ctrl_c_while_waiting_for_the_message_stops_at_once_and_saves_nothing(tmp_path: Path,
                                                                              fake: FakeTelegram) -> None:
    env, config, data = environment(tmp_path, fake.base_url)
    before = config.read_text()
    started = time.monotonic()
    code, output = run_in_terminal(["notify", "telegram-setup"], env,
                                   [(b"input hidden", TOKEN.encode() + b"\r"), (b"Ctrl+C stops", b"\x03")])
    assert code == 130, output
    assert "interrupted" in output and "Traceback" not in output
    assert time.monotonic() - started < 10  # not the 5-minute wait, nor a 10 s long poll to its end
    assert config.read_text() == before and not (data / "computehub.db").exists()
