"""Durations as people write them in a config: `15m`, `1h30m`, `500ms`, or bare seconds."""

from __future__ import annotations

import math
import re
from datetime import timedelta

# Largest unit first: the order a duration must be written in, and the order it is formatted in.
_UNITS: dict[str, timedelta] = {
    "d": timedelta(days=1),
    "h": timedelta(hours=1),
    "m": timedelta(minutes=1),
    "s": timedelta(seconds=1),
    "ms": timedelta(milliseconds=1),
}
_RANK = {unit: rank for rank, unit in enumerate(_UNITS)}
# `ms` before `m` and `s` so that "500ms" is not read as "500m" followed by garbage.
_PART = re.compile(r"\s*(\d+(?:\.\d+)?|\.\d+)\s*(ms|d|h|m|s)", re.IGNORECASE)
_NUMBER = re.compile(r"[+-]?(?:\d+(?:\.\d+)?|\.\d+)")
_HINT = "use a number with s, m, h or d, like 15m"
# Nothing in a config needs longer, and every duration must still be addable to a date: a
# value past this is refused here rather than overflowing later in the scheduler.
MAX_DURATION = timedelta(days=3650)


def parse_duration(text: str | int | float) -> timedelta:
    """Parse a duration such as `"10s"`, `"15m"`, `"2h"`, `"1d"`, `"1h30m"` or `"500ms"`.

    A bare number (int, float, or a string holding one) counts as seconds. Parts may be
    separated by spaces (`"1h 30m"`) but must go from the largest unit to the smallest.

    Args:
        text: what the user wrote.

    Returns:
        The duration; never negative.

    Raises:
        ValueError: with a one-line message that quotes the input and shows the expected form;
            also for a duration longer than `MAX_DURATION` (ten years).
    """
    if isinstance(text, bool):  # bool is an int subclass; `timeout: true` is a mistake
        raise ValueError(f"bad duration '{str(text).lower()}': {_HINT}")
    if isinstance(text, int | float):
        return _seconds(float(text), str(text))
    if not isinstance(text, str):
        raise ValueError(f"bad duration {text!r}: {_HINT}")
    raw = text.strip()
    if _NUMBER.fullmatch(raw):
        return _seconds(float(raw), raw)
    total = timedelta()
    pos = 0
    last_rank = -1
    while pos < len(raw):
        match = _PART.match(raw, pos)
        if match is None:
            raise ValueError(f"bad duration '{text}': {_HINT}")
        number, unit = match.group(1), match.group(2).lower()
        rank = _RANK[unit]
        if rank <= last_rank:
            raise ValueError(
                f"bad duration '{text}': write each unit once, largest first, like 1h30m"
            )
        last_rank = rank
        _bounded(float(number) * _UNITS[unit].total_seconds(), text)  # before it can overflow
        total += float(number) * _UNITS[unit]
        pos = match.end()
    if pos == 0:  # empty or only whitespace
        raise ValueError(f"bad duration '{text}': {_HINT}")
    if total > MAX_DURATION:
        _bounded(total.total_seconds(), text)
    return total


def _seconds(value: float, shown: str) -> timedelta:
    if not math.isfinite(value):
        raise ValueError(f"bad duration '{shown}': {_HINT}")
    if value < 0:
        raise ValueError(f"bad duration '{shown}': must not be negative")
    return _bounded(value, shown)


def _bounded(seconds: float, shown: str) -> timedelta:
    if not seconds <= MAX_DURATION.total_seconds():  # also catches NaN and infinity
        raise ValueError(f"bad duration '{shown}': too long (at most {MAX_DURATION.days}d)")
    return timedelta(seconds=seconds)


def format_duration(td: timedelta) -> str:
    """Format a duration the way `parse_duration` reads it: `"15m"`, `"1h30m"`, `"500ms"`.

    Sub-millisecond remainders are shown as fractional seconds (`"1.00025s"`) so that the
    result always parses back to the same value.
    """
    if td < timedelta():
        return "-" + format_duration(-td)
    if td == timedelta():
        return "0s"
    micros = td // timedelta(microseconds=1)
    days, micros = divmod(micros, 86_400_000_000)
    hours, micros = divmod(micros, 3_600_000_000)
    minutes, micros = divmod(micros, 60_000_000)
    seconds, micros = divmod(micros, 1_000_000)
    parts = [f"{n}{unit}" for n, unit in ((days, "d"), (hours, "h"), (minutes, "m")) if n]
    if micros % 1000:
        parts.append(f"{seconds}.{micros:06d}".rstrip("0") + "s")
    else:
        if seconds:
            parts.append(f"{seconds}s")
        if micros:
            parts.append(f"{micros // 1000}ms")
    return "".join(parts)
