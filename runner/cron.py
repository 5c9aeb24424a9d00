"""crontab(5) expressions with cron(8)'s meaning, computed by cronsim, as an APScheduler trigger.

Why not APScheduler's own `CronTrigger`: it ANDs the two day fields, skips runs after a
spring-forward change (it adds wall-clock differences as absolute time) and speaks its own
dialect (`last`, weekday 0 = Monday). cronsim was written for Healthchecks.io to match Debian's
cron, DST quirks included; this module adds crontab's grammar check, the macros, and the
APScheduler interface. The same trigger answers the scheduler ("the next run") and the catch-up
check ("the last run before now"), so the two cannot disagree.

What an expression means (crontab(5) and cron(8) as Debian ships Vixie cron):

- Five fields: minute (0-59), hour (0-23), day of month (1-31), month (1-12 or jan-dec),
  day of week (0-7 or sun-sat; 0 and 7 are Sunday). Lists (`1,15`), ranges (`mon-fri`) and
  steps on `*` or a range (`*/15`, `8-18/2`). A step longer than its range is valid and keeps
  the first value (`*/60` is minute 0, `28-31/11` is the 28th).
- Macros: `@yearly` = `@annually`, `@monthly`, `@weekly`, `@daily` = `@midnight`, `@hourly`.
  `@reboot` is refused: the daemon has no boot to run at (use `every:` or `at:`).
- Day of month and day of week: when both are restricted, a day matches when EITHER does
  (`30 4 1,15 * 5` is the 1st, the 15th and every Friday). Vixie cron's exception, kept: when
  either field *starts with* `*` (`*/2` too), both must match (`0 0 */2 * 1` is odd-numbered
  days that are Mondays).
- Daylight saving, for "fixed-time" jobs (neither minute nor hour starts with `*`): a time that
  the spring-forward change skips runs right after the change, once; a time in the hour that a
  fall-back change repeats runs once, in its first copy. Other jobs run by the clock as it is:
  the skipped hour has no runs and the repeated hour has two sets (`0 * * * *` runs at both
  01:00s). cron(8) runs each skipped fixed time of one job right after the change; here one job's
  several skipped times collapse into one run (the second would only meet the overlap guard).
- Refused because crontab does not have them: six fields (seconds), `L`, `W`, `#`, `?`, a
  single value with a step (`5/15`: write `5-59/15`), ranges that run backwards (`sat-sun`:
  write `sat,sun` or `6-7`), names outside the month and weekday fields, and expressions that can
  never fire (`0 0 30 2 *`).

All fire times are returned in UTC, so comparisons never depend on a local time's `fold`.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, tzinfo

from apscheduler.triggers.base import BaseTrigger
from cronsim import CronSim, CronSimError

MACROS: dict[str, str] = {
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
    "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}

_MONTHS = ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")
_DAYS = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")
# name, label, lowest, highest, names (their numbers start at `lowest` for months, 0 for days)
_FIELDS: tuple[tuple[str, int, int, tuple[str, ...]], ...] = (
    ("minute", 0, 59, ()),
    ("hour", 0, 23, ()),
    ("day-of-month", 1, 31, ()),
    ("month", 1, 12, _MONTHS),
    ("day-of-week", 0, 7, _DAYS),
)
_TERM = re.compile(
    r"^(?:(?P<star>\*)|(?P<first>[0-9]+|[a-z]+)(?:-(?P<last>[0-9]+|[a-z]+))?)"
    r"(?:/(?P<step>[0-9]+))?$"
)
# Quartz/cronsim extensions that crontab does not have: `5L`, `15W`.
_QUARTZ = re.compile(r"^[0-9]+[lw]$")
_ONE_US = timedelta(microseconds=1)
# cronsim looks this far back; from there the forward iteration (the one source of truth) steps.
_REVERSE_PROBE = timedelta(hours=3)


class CronError(ValueError):
    """An expression that is not a valid crontab(5) schedule; the message says which part."""


@functools.lru_cache(maxsize=1024)
def normalize(expression: str) -> str:
    """Checks an expression against crontab(5) and returns its five fields, macros expanded.

    Raises:
        CronError: one line naming the field and what is wrong, e.g.
            `bad hour field '25': 25 is out of range 0-23`.
    """
    text = " ".join(expression.split()).lower()
    if text.startswith("@"):
        if text == "@reboot":
            raise CronError(
                "@reboot is not supported: the daemon has no boot to run at; "
                "use every: or at:, or catch_up: true to run once after a stop"
            )
        if text not in MACROS:
            raise CronError(f"unknown macro '{text}' (known: {', '.join(MACROS)})")
        return MACROS[text]
    fields = text.split()
    if len(fields) != len(_FIELDS):
        raise CronError(f"wrong number of fields (got {len(fields)}, expected 5)")
    checked = []
    for (label, low, high, names), field in zip(_FIELDS, fields, strict=True):
        terms = []
        for term in field.split(","):
            reason = _term_problem(term, low, high, names)
            if reason:
                raise CronError(f"bad {label} field '{field}': {reason}")
            terms.append(_one_value_range(term))
        checked.append(",".join(terms))
    normalized = " ".join(checked)
    try:
        CronSim(normalized, datetime(2000, 1, 1))
    except CronSimError:
        # Our grammar check passed, so cronsim refuses a day that no chosen month has.
        raise CronError(
            f"'{normalized}' never runs: no chosen month has that day "
            "(crontab would accept it and never run it)"
        ) from None
    return normalized


def _term_problem(term: str, low: int, high: int, names: tuple[str, ...]) -> str | None:
    if term in ("l", "w", "lw", "?") or "#" in term or _QUARTZ.match(term):
        return f"'{term}' is not crontab syntax (no L, W, # or ?)"
    match = _TERM.match(term)
    if match is None:
        if term == "":
            return "an empty list item"
        return f"'{term}' is not a number, a range or a step"
    if match["step"] is not None:
        if match["first"] is not None and match["last"] is None:
            return f"a step needs a range: write {match['first']}-{high}/{match['step']}"
        if len(match["step"]) > 4 or int(match["step"]) == 0:
            return f"step {match['step']} must be 1 to 9999"
    values = []
    for part in (match["first"], match["last"]):
        if part is None:
            continue
        if part.isdigit():
            number = int(part) if len(part) <= 4 else high + 1
        elif part in names:
            number = names.index(part) + (low if names is _MONTHS else 0)
        elif names:
            return f"unknown name '{part}' (use {names[0]}-{names[-1]} or numbers)"
        else:
            return f"'{part}' is not a number"
        if not low <= number <= high:
            return f"{part} is out of range {low}-{high}"
        values.append(number)
    if len(values) == 2 and values[1] < values[0]:
        hint = " (write sat,sun or 6-7)" if names is _DAYS else ""
        return f"the range {match['first']}-{match['last']} runs backwards{hint}"
    return None


def _one_value_range(term: str) -> str:
    """`16-16/37` -> `16`: a range with equal ends is its one value, whatever the step.

    cronsim reads `16-16/37` as `16/37` (16 and 53), so it is given the plain value.
    """
    ends = term.split("/")[0].split("-")
    if len(ends) == 2 and _number(ends[0]) == _number(ends[1]):
        return ends[0]
    return term


def _number(text: str) -> int:
    if text.isdigit():
        return int(text)
    return _MONTHS.index(text) + 1 if text in _MONTHS else _DAYS.index(text)


def fixed_time(expression: str) -> bool:
    """Whether cron(8) treats the job as fixed-time across DST changes (see the module doc)."""
    minute, hour = normalize(expression).split()[:2]
    return not minute.startswith("*") and not hour.startswith("*")


def _instants(wall: datetime, zone: tzinfo) -> list[datetime]:
    """The instants (UTC) at which a zone's clock shows `wall`: one, two (a repeated hour) or
    none (a skipped hour)."""
    first = wall.replace(tzinfo=zone, fold=0).astimezone(UTC)
    second = wall.replace(tzinfo=zone, fold=1).astimezone(UTC)
    if first == second:
        return [first]
    shown = [t for t in (first, second) if t.astimezone(zone).replace(tzinfo=None) == wall]
    return sorted(set(shown))


class CrontabTrigger(BaseTrigger):  # type: ignore[misc]  # APScheduler has no type hints
    """Fires when a crontab(5) expression matches, in a time zone, with cron(8)'s DST rules.

    Args:
        expression: five fields or a macro; checked by `normalize`.
        timezone: the zone the fields are read in.
        jitter: up to this many seconds added to each fire time (APScheduler's meaning).

    Raises:
        CronError: the expression is not valid crontab.
    """

    __slots__ = ("expression", "timezone", "jitter", "_fixed")

    def __init__(self, expression: str, timezone: tzinfo, *, jitter: float | None = None) -> None:
        self.expression = normalize(expression)
        self.timezone = timezone
        self.jitter = jitter
        self._fixed = fixed_time(self.expression)

    def get_next_fire_time(
        self, previous_fire_time: datetime | None, now: datetime
    ) -> datetime | None:
        """APScheduler's question: the first fire time after the previous one, or from `now`."""
        start = previous_fire_time + _ONE_US if previous_fire_time is not None else now
        fire = self.next_after(start - _ONE_US)
        result: datetime | None = self._apply_jitter(fire, self.jitter, now)
        return result

    def next_after(self, moment: datetime) -> datetime | None:
        """The first fire time strictly after `moment` (aware), in UTC; None past 50 years."""
        return next(self._forward(moment), None)

    def forward(self, after: datetime) -> Iterator[datetime]:
        """The fire times strictly after `after` (aware), in UTC, in order."""
        return self._forward(after)

    def fire_times(self, after: datetime, n: int) -> list[datetime]:
        """Up to `n` fire times strictly after `after`, in UTC."""
        times: list[datetime] = []
        for fire in self._forward(after):
            if len(times) >= n:
                break
            times.append(fire)
        return times

    def last_before(self, moment: datetime) -> datetime | None:
        """The latest fire time strictly before `moment` (aware), in UTC, or None.

        cronsim's reverse iteration finds a starting point a little before; the forward
        iteration, the one the scheduler uses, decides, so DST rules apply identically.
        """
        probe = moment.astimezone(UTC) - _REVERSE_PROBE
        for _ in range(64):
            exhausted = False
            wall = probe.astimezone(self.timezone).replace(tzinfo=None)
            try:
                anchor = next(CronSim(self.expression, wall, reverse=True))
                # Two hours of slack: a wall time read in the wrong copy of a repeated hour.
                start = anchor.replace(tzinfo=self.timezone).astimezone(UTC) - timedelta(hours=2)
            except StopIteration:  # nothing in the 50 years before
                start, exhausted = probe, True
            best: datetime | None = None
            for fire in self._forward(start):
                if fire >= moment:
                    break
                best = fire
            if best is not None or exhausted:
                return best
            probe = start - timedelta(days=1)
        return None

    def _forward(self, after: datetime) -> Iterator[datetime]:
        if after.tzinfo is None or after.utcoffset() is None:
            raise ValueError(f"a timezone-aware datetime is needed, got {after!r}")
        after = after.astimezone(UTC)
        source = self._fixed_times(after) if self._fixed else self._wildcard_times(after)
        last = after
        for fire in source:
            # Guards a local time given without `fold` from ever going back in absolute time.
            if fire > last:
                last = fire
                yield fire

    def _fixed_times(self, after: datetime) -> Iterator[datetime]:
        # cronsim's own DST handling for fixed-time jobs is Debian cron's. It drops
        # microseconds and steps a second before matching: whole-second times > `after`.
        iterator = CronSim(self.expression, after.astimezone(self.timezone))
        while True:
            try:
                yield next(iterator).astimezone(UTC)
            except StopIteration:
                return

    def _wildcard_times(self, after: datetime) -> Iterator[datetime]:
        # A wildcard job runs whenever the wall clock matches: cronsim walks the calendar in
        # wall-clock time (no zone: its hour steps misjudge 30-minute changes such as Lord
        # Howe's), and each wall time runs at every instant that shows it: none in a skipped
        # hour, two in a repeated one.
        zone = self.timezone
        wall = after.astimezone(zone).replace(tzinfo=None)
        if _instants(wall, zone)[1:]:
            # In the first copy of a repeated hour earlier wall times still come again.
            wall -= timedelta(hours=2)
        pending: list[datetime] = []
        for fire_wall in CronSim(self.expression, wall):
            instants = _instants(fire_wall, zone)
            pending.extend(instants)
            if not instants:
                continue
            # No later wall time runs before this one's first instant: release up to it.
            pending.sort()
            while pending and pending[0] <= instants[0]:
                yield pending.pop(0)
        yield from sorted(pending)

    def __str__(self) -> str:
        return f"cron[{self.expression}]"

    def __repr__(self) -> str:
        return f"<CrontabTrigger {self.expression!r} in {self.timezone} jitter={self.jitter}>"
