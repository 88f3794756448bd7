"""Metric samples keep power, GPU names, their source and their error; older rows read back as provider samples."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from computehub_tui.domain.models import MetricSample
from computehub_tui.store import Store
from computehub_tui.store import connection as store_connection
from computehub_tui.store._schema import MIGRATIONS

T0 = 1_790_000_000.0


def _step_adding_power() -> int:
    """Position of this feature's migration (numbers are assigned at merge, so find it by what it adds)."""
    return next(n for n, step in enumerate(MIGRATIONS) if any("gpu_power_w" in sql for sql in step.statements))


async def test_an_ssh_sample_round_trips_with_unknown_gpus_names_power_and_error(tmp_path: Path) -> None:
    sample = MetricSample(T0, gpu_util=(None, 97.0), vram_used_gb=(20.0, None), vram_total_gb=(80.0, 80.0),
                          gpu_temp_c=(41.0, 64.0), gpu_power_w=(88.5, None), gpu_names=("NVIDIA A100", "NVIDIA A100"),
                          source="ssh", error="GPU 1 unreadable")
    async with await Store.open(tmp_path / "db.sqlite") as store:
        await store.add_metric_samples([("lambda:abcdef12", sample), ("vast:1", MetricSample(T0))])
        assert await store.metric_history("lambda:abcdef12", 0) == [sample]
        assert await store.metric_history("vast:1", 0) == [MetricSample(T0)]


async def test_gpu_names_are_kept_once_however_many_samples_carry_them(tmp_path: Path) -> None:
    names = ("NVIDIA H100 80GB HBM3",) * 8
    samples = [MetricSample(T0 + 5 * n, gpu_util=(50.0,) * 8, gpu_names=names, source="ssh") for n in range(50)]
    async with await Store.open(tmp_path / "db.sqlite") as store:
        await store.add_metric_samples([("lambda:a", s) for s in samples] + [("lambda:b", samples[0])])
        await store.add_metric_samples([("lambda:a", MetricSample(T0 + 900, gpu_names=("A10",)))])
        history = await store.metric_history("lambda:a", 0)
    assert history[:-1] == samples and history[-1].gpu_names == ("A10",)
    with sqlite3.connect(tmp_path / "db.sqlite") as db:
        assert sorted(db.execute("SELECT names FROM metric_gpu_names").fetchall()) == [
            ('["A10"]',), ('["NVIDIA H100 80GB HBM3"' + ',"NVIDIA H100 80GB HBM3"' * 7 + "]",)]


async def test_samples_stored_before_the_step_read_back_as_provider_samples(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "db.sqlite"
    before = _step_adding_power()
    with monkeypatch.context() as patch:
        patch.setattr(store_connection, "MIGRATIONS", MIGRATIONS[:before])
        patch.setattr(store_connection, "LATEST_VERSION", MIGRATIONS[before - 1].version)
        async with await Store.open(path):
            pass
    connection = sqlite3.connect(path)
    with connection:
        connection.execute("INSERT INTO metric_samples VALUES ('vast:1', ?, '[50]', '[1.5]', '[24]', '[60]', 10, 20)",
                           (T0,))
    connection.close()
    async with await Store.open(path) as upgraded:
        assert upgraded.schema_version == MIGRATIONS[-1].version
        (old,) = await upgraded.metric_history("vast:1", 0)
    assert old == MetricSample(T0, (50.0,), (1.5,), (24.0,), (60.0,), 10.0, 20.0)
    assert old.source == "provider" and old.gpu_power_w == () and old.error is None
