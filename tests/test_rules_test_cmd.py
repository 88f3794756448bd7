"""``rules test``: TOML cases over traces pass (0), fail with a readable diff (1), are malformed (2); JUnit XML."""

from __future__ import annotations

import shutil
from pathlib import Path
from xml.etree import ElementTree

import pytest

from computehub_tui.cli.entry import main

TRACES = Path(__file__).parent / "traces"
RULES = 'rule "idle-stop": IF gpu_util < 5 FOR 30m AND status == "running" THEN stop\n'

PASSING = """
rules = "fleet.rules"

[[case]]
name = "idle after 2h"
trace = "traces/idle_after_2h.csv"
exhaustive = false

[[case.expect]]
t = 9000
rule = "idle-stop"
instance = "a"
actions = ["stop"]

[[case.expect]]
t = 9880
tolerance = "30s"
rule = "idle-stop"
instance = "a"

[[case.never]]
rule = "idle-stop"
to = 8999

[[case]]
name = "busy training"
trace = "traces/steady_training.csv"

[[case.never]]
rule = "idle-stop"
instance = "train"
"""


def write(tmp_path: Path, text: str, name: str = "fleet.test.toml") -> Path:
    (tmp_path / "traces").mkdir(exist_ok=True)
    for trace in ("idle_after_2h.csv", "steady_training.csv"):
        shutil.copy(TRACES / trace, tmp_path / "traces" / trace)
    (tmp_path / "fleet.rules").write_text(RULES)
    path = tmp_path / name
    path.write_text(text)
    return path


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(["rules", "test", *args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_a_passing_file_exits_0(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write(tmp_path, PASSING)
    code, out, err = run(capsys, str(path))
    assert code == 0
    assert out.splitlines() == [f"ok    {path} [idle after 2h]", f"ok    {path} [busy training]"]
    assert err == "2 of 2 cases passed\n"


def test_a_mismatch_exits_1_with_a_readable_diff(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # Exhaustive by default: the firings at 9900.. are unexpected; 9060 is missing (the cooldown holds it).
    path = write(tmp_path, """
rules = "fleet.rules"
[[case]]
name = "wrong"
trace = "traces/idle_after_2h.csv"
[[case.expect]]
t = 9000
rule = "idle-stop"
instance = "a"
[[case.expect]]
t = 9060
rule = "idle-stop"
instance = "a"
[[case.never]]
rule = "idle-stop"
from = 14000
""")
    code, out, _ = run(capsys, str(path))
    assert code == 1
    lines = out.splitlines()
    assert lines[0] == f"FAIL  {path} [wrong]"
    assert "  missing:    t=9060s ±0s  idle-stop  a  any actions" in lines
    assert "  forbidden:  t=14400s  idle-stop  a  stop (expected no firing of idle-stop from t=14000s to the end)" \
        in lines
    assert [line for line in lines if "unexpected" in line] == [
        f"  unexpected: t={t}s  idle-stop  a  stop" for t in (9900, 10800, 11700, 12600, 13500)]
    assert "  replay fired:" in lines and "    t=9000s  idle-stop  a  stop" in lines


def test_wrong_actions_do_not_match(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write(tmp_path, PASSING.replace('actions = ["stop"]', 'actions = ["destroy"]'))
    code, out, _ = run(capsys, str(path))
    assert code == 1
    assert "  missing:    t=9000s ±0s  idle-stop  a  destroy" in out.splitlines()


def test_junit_report(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    good = write(tmp_path, PASSING)
    bad = write(tmp_path, PASSING.replace("t = 9000", "t = 9100"), "bad.test.toml")
    report = tmp_path / "junit.xml"
    code, _, _ = run(capsys, str(good), str(bad), "--junit", str(report))
    assert code == 1
    suites = ElementTree.parse(report).getroot()
    assert [(s.get("name"), s.get("tests"), s.get("failures"), s.get("errors")) for s in suites] == [
        (str(good), "2", "0", "0"), (str(bad), "2", "1", "0")]
    failure = suites[1].find("testcase[@name='idle after 2h']/failure")
    assert failure is not None and failure.get("message") == "missing:    t=9100s ±0s  idle-stop  a  stop"
    assert suites[1].find("testcase[@name='busy training']/failure") is None


@pytest.mark.parametrize(("text", "message"), [
    ("rules = ", "not valid TOML"),
    ('rules = "fleet.rules"\ncolour = 1\n', "the file: unknown key 'colour'"),
    ('rules = "missing.rules"\n[[case]]\ntrace = "traces/idle_after_2h.csv"\n', "missing.rules: no such file"),
    ('rules = "fleet.rules"\n', "has no [[case]]"),
    ('rules = "fleet.rules"\n[[case]]\ntrace = "t.csv"\n[[case.expect]]\nrule = "x"\ninstance = "a"\n',
     "expect 1: t is missing"),
    ('rules = "fleet.rules"\n[settings]\nfleet_share = 3\n[[case]]\ntrace = "traces/idle_after_2h.csv"\n',
     "[settings] fleet_share must be a number above 0 and at most 1"),
])
def test_a_malformed_test_file_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str], text: str,
                                       message: str) -> None:
    path = write(tmp_path, text)
    code, out, _ = run(capsys, str(path))
    assert code == 2
    assert out.startswith(f"ERROR {path}: ") and message in out


def test_a_malformed_trace_is_exit_2_naming_its_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write(tmp_path, PASSING)
    broken = tmp_path / "traces" / "steady_training.csv"
    lines = broken.read_text().splitlines()
    lines[4] = "240,train,running,92;x,71.5;70.2,80;80,74,3.2"
    broken.write_text("\n".join(lines) + "\n")
    code, out, _ = run(capsys, str(path))
    assert code == 2
    assert f"ERROR {path} [busy training]: {broken}:5: gpu_util 'x' is not a number" in out.splitlines()


def test_settings_change_the_replay(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # A one-hour cooldown: 9000, 12600 (and 16200 is past the trace).
    path = write(tmp_path, """
rules = "fleet.rules"
[settings]
cooldown = "1h"
[[case]]
trace = "traces/idle_after_2h.csv"
[[case.expect]]
t = 9000
rule = "idle-stop"
instance = "a"
[[case.expect]]
t = 12600
rule = "idle-stop"
instance = "a"
""")
    code, out, _ = run(capsys, str(path))
    assert (code, out) == (0, f"ok    {path} [case 1]\n")
