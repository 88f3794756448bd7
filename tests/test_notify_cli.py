"""``computehub-tui notify test|log`` as a user runs them, against a loopback webhook receiver and aiosmtpd."""

from __future__ import annotations

import asyncio
import base64
import logging
from pathlib import Path

import pytest
from fakes.cli import base_environment, run_cli
from fakes.smtp_server import Credentials, smtp_server
from fakes.webhook_receiver import WebhookReceiver
from loopback import Reply

from computehub_tui.domain.alerts import DEAD, SENT, DeliveryRow
from computehub_tui.store import Store

pytestmark = pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS:UserWarning")

SECRET = "whsec_" + base64.b64encode(b"cli-test-signing-key-0123456789ab").decode()
PASSWORD = "Sm7p-pa55-for-the-cli-test-4e9f"


def environment(tmp_path: Path, config: str, **extra: str) -> tuple[list[str], dict[str, str]]:
    path = tmp_path / "config.toml"
    path.write_text(config, encoding="utf-8")
    env = base_environment({"COMPUTEHUB_DATA_DIR": str(tmp_path / "data"), **extra})
    return ["--config", str(path)], env


def assert_no_secret(output: str) -> None:
    assert SECRET not in output and SECRET.removeprefix("whsec_") not in output and PASSWORD not in output


def test_a_test_alert_reaches_a_receiver_that_checks_the_signature(tmp_path: Path) -> None:
    with WebhookReceiver(SECRET) as hook:
        flags, env = environment(tmp_path, f'[alerts.webhook]\nurl = "{hook.url}"\n',
                                 COMPUTEHUB_WEBHOOK_SECRET=SECRET)
        run = run_cli(["notify", "test", "webhook", *flags], env)
        assert hook.rejected == []
        assert len(hook.accepted) == 1 and hook.accepted[0].payload["type"] == "alert.test"
    assert run.code == 0, run.describe()
    assert "accepted the test message" in run.stdout
    assert_no_secret(run.stdout + run.stderr)


def test_a_refusing_receiver_exits_1_with_one_line(tmp_path: Path) -> None:
    with WebhookReceiver(SECRET) as hook:
        hook.script(Reply.text("gone", status=410))
        flags, env = environment(tmp_path, f'[alerts.webhook]\nurl = "{hook.url}"\n',
                                 COMPUTEHUB_WEBHOOK_SECRET=SECRET)
        run = run_cli(["notify", "test", "webhook", *flags], env)
    assert run.code == 1, run.describe()
    [line] = [line for line in run.error_lines if not line.startswith("note:")]
    assert line.startswith("computehub-tui: error: webhook: 127.0.0.1 answered HTTP 410")
    assert_no_secret(run.stdout + run.stderr)


def test_a_channel_that_is_not_configured_exits_2_and_says_how(tmp_path: Path) -> None:
    flags, env = environment(tmp_path, "")
    run = run_cli(["notify", "test", "email", *flags], env)
    assert run.code == 2, run.describe()
    assert "[alerts.email] host, from and to" in run.stderr and "Traceback" not in run.stderr


async def test_a_test_mail_logs_in_and_a_wrong_password_is_one_line_without_it(tmp_path: Path) -> None:
    logging.getLogger("mail.log").setLevel(logging.ERROR)
    async with smtp_server(credentials=Credentials("alerts", PASSWORD)) as smtp:
        config = (f'[alerts.email]\nhost = "127.0.0.1"\nport = {smtp.port}\nsecurity = "none"\n'
                  'username = "alerts"\nfrom = "alerts@computehub.example"\nto = ["ops@example.com"]\n')
        flags, env = environment(tmp_path, config, COMPUTEHUB_SMTP_PASSWORD=PASSWORD)
        good = await asyncio.to_thread(run_cli, ["notify", "test", "email", *flags], env)
        env["COMPUTEHUB_SMTP_PASSWORD"] = PASSWORD + "-wrong"
        bad = await asyncio.to_thread(run_cli, ["notify", "test", "email", *flags], env)
    assert good.code == 0, good.describe()
    assert len(smtp.mailbox.messages) == 1
    assert smtp.mailbox.messages[0][1]["Subject"] == "[computehub] computehub-tui test alert"
    assert bad.code == 1, bad.describe()
    assert "refused the login for 'alerts' (535)" in bad.stderr
    assert_no_secret(good.stdout + good.stderr + bad.stdout + bad.stderr)


async def test_the_delivery_log_lists_rows_newest_first_as_json(tmp_path: Path) -> None:
    flags, env = environment(tmp_path, '[alerts.webhook]\nurl = "https://hooks.example/a"\n')
    (tmp_path / "data").mkdir(mode=0o700)
    store = await Store.open(tmp_path / "data" / "demo.db")
    try:
        await store.enqueue([
            DeliveryRow("1-a", "webhook", "k1", "spend", "Spend passed $50", SENT, 1, 100.0, "", 100.0, 101.0),
            DeliveryRow("2-b", "email", "k2", "launch", "Launched vast:9", DEAD, 3, 200.0, "bad address", 200.0,
                        None)])
    finally:
        await store.close()
    run = await asyncio.to_thread(run_cli, ["notify", "log", "--json", *flags], env)
    assert run.code == 0, run.describe()
    assert [(row["delivery_id"], row["state"], row["last_error"]) for row in run.json()] == [
        ("2-b", "dead", "bad address"), ("1-a", "sent", "")]
    only = await asyncio.to_thread(run_cli, ["notify", "log", "--channel", "webhook", *flags], env)
    assert only.code == 0 and "Spend passed $50" in only.stdout and "Launched" not in only.stdout


def test_a_secret_piped_to_notify_secret_is_sealed_and_used_without_the_environment(tmp_path: Path) -> None:
    with WebhookReceiver(SECRET) as hook:
        flags, env = environment(tmp_path, f'[alerts.webhook]\nurl = "{hook.url}"\n')
        stored = run_cli(["notify", "secret", "webhook_secret", *flags], env, stdin=SECRET + "\n")
        used = run_cli(["notify", "test", "webhook", *flags], env)
        assert hook.rejected == [] and len(hook.accepted) == 1
        removed = run_cli(["notify", "secret", "webhook_secret", "--remove", *flags], env)
        unsigned = run_cli(["notify", "test", "webhook", *flags], env)
        assert hook.rejected == ["bad signature"]  # nothing signs any more: the receiver says so
    assert stored.code == 0 and "saved (encrypted)" in stored.stdout, stored.describe()
    assert used.code == 0, used.describe()
    assert removed.code == 0 and unsigned.code == 1
    assert_no_secret(stored.stdout + stored.stderr + used.stdout + used.stderr)


def test_a_webhook_secret_that_is_not_whsec_base64_is_refused(tmp_path: Path) -> None:
    flags, env = environment(tmp_path, "")
    run = run_cli(["notify", "secret", "webhook_secret", *flags], env, stdin="not-a-whsec-secret\n")
    assert run.code == 2 and "whsec_" in run.stderr, run.describe()
