"""`computehub-tui config …` and how a broken config stops every command with one line (exit 2)."""

from __future__ import annotations

import sys
import tomllib
from pathlib import Path

import pytest
from fakes.cli import base_environment, run_cli, run_main

from computehub_tui.config.schema import Settings

BROKEN = "[poll]\ninstances_s = 1\n\n[demo]\nseeds = 3\n"


@pytest.fixture
def config_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "config.toml"
    monkeypatch.setenv("COMPUTEHUB_CONFIG", str(path))
    path.write_text("# mine\n[demo]\nseed = 7  # fixed seed\n", encoding="utf-8")
    return path


def test_path_shows_the_file_in_use(config_file: Path) -> None:
    run = run_main(["config", "path"])
    assert run.code == 0 and run.stdout.strip() == str(config_file)


def test_show_prints_effective_values_and_origins(config_file: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COMPUTEHUB_POLL_INSTANCES_S", "9")
    run = run_main(["config", "show", "--origin", "--set", "offers.disk_gb=40"])
    assert run.code == 0, run.describe()
    lines = {line.split("=")[0].strip(): line for line in run.stdout.splitlines() if "=" in line}
    assert lines["seed"].endswith(f"# file {config_file}:3")
    assert lines["instances_s"].startswith("instances_s = 9") and "environment COMPUTEHUB_POLL_INSTANCES_S" in \
        lines["instances_s"]
    assert lines["disk_gb"].startswith("disk_gb = 40") and "# flag --set offers.disk_gb=40" in lines["disk_gb"]
    assert lines["limit"].endswith("# default")


def test_show_defaults_is_a_complete_valid_example(config_file: Path) -> None:
    run = run_main(["config", "show", "--defaults"])
    assert run.code == 0
    assert Settings.model_validate(tomllib.loads(run.stdout)) == Settings()


def test_validate_lists_every_problem_and_exits_2(config_file: Path) -> None:
    config_file.write_text(BROKEN, encoding="utf-8")
    run = run_main(["config", "validate"])
    assert run.code == 2 and run.stdout == ""
    assert run.error_lines == [
        f"{config_file}:2: poll.instances_s: must be ≥ 2",
        f"{config_file}:5: demo.seeds: unknown key in [demo] (did you mean 'seed'?)",
        "2 problems; nothing was changed",
    ]
    good = config_file.with_name("good.toml")
    good.write_text("[poll]\ninstances_s = 3\n", encoding="utf-8")
    ok = run_main(["config", "validate", str(good)])
    assert ok.code == 0 and ok.stdout.strip() == f"ok: {good}"


def test_validate_warns_of_an_alert_channel_that_loads_but_cannot_send(config_file: Path) -> None:
    config_file.write_text('[alerts.email]\nhost = "smtp.example.com"\n[alerts.webhook]\nformat = "slack"\n'
                           '[alerts.telegram]\nchat_id = "555"\n', encoding="utf-8")
    run = run_main(["config", "validate"])
    assert run.code == 0 and run.stdout.strip() == f"ok: {config_file}"
    assert run.error_lines == [
        "warning: [alerts.email] needs from (the sender) and to (at least one recipient) besides host",
        "warning: [alerts.webhook] has no url, so the webhook is off",
    ]
    config_file.write_text('[alerts.email]\nhost = "smtp.example.com"\nfrom = "hub@example.com"\n'
                           'to = ["ops@example.com"]\n', encoding="utf-8")
    complete = run_main(["config", "validate"])
    assert complete.code == 0 and complete.error_lines == []


def test_set_changes_one_value_and_keeps_the_comments(config_file: Path) -> None:
    run = run_main(["config", "set", "poll.instances_s", "10"])
    assert run.code == 0, run.describe()
    assert config_file.read_text() == "# mine\n[demo]\nseed = 7  # fixed seed\n\n[poll]\ninstances_s = 10\n"
    refused = run_main(["config", "set", "poll.instances_s", "0.5"])
    assert refused.code == 2 and refused.error_lines == [
        f"computehub-tui: error: {config_file}: poll.instances_s: must be ≥ 2"]
    assert "instances_s = 10" in config_file.read_text()


def test_a_broken_config_stops_every_command_with_one_line(config_file: Path, tmp_path: Path) -> None:
    config_file.write_text(BROKEN, encoding="utf-8")
    expected = (f"computehub-tui: error: {config_file}:2: poll.instances_s: must be ≥ 2 (and 1 more problem; run "
                "`computehub-tui config validate`)")
    for args in (["offers", "--demo"], ["instances"], ["keys", "list"], ["logs", "vast:1"], ["stop", "vast:1"]):
        run = run_main([*args, "--data-dir", str(tmp_path / "data")])
        assert (run.code, run.error_lines, run.stdout) == (2, [expected], ""), run.describe()


def test_the_tui_refuses_a_broken_config_with_one_line(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text(BROKEN, encoding="utf-8")
    run = run_cli(["--config", str(path), "--data-dir", str(tmp_path / "data")], base_environment({}))
    assert run.code == 2 and len(run.error_lines) == 1 and "poll.instances_s: must be ≥ 2" in run.stderr


def test_edit_saves_only_a_valid_file(config_file: Path, tmp_path: Path) -> None:
    editor = tmp_path / "editor.py"
    editor.write_text("import sys, pathlib\n"
                      "p = pathlib.Path(sys.argv[1])\n"
                      "p.write_text(p.read_text().replace('seed = 7', 'seed = 8'))\n", encoding="utf-8")
    env = base_environment({"COMPUTEHUB_CONFIG": str(config_file), "EDITOR": f"{sys.executable} {editor}"})
    run = run_cli(["config", "edit"], env)
    assert run.code == 0 and run.stdout.strip() == f"saved {config_file}", run.describe()
    assert config_file.read_text() == "# mine\n[demo]\nseed = 8  # fixed seed\n"

    editor.write_text("import sys, pathlib\n"
                      "p = pathlib.Path(sys.argv[1])\n"
                      "p.write_text(p.read_text() + '[poll]\\ninstances_s = 0\\n')\n", encoding="utf-8")
    run = run_cli(["config", "edit"], env)
    assert run.code == 2, run.describe()
    assert run.error_lines[0] == f"{config_file}:5: poll.instances_s: must be ≥ 2"
    assert "not saved; your edit is kept in" in run.error_lines[-1]
    assert config_file.read_text() == "# mine\n[demo]\nseed = 8  # fixed seed\n"
