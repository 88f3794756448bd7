"""The evaluator: three-valued logic, FOR windows at their edges, globs, evidence and reasons."""

from __future__ import annotations

import math

import pytest

from computehub_tui.rules.evaluate import evaluate, evidence_text
from computehub_tui.rules.model import AccountFacts, Condition, InstanceFacts, Series, Truth, Value, Verdict
from computehub_tui.rules.parser import parse_rules

INTERVAL = 15.0
NO_ACCOUNT = AccountFacts({})


def condition(text: str) -> Condition:
    result = parse_rules(f"IF {text} THEN notify toast")
    assert result.ok, [error.render() for error in result.errors]
    return result.rules[0].condition


def facts(values: dict[str, Value] | None = None, **series: Series) -> InstanceFacts:
    return InstanceFacts("vast:1", values or {}, series)


def trace(*segments: tuple[float, Value], start: float = 0.0, interval: float = INTERVAL) -> Series:
    """Samples every ``interval`` from ``start``: each segment is (duration in s, value)."""
    points: list[tuple[float, Value]] = []
    at = start
    for duration, value in segments:
        end = at + duration
        while at < end - 1e-9:
            points.append((at, value))
            at += interval
    return Series(tuple(points), interval)


def judge(text: str, instance: InstanceFacts | None, now: float, account: AccountFacts = NO_ACCOUNT) -> Verdict:
    return evaluate(condition(text), instance, account, now)


# -- FOR windows ---------------------------------------------------------------------------------------------------


def test_idle_fires_after_the_window_and_not_one_sample_before() -> None:
    # Busy for an hour, then idle: the first idle sample is at t=3600.
    series = trace((3600, 90.0), (3600, 1.0))
    instance = facts({"gpu_util": 1.0}, gpu_util=series)
    first_idle = 3600.0
    for now in (first_idle + 1800 - 2 * INTERVAL, first_idle + 1800 - INTERVAL):
        verdict = judge("gpu_util < 5 FOR 30m", instance, now)
        assert verdict.truth is Truth.FALSE, now
        assert verdict.reason.startswith("gpu_util=90.0% ")
    fired = judge("gpu_util < 5 FOR 30m", instance, first_idle + 1800)
    assert fired.truth is Truth.TRUE
    assert evidence_text(fired) == "gpu_util=1.0% < 5.0% for 30m"


def test_short_dips_shorter_than_the_window_never_hold() -> None:
    # Training at 95 % with a 2-minute 0 % dip (a checkpoint) every 10 minutes, for 3 hours.
    series = trace(*[segment for _ in range(18) for segment in ((480, 95.0), (120, 0.0))])
    instance = facts(gpu_util=series)
    truths = {judge("gpu_util < 5 FOR 30m", instance, at).truth for at, _ in series.points}
    assert truths == {Truth.FALSE}
    # The same dips do hold a window shorter than a dip: the test can fail.
    assert judge("gpu_util < 5 FOR 1m", instance, 480 + 105).truth is Truth.TRUE


def test_a_gap_longer_than_three_intervals_restarts_the_window() -> None:
    before = trace((1800, 0.0))
    after = trace((1800, 0.0), start=1800 + 4 * INTERVAL)  # 5 intervals between two samples
    series = Series(before.points + after.points, INTERVAL)
    instance = facts(gpu_util=series)
    just_after_gap = 1800 + 4 * INTERVAL
    verdict = judge("gpu_util < 5 FOR 30m", instance, just_after_gap + 600)
    assert verdict.truth is Truth.UNKNOWN
    assert verdict.reason == "gpu_util samples cover 10m of 30m"
    assert judge("gpu_util < 5 FOR 30m", instance, just_after_gap + 1800).truth is Truth.TRUE
    # One interval of slack at the window's start (sampling jitter), not two.
    assert judge("gpu_util < 5 FOR 30m", instance, just_after_gap + 1800 - INTERVAL).truth is Truth.TRUE
    assert judge("gpu_util < 5 FOR 30m", instance, just_after_gap + 1800 - 2 * INTERVAL).truth is Truth.UNKNOWN


def test_a_gap_of_exactly_three_intervals_does_not_restart_it() -> None:
    points = trace((900, 0.0)).points + trace((1800, 0.0), start=900 - INTERVAL + 3 * INTERVAL).points
    instance = facts(gpu_util=Series(points, INTERVAL))
    assert judge("gpu_util < 5 FOR 30m", instance, points[-1][0]).truth is Truth.TRUE


def test_a_data_gap_never_counts_as_idle() -> None:
    series = trace((3600, 0.0))
    instance = facts(gpu_util=series)
    last = series.points[-1][0]
    assert judge("gpu_util < 5 FOR 30m", instance, last + 3 * INTERVAL).truth is Truth.TRUE
    stale = judge("gpu_util < 5 FOR 30m", instance, last + 240)
    assert stale.truth is Truth.UNKNOWN and stale.reason == "no gpu_util samples for 4m"
    assert judge("not gpu_util < 5 FOR 30m", instance, last + 240).truth is Truth.UNKNOWN
    assert judge("gpu_util < 5 FOR 30m", facts(), 100.0).reason == "no gpu_util samples"


def test_an_unknown_sample_in_the_window_makes_it_unknown_and_one_before_it_does_not() -> None:
    series = trace((600, 0.0), (15, None), (3600, 0.0))
    instance = facts(gpu_util=series)
    unknown_at = 600.0
    inside = judge("gpu_util < 5 FOR 30m", instance, unknown_at + 1200)
    assert inside.truth is Truth.UNKNOWN and inside.reason == "gpu_util unknown 20m ago"
    assert judge("gpu_util < 5 FOR 30m", instance, unknown_at + 1800 + INTERVAL).truth is Truth.TRUE
    nan = trace((600, 0.0), (15, math.nan), (600, 0.0))
    assert judge("gpu_util < 5 FOR 10m", facts(gpu_util=nan), 900.0).truth is Truth.UNKNOWN


def test_the_window_must_be_covered_from_one_interval_after_its_start() -> None:
    series = trace((3600, 0.0), start=1000.0)
    instance = facts(gpu_util=series)
    assert judge("gpu_util < 5 FOR 30m", instance, 1000.0 + 1800 + INTERVAL).truth is Truth.TRUE
    assert judge("gpu_util < 5 FOR 30m", instance, 1000.0 + 1800 + INTERVAL - 0.5).truth is Truth.TRUE
    short = judge("gpu_util < 5 FOR 30m", instance, 1000.0 + 720)
    assert short.truth is Truth.UNKNOWN and short.reason == "gpu_util samples cover 12m of 30m"
    jittered = Series(tuple((at + 0.5, value) for at, value in series.points), INTERVAL)
    # Oldest sample 0.5 s later than one interval after the start: not covered, one sample later it is.
    assert judge("gpu_util < 5 FOR 30m", facts(gpu_util=jittered), 1000.0 + 1800 - INTERVAL).truth \
        is Truth.UNKNOWN


def test_samples_after_now_are_ignored() -> None:
    series = trace((1800, 0.0), (600, 90.0))
    assert judge("gpu_util < 5 FOR 20m", facts(gpu_util=series), 1800 - INTERVAL).truth is Truth.TRUE


def test_for_on_a_text_field() -> None:
    series = trace((300, "starting"), (1500, "provisioning"))
    instance = facts({"status": "provisioning"}, status=series)
    assert judge('status == "provisioning" FOR 20m', instance, 300 + 1200).truth is Truth.TRUE
    assert judge('status == "provisioning" FOR 20m', instance, 300 + 1200 - INTERVAL).truth is Truth.FALSE
    assert evidence_text(judge('status == "provisioning" FOR 20m', instance, 1785)) == "status=provisioning for 24m"


def test_for_binds_to_its_comparison_and_the_other_reads_now() -> None:
    instance = facts({"status": "running"}, gpu_util=trace((3600, 2.0)))
    verdict = judge('gpu_util < 5 FOR 30m AND status == "running"', instance, 3585)
    assert verdict.truth is Truth.TRUE
    assert evidence_text(verdict) == "gpu_util=2.0% < 5.0% for 59m, status=running"
    assert judge('gpu_util < 5 FOR 30m AND status == "running"', facts({"status": "exited"},
                 gpu_util=trace((3600, 2.0))), 3585).truth is Truth.FALSE


# -- three-valued logic ---------------------------------------------------------------------------------------------

TRUE, FALSE, UNKNOWN = 'label == "yes"', 'label == "no"', "gpu_util < 5"
"""Over facts where label is "yes" and gpu_util is unknown."""
KLEENE = facts({"label": "yes", "gpu_util": None})


@pytest.mark.parametrize(("text", "truth"), [
    (f"{TRUE} and {TRUE}", Truth.TRUE), (f"{TRUE} and {FALSE}", Truth.FALSE),
    (f"{FALSE} and {UNKNOWN}", Truth.FALSE), (f"{UNKNOWN} and {FALSE}", Truth.FALSE),
    (f"{TRUE} and {UNKNOWN}", Truth.UNKNOWN), (f"{UNKNOWN} and {UNKNOWN}", Truth.UNKNOWN),
    (f"{TRUE} or {UNKNOWN}", Truth.TRUE), (f"{UNKNOWN} or {TRUE}", Truth.TRUE),
    (f"{FALSE} or {UNKNOWN}", Truth.UNKNOWN), (f"{FALSE} or {FALSE}", Truth.FALSE),
    (f"not {UNKNOWN}", Truth.UNKNOWN), (f"not {TRUE}", Truth.FALSE), (f"not {FALSE}", Truth.TRUE),
    (f"not ({FALSE} or {UNKNOWN})", Truth.UNKNOWN), (f"not ({FALSE} and {UNKNOWN})", Truth.TRUE),
    ("label != \"no\"", Truth.TRUE), ("gpu_util != 5", Truth.UNKNOWN), ("project == \"x\"", Truth.UNKNOWN),
])
def test_kleene_logic_and_unknown_is_never_true(text: str, truth: Truth) -> None:
    assert judge(text, KLEENE, 0.0).truth is truth


@pytest.mark.parametrize("value", [None, math.nan, math.inf, -math.inf, True, "12", [1]])
def test_values_that_are_not_numbers_are_unknown(value: object) -> None:
    verdict = judge("gpu_util < 5", facts({"gpu_util": value}), 0.0)  # type: ignore[dict-item]
    assert verdict.truth is Truth.UNKNOWN and verdict.reason == "gpu_util is unknown"
    assert judge("not gpu_util < 5", facts({"gpu_util": value}), 0.0).truth is Truth.UNKNOWN  # type: ignore[dict-item]


def test_account_fields_come_from_the_account_and_instance_fields_need_an_instance() -> None:
    account = AccountFacts({"spend_today": 51.2, "running_count": 3})
    cap = judge("spend_today > 50", None, 0.0, account)
    assert cap.truth is Truth.TRUE and evidence_text(cap) == "spend_today=$51.20 > $50.00"
    assert judge("spend_today > 60", None, 0.0, account).reason == "spend_today=$51.20 > $60.00"
    assert judge("running_count >= 3", facts({"running_count": 0}), 0.0, account).truth is Truth.TRUE
    assert judge("gpu_util < 5", None, 0.0, account).truth is Truth.UNKNOWN


@pytest.mark.parametrize(("pattern", "gpu", "matches"), [
    ("A100*", "a100 sxm4 80gb", True), ("A100*", "NVIDIA A100", False), ("*a100*", "NVIDIA A100", True),
    ("RTX 4?90", "RTX 4090", True), ("RTX [34]090", "RTX 3090", True), ("RTX [34]090", "RTX 5090", False),
    ("H100.*", "H100 SXM", False), ("H100.*", "H100.x", True), ("(a|b)+", "a", False), ("(a|b)+", "(A|B)+", True),
    ("^A100$", "A100", False), ("*", "", True),
])
def test_glob_is_case_insensitive_fnmatch_with_no_regex(pattern: str, gpu: str, matches: bool) -> None:
    verdict = judge(f'gpu ~ "{pattern}"', facts({"gpu": gpu}), 0.0)
    assert verdict.truth is (Truth.TRUE if matches else Truth.FALSE)


def test_text_equality_and_lists_ignore_case() -> None:
    instance = facts({"provider": "vast", "gpu": "RTX 4090", "gpu_count": 2})
    assert judge('gpu == "rtx 4090"', instance, 0.0).truth is Truth.TRUE
    assert judge('provider in ["RunPod", "Vast"]', instance, 0.0).truth is Truth.TRUE
    assert judge('provider not in ["vast"]', instance, 0.0).truth is Truth.FALSE
    assert judge("gpu_count in [1, 2]", instance, 0.0).truth is Truth.TRUE
    assert judge("gpu_count not in [1, 2]", instance, 0.0).truth is Truth.FALSE


def test_evidence_and_reasons_name_what_decided() -> None:
    instance = facts({"status": "exited", "cost_per_hour": 2.4, "uptime": 7500.0})
    exited = judge('status == "exited" and cost_per_hour > $2', instance, 0.0)
    assert evidence_text(exited) == "status=exited, cost_per_hour=$2.40/h > $2.00/h"
    no = judge('status == "running" and cost_per_hour > $2', instance, 0.0)
    assert no.truth is Truth.FALSE and no.reason == "status=exited"
    assert evidence_text(judge("uptime > 2h", instance, 0.0)) == "uptime=2h 05m > 2h"
