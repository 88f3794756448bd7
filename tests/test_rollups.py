"""Metric rollups: minutes and hours of samples folded into mean / max rows (unknown stays unknown),
idempotently; each kind pruned by its own retention; space given back; charts read the resolution that
fits their window."""

from __future__ import annotations

import asyncio
import os
import random
import sqlite3
from collections.abc import AsyncIterator, Callable, Iterable
from contextlib import asynccontextmanager, closing
from dataclasses import replace
from operator import attrgetter
from pathlib import Path

import aiosqlite
import pytest

from computehub_tui.clock import ManualClock
from computehub_tui.domain.models import MetricSample
from computehub_tui.engine.hub import Hub, HubSettings, RetentionSettings
from computehub_tui.engine.metrics import resolution_for
from computehub_tui.store import Store
from computehub_tui.store import connection as store_connection
from computehub_tui.store._schema import MIGRATIONS
from computehub_tui.store.rollups import ROLLUP_1H, ROLLUP_1M, stats_of

HOUR = 3600.0
DAY = 86_400.0
T0 = 1_790_000_000.0 - 1_790_000_000.0 % HOUR
"""The start of an hour, so minute and hour buckets line up with the samples below."""
KEEP_ALL = RetentionSettings(metrics_raw_s=10 * DAY, metrics_1m_s=20 * DAY, metrics_1h_s=30 * DAY)


def sample(at: float, util: tuple[float | None, ...], temp: tuple[float | None, ...] = (60.0, 70.0), *,
           cpu: float | None = None) -> MetricSample:
    return MetricSample(time=at, gpu_util=util, vram_used_gb=(1.0, 2.0), vram_total_gb=(24.0, 24.0),  # type: ignore[arg-type]
                        gpu_temp_c=temp, cpu_pct=cpu)  # type: ignore[arg-type]


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    opened = await Store.open(tmp_path / "metrics.db")
    yield opened
    await opened.close()


async def prune(store: Store, now: float, retention: RetentionSettings = KEEP_ALL) -> None:
    await store.prune(now, metrics_keep_s=retention.metrics_raw_s, metrics_1m_keep_s=retention.metrics_1m_s,
                      metrics_1h_keep_s=retention.metrics_1h_s, prices_keep_s=DAY, audit_keep_s=DAY)


def rows(store: Store, table: str) -> list[tuple[str, int, int, dict[str, tuple[float | None, ...]]]]:
    """(instance key, bucket, samples, every stat decoded) per stored rollup row."""
    with sqlite3.connect(store.path) as db:
        found = db.execute(f"SELECT k.instance_key, r.bucket, r.samples, r.stats FROM {table} AS r "
                           "JOIN metric_series AS k ON k.id = r.series ORDER BY k.instance_key, r.bucket").fetchall()
    return [(key, bucket, samples, stats_of(stats)) for key, bucket, samples, stats in found]


async def test_a_minute_keeps_means_and_maxima_over_known_values_and_unknown_stays_null(store: Store) -> None:
    await store.add_metric_samples([
        ("vast:1", sample(T0 + 5, (10.0, None), (60.0, None), cpu=20.0)),
        ("vast:1", sample(T0 + 20, (30.0, None), (70.0, None))),
        ("vast:1", sample(T0 + 50, (None, None), (80.0, None), cpu=40.0)),
        ("vast:1", sample(T0 + 65, (90.0, 50.0))),  # the next minute, still going on at "now"
    ])
    await prune(store, T0 + 70)
    (minute,) = await store.metric_rollups("vast:1", T0, ROLLUP_1M)
    assert minute.time == T0
    assert minute.gpu_util == (20.0, None)  # GPU 1 never reported: unknown, not 0
    assert minute.gpu_temp_c == (70.0, None)
    assert minute.cpu_pct == 30.0 and minute.ram_pct is None
    ((_, _, samples, stats),) = rows(store, ROLLUP_1M.table)
    assert samples == 3 and stats["gpu_util_max"] == (30.0, None) and stats["gpu_temp_max"] == (80.0, None)
    assert stats["vram_total"] == (24.0, 24.0) and stats["power_mean"] == ()
    assert rows(store, ROLLUP_1H.table) == []  # the hour is not complete yet


async def test_an_hour_weighs_each_minute_by_its_samples(store: Store) -> None:
    await store.add_metric_samples([("vast:1", sample(T0 + 1, (0.0, 10.0))),
                                    ("vast:1", sample(T0 + 2, (0.0, 10.0))),
                                    ("vast:1", sample(T0 + 3, (0.0, None))),
                                    ("vast:1", sample(T0 + 61, (90.0, None)))])
    await prune(store, T0 + HOUR + 1)
    (hour,) = await store.metric_rollups("vast:1", T0, ROLLUP_1H)
    assert hour.gpu_util == (pytest.approx(22.5), pytest.approx(10.0))  # (0·3 + 90·1) / 4; GPU 1 known twice
    (hour_row,) = rows(store, ROLLUP_1H.table)
    assert (hour_row[2], hour_row[3]["gpu_util_max"]) == (4, (90.0, 10.0))  # samples, max utilisation


async def test_rolling_up_twice_over_the_same_span_changes_nothing(store: Store) -> None:
    await store.add_metric_samples([("vast:1", sample(T0 + i * 7, (float(i), 5.0))) for i in range(1200)])
    await store.add_metric_samples([("runpod:a", sample(T0 + i * 30, (50.0, None))) for i in range(300)])
    await prune(store, T0 + 2 * HOUR + 5)
    first = rows(store, ROLLUP_1M.table), rows(store, ROLLUP_1H.table)
    await prune(store, T0 + 2 * HOUR + 5)
    await prune(store, T0 + 2 * HOUR + 30)
    assert (rows(store, ROLLUP_1M.table), rows(store, ROLLUP_1H.table)) == first
    assert len(first[0]) == 120 + 120 and len(first[1]) == 2 + 2  # only complete minutes and hours


async def test_each_kind_of_metric_history_is_pruned_by_its_own_retention(store: Store) -> None:
    retention = RetentionSettings(metrics_raw_s=2 * HOUR, metrics_1m_s=5 * HOUR, metrics_1h_s=10 * HOUR)
    await store.add_metric_samples([("vast:1", sample(T0 + i * 60, (1.0, 2.0))) for i in range(12 * 60)])
    await prune(store, T0 + 6 * HOUR, retention)  # rolls up hours 0-5 before raw older than 4 h goes
    await prune(store, T0 + 12 * HOUR, retention)
    now = T0 + 12 * HOUR
    assert min(s.time for s in await store.metric_history("vast:1", 0)) == now - 2 * HOUR
    assert min(s.time for s in await store.metric_rollups("vast:1", 0, ROLLUP_1M)) == now - 5 * HOUR
    hours = [s.time for s in await store.metric_rollups("vast:1", 0, ROLLUP_1H)]
    assert hours == [T0 + h * HOUR for h in range(2, 12)]  # ten hours kept; each complete hour rolled up


async def test_pruning_gives_the_space_back_to_the_file_system(tmp_path: Path) -> None:
    store = await Store.open(tmp_path / "shrinks.db")
    try:
        assert (await store.diagnostics())["auto_vacuum"] == 2  # incremental, set when the file was created
        await store.add_metric_samples([(f"vast:{k}", sample(T0 + i * 5, (1.0, 2.0))) for k in range(20)
                                        for i in range(720)])
        await prune(store, T0 + HOUR)
    finally:
        await store.close()
    full = os.path.getsize(tmp_path / "shrinks.db")
    store = await Store.open(tmp_path / "shrinks.db")
    try:
        await prune(store, T0 + 3 * HOUR, RetentionSettings(metrics_raw_s=60.0, metrics_1m_s=60.0,
                                                            metrics_1h_s=60.0))
        assert await store.metric_history("vast:1", 0) == []
    finally:
        await store.close()
    assert os.path.getsize(tmp_path / "shrinks.db") < full / 3


async def test_space_is_given_back_a_chunk_at_a_time_other_writes_in_between(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(store_connection, "VACUUM_CHUNK_PAGES", 8)
    await store.add_metric_samples([(f"vast:{k}", sample(T0 + i * 5, (1.0, 2.0))) for k in range(20)
                                    for i in range(720)])
    await prune(store, T0 + HOUR)
    pages = (await store.diagnostics())["page_count"]
    vacuum = store._incremental_vacuum
    chunks: list[int] = []
    real_lock = store._lock

    class CountingLock:
        """The store's lock, counting how often the vacuum takes it."""

        async def __aenter__(self) -> None:
            chunks.append(1)
            await real_lock.acquire()

        async def __aexit__(self, *_: object) -> None:
            real_lock.release()

    async def counted() -> None:
        store._lock = CountingLock()  # type: ignore[assignment]
        try:
            await vacuum()
        finally:
            store._lock = real_lock

    monkeypatch.setattr(store, "_incremental_vacuum", counted)
    await prune(store, T0 + 3 * HOUR, RetentionSettings(metrics_raw_s=60.0, metrics_1m_s=60.0, metrics_1h_s=60.0))
    after = await store.diagnostics()
    assert after["freelist_count"] == 0 and after["page_count"] < pages / 3
    assert len(chunks) >= (pages - after["page_count"]) // 8  # 8 pages a time, the lock let go between them


async def test_a_file_without_incremental_vacuum_is_pruned_without_looping(tmp_path: Path) -> None:
    path = tmp_path / "made-elsewhere.db"
    with closing(sqlite3.connect(path)) as db:
        db.execute("CREATE TABLE notes (text TEXT)")  # a table first: the store leaves auto_vacuum as it is
    async with await Store.open(path) as store:
        assert (await store.diagnostics())["auto_vacuum"] == 0
        await store.add_metric_samples([(f"vast:{k}", sample(T0 + i * 5, (1.0, 2.0))) for k in range(5)
                                        for i in range(720)])
        await prune(store, T0 + 3 * HOUR, RetentionSettings(metrics_raw_s=60.0, metrics_1m_s=60.0,
                                                            metrics_1h_s=60.0))
        assert await store.metric_history("vast:1", 0) == []
        assert (await store.diagnostics())["freelist_count"] > 0  # reused by later writes, not given back


async def test_the_migration_is_the_latest_and_makes_both_rollup_tables(store: Store) -> None:
    assert store.schema_version == MIGRATIONS[-1].version
    with sqlite3.connect(store.path) as db:
        tables = {name for (name,) in db.execute("SELECT name FROM sqlite_schema WHERE type = 'table'")}
    assert {ROLLUP_1M.table, ROLLUP_1H.table, "instance_projects"} <= tables


@pytest.mark.parametrize(("window_s", "expected"), [
    (15 * 60, "raw"), (HOUR, "raw"), (2 * HOUR, "raw"), (2 * HOUR + 1, "1m"), (DAY, "1m"), (2 * DAY, "1m"),
    (7 * DAY, "1h"),
])
def test_a_chart_window_picks_its_resolution(window_s: float, expected: str) -> None:
    assert resolution_for(window_s, RetentionSettings()) == expected


def test_a_short_raw_retention_moves_charts_to_rollups_sooner() -> None:
    retention = RetentionSettings(metrics_raw_s=30 * 60.0, metrics_1m_s=DAY)
    assert [resolution_for(w, retention) for w in (15 * 60, HOUR, DAY, 2 * DAY)] == ["raw", "1m", "1m", "1h"]


async def test_hub_metric_chart_reads_rollups_and_reaches_the_present_with_finer_rows(store: Store) -> None:
    clock = ManualClock(start=T0 + 3 * HOUR + 30)
    hub = Hub({}, store, clock, HubSettings(retention=RetentionSettings()))
    await store.add_metric_samples([("vast:1", sample(T0 + i * 15, (40.0, 60.0))) for i in range(int(3 * HOUR / 15))])
    await hub.maintenance.prune_once()  # rolls up to T0 + 3 h
    await store.add_metric_samples([("vast:1", sample(T0 + 3 * HOUR + s, (100.0, 100.0))) for s in (5, 20)])

    day = await hub.metric_chart("vast:1", DAY)
    assert day.resolution == "1m"
    assert [p.time for p in day.samples] == [T0 + m * 60 for m in range(180)] + [T0 + 3 * HOUR + 5, T0 + 3 * HOUR + 20]
    assert day.samples[0].gpu_util == (40.0, 60.0) and day.samples[-1].gpu_util == (100.0, 100.0)

    week = await hub.metric_chart("vast:1", 7 * DAY)
    assert week.resolution == "1h" and [p.time for p in week.samples[:3]] == [T0, T0 + HOUR, T0 + 2 * HOUR]
    assert len(week.samples) == 3 + 2  # the three hours, then the raw samples not rolled up yet

    quarter = await hub.metric_chart("vast:1", 15 * 60)
    assert quarter.resolution == "raw" and len(quarter.samples) == 58 + 2  # 15 s apart from 14.5 min ago


async def test_power_is_rolled_up_per_gpu_over_known_readings(store: Store) -> None:
    await store.add_metric_samples([
        ("lambda:a", replace(sample(T0 + 5, (90.0, 80.0)), gpu_power_w=(300.0, None), source="ssh")),
        ("lambda:a", replace(sample(T0 + 25, (90.0, 80.0)), gpu_power_w=(200.0, 150.0), source="ssh")),
        ("lambda:a", sample(T0 + 45, (90.0, 80.0))),  # a provider sample with no power at all
    ])
    await prune(store, T0 + 70)
    (minute,) = await store.metric_rollups("lambda:a", T0, ROLLUP_1M)
    assert minute.gpu_power_w == (250.0, 150.0)
    ((*_, stats),) = rows(store, ROLLUP_1M.table)
    assert (stats["power_mean"], stats["power_max"]) == ((250.0, 150.0), (300.0, 150.0))


Readings = Callable[[MetricSample], tuple[float | None, ...]]


def _naive(samples: list[MetricSample], field: Readings) -> tuple[list[float | None], list[float | None]]:
    """Per GPU, the plain mean and maximum of the known readings ``field`` picks."""
    width = max((len(field(s)) for s in samples), default=0)
    columns = [_known(field(s)[g] for s in samples if g < len(field(s))) for g in range(width)]
    return ([sum(c) / len(c) if c else None for c in columns], [max(c) if c else None for c in columns])


def _naive_hour(samples: list[MetricSample], field: Readings) -> tuple[list[float | None], list[float | None]]:
    """As documented: an hour's mean weighs each minute's mean by the minute's samples; its maximum is plain."""
    minutes = [[s for s in samples if minute <= s.time % 3600 < minute + 60] for minute in range(0, 3600, 60)]
    folded = [(len(part), _naive(part, field)[0]) for part in minutes if part]
    width = max(len(means) for _, means in folded)
    result: list[float | None] = []
    for g in range(width):
        pairs = [(n, mean) for n, means in folded if g < len(means) and (mean := means[g]) is not None]
        result.append(sum(n * m for n, m in pairs) / sum(n for n, _ in pairs) if pairs else None)
    return result, _naive(samples, field)[1]


def _known(values: Iterable[float | None]) -> list[float]:
    return [value for value in values if value is not None]


def _close(found: tuple[float | None, ...], expected: list[float | None], tolerance: float) -> bool:
    return len(found) == len(expected) and all(
        (f is None and e is None) or (f is not None and e is not None and abs(f - e) <= tolerance)
        for f, e in zip(found, expected, strict=True))


async def test_minutes_and_hours_match_a_naive_computation_over_random_ragged_samples(store: Store) -> None:
    rng = random.Random(7)
    raw: dict[str, list[MetricSample]] = {}
    for key in ("vast:1", "runpod:b", "lambda:c"):
        raw[key] = []
        for step in range(int(2 * HOUR / 10)):
            gpus = rng.choice((2, 2, 3))  # a GPU that drops out of some samples
            raw[key].append(MetricSample(
                T0 + step * 10 + rng.random(),
                gpu_util=tuple(None if rng.random() < 0.2 else rng.randrange(1001) / 10 for _ in range(gpus)),
                vram_used_gb=tuple(rng.randrange(24 * 1024) / 1024 for _ in range(gpus)),
                vram_total_gb=(24.0,) * gpus,
                gpu_temp_c=tuple(float(rng.randrange(30, 90)) for _ in range(gpus)),
                gpu_power_w=() if rng.random() < 0.5 else tuple(rng.randrange(7000) / 10 for _ in range(gpus)),
                cpu_pct=None if rng.random() < 0.3 else rng.randrange(1001) / 10))
        await store.add_metric_samples([(key, s) for s in raw[key]])
    await prune(store, T0 + 2 * HOUR)

    minutes, hours = rows(store, ROLLUP_1M.table), rows(store, ROLLUP_1H.table)
    assert len(minutes) == 3 * 120 and len(hours) == 3 * 2
    for width, (key, bucket, samples, stats) in [*((60, row) for row in minutes), *((3600, row) for row in hours)]:
        part = [s for s in raw[key] if bucket <= s.time < bucket + width]
        assert samples == len(part)
        # Means are kept to the reading's step (0.1 %, 1 MiB, 1 °C, 0.1 W); an hour rounds its minutes' too.
        slack = 1 if width == 60 else 2
        for field, mean, top, unit in ((attrgetter("gpu_util"), "gpu_util_mean", "gpu_util_max", 0.1),
                                       (attrgetter("vram_used_gb"), "vram_used_mean", "vram_used_max", 1 / 1024),
                                       (attrgetter("gpu_temp_c"), "gpu_temp_mean", "gpu_temp_max", 1.0),
                                       (attrgetter("gpu_power_w"), "power_mean", "power_max", 0.1),
                                       (lambda s: (s.cpu_pct,), "cpu_pct", None, 0.1)):
            means, maxima = _naive(part, field) if width == 60 else _naive_hour(part, field)
            assert _close(stats[mean], means, slack * unit / 2 + 1e-9), (key, bucket, mean)
            assert top is None or _close(stats[top], maxima, 1e-9), (key, bucket, top)


async def test_rolling_up_lets_other_writes_in_between_instances(store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    await store.add_metric_samples([(f"vast:{n}", sample(T0 + i * 5, (1.0, 2.0))) for n in range(3) for i in range(24)])
    purposes: list[str] = []
    writes: list[asyncio.Task[None]] = []
    transaction = store._transaction

    @asynccontextmanager
    async def recorded(purpose: str, **options: bool) -> AsyncIterator[aiosqlite.Connection]:
        if purpose == "roll up metrics" and not writes:  # the sampler writes while the first instance rolls up
            writes.append(asyncio.create_task(store.add_metric_samples([("vast:9", sample(T0 + 300, (5.0, 5.0)))])))
        async with transaction(purpose, **options) as db:
            purposes.append(purpose)
            yield db

    monkeypatch.setattr(store, "_transaction", recorded)
    await prune(store, T0 + 2 * HOUR)
    await writes[0]
    assert purposes[:3] == ["roll up metrics", "record metrics", "roll up metrics"]
    assert purposes[3:] == ["roll up metrics", "prune old history"]  # vast:9 came after the list: the next run's
