"""The database schema as an ordered list of migration steps; step N leaves ``user_version`` = N."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import aiosqlite

from computehub_tui.store._codec import ROLLUP_LAYOUT, SAMPLE_LAYOUT, pack, time_ms, to_units


@dataclass(frozen=True, slots=True)
class Migration:
    version: int
    description: str
    statements: tuple[str, ...]
    convert: Callable[[aiosqlite.Connection], Awaitable[None]] | None = None
    """Python run after ``statements`` in the same transaction, for data SQL alone cannot rewrite."""


_CONVERT_BATCH = 5000
_JSON_METRIC_TABLES = {"metric_samples": "metric_samples_by_at", "metric_rollups_1m": "metric_rollups_1m_by_bucket",
                       "metric_rollups_1h": "metric_rollups_1h_by_bucket"}
"""Schema 5's metric tables (per-GPU readings as JSON text) and their index on time."""
_JSON_ROLLUP_STATS = ("gpu_util_mean, gpu_util_max, vram_used_mean, vram_used_max, vram_total, gpu_temp_mean, "
                      "gpu_temp_max, power_mean, power_max")
"""Schema 5's per-GPU rollup columns (JSON arrays), in ``ROLLED_STATS`` order; cpu_pct and ram_pct follow."""
_PACKED_METRIC_TABLES = (
    # Rows carry these small integers instead of the instance key and of the GPU names an SSH sample repeats
    # (``["NVIDIA H100 80GB HBM3", …]``). Keyed by the text, as they are looked up by it.
    "CREATE TABLE metric_series (instance_key TEXT PRIMARY KEY, id INTEGER NOT NULL) WITHOUT ROWID",
    "CREATE TABLE metric_gpu_names (names TEXT PRIMARY KEY, id INTEGER NOT NULL) WITHOUT ROWID",
    # ``at`` in integer milliseconds; ``readings`` packed as _codec.SAMPLE_LAYOUT says. Pruning walks each
    # series' primary key, so no table needs an index on time.
    """
    CREATE TABLE metric_samples (
        series   INTEGER NOT NULL,
        at       INTEGER NOT NULL,
        readings BLOB NOT NULL,
        names    INTEGER,
        source   TEXT,
        error    TEXT,
        PRIMARY KEY (series, at)
    ) WITHOUT ROWID
    """,
    # ``stats`` packed as _codec.ROLLUP_LAYOUT says.
    *(f"""
    CREATE TABLE {table} (
        series  INTEGER NOT NULL,
        bucket  INTEGER NOT NULL,
        samples INTEGER NOT NULL,
        stats   BLOB NOT NULL,
        PRIMARY KEY (series, bucket)
    ) WITHOUT ROWID
    """ for table in ("metric_rollups_1m", "metric_rollups_1h")),
)


async def _pack_metric_history(db: aiosqlite.Connection) -> None:
    """Schema 5's JSON metric rows into packed ones (see ``_codec``), then the JSON tables go."""
    if not any([await _has_rows(db, table) for table in _JSON_METRIC_TABLES]):
        # A new or empty store: the old tables go first, so the new ones reuse their pages and a store
        # capped near its empty schema's size still opens.
        await _execute(db, (*(f"DROP TABLE {table}" for table in _JSON_METRIC_TABLES), *_PACKED_METRIC_TABLES))
        return
    for table, index in _JSON_METRIC_TABLES.items():
        await _execute(db, (f"DROP INDEX {index}", f"ALTER TABLE {table} RENAME TO {table}_json"))
    await _execute(db, (*_PACKED_METRIC_TABLES, """
        INSERT INTO metric_series (instance_key, id)
        SELECT instance_key, row_number() OVER (ORDER BY instance_key) FROM (
            SELECT instance_key FROM metric_samples_json UNION SELECT instance_key FROM metric_rollups_1m_json
            UNION SELECT instance_key FROM metric_rollups_1h_json)
        """, """
        INSERT INTO metric_gpu_names (names, id)
        SELECT gpu_names, row_number() OVER (ORDER BY gpu_names) FROM (
            SELECT DISTINCT gpu_names FROM metric_samples_json WHERE gpu_names IS NOT NULL)
        """))
    await _convert(db, "SELECT k.id, s.at, s.gpu_util, s.vram_used_gb, s.vram_total_gb, s.gpu_temp_c, s.cpu_pct, "
                       "s.ram_pct, s.gpu_power_w, n.id, s.source, s.error FROM metric_samples_json AS s "
                       "JOIN metric_series AS k ON k.instance_key = s.instance_key "
                       "LEFT JOIN metric_gpu_names AS n ON n.names = s.gpu_names",
                   "INSERT OR REPLACE INTO metric_samples (series, at, readings, names, source, error) "
                   "VALUES (?, ?, ?, ?, ?, ?)", _packed_sample)
    for table in ("metric_rollups_1m", "metric_rollups_1h"):
        await _convert(db, f"SELECT k.id, r.bucket, r.samples, {_JSON_ROLLUP_STATS}, "
                           f"r.cpu_pct, r.ram_pct FROM {table}_json AS r "
                           "JOIN metric_series AS k ON k.instance_key = r.instance_key",
                       f"INSERT INTO {table} (series, bucket, samples, stats) VALUES (?, ?, ?, ?)", _packed_rollup)
    await _execute(db, tuple(f"DROP TABLE {table}_json" for table in _JSON_METRIC_TABLES))


async def _has_rows(db: aiosqlite.Connection, table: str) -> bool:
    rows = list(await db.execute_fetchall(f"SELECT EXISTS (SELECT 1 FROM {table})"))
    return bool(rows[0][0])


async def _execute(db: aiosqlite.Connection, statements: tuple[str, ...]) -> None:
    for statement in statements:
        await db.execute(statement)


async def _convert(db: aiosqlite.Connection, select: str, insert: str,
                   rewrite: Callable[[Any], tuple[Any, ...]]) -> None:
    async with db.execute(select) as cursor:
        while rows := await cursor.fetchmany(_CONVERT_BATCH):
            await db.executemany(insert, [rewrite(row) for row in rows])


def _packed_sample(row: Any) -> tuple[Any, ...]:
    series, at, util, used, total, temp, cpu, ram, power, names, source, error = row
    # One parse for the five arrays, in SAMPLE_LAYOUT's order: a migration may have millions of rows.
    per_gpu = json.loads(f"[{util},{used},{total},{temp},{power or '[]'}]")
    readings = pack(SAMPLE_LAYOUT, to_units(SAMPLE_LAYOUT, (*per_gpu, (cpu,), (ram,))))
    # Source and error were already stored as they are kept now.
    return series, time_ms(at), readings, names, source, error


def _packed_rollup(row: Any) -> tuple[Any, ...]:
    series, bucket, samples, *per_gpu, cpu, ram = row
    figures = (*json.loads(f"[{','.join(per_gpu)}]"), (cpu,), (ram,))
    return series, bucket, samples, pack(ROLLUP_LAYOUT, to_units(ROLLUP_LAYOUT, figures))


MIGRATIONS: tuple[Migration, ...] = (
    Migration(
        version=1,
        description="instances, costs, spend, price stats, metrics, audit log, secrets",
        statements=(
            """
            CREATE TABLE instances (
                key        TEXT PRIMARY KEY,
                provider   TEXT NOT NULL,
                status     TEXT NOT NULL,
                snapshot   TEXT NOT NULL,
                first_seen REAL NOT NULL,
                last_seen  REAL NOT NULL,
                gone_at    REAL
            ) WITHOUT ROWID
            """,
            "CREATE INDEX instances_by_provider ON instances (provider, gone_at)",
            """
            CREATE TABLE instance_costs (
                instance_key TEXT PRIMARY KEY,
                usd          REAL NOT NULL,
                updated_at   REAL NOT NULL
            ) WITHOUT ROWID
            """,
            """
            CREATE TABLE spend_hourly (
                hour_start   INTEGER NOT NULL,
                instance_key TEXT NOT NULL,
                usd          REAL NOT NULL,
                PRIMARY KEY (hour_start, instance_key)
            ) WITHOUT ROWID
            """,
            """
            CREATE TABLE price_stats (
                gpu          TEXT NOT NULL,
                at           REAL NOT NULL,
                provider     TEXT NOT NULL,
                gpu_count    INTEGER NOT NULL,
                pricing      TEXT NOT NULL,
                min_price    REAL NOT NULL,
                median_price REAL NOT NULL,
                p90_price    REAL NOT NULL,
                offer_count  INTEGER NOT NULL,
                PRIMARY KEY (gpu, at, provider, gpu_count, pricing)
            ) WITHOUT ROWID
            """,
            "CREATE INDEX price_stats_by_at ON price_stats (at)",
            """
            CREATE TABLE metric_samples (
                instance_key  TEXT NOT NULL,
                at            REAL NOT NULL,
                gpu_util      TEXT NOT NULL,
                vram_used_gb  TEXT NOT NULL,
                vram_total_gb TEXT NOT NULL,
                gpu_temp_c    TEXT NOT NULL,
                cpu_pct       REAL,
                ram_pct       REAL,
                PRIMARY KEY (instance_key, at)
            ) WITHOUT ROWID
            """,
            "CREATE INDEX metric_samples_by_at ON metric_samples (at)",
            """
            CREATE TABLE audit_log (
                id      INTEGER PRIMARY KEY,
                at      REAL NOT NULL,
                actor   TEXT NOT NULL,
                action  TEXT NOT NULL,
                target  TEXT NOT NULL,
                detail  TEXT NOT NULL,
                outcome TEXT NOT NULL
            )
            """,
            "CREATE INDEX audit_log_by_at ON audit_log (at)",
            """
            CREATE TABLE secrets (
                provider   TEXT NOT NULL,
                field      TEXT NOT NULL,
                blob       BLOB NOT NULL,
                updated_at REAL NOT NULL,
                PRIMARY KEY (provider, field)
            ) WITHOUT ROWID
            """,
        ),
    ),
    Migration(
        version=2,
        description="idempotent cost accrual (booked up to when) and billing-run tracking (uptime)",
        statements=(
            "ALTER TABLE instance_costs ADD COLUMN accrued_until REAL",
            "ALTER TABLE instance_costs ADD COLUMN rate_hour REAL",
            # Costs written before this step were booked up to their last update.
            "UPDATE instance_costs SET accrued_until = updated_at",
            """
            CREATE TABLE instance_runs (
                instance_key  TEXT PRIMARY KEY,
                billing       INTEGER NOT NULL,
                running_since REAL,
                seen_at       REAL NOT NULL
            ) WITHOUT ROWID
            """,
        ),
    ),
    Migration(
        version=3,
        description="each provider's last good offers, shown before the first poll answers",
        statements=(
            # A rowid table on purpose: WITHOUT ROWID suits small rows, and a payload is megabytes.
            """
            CREATE TABLE offers_snapshot (
                provider   TEXT PRIMARY KEY,
                fetched_at REAL NOT NULL,
                payload    BLOB NOT NULL
            )
            """,
        ),
    ),
    Migration(
        version=4,
        description="per-GPU power draw, GPU names, where a metric sample came from, and what it is missing",
        # NULL for "none" and for the provider source: a NULL costs no bytes in a row, and rows are many.
        statements=(
            "ALTER TABLE metric_samples ADD COLUMN gpu_power_w TEXT",
            "ALTER TABLE metric_samples ADD COLUMN gpu_names TEXT",
            "ALTER TABLE metric_samples ADD COLUMN source TEXT",
            "ALTER TABLE metric_samples ADD COLUMN error TEXT",
        ),
    ),
    Migration(
        version=5,
        description="one-minute and hourly metric rollups; instance projects",
        statements=(
            # Per-GPU columns are JSON arrays like metric_samples'; NULL inside one means unknown.
            *(f"""
            CREATE TABLE {table} (
                instance_key   TEXT NOT NULL,
                bucket         INTEGER NOT NULL,
                samples        INTEGER NOT NULL,
                gpu_util_mean  TEXT NOT NULL,
                gpu_util_max   TEXT NOT NULL,
                vram_used_mean TEXT NOT NULL,
                vram_used_max  TEXT NOT NULL,
                vram_total     TEXT NOT NULL,
                gpu_temp_mean  TEXT NOT NULL,
                gpu_temp_max   TEXT NOT NULL,
                power_mean     TEXT NOT NULL DEFAULT '[]',
                power_max      TEXT NOT NULL DEFAULT '[]',
                cpu_pct        REAL,
                ram_pct        REAL,
                PRIMARY KEY (instance_key, bucket)
            ) WITHOUT ROWID
            """ for table in ("metric_rollups_1m", "metric_rollups_1h")),
            "CREATE INDEX metric_rollups_1m_by_bucket ON metric_rollups_1m (bucket)",
            "CREATE INDEX metric_rollups_1h_by_bucket ON metric_rollups_1h (bucket)",
            """
            CREATE TABLE instance_projects (
                instance_key TEXT PRIMARY KEY,
                project      TEXT NOT NULL,
                set_at       REAL NOT NULL
            ) WITHOUT ROWID
            """,
        ),
    ),
    Migration(
        version=6,
        description="automation: rule states, pause flag, action journal, lease, launch records",
        statements=(
            """
            CREATE TABLE rule_states (
                name       TEXT PRIMARY KEY,
                enabled    INTEGER NOT NULL DEFAULT 1,
                mode       TEXT,
                last_fired REAL,
                fire_count INTEGER NOT NULL DEFAULT 0
            ) WITHOUT ROWID
            """,
            """
            CREATE TABLE automation_flags (
                name   TEXT PRIMARY KEY,
                value  TEXT NOT NULL,
                set_at REAL NOT NULL
            ) WITHOUT ROWID
            """,
            # One row per firing of a rule on a target within one cooldown window; the row is written
            # before the action is sent, so a restart finds what was in flight.
            """
            CREATE TABLE action_journal (
                idem_key        TEXT PRIMARY KEY,
                rule            TEXT NOT NULL,
                target          TEXT NOT NULL,
                action          TEXT NOT NULL,
                opened_at       REAL NOT NULL,
                closes_at       REAL NOT NULL,
                state           TEXT NOT NULL,
                attempts        INTEGER NOT NULL,
                last_attempt_at REAL NOT NULL,
                result          TEXT NOT NULL DEFAULT '',
                evidence        TEXT NOT NULL DEFAULT '',
                dry_run         INTEGER NOT NULL DEFAULT 0
            ) WITHOUT ROWID
            """,
            "CREATE INDEX action_journal_by_closes ON action_journal (closes_at)",
            "CREATE INDEX action_journal_by_state ON action_journal (state)",
            """
            CREATE TABLE automation_lease (
                name        TEXT PRIMARY KEY,
                holder      TEXT NOT NULL,
                host        TEXT NOT NULL,
                pid         INTEGER NOT NULL,
                acquired_at REAL NOT NULL,
                renewed_at  REAL NOT NULL,
                expires_at  REAL NOT NULL
            ) WITHOUT ROWID
            """,
            """
            CREATE TABLE launch_records (
                instance_key TEXT PRIMARY KEY,
                offer        TEXT NOT NULL,
                spec         TEXT NOT NULL,
                launched_at  REAL NOT NULL
            ) WITHOUT ROWID
            """,
        ),
    ),
    Migration(
        version=7,
        description="each instance's observed status changes (the detail screen's timeline, status FOR rules)",
        statements=(
            """
            CREATE TABLE instance_status_changes (
                instance_key TEXT NOT NULL,
                at           REAL NOT NULL,
                status       TEXT NOT NULL,
                previous     TEXT,
                PRIMARY KEY (instance_key, at)
            ) WITHOUT ROWID
            """,
            # No index on ``at``: changes are rare (a few per instance per day), so pruning may scan them.
        ),
    ),
    Migration(
        version=8,
        description="packed metric history: integer series and times, per-GPU readings as small integers",
        statements=(),
        convert=_pack_metric_history,
    ),
    Migration(
        version=9,
        description="the alert outbox: alerts by key (firing, acknowledged, folded into a digest) and one delivery "
                    "per alert and channel with its own retry state",
        statements=(
            """
            CREATE TABLE alerts (
                alert_key      TEXT PRIMARY KEY,
                kind           TEXT NOT NULL,
                severity       TEXT NOT NULL,
                title          TEXT NOT NULL,
                body           TEXT NOT NULL,
                state          TEXT NOT NULL,
                first_at       REAL NOT NULL,
                last_at        REAL NOT NULL,
                last_sent_at   REAL,
                acked_by       TEXT,
                acked_at       REAL,
                pending_digest INTEGER NOT NULL DEFAULT 0,
                channels       TEXT
            ) WITHOUT ROWID
            """,
            "CREATE INDEX alerts_by_state ON alerts (state, kind)",
            """
            CREATE TABLE alert_groups (
                group_key     TEXT PRIMARY KEY,
                last_sent_at  REAL NOT NULL,
                digest_due_at REAL
            ) WITHOUT ROWID
            """,
            # Written before anything is sent; a row claimed by a process that died is claimable again once
            # its claim is older than the lease (or at once, when its claimant is known to be gone).
            """
            CREATE TABLE deliveries (
                delivery_id     TEXT PRIMARY KEY,
                alert_key       TEXT NOT NULL,
                channel         TEXT NOT NULL,
                kind            TEXT NOT NULL,
                severity        TEXT NOT NULL,
                title           TEXT NOT NULL,
                body            TEXT NOT NULL,
                fields          TEXT NOT NULL,
                buttons         TEXT NOT NULL,
                created_at      REAL NOT NULL,
                state           TEXT NOT NULL,
                attempts        INTEGER NOT NULL DEFAULT 0,
                next_attempt_at REAL NOT NULL,
                last_error      TEXT NOT NULL DEFAULT '',
                claimed_by      TEXT,
                claimed_at      REAL,
                sent_at         REAL,
                recipients      TEXT,
                fallback_of     TEXT
            ) WITHOUT ROWID
            """,
            "CREATE INDEX deliveries_due ON deliveries (state, next_attempt_at)",
            "CREATE INDEX deliveries_by_created ON deliveries (created_at)",
        ),
    ),
    Migration(
        version=10,
        description="pending rule warnings (WARN): their due time, snoozes and cancels survive a restart",
        statements=(
            """
            CREATE TABLE rule_warnings (
                warning_id      TEXT PRIMARY KEY,
                rule            TEXT NOT NULL,
                target          TEXT NOT NULL,
                action          TEXT NOT NULL,
                due_at          REAL NOT NULL,
                evidence        TEXT NOT NULL DEFAULT '',
                cancelled_until REAL
            ) WITHOUT ROWID
            """,
        ),
    ),
)

LATEST_VERSION = MIGRATIONS[-1].version
