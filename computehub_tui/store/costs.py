"""Costs: idempotent accrual per instance (booked up to when, since when it bills compute) and hourly spend.

Every process (the TUI, each CLI command) books only the stretch of time after ``accrued_until``,
inside one write transaction, so the same hour is never booked twice however many processes look.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import aiosqlite

from computehub_tui.store.connection import StoreConnection

log = logging.getLogger(__name__)

HOUR_S = 3600
MAX_BOOKED_INTERVAL_S = 400 * 86400.0
"""Longest stretch booked at once, so a clock jump or an ancient row cannot write millions of hour rows."""

_UPSERT_RUN = """
    INSERT OR REPLACE INTO instance_runs (instance_key, billing, running_since, seen_at) VALUES (?, ?, ?, ?)
"""
_UPSERT_BOOKS = """
    INSERT OR REPLACE INTO instance_costs (instance_key, usd, updated_at, accrued_until, rate_hour)
    VALUES (?, ?, ?, ?, ?)
"""
_ADD_HOURLY_SPEND = """
    INSERT INTO spend_hourly (hour_start, instance_key, usd) VALUES (?, ?, ?)
    ON CONFLICT (hour_start, instance_key) DO UPDATE SET usd = usd + excluded.usd
"""


@dataclass(frozen=True, slots=True)
class Observation:
    """What one poll saw of one instance, as far as money and uptime are concerned."""

    key: str
    billing: bool
    """In a billing-compute state (provisioning, starting, running)."""
    rate_hour: float | None
    """What it costs per hour in its current state; None when the provider's figure is implausible,
    so nothing is booked for it (the stretch is booked later at the next plausible rate)."""
    last_started_at: float | None = None
    """When the provider says it last entered a billing state, for providers that report that."""


@dataclass(frozen=True, slots=True)
class SpendRow:
    """What one instance cost in one UTC hour."""

    hour_start: int
    instance_key: str
    usd: float
    label: str
    """The instance's label as last seen ("" when never seen)."""


@dataclass(frozen=True, slots=True)
class InstanceSpend:
    """What one instance was booked from an hour on: the hours before it, each hour since, and up to when."""

    before: float
    """USD booked in the hours that began before the first one asked for."""
    hours: tuple[tuple[int, float], ...]
    """``(hour_start, usd)`` of each booked hour from the first one asked for, oldest first."""
    booked_until: float | None
    """The end of the last booked stretch (None: nothing booked yet)."""


@dataclass(frozen=True, slots=True)
class CostState:
    usd: float
    """Cost so far, in USD."""
    running_since: float | None
    """When it last entered a billing-compute state; None when it is not in one, or when unknown."""


@dataclass(slots=True)
class _Run:
    billing: bool
    running_since: float | None
    seen_at: float


@dataclass(slots=True)
class _Books:
    usd: float
    accrued_until: float | None
    rate_hour: float | None
    """The rate last observed, used to close the books when an action changes the state."""


def hour_start(at: float) -> int:
    """The start of the UTC hour containing ``at``."""
    return int(at // HOUR_S) * HOUR_S


def hour_slices(start: float, end: float, rate_hour: float) -> list[tuple[int, float]]:
    """``rate_hour`` over ``[start, end)`` split at UTC hour boundaries: ``(hour_start, usd)`` pairs."""
    slices = []
    at = start
    while at < end:
        bucket = hour_start(at)
        upto = min(end, bucket + HOUR_S)
        slices.append((bucket, rate_hour * (upto - at) / HOUR_S))
        at = upto
    return slices


class CostStore(StoreConnection):
    async def accrue(self, observations: Sequence[Observation], now: float) -> dict[str, CostState]:
        """Book each observed instance's cost up to ``now`` (only what no process booked yet) and track
        since when it bills compute; returns every observed instance's state. One write transaction,
        so a CLI command and the TUI accruing at the same moment never double-book."""
        async with self._transaction("record costs") as db:
            return await _accrue(db, observations, now)

    async def record_transition(self, key: str, billing: bool, at: float) -> CostState:
        """An action moved ``key`` into (launch, start, restart) or out of (stop, destroy) billing at ``at``."""
        async with self._transaction(f"record the state of {key}") as db:
            return await _record_transition(db, key, billing, at)

    async def cost_states(self) -> dict[str, CostState]:
        """Every known instance's cost so far and since when it bills compute."""
        async with self._reading("read costs") as db:
            return await _cost_states(db)

    async def spend_between(self, start: float, end: float) -> float:
        """Total of the hour buckets whose start lies in ``[start, end)``."""
        rows = await self._fetch(
            "read spend",
            "SELECT coalesce(sum(usd), 0.0) FROM spend_hourly "
            "WHERE hour_start >= ? AND hour_start < ?",
            (start, end),
        )
        return float(rows[0][0])

    async def instance_spend(self, key: str, start: float) -> InstanceSpend:
        """``key``'s booked hours from the one containing ``start`` on, with everything booked before them."""
        first = hour_start(start)
        async with self._reading("read an instance's spend") as db:
            before = await db.execute_fetchall(
                "SELECT coalesce(sum(usd), 0.0) FROM spend_hourly WHERE instance_key = ? AND hour_start < ?",
                (key, first))
            hours = await db.execute_fetchall(
                "SELECT hour_start, usd FROM spend_hourly WHERE instance_key = ? AND hour_start >= ? "
                "ORDER BY hour_start", (key, first))
            until = await db.execute_fetchall(
                "SELECT accrued_until FROM instance_costs WHERE instance_key = ?", (key,))
        return InstanceSpend(float(next(iter(before))[0]), tuple((int(hour), float(usd)) for hour, usd in hours),
                             next((float(row[0]) for row in until if row[0] is not None), None))

    async def spend_rows(self, start: float, end: float) -> list[SpendRow]:
        """Every instance's hour buckets whose start lies in ``[start, end)``, with its last label."""
        rows = await self._fetch(
            "read spend",
            "SELECT s.hour_start, s.instance_key, s.usd, coalesce(json_extract(i.snapshot, '$.label'), '') "
            "FROM spend_hourly AS s LEFT JOIN instances AS i ON i.key = s.instance_key "
            "WHERE s.hour_start >= ? AND s.hour_start < ? ORDER BY s.hour_start, s.instance_key",
            (start, end),
        )
        return [SpendRow(int(hour), key, float(usd), str(label)) for hour, key, usd, label in rows]


async def _accrue(db: aiosqlite.Connection, observations: Sequence[Observation], now: float) -> dict[str, CostState]:
    """Book every observed instance up to ``now``; call inside a write transaction. Returns each one's state."""
    ledger = await _Ledger.load(db, [o.key for o in observations])
    for observation in observations:
        ledger.observe(observation, now)
    await ledger.save(db, now)
    return {o.key: ledger.state(o.key) for o in observations}


async def _record_transition(db: aiosqlite.Connection, key: str, billing: bool, at: float) -> CostState:
    """An action (launch, start, stop, …) moved ``key`` into or out of billing at ``at``; call inside a
    write transaction. The stretch before it is booked at the rate last seen."""
    ledger = await _Ledger.load(db, [key])
    ledger.transition(key, billing, at)
    await ledger.save(db, at)
    return ledger.state(key)


async def _cost_states(db: aiosqlite.Connection) -> dict[str, CostState]:
    """Every known instance's cost so far and billing-run start."""
    ledger = await _Ledger.load(db, None)
    return {key: ledger.state(key) for key in ledger.runs.keys() | ledger.books.keys()}


class _Ledger:
    """The rows one transaction reads, changes in memory and writes back."""

    def __init__(self, runs: dict[str, _Run], books: dict[str, _Books]) -> None:
        self.runs = runs
        self.books = books
        self._spend: list[tuple[int, str, float]] = []
        self._touched: set[str] = set()

    @classmethod
    async def load(cls, db: aiosqlite.Connection, keys: Iterable[str] | None) -> _Ledger:
        where: str = ""
        params: tuple[str, ...] = ()
        if keys is not None:
            where, params = " WHERE instance_key IN (SELECT value FROM json_each(?))", (json.dumps(list(keys)),)
        run_rows = await db.execute_fetchall(
            f"SELECT instance_key, billing, running_since, seen_at FROM instance_runs{where}", params)
        book_rows = await db.execute_fetchall(
            f"SELECT instance_key, usd, accrued_until, rate_hour FROM instance_costs{where}", params)
        runs = {key: _Run(bool(billing), since, seen) for key, billing, since, seen in run_rows}
        books = {key: _Books(usd, until, rate) for key, usd, until, rate in book_rows}
        return cls(runs, books)

    def observe(self, observation: Observation, now: float) -> None:
        key = observation.key
        run = self.runs.get(key)
        if run is not None and now < run.seen_at:
            return  # another process has already recorded a later look at this instance
        since = _next_running_since(run, observation, now)
        books = self.books.get(key)
        if run is not None and run.billing != observation.billing and books is not None:
            # Until it is known to have changed (the provider's start time, or now) it was in the state
            # last seen, so that stretch costs what that state cost.
            changed_at = since if observation.billing and since is not None else now
            self._close_books(key, books, changed_at)
        if observation.rate_hour is not None:
            start = _booking_start(books, observation.billing, since, now)
            self._book(key, start, now, observation.rate_hour)
        self.runs[key] = _Run(observation.billing, since, now)
        self._touched.add(key)

    def transition(self, key: str, billing: bool, at: float) -> None:
        run = self.runs.get(key)
        if run is not None and at < run.seen_at:
            return
        books = self.books.get(key)
        if books is not None:
            self._close_books(key, books, at)
            books.rate_hour = None  # the rate in the new state is unknown until it is seen
        if billing:
            since = run.running_since if run is not None and run.billing else at
        else:
            since = None
        self.runs[key] = _Run(billing, since, at)
        self._touched.add(key)

    def state(self, key: str) -> CostState:
        run = self.runs.get(key)
        books = self.books.get(key)
        return CostState(books.usd if books else 0.0, run.running_since if run and run.billing else None)

    async def save(self, db: aiosqlite.Connection, now: float) -> None:
        touched = sorted(self._touched)
        await db.executemany(_UPSERT_RUN, [
            (key, int(run.billing), run.running_since, run.seen_at)
            for key in touched if (run := self.runs.get(key)) is not None
        ])
        await db.executemany(_UPSERT_BOOKS, [
            (key, books.usd, now, books.accrued_until, books.rate_hour)
            for key in touched if (books := self.books.get(key)) is not None
        ])
        await db.executemany(_ADD_HOURLY_SPEND, self._spend)

    def _close_books(self, key: str, books: _Books, at: float) -> None:
        """Book up to ``at`` at the rate last seen."""
        if books.accrued_until is not None and books.rate_hour is not None:
            self._book(key, books.accrued_until, at, books.rate_hour)

    def _book(self, key: str, start: float, end: float, rate_hour: float) -> None:
        if not (math.isfinite(rate_hour) and rate_hour >= 0 and math.isfinite(start) and math.isfinite(end)):
            log.warning("not booking cost for %s: rate %r over [%r, %r] is not a usable number",
                        key, rate_hour, start, end)
            return
        slices = hour_slices(max(start, end - MAX_BOOKED_INTERVAL_S), end, rate_hour)
        books = self.books.setdefault(key, _Books(0.0, None, None))
        total = books.usd + sum(usd for _, usd in slices)
        if not math.isfinite(total):
            log.warning("not booking cost for %s: rate %r makes the total overflow", key, rate_hour)
            return
        books.usd = total
        books.accrued_until = end if books.accrued_until is None else max(books.accrued_until, end)
        books.rate_hour = rate_hour
        self._spend.extend((bucket, key, usd) for bucket, usd in slices if usd > 0)
        self._touched.add(key)


def _next_running_since(run: _Run | None, observation: Observation, now: float) -> float | None:
    """Since when the instance has been in a billing state, after this observation (None = not billing
    or unknown)."""
    if not observation.billing:
        return None
    hint = observation.last_started_at
    if run is None:
        return hint  # first sight: only the provider can say (or our launch record, which makes a run)
    if not run.billing:
        # Seen entering billing: it happened since the last look; the provider may say exactly when.
        return hint if hint is not None and run.seen_at < hint <= now else now
    return run.running_since if run.running_since is not None else hint


def _booking_start(books: _Books | None, billing: bool, since: float | None, now: float) -> float:
    if books is None or books.accrued_until is None:
        # First sight: a machine already billing is estimated from when it started, exactly once.
        return since if billing and since is not None else now
    if billing and since is not None and since > books.accrued_until:
        return since  # it (re)started after the books were last closed: the gap was not compute time
    return books.accrued_until
