"""``rules``: check (every error with line, column and caret), import (never an invalid file), export, list, switches
and pause / resume kept in the store for every process."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from fakes.cli import run_completed

GOOD = 'rule "idle": IF gpu_util < 5 FOR 30m AND status == "running" THEN stop\nIF status == "exited" THEN restart\n'
BAD = 'rule "x": IF gpu_util < 5 FOR THEN stop\nIF status == "exited" THEN restrat\n'


class Cli:
    def __init__(self, tmp_path: Path) -> None:
        self.dir = tmp_path
        (tmp_path / "config.toml").write_text("[demo]\nvast_offers = 100\n", encoding="utf-8")
        self.env = {**os.environ, "COMPUTEHUB_CONFIG": str(tmp_path / "config.toml"),
                    "COMPUTEHUB_DATA_DIR": str(tmp_path / "data")}

    def __call__(self, *args: str) -> tuple[int, str, str]:
        done = run_completed([*args, "--demo"] if args[:2] != ("rules", "check") else list(args), self.env)
        return done.returncode, done.stdout, done.stderr

    def file(self, name: str, text: str) -> str:
        (self.dir / name).write_text(text, encoding="utf-8")
        return str(self.dir / name)


@pytest.fixture
def cli(tmp_path: Path) -> Cli:
    return Cli(tmp_path)


def test_check_reports_every_error_with_its_caret_and_exits_2(cli: Cli) -> None:
    assert cli("rules", "check", cli.file("good.rules", GOOD))[:2] == (0, f"{cli.dir}/good.rules: ok, 2 rules\n")
    code, out, err = cli("rules", "check", cli.file("bad.rules", BAD))
    assert code == 2 and out == ""
    lines = err.splitlines()
    assert lines[0].endswith("bad.rules: line 1, col 31: expected a duration like 30m after FOR")
    assert lines[2] == " " * 32 + "^"  # two of indent, then under the T of THEN
    assert any("unknown action 'restrat'; did you mean 'restart'?" in line for line in lines)
    assert lines[-1].endswith("bad.rules: 2 errors")
    missing = cli("rules", "check", str(cli.dir / "nope.rules"))
    assert missing[0] == 2 and missing[2].count("\n") == 1 and "no such file" in missing[2]


def test_check_warns_of_a_notify_to_a_channel_the_config_does_not_set_up(cli: Cli) -> None:
    rules = cli.file("notify.rules", 'rule "idle": IF gpu_util < 5 FOR 30m THEN stop; notify telegram\n'
                                     'rule "cap": IF spend_today > 50 THEN notify toast; notify email "cap"\n'
                                     'rule "again": IF spend_today > 90 THEN notify email\n')
    (cli.dir / "config.toml").write_text('[alerts.email]\nhost = "smtp.example.com"\nfrom = "hub@example.com"\n'
                                         'to = ["ops@example.com"]\n', encoding="utf-8")
    code, out, err = cli("rules", "check", rules)
    assert (code, out) == (0, f"{rules}: ok, 3 rules\n")
    [warning] = err.splitlines()  # e-mail is set up and a toast needs nothing
    assert warning.startswith("warning: rule idle notifies telegram, which is not configured: add [alerts.telegram]")
    (cli.dir / "config.toml").write_text("[poll]\ninstances_s = 1\n", encoding="utf-8")
    assert cli("rules", "check", rules)[:3:2] == (0, "")  # a broken config: the rule file is still checked


def test_hostile_text_in_a_rule_file_reaches_the_terminal_inert(cli: Cli) -> None:
    code, _, err = cli("rules", "check", cli.file("evil.rules", 'IF label == "\x1b]52;c;eA==\x07" THEN stop\n'))
    assert code == 2 and "\x1b" not in err and "\x07" not in err


def test_import_never_writes_an_invalid_file_and_export_prints_the_good_one(cli: Cli) -> None:
    rules_file = cli.dir / "automation.rules"
    code, _, err = cli("rules", "import", cli.file("bad.rules", BAD))
    assert code == 2 and "nothing was imported" in err and not rules_file.exists()
    assert cli("rules", "import", cli.file("good.rules", GOOD))[:2] == (0, f"imported 2 rules into {rules_file}\n")
    assert rules_file.read_text(encoding="utf-8") == GOOD
    assert cli("rules", "import", cli.file("bad.rules", BAD))[0] == 2
    assert rules_file.read_text(encoding="utf-8") == GOOD
    assert cli("rules", "export")[:2] == (0, GOOD)


def test_switches_and_pause_are_kept_for_every_process(cli: Cli) -> None:
    cli("rules", "import", cli.file("good.rules", GOOD))
    code, _, err = cli("rules", "dry-run", "idel")
    assert code == 2 and "no rule named 'idel'" in err and "did you mean 'idle'?" in err
    assert cli("rules", "dry-run", "idle")[0] == 0
    assert cli("rules", "disable", "line-2")[0] == 0
    listed = json.loads(cli("rules", "list", "--json")[1])
    assert [(r["name"], r["enabled"], r["mode"], r["fire_count"]) for r in listed] == [
        ("idle", True, "dry-run", 0), ("line-2", False, "live", 0)]
    assert cli("rules", "pause", "--reason", "maintenance")[0] == 0
    assert "automation is paused: maintenance" in cli("rules", "list")[2]
    assert cli("rules", "resume")[0] == 0
    assert "paused" not in cli("rules", "list")[2]
    assert cli("rules", "live", "idle")[0] == 0 and cli("rules", "enable", "line-2")[0] == 0
    assert [(r["enabled"], r["mode"]) for r in json.loads(cli("rules", "list", "--json")[1])] == [
        (True, "live"), (True, "live")]


def test_a_rule_file_with_errors_is_named_before_any_switch(cli: Cli) -> None:
    (cli.dir / "automation.rules").write_text(BAD, encoding="utf-8")
    code, _, err = cli("rules", "list")
    assert code == 1 and err.count("\n") == 1 and "has errors" in err and "rules check" in err


def test_the_readme_rule_example_checks_clean(cli: Cli) -> None:
    readme = (Path(__file__).parent.parent / "README.md").read_text(encoding="utf-8")
    example = readme.split("# stop GPUs that idle", 1)[1].split("```", 1)[0]
    code, out, err = cli("rules", "check", cli.file("readme.rules", "# stop GPUs that idle" + example))
    assert code == 0 and out.endswith("ok, 5 rules\n"), err
