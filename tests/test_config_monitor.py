"""The [monitor] section: defaults, checks, and a list of providers from the file, the environment or --set."""

from __future__ import annotations

from pathlib import Path

import pytest

from computehub_tui.config import ConfigError, load_config
from computehub_tui.config.render import render_example


def test_defaults_sample_lambda_and_tensordock_with_plain_ssh() -> None:
    monitor = load_config(None, {}).monitor
    assert (monitor.ssh_command, monitor.ssh_user, monitor.ssh_identity, monitor.interval_s) == ("ssh", "", "", 15.0)
    assert monitor.ssh_providers == ["lambda", "tensordock"]


@pytest.mark.parametrize(("text", "expected"), [
    ("lambda,tensordock", ["lambda", "tensordock"]),
    (" vast , runpod ", ["vast", "runpod"]),
    ('["runpod"]', ["runpod"]),
    ("[]", []),
])
def test_a_provider_list_from_the_environment(text: str, expected: list[str]) -> None:
    config = load_config(None, {"COMPUTEHUB_MONITOR_SSH_PROVIDERS": text})
    assert config.monitor.ssh_providers == expected


def test_a_list_from_the_file_and_a_flag(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text('[monitor]\nssh_providers = ["vast"]\nssh_command = "tsh ssh"\n', encoding="utf-8")
    assert load_config(path, {}).monitor.ssh_providers == ["vast"]
    assert load_config(path, {}, flags=["monitor.ssh_providers=lambda"]).monitor.ssh_providers == ["lambda"]


@pytest.mark.parametrize(("environ", "message"), [
    ({"COMPUTEHUB_MONITOR_SSH_PROVIDERS": "lamda"}, "unknown provider 'lamda' (did you mean 'lambda'?)"),
    ({"COMPUTEHUB_MONITOR_SSH_PROVIDERS": '["lambda"'}, "write a list such as"),
    ({"COMPUTEHUB_MONITOR_INTERVAL_S": "1"}, "monitor.interval_s"),
    ({"COMPUTEHUB_MONITOR_SSH_COMMAND": "'unclosed"}, "cannot be split into words"),
    ({"COMPUTEHUB_MONITOR_SSH_COMMAND": "  "}, "must name a program"),
    ({"COMPUTEHUB_MONITOR_SSH_USER": "root -oProxyCommand=x"}, "must be a user name"),
    ({"COMPUTEHUB_MONITOR_SSH_IDENTITY": "keys/id_ed25519"}, "must be an absolute path"),
])
def test_bad_monitor_settings_are_one_clear_problem_naming_the_variable(environ: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load_config(None, environ)
    text = str(caught.value)
    assert message in text and next(iter(environ)) in text


def test_the_example_config_documents_the_monitor_section() -> None:
    example = render_example()
    assert "[monitor]" in example and 'ssh_providers = ["lambda", "tensordock"]' in example
    assert "COMPUTEHUB_MONITOR_SSH_COMMAND" in example
