"""Channel secrets: sealed in the vault (never plaintext on disk), overridden by their environment variables, and
in no outbox row, log line or output, even with every logger (httpx too) at DEBUG."""

from __future__ import annotations

import base64
import logging
from pathlib import Path

import pytest
from fakes.smtp_server import Credentials, smtp_server
from fakes.webhook_receiver import WebhookReceiver
from loopback import Reply

from computehub_tui.clock import SystemClock
from computehub_tui.config.schema import AlertsSection
from computehub_tui.domain.alerts import DEAD, SENT
from computehub_tui.engine.alerts import AlertsService, AlertsSettings
from computehub_tui.engine.events import EventBus
from computehub_tui.engine.keys import DATABASE_NAME, KeyService
from computehub_tui.store import Store

pytestmark = pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS:UserWarning")

PASSWORD = "vault-smtp-P4ssw0rd-31f5ac"
SECRET = "whsec_" + base64.b64encode(b"vault-webhook-signing-key-0987654321").decode()


async def test_secrets_are_sealed_at_rest_and_the_environment_wins(tmp_path: Path) -> None:
    async with KeyService(tmp_path, SystemClock(), environ={}) as keys:
        await keys.set_channel_secret("smtp_password", PASSWORD)
        await keys.set_channel_secret("webhook_secret", SECRET)
        found = await keys.channel_secrets()
        assert found["smtp_password"].reveal() == PASSWORD and found["webhook_secret"].reveal() == SECRET
        await keys.set_channel_secret("webhook_secret", None)
        assert "webhook_secret" not in await keys.channel_secrets()
        with pytest.raises(ValueError, match="unknown channel secret"):
            await keys.set_channel_secret("api_key", "x")
    on_disk = b"".join(path.read_bytes() for path in tmp_path.iterdir() if path.name.startswith(DATABASE_NAME))
    assert PASSWORD.encode() not in on_disk and SECRET.encode() not in on_disk
    async with KeyService(tmp_path, SystemClock(), environ={"COMPUTEHUB_SMTP_PASSWORD": "from-the-env"}) as keys:
        assert (await keys.channel_secrets())["smtp_password"].reveal() == "from-the-env"


async def test_no_secret_in_rows_logs_or_output_when_deliveries_fail(tmp_path: Path, caplog: pytest.LogCaptureFixture,
                                                                     capsys: pytest.CaptureFixture[str]) -> None:
    caplog.set_level(logging.DEBUG)
    caplog.set_level(logging.DEBUG, logger="httpx")
    async with KeyService(tmp_path, SystemClock(), environ={}) as keys:
        await keys.set_channel_secret("smtp_password", PASSWORD + "-stale")  # the server expects PASSWORD
        await keys.set_channel_secret("webhook_secret", SECRET)
        store = await Store.open(tmp_path / "alerts.db")
        try:
            with WebhookReceiver(SECRET) as hook:
                hook.script(Reply.text("boom", status=400))
                async with smtp_server(credentials=Credentials("alerts", PASSWORD)) as smtp:
                    section = AlertsSection.model_validate({
                        "webhook": {"url": hook.url},
                        "email": {"host": "127.0.0.1", "port": smtp.port, "security": "none", "username": "alerts",
                                  "from": "a@computehub.example", "to": ["ops@example.com"]},
                        "fallback": "webhook"})
                    service = AlertsService(store, EventBus(), SystemClock(), AlertsSettings(section),
                                            secrets_source=keys)
                    await service.load_channels()
                    await service.raise_alert("spend", "spend:x", "warning", "Spend passed $50", "body")
                    await service.worker.drain()
                    await service.worker.drain()  # the fallback copy of the dead e-mail
                    await service.aclose()
            rows = await store.deliveries(10)
        finally:
            await store.close()
    states = sorted((row.channel, row.state) for row in rows)
    assert states == [("email", DEAD), ("webhook", DEAD), ("webhook", SENT)]
    captured = capsys.readouterr()
    everything = " ".join(f"{row.last_error} {row.title} {row.body} {row.fields}" for row in rows)
    everything += caplog.text + captured.out + captured.err
    assert "refused the login" in everything  # the failures were recorded, without what was tried
    for secret in (PASSWORD, SECRET, SECRET.removeprefix("whsec_")):
        assert secret not in everything
