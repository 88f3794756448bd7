"""Bad input is refused before anything is sent: exit 2, one line naming what is wrong (and where)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fakes import lambda_cloud as lambda_wire
from fakes import tensordock as tensordock_wire
from fakes.accounts import Market, one_error_line, open_market
from fakes.cli import Invocation, base_environment, run_cli, run_main

from computehub_tui.config import ConfigError, load_config
from computehub_tui.domain.ids import instance_id_problem

TENSORDOCK_VM = tensordock_wire.RUNNING_VM["id"]
LAMBDA_INSTANCE = lambda_wire.INSTANCES[0]["id"]


@pytest.fixture
def market(tmp_path: Path) -> Iterator[Market]:
    with open_market(tmp_path) as opened:
        yield opened


LAUNCH = ("launch", "vast", "21934711", "--yes")


@pytest.mark.parametrize(("args", "expected"), [
    (("offers", "--limit", "lots"), "argument --limit: expected a whole number"),
    (("logs", "vast:9104662", "--tail", "-5"), "argument --tail: must be between 1 and"),
    ((*LAUNCH, "--image", "x", "--disk", "0"), "argument --disk: must be between 1 and"),
    ((*LAUNCH, "--image", "x", "--disk", "-5"), "argument --disk: must be between 1 and"),
    (("destroy", "vast:91046/../1", "--yes"), "is not a vast instance ID"),
    (("start", "runpod:Pod ID"), "runpod instance IDs are lower-case letters and digits"),
    (("restart", "lambda:not-hex-at-all"), "lambda instance IDs are hex digits"),
    (("logs", "tensordock:vm?x=1"), "tensordock instance IDs are a UUID"),
    (("offers", "--max-price", "nan"), "argument --max-price: must be a price above 0"),
    (("offers", "--max-price", "inf"), "argument --max-price: must be a price above 0"),
    (("offers", "--max-price", "0"), "argument --max-price: must be a price above 0"),
    ((*LAUNCH, "--image", "x", "--bid", "-1"), "argument --bid: must be a price above 0"),
    ((*LAUNCH, "--image", "x", "--bid", "1e308"), "argument --bid: must be a price above 0"),
    ((*LAUNCH, "--image", "  "), "argument --image: --image must not be empty"),
    ((*LAUNCH, "--image", "my image"), "--image must be one line of printable text without spaces"),
    ((*LAUNCH, "--image", "x", "--label", "l" * 65), "--label must be at most 64 characters"),
    ((*LAUNCH, "--image", "x", "--label", "a\x1b[2Jb"), "--label must be one line of printable text"),
])
def test_malformed_options_are_one_line_and_exit_2(args: tuple[str, ...], expected: str) -> None:
    run = run_main(args)
    assert expected in one_error_line(run, 2) and run.stdout == "", run.describe()
    assert b"\x1b" not in run.stderr_bytes


@pytest.mark.parametrize(("text", "expected"), [
    ("[poll]\noffers_s = inf", ":2: poll.offers_s: must be a finite number"),
    ("[poll]\ninstances_s = 1e308", ":2: poll.instances_s: must be ≤ 86400"),
    ("[offers]\nmin_reliability = nan", ":2: offers.min_reliability: must be a finite number"),
    ('[providers.vast]\nurl = "file:///etc/passwd"',
     ":2: providers.vast.url: endpoint URLs are http:// or https:// with a host, not 'file:///etc/passwd'"),
])
def test_config_errors_name_the_file_and_field_and_exit_2(tmp_path: Path, text: str, expected: str) -> None:
    path = tmp_path / "config.toml"
    path.write_text(text + "\n", encoding="utf-8")
    run = run_main(["offers", "--config", str(path), "--data-dir", str(tmp_path / "data")])
    assert one_error_line(run, 2) == f"computehub-tui: error: {path}{expected}", run.describe()


def test_a_named_config_file_must_exist(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    missing = tmp_path / "typo" / "config.toml"
    by_option = run_main(["offers", "--config", str(missing)])
    monkeypatch.setenv("COMPUTEHUB_CONFIG", str(missing))
    by_variable = run_main(["offers"])
    for run in (by_option, by_variable):
        assert one_error_line(run, 2) == f"computehub-tui: error: {missing}: config file does not exist"


def test_refusals_in_a_real_process_send_nothing(market: Market) -> None:
    scenarios: list[tuple[Invocation, str]] = [
        (market.invocation("offers", "--limit", "-3"), "argument --limit: must be between 0 and"),
        (market.invocation("stop", "vast:abc"), "'vast:abc' is not a vast instance ID: vast instance IDs are digits"),
        (market.invocation("offers", env=market.environment(COMPUTEHUB_RUNPOD_REST_URL="ftp://127.0.0.1/v2")),
         "COMPUTEHUB_RUNPOD_REST_URL: providers.runpod.rest_url: endpoint URLs are http:// or https://"),
    ]
    runs = market.run_all(*(invocation for invocation, _ in scenarios), process=True)
    for run, (_, expected) in zip(runs, scenarios, strict=True):
        assert expected in one_error_line(run, 2), run.describe()
        assert run.stdout == "", run.describe()
    assert [r.target for fake in market.fakes.values() for r in fake.server.requests] == [], "nothing was sent"


def test_a_missing_default_config_file_just_means_defaults(tmp_path: Path) -> None:
    run = run_cli(["offers", "--limit", "1", "--json", "--demo", "--data-dir", str(tmp_path / "data")],
                  base_environment({}))
    assert run.code == 0 and len(run.json()) == 1, run.describe()


def test_real_instance_ids_of_every_provider_are_accepted() -> None:
    real = {"vast": "9104662", "runpod": "ldl1dxirsim64n", "lambda": LAMBDA_INSTANCE, "tensordock": TENSORDOCK_VM}
    assert {provider: instance_id_problem(provider, key) for provider, key in real.items()} == dict.fromkeys(real, "")
    assert instance_id_problem("lambda", "0920582c-7ff0-4139-9e34-823a0be62549") == "", "UUID form tolerated"
    assert instance_id_problem("paperspace", "ps-1") == "unknown provider 'paperspace'"


@pytest.mark.parametrize(("text", "field"), [
    ("[poll]\noffers_s = inf", "poll.offers_s"),
    ("[poll]\noffers_s = 1e308", "poll.offers_s"),
    ("[poll]\ninstances_s = -inf", "poll.instances_s"),
    ("[offers]\ndisk_gb = 0", "offers.disk_gb"),
    ('[providers.lambda]\nurl = "javascript:alert(1)"', "providers.lambda.url"),
    ('[providers.tensordock]\nurl = "https:///no-host"', "providers.tensordock.url"),
    ('[providers.runpod]\ngraphql_url = "127.0.0.1:8080/graphql"', "providers.runpod.graphql_url"),
])
def test_config_values_must_be_finite_bounded_and_endpoints_http(tmp_path: Path, text: str, field: str) -> None:
    path = tmp_path / "config.toml"
    path.write_text(text + "\n", encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        load_config(path, {})
    assert str(caught.value).startswith(f"{path}:2: {field}: "), caught.value


def test_plain_local_endpoints_and_the_old_endpoint_variables_still_work(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text('[poll]\ninstances_s = 2\n[providers.vast]\nurl = "http://127.0.0.1:8080"\n', encoding="utf-8")
    config = load_config(path, {"COMPUTEHUB_LAMBDA_URL": "https://lambda.example/api/v1"})
    assert (config.poll.instances_s, config.providers.vast.url, config.providers.lambda_.url) == (
        2.0, "http://127.0.0.1:8080", "https://lambda.example/api/v1")
