"""Settings → Notifications on the real app and the real hub.alerts: a webhook added in the form lands in the
config file and the vault, and "send test" reaches a loopback receiver that checks the signature."""

from __future__ import annotations

import asyncio
import base64
import tomllib
from pathlib import Path

import pytest
from fakes.webhook_receiver import WebhookReceiver
from test_ui_notifications import add_form, field, on_channels, row_line, select_channel
from tui import screen_text, small_app, wait_for

from computehub_tui.clock import ManualClock
from computehub_tui.config import load_config
from computehub_tui.engine.keys import KeyService
from computehub_tui.ui.screens.settings import SettingsScreen

SECRET = "whsec_" + base64.b64encode(b"live-notifications-test-key-0123").decode()
pytestmark = pytest.mark.usefixtures("utc")


async def test_a_webhook_added_in_settings_is_saved_and_its_test_reaches_the_receiver(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text("[monitor]\nssh_providers = []\n", encoding="utf-8")
    app = small_app(tmp_path, config=load_config(path, {}))
    with WebhookReceiver(SECRET) as hook:
        url = hook.url
        async with app.run_test(size=(160, 45)) as pilot:
            await wait_for(pilot, lambda: app.hub is not None)
            await pilot.press("comma")
            await wait_for(pilot, lambda: isinstance(app.screen, SettingsScreen))
            await pilot.press("n")
            screen = await on_channels(pilot)
            assert " off " in row_line(pilot, "Webhook")
            form = await add_form(pilot, "webhook")
            field(form, "url").value = url
            field(form, "secret").value = SECRET
            await pilot.press("ctrl+s")
            await wait_for(pilot, lambda: app.screen is screen and " on " in row_line(pilot, "Webhook"))
            assert "127.0.0.1" in row_line(pilot, "Webhook") and SECRET not in screen_text(pilot)

            await select_channel(pilot, screen, "webhook")
            await pilot.press("t")
            await wait_for(pilot, lambda: "✔" in row_line(pilot, "Webhook"))
            await asyncio.to_thread(hook.wait_for, 1, 5.0)
        assert hook.rejected == [] and len(hook.accepted) == 1  # signed with the secret typed in the form
        assert hook.accepted[0].payload["type"] == "alert.test"

    written = tomllib.loads(path.read_text(encoding="utf-8"))
    assert written["alerts"]["webhook"]["url"] == url and written["monitor"] == {"ssh_providers": []}
    assert SECRET not in path.read_text(encoding="utf-8")  # the secret is in the vault, sealed
    async with KeyService(tmp_path, ManualClock(), environ={}) as keys:
        assert (await keys.channel_secrets())["webhook_secret"].reveal() == SECRET
