"""Hostile provider text through every adapter and the CLI: the bytes that reach a terminal obey nothing.

Labels, locations, GPU names, logs and error bodies carry OSC 52 (clipboard), OSC 0 (window title),
``ESC[2J``, ``\\r``, 8-bit C1 controls, NUL and the U+202E bidi override. The loopback fakes serve
them; the assertions are on the raw bytes the CLI wrote.
"""

from __future__ import annotations

import csv
import io
import json
import unicodedata
from collections.abc import Iterator
from pathlib import Path

import pytest
from fakes import runpod as runpod_wire
from fakes import tensordock as tensordock_wire
from fakes import vast as vast_wire
from fakes.accounts import KEYS, Market, ok, one_error_line, open_market
from fakes.cli import CliRun
from loopback import Reply

from computehub_tui.cli.output import Column, csv_text, print_json, table

HOSTILE = (
    "\x1b]52;c;ZXZpbA==\x07"  # OSC 52: overwrite the clipboard
    "\x1b]0;owned-title\x07"  # OSC 0: the window title
    "\x1b[2J"  # clear the screen
    "pwned\r"  # carriage return: overwrite the line
    "\x9b31m\x9d0;c1-title\x9c"  # 8-bit CSI and OSC
    "\x00"
    "\u202e"  # right-to-left override
    "[@click=app.quit]q[/]"  # Textual markup, printed as text
)
MARKER = "pwned"
"""Survives every kind of cleaning, so a test can tell the hostile text really went through."""


@pytest.fixture
def market(tmp_path: Path) -> Iterator[Market]:
    with open_market(tmp_path) as opened:
        yield opened


def assert_terminal_safe(raw: bytes, where: str) -> str:
    """The bytes are valid UTF-8 (so no lone 0x9b / 0x9d byte) and carry no ESC, CR, NUL, C1,
    bidi or other format character. ␛ (U+241B) encodes as e2 90 9b: a continuation byte, which
    a UTF-8 terminal never reads as CSI."""
    text = raw.decode("utf-8")
    for forbidden in (b"\x1b", b"\r", b"\x00", "\u202e".encode()):
        assert forbidden not in raw, f"{where}: {forbidden!r} reached the terminal"
    controls = [hex(ord(c)) for c in text if (ord(c) < 0x20 and c not in "\n\t") or 0x7F <= ord(c) <= 0x9F]
    assert controls == [], f"{where}: control characters {controls}"
    formats = [hex(ord(c)) for c in text if unicodedata.category(c) == "Cf"]
    assert formats == [], f"{where}: format/bidi characters {formats}"
    return text


def assert_run_safe(run: CliRun) -> None:
    assert_terminal_safe(run.stdout_bytes, f"{' '.join(run.args)} stdout")
    assert_terminal_safe(run.stderr_bytes, f"{' '.join(run.args)} stderr")
    assert "Traceback" not in run.stderr, run.describe()


def make_hostile(market: Market) -> None:
    offer = market.vast.offers[0]
    offer["geolocation"] = f"{HOSTILE} Quebec, CA"
    market.vast.instances[vast_wire.RUNNING["id"]]["label"] = f"vast-{HOSTILE}"
    market.vast.instances[vast_wire.RUNNING["id"]]["gpu_name"] = f"RTX 4090{HOSTILE}"
    next(iter(market.runpod.pods.values()))["name"] = f"runpod-{HOSTILE}"
    next(iter(market.lambda_.instances.values()))["name"] = f"lambda-{HOSTILE}"
    next(iter(market.tensordock.vms.values()))["name"] = f"tensordock-{HOSTILE}"


def test_offers_and_instances_print_no_terminal_controls_in_any_format(
    market: Market, monkeypatch: pytest.MonkeyPatch
) -> None:
    make_hostile(market)
    monkeypatch.setitem(tensordock_wire.IDAHO, "city", f"{HOSTILE}Chubbuck")
    offers_table, offers_csv, offers_json, instances_table, instances_json = market.run_all(
        market.invocation("offers", "--limit", "0", "--sort", "price"),
        market.invocation("offers", "--limit", "0", "--csv"),
        market.invocation("offers", "--limit", "0", "--json"),
        market.invocation("instances"),
        market.invocation("instances", "--json"),
    )
    for run in (offers_table, offers_csv, offers_json, instances_table, instances_json):
        assert_run_safe(ok(run))

    for run in (offers_table, offers_csv):
        assert run.stdout.count(MARKER) >= 3, run.stdout  # Vast and TensorDock locations
    assert offers_json.stdout_bytes.isascii(), "JSON escapes every non-ASCII character"
    locations = " ".join(o["location"] for o in offers_json.json())
    assert MARKER in locations and "Quebec, CA" in locations

    rows = instances_table.stdout.splitlines()
    for provider in KEYS:
        assert any(f"{provider}-{MARKER}" in row for row in rows), (provider, rows)
    assert instances_json.stdout_bytes.isascii()
    labels = [i["label"] for i in instances_json.json()]
    assert sum(MARKER in label for label in labels) == len(KEYS), labels


def test_logs_show_controls_visibly_and_obey_none(market: Market, monkeypatch: pytest.MonkeyPatch) -> None:
    market.vast.server.route(
        "GET", f"/instance_logs/{vast_wire.LOG_TOKEN}.log", Reply.text(f"epoch 1 {HOSTILE}\nepoch 2\r\n")
    )
    monkeypatch.setattr(runpod_wire, "LOG_LINES", ["step 1", f"step 2 {HOSTILE}"])
    vast, runpod = market.run_all(
        market.invocation("logs", f"vast:{vast_wire.RUNNING['id']}"),
        market.invocation("logs", f"runpod:{next(iter(market.runpod.pods))}", "--tail", "2"),
    )
    for run, first in ((vast, "epoch 1"), (runpod, "step 2")):
        text = assert_terminal_safe(ok(run).stdout_bytes, " ".join(run.args))
        line = next(line for line in text.splitlines() if line.startswith(first))
        # Shown, not obeyed: the sequences are there as visible pictures.
        assert "␛]52;c;ZXZpbA==" in line and "<U+202E>" in line and MARKER in line, line


def test_provider_error_bodies_reach_stderr_as_one_safe_line(market: Market) -> None:
    market.vast.server.route(
        "GET", "/api/v0/instances/", Reply.json({"success": False, "error": "bad", "msg": HOSTILE}, 400)
    )
    market.runpod.server.route("POST", "/graphql", Reply.json({"errors": [{"message": HOSTILE}]}))
    runs = market.run_all(
        *(
            market.invocation("instances", "--provider", name, env=market.environment(keys=(name,)))
            for name in ("vast", "runpod")
        ),
        market.invocation("stop", "vast:9104662", "--yes", env=market.environment(keys=("vast",))),
    )
    for run in runs:
        assert_run_safe(run)
        assert MARKER in one_error_line(run, 1), run.describe()
        assert run.stdout == "", "an error prints nothing on stdout"


def test_the_output_layer_is_safe_on_its_own(capsys: pytest.CaptureFixture[str]) -> None:
    """The last guard, without any adapter in front: tables, JSON and CSV cells."""
    for line in table([Column("ID"), Column("LABEL", 20)], [["vast:1", HOSTILE]]):
        assert_terminal_safe(line.encode(), "table")
    print_json({"label": HOSTILE, "price": float("nan")})
    printed = capsys.readouterr().out
    assert printed.isascii() and json.loads(printed) == {"label": HOSTILE, "price": None}
    cells = next(csv.reader(io.StringIO(csv_text(["a", "b"], [{"a": HOSTILE, "b": 1.5}]).splitlines()[1])))
    assert_terminal_safe(cells[0].encode(), "csv")
    assert MARKER in cells[0] and cells[1] == "1.5"


@pytest.mark.parametrize("formula", ["=HYPERLINK(\"http://x\")", "+1+2", "-1+2", "@SUM(A1)"])
def test_csv_cells_that_look_like_formulas_are_quoted(formula: str) -> None:
    text = csv_text(["location", "price_hour"], [{"location": formula, "price_hour": -1.5}])
    (row,) = list(csv.DictReader(io.StringIO(text)))
    assert row == {"location": f"'{formula}", "price_hour": "-1.5"}, "numbers stay numbers"
