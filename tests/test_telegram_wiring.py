"""Channel secrets in the vault (the environment wins), and a session that runs the Telegram bot only when configured."""

from __future__ import annotations

from pathlib import Path

import pytest
from fakes.telegram_api import FakeTelegram

from computehub_tui.clock import ManualClock
from computehub_tui.config import load_config
from computehub_tui.engine.channel_secrets import SECRET_OWNER, TELEGRAM_TOKEN, ChannelSecrets
from computehub_tui.engine.keys import KeyService
from computehub_tui.wiring import open_session

TOKEN = "4242:AAE-wiring-test-token-0123456789a"
ENV_TOKEN = "4242:AAE-from-the-environment-987654"


async def test_a_channel_secret_is_sealed_and_the_environment_wins(tmp_path: Path) -> None:
    keys = KeyService(tmp_path, ManualClock(), environ={}, actor="cli")
    secrets = ChannelSecrets(keys)
    try:
        assert await secrets.get(TELEGRAM_TOKEN) is None
        saved = await secrets.put(TELEGRAM_TOKEN, f"  {TOKEN}\n")
        found = await secrets.get(TELEGRAM_TOKEN)
        assert found is not None and found[0].reveal() == TOKEN and found[1] == "vault"
        store = await keys.store()
        blob = await store.get_secret(SECRET_OWNER, TELEGRAM_TOKEN)
        assert blob is not None and TOKEN.encode() not in blob
        [entry] = await store.audit_log(10, actor="cli")
        assert entry.action == "set-secret" and TOKEN not in entry.detail and saved.masked in entry.detail
        assert await secrets.resolve() == {TELEGRAM_TOKEN: saved}

        keys.environ = {"COMPUTEHUB_TELEGRAM_TOKEN": ENV_TOKEN}
        from_env = await secrets.get(TELEGRAM_TOKEN)
        assert from_env is not None and from_env[0].reveal() == ENV_TOKEN and from_env[1] == "environment"

        keys.environ = {}
        assert await secrets.remove(TELEGRAM_TOKEN)
        assert await secrets.get(TELEGRAM_TOKEN) is None
        assert not await secrets.remove(TELEGRAM_TOKEN)
        with pytest.raises(ValueError, match="unknown channel secret"):
            await secrets.put("api_key", "x" * 20)
        with pytest.raises(ValueError, match="no spaces"):
            await secrets.put(TELEGRAM_TOKEN, "two words")
    finally:
        await keys.aclose()


async def test_the_provider_keys_ignore_channel_secrets(tmp_path: Path) -> None:
    keys = KeyService(tmp_path, ManualClock(), environ={})
    try:
        await ChannelSecrets(keys).put(TELEGRAM_TOKEN, TOKEN)
        assert await keys.resolve() == {}
        assert all(not binding.bound for binding in await keys.bindings())
    finally:
        await keys.aclose()


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
