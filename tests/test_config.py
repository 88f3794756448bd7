"""Configuration as code: sections, precedence, origins, every validation message, comment-keeping writes."""

from __future__ import annotations

import keyword
import tomllib
from pathlib import Path

import pytest

from computehub_tui.config import Config, ConfigError, config_file_path, load_config
from computehub_tui.config.editing import set_value
from computehub_tui.config.loader import LEAVES, Leaf
from computehub_tui.config.render import render_example, render_settings
from computehub_tui.config.schema import Settings

OVERRIDES: dict[str, tuple[str, object]] = {
    "providers.vast.url": ("http://127.0.0.1:9000", "http://127.0.0.1:9000"),
    "providers.runpod.graphql_url": ("http://127.0.0.1:9001/graphql", "http://127.0.0.1:9001/graphql"),
    "providers.runpod.rest_url": ("http://127.0.0.1:9001/v2", "http://127.0.0.1:9001/v2"),
    "providers.lambda.url": ("https://lambda.test/api/v1", "https://lambda.test/api/v1"),
    "providers.tensordock.url": ("https://td.test/api/v2", "https://td.test/api/v2"),
    "ui.default_pane": ("monitor", "monitor"),
    "ui.keys": ("sort_pergpu=u,monitor=f3", {"sort_pergpu": "u", "monitor": "f3"}),
    "costs.timezone": ("Asia/Tokyo", "Asia/Tokyo"),
    **{f"providers.{name}.api_key_file": ("~/.secrets/key", "~/.secrets/key")
       for name in ("vast", "runpod", "lambda", "tensordock")},
    "retention.metrics_raw": ("3d", 3 * 86400.0),
    "retention.metrics_1m": ("14d", 14 * 86400.0),
    "retention.metrics_1h": ("2w", 14 * 86400.0),
    "retention.price_history": ("30d", 30 * 86400.0),
    "retention.audit": ("12h", 12 * 3600.0),
    "monitor.ssh_identity": ("~/.ssh/id_ed25519", "~/.ssh/id_ed25519"),
    "monitor.ssh_providers": ("lambda,vast", ["lambda", "vast"]),
    "automation.cooldown": ("30m", 1800.0),
    "alerts.routes": ("spend=email", {"spend": ["email"]}),
    "alerts.group_interval": ("10m", 600.0),
    "alerts.repeat_interval": ("1h", 3600.0),
    "alerts.quiet_hours": ("23:00-07:00", "23:00-07:00"),
    "alerts.fallback": ("email", "email"),
    "alerts.provider_down_after": ("15m", 900.0),
    "alerts.spend_thresholds": ("50,200", [50.0, 200.0]),
    "alerts.telegram.chat_id": ("-1001234567890", "-1001234567890"),
    "alerts.telegram.base_url": ("http://127.0.0.1:9002/bot", "http://127.0.0.1:9002/bot"),
    "alerts.email.host": ("smtp.example.com", "smtp.example.com"),
    "alerts.email.security": ("tls", "tls"),
    "alerts.email.from": ("alerts@example.com", "alerts@example.com"),
    "alerts.email.to": ("a@example.com,b@example.com", ["a@example.com", "b@example.com"]),
    "alerts.webhook.url": ("https://hooks.example.com/x", "https://hooks.example.com/x"),
    "alerts.webhook.format": ("slack", "slack"),
}
"""Values for settings whose type alone does not give a valid non-default one."""


def other_value(leaf: Leaf) -> tuple[str, object]:
    """Text for the environment and the value it must turn into, different from the default."""
    if leaf.key in OVERRIDES:
        return OVERRIDES[leaf.key]
    default = leaf.field.default
    if isinstance(default, bool):
        return ("false" if default else "true", not default)
    if isinstance(default, int | float):
        return (str(int(default) + 1), type(default)(int(default) + 1))
    return ("override-text", "override-text")


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def problems_of(path: Path | None, environ: dict[str, str] | None = None, flags: tuple[str, ...] = ()) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        load_config(path, environ or {}, flags=flags)
    return [str(problem) for problem in caught.value.problems]


def value(config: Config, key: str) -> object:
    node: object = config
    for part in key.split("."):
        node = getattr(node, f"{part}_" if keyword.iskeyword(part) else part)
    return node


@pytest.mark.parametrize("key", sorted(LEAVES))
def test_every_key_has_an_environment_override(key: str) -> None:
    leaf = LEAVES[key]
    text, expected = other_value(leaf)
    config = load_config(None, {leaf.env: text})
    assert value(config, key) == expected
    assert str(config.origin(key)) == f"environment {leaf.env}"
    assert leaf.env == "COMPUTEHUB_" + key.replace(".", "_").upper()


def test_precedence_is_flag_then_environment_then_file_then_default(tmp_path: Path) -> None:
    path = write(tmp_path / "config.toml", "[poll]\ninstances_s = 7\noffers_s = 30\n\n[offers]\ndisk_gb = 50\n")
    environ = {"COMPUTEHUB_POLL_INSTANCES_S": "9", "COMPUTEHUB_POLL_OFFERS_S": "40"}
    config = load_config(path, environ, flags=("poll.instances_s=11",))
    assert (config.poll.instances_s, config.poll.offers_s, config.offers.disk_gb, config.offers.limit) == (
        11, 40, 50, 10_000)
    assert [str(config.origin(k)) for k in ("poll.instances_s", "poll.offers_s", "offers.disk_gb", "offers.limit")] \
        == ["flag --set poll.instances_s=11", "environment COMPUTEHUB_POLL_OFFERS_S", f"file {path}:6", "default"]


def test_the_old_endpoint_variables_keep_working_and_the_new_ones_win() -> None:
    old = load_config(None, {"COMPUTEHUB_VAST_URL": "http://127.0.0.1:1"})
    assert old.providers.vast.url == "http://127.0.0.1:1"
    both = load_config(None, {"COMPUTEHUB_VAST_URL": "http://127.0.0.1:1",
                              "COMPUTEHUB_PROVIDERS_VAST_URL": "http://127.0.0.1:2"})
    assert both.providers.vast.url == "http://127.0.0.1:2"
    assert str(both.origin("providers.vast.url")) == "environment COMPUTEHUB_PROVIDERS_VAST_URL"


def test_every_problem_is_reported_with_file_line_and_dotted_key(tmp_path: Path) -> None:
    path = write(tmp_path / "config.toml", """\
# tuned by hand
[poll]
instances_s = 1
offer_s = 30

[providers.vast]
url = "ftp://x"
api_key = "sk-live-123"

[ui]
default_pane = "instance"
keys = { monitr = "f3" }

[costs]
timezone = "Europe/Berln"

[retention]
audit = "forever"
""")
    assert problems_of(path, {"COMPUTEHUB_POLL_INSTANCE_S": "3"}, ("demo.seed=abc",)) == [
        f"{path}:3: poll.instances_s: must be ≥ 2",
        f"{path}:4: poll.offer_s: unknown key in [poll] (did you mean 'offers_s'?)",
        f"{path}:7: providers.vast.url: endpoint URLs are http:// or https:// with a host, not 'ftp://x'",
        f"{path}:8: providers.vast.api_key: secrets are never stored in the config file: keep them in the vault "
        "(`computehub-tui keys set`) or point to them with api_key_file / api_key_command",
        f"{path}:11: ui.default_pane: must be one of 'offers', 'instances', 'monitor' or 'rules'",
        f"{path}:12: ui.keys: unknown action 'monitr' (did you mean 'monitor'?) (known: offers, instances, monitor, rules, "
        "help, settings, refresh, quit, filter, details, market, sort_price, sort_pergpu, sort_value, sort_pflop, "
        "sort_vram, sort_rel, sort_age, sort_gpu)",
        f"{path}:15: costs.timezone: unknown time zone 'Europe/Berln' (did you mean 'Europe/Berlin'?)",
        f"{path}:18: retention.audit: 'forever' is not a duration; write a number and a unit, e.g. 30s, 15m, 2h, "
        "90d, 1w",
        "COMPUTEHUB_POLL_INSTANCE_S: no such setting (did you mean 'COMPUTEHUB_POLL_INSTANCES_S'?)",
        "--set demo.seed=abc: demo.seed: must be a whole number",
    ]


def test_the_one_line_form_names_the_first_problem_and_counts_the_rest(tmp_path: Path) -> None:
    path = write(tmp_path / "config.toml", "[poll]\ninstances_s = 1\noffers_s = 5\n")
    with pytest.raises(ConfigError) as caught:
        load_config(path, {})
    assert str(caught.value) == (f"{path}:2: poll.instances_s: must be ≥ 2 (and 1 more problem; run "
                                 "`computehub-tui config validate`)")


@pytest.mark.parametrize(("text", "expected"), [
    ("offers_interval_s = 60\n", "1: offers_interval_s: offers_interval_s has moved: write it as [poll] offers_s"),
    ("instances_interval_s = 5\n", "1: instances_interval_s: instances_interval_s has moved: write it as [poll] "
                                   "instances_s"),
    ("default_disk_gb = 40\n", "1: default_disk_gb: default_disk_gb has moved: write it as [offers] disk_gb"),
    ("demo_vast_offers = 300\n", "1: demo_vast_offers: demo_vast_offers has moved: write it as [demo] vast_offers"),
    ('[lambda]\nssh_key_name = "k"\n', "2: lambda.ssh_key_name: [lambda] has moved: write it as [providers.lambda] "
                                       "ssh_key_name"),
])
def test_an_old_flat_key_names_its_new_place(tmp_path: Path, text: str, expected: str) -> None:
    path = write(tmp_path / "config.toml", text)
    assert problems_of(path) == [f"{path}:{expected}"]


def test_toml_syntax_errors_name_the_line(tmp_path: Path) -> None:
    path = write(tmp_path / "config.toml", "[poll]\ninstances_s = = 3\n")
    (problem,) = problems_of(path)
    assert problem.startswith(f"{path}:2: not valid TOML")


def test_a_named_file_must_exist_and_the_default_may_be_missing(tmp_path: Path) -> None:
    assert config_file_path(tmp_path / "a.toml", {}) == (tmp_path / "a.toml", True)
    assert config_file_path(None, {"COMPUTEHUB_CONFIG": str(tmp_path / "b.toml")}) == (tmp_path / "b.toml", True)
    with pytest.raises(ConfigError, match="config file does not exist"):
        load_config(tmp_path / "missing.toml", {}, must_exist=True)
    assert load_config(tmp_path / "missing.toml", {}).poll.instances_s == 5


def test_the_commented_example_is_valid_toml_holding_every_default() -> None:
    example = render_example()
    parsed = tomllib.loads(example)
    assert Settings.model_validate(parsed) == Settings()
    for leaf in LEAVES.values():
        assert leaf.env in example and leaf.field.description, leaf.key


def test_show_with_origins_says_where_each_value_came_from(tmp_path: Path) -> None:
    path = write(tmp_path / "config.toml", "[demo]\nseed = 7\n")
    config = load_config(path, {"COMPUTEHUB_OFFERS_LIMIT": "500"})
    shown = render_settings(config, config.origin)
    assert "seed = 7" in shown and f"# file {path}:2" in shown
    assert "# environment COMPUTEHUB_OFFERS_LIMIT" in shown and 'audit = "365d"' in shown
    assert tomllib.loads(render_settings(config))["demo"]["seed"] == 7


HAND_WRITTEN = """\
# My computehub settings — do not lose this comment
[poll]
offers_s = 120      # slow is fine, I am on a metered link
# the next one I change often
instances_s = 5

[providers.vast]
url = "http://127.0.0.1:9000"   # my loopback proxy

[ui]
theme = "nord"
"""


def test_a_write_keeps_every_other_byte_of_the_file(tmp_path: Path) -> None:
    path = write(tmp_path / "config.toml", HAND_WRITTEN)
    assert set_value(path, "poll.instances_s", "10") == 10
    assert path.read_text() == HAND_WRITTEN.replace("instances_s = 5", "instances_s = 10")
    set_value(path, "ui.theme", "gruvbox")
    assert path.read_text() == HAND_WRITTEN.replace("instances_s = 5", "instances_s = 10").replace('"nord"',
                                                                                                '"gruvbox"')


def test_a_write_adds_a_missing_table_after_a_blank_line(tmp_path: Path) -> None:
    path = write(tmp_path / "config.toml", HAND_WRITTEN)
    set_value(path, "providers.lambda.ssh_key_name", "laptop")
    set_value(path, "retention.audit", "30d")
    text = path.read_text()
    assert text.startswith(HAND_WRITTEN.split("[ui]")[0])
    assert '\n\n[providers.lambda]\nssh_key_name = "laptop"\n' in text and '\n\n[retention]\naudit = "30d"\n' in text
    config = load_config(path, {})
    assert (config.providers.lambda_.ssh_key_name, config.retention.audit, config.ui.theme) == (
        "laptop", 30 * 86400.0, "nord")


def test_an_invalid_write_changes_nothing(tmp_path: Path) -> None:
    path = write(tmp_path / "config.toml", HAND_WRITTEN)
    for key, text, message in [("poll.instances_s", "1", "must be ≥ 2"),
                               ("poll.instance_s", "10", "did you mean 'instances_s'?"),
                               ("providers.vast.api_key", "sk-live-secret", "unknown key"),
                               ("ui.default_pane", "nowhere", "must be one of")]:
        with pytest.raises(ConfigError, match=message):
            set_value(path, key, text)
    assert path.read_text() == HAND_WRITTEN
    assert "sk-live-secret" not in path.read_text()


def test_a_new_file_is_created_with_the_setting(tmp_path: Path) -> None:
    path = tmp_path / "fresh" / "config.toml"
    set_value(path, "ui.default_pane", "monitor")
    assert path.read_text() == '[ui]\ndefault_pane = "monitor"\n'


def test_a_key_in_the_wrong_section_names_the_right_one(tmp_path: Path) -> None:
    path = write(tmp_path / "config.toml", "[retention]\nmin_reliability = 0.9\n")
    assert problems_of(path) == [f"{path}:2: retention.min_reliability: unknown key in [retention] "
                                 "(it belongs in [offers])"]
