"""``[alerts]`` settings: which channels are on, every validation message, env overrides, and the channel factory
(what a half-configured channel says)."""

from __future__ import annotations

from pathlib import Path

import pytest

from computehub_tui.config import ConfigError, load_config
from computehub_tui.config.editing import remove_table, set_value
from computehub_tui.config.schema import AlertsSection, quiet_window
from computehub_tui.domain.secret import Secret
from computehub_tui.notify.channels import ChannelConfigError, build_channel, build_channels
from computehub_tui.notify.email import EmailChannel
from computehub_tui.notify.webhook import WebhookChannel


def problems(text: str, tmp_path: Path, environ: dict[str, str] | None = None) -> list[str]:
    path = tmp_path / "config.toml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        load_config(path, environ or {})
    return [problem.message for problem in caught.value.problems]


def test_a_channel_is_on_once_its_section_says_where_to_send(tmp_path: Path) -> None:
    assert AlertsSection().channel_names() == []
    path = tmp_path / "config.toml"
    path.write_text('[alerts.webhook]\nurl = "https://hooks.example/x"\n[alerts.telegram]\nchat_id = "@ops_alerts"\n',
                    encoding="utf-8")
    config = load_config(path, {"COMPUTEHUB_ALERTS_EMAIL_HOST": "smtp.example.com"})
    assert config.alerts.channel_names() == ["telegram", "email", "webhook"]
    assert str(config.origin("alerts.email.host")) == "environment COMPUTEHUB_ALERTS_EMAIL_HOST"


@pytest.mark.parametrize(("text", "message"), [
    ('[alerts]\nquiet_hours = "11pm-7am"\n', 'must be a time window such as "23:00-07:00"'),
    ('[alerts]\nfallback = "sms"\n', "unknown channel 'sms'"),
    ('[alerts]\nroutes = { spends = ["email"] }\n', "unknown alert kind 'spends' (did you mean 'spend'?)"),
    ('[alerts]\nroutes = { spend = ["mail"] }\n', "unknown channel 'mail' (did you mean 'email'?)"),
    ("[alerts]\nspend_thresholds = [-5]\n", "each amount must be > 0"),
    ("[alerts]\nspend_thresholds = [1e308]\n", "each amount must be > 0"),
    ('[alerts]\ngroup_interval = "0s"\n', "must be ≥ 1"),
    ('[alerts.telegram]\nchat_id = "my chat"\n', "must be a chat number"),
    ('[alerts.email]\nto = ["ops"]\n', "must be an e-mail address"),
    ('[alerts.email]\nhost = "smtp.example.com\\r\\nRCPT"\n', "must be a host name or address"),
    ('[alerts.email]\nsecurity = "ssl"\n', "must be one of"),
    ('[alerts.webhook]\nurl = "ftp://x"\n', "endpoint URLs are http:// or https://"),
    ('[alerts.email]\npassword = "hunter2"\n', "secrets are never stored in the config file"),
    ('[alerts.webhook]\nsecret = "whsec_x"\n', "secrets are never stored in the config file"),
])
def test_bad_alert_settings_are_named(text: str, message: str, tmp_path: Path) -> None:
    found = problems(text, tmp_path)
    assert any(message in problem for problem in found), found


def test_quiet_hours_read_as_minutes() -> None:
    assert quiet_window("23:00-07:30") == (23 * 60, 7 * 60 + 30)
    assert quiet_window("") is None


def test_the_factory_builds_each_channel_and_says_what_a_half_configured_one_lacks() -> None:
    section = AlertsSection.model_validate({
        "webhook": {"url": "https://hooks.example/x", "format": "discord"},
        "email": {"host": "smtp.example.com", "username": "alerts", "from": "a@example.com", "to": ["b@example.com"]},
        "telegram": {"chat_id": "-100123"}})
    with pytest.raises(ChannelConfigError, match="no password is stored"):
        build_channel("email", section, {})
    with pytest.raises(ChannelConfigError, match="no bot token"):
        build_channel("telegram", section, {})
    email = build_channel("email", section, {"smtp_password": Secret("pw-0123456789")})
    assert isinstance(email, EmailChannel) and email.port == 587 and email.security == "starttls"
    assert set(build_channels(section, {})) == {"webhook"}  # the others are off, and logged
    webhook = build_channel("webhook", section, {})
    assert isinstance(webhook, WebhookChannel) and webhook.preset == "discord"
    no_sender = AlertsSection.model_validate({"email": {"host": "smtp.example.com"}})
    with pytest.raises(ChannelConfigError, match="needs from"):
        build_channel("email", no_sender, {})
    with pytest.raises(ChannelConfigError, match="not configured"):
        build_channel("webhook", AlertsSection(), {})


def test_a_channel_section_is_written_and_removed_keeping_the_rest(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text("# mine\n[poll]\ninstances_s = 7\n", encoding="utf-8")
    set_value(path, "alerts.webhook.url", "https://hooks.example/x")
    set_value(path, "alerts.webhook.format", "slack")
    assert load_config(path, {}).alerts.channel_names() == ["webhook"]
    assert remove_table(path, "alerts.webhook")
    assert not remove_table(path, "alerts.webhook")
    assert load_config(path, {}).alerts.channel_names() == []
    assert path.read_text(encoding="utf-8").startswith("# mine\n[poll]\ninstances_s = 7\n")
