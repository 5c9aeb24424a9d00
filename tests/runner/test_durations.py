import re
from datetime import timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from runner.durations import MAX_DURATION, format_duration, parse_duration


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("10s", timedelta(seconds=10)),
        ("15m", timedelta(minutes=15)),
        ("2h", timedelta(hours=2)),
        ("1d", timedelta(days=1)),
        ("1h30m", timedelta(hours=1, minutes=30)),
        ("1h 30m", timedelta(hours=1, minutes=30)),
        ("500ms", timedelta(milliseconds=500)),
        ("1m500ms", timedelta(minutes=1, milliseconds=500)),
        ("1.5h", timedelta(minutes=90)),
        ("15M", timedelta(minutes=15)),
        (" 90 ", timedelta(seconds=90)),
        ("2.5", timedelta(seconds=2.5)),
        (90, timedelta(seconds=90)),
        (0.25, timedelta(milliseconds=250)),
        ("0s", timedelta()),
    ],
)
def test_parse_duration(text: str | int | float, expected: timedelta) -> None:
    assert parse_duration(text) == expected


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("15x", "bad duration '15x': use a number with s, m, h or d, like 15m"),
        ("", "bad duration '': use a number with s, m, h or d, like 15m"),
        ("m", "bad duration 'm': use a number with s, m, h or d, like 15m"),
        ("15m junk", "bad duration '15m junk': use a number with s, m, h or d, like 15m"),
        ("30m1h", "bad duration '30m1h': write each unit once, largest first, like 1h30m"),
        ("1m1m", "bad duration '1m1m': write each unit once, largest first, like 1h30m"),
        ("-5", "bad duration '-5': must not be negative"),
        (-5, "bad duration '-5': must not be negative"),
        (float("nan"), "bad duration 'nan': use a number with s, m, h or d, like 15m"),
        (True, "bad duration 'true': use a number with s, m, h or d, like 15m"),
    ],
)
def test_parse_duration_errors(text: str | int | float, message: str) -> None:
    with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
        parse_duration(text)


@pytest.mark.parametrize(
    ("td", "text"),
    [
        (timedelta(minutes=15), "15m"),
        (timedelta(hours=1, minutes=30), "1h30m"),
        (timedelta(days=1, seconds=5), "1d5s"),
        (timedelta(milliseconds=500), "500ms"),
        (timedelta(seconds=2, milliseconds=5), "2s5ms"),
        (timedelta(), "0s"),
        (timedelta(microseconds=1_000_250), "1.00025s"),
        (-timedelta(minutes=2), "-2m"),
    ],
)
def test_format_duration(td: timedelta, text: str) -> None:
    assert format_duration(td) == text


@given(st.timedeltas(min_value=timedelta(), max_value=MAX_DURATION))
def test_format_then_parse_gives_the_same_duration(td: timedelta) -> None:
    assert parse_duration(format_duration(td)) == td


@pytest.mark.parametrize("text", ["99999999999d", "3651d", "1e300", 1e300, "3650d1s", "9" * 400])
def test_absurd_durations_are_refused_not_overflowed(text: str | float) -> None:
    # `timeout: 99999999999d` raised OverflowError, which no config check caught (finding 7).
    with pytest.raises(ValueError, match=r"too long \(at most 3650d\)|bad duration"):
        parse_duration(text)


def test_the_longest_duration_still_parses() -> None:
    assert parse_duration("3650d") == MAX_DURATION
