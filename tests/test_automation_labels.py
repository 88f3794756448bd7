"""The ``label`` rule action keeps its label locally; the Instances table, the detail line and ``instances`` (table
and JSON) show it after the provider's own label, made safe and bounded."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest
from fakes import vast as vast_wire
from fakes.accounts import Market, ok, open_market
from tui import SIZE, ready, screen_text, small_app, wait_for

from computehub_tui.domain.models import InstanceStatus
from computehub_tui.engine.automation.labels import LABEL_LIMIT, LOCAL_LABEL_FLAG
from computehub_tui.engine.keys import DATABASE_NAME
from computehub_tui.store import Store
from computehub_tui.wiring import Session
from tests.rules_support import Machines, rule, rules, session

HOSTILE = "\x1b]52;c;ZWNobyBoaQ==\x07[bold]crashed[/] \u202etxt" + "x" * 500


@pytest.fixture
def market(tmp_path: Path) -> Iterator[Market]:
    with open_market(tmp_path) as opened:
        yield opened


async def test_a_rule_label_is_shown_after_the_provider_label_and_survives_a_restart(tmp_path: Path) -> None:
    tag = rule("tag", 'IF status == "exited" THEN label "crashed"')
    machines = Machines()
    machines.add("1", status=InstanceStatus.EXITED)
    async with session(tmp_path / "db", machines, rules(tag)) as s:
        await s.poll()
        [instance] = s.hub.instances()
        assert s.hub.local_labels.shown(instance) == "m1 · crashed"
    async with session(tmp_path / "db", machines, rules()) as s:
        [instance] = s.hub.instances()
        assert s.hub.local_labels.shown(instance) == "m1 · crashed"


async def seed_label(data_dir: Path, key: str, text: str) -> None:
    async with await Store.open(data_dir / DATABASE_NAME) as store:
        await store.set_flag(f"{LOCAL_LABEL_FLAG}{key}", text, 0.0)


def test_instances_lists_the_local_label_safely_in_its_table_and_json(market: Market) -> None:
    data = market.new_data_dir()
    key = f"vast:{vast_wire.RUNNING['id']}"
    asyncio.run(seed_label(data, key, HOSTILE))  # as another version might have written it: raw
    table = ok(market.run("instances", data_dir=data)).stdout
    listed = ok(market.run("instances", "--json", data_dir=data)).json()
    [row] = [line for line in table.splitlines() if line.startswith(f"{key} ")]
    assert "llm-finetune · [bol…" in row  # the OSC 52 sequence gone, the column's width kept
    assert "\x1b" not in table and "\x07" not in table and "\u202e" not in table
    [entry] = [i for i in listed if i["id"] == key]
    assert entry["local_label"].startswith("[bold]crashed[/] txtxxx") and "\x1b" not in entry["local_label"]
    assert len(entry["local_label"]) <= LABEL_LIMIT and entry["label"] == "llm-finetune"


async def label_the_first_running(session: Session) -> None:
    assert session.market is not None
    running = next(i for i in session.market.instances.values() if i.label == "llama-finetune")
    await session.hub.local_labels.set(f"{running.provider}:{running.instance_id}", "[bold]idle[/] checked")


async def test_the_instances_pane_shows_the_local_label_as_plain_text(tmp_path: Path) -> None:
    async with small_app(tmp_path, prepare=label_the_first_running).run_test(size=SIZE) as pilot:
        app = await ready(pilot)
        await pilot.press("2")
        table = app.instances_pane.table
        await wait_for(pilot, lambda: any(i.label == "llama-finetune" for i in table.rows))
        table.move_to(next(n for n, i in enumerate(table.rows) if i.label == "llama-finetune"))
        await pilot.pause()
        assert "llama-finetune · [bold]idle[/] checked" in screen_text(pilot)  # the detail line, literally
