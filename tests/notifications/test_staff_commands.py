"""Reading an on-call phone's ACK: any case, any width, with or without space, #, colon or a full stop."""

import unicodedata

import pytest
from hypothesis import given
from hypothesis import strategies as st

from notifications.staff_commands import MAX_DIGITS, parse_ack


def full_width(text: str) -> str:
    """ASCII letters, digits and space as their full-width forms (a Chinese keyboard's)."""
    return "".join("\u3000" if ch == " " else chr(ord(ch) + 0xFEE0) if "!" <= ch <= "~" else ch for ch in text)


@pytest.mark.parametrize(
    ("text", "number"),
    [
        ("ACK 12", 12),
        ("ack 12", 12),
        ("Ack12", 12),
        ("ACK #12", 12),
        ("ACK: 12", 12),
        ("ACK：12", 12),
        (" ack 12. ", 12),
        ("ACK 12!", 12),
        ("确认 12", 12),
        ("确认12。", 12),
        ("ＡＣＫ　１２", 12),
        ("ACK 007", 7),
    ],
)
def test_ack_spellings_give_the_alert_number(text, number):
    assert parse_ack(text) == number


@pytest.mark.parametrize(
    "text",
    ["ACK", "12", "ACK twelve", "ACK 12 13", "BACK 12", "ACKNOWLEDGE", "1", "AE 住院", "ACK 1234567890", "ACK ١٢", ""],
)
def test_anything_else_is_not_an_ack(text):
    assert parse_ack(text) is None


@given(
    number=st.integers(min_value=0, max_value=10**MAX_DIGITS - 1),
    word=st.sampled_from(["ack", "ACK", "Ack", "aCk", "确认"]),
    gap=st.sampled_from(["", " ", "  ", " #", "#", ": ", "\t"]),
    tail=st.sampled_from(["", ".", "!", " ", "。", "！"]),
    wide=st.booleans(),
)
def test_any_ack_of_any_number_reads_back_that_number(number, word, gap, tail, wide):
    text = f"{word}{gap}{number}{tail}"
    assert parse_ack(full_width(text) if wide else text) == number


@given(st.text(max_size=20))
def test_any_text_is_either_no_ack_or_an_ack_of_a_number_that_fits_an_id(text):
    number = parse_ack(text)
    assert number is None or 0 <= number < 10**MAX_DIGITS
    if number is not None:
        normal = unicodedata.normalize("NFKC", text).casefold()
        assert ("ack" in normal or "确认" in normal) and str(number) in normal
