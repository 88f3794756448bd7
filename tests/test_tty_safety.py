"""The real TUI in a pseudo-terminal against a loopback Vast whose text is hostile: the raw bytes the
terminal receives carry none of the escape sequences, controls or bidi overrides."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fakes.cli import base_environment
from fakes.vast import RUNNING, FakeVast
from ptyapp import PtyApp

KEY = "test-vast-key-0123456789"
ATTACK = "\x1b]52;c;UFdORUQ=\x07\x1b]0;PWNED\x07\x1b[2J\x1b[31;1;4m\rCR\x9b6n\x00NUL\u202eRTL"
"""OSC 52 (clipboard), OSC 0 (window title), clear screen, colours, a carriage return, 8-bit CSI,
NUL and a right-to-left override: each followed by a marker that shows whether it got through."""
FORBIDDEN = (b"UFdORUQ=", b"PWNED", b"\x1b]52", b"\x1b]0;", b"\x1b[2J", b"\x1b[31;1;4m", b"\rCR", b"\xc2\x9b",
             b"\x00", "\u202e".encode())


@pytest.fixture
def hostile_vast() -> Iterator[FakeVast]:
    with FakeVast(KEY) as fake:
        running = fake.instances[RUNNING["id"]]
        running["label"] = f"pwnlabel{ATTACK}"
        running["geolocation"] = f"pwnhost{ATTACK}"
        for offer in fake.offers:
            offer["geolocation"] = f"pwnplace{ATTACK}"
        fake.offers[0]["gpu_name"] = f"RTX 4090{ATTACK}"
        yield fake


@pytest.mark.timeout(60)
def test_hostile_provider_text_never_reaches_the_terminal_raw(hostile_vast: FakeVast, tmp_path: Path) -> None:
    env = base_environment({"VAST_API_KEY": KEY, **hostile_vast.endpoint_env()})
    with PtyApp(["--data-dir", str(tmp_path / "data")], env, size=(120, 30)) as app:
        app.read_until(b"pwnplace")  # the offers, with their hostile locations, are on screen
        app.send(b"2")
        app.read_until(b"pwnlabel")  # the instances, with the hostile label, are on screen
        app.send(b"3")
        app.read_until(b"so far")  # the monitor cards, titled with the label
        app.send(b"q")
        assert app.wait() == 0
    output = bytes(app.output)
    leaked = [sequence for sequence in FORBIDDEN if sequence in output]
    assert leaked == [], f"reached the terminal raw: {leaked}"


@pytest.mark.timeout(90)
def test_the_new_screens_at_80_by_24_keep_hostile_text_and_absurd_numbers_plain(
        hostile_vast: FakeVast, tmp_path: Path) -> None:
    running = hostile_vast.instances[RUNNING["id"]]
    running["label"] = f"[bold]pwnlabel[/] [@click=app.quit]q[/]{ATTACK}"
    running["gpu_util"], running["gpu_temp"], running["gpu_ram"] = 1e308, -5e9, float("nan")
    env = base_environment({"VAST_API_KEY": KEY, **hostile_vast.endpoint_env()})
    with PtyApp(["--data-dir", str(tmp_path / "data")], env, size=(80, 24)) as app:
        app.read_until(b"RTX")  # offers on screen (at 80 columns LOCATION is dropped)
        app.send(b"2")
        app.read_until(b"pwnlabel")
        app.send(b"$")  # spend by day
        app.read_until(b"Spend by day")
        closing = len(app.output)
        app.send(b"\x1b")
        app.read_until(b"Instances", since=closing)  # the pane is drawn again: the dialog is gone
        app.send(b"3")
        app.read_until(b"so far")
        app.send(b"\r")  # the instance detail of the first card
        app.read_until(b"chart window")
        closing = len(app.output)
        app.send(b"\x1b")
        app.read_until(b"Monitor", since=closing)
        app.send(b"q")
        assert app.wait() == 0  # the drawn "q" of the label's markup never quit anything: q did
    output = bytes(app.output)
    leaked = [sequence for sequence in FORBIDDEN if sequence in output]
    assert leaked == [], f"reached the terminal raw: {leaked}"
    assert b"[bold]pwnlabel[/]" in output  # markup shown as text, not applied
