"""The store's one writer connection: opening, pragmas, migrations, locked transactions and error mapping."""

from __future__ import annotations

import asyncio
import logging
import os
import sqlite3
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from types import TracebackType
from typing import Any, Self

import aiosqlite

from computehub_tui.private_files import (
    PRIVATE_FILE_MODE,
    describe_os_error,
    ensure_private_dir,
    publish_exclusively,
    tighten_private_file,
)
from computehub_tui.store._schema import LATEST_VERSION, MIGRATIONS, Migration
from computehub_tui.store.errors import StoreError

log = logging.getLogger(__name__)

BUSY_TIMEOUT_MS = 5000
VACUUM_CHUNK_PAGES = 2048
"""8 MB of 4 KiB pages given back per transaction."""


class StoreConnection:
    """One aiosqlite connection in WAL mode. Open with ``await cls.open(path)``; close with ``await close()``.

    Every write runs as one ``BEGIN IMMEDIATE … COMMIT`` while holding ``_lock``: aiosqlite
    transactions belong to the connection, not the task, so without the lock one task's statements
    would join (and roll back with) another task's transaction. Reads take the same lock so they
    never see another task's half-written transaction.

    Each concern (instances, costs, …) subclasses this with its own methods; ``Store`` combines them,
    so every concern shares this one connection.
    """

    def __init__(self, connection: aiosqlite.Connection, label: str, schema_version: int) -> None:
        self._db: aiosqlite.Connection | None = connection
        self._label = label
        self._lock = asyncio.Lock()
        self.schema_version = schema_version

    # -- lifecycle -------------------------------------------------------------------------------

    @classmethod
    async def open(cls, path: str | Path, *, max_bytes: int | None = None) -> Self:
        """Open (creating if needed) and migrate the database at ``path``; ``":memory:"`` works.

        A new database and its folder are private (0600 / 0700); a missing file is new, but an existing
        empty one is damage and is refused. On every refusal the connection is closed again.

        ``max_bytes`` caps the database size; writes beyond it fail like a full disk would.
        """
        label = str(path) if str(path) == ":memory:" else str(Path(path).expanduser())
        if label != ":memory:":
            await asyncio.to_thread(_prepare_location, Path(label), label)
        try:
            connection = await aiosqlite.connect(label, isolation_level=None)
        except sqlite3.Error as error:
            raise StoreError(f"cannot open database {label}: {error}", "cannot-open") from error
        try:
            version = await _prepare(connection, label, max_bytes)
        except BaseException:
            await connection.close()
            raise
        return cls(connection, label, version)

    async def close(self) -> None:
        """Wait for the write in progress, then close. Safe to call twice."""
        async with self._lock:
            if self._db is None:
                return
            connection, self._db = self._db, None
            try:
                await connection.execute("PRAGMA optimize")
            except sqlite3.Error:
                pass  # statistics are a nicety; closing must still happen
            await connection.close()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.close()

    @property
    def path(self) -> str:
        return self._label

    async def diagnostics(self) -> dict[str, Any]:
        """The connection's effective settings and size, for a health screen or a doctor command."""
        names = (
            "journal_mode",
            "synchronous",
            "busy_timeout",
            "foreign_keys",
            "auto_vacuum",
            "user_version",
            "page_size",
            "page_count",
            "freelist_count",
            "max_page_count",
        )
        result: dict[str, Any] = {}
        for name in names:
            rows = await self._fetch("read database settings", f"PRAGMA {name}")
            result[name] = rows[0][0]
        return result

    # -- transactions ------------------------------------------------------------------------------

    def _connection(self) -> aiosqlite.Connection:
        if self._db is None:
            raise StoreError(f"database {self._label} is closed", "closed")
        return self._db

    @asynccontextmanager
    async def _transaction(
        self, purpose: str, *, durable: bool = False
    ) -> AsyncIterator[aiosqlite.Connection]:
        """Hold the write lock for one ``BEGIN IMMEDIATE … COMMIT``; roll back on any error.

        ``durable`` syncs this commit to disk (synchronous=FULL) for rare writes worth the fsync.
        """
        async with self._lock:
            db = self._connection()
            try:
                if durable:
                    await db.execute("PRAGMA synchronous=FULL")
                await db.execute("BEGIN IMMEDIATE")
                yield db
                await db.execute("COMMIT")
            except BaseException as error:
                # Shielded so a second cancellation cannot skip the rollback. aiosqlite runs calls
                # in order, so the next writer's BEGIN still queues behind this ROLLBACK.
                await asyncio.shield(_rollback_quietly(db))
                if isinstance(error, sqlite3.Error):
                    raise self._error(purpose, error) from error
                raise
            finally:
                if durable:
                    await asyncio.shield(_set_normal_sync_quietly(db))

    @asynccontextmanager
    async def _reading(self, purpose: str) -> AsyncIterator[aiosqlite.Connection]:
        """Hold the lock for reads that take several statements; a failure becomes a ``StoreError``."""
        async with self._lock:
            db = self._connection()
            try:
                yield db
            except sqlite3.Error as error:
                raise self._error(purpose, error) from error

    async def _fetch(self, purpose: str, sql: str, params: Sequence[Any] = ()) -> list[sqlite3.Row]:
        async with self._reading(purpose) as db:
            return list(await db.execute_fetchall(sql, params))

    async def _incremental_vacuum(self) -> None:
        # execute() steps "PRAGMA incremental_vacuum" once, freeing one page; executescript runs
        # it to completion. The explicit BEGIN IMMEDIATE keeps it a proper write transaction.
        # A chunk of pages at a time, so other writers get the store between chunks: giving back
        # hundreds of megabytes (after a migration) takes seconds.
        left: int | None = None
        while True:
            async with self._lock:
                db = self._connection()
                try:
                    await db.executescript(
                        f"BEGIN IMMEDIATE; PRAGMA incremental_vacuum({VACUUM_CHUNK_PAGES}); COMMIT;")
                    rows = list(await db.execute_fetchall("PRAGMA freelist_count"))
                except sqlite3.Error as error:
                    await asyncio.shield(_rollback_quietly(db))
                    raise self._error("reclaim free space", error) from error
            # Without auto_vacuum=INCREMENTAL (a file made by another tool) nothing is given back: stop.
            if int(rows[0][0]) == 0 or int(rows[0][0]) == left:
                return
            left = int(rows[0][0])

    def _error(self, purpose: str, error: sqlite3.Error) -> StoreError:
        return describe_sqlite_error(self._label, purpose, error)


def describe_sqlite_error(label: str, purpose: str, error: sqlite3.Error) -> StoreError:
    """Turn a sqlite3 exception into a one-line ``StoreError`` that says what to do about it."""
    name = getattr(error, "sqlite_errorname", "") or ""
    message = str(error)
    if name.startswith("SQLITE_FULL") or "database or disk is full" in message:
        return StoreError(
            f"disk full: could not {purpose} in {label}; free some disk space", "disk-full"
        )
    if name.startswith(("SQLITE_BUSY", "SQLITE_LOCKED")) or "database is locked" in message:
        return StoreError(
            f"database busy: another process kept {label} locked for over "
            f"{BUSY_TIMEOUT_MS // 1000} s, so could not {purpose}",
            "busy",
        )
    if name.startswith("SQLITE_READONLY") or "readonly database" in message:
        return StoreError(
            f"database {label} is read-only, so could not {purpose}; make it and its folder writable by you",
            "read-only",
        )
    if name.startswith("SQLITE_CANTOPEN") or "unable to open database file" in message:
        return StoreError(
            f"cannot open database {label} to {purpose}: make it and its folder readable and writable by you, "
            "or choose another folder with --data-dir",
            "cannot-open",
        )
    if name.startswith(("SQLITE_CORRUPT", "SQLITE_NOTADB")) or "not a database" in message:
        return StoreError(
            f"database {label} is not a SQLite database or is damaged ({message}); "
            f"could not {purpose}",
            "corrupt",
        )
    return StoreError(f"database error in {label} while trying to {purpose}: {message}")


def _prepare_location(path: Path, label: str) -> None:
    """Make sure ``path`` can be opened as our database: a private folder, and either a new 0600
    database or an existing non-empty file (tightened to 0600 if others could read it)."""
    # Checked here because sqlite would only say "unable to open database file".
    if path.is_dir():
        raise StoreError(f"cannot open database {label}: it is a folder, not a file", "cannot-open")
    try:
        ensure_private_dir(path.parent)
    except OSError as error:
        raise StoreError(describe_os_error(error, path.parent, "create the folder"), "cannot-open") from error
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        _create_database_file(path, label)
        return
    except OSError as error:
        raise StoreError(describe_os_error(error, path, "open database"), "cannot-open") from error
    if size == 0:
        raise StoreError(
            f"{label} is empty (0 bytes): it may have been truncated; move it away to start fresh", "empty"
        )
    for suffix in ("", "-wal", "-shm"):
        try:
            tighten_private_file(Path(f"{label}{suffix}"))
        except OSError as error:
            log.warning("could not make %s%s private: %s", label, suffix, error)


def _create_database_file(path: Path, label: str) -> None:
    """Create a new database as a 0600 file and give it its name only once SQLite has written its
    header, so a 0-byte file at ``path`` always means damage, never a database still being made.
    SQLite gives the -wal and -shm files the same mode as the database."""
    temporary = path.with_name(f".{path.name}.{os.urandom(6).hex()}.tmp")
    try:
        os.close(os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0),
                         PRIVATE_FILE_MODE))
        try:
            connection = sqlite3.connect(temporary)
            try:
                # auto_vacuum only takes effect before the first table and must precede WAL mode.
                connection.execute("PRAGMA auto_vacuum=INCREMENTAL")
                connection.execute("PRAGMA journal_mode=WAL")
            finally:
                connection.close()
            publish_exclusively(temporary, path)  # if another process won the race, its file is used
        finally:
            temporary.unlink(missing_ok=True)
    except OSError as error:
        raise StoreError(describe_os_error(error, path, "create database"), "cannot-open") from error
    except sqlite3.Error as error:
        raise describe_sqlite_error(label, "create it", error) from error


async def _prepare(connection: aiosqlite.Connection, label: str, max_bytes: int | None) -> int:
    """Check the file, apply connection settings and migrate; returns the schema version."""
    try:
        await connection.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
        # The first real read of the header: a file that is not SQLite fails here.
        found = await _user_version(connection)
        _refuse_newer_schema(label, found)
        if found == 0 and not await _has_tables(connection):
            # Only takes effect before the first table exists, and must precede journal_mode=WAL.
            await connection.execute("PRAGMA auto_vacuum=INCREMENTAL")
        await connection.execute("PRAGMA journal_mode=WAL")
        await connection.execute("PRAGMA synchronous=NORMAL")
        await connection.execute("PRAGMA foreign_keys=ON")
        if max_bytes is not None:
            await _limit_size(connection, max_bytes)
        return await _migrate(connection, found)
    except sqlite3.Error as error:
        raise describe_sqlite_error(label, "open it", error) from error


def _refuse_newer_schema(label: str, found: int) -> None:
    if found > LATEST_VERSION:
        raise StoreError(
            f"database {label} has schema version {found}, written by a newer computehub-tui "
            f"(this one knows up to {LATEST_VERSION}); upgrade computehub-tui or use another file",
            "newer-schema",
        )


async def _migrate(connection: aiosqlite.Connection, found: int) -> int:
    version = found
    for migration in MIGRATIONS:
        if migration.version > version:
            await _apply_migration(connection, migration)
            version = migration.version
    return version


async def _apply_migration(connection: aiosqlite.Connection, migration: Migration) -> None:
    # Never executescript: it COMMITs first, which would split the DDL from its user_version bump.
    await connection.execute("BEGIN IMMEDIATE")
    try:
        # Re-read inside the write lock: another process may have migrated since we looked.
        if await _user_version(connection) < migration.version:
            for statement in migration.statements:
                await connection.execute(statement)
            if migration.convert is not None:
                await migration.convert(connection)
            await connection.execute(f"PRAGMA user_version={int(migration.version)}")
        await connection.execute("COMMIT")
    except BaseException:
        await asyncio.shield(_rollback_quietly(connection))
        raise


async def _limit_size(connection: aiosqlite.Connection, max_bytes: int) -> None:
    rows = list(await connection.execute_fetchall("PRAGMA page_size"))
    page_size = int(rows[0][0])
    await connection.execute(f"PRAGMA max_page_count={max(1, int(max_bytes) // page_size)}")


async def _user_version(connection: aiosqlite.Connection) -> int:
    rows = list(await connection.execute_fetchall("PRAGMA user_version"))
    return int(rows[0][0])


async def _has_tables(connection: aiosqlite.Connection) -> bool:
    rows = list(await connection.execute_fetchall("SELECT count(*) FROM sqlite_schema"))
    return int(rows[0][0]) > 0


async def _rollback_quietly(connection: aiosqlite.Connection) -> None:
    # SQLite may already have rolled back by itself (it does on SQLITE_FULL), so "no transaction
    # is active" is expected here, not a failure.
    try:
        await connection.execute("ROLLBACK")
    except (sqlite3.Error, ValueError):
        pass


async def _set_normal_sync_quietly(connection: aiosqlite.Connection) -> None:
    try:
        await connection.execute("PRAGMA synchronous=NORMAL")
    except (sqlite3.Error, ValueError):
        pass
