"""The daemon against loopback fakes of all four marketplaces (real adapters, real sockets): a rule starts a stopped
Vast machine once; a daemon stopped and started again finds the firing in the journal and does not repeat it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from daemon_process import Daemon
from fakes.accounts import Market, open_market

WAKE = 'rule "wake": IF provider == "vast" AND status == "stopped" THEN start\n'
PROBE = 'rule "probe": IF provider == "vast" AND status == "running" THEN notify toast "probe {label}"\n'
"""A rule new in the second run: its firing shows that run's first tick has evaluated ``wake`` (rules run in file
order within a tick)."""
START_PATH = r"/api/v0/instances/9088123/"


@pytest.fixture
def market(tmp_path: Path) -> Iterator[Market]:
    with open_market(tmp_path) as opened:
        yield opened


def daemon_until(market: Market, tmp_path: Path, run: int, wanted: str) -> list[str]:
    """Run the daemon until a line holds ``wanted``, then SIGTERM it; its lines (it must exit 0 by itself)."""
    env = {**market.environment(), "COMPUTEHUB_CONFIG": str(tmp_path / "config.toml")}
    daemon = Daemon(env, tmp_path / "data", tmp_path / f"daemon-{run}.err")
    try:
        daemon.wait_for(wanted, timeout=30)
        assert daemon.terminate() == 0, daemon.stderr()
    finally:
        daemon.stop_if_running()
    assert "Traceback" not in daemon.stderr()
    return daemon.lines


def test_a_rule_acts_once_through_the_real_adapter_and_a_restarted_daemon_does_not_repeat_it(
        market: Market, tmp_path: Path) -> None:
    rules = tmp_path / "automation.rules"
    (tmp_path / "config.toml").write_text(f'[monitor]\nssh_providers = []\n[automation]\nrules_file = "{rules}"\n',
                                          encoding="utf-8")
    rules.write_text(WAKE, encoding="utf-8")
    first = daemon_until(market, tmp_path, 1, "rule=wake")
    assert len([line for line in first if " rule-fired vast:9088123 rule=wake action=start result=ok" in line]) == 1
    assert len(market.vast.calls("PUT", START_PATH)) == 1
    assert first[-1].endswith("stopped - signal=SIGTERM")

    # The fake goes on reporting the machine stopped (as Vast does for a while after a start is accepted): within
    # the cooldown the second daemon takes the journal's word for it and sends nothing.
    rules.write_text(WAKE + PROBE, encoding="utf-8")
    second = daemon_until(market, tmp_path, 2, "rule=probe")
    assert not any("rule=wake" in line for line in second), second
    assert len(market.vast.calls("PUT", START_PATH)) == 1
