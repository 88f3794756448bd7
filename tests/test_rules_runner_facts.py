"""Facts for rules: instance and account values in the documented units, unknown as None, series for windows."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest

from computehub_tui.domain.models import InstanceStatus, MetricSample
from computehub_tui.domain.status_timeline import StatusChange
from computehub_tui.engine.automation.facts import MetricPoints, price_changes, sample_interval
from computehub_tui.rules.model import RuleSet
from tests.rules_support import MINUTE, Machines, offer, session

INSTANCE_FIELDS = {"status", "provider", "gpu", "gpu_count", "label", "project", "pricing", "gpu_util", "gpu_util_min",
                   "gpu_util_avg", "vram_used_pct", "vram_used_gb", "gpu_temp", "power_w", "cpu_util", "cost_per_hour",
                   "cost_so_far", "uptime", "idle_for", "price_change_24h", "project_spend_today"}


async def test_instance_and_account_facts_in_their_units(tmp_path: Path, utc: None) -> None:
    machines = Machines()
    machines.add("1", price=2.0, util=3.0, label="proj-llm-train")
    machines.vram_used["1"] = 12.0
    machines.add("2", status=InstanceStatus.STOPPED, util=None)
    async with session(tmp_path / "db", machines, RuleSet()) as s:
        await s.poll()
        await s.minutes(30)
        now = s.clock.now()
        first, second = s.hub.rules.runner.facts.instances(now)
        assert set(first.values) == INSTANCE_FIELDS
        v = first.values
        assert (v["status"], v["provider"], v["gpu"], v["gpu_count"]) == ("running", "vast", "RTX 4090", 1.0)
        assert (v["gpu_util"], v["gpu_util_min"], v["gpu_util_avg"]) == (3.0, 3.0, 3.0)
        assert v["vram_used_gb"] == 12.0 and v["vram_used_pct"] == 50.0 and v["gpu_temp"] == 60.0
        assert v["cost_per_hour"] == 2.0 and abs(float(v["cost_so_far"] or 0) - 1.0) < 1e-6  # $2/h for 30 min
        assert v["idle_for"] == 30 * MINUTE
        assert v["power_w"] is None and v["cpu_util"] is None and v["pricing"] is None  # unknown, not zero
        assert v["uptime"] is None  # first seen running, start unknown
        assert first.fresh and len(first.series["gpu_util"].points) == 31
        assert first.series["gpu_util"].interval_s == MINUTE
        assert second.values["gpu_util"] is None and second.values["cost_per_hour"] == 0.0
        account = s.hub.rules.runner.facts.account()
        assert account.values["running_count"] == 1.0 and account.values["burn_rate"] == 2.0
        assert abs(float(account.values["spend_today"] or 0) - 1.0) < 1e-6


async def test_only_windowed_fields_get_series_bounded_to_their_window(tmp_path: Path) -> None:
    machines = Machines()
    machines.add("1", util=3.0)
    async with session(tmp_path / "db", machines, RuleSet()) as s:
        await s.minutes(60)
        [facts] = s.hub.rules.runner.facts.instances(s.clock.now(), {"gpu_util": 10 * MINUTE})
        assert set(facts.series) == {"gpu_util"}
        points = facts.series["gpu_util"].points
        assert len(points) == 15 and points[0][0] >= s.clock.now() - 14 * MINUTE  # window + 4 intervals


async def test_a_sample_older_than_three_minutes_is_unknown(tmp_path: Path) -> None:
    machines = Machines()
    machines.add("1", util=0.0)
    async with session(tmp_path / "db", machines, RuleSet()) as s:
        await s.poll()
        machines.util["1"] = None
        await s.minutes(4)
        [facts] = s.hub.rules.runner.facts.instances(s.clock.now())
        assert facts.values["gpu_util"] is None and facts.values["idle_for"] is None


def test_price_change_is_the_median_per_gpu_price_against_a_day_ago() -> None:
    now = [offer("a", 1.2, 1), offer("b", 1.4, 2), offer("c", 9.0, 3, available=False)]
    assert price_changes(now, {("vast", "RTX 4090"): 1.0}) == {("vast", "RTX 4090"): pytest.approx(30.0)}
    assert price_changes(now, {}) == {}


def test_a_status_series_extended_tick_by_tick_equals_one_built_at_once() -> None:
    change = StatusChange("vast:1", 1000.0, InstanceStatus.PROVISIONING)
    cached = MetricPoints()
    now, window = 1000.0, 600.0
    for tick, (step, window) in enumerate([(5.0, 600.0)] * 200 + [(30.0, 1800.0)] * 5 + [(5.0, 300.0)] * 50):
        now += step
        since = now - window - 20.0
        once = MetricPoints().status_window("vast:1", change, now, since, 5.0)  # nothing cached: from scratch
        assert cached.status_window("vast:1", change, now, since, 5.0) == once, tick
        assert once[0][0] <= max(since, change.at) + 10.0 and once[-1] == (now, "provisioning")
        assert all(later - earlier <= 10.0 for (earlier, _), (later, _) in itertools.pairwise(once))


def test_a_machine_whose_data_is_missing_half_the_time_keeps_its_short_sample_interval() -> None:
    # Seen for one 2 s step, then 13 s without data, over and over: the median gap would be 13 s, and a FOR 8s
    # window would then hold on a single sample; its gaps must count as missing data.
    times = list(itertools.accumulate([2.0, 13.0] * 6, initial=1000.0))
    gappy = [MetricSample(time=t, gpu_util=(0.0,)) for t in times]
    assert sample_interval(gappy, 5.0) == 2.0
    steady = [MetricSample(time=1000.0 + 15.0 * n + (0.3 if n % 2 else 0.0), gpu_util=(0.0,)) for n in range(20)]
    assert 14.0 <= sample_interval(steady, 5.0) <= 15.3  # jitter barely moves it
    assert sample_interval([], 5.0) == 5.0
