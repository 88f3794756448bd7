"""What the CLI prints and how it exits when providers, the database or the data dir fail."""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest
from fakes import vast as vast_wire
from fakes.accounts import KEY_VARIABLES, KEYS, Market, ok, one_error_line, open_market
from fakes.cli import base_environment, run_cli, run_main
from fakes.tensordock import FakeTensordock

from computehub_tui.cli import build_parser
from computehub_tui.cli import session as cli_session
from computehub_tui.engine.keys import DATABASE_NAME

WRONG_KEY = "wrong-key-0123456789"


@pytest.fixture
def market(tmp_path: Path) -> Iterator[Market]:
    with open_market(tmp_path) as opened:
        yield opened


def test_instances_table_shows_full_ids_price_now_cost_and_uptime(market: Market) -> None:
    table, listed = market.run_all(market.invocation("instances"), market.invocation("instances", "--json"))
    header, *rows = ok(table).stdout.splitlines()
    assert header.split() == ["ID", "LABEL", "STATUS", "GPU", "$/H", "NOW", "COST", "UPTIME", "UTIL", "SSH"]
    ids = [row.split()[0] for row in rows]
    assert sorted(ids) == sorted(i["id"] for i in ok(listed).json()), "every ID in full, ready to paste"
    assert max(map(len, ids)) > 40, "the TensorDock UUIDs are long"

    # A stopped Vast machine bills its disk (0.2 $/GB/month x 40 GB = 0.0111 $/h), not its GPUs (17.62 $/h).
    stopped = next(row for row in rows if row.startswith(f"vast:{vast_wire.STOPPED['id']} "))
    assert re.search(r"\sstopped\s+8x H100 SXM\s+0\.011\s+\d+\.\d\d\s+-\s", stopped), stopped
    running = next(row for row in rows if row.startswith(f"vast:{vast_wire.RUNNING['id']} "))
    assert re.search(r"\srunning\s+1x RTX 4090\s+0\.391\s+\d+\.\d\d\s", running), running

    for instance in listed.json():
        assert isinstance(instance["cost_so_far"], float) and instance["cost_so_far"] >= 0
        assert round(instance["cost_so_far"], 4) == instance["cost_so_far"]
        uptime = instance["uptime_s"]
        assert uptime is None or (isinstance(uptime, float) and uptime >= 0), instance
        if instance["status"] == "stopped":
            assert uptime is None, instance


def test_when_every_provider_fails_stdout_stays_empty_and_the_exit_is_1(market: Market) -> None:
    broken = market.environment(**{variable: WRONG_KEY for variable in KEY_VARIABLES.values()})
    runs = market.run_all(*(market.invocation(*args, env=broken) for args in (
        ("instances",), ("instances", "--json"), ("offers",), ("offers", "--json"), ("offers", "--csv"))))
    for run in runs:
        assert run.code == 1 and run.stdout == "", run.describe()
        lines = run.error_lines
        assert len(lines) == len(KEYS) and all(line.startswith("computehub-tui: error: ") for line in lines), lines
        assert all("rejected" in line for line in lines), lines


def test_when_some_providers_fail_the_others_are_printed_with_a_warning_and_the_exit_is_1(market: Market) -> None:
    partial = market.environment(VAST_API_KEY=WRONG_KEY)
    table, listed, offers = market.run_all(
        market.invocation("instances", env=partial),
        market.invocation("instances", "--json", env=partial),
        market.invocation("offers", "--csv", "--limit", "0", env=partial),
    )
    for run in (table, listed, offers):
        assert run.code == 1, run.describe()
        (warning,) = run.error_lines
        assert warning.startswith("warning: vast: API key rejected"), run.describe()
    assert {i["provider"] for i in listed.json()} == {"runpod", "lambda", "tensordock"}
    assert {row.split()[0].split(":")[0] for row in table.stdout.splitlines()[1:]} == {"runpod", "lambda", "tensordock"}
    assert {line.split(",")[0] for line in offers.stdout.splitlines()[1:]} == {"runpod", "lambda", "tensordock"}


def test_no_instances_is_a_note_on_stderr_or_an_empty_json_list(market: Market) -> None:
    empty = market.start(FakeTensordock(KEYS["tensordock"], vms=[]))
    only = market.environment(keys=("tensordock",), **empty.endpoint_env())
    table, listed = market.run_all(
        market.invocation("instances", env=only), market.invocation("instances", "--json", env=only))
    assert (table.code, table.stdout, table.stderr) == (0, "", "(no instances)\n"), table.describe()
    assert (ok(listed).stdout, listed.json()) == ("[]\n", [])


def test_a_failed_database_write_exits_1_with_one_line_after_the_results(market: Market) -> None:
    data = market.new_data_dir()
    env = market.environment(keys=("vast",))
    ok(market.run("instances", env=env, data_dir=data))
    with sqlite3.connect(data / DATABASE_NAME) as db:  # the real database refuses, as a full disk would
        db.execute("CREATE TRIGGER refuse BEFORE INSERT ON instances "
                   "BEGIN SELECT RAISE(ABORT, 'database or disk is full'); END")
    run = market.run("instances", env=env, data_dir=data)
    line = one_error_line(run, 1)
    assert line.startswith("computehub-tui: error: could not save to the database: "), line
    assert "could not save vast instances" in line and line.endswith("; results above are not recorded")
    assert f"vast:{vast_wire.RUNNING['id']}" in run.stdout, "the results are still printed"


def test_an_unreadable_database_is_one_line_and_exit_1(market: Market) -> None:
    data = market.new_data_dir()
    data.mkdir(parents=True)
    (data / DATABASE_NAME).write_bytes(b"this is not a database, it only looks like one" * 100)
    run = market.run("instances", env=market.environment(keys=("vast",)), data_dir=data)
    assert str(data / DATABASE_NAME) in one_error_line(run, 1) and run.stdout == ""


def test_a_data_dir_that_cannot_be_created_is_one_line_naming_it(market: Market) -> None:
    blocker = market.tmp_path / "a-file"
    blocker.write_text("not a folder", encoding="utf-8")
    data = blocker / "data"
    keys_set, instances = market.run_all(
        market.invocation("keys", "set", "vast", stdin="vast-key-0123456789\n", data_dir=data),
        market.invocation("instances", env=market.environment(keys=("vast",)), data_dir=data),
    )
    for run in (keys_set, instances):
        line = one_error_line(run, 1)
        assert str(data) in line and "Not a directory" in line, line
        assert "--data-dir" in line or "folder" in line, line


def test_an_unexpected_exception_is_one_line_and_exit_70(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("a bug in sorting")

    monkeypatch.setattr("computehub_tui.cli.market.sort_offers", broken)
    run = run_main(["offers", "--demo", "--data-dir", str(tmp_path / "data")])
    assert run.stdout == "" and one_error_line(run, 70) == (
        "computehub-tui: error: internal error: RuntimeError: a bug in sorting; please report it "
        "(set COMPUTEHUB_DEBUG=1 to see the traceback)")


def test_demo_reset_reaches_the_session_and_starts_the_demo_over(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert build_parser().parse_args(["--demo-reset"]).demo_reset is True, "valid with no command (the TUI)"
    seen: list[bool] = []
    real_open_session = cli_session.open_session

    async def spy(*args: object, demo_reset: bool = False, **kwargs: object) -> object:
        seen.append(demo_reset)
        return await real_open_session(*args, demo_reset=demo_reset, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(cli_session, "open_session", spy)
    data = str(tmp_path / "data")
    assert run_main(["instances", "--json", "--demo", "--data-dir", data]).code == 0
    assert run_main(["instances", "--json", "--demo", "--demo-reset", "--data-dir", data]).code == 0
    assert seen == [False, True]

    env = base_environment({"COMPUTEHUB_DATA_DIR": data})
    fresh = run_cli(["instances", "--json", "--demo"], env).json()
    offer = run_cli(["offers", "--json", "--demo", "--provider", "vast", "--limit", "1"], env).json()[0]
    launched = run_cli(["launch", "vast", offer["offer_id"], "--image", "x", "--yes", "--demo"], env)
    assert launched.code == 0, launched.describe()
    reset = run_cli(["instances", "--json", "--demo", "--demo-reset"], env).json()
    assert {i["id"] for i in reset} == {i["id"] for i in fresh}, "the launch is forgotten"
    assert launched.stdout.strip() not in {i["id"] for i in reset}
