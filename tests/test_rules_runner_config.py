"""``[automation]``: its names and defaults, its validation messages, and the rule file it names."""

from __future__ import annotations

from pathlib import Path

import pytest

from computehub_tui.config import ConfigError, load_config
from computehub_tui.wiring import automation_settings


def test_the_defaults_are_the_issues(tmp_path: Path) -> None:
    config = load_config(tmp_path / "config.toml", {})
    section = config.automation
    assert (section.enabled, section.rules_file, section.cooldown, section.destructive_per_hour,
            section.fleet_share, section.dry_run) == (True, "automation.rules", 900.0, 10, 0.5, False)
    assert config.rules_path == tmp_path / "automation.rules"


def test_settings_reach_the_engine(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text('[automation]\ncooldown = "30m"\nfleet_share = 0.25\ndry_run = true\n'
                    'rules_file = "~/dotfiles/gpu.rules"\n')
    settings = automation_settings(load_config(path, {}), "daemon")
    assert (settings.cooldown_s, settings.fleet_share, settings.dry_run, settings.role) == (1800.0, 0.25, True,
                                                                                            "daemon")
    assert settings.rules_path == Path("~/dotfiles/gpu.rules").expanduser()


def test_bad_values_are_reported_with_file_line_and_key(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text('[automation]\ncooldown = "soon"\ndestructive_per_hour = 0\nfleet_share = 1.5\n'
                    'dry_run = "maybe"\nrules_file = "rules/"\nenable = true\n')
    with pytest.raises(ConfigError) as caught:
        load_config(path, {})
    assert [str(p) for p in caught.value.problems] == [
        (f"{path}:2: automation.cooldown: 'soon' is not a duration; write a number and a unit, e.g. 30s, 15m, 2h, "
         "90d, 1w"),
        f"{path}:3: automation.destructive_per_hour: must be ≥ 1",
        f"{path}:4: automation.fleet_share: must be ≤ 1",
        f"{path}:5: automation.dry_run: must be true or false",
        f"{path}:6: automation.rules_file: must name a file, not 'rules/'",
        f"{path}:7: automation.enable: unknown key in [automation] (did you mean 'enabled'?)",
    ]
