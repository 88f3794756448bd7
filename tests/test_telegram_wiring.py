"""A session that runs the Telegram bot only when configured."""

from __future__ import annotations

from pathlib import Path

import pytest
from fakes.telegram_api import FakeTelegram

from computehub_tui.clock import ManualClock
from computehub_tui.config import load_config
from computehub_tui.wiring import open_session

TOKEN = "4242:AAE-wiring-test-token-0123456789a"
ENV_TOKEN = "4242:AAE-from-the-environment-987654"


def config_file(tmp_path: Path, base_url: str, chat_id: str) -> Path:
    path = tmp_path / "config.toml"
    line = f'chat_id = "{chat_id}"\n' if chat_id else ""
    path.write_text(f'[alerts.telegram]\n{line}base_url = "{base_url}"\n', encoding="utf-8")
    return path


@pytest.mark.parametrize(("chat_id", "environ", "runs"), [
    ("555", {"COMPUTEHUB_TELEGRAM_TOKEN": TOKEN}, True),
    ("555", {}, False),  # no token anywhere
    ("", {"COMPUTEHUB_TELEGRAM_TOKEN": TOKEN}, False),  # no chat configured
])
async def test_a_session_runs_the_bot_only_with_a_chat_and_a_token(tmp_path: Path, chat_id: str,
                                                                   environ: dict[str, str], runs: bool) -> None:
    with FakeTelegram(TOKEN) as fake:
        config = load_config(config_file(tmp_path, fake.base_url, chat_id), environ={})
        session = await open_session(config, tmp_path / "data", demo=True, clock=ManualClock(), environ=environ)
        try:
            await session.hub.start()
            if runs:
                assert session.hub.telegram_bot is not None and session.hub.telegram_bot.chat_id == "555"
                assert "telegram-bot" in session.hub.supervisor.running()
            else:
                assert session.hub.telegram_bot is None
                assert "telegram-bot" not in session.hub.supervisor.running()
        finally:
            await session.hub.stop()
            await session.aclose()
