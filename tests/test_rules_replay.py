"""``rules replay`` over the traces in tests/traces: exact firing times, guards, malformed rows, --json, --explain.

Every trace samples once a minute (t = 0, 60, 120, ... unless it says otherwise), so an instance's sample interval
is 60 s. A ``FOR 30m`` window at ``now`` is TRUE when every sample in [now - 1800, now] holds and the oldest of
them is no later than one interval after the window's start; the default cooldown is 15 min (900 s), and the
replay does not change the machines, so a rule that stays true fires again once per cooldown."""

from __future__ import annotations

import io
import json
import sys
from pathlib import Path

import pytest

from computehub_tui.cli.entry import main
from computehub_tui.engine.automation.replay import PROGRESS_STEPS, ReplayControl, ReplayStopped, replay
from computehub_tui.engine.automation.runner import AutomationSettings
from computehub_tui.rules.parser import parse_rules
from computehub_tui.rules.trace import parse_trace

TRACES = Path(__file__).parent / "traces"
HEADER = "t,instance,status,gpu_util,vram_used_gb,vram_total_gb,gpu_temp,cost_per_hour\n"
IDLE_STOP = 'rule "idle-stop": IF gpu_util < 5 FOR 30m AND status == "running" THEN stop\n'


def run(tmp_path: Path, capsys: pytest.CaptureFixture[str], rules: str, trace: Path | str,
        *extra: str) -> tuple[int, str, str]:
    rules_file = tmp_path / "test.rules"
    rules_file.write_text(rules)
    code = main(["rules", "replay", str(rules_file), "--trace", str(trace), *extra])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def firings(tmp_path: Path, capsys: pytest.CaptureFixture[str], rules: str, trace: str) -> list[tuple[object, ...]]:
    code, out, err = run(tmp_path, capsys, rules, TRACES / trace, "--json")
    assert code == 0, err
    return [(item["t"], item["rule"], item["instance"], tuple(item["actions"]))
            for item in map(json.loads, out.splitlines())]


def test_steady_training_is_never_stopped(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # Six hours at 88-99 % on both GPUs: no sample is below 5 %.
    assert firings(tmp_path, capsys, IDLE_STOP, "steady_training.csv") == []


def test_idle_after_two_hours_fires_after_the_window_and_the_cooldown_holds_the_next(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # Busy until 7140, idle from 7200. At 8940 the window [7140, 8940] holds the busy 7140 sample: FALSE.
    # At 9000 the window [7200, 9000] is all idle and covered from 7200: it fires. The cooldown (900 s) holds
    # 9060..9840; it fires again at 9900, 10800, ... up to the last row at 14400.
    expected = [(t, "idle-stop", "a", ("stop",)) for t in (9000, 9900, 10800, 11700, 12600, 13500, 14400)]
    assert firings(tmp_path, capsys, IDLE_STOP, "idle_after_2h.csv") == expected


def test_checkpoint_dips_shorter_than_the_window_never_stop(tmp_path: Path,
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    # A 0 % dip of 5 rows (2100-2340 of every 2400 s) can never fill a 30-minute window.
    assert firings(tmp_path, capsys, IDLE_STOP, "checkpoint_dips.csv") == []


def test_zero_percent_with_vram_held_is_reported_and_not_stopped(tmp_path: Path,
                                                                 capsys: pytest.CaptureFixture[str]) -> None:
    # 0 % from t=0 with 30 GB held. At 1740 the window starts at -60 and the first sample (0) is within one
    # interval of it: TRUE (the trace's first 29 minutes cover the window). Then every 900 s: 2640, 3540, 4440,
    # 5340 (the last row is 5340). The stop rule asks for VRAM under 1 GB and never fires.
    rules = ('rule "idle-stop": IF gpu_util < 5 FOR 30m AND vram_used_gb < 1 AND status == "running" THEN stop\n'
             'rule "vram-held": IF gpu_util < 5 FOR 30m AND vram_used_gb >= 1 THEN notify telegram\n')
    assert firings(tmp_path, capsys, rules, "vram_held.csv") == [
        (t, "vram-held", "held", ("notify telegram",)) for t in (1740, 2640, 3540, 4440, 5340)]


def test_a_gpu_at_100_percent_with_no_memory_is_flagged_and_never_idle(tmp_path: Path,
                                                                       capsys: pytest.CaptureFixture[str]) -> None:
    # 100 % and 0 GB from t=0: FOR 20m is TRUE at 1140 (window from -60), then at 2040 and 2940 (last row 3540).
    rules = IDLE_STOP + 'rule "phantom": IF gpu_util >= 99 FOR 20m AND vram_used_gb < 0.5 THEN notify webhook\n'
    assert firings(tmp_path, capsys, rules, "util100_no_mem.csv") == [
        (t, "phantom", "phantom", ("notify webhook",)) for t in (1140, 2040, 2940)]


def test_a_crash_gets_one_restart_per_cooldown(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # Exited 1800-2400 (fires at 1800; the cooldown holds 1860-2400, and it runs again at 2460) and 3600-3900
    # (the cooldown ended at 2700: fires at 3600 and is held after). The exited rows have no GPU readings, and
    # unknown is never idle, so the idle rule never stops the job.
    rules = IDLE_STOP + 'rule "crash-restart": IF status == "exited" THEN restart\n'
    assert firings(tmp_path, capsys, rules, "crash_restart.csv") == [
        (1800, "crash-restart", "job", ("restart",)), (3600, "crash-restart", "job", ("restart",))]


def test_a_provider_gap_is_missing_data_and_restarts_the_window(tmp_path: Path,
                                                               capsys: pytest.CaptureFixture[str]) -> None:
    # Idle rows 0-1140, none until 3000 (31 min, over 3 intervals), idle rows 3000-5940. Without the gap it would
    # fire at 1740. After it the window needs samples from no later than now - 1800 + 60: now >= 4740. Then 5640.
    assert firings(tmp_path, capsys, IDLE_STOP, "provider_gap.csv") == [
        (4740, "idle-stop", "gap", ("stop",)), (5640, "idle-stop", "gap", ("stop",))]


def test_irregular_sampling(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # Rows at k*180 + 0, 40, 120 (gaps 40, 80, 60: the median interval is 60 s). Busy until 3540, idle from 3600.
    # 5340: window [3540, 5340] holds the busy 3540 sample. 5400 (k=30): window [3600, 5400], first idle sample
    # 3600 = its start: fires. Cooldown to 6300 (k=35, a row): fires. The last row is 6960 < 7200.
    assert firings(tmp_path, capsys, IDLE_STOP, "irregular_sampling.csv") == [
        (5400, "idle-stop", "irr", ("stop",)), (6300, "idle-stop", "irr", ("stop",))]


def test_the_fleet_share_guard_holds_a_rule_that_matches_everything(tmp_path: Path,
                                                                    capsys: pytest.CaptureFixture[str]) -> None:
    # Four machines idle from 0: at 1740 the rule would stop 4 of 4 (> 50 % and > 2): nothing fires.
    code, out, err = run(tmp_path, capsys, IDLE_STOP, TRACES / "fleet_idle.csv")
    assert code == 0
    held = "held: rule idle-stop would act on 4 of 4 instances at once (more than 50% of the fleet); nothing was done"
    assert out.splitlines() == [f"t=1740s (29m)  {held}"]
    assert "0 firings" in err


async def test_the_destructive_cap_pauses_the_replay_as_it_would_pause_automation() -> None:
    # a idle from 0 (fires at 1740), b from 600 (2400), c from 1200 (3000). With a cap of 2 per hour, a's second
    # stop at 2640 finds 2 in the last hour: automation pauses itself and nothing fires after.
    rules = parse_rules(IDLE_STOP)
    trace = parse_trace((TRACES / "staggered_idle.csv").read_text())
    result = await replay(rules, trace, AutomationSettings(destructive_per_hour=2))
    assert [(result.shown_t(f.t), f.instance) for f in result.firings] == [(1740, "a"), (2400, "b")]
    assert [(result.shown_t(at), message.split(":")[0]) for at, message in result.held] == [
        (2640, "automation paused itself")]


async def test_a_followed_replay_reports_each_percent_and_stops_when_asked() -> None:
    rules = parse_rules(IDLE_STOP)
    trace = parse_trace((TRACES / "idle_after_2h.csv").read_text())
    total = len(trace.times)
    reported: list[tuple[int, int]] = []
    followed = await replay(rules, trace, control=ReplayControl(lambda done, of: reported.append((done, of))))
    assert len(followed.firings) == 7  # following changes nothing
    assert reported[-1] == (total, total) and all(of == total for _, of in reported)
    assert [done for done, _ in reported] == sorted({done for done, _ in reported})
    assert len(reported) == PROGRESS_STEPS + 1  # at 0 % (the first tick), each percent, and 100 %

    ticks: list[int] = []

    def stop_halfway(done: int, of: int) -> None:
        ticks.append(done)
        if done >= of // 2:
            control.stop()

    control = ReplayControl(stop_halfway)
    with pytest.raises(ReplayStopped):
        await replay(rules, trace, control=control)
    assert ticks[-1] < total * 0.6  # it ended at the next tick, not at the end


async def test_the_cap_counts_only_destructive_actions() -> None:
    # The same trace with notify only: no cap; a every 900 s from 1740, b from 2400, c from 3000.
    rules = parse_rules('rule "tell": IF gpu_util < 5 FOR 30m THEN notify email\n')
    trace = parse_trace((TRACES / "staggered_idle.csv").read_text())
    result = await replay(rules, trace, AutomationSettings(destructive_per_hour=2))
    assert [(result.shown_t(f.t), f.instance) for f in result.firings] == [
        (1740, "a"), (2400, "b"), (2640, "a"), (3000, "c"), (3300, "b"), (3540, "a")]
    assert result.held == []


def test_json_shape(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rules = 'rule "idle": IF gpu_util < 5 FOR 30m AND status == "running" THEN stop; notify telegram "idle {gpu}"\n'
    code, out, _ = run(tmp_path, capsys, rules, TRACES / "idle_after_2h.csv", "--json")
    first = json.loads(out.splitlines()[0])
    assert first == {"t": 9000, "rule": "idle", "instance": "a", "actions": ["stop", "notify telegram"],
                     "values": {"gpu_util": 0.0, "status": "running"}}  # the values at t
    assert code == 0


def test_iso_times_come_back_as_iso(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    trace = tmp_path / "iso.csv"
    trace.write_text(HEADER + "".join(f"2026-03-01T10:{m:02d}:00Z,box,exited,,,,,0.1\n" for m in range(3)))
    code, out, _ = run(tmp_path, capsys, 'IF status == "exited" THEN restart\n', trace, "--json")
    assert code == 0
    assert [json.loads(line)["t"] for line in out.splitlines()] == ["2026-03-01T10:00:00+00:00"]


def test_explain_shows_each_ticks_verdict_and_why(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(tmp_path, capsys, IDLE_STOP, TRACES / "provider_gap.csv", "--explain", "gap")
    lines = out.splitlines()
    assert code == 0
    assert "t=1140s (19m)  idle-stop  gap  unknown  gpu_util samples cover 19m of 30m" in lines
    assert "t=3000s (50m)  idle-stop  gap  unknown  gpu_util samples cover 0s of 30m" in lines
    assert "t=4740s (1h 19m)  idle-stop  gap  true  gpu_util=1.0% < 5.0% for 29m, status=running" in lines
    assert "t=4740s (1h 19m)  idle-stop  gap  stop  gpu_util=1.0% < 5.0% for 29m; status=running" in lines
    assert sum(" idle-stop  gap  " in line for line in lines) == 70 + 2  # one verdict per tick, two firings


def test_explain_false_names_the_sample_that_broke_the_window(tmp_path: Path,
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    _, out, _ = run(tmp_path, capsys, IDLE_STOP, TRACES / "idle_after_2h.csv", "--explain", "a")
    assert "t=8940s (2h 29m)  idle-stop  a  false  gpu_util=95.0% 30m ago" in out.splitlines()


def test_explain_of_an_instance_not_in_the_trace_is_a_usage_error(tmp_path: Path,
                                                                 capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(tmp_path, capsys, IDLE_STOP, TRACES / "provider_gap.csv", "--explain", "nope")
    assert (code, out) == (2, "")
    assert err == "computehub-tui: error: --explain 'nope': no such instance in the trace (instances: gap)\n"


@pytest.mark.parametrize(("row", "message"), [
    ("60,a,running,abc,1,24,50,0.5", "gpu_util 'abc' is not a number"),
    ("60,a,running,150,1,24,50,0.5", "gpu_util '150' is outside 0 to 100"),
    ("60,a,running,nan,1,24,50,0.5", "gpu_util 'nan' is outside 0 to 100"),
    ("60,a,running,5,-5,24,50,0.5", "vram_used_gb '-5' is outside 0 to 32768"),
    ("60,a,running,5,1,24,50,1e308", "cost_per_hour '1e308' is outside 0 to 1000"),
    ("60,a,sleeping,5,1,24,50,0.5", "status 'sleeping' is not one of"),
    ("60,a,running,5,1,24,50", "has 7 fields, the header has 8"),
    ("0,a,running,5,1,24,50,0.5", "a second row for instance 'a' at the same t"),
    ("2026-01-01T00:00:00,a,running,5,1,24,50,0.5", "mixes ISO-8601 times and seconds from start in column t"),
    ("soon,a,running,5,1,24,50,0.5", "t 'soon' is neither seconds from start nor an ISO-8601 time"),
    (",a,running,5,1,24,50,0.5", "t is empty"),
    ("60,,running,5,1,24,50,0.5", "instance is empty"),
])
def test_a_malformed_row_is_reported_with_its_line_and_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                              row: str, message: str) -> None:
    trace = tmp_path / "bad.csv"
    trace.write_text(HEADER + "0,a,running,5,1,24,50,0.5\n" + row + "\n120,a,running,5,1,24,50,0.5\n")
    code, out, err = run(tmp_path, capsys, IDLE_STOP, trace)
    assert (code, out) == (2, "")
    assert err.startswith(f"computehub-tui: error: {trace}:3: {message}")
    assert err.count("\n") == 1


@pytest.mark.parametrize(("header", "message"), [
    ("t,instance,status,gpu_util,vram_used_gb,vram_total_gb,gpu_temp", "1: missing column cost_per_hour"),
    (HEADER.strip() + ",colour", "1: unknown column 'colour'"),
])
def test_a_bad_header_is_line_1(tmp_path: Path, capsys: pytest.CaptureFixture[str], header: str,
                                message: str) -> None:
    trace = tmp_path / "bad.csv"
    trace.write_text(header + "\n")
    code, _, err = run(tmp_path, capsys, IDLE_STOP, trace)
    assert code == 2
    assert err.startswith(f"computehub-tui: error: {trace}:{message}")


def test_hostile_text_in_a_trace_is_cleaned(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    trace = tmp_path / "hostile.csv"
    name = "\x1b]52;c;ZXZpbA==\x07box[@click=app.quit]q[/]\u202e"
    trace.write_text("t,instance,status,gpu_util,vram_used_gb,vram_total_gb,gpu_temp,cost_per_hour,label\n"
                     f"0,{name},exited,,,,,0.1,\x1b[31mred\n")
    code, out, _ = run(tmp_path, capsys, 'IF status == "exited" AND label == "red" THEN restart\n', trace, "--json")
    assert code == 0
    assert json.loads(out)["instance"] == "box[@click=app.quit]q[/]"
    assert "\x1b" not in out and "\u202e" not in out


def test_rule_file_errors_print_every_error_and_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(tmp_path, capsys, "IF gpu_utl < 5 THEN stop\nIF status == \"running\" THEN explode\n",
                         TRACES / "vram_held.csv")
    assert (code, out) == (2, "")
    assert err.count("line 1, col") == 1 and err.count("line 2, col") == 1
    assert err.endswith("2 errors\n")


def test_nothing_is_executed_and_a_dry_run_rule_replays_as_live(tmp_path: Path,
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    # A file-level dry-run setting does not hide what the rule would do; replay never reaches a provider (the
    # command runs with no keys, no store and no network).
    code, out, err = run(tmp_path, capsys, IDLE_STOP, TRACES / "idle_after_2h.csv", "--set", "automation.dry_run=true")
    assert code == 0
    assert out.splitlines()[0].startswith("t=9000s (2h 30m)  idle-stop  a  stop  ")
    assert "nothing was executed, no alert was sent" in err


def test_money_fields_accrue_from_cost_per_hour(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # Three machines at $0.80/h from t=0: spend today is 2.4 * t / 3600, over $1 once t > 1500 (first row 1560;
    # then each cooldown: 2460, 3360). Each machine's cost so far is 0.8 * t / 3600, over $0.50 once t > 2250
    # (2280, then 3180).
    rules = ('rule "cap": IF spend_today > $1 THEN notify email\n'
             'rule "each": IF cost_so_far > $0.5 THEN notify toast\n')
    assert firings(tmp_path, capsys, rules, "staggered_idle.csv") == [
        (1560, "cap", "account", ("notify email",)),
        *[(2280, "each", name, ("notify toast",)) for name in "abc"],
        (2460, "cap", "account", ("notify email",)),
        *[(3180, "each", name, ("notify toast",)) for name in "abc"],
        (3360, "cap", "account", ("notify email",)),
    ]


def test_uptime_counts_from_the_last_start(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # Running from 0: 20 minutes up at 1200. Exited 1800-2400, running from 2460 (20 minutes at 3660, but it has
    # exited again at 3600), running from 3960: 20 minutes at 5160.
    rules = 'rule "long": IF uptime >= 20m AND status == "running" THEN notify toast\n'
    assert firings(tmp_path, capsys, rules, "crash_restart.csv") == [
        (1200, "long", "job", ("notify toast",)), (5160, "long", "job", ("notify toast",))]


def test_explain_and_json_together_is_a_usage_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(tmp_path, capsys, IDLE_STOP, TRACES / "provider_gap.csv", "--explain", "gap", "--json")
    assert (code, out) == (2, "")
    assert err == "computehub-tui: error: --explain prints a verdict per tick as text; use it without --json\n"


def test_na_readings_are_unknown_and_a_trailing_comma_is_no_column(tmp_path: Path,
                                                                   capsys: pytest.CaptureFixture[str]) -> None:
    # The second GPU reads [N/A] (unknown, as nvidia-smi writes it): gpu_util is the busiest known GPU, 0 %, so
    # the rule fires at t=0. The trailing comma on every line is an unnamed column, ignored.
    trace = tmp_path / "na.csv"
    trace.write_text(HEADER.strip() + ",\n" + "0,a,running,0;[N/A],1;N/A,24;24,40,0.5,\n")
    code, out, err = run(tmp_path, capsys, 'IF gpu_util < 5 THEN notify toast\n', trace, "--json")
    assert code == 0, err
    assert json.loads(out)["values"] == {"gpu_util": 0.0}


def test_warn_delays_the_action_and_the_cooldown_counts_from_it(tmp_path: Path,
                                                                capsys: pytest.CaptureFixture[str]) -> None:
    # The condition holds from 9000: the warning is announced then and the stop runs at 9300. Its cooldown ends at
    # 10200, when the next warning starts (stop at 10500), and so on: 11700, 12900, 14100 (the last row is 14400).
    rules = 'rule "idle-stop": IF gpu_util < 5 FOR 30m AND status == "running" THEN WARN 5m stop\n'
    assert firings(tmp_path, capsys, rules, "idle_after_2h.csv") == [
        (t, "idle-stop", "a", ("stop",)) for t in (9300, 10500, 11700, 12900, 14100)]


def test_a_warning_whose_condition_ends_is_withdrawn(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # Each checkpoint dip is 0 % at 2100..2340 (mod 2400): FOR 4m holds at 2340 and a 5-minute warning starts;
    # at 2400 the GPU is busy again, the warning is dropped and nothing is stopped, dip after dip.
    without_warning = firings(tmp_path, capsys, 'rule "dip": IF gpu_util < 5 FOR 4m THEN stop\n', "checkpoint_dips.csv")
    assert [t for t, *_ in without_warning] == [2340 + 2400 * dip for dip in range(6)]
    rules = 'rule "dip": IF gpu_util < 5 FOR 4m THEN WARN 5m stop\n'
    assert firings(tmp_path, capsys, rules, "checkpoint_dips.csv") == []


def test_a_long_replay_shows_its_percentage_on_a_terminal_and_erases_it(tmp_path: Path,
                                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    monkeypatch.setattr("computehub_tui.cli.rules_replay.PROGRESS_FROM_TICKS", 100)
    terminal = Terminal()
    monkeypatch.setattr(sys, "stderr", terminal)
    rules_file = tmp_path / "test.rules"
    rules_file.write_text(IDLE_STOP)
    assert main(["rules", "replay", str(rules_file), "--trace", str(TRACES / "idle_after_2h.csv"), "--json"]) == 0
    shown = terminal.getvalue()
    assert "\rreplaying… 50 % of 241 ticks" in shown
    assert shown.index("\r\x1b[K") > shown.index("replaying… 99 %")  # erased once done, before the summary
    monkeypatch.setattr(sys, "stderr", io.StringIO())  # not a terminal: nothing but the results
    assert main(["rules", "replay", str(rules_file), "--trace", str(TRACES / "idle_after_2h.csv"), "--json"]) == 0
    assert "replaying" not in sys.stderr.getvalue()


def test_spend_today_of_a_trace_with_real_times_resets_at_midnight_in_the_users_zone(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    # $10/h from 13:00 UTC on 31 January, sampled every 10 minutes: in UTC spend today passes $24.9 at 15:30. In
    # Tokyo (UTC+9) the day turns at 15:00 UTC with $20 spent, so it passes $24.9 again only at 17:30 UTC.
    rows = [f"2026-01-31T{13 + minutes // 60:02d}:{minutes % 60:02d}:00Z,box,running,90,10,80,60,10"
            for minutes in range(0, 300, 10)]
    trace = tmp_path / "day.csv"
    trace.write_text(HEADER + "\n".join(rows) + "\n")
    rules = 'rule "cap": IF spend_today > 24.9 THEN notify toast\n'
    config = tmp_path / "config.toml"
    monkeypatch.setenv("COMPUTEHUB_CONFIG", str(config))
    config.write_text('[costs]\ntimezone = "UTC"\n')
    code, out, err = run(tmp_path, capsys, rules, trace, "--json")
    assert code == 0, err
    assert json.loads(out.splitlines()[0])["t"] == "2026-01-31T15:30:00+00:00"
    config.write_text('[costs]\ntimezone = "Asia/Tokyo"\n')
    code, out, err = run(tmp_path, capsys, rules, trace, "--json")
    assert code == 0, err
    assert json.loads(out.splitlines()[0])["t"] == "2026-01-31T17:30:00+00:00"
