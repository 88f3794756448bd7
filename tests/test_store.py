"""The SQLite store on real database files: migrations, each table's API, errors, concurrency."""

from __future__ import annotations

import asyncio
import dataclasses
import errno
import os
import sqlite3
import stat
import statistics
import sys
import threading
import time
from pathlib import Path

import pytest

from computehub_tui.domain.history import AuditEntry, PriceStat
from computehub_tui.domain.models import Instance, InstanceStatus, MetricSample, SshEndpoint
from computehub_tui.store import CostState, Observation, Store, StoreError
from computehub_tui.store import connection as store_connection
from computehub_tui.store._schema import LATEST_VERSION, MIGRATIONS, Migration

T0 = 1_790_000_000.0
HOUR = 3600.0
EXPECTED_TABLES = {
    "alerts",
    "alert_groups",
    "deliveries",
    "instances",
    "instance_costs",
    "instance_runs",
    "spend_hourly",
    "price_stats",
    "metric_series",
    "metric_gpu_names",
    "metric_samples",
    "metric_rollups_1m",
    "metric_rollups_1h",
    "instance_projects",
    "offers_snapshot",
    "audit_log",
    "secrets",
    "rule_states",
    "automation_flags",
    "action_journal",
    "automation_lease",
    "launch_records",
    "instance_status_changes",
    "rule_warnings",
}


def make_instance(provider: str = "vast", instance_id: str = "1", **changes: object) -> Instance:
    fields: dict[str, object] = dict(
        provider=provider,
        instance_id=instance_id,
        label=f"job-{instance_id}",
        status=InstanceStatus.RUNNING,
        provider_status="running",
        gpu="RTX 4090",
        gpu_count=2,
        price_hour=0.74,
    )
    fields.update(changes)
    return Instance(**fields)  # type: ignore[arg-type]


def make_sample(at: float, util: float = 50.0) -> MetricSample:
    return MetricSample(
        time=at,
        gpu_util=(util, util + 1.5),
        vram_used_gb=(10.25, 11.0),
        vram_total_gb=(24.0, 24.0),
        gpu_temp_c=(61.0, 63.0),
        cpu_pct=12.5,
        ram_pct=None,
    )


def make_stat(
    at: float,
    provider: str = "vast",
    gpu: str = "A100 SXM",
    gpu_count: int = 1,
    pricing: str = "on-demand",
    low: float = 1.0,
) -> PriceStat:
    return PriceStat(at, provider, gpu, gpu_count, pricing, low, low * 1.2, low * 1.5, 7)


def raw_query(path: Path, sql: str, params: tuple[object, ...] = ()) -> list[tuple[object, ...]]:
    """Read the file with a separate plain sqlite3 connection, as another process would."""
    connection = sqlite3.connect(path)
    try:
        return connection.execute(sql, params).fetchall()
    finally:
        connection.close()


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "data" / "computehub.db"


@pytest.fixture
async def store(db_path: Path):
    opened = await Store.open(db_path)
    yield opened
    await opened.close()


# -- opening, migrations, settings ---------------------------------------------------------------


async def test_new_database_is_migrated_to_the_latest_version(store: Store, db_path: Path) -> None:
    assert store.schema_version == LATEST_VERSION == MIGRATIONS[-1].version
    assert raw_query(db_path, "PRAGMA user_version") == [(LATEST_VERSION,)]
    tables = {
        name for (name,) in raw_query(db_path, "SELECT name FROM sqlite_schema WHERE type='table'")
    }
    assert tables == EXPECTED_TABLES


async def test_open_creates_missing_parent_folders(tmp_path: Path) -> None:
    path = tmp_path / "a" / "b" / "c" / "store.db"
    async with await Store.open(path) as opened:
        assert opened.schema_version == LATEST_VERSION
    assert path.is_file()


async def test_connection_settings_are_in_effect(store: Store, db_path: Path) -> None:
    settings = await store.diagnostics()
    assert settings["journal_mode"] == "wal"
    assert settings["synchronous"] == 1  # NORMAL
    assert settings["busy_timeout"] == 5000
    assert settings["foreign_keys"] == 1
    assert settings["auto_vacuum"] == 2  # INCREMENTAL
    # WAL and auto_vacuum live in the file itself, so another connection sees them too.
    assert raw_query(db_path, "PRAGMA journal_mode") == [("wal",)]
    assert raw_query(db_path, "PRAGMA auto_vacuum") == [(2,)]


async def test_in_memory_database_works() -> None:
    async with await Store.open(":memory:") as opened:
        await opened.audit(T0, "user", "stop", "vast:1")
        assert [entry.action for entry in await opened.audit_log()] == ["stop"]


async def test_reopening_keeps_every_kind_of_data(db_path: Path) -> None:
    first = await Store.open(db_path)
    await first.save_instances("vast", [make_instance()], T0)
    await first.record_transition("vast:1", True, T0)
    await first.accrue([Observation("vast:1", True, 1.8)], T0 + 1000)
    await first.record_price_stats([make_stat(T0)])
    await first.add_metric_samples([("vast:1", make_sample(T0))])
    await first.audit(T0, "user", "launch", "vast:1")
    await first.put_secret("vast", "api_key", b"\x00cipher", T0)
    await first.close()

    second = await Store.open(db_path)
    try:
        assert second.schema_version == LATEST_VERSION
        assert await second.load_instances() == [make_instance()]
        assert await second.cost_states() == {"vast:1": CostState(pytest.approx(0.5), T0)}
        assert await second.price_history("A100 SXM", 0) == [make_stat(T0)]
        assert await second.metric_history("vast:1", 0) == [make_sample(T0)]
        assert [entry.action for entry in await second.audit_log()] == ["launch"]
        assert await second.get_secret("vast", "api_key") == b"\x00cipher"
    finally:
        await second.close()
    assert raw_query(db_path, "PRAGMA user_version") == [(LATEST_VERSION,)]


async def test_database_from_a_newer_version_is_refused_untouched(db_path: Path) -> None:
    db_path.parent.mkdir(parents=True)
    newer = LATEST_VERSION + 1
    raw_query(db_path, f"PRAGMA user_version={newer}")

    with pytest.raises(StoreError) as caught:
        await Store.open(db_path)

    assert caught.value.kind == "newer-schema"
    assert str(db_path) in str(caught.value)
    assert f"schema version {newer}" in str(caught.value)
    # Refused before touching anything: still the old journal mode and version, no tables.
    assert raw_query(db_path, "PRAGMA journal_mode") == [("delete",)]
    assert raw_query(db_path, "PRAGMA user_version") == [(newer,)]
    assert raw_query(db_path, "SELECT count(*) FROM sqlite_schema") == [(0,)]


async def test_file_that_is_not_sqlite_is_refused_with_one_clear_line(db_path: Path) -> None:
    db_path.parent.mkdir(parents=True)
    db_path.write_bytes(b"these are my notes, not a database\n" * 200)

    with pytest.raises(StoreError) as caught:
        await Store.open(db_path)

    message = str(caught.value)
    assert caught.value.kind == "corrupt"
    assert str(db_path) in message
    assert "not a SQLite database" in message
    assert "\n" not in message
    assert db_path.read_bytes().startswith(b"these are my notes")


async def test_database_with_damaged_pages_is_refused(db_path: Path) -> None:
    async with await Store.open(db_path) as opened:
        await opened.audit(T0, "user", "stop", "vast:1")
    data = bytearray(db_path.read_bytes())
    data[100:] = b"\xab" * (len(data) - 100)  # keep the SQLite header, wreck every page
    db_path.write_bytes(bytes(data))

    with pytest.raises(StoreError) as caught:
        await Store.open(db_path)
    assert caught.value.kind == "corrupt"
    assert str(db_path) in str(caught.value)


async def test_path_that_cannot_be_a_database_file_is_refused(tmp_path: Path) -> None:
    with pytest.raises(StoreError) as caught:
        await Store.open(tmp_path)  # a directory
    assert caught.value.kind == "cannot-open"
    assert str(tmp_path) in str(caught.value)
    assert "folder" in str(caught.value)


async def test_later_migration_upgrades_existing_data(
    db_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with await Store.open(db_path) as opened:
        await opened.audit(T0, "user", "launch", "vast:1")
    step = Migration(LATEST_VERSION + 1, "add a notes table", ("CREATE TABLE notes (body TEXT)",))
    monkeypatch.setattr(store_connection, "MIGRATIONS", (*MIGRATIONS, step))
    monkeypatch.setattr(store_connection, "LATEST_VERSION", step.version)

    async with await Store.open(db_path) as upgraded:
        assert upgraded.schema_version == step.version
        assert [entry.action for entry in await upgraded.audit_log()] == ["launch"]
    assert raw_query(db_path, "PRAGMA user_version") == [(step.version,)]
    assert raw_query(db_path, "SELECT count(*) FROM notes") == [(0,)]


async def test_failed_migration_rolls_back_its_tables_and_version(
    db_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with await Store.open(db_path):
        pass
    broken = Migration(
        LATEST_VERSION + 1, "half valid", ("CREATE TABLE notes (body TEXT)", "CREATE TABLE (oops")
    )
    monkeypatch.setattr(store_connection, "MIGRATIONS", (*MIGRATIONS, broken))
    monkeypatch.setattr(store_connection, "LATEST_VERSION", broken.version)

    with pytest.raises(StoreError) as caught:
        await Store.open(db_path)

    assert str(db_path) in str(caught.value)
    assert raw_query(db_path, "PRAGMA user_version") == [(LATEST_VERSION,)]
    assert raw_query(db_path, "SELECT count(*) FROM sqlite_schema WHERE name = 'notes'") == [(0,)]


async def test_costs_from_schema_1_carry_on_from_their_last_update(
    db_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with monkeypatch.context() as patch:
        patch.setattr(store_connection, "MIGRATIONS", MIGRATIONS[:1])
        patch.setattr(store_connection, "LATEST_VERSION", 1)
        async with await Store.open(db_path) as old:
            assert old.schema_version == 1
    connection = sqlite3.connect(db_path)
    with connection:
        connection.execute("INSERT INTO instance_costs VALUES ('vast:a', 2.5, ?)", (T0,))
    connection.close()

    async with await Store.open(db_path) as upgraded:
        assert upgraded.schema_version == LATEST_VERSION
        states = await upgraded.accrue([running("vast:a", 1.0)], T0 + HOUR)
    assert states["vast:a"].usd == pytest.approx(3.5)  # booked from T0, not estimated again


async def test_new_database_folder_and_wal_files_are_private(db_path: Path) -> None:
    async with await Store.open(db_path) as opened:
        await opened.audit(T0, "user", "stop", "vast:1")
        modes = {path.name: stat.S_IMODE(path.stat().st_mode) for path in db_path.parent.iterdir()}
    assert modes == {"computehub.db": 0o600, "computehub.db-wal": 0o600, "computehub.db-shm": 0o600}
    assert stat.S_IMODE(db_path.parent.stat().st_mode) == 0o700


async def test_an_existing_loose_database_and_folder_are_tightened(db_path: Path) -> None:
    async with await Store.open(db_path) as opened:
        await opened.audit(T0, "user", "stop", "vast:1")
    db_path.parent.chmod(0o755)
    db_path.chmod(0o644)
    async with await Store.open(db_path) as opened:
        assert [entry.action for entry in await opened.audit_log()] == ["stop"]
        assert stat.S_IMODE(db_path.stat().st_mode) == 0o600
        assert stat.S_IMODE(Path(f"{db_path}-wal").stat().st_mode) == 0o600
    assert stat.S_IMODE(db_path.parent.stat().st_mode) == 0o700


async def test_an_empty_database_file_is_damage_not_a_new_database(db_path: Path) -> None:
    db_path.parent.mkdir(parents=True)
    db_path.write_bytes(b"")
    with pytest.raises(StoreError) as caught:
        await Store.open(db_path)
    assert caught.value.kind == "empty"
    assert str(caught.value) == (
        f"{db_path} is empty (0 bytes): it may have been truncated; move it away to start fresh")
    assert db_path.read_bytes() == b""  # left for the user to inspect


def live_connection_threads(started_since: set[threading.Thread]) -> list[str]:
    """aiosqlite worker threads started since ``started_since`` and still alive after being given time
    to finish; a connection that is never closed keeps its thread waiting forever (an app that hangs)."""
    workers = [thread for thread in threading.enumerate()
               if "_connection_worker_thread" in thread.name and thread not in started_since]
    for thread in workers:
        thread.join(timeout=5)
    return [thread.name for thread in workers if thread.is_alive()]


def damage(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[100:] = b"\xab" * (len(data) - 100)
    path.write_bytes(bytes(data))


@pytest.mark.parametrize("how", ["damaged", "not-sqlite", "newer-schema", "empty"])
async def test_a_refused_database_leaves_no_connection_thread_behind(db_path: Path, how: str) -> None:
    async with await Store.open(db_path) as opened:
        await opened.audit(T0, "user", "stop", "vast:1")
    if how == "damaged":
        damage(db_path)
    elif how == "not-sqlite":
        db_path.write_bytes(b"notes " * 1000)
    elif how == "newer-schema":
        raw_query(db_path, f"PRAGMA user_version={LATEST_VERSION + 1}")
    else:
        db_path.write_bytes(b"")
    before = set(threading.enumerate())

    with pytest.raises(StoreError):
        await Store.open(db_path)

    assert live_connection_threads(before) == []


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        (PermissionError(errno.EACCES, "Permission denied"), "permission denied; make {folder} writable by you"),
        (OSError(errno.EROFS, "Read-only file system"), "the file system is read-only; choose a writable folder"),
        (OSError(errno.ENOSPC, "No space left on device"), "no space left on the device; free some disk space"),
    ],
)
async def test_a_folder_that_cannot_take_a_new_database_is_one_clear_line(
    db_path: Path, monkeypatch: pytest.MonkeyPatch, error: OSError, expected: str
) -> None:
    # Simulated: tests run as root here, and root writes into read-only folders anyway.
    db_path.parent.mkdir(parents=True)
    real_open = os.open

    def refusing_open(path: object, *args: object, **kwargs: object) -> int:
        if str(path).startswith(str(db_path.parent)):
            raise error
        return real_open(path, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(os, "open", refusing_open)
    with pytest.raises(StoreError) as caught:
        await Store.open(db_path)
    assert str(caught.value) == f"cannot create database {db_path}: " + expected.format(folder=db_path.parent) + (
        ", or choose another folder with --data-dir" if error.errno == errno.EACCES else
        " with --data-dir" if error.errno == errno.EROFS else "")
    assert caught.value.kind == "cannot-open"
    assert list(db_path.parent.iterdir()) == []


async def test_a_folder_that_cannot_be_created_is_one_clear_line(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("not a folder")
    with pytest.raises(StoreError) as caught:
        await Store.open(tmp_path / "file" / "data" / "computehub.db")
    assert str(caught.value) == f"cannot create the folder {tmp_path / 'file' / 'data'}: Not a directory"


async def test_closed_store_raises_store_error(db_path: Path) -> None:
    opened = await Store.open(db_path)
    await opened.close()
    await opened.close()  # twice is fine
    with pytest.raises(StoreError) as caught:
        await opened.load_instances()
    assert caught.value.kind == "closed"


# -- instances -------------------------------------------------------------------------------------


async def test_full_instance_round_trips_without_metrics(store: Store) -> None:
    instance = make_instance(
        status=InstanceStatus.STOPPED,
        provider_status="exited (code 0)",
        ssh=SshEndpoint("ssh4.vast.ai", 22413, "root"),
        ports={"8888/tcp": "1.2.3.4:40001", "22/tcp": "1.2.3.4:40002"},
        started_at=T0 - 7200.5,
        location="Sweden, SE",
        image="pytorch/pytorch:2.4.0-cuda12.4-cudnn9-runtime",
        metrics=make_sample(T0),
        storage_price_hour=0.0125,
        status_message="stopped by rule: idle",
    )
    await store.save_instances("vast", [instance], T0)

    [loaded] = await store.load_instances()

    assert loaded == dataclasses.replace(instance, metrics=None)
    assert loaded.status is InstanceStatus.STOPPED
    assert loaded.ssh == SshEndpoint("ssh4.vast.ai", 22413, "root")
    assert loaded.ports == {"8888/tcp": "1.2.3.4:40001", "22/tcp": "1.2.3.4:40002"}
    assert loaded.metrics is None


async def test_save_upserts_and_marks_missing_instances_gone(store: Store, db_path: Path) -> None:
    await store.save_instances(
        "vast", [make_instance(instance_id="a"), make_instance(instance_id="b")], T0
    )
    await store.save_instances("runpod", [make_instance("runpod", "r1")], T0)

    changed_b = make_instance(instance_id="b", status=InstanceStatus.EXITED, price_hour=0.9)
    await store.save_instances("vast", [changed_b, make_instance(instance_id="c")], T0 + 5)

    loaded = {instance.key: instance for instance in await store.load_instances()}
    assert set(loaded) == {"vast:b", "vast:c", "runpod:r1"}  # other providers untouched
    assert loaded["vast:b"].status is InstanceStatus.EXITED
    assert loaded["vast:b"].price_hour == 0.9
    rows = raw_query(
        db_path, "SELECT key, first_seen, last_seen, gone_at, status FROM instances ORDER BY key"
    )
    assert rows == [
        ("runpod:r1", T0, T0, None, "running"),
        ("vast:a", T0, T0, T0 + 5, "running"),
        ("vast:b", T0, T0 + 5, None, "exited"),
        ("vast:c", T0 + 5, T0 + 5, None, "running"),
    ]


async def test_instance_that_comes_back_is_no_longer_gone(store: Store, db_path: Path) -> None:
    await store.save_instances("vast", [make_instance(instance_id="a")], T0)
    await store.save_instances("vast", [], T0 + 5)
    assert await store.load_instances() == []

    await store.save_instances("vast", [make_instance(instance_id="a")], T0 + 10)

    assert [i.key for i in await store.load_instances()] == ["vast:a"]
    assert raw_query(db_path, "SELECT first_seen, gone_at FROM instances") == [(T0, None)]


async def test_saving_another_providers_instance_is_rejected(store: Store) -> None:
    with pytest.raises(ValueError, match="runpod"):
        await store.save_instances("vast", [make_instance(), make_instance("runpod", "x")], T0)
    assert await store.load_instances() == []


async def test_undecodable_snapshot_is_skipped_not_fatal(store: Store, db_path: Path) -> None:
    await store.save_instances(
        "vast", [make_instance(instance_id="a"), make_instance(instance_id="b")], T0
    )
    connection = sqlite3.connect(db_path)
    with connection:
        connection.execute("UPDATE instances SET snapshot = '{broken' WHERE key = 'vast:a'")
    connection.close()

    assert [i.key for i in await store.load_instances()] == ["vast:b"]


# -- money -----------------------------------------------------------------------------------------


def running(key: str, rate: float | None, started: float | None = None) -> Observation:
    return Observation(key, True, rate, started)


def stopped(key: str, rate: float | None = 0.0) -> Observation:
    return Observation(key, False, rate)


async def spend_rows(store: Store) -> float:
    return await store.spend_between(0, 2**40)


async def test_the_same_stretch_is_booked_once_however_many_processes_look(db_path: Path) -> None:
    # Three CLI runs, each its own Store on the same file, like three `computehub-tui instances`.
    seen = []
    for at in (T0, T0, T0 + 1800):
        async with await Store.open(db_path) as process:
            states = await process.accrue([running("vast:a", 1.0, started=T0 - 3600)], at)
            seen.append(states["vast:a"].usd)
    assert seen == pytest.approx([1.0, 1.0, 1.5])  # first sight estimated from its start, once
    async with await Store.open(db_path) as process:
        assert (await process.cost_states())["vast:a"] == CostState(pytest.approx(1.5), T0 - 3600)
        assert await spend_rows(process) == pytest.approx(1.5)


async def test_booked_time_is_split_into_hour_buckets_that_sum_to_the_cost(store: Store) -> None:
    hour = (T0 // HOUR) * HOUR
    await store.accrue([running("vast:a", 2.0, started=hour - 1800), stopped("vast:b", 0.5)], hour + 900)
    await store.accrue([running("vast:a", 2.0), stopped("vast:b", 0.5)], hour + 2 * HOUR + 900)
    costs = {key: state.usd for key, state in (await store.cost_states()).items()}
    assert costs == pytest.approx({"vast:a": 2.0 * 2.75, "vast:b": 0.5 * 2})
    assert await store.spend_between(hour - HOUR, hour) == pytest.approx(1.0)
    assert await store.spend_between(hour, hour + HOUR) == pytest.approx(2.0 + 0.5 * 0.75)
    assert await store.spend_between(hour + 2 * HOUR, hour + 3 * HOUR) == pytest.approx(0.5 + 0.125)
    assert await spend_rows(store) == pytest.approx(sum(costs.values()))


async def test_first_sight_without_a_start_time_books_from_then_on(store: Store) -> None:
    first = await store.accrue([running("vast:a", 1.0), stopped("vast:b", 0.2)], T0)
    assert first == {"vast:a": CostState(0.0, None), "vast:b": CostState(0.0, None)}
    later = await store.accrue([running("vast:a", 1.0), stopped("vast:b", 0.2)], T0 + HOUR)
    assert later["vast:a"].usd == pytest.approx(1.0) and later["vast:b"].usd == pytest.approx(0.2)


async def test_a_stretch_with_a_state_change_costs_the_old_state_until_the_change(store: Store) -> None:
    await store.accrue([running("vast:a", 1.0, started=T0 - 60)], T0)
    stop = await store.accrue([stopped("vast:a", 0.1)], T0 + HOUR)
    assert stop["vast:a"] == CostState(pytest.approx(1 / 60 + 1.0), None)  # ran until it was seen stopped
    again = await store.accrue([running("vast:a", 1.0, started=T0 - 60)], T0 + 2 * HOUR)
    # The provider's stale start (before the stop) is ignored; the run starts when it was seen.
    assert again["vast:a"] == CostState(pytest.approx(1 / 60 + 1.0 + 0.1), T0 + 2 * HOUR)
    # A start time the provider reports inside the unseen stretch is believed: storage until then.
    await store.accrue([stopped("vast:b", 0.1)], T0)
    seen = await store.accrue([running("vast:b", 1.0, started=T0 + 1800)], T0 + HOUR)
    assert seen["vast:b"] == CostState(pytest.approx(0.05 + 0.5), T0 + 1800)
    assert await spend_rows(store) == pytest.approx(1 / 60 + 1.1 + 0.55)


async def test_actions_close_the_books_at_the_last_rate_and_skip_unseen_stopped_time(store: Store) -> None:
    await store.record_transition("vast:a", True, T0)  # launched by us
    await store.accrue([running("vast:a", 2.0)], T0 + HOUR)
    await store.record_transition("vast:a", False, T0 + 2 * HOUR)  # `stop` from the CLI, nobody polled
    assert (await store.cost_states())["vast:a"] == CostState(pytest.approx(4.0), None)
    await store.record_transition("vast:a", True, T0 + 50 * HOUR)  # `start` two days later
    after = await store.accrue([running("vast:a", 2.0)], T0 + 51 * HOUR)
    # Two days stopped are not billed at the running price; the hour since the start is.
    assert after["vast:a"] == CostState(pytest.approx(6.0), T0 + 50 * HOUR)
    assert await spend_rows(store) == pytest.approx(6.0)


async def test_restart_keeps_the_run_going(store: Store) -> None:
    await store.record_transition("vast:a", True, T0)
    await store.accrue([running("vast:a", 1.0)], T0 + 60)
    state = await store.record_transition("vast:a", True, T0 + 120)
    assert state.running_since == T0


async def test_a_view_older_than_the_recorded_one_changes_nothing(store: Store) -> None:
    await store.accrue([running("vast:a", 1.0, started=T0 - HOUR)], T0)
    late = await store.accrue([stopped("vast:a")], T0 - 5)  # another process's poll, committed late
    assert late["vast:a"] == CostState(pytest.approx(1.0), T0 - HOUR)
    assert (await store.cost_states())["vast:a"].running_since == T0 - HOUR


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -5.0, 1e308])
async def test_an_unusable_rate_drops_that_value_not_the_batch(store: Store, bad: float) -> None:
    await store.accrue([running("vast:a", 1.0), running("vast:b", 1.0)], T0)
    states = await store.accrue([running("vast:a", 1.0), running("vast:b", bad)], T0 + 2 * HOUR)
    assert states["vast:a"].usd == pytest.approx(2.0)
    assert states["vast:b"].usd == 0.0
    assert await spend_rows(store) == pytest.approx(2.0)


async def test_implausible_rate_books_nothing_until_a_plausible_one_arrives(store: Store) -> None:
    await store.accrue([running("vast:a", 1.0)], T0)
    await store.accrue([running("vast:a", None)], T0 + HOUR)
    states = await store.accrue([running("vast:a", 1.0)], T0 + 2 * HOUR)
    assert states["vast:a"].usd == pytest.approx(2.0)  # the unreadable hour is billed at the next rate


async def test_two_connections_accruing_at_once_never_double_book(db_path: Path) -> None:
    first, second = await Store.open(db_path), await Store.open(db_path)
    try:
        await first.accrue([running(f"vast:{n}", 1.0) for n in range(10)], T0)
        await asyncio.gather(*(
            store.accrue([running(f"vast:{n}", 1.0) for n in range(10)], T0 + step * 360)
            for step in range(1, 11) for store in (first, second)
        ))
        costs = await second.cost_states()
        assert {key: state.usd for key, state in costs.items()} == pytest.approx(
            {f"vast:{n}": 1.0 for n in range(10)})
        assert await spend_rows(first) == pytest.approx(10.0)
    finally:
        await first.close()
        await second.close()


ACCRUE_IN_A_PROCESS = """
import asyncio, sys
from computehub_tui.store import Observation, Store

async def main(path, start):
    async with await Store.open(path) as store:
        for step in range(20):
            await store.accrue([Observation("vast:a", True, 3.6)], start + step * 10.0)

asyncio.run(main(sys.argv[1], float(sys.argv[2])))
"""


async def test_separate_processes_accruing_at_once_book_each_second_once(db_path: Path) -> None:
    async with await Store.open(db_path) as store:
        await store.accrue([running("vast:a", 3.6)], T0)
    children = [
        await asyncio.create_subprocess_exec(sys.executable, "-c", ACCRUE_IN_A_PROCESS, str(db_path), str(T0 + 1))
        for _ in range(3)
    ]
    assert [await child.wait() for child in children] == [0, 0, 0]
    async with await Store.open(db_path) as store:
        # $3.60/h is $0.001/s; the furthest anyone looked is T0 + 191 s.
        assert (await store.cost_states())["vast:a"].usd == pytest.approx(0.191)
        assert await spend_rows(store) == pytest.approx(0.191)


# -- price history ---------------------------------------------------------------------------------


async def test_price_history_filters_and_orders(store: Store) -> None:
    stats = [
        make_stat(T0 - 2 * HOUR, low=0.9),
        make_stat(T0, low=1.0),
        make_stat(T0 - HOUR, provider="runpod", low=1.6),
        make_stat(T0, gpu_count=8, low=9.0),
        make_stat(T0, pricing="interruptible", low=0.5),
        make_stat(T0, gpu="H100 SXM", low=2.0),
    ]
    await store.record_price_stats(stats)

    since = T0 - 90 * 60
    everything = await store.price_history("A100 SXM", since)
    assert everything == [
        stats[2],
        stats[4],
        stats[1],
        stats[3],
    ]  # by time, provider, count, pricing
    assert await store.price_history("A100 SXM", 0, provider="runpod") == [stats[2]]
    assert await store.price_history("A100 SXM", 0, gpu_count=8) == [stats[3]]
    assert await store.price_history("A100 SXM", 0, pricing="interruptible") == [stats[4]]
    assert await store.price_history(
        "A100 SXM", 0, provider="vast", gpu_count=1, pricing="on-demand"
    ) == [stats[0], stats[1]]
    assert await store.price_history("H100 SXM", 0) == [stats[5]]
    assert await store.price_history("RTX 4090", 0) == []


async def test_recording_the_same_price_group_twice_keeps_the_latest(store: Store) -> None:
    await store.record_price_stats([make_stat(T0, low=1.0)])
    await store.record_price_stats([make_stat(T0, low=1.1)])
    assert await store.price_history("A100 SXM", 0) == [make_stat(T0, low=1.1)]


# -- metrics and pruning ---------------------------------------------------------------------------


async def test_metric_samples_round_trip_in_time_order(store: Store) -> None:
    sparse = MetricSample(time=T0 + 10)  # a provider that reported nothing useful
    await store.add_metric_samples(
        [
            ("vast:a", make_sample(T0 + 5, util=97.3)),
            ("vast:a", make_sample(T0)),
            ("vast:a", sparse),
            ("vast:b", make_sample(T0, util=1.0)),
        ]
    )

    assert await store.metric_history("vast:a", T0) == [
        make_sample(T0),
        make_sample(T0 + 5, util=97.3),
        sparse,
    ]
    assert await store.metric_history("vast:a", T0 + 1) == [make_sample(T0 + 5, util=97.3), sparse]
    assert await store.metric_history("vast:b", 0) == [make_sample(T0, util=1.0)]
    assert await store.metric_history("vast:zzz", 0) == []


async def test_prune_drops_old_rows_and_gives_the_space_back(store: Store) -> None:
    now = T0 + 30 * 86400
    old_samples = [(f"vast:{n}", make_sample(T0 + s)) for n in range(20) for s in range(0, 3000, 5)]
    await store.add_metric_samples(old_samples)
    await store.add_metric_samples([("vast:1", make_sample(now - 60))])
    await store.record_price_stats([make_stat(now - 100 * 86400), make_stat(now - 86400)])
    pages_before = (await store.diagnostics())["page_count"]

    await store.prune(now, metrics_keep_s=7 * 86400, metrics_1m_keep_s=7 * 86400, metrics_1h_keep_s=90 * 86400,
                      prices_keep_s=90 * 86400, audit_keep_s=365 * 86400)

    assert await store.metric_history("vast:1", 0) == [make_sample(now - 60)]
    assert await store.metric_history("vast:2", 0) == []
    assert await store.price_history("A100 SXM", 0) == [make_stat(now - 86400)]
    after = await store.diagnostics()
    assert after["freelist_count"] == 0  # incremental vacuum ran to completion, not one page
    assert after["page_count"] < pages_before / 4


async def test_prune_honours_custom_retention(store: Store) -> None:
    await store.add_metric_samples([("vast:a", make_sample(T0)), ("vast:a", make_sample(T0 + 600))])
    await store.record_price_stats([make_stat(T0), make_stat(T0 + 600)])
    for at in (T0 + 699, T0 + 700):
        await store.audit(at, "user", "stop", "vast:a")

    await store.prune(T0 + 900, metrics_keep_s=600, metrics_1m_keep_s=600, metrics_1h_keep_s=600, prices_keep_s=100, audit_keep_s=200)

    # Rows exactly at the cut-off stay; only older ones go.
    assert [s.time for s in await store.metric_history("vast:a", 0)] == [T0 + 600]
    assert await store.price_history("A100 SXM", 0) == []
    assert [entry.at for entry in await store.audit_log()] == [T0 + 700]

    await store.prune(T0 + 1200, metrics_keep_s=600, metrics_1m_keep_s=600, metrics_1h_keep_s=600, prices_keep_s=100, audit_keep_s=100)
    assert [s.time for s in await store.metric_history("vast:a", 0)] == [T0 + 600]


# -- audit log -------------------------------------------------------------------------------------


async def test_audit_log_is_newest_first_and_limited(store: Store) -> None:
    await store.audit(T0, "user", "launch", "vast:1", "RTX 4090 x2 @ $0.74/h")
    await store.audit(T0 + 60, "rule:idle", "stop", "vast:1", outcome="failed: 409 conflict")
    await store.audit(T0 + 60, "user", "destroy", "vast:1")  # same second: insertion order decides
    await store.audit(T0 - 60, "user", "bind", "vast")

    newest = await store.audit_log(limit=2)
    assert newest == [
        AuditEntry(T0 + 60, "user", "destroy", "vast:1", "", "ok"),
        AuditEntry(T0 + 60, "rule:idle", "stop", "vast:1", "", "failed: 409 conflict"),
    ]
    assert [entry.action for entry in await store.audit_log()] == [
        "destroy",
        "stop",
        "launch",
        "bind",
    ]
    assert (await store.audit_log())[2].detail == "RTX 4090 x2 @ $0.74/h"
    assert await store.audit_log(limit=0) == []


# -- secrets ---------------------------------------------------------------------------------------


async def test_secrets_put_get_overwrite_delete_list(store: Store) -> None:
    await store.put_secret("vast", "api_key", b"cipher-1", T0)
    await store.put_secret("runpod", "api_key", b"cipher-2", T0 + 1)
    await store.put_secret("vast", "api_key", b"cipher-3", T0 + 2)

    assert await store.get_secret("vast", "api_key") == b"cipher-3"
    assert await store.get_secret("vast", "other") is None
    assert await store.list_secrets() == [
        ("runpod", "api_key", T0 + 1),
        ("vast", "api_key", T0 + 2),
    ]

    assert await store.delete_secret("vast", "api_key") is True
    assert await store.delete_secret("vast", "api_key") is False
    assert await store.get_secret("vast", "api_key") is None
    assert await store.list_secrets() == [("runpod", "api_key", T0 + 1)]


async def test_secret_must_be_ciphertext_bytes(store: Store) -> None:
    with pytest.raises(TypeError, match="bytes"):
        await store.put_secret("vast", "api_key", "sk-plaintext", T0)  # type: ignore[arg-type]
    assert await store.list_secrets() == []


async def test_secret_write_restores_normal_sync_afterwards(store: Store) -> None:
    await store.put_secret("vast", "api_key", b"c", T0)
    await store.delete_secret("vast", "api_key")
    assert (await store.diagnostics())["synchronous"] == 1


# -- concurrency, disk full, speed ----------------------------------------------------------------


async def test_concurrent_writers_do_not_share_a_transaction(store: Store) -> None:
    # Each of these is BEGIN IMMEDIATE + several awaited statements + COMMIT on one connection.
    # Interleaved, the second BEGIN would fail ("cannot start a transaction within a transaction").
    hour = (T0 // HOUR) * HOUR
    writes = []
    for n in range(25):
        writes.append(store.accrue([running(f"vast:{n}", 36.0, started=hour + n - 1)], hour + n))
        writes.append(store.save_instances("vast", [make_instance(instance_id=str(n))], T0 + n))
        writes.append(store.audit(T0 + n, "user", "stop", f"vast:{n}"))

    await asyncio.gather(*writes)

    costs = await store.cost_states()
    assert len(costs) == 25
    assert sum(state.usd for state in costs.values()) == pytest.approx(25 * 0.01)
    assert await store.spend_between(hour, hour + HOUR) == pytest.approx(24 * 0.01)
    assert len(await store.audit_log(limit=1000)) == 25


async def test_disk_full_is_a_clear_error_and_the_store_keeps_working(db_path: Path) -> None:
    async with await Store.open(db_path, max_bytes=256 * 1024) as capped:
        await capped.add_metric_samples([("vast:a", make_sample(T0 + s)) for s in range(10)])
        flood = [(f"vast:{n}", make_sample(T0 + s)) for n in range(50) for s in range(0, 1000, 5)]

        with pytest.raises(StoreError) as caught:
            await capped.add_metric_samples(flood)

        message = str(caught.value)
        assert caught.value.kind == "disk-full"
        assert message.startswith("disk full")
        assert str(db_path) in message and "\n" not in message
        # The failed batch left nothing behind, and reads and small writes still work.
        assert await capped.metric_history("vast:b", 0) == []
        assert len(await capped.metric_history("vast:a", 0)) == 10
        await capped.audit(T0, "user", "stop", "vast:a")
        assert [entry.action for entry in await capped.audit_log()] == ["stop"]
        # Freeing space makes big writes possible again (as big as the cap leaves room for beside the tables).
        await capped.prune(T0 + 10 * 86400, metrics_keep_s=7 * 86400, metrics_1m_keep_s=7 * 86400,
                           metrics_1h_keep_s=7 * 86400, prices_keep_s=90 * 86400, audit_keep_s=365 * 86400)
        await capped.add_metric_samples(flood[:1000])
        assert len(await capped.metric_history("vast:3", 0)) == 200


async def test_failed_write_does_not_take_a_concurrent_write_down_with_it(db_path: Path) -> None:
    async with await Store.open(db_path, max_bytes=256 * 1024) as capped:
        flood = [(f"vast:{n}", make_sample(T0 + s)) for n in range(50) for s in range(0, 1000, 5)]

        results = await asyncio.gather(
            capped.add_metric_samples(flood),
            capped.put_secret("vast", "api_key", b"cipher", T0),
            capped.audit(T0, "user", "launch", "vast:1"),
            return_exceptions=True,
        )

        assert isinstance(results[0], StoreError) and results[0].kind == "disk-full"
        assert results[1:] == [None, None]
        assert await capped.get_secret("vast", "api_key") == b"cipher"
        assert [entry.action for entry in await capped.audit_log()] == ["launch"]
        assert await capped.metric_history("vast:0", 0) == []


async def test_a_poll_cycle_write_takes_milliseconds(store: Store) -> None:
    instances = [
        make_instance(instance_id=str(n), ssh=SshEndpoint("h", 2200 + n)) for n in range(50)
    ]
    timings_ms: list[float] = []
    for cycle in range(20):
        at = T0 + 5 * cycle
        started = time.perf_counter()
        await store.save_instances("vast", instances, at)
        await store.add_metric_samples([(i.key, make_sample(at)) for i in instances])
        timings_ms.append((time.perf_counter() - started) * 1000)

    median_ms = statistics.median(timings_ms)
    print(
        f"\n50 instances + 50 metric samples: median {median_ms:.2f} ms, "
        f"max {max(timings_ms):.2f} ms"
    )
    assert len(await store.load_instances()) == 50
    assert len(await store.metric_history("vast:7", 0)) == 20
    # Generous bound so a loaded CI box passes; measured figures are a few milliseconds.
    assert median_ms < 50, f"median {median_ms:.1f} ms"
