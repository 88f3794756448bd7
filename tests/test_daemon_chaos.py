"""The real daemon against loopback Vast and RunPod fakes with an idle, a busy and a gappy machine, SIGKILLed at
seeded random points (one of them while the provider is still answering the stop) and started again: the idle
machine is stopped exactly once, the others never, each firing is in the audit log once, and the last daemon
exits 0 on SIGTERM and gives the lease up."""

from __future__ import annotations

import asyncio
import copy
import random
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from daemon_process import LINE_TIMEOUT_S, Daemon, daemon_environment
from fakes import runpod as runpod_wire
from fakes import vast as vast_wire
from fakes.accounts import Market, open_market
from fakes.utilisation import Readings, busy, gappy, idle

from computehub_tui.domain.history import AuditEntry
from computehub_tui.engine.automation.lease import LEASE_NAME
from computehub_tui.engine.keys import DATABASE_NAME
from computehub_tui.store import Store
from computehub_tui.store.automation import JOURNAL_DONE, JournalEntry, LeaseHolder

SEED = 1107
IDLE_ID, BUSY_ID, GAPPY_ID = 9300001, 9300002, "g4ppyp0dxk2v01"
IDLE_STOP = 'rule "idle-stop": IF gpu_util < 5 FOR 8s AND status == "running" THEN stop\n'
PROBE = 'rule "probe": IF gpu_util < 5 FOR 8s AND status == "running" THEN notify toast "probe {label}"\n'
"""Idle-stop's condition, after it in the file and new in the last run: its firing shows that run has evaluated
idle-stop on a full window (rules run in file order within a tick)."""
WAKE_ID = vast_wire.STOPPED["id"]
WAKE = 'rule "wake": IF provider == "vast" AND status == "stopped" THEN start\n'
STOP_REPLY_S = 2.5
"""The fake applies a stop at once but takes this long to answer it: a kill in between is mid-action."""
RANDOM_KILLS = 2
"""Daemons killed at a random moment after the mid-action kill (one may land while it reconciles)."""


@pytest.fixture
def market(tmp_path: Path) -> Iterator[Market]:
    with open_market(tmp_path) as opened:
        running = vast_wire.RUNNING
        opened.vast.instances = {IDLE_ID: {**copy.deepcopy(running), "id": IDLE_ID, "label": "idle-box"},
                                 BUSY_ID: {**copy.deepcopy(running), "id": BUSY_ID, "label": "train-box"}}
        opened.vast.utilisation.update({str(IDLE_ID): idle(), str(BUSY_ID): busy(work_s=6.0, dip_s=2.0,
                                                                                  clock=Readings())})
        opened.vast.state_delay_s = STOP_REPLY_S
        opened.runpod.pods = {GAPPY_ID: {**copy.deepcopy(runpod_wire.SSH_POD), "id": GAPPY_ID, "name": "gappy-box"}}
        # In seconds, unlike the busy machine: counted in polls, a seen stretch split by a daemon's kill would join
        # its halves across the restart, and a slow steady sampler at 0 % is idle by the rules' own semantics.
        # Short stretches (10 s a cycle at 2 s polls), so even a loaded machine's polls land in each of them.
        opened.runpod.utilisation[GAPPY_ID] = gappy(seen_s=3.0, silent_s=4.0, failing_s=3.0)
        yield opened


@dataclass(frozen=True)
class Remembered:
    """What the store holds after the runs: the lease holder, the action journal and the audit log."""

    lease: LeaseHolder | None
    journal: list[JournalEntry]
    audit: list[AuditEntry]


def remembered(data_dir: Path) -> Remembered:
    async def read() -> Remembered:
        store = await Store.open(data_dir / DATABASE_NAME)
        try:
            return Remembered(await store.lease_holder(LEASE_NAME), await store.journal_recent(),
                              await store.audit_log())
        finally:
            await store.close()
    return asyncio.run(read())


def test_killed_at_random_points_the_daemon_stops_the_idle_machine_once_and_never_the_busy_or_gappy_ones(
        market: Market, tmp_path: Path) -> None:
    rng = random.Random(SEED)
    rules, data_dir = tmp_path / "automation.rules", tmp_path / "data"
    rules.write_text(IDLE_STOP, encoding="utf-8")
    env = daemon_environment(market, tmp_path, rules)
    vast = market.vast
    daemons: list[Daemon] = []

    def start() -> Daemon:
        daemons.append(Daemon(env, data_dir, tmp_path / f"daemon-{len(daemons) + 1}.err"))
        daemons[-1].wait_for(" started ")
        return daemons[-1]

    try:
        # Killed early, before its window could fill: it leaves its lease behind, held by a dead process.
        first = start()
        first.alive_for(rng.uniform(0.2, 2.0))
        first.kill()

        # Killed mid-action: the fake has made the change but not answered yet.
        second = start()
        second.wait_for("lease - held by this daemon")  # the dead holder's lease was taken over at once
        assert vast.wait_until(lambda: bool(vast.state_changes), timeout=LINE_TIMEOUT_S), second.lines
        second.alive_for(rng.uniform(0.1, STOP_REPLY_S - 0.5))
        second.kill()
        assert not any(" rule-fired " in line for line in second.lines), second.lines

        for _ in range(RANDOM_KILLS):
            killed = start()
            killed.alive_for(rng.uniform(0.3, 2.0))
            killed.kill()

        rules.write_text(IDLE_STOP + PROBE, encoding="utf-8")
        last = start()
        last.wait_for(f"rule-fired vast:{IDLE_ID} rule=probe")
        assert last.terminate() == 0, last.stderr()
        assert last.lines[-1].endswith("stopped - signal=SIGTERM"), last.lines
    finally:
        for number, daemon in enumerate(daemons, 1):
            daemon.stop_if_running()
            print(f"-- daemon {number}", *daemon.lines, sep="\n")  # shown by pytest only when the test fails

    stops = vast.calls("PUT", rf"/api/v0/instances/({IDLE_ID}|{BUSY_ID})/")
    assert [(r.path, r.json()) for r in stops] == [(f"/api/v0/instances/{IDLE_ID}/", {"state": "stopped"})]
    assert vast.state_changes == [(IDLE_ID, "stopped")]
    assert not market.runpod.graphql_calls("podStop") and not market.runpod.calls("POST", r"/v2/pods/.*/action")
    for daemon in daemons:
        assert "Traceback" not in daemon.stderr(), daemon.stderr()
    after = remembered(data_dir)
    assert after.lease is None
    assert sorted((e.rule, e.target, e.action, e.state, e.attempts) for e in after.journal) == [
        ("idle-stop", f"vast:{IDLE_ID}", "stop", JOURNAL_DONE, 1), ("probe", f"vast:{IDLE_ID}", "notify toast",
                                                                   JOURNAL_DONE, 1)], [
        (e.rule, e.target, e.state, e.evidence) for e in after.journal]
    fired = [(e.action, e.target, e.outcome) for e in after.audit if e.actor == "rule:idle-stop"]
    assert fired == [("reconciled stop", f"vast:{IDLE_ID}", "ok")], after.audit
    # The busy and gappy machines were seen as scripted: busy with dips, gappy at 0 % between gaps and errors.
    busy_readings = {stretch.util for key, stretch in vast.served if key == str(BUSY_ID)}
    assert 0.0 in busy_readings and max(u for u in busy_readings if u is not None) >= 90, busy_readings
    gappy_served = {(stretch.util, stretch.error) for _, stretch in market.runpod.served}
    assert {(0.0, False), (None, False), (0.0, True)} <= gappy_served, gappy_served


def test_sigterm_while_the_provider_answers_an_action_lets_it_finish_and_journals_it(tmp_path: Path) -> None:
    with open_market(tmp_path) as market:
        market.vast.state_delay_s = 2.0
        rules = tmp_path / "automation.rules"
        rules.write_text(WAKE, encoding="utf-8")
        daemon = Daemon(daemon_environment(market, tmp_path, rules), tmp_path / "data", tmp_path / "daemon.err")
        try:
            assert market.vast.wait_until(lambda: bool(market.vast.state_changes), timeout=LINE_TIMEOUT_S)
            assert daemon.terminate() == 0, daemon.stderr()
        finally:
            daemon.stop_if_running()
    fired = [i for i, line in enumerate(daemon.lines) if f" rule-fired vast:{WAKE_ID} rule=wake action=start "
             "result=ok" in line]
    assert len(fired) == 1 and daemon.lines[-1].endswith("stopped - signal=SIGTERM"), daemon.lines
    assert fired[0] > next(i for i, line in enumerate(daemon.lines) if " stopping - signal=SIGTERM" in line)
    journal = remembered(tmp_path / "data").journal
    assert [(e.rule, e.action, e.state) for e in journal] == [("wake", "start", JOURNAL_DONE)], journal
