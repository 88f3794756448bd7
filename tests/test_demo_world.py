"""The demo world carries on between sessions and processes, in the demo data dir; --demo-reset starts over."""

from __future__ import annotations

import json
import os
import stat
import subprocess
from pathlib import Path

import pytest
from fakes.cli import run_completed

from computehub_tui.clock import ManualClock
from computehub_tui.config import Config
from computehub_tui.domain.models import InstanceStatus, LaunchSpec, Offer
from computehub_tui.providers.demo.market import DemoMarket
from computehub_tui.providers.demo.world import WORLD_FILE_NAME, DemoWorld
from computehub_tui.store import StoreError
from computehub_tui.wiring import Session, open_session

HOUR = 3600.0


async def session(data_dir: Path, clock: ManualClock, *, reset: bool = False) -> Session:
    return await open_session(Config.model_validate({"demo": {"vast_offers": 300}}), data_dir, demo=True, clock=clock, demo_reset=reset)


async def rentable_vast_offer(opened: Session) -> Offer:
    await opened.hub.refresh_offers("vast")
    return next(o for o in opened.hub.offers()
                if o.provider == "vast" and o.available and o.pricing.value == "on-demand")


async def vast_status(data_dir: Path, clock: ManualClock, key: str) -> InstanceStatus | None:
    """What a brand-new session sees of ``key`` (None: not listed)."""
    opened = await session(data_dir, clock)
    try:
        await opened.hub.refresh_instances("vast")
        instance = opened.hub.instance(key)
        return None if instance is None else instance.status
    finally:
        await opened.aclose()


async def test_launch_stop_destroy_each_in_its_own_session(tmp_path: Path) -> None:
    clock = ManualClock()
    first = await session(tmp_path, clock)
    try:
        key = await first.hub.launch(await rentable_vast_offer(first), LaunchSpec(image="img", label="carry-on"),
                                     refresh=False)
    finally:
        await first.aclose()
    await clock.advance(60)
    assert await vast_status(tmp_path, clock, key) is InstanceStatus.RUNNING

    second = await session(tmp_path, clock)
    try:
        assert (await second.hub.act("stop", key, refresh=False)).ok
    finally:
        await second.aclose()
    assert await vast_status(tmp_path, clock, key) is InstanceStatus.STOPPED

    third = await session(tmp_path, clock)
    try:
        assert (await third.hub.act("destroy", key, refresh=False)).ok
    finally:
        await third.aclose()
    await clock.advance(60)
    assert await vast_status(tmp_path, clock, key) is None


async def test_spend_today_does_not_go_down_after_a_restart(tmp_path: Path) -> None:
    clock = ManualClock()
    spent = []
    for _ in range(3):
        opened = await session(tmp_path, clock)
        try:
            await opened.hub.load_snapshot()
            await opened.hub.refresh_instances("vast")
            spent.append(opened.hub.spend_today())
        finally:
            await opened.aclose()
        await clock.advance(600)
    assert spent[0] < spent[1] < spent[2]  # each session adds the ten minutes since the last one


async def test_two_open_sessions_share_one_world(tmp_path: Path) -> None:
    clock = ManualClock()
    tui, cli = await session(tmp_path, clock), await session(tmp_path, clock)
    try:
        await tui.hub.refresh_instances("vast")
        key = await cli.hub.launch(await rentable_vast_offer(cli), LaunchSpec(image="img"), refresh=False)
        await tui.hub.refresh_instances("vast")
        assert tui.hub.instance(key) is not None  # the CLI's launch shows in the running TUI
        await clock.advance(60)
        assert (await tui.hub.act("stop", key)).ok
        await cli.hub.refresh_instances("vast")
        assert cli.hub.instance(key).status is InstanceStatus.STOPPED  # type: ignore[union-attr]
    finally:
        await tui.aclose()
        await cli.aclose()


async def test_demo_reset_starts_a_fresh_world_and_a_fresh_database(tmp_path: Path) -> None:
    clock = ManualClock()
    opened = await session(tmp_path, clock)
    try:
        key = await opened.hub.launch(await rentable_vast_offer(opened), LaunchSpec(image="img"), refresh=False)
        await opened.hub.refresh_instances("vast")
    finally:
        await opened.aclose()
    await clock.advance(HOUR)
    fresh = await session(tmp_path, clock, reset=True)
    try:
        await fresh.hub.load_snapshot()
        assert fresh.hub.spend_today() == 0.0
        assert await fresh.store.audit_log() == []
        await fresh.hub.refresh_instances("vast")
        assert fresh.hub.instance(key) is None
        assert {i.label for i in fresh.hub.instances()} == {"llama-finetune", "sd-webui", "old-experiment"}
    finally:
        await fresh.aclose()


async def test_the_world_file_and_data_dir_are_private(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    data_dir.mkdir(mode=0o755)
    data_dir.chmod(0o755)
    opened = await session(data_dir, ManualClock())
    await opened.aclose()
    assert stat.S_IMODE(data_dir.stat().st_mode) == 0o700
    for name in (WORLD_FILE_NAME, "demo.db"):
        assert stat.S_IMODE((data_dir / name).stat().st_mode) == 0o600, name


async def test_a_damaged_world_file_is_one_line_naming_the_way_out(tmp_path: Path) -> None:
    (tmp_path / WORLD_FILE_NAME).write_text('{"format": 1, "seed": 42, "instances": [{"oops": 1}]}')
    with pytest.raises(StoreError) as caught:
        await session(tmp_path, ManualClock())
    message = str(caught.value)
    assert str(tmp_path / WORLD_FILE_NAME) in message and "--demo-reset" in message and "\n" not in message
    opened = await session(tmp_path, ManualClock(), reset=True)
    await opened.aclose()


def test_a_world_saved_with_another_seed_is_not_mixed_in(tmp_path: Path) -> None:
    clock = ManualClock()
    DemoWorld.open(DemoMarket(clock, seed=1, vast_offer_count=10), tmp_path)
    other = DemoMarket(clock, seed=2, vast_offer_count=10)
    own_ids = set(other.instances)
    DemoWorld.open(other, tmp_path)
    assert set(other.instances) == own_ids
    assert json.loads((tmp_path / WORLD_FILE_NAME).read_text())["seed"] == 2


def run_cli(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    config = tmp_path / "config.toml"
    config.write_text("[demo]\nvast_offers = 300\n")
    env = {**os.environ, "COMPUTEHUB_DATA_DIR": str(tmp_path / "data"), "COMPUTEHUB_CONFIG": str(config)}
    return run_completed(args, env)


def test_the_readme_flow_works_in_the_demo(tmp_path: Path) -> None:
    offers = run_cli(tmp_path, "offers", "--json", "--provider", "vast", "--limit", "0", "spot:no")
    assert offers.returncode == 0, offers.stderr
    offer = next(o for o in json.loads(offers.stdout) if o["available"])
    launched = run_cli(tmp_path, "launch", "vast", offer["offer_id"], "--image", "pytorch/pytorch", "--yes")
    assert launched.returncode == 0, launched.stderr
    key = launched.stdout.strip()
    stopped = run_cli(tmp_path, "stop", key, "--yes")  # a new process: "not found" when the world started over
    assert stopped.returncode == 0, stopped.stderr
    destroyed = run_cli(tmp_path, "destroy", key, "--yes")
    assert destroyed.returncode == 0, destroyed.stderr
    world = json.loads((tmp_path / "data" / WORLD_FILE_NAME).read_text())
    saved = next(i for i in world["instances"] if f"vast:{i['instance_id']}" == key)
    assert saved["intended"] == "destroyed" and saved["stopped_at"] is not None
