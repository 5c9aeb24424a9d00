"""The cron trigger against an independent implementation, around every 2026 DST change.

2,000 random crontab expressions x 5 time zones x a start instant near each of the zone's two
2026 changes: the next fire times of `runner.cron.CrontabTrigger` (on cronsim) must equal those
of the oracle, with zero differences.

The oracle is croniter (a test-only dependency, a separate code base from cronsim) used for
what it does independently and well, the wall-clock calendar: which local times match. cron(8)'s
daylight-saving rules are then applied to those local times here, written from the manual:

- a local time that exists once runs then;
- a local time in the repeated hour of a fall-back change runs in its first copy only when the
  job is fixed-time (neither minute nor hour starts with `*`), in both copies otherwise;
- a local time in the skipped hour of a spring-forward change runs at the change when the job is
  fixed-time, and not at all otherwise.

Explained differences, handled by how the oracle is called rather than ignored:

1. croniter's own DST handling (on aware datetimes) is not cron(8)'s: it is given naive local
   times and the rules above are applied instead.
2. croniter ORs the day fields whenever neither is `*`; Vixie cron ANDs them when either one
   *starts with* `*` (`*/2`): croniter is called with `day_or=False` in that case.
3. cron(8) runs a fixed-time job once per skipped time right after a spring-forward change; the
   trigger runs it once (several skipped times of one job collapse, the rest would only hit the
   overlap guard): the oracle's times are de-duplicated.
4. croniter reads a range whose two ends are equal (`17-17`, `1-1/28`, `9-sep`) as `*`, a known
   croniter bug; crontab(5) says such a range is its one value, so the oracle is given that value.
"""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from runner.cron import CrontabTrigger, fixed_time

croniter_module = pytest.importorskip("croniter", reason="croniter is the test-only cron oracle")

ZONES = [
    "America/New_York",
    "Europe/Berlin",
    "Australia/Lord_Howe",  # 30-minute changes
    "America/Santiago",  # changes at midnight: the skipped hour is 00:00-01:00
    "Pacific/Auckland",
]
EXPRESSIONS = 2000
FIRES = 3
SEED = 20260308

_DAYS = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")
_MONTHS = ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")


def transitions_2026(tz: ZoneInfo) -> list[datetime]:
    """The instants (UTC) at which the zone's offset changes in 2026, to the minute."""
    found = []
    step = timedelta(minutes=30)
    t = datetime(2026, 1, 1, tzinfo=UTC)
    while t.year == 2026:
        if t.astimezone(tz).utcoffset() != (t + step).astimezone(tz).utcoffset():
            low, high = t, t + step
            while high - low > timedelta(minutes=1):
                mid = low + (high - low) / 2
                if mid.astimezone(tz).utcoffset() == low.astimezone(tz).utcoffset():
                    low = mid
                else:
                    high = mid
            found.append(high.replace(second=0, microsecond=0))
        t += step
    return found


def _value(rng: random.Random, number: int, names: tuple[str, ...], base: int) -> str:
    """A number, or sometimes its name (day 7 has none: it is Sunday's second number)."""
    if names and rng.random() < 0.3 and number - base < len(names):
        return names[number - base]
    return str(number)


def _field(
    rng: random.Random,
    low: int,
    high: int,
    *,
    star: float,
    names: tuple[str, ...] = (),
    base: int = 0,
    hot: tuple[int, int] | None = None,
) -> str:
    """One random field; `hot` narrows values to a range (the hours DST changes touch)."""
    if rng.random() < star:
        return "*"
    lo, hi = hot if hot is not None and rng.random() < 0.6 else (low, high)
    kind = rng.random()
    if kind < 0.15:
        return f"*/{rng.randint(1, (high - low) + 12)}"
    terms = []
    for _ in range(rng.choice((1, 1, 1, 2, 3))):
        a, b = sorted((rng.randint(lo, hi), rng.randint(lo, hi)))
        shape = rng.random()
        if shape < 0.45:
            terms.append(_value(rng, a, names, base))
        elif shape < 0.8:
            terms.append(f"{_value(rng, a, names, base)}-{_value(rng, b, names, base)}")
        else:
            terms.append(f"{a}-{b}/{rng.randint(1, (high - low) + 5)}")
    return ",".join(terms)


def random_expression(rng: random.Random) -> str:
    while True:
        fields = [
            _field(rng, 0, 59, star=0.25, hot=(0, 35)),
            _field(rng, 0, 23, star=0.25, hot=(0, 4)),
            _field(rng, 1, 31, star=0.6),
            _field(rng, 1, 12, star=0.6, names=_MONTHS, base=1, hot=(3, 11)),
            _field(rng, 0, 7, star=0.6, names=_DAYS),
        ]
        expr = " ".join(fields)
        try:
            CrontabTrigger(expr, ZoneInfo("UTC"))
        except ValueError:
            continue  # e.g. the 31st of a month that has 30 days, ANDed: never runs
        return expr


def _equal_ends_as_one_value(expr: str) -> str:
    """Rewrites `17-17` (and `1-1/28`, `9-sep`) to `17`, around croniter's bug (difference 4)."""
    names = {name: i for i, name in enumerate(_DAYS)} | {
        name: i + 1 for i, name in enumerate(_MONTHS)
    }

    def number(text: str) -> int:
        return names[text] if text in names else int(text)

    fields = []
    for field in expr.split():
        terms = []
        for term in field.split(","):
            ends = term.split("/")[0].split("-")
            if len(ends) == 2 and number(ends[0]) == number(ends[1]):
                term = str(number(ends[0]))
            terms.append(term)
        fields.append(",".join(terms))
    return " ".join(fields)


class Oracle:
    """croniter's calendar in naive local time, with cron(8)'s DST rules applied here."""

    def __init__(self, expr: str, tz: ZoneInfo, changes: list[datetime], calendar: Any) -> None:
        self.tz = tz
        self.fixed = fixed_time(expr)
        self.calendar = calendar
        # Each change as (instant, local wall time just before, local wall time just after).
        self.changes = [
            (
                change,
                (change - timedelta(microseconds=1)).astimezone(tz).replace(tzinfo=None),
                change.astimezone(tz).replace(tzinfo=None),
            )
            for change in changes
        ]

    def instants(self, wall: datetime) -> list[datetime]:
        """When a local wall time `wall` runs, per cron(8)."""
        first = wall.replace(tzinfo=self.tz, fold=0).astimezone(UTC)
        second = wall.replace(tzinfo=self.tz, fold=1).astimezone(UTC)
        if first == second:
            return [first]
        if first.astimezone(self.tz).replace(tzinfo=None) != wall:
            # Skipped by a spring-forward change (in any year): the change lies in between.
            return [self._change_between(second, first)] if self.fixed else []
        return [first] if self.fixed else [first, second]

    def _change_between(self, low: datetime, high: datetime) -> datetime:
        for change, _, _ in self.changes:
            if low <= change <= high:
                return change
        while high - low > timedelta(minutes=1):
            mid = low + (high - low) / 2
            if mid.astimezone(self.tz).utcoffset() == low.astimezone(self.tz).utcoffset():
                low = mid
            else:
                high = mid
        return high.replace(second=0, microsecond=0)

    def fire_times(self, after: datetime, n: int) -> list[datetime]:
        local = after.astimezone(self.tz)
        start = local.replace(tzinfo=None)
        if len(self.instants(start)) == 2 or self.fixed is False and self._repeated(start):
            # In the first copy of a repeated hour, earlier wall times still run (in their
            # second copy) after `after`: begin an hour earlier on the wall.
            start -= timedelta(hours=1)
        iterator = self.calendar
        iterator.set_current(start, force=True)
        found: set[datetime] = set()
        repeated = False
        for _ in range(2000):
            wall = iterator.get_next(datetime)
            instants = self.instants(wall)
            repeated = repeated or self._repeated(wall)
            found.update(t for t in instants if t > after)
            if len(found) >= n:
                if not repeated:
                    break
                # Past a repeated hour, a later wall time can run earlier than one found.
                nth = sorted(found)[n - 1]
                if wall > nth.astimezone(self.tz).replace(tzinfo=None) + timedelta(hours=1):
                    break
        return sorted(found)[:n]

    def _repeated(self, wall: datetime) -> bool:
        first = wall.replace(tzinfo=self.tz, fold=0).astimezone(UTC)
        return first != wall.replace(tzinfo=self.tz, fold=1).astimezone(UTC)


def test_the_oracle_knows_each_zones_two_2026_changes() -> None:
    for name in ZONES:
        assert len(transitions_2026(ZoneInfo(name))) == 2, name


def calendar(expr: str) -> Any:
    """croniter for an expression, on naive wall-clock times (differences 2 and 4)."""
    fields = expr.split()
    day_or = not (fields[2].startswith("*") or fields[4].startswith("*"))
    start = datetime(2026, 1, 1)
    return croniter_module.croniter(_equal_ends_as_one_value(expr), start, day_or=day_or)


def test_cron_trigger_matches_the_oracle_around_every_2026_dst_change() -> None:
    rng = random.Random(SEED)
    expressions = [random_expression(rng) for _ in range(EXPRESSIONS)]
    assert len(set(expressions)) > EXPRESSIONS * 0.95
    differences = []
    compared = 0
    calendars = {expr: calendar(expr) for expr in expressions}
    for name in ZONES:
        tz = ZoneInfo(name)
        changes = transitions_2026(tz)
        for expr in expressions:
            trigger = CrontabTrigger(expr, tz)
            oracle = Oracle(expr, tz, changes, calendars[expr])
            for change in changes:
                # Anywhere from three hours before to one hour after the change, to the second.
                start = change + timedelta(seconds=rng.randint(-3 * 3600, 3600))
                ours = trigger.fire_times(start, FIRES)
                theirs = oracle.fire_times(start, FIRES)
                compared += 1
                if ours != theirs:
                    differences.append(
                        f"{expr!r} in {name} after {start.astimezone(tz).isoformat()}:"
                        f" ours {[t.astimezone(tz).isoformat() for t in ours]}"
                        f" vs oracle {[t.astimezone(tz).isoformat() for t in theirs]}"
                    )
    assert compared == EXPRESSIONS * len(ZONES) * 2
    assert not differences, f"{len(differences)} differences, first ones:\n" + "\n".join(
        differences[:10]
    )


def test_the_expressions_exercise_the_dst_rules() -> None:
    # A differential test is only as good as its inputs: enough of them are fixed-time jobs
    # whose hours are the ones DST changes skip or repeat, and enough are wildcard jobs.
    rng = random.Random(SEED)
    expressions = [random_expression(rng) for _ in range(EXPRESSIONS)]
    fixed = [e for e in expressions if fixed_time(e)]
    early = [e for e in fixed if any(h in e.split()[1].split(",") for h in ("0", "1", "2", "3"))]
    assert len(fixed) > 800
    assert len(early) > 100
    assert len(expressions) - len(fixed) > 500
    ored = [e for e in expressions if e.split()[2][0] != "*" and e.split()[4][0] != "*"]
    assert len(ored) > 100
