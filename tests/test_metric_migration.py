"""The packing migration: a store written with JSON metric rows (schema 5) opens with every sample and rollup
converted (unknown still unknown, power, names, source and error kept), the JSON tables gone, and its space
given back by the next maintenance run."""

from __future__ import annotations

import sqlite3
from contextlib import closing
from pathlib import Path

import pytest

from computehub_tui.domain.models import MetricSample
from computehub_tui.store import Store
from computehub_tui.store import connection as store_connection
from computehub_tui.store._schema import MIGRATIONS, _pack_metric_history
from computehub_tui.store.rollups import ROLLUP_1H, ROLLUP_1M, stats_of

T0 = 1_790_000_000.0 - 1_790_000_000.0 % 3600
DAY = 86_400.0


def _packing_step() -> int:
    """Position of the packing migration (numbers are assigned at merge, so find it by what it makes)."""
    return next(n for n, step in enumerate(MIGRATIONS) if step.convert is _pack_metric_history)


async def _old_store(path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    before = _packing_step()
    with monkeypatch.context() as patch:
        patch.setattr(store_connection, "MIGRATIONS", MIGRATIONS[:before])
        patch.setattr(store_connection, "LATEST_VERSION", MIGRATIONS[before - 1].version)
        async with await Store.open(path):
            pass


def _write_json_rows(path: Path, samples: int) -> None:
    with closing(sqlite3.connect(path)) as db, db:
        db.execute("INSERT INTO metric_samples VALUES ('lambda:a', ?, '[97.5,null]', '[20.5,1]', '[80,80]', "
                   "'[64,null]', 12.5, NULL, '[300.5,null]', '[\"H100\",\"H100\"]', 'ssh', 'GPU 1 unreadable')",
                   (T0 + 0.5,))
        db.executemany("INSERT INTO metric_samples VALUES (?, ?, '[50]', '[1.5]', '[24]', '[60]', 10, 20, NULL, "
                       "NULL, NULL, NULL)", [(f"vast:{n % 10}", T0 + n) for n in range(samples)])
        for table in (ROLLUP_1M.table, ROLLUP_1H.table):
            db.execute(f"INSERT INTO {table} VALUES ('vast:old', ?, 12, '[40.5,null]', '[90,null]', '[2,null]', "
                       "'[3,null]', '[24,24]', '[61,null]', '[70,null]', '[]', '[]', 33.3, NULL)", (T0,))


async def test_json_samples_and_rollups_read_back_the_same_after_the_migration(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "old.db"
    await _old_store(path, monkeypatch)
    _write_json_rows(path, samples=0)

    async with await Store.open(path) as store:
        assert store.schema_version == MIGRATIONS[-1].version
        (ssh,) = await store.metric_history("lambda:a", 0)
        minutes = await store.metric_rollups("vast:old", 0, ROLLUP_1M)
        hours = await store.metric_rollups("vast:old", 0, ROLLUP_1H)

    assert ssh == MetricSample(T0 + 0.5, gpu_util=(97.5, None), vram_used_gb=(20.5, 1.0), vram_total_gb=(80.0, 80.0),
                               gpu_temp_c=(64.0, None), cpu_pct=12.5, ram_pct=None, gpu_power_w=(300.5, None),
                               gpu_names=("H100", "H100"), source="ssh", error="GPU 1 unreadable")
    expected = MetricSample(T0, gpu_util=(40.5, None), vram_used_gb=(2.0, None), vram_total_gb=(24.0, 24.0),
                            gpu_temp_c=(61.0, None), cpu_pct=33.3, ram_pct=None)
    assert minutes == [expected] and hours == [expected]
    with sqlite3.connect(path) as db:
        tables = {name for (name,) in db.execute("SELECT name FROM sqlite_schema WHERE type = 'table'")}
        ((samples, packed),) = db.execute(f"SELECT samples, stats FROM {ROLLUP_1M.table}").fetchall()
    assert not {name for name in tables if name.endswith("_json")}
    assert samples == 12 and stats_of(packed)["gpu_util_max"] == (90.0, None)


async def test_the_migrated_store_shrinks_at_the_next_maintenance_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "old.db"
    await _old_store(path, monkeypatch)
    _write_json_rows(path, samples=20_000)
    before = path.stat().st_size
    async with await Store.open(path) as store:
        freed_by_migration = (await store.diagnostics())["freelist_count"]
        assert len(await store.metric_history("vast:3", 0)) == 2000
        await store.prune(T0 + DAY, metrics_keep_s=2 * DAY, metrics_1m_keep_s=2 * DAY, metrics_1h_keep_s=2 * DAY,
                          prices_keep_s=DAY, audit_keep_s=DAY)
        assert len(await store.metric_history("vast:3", 0)) == 2000  # nothing was old enough to prune
        assert (await store.diagnostics())["freelist_count"] == 0
    assert freed_by_migration * 4096 > before / 2  # the JSON tables' pages, free once they are dropped
    assert path.stat().st_size < before
