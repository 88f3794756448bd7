"""Provider text is made safe: escape sequences, controls and bidi overrides never survive."""

from __future__ import annotations

import pytest

from computehub_tui.domain.text import clean_text, show_controls

HOSTILE = [
    "\x1b]52;c;ZXZpbA==\x07",  # OSC 52: overwrite the clipboard
    "\x1b]0;pwned\x07",  # OSC 0: window title
    "\x1b]0;pwned\x1b\\",  # OSC 0 ended by ST
    "\x1b[2J\x1b[H",  # clear screen, cursor home
    "\r",
    "\x9b31m",  # 8-bit CSI
    "\x9d0;title\x9c",  # 8-bit OSC
    "\x00",
    "\u202e",  # right-to-left override
    "\u2066\u2069",  # bidi isolates
    "\x1bc",  # full reset
    "\x7f\x85",
]


@pytest.mark.parametrize("payload", HOSTILE)
def test_clean_text_removes_every_control(payload: str) -> None:
    cleaned = clean_text(f"gpu{payload}box")
    assert cleaned.startswith("gpu") and cleaned.endswith("box")
    assert all(ch.isprintable() for ch in cleaned), repr(cleaned)
    assert "\x1b" not in cleaned and "\u202e" not in cleaned


def test_clean_text_keeps_ordinary_text_and_markup_characters() -> None:
    assert clean_text("  Oslo,   NO ") == "Oslo, NO"
    assert clean_text("[bold red]x[/] ünïcødé 日本") == "[bold red]x[/] ünïcødé 日本"


def test_clean_text_bounds_length_and_rejects_non_text() -> None:
    assert len(clean_text("x" * 10_000_000, 50)) == 50
    assert clean_text(None) == "" and clean_text({"a": 1}) == "" and clean_text(True) == ""
    assert clean_text(float("inf")) == "" and clean_text(10**400) == ""
    assert clean_text(12345) == "12345"


def test_show_controls_keeps_log_content_but_makes_controls_visible() -> None:
    shown = show_controls("step 1 \x1b[31mred\x1b[0m\r\nnext\tcol \u202eevil\x00\x9b")
    assert shown == "step 1 ␛[31mred␛[0m␍\nnext\tcol <U+202E>evil␀<U+009B>"
    assert "\x1b" not in shown and "\r" not in shown


def test_show_controls_is_identity_for_plain_text() -> None:
    text = "epoch 3/10 loss=0.25\n\tok — ünïcødé"
    assert show_controls(text) == text
