"""Spend accounting: storage billed while stopped where the provider bills it, spend by day / provider /
project in the user's time zone, projects (set, cleared, implied by the label, audited), and the `costs` and
`project` commands on the demo market."""

from __future__ import annotations

import dataclasses
import json
import os
import sqlite3
import subprocess
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from fakes.cli import run_completed

from computehub_tui.clock import ManualClock
from computehub_tui.domain.models import Instance, InstanceStatus, Offer, OfferQuery
from computehub_tui.domain.projects import ProjectNameError, project_from_label, project_name
from computehub_tui.engine.hub import Hub, HubSettings
from computehub_tui.providers.registry import PROVIDER_CAPABILITIES
from computehub_tui.store import Store

HOUR = 3600.0
ONE_PM_UTC = datetime(2026, 1, 31, 13, 0, tzinfo=UTC).timestamp()
"""22:00 on 31 January in Tokyo (UTC+9): four hours from here end at 02:00 on 1 February there."""


class Machines:
    """A provider whose account holds exactly ``instances``."""

    dropped_rows = 0

    def __init__(self, name: str, *instances: Instance) -> None:
        self.name = name
        self.title = name
        self.capabilities = PROVIDER_CAPABILITIES[name]
        self.instances = list(instances)

    async def list_instances(self) -> list[Instance]:
        return self.instances

    async def list_offers(self, query: OfferQuery) -> list[Offer]:
        return []


def machine(provider: str, instance_id: str, label: str, price_hour: float,
            status: InstanceStatus = InstanceStatus.RUNNING, storage_price_hour: float = 0.0) -> Instance:
    return Instance(provider=provider, instance_id=instance_id, label=label, status=status,
                    provider_status=status.value, gpu="RTX 4090", gpu_count=1, price_hour=price_hour,
                    storage_price_hour=storage_price_hour)


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    opened = await Store.open(tmp_path / "spend.db")
    yield opened
    await opened.close()


async def polled_for(hub: Hub, clock: ManualClock, hours: float) -> None:
    """Poll every provider now and again ``hours`` later (the first sight books nothing)."""
    await hub.refresh_all()
    await clock.advance(hours * HOUR)
    await hub.refresh_all()


async def test_storage_is_booked_while_stopped_only_where_the_provider_bills_it(store: Store) -> None:
    clock = ManualClock(start=ONE_PM_UTC)
    vast = machine("vast", "1", "parked", 1.0, InstanceStatus.STOPPED, storage_price_hour=0.1)
    # Lambda bills nothing for a stopped machine, whatever storage price a payload claims.
    odd = machine("lambda", "2", "odd", 1.0, InstanceStatus.STOPPED, storage_price_hour=0.1)
    hub = Hub({"vast": Machines("vast", vast), "lambda": Machines("lambda", odd)}, store, clock)  # type: ignore[dict-item]
    await polled_for(hub, clock, 10)
    assert hub.cost_so_far("vast:1") == pytest.approx(1.0)
    assert hub.cost_so_far("lambda:2") == 0.0
    assert hub.costs.billing_while_stopped(vast) and not hub.costs.billing_while_stopped(odd)
    assert hub.burn_rate() == pytest.approx(0.1)
    assert not hub.costs.billing_while_stopped(machine("vast", "3", "on", 1.0, storage_price_hour=0.1))


async def test_spend_by_day_provider_and_project_in_the_users_zone(store: Store) -> None:
    clock = ManualClock(start=ONE_PM_UTC)
    providers = {"vast": Machines("vast", machine("vast", "1", "llm-train-3", 1.0), machine("vast", "2", "llm-train-4", 2.0)),
                 "runpod": Machines("runpod", machine("runpod", "a", "sd/webui", 0.5))}
    hub = Hub(providers, store, clock, HubSettings(zone=ZoneInfo("Asia/Tokyo")))  # type: ignore[arg-type]
    await polled_for(hub, clock, 4)
    since = ONE_PM_UTC - HOUR

    by_day = [(line.keys, line.usd) for line in await hub.costs.spend_by(["day"], since)]
    assert by_day == [(("2026-01-31",), pytest.approx(7.0)), (("2026-02-01",), pytest.approx(7.0))]
    assert hub.spend_today() == pytest.approx(7.0)  # today is 1 February in Tokyo
    by_provider = {line.keys: line.usd for line in await hub.costs.spend_by(["provider"], since)}
    assert by_provider == {("runpod",): pytest.approx(2.0), ("vast",): pytest.approx(12.0)}
    by_project = {line.keys: line.usd for line in await hub.costs.spend_by(["project"], since)}
    assert by_project == {("llm-train",): pytest.approx(12.0), ("sd",): pytest.approx(2.0)}

    await hub.projects.set("vast:2", "Big", actor="user")
    by_day_and_project = [(line.keys, line.usd) for line in await hub.costs.spend_by(["day", "project"], since)]
    assert by_day_and_project == [
        (("2026-01-31", "big"), pytest.approx(4.0)), (("2026-01-31", "llm-train"), pytest.approx(2.0)),
        (("2026-01-31", "sd"), pytest.approx(1.0)), (("2026-02-01", "big"), pytest.approx(4.0)),
        (("2026-02-01", "llm-train"), pytest.approx(2.0)), (("2026-02-01", "sd"), pytest.approx(1.0)),
    ]
    recent = await hub.costs.spend_by(["provider"], ONE_PM_UTC + 3 * HOUR)
    assert sum(line.usd for line in recent) == pytest.approx(3.5)  # only the last hour began since then


async def test_spend_is_under_its_project_from_the_moment_it_is_booked(store: Store) -> None:
    # The Cost view may read the books between a poll's booking and the rest of its intake; spend is grouped by
    # the stored instance's label, so the instance must be stored before its first hour is booked.
    clock = ManualClock(start=ONE_PM_UTC)
    running = dataclasses.replace(machine("runpod", "a", "comfyui-prod", 1.0), running_since=ONE_PM_UTC - HOUR)
    hub = Hub({"runpod": Machines("runpod", running)}, store, clock)  # type: ignore[dict-item]
    seen_at_booking: list[dict[tuple[str | None, ...], float]] = []
    accrue = store.accrue

    async def accrue_then_read(*args: object, **kwargs: object) -> object:
        states = await accrue(*args, **kwargs)  # type: ignore[arg-type]
        seen_at_booking.append({line.keys: line.usd for line in await hub.costs.spend_by(["project"], 0.0)})
        return states

    store.accrue = accrue_then_read  # type: ignore[method-assign]
    await hub.refresh_all()
    assert seen_at_booking == [{("comfyui-prod",): pytest.approx(1.0)}]


@pytest.mark.parametrize(("label", "project"), [
    ("llm-train-3", "llm-train"), ("LLM-Train-12", "llm-train"), ("team/run-7", "team"), ("sd-webui", "sd-webui"),
    ("v1.2_final", "v1.2_final"), ("42", "42"), ("-3", None), ("", None), ("my job", None),
    ("\x1b]52;c;aGk=\x07x", None), ("a" * 41, None),
])
def test_a_label_implies_a_project_up_to_its_first_slash_without_a_run_number(label: str,
                                                                            project: str | None) -> None:
    assert project_from_label(label) == project


@pytest.mark.parametrize("bad", ["", " ", "has space", "a" * 41, "ünï", "x;rm", "[bold]x[/]"])
def test_a_project_name_is_short_and_plain(bad: str) -> None:
    with pytest.raises(ProjectNameError, match="1-40 characters"):
        project_name(bad)
    assert project_name("  Llm-Train.v2_ ") == "llm-train.v2_"


async def test_a_set_project_wins_over_the_label_is_kept_and_audited_and_clearing_restores_the_label(
        store: Store) -> None:
    clock = ManualClock(start=ONE_PM_UTC)
    instance = machine("vast", "1", "llm-train-3", 1.0)
    hub = Hub({"vast": Machines("vast", instance)}, store, clock)  # type: ignore[dict-item]
    assert hub.projects.project_of(instance) == "llm-train"
    assert await hub.projects.set("vast:1", "Research", actor="cli") == "research"
    assert hub.projects.project_of(instance) == "research"
    assert [(a.project, a.source) for a in hub.projects.listing([instance])] == [("research", "set")]

    again = Hub({}, store, clock)
    await again.load_snapshot()
    assert again.projects.project_of(instance) == "research"  # read back from the store
    assert await again.projects.clear("vast:1", actor="user")
    assert not await again.projects.clear("vast:1", actor="user")
    assert [(a.project, a.source) for a in again.projects.listing([instance])] == [("llm-train", "label")]
    with pytest.raises(ProjectNameError):
        await again.projects.set("vast:1", "no spaces please", actor="user")
    log = [(e.actor, e.action, e.target, e.detail) for e in reversed(await store.audit_log())]
    assert log == [("cli", "project set", "vast:1", "research"), ("user", "project clear", "vast:1", "")]



async def test_a_project_set_by_another_process_shows_after_the_next_instances_poll(tmp_path: Path) -> None:
    clock = ManualClock(start=ONE_PM_UTC)
    instance = machine("vast", "1", "llm-train-3", 1.0)
    mine, theirs = await Store.open(tmp_path / "shared.db"), await Store.open(tmp_path / "shared.db")
    try:
        hub = Hub({"vast": Machines("vast", instance)}, mine, clock)  # type: ignore[dict-item]
        await hub.load_snapshot()
        other = Hub({}, theirs, clock)  # what `computehub-tui project set` opens in its own process
        await other.projects.set("vast:1", "research", actor="cli")
        assert hub.projects.project_of(instance) == "llm-train"  # not seen before a poll
        await hub.refresh_instances("vast")
        assert hub.projects.project_of(instance) == "research"
    finally:
        await mine.close()
        await theirs.close()

# -- the commands on the demo market ----------------------------------------------------------


def cli(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    config = tmp_path / "config.toml"
    if not config.exists():
        config.write_text('[costs]\ntimezone = "America/Los_Angeles"\n[demo]\nvast_offers = 100\n', encoding="utf-8")
    env = {**os.environ, "COMPUTEHUB_DATA_DIR": str(tmp_path / "data"), "COMPUTEHUB_CONFIG": str(config)}
    return run_completed(args, env)


def json_of(result: subprocess.CompletedProcess[str]) -> object:
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_project_and_costs_commands_on_the_demo_agree_with_instances(tmp_path: Path) -> None:
    instances = json_of(cli(tmp_path, "instances", "--json"))
    assert isinstance(instances, list)
    vast = next(i for i in instances if i["provider"] == "vast" and i["status"] == "running")
    stopped = next(i for i in instances if i["status"] == "stopped" and i["provider"] == "vast")
    assert stopped["billing_while_stopped"] is True and vast["billing_while_stopped"] is False

    done = cli(tmp_path, "project", "set", vast["id"], "Big-Run")
    assert done.returncode == 0 and done.stdout == f"{vast['id']}: project big-run\n", done.stderr
    listed = json_of(cli(tmp_path, "project", "list", "--json"))
    assert isinstance(listed, list)
    assert {"id": vast["id"], "label": vast["label"], "project": "big-run", "source": "set"} in listed
    assert all(row["source"] == "label" for row in listed if row["id"] != vast["id"])

    by_project = json_of(cli(tmp_path, "costs", "--by", "project", "--json"))
    checked_at = time.monotonic()
    after = json_of(cli(tmp_path, "instances", "--json"))
    elapsed_h = (time.monotonic() - checked_at + 5) / HOUR
    assert isinstance(by_project, dict) and isinstance(after, list)
    assert by_project["by"] == "project" and by_project["time_zone"] == "America/Los_Angeles"
    projects = {row["project"]: row["usd"] for row in by_project["rows"]}
    assert projects["big-run"] > 0 and vast["label"] not in projects
    # Later commands book a little more (the demo runs on wall-clock time); never less.
    burn = sum(i["current_price_hour"] for i in after)
    booked = sum(i["cost_so_far"] for i in after)
    assert booked - burn * elapsed_h - 0.01 <= by_project["total_usd"] <= booked + 0.01
    assert sum(projects.values()) == pytest.approx(by_project["total_usd"], abs=0.01)

    by_day = json_of(cli(tmp_path, "costs", "--json"))
    assert isinstance(by_day, dict)
    today = datetime.now(ZoneInfo("America/Los_Angeles")).date().isoformat()
    days = {row["day"]: row["usd"] for row in by_day["rows"]}
    assert days[today] == pytest.approx(by_day["today_usd"], abs=1e-4)

    table = cli(tmp_path, "costs", "--by", "provider", "--since", "2d")
    assert table.returncode == 0, table.stderr
    assert table.stdout.splitlines()[0].split() == ["PROVIDER", "USD"]
    assert table.stdout.splitlines()[-1].split()[0] == "total"

    with sqlite3.connect(tmp_path / "data" / "demo.db") as db:
        audit = db.execute("SELECT actor, action, target, detail FROM audit_log WHERE action LIKE 'project%'").fetchall()
    assert audit == [("cli", "project set", vast["id"], "big-run")]
    cleared = cli(tmp_path, "project", "clear", vast["id"])
    assert cleared.returncode == 0 and cleared.stdout == f"{vast['id']}: project cleared\n"


@pytest.mark.parametrize(("args", "message"), [
    (("project", "set", "vast:1", "no spaces"), "1-40 characters"),
    (("project", "set", "vast"), "provider:id"),
    (("costs", "--since", "soon"), "not a duration"),
    (("costs", "--by", "month"), "invalid choice"),
])
def test_bad_project_and_costs_arguments_are_one_line_usage_errors(tmp_path: Path, args: tuple[str, ...],
                                                                   message: str) -> None:
    result = cli(tmp_path, *args)
    assert result.returncode == 2 and message in result.stderr and result.stderr.count("\n") == 1
    assert "Traceback" not in result.stderr


def test_setting_the_project_of_an_unknown_instance_fails_with_one_line(tmp_path: Path) -> None:
    result = cli(tmp_path, "project", "set", "vast:1", "x", "--demo")
    assert result.returncode == 1 and "vast:1: not found on Vast.ai" in result.stderr
