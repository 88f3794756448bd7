"""The action journal in the store: idempotency keys, states, open cooldown windows, what is in flight, counts."""

from __future__ import annotations

from pathlib import Path

import pytest

from computehub_tui.store import Store
from computehub_tui.store.automation import (
    JOURNAL_DONE,
    JOURNAL_DRY_RUN,
    JOURNAL_FAILED,
    JOURNAL_IN_FLIGHT,
    JournalEntry,
)

T0 = 1_790_000_000.0
COOLDOWN = 900.0


def entry(rule: str = "idle-stop", target: str = "vast:1", action: str = "stop", at: float = T0, *,
          state: str = JOURNAL_IN_FLIGHT, dry_run: bool = False) -> JournalEntry:
    return JournalEntry(JournalEntry.key_for(rule, target, action, at), rule, target, action, at, at + COOLDOWN,
                        state, 0, at, evidence="gpu_util=0.0 for 30m", dry_run=dry_run)


async def test_one_firing_per_idempotency_key_even_from_two_connections(tmp_path: Path) -> None:
    async with await Store.open(tmp_path / "db") as first, await Store.open(tmp_path / "db") as second:
        assert await first.journal_open(entry())
        assert not await second.journal_open(entry())  # the same rule, instance, action and window
        assert await second.journal_open(entry(at=T0 + COOLDOWN))  # the next window is a new firing
        assert len(await first.journal_recent()) == 2


def test_the_key_names_rule_instance_action_and_window() -> None:
    key = JournalEntry.key_for("idle-stop", "vast:1", "stop", T0)
    assert key == JournalEntry.key_for("idle-stop", "vast:1", "stop", T0)
    assert len({key, JournalEntry.key_for("idle-stop", "vast:2", "stop", T0),
                JournalEntry.key_for("idle-stop", "vast:1", "destroy", T0),
                JournalEntry.key_for("other", "vast:1", "stop", T0),
                JournalEntry.key_for("idle-stop", "vast:1", "stop", T0 + 1)}) == 5
    # A rule name with the separator in it cannot collide with another rule's key.
    assert JournalEntry.key_for("a:b", "c", "stop", T0) != JournalEntry.key_for("a", "b:c", "stop", T0)


async def test_attempts_and_results_are_recorded_before_and_after(tmp_path: Path) -> None:
    async with await Store.open(tmp_path / "db") as store:
        row = entry()
        await store.journal_open(row)
        await store.journal_update(row.idem_key, state=JOURNAL_IN_FLIGHT, at=T0, attempted=True)
        [in_flight] = await store.journal_in_flight()
        assert (in_flight.attempts, in_flight.state) == (1, JOURNAL_IN_FLIGHT)
        await store.journal_update(row.idem_key, state=JOURNAL_FAILED, at=T0, result="502")
        await store.journal_update(row.idem_key, state=JOURNAL_IN_FLIGHT, at=T0 + 30, attempted=True)
        await store.journal_update(row.idem_key, state=JOURNAL_DONE, at=T0 + 30, result="stop vast:1: done")
        [done] = await store.journal_recent()
        assert (done.state, done.attempts, done.last_attempt_at, done.result, done.evidence) == (
            JOURNAL_DONE, 2, T0 + 30, "stop vast:1: done", "gpu_util=0.0 for 30m")
        assert await store.journal_in_flight() == []
        with pytest.raises(ValueError, match="unknown journal state"):
            await store.journal_update(row.idem_key, state="maybe", at=T0)


async def test_open_windows_and_the_count_of_live_destructive_firings(tmp_path: Path) -> None:
    async with await Store.open(tmp_path / "db") as store:
        await store.journal_open(entry(target="vast:1", at=T0 - 3600))
        await store.journal_open(entry(target="vast:2", at=T0 - 600))
        await store.journal_open(entry(target="vast:3", at=T0 - 60, state=JOURNAL_DRY_RUN, dry_run=True))
        await store.journal_open(entry(target="vast:4", action="notify toast", at=T0 - 30))
        assert [e.target for e in await store.journal_open_windows(T0)] == ["vast:2", "vast:3", "vast:4"]
        assert await store.journal_firings_since(T0 - 3600, ["stop", "destroy"]) == 2  # dry-run and notify left out
        assert await store.journal_firings_since(T0 - 3599, ["stop"]) == 1
