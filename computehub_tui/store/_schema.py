"""The database schema as an ordered list of migration steps; step N leaves ``user_version`` = N."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Migration:
    version: int
    description: str
    statements: tuple[str, ...]


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
)

LATEST_VERSION = MIGRATIONS[-1].version
