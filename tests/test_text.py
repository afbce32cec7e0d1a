"""`shown`: what an outsider sent, made safe to echo."""

from __future__ import annotations

from x402_mcp.core.text import shown


def test_short_plain_text_is_unchanged() -> None:
    assert shown("pr_abc") == "pr_abc"


def test_long_text_is_cut_and_says_how_much_was_left_out() -> None:
    text = shown("x" * 100_000)
    assert text.startswith("x" * 80)
    assert text.endswith("… (99920 more characters)")
    assert len(text) < 120


def test_bidi_overrides_and_controls_are_escaped() -> None:
    text = shown("0xdead\u202ebeef\x00\n")
    assert "\u202e" not in text and "\x00" not in text and "\n" not in text
    assert text == "0xdead\\u202ebeef\\u0000\\u000a"


def test_non_text_is_shown_as_its_repr() -> None:
    assert shown(12) == "12"
    assert shown(None) == "None"
