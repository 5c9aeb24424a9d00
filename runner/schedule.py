"""Schedules as APScheduler triggers, and the pure computations around them.

The daemon wraps APScheduler around these; nothing here reads the clock or sleeps, so every
decision (next fire times, catch-up, back-off) is tested by computing with a given `now`.

Cron expressions follow crontab(5), not APScheduler's dialect: APScheduler 3 numbers weekdays
from 0 = Monday, crontab from 0 = Sunday (7 is Sunday too), so `0 9 * * 0` handed to
`CronTrigger.from_crontab` would run on Mondays. `cron_trigger` translates the day-of-week field.
One crontab rule is not reproduced: when both day-of-month and day-of-week are restricted,
crontab fires when *either* matches, APScheduler only when both do.
"""

from __future__ import annotations

import random
import re
from datetime import UTC, datetime, timedelta
from typing import Protocol
from zoneinfo import ZoneInfo

from apscheduler.triggers.base import BaseTrigger
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.date import DateTrigger
from apscheduler.triggers.interval import IntervalTrigger

# APScheduler's default misfire_grace_time of 1 s drops a run that starts more than a second
# late, and the check happens in the worker thread: a run that waited for a free worker, or a
# scheduler that woke a few seconds late, silently loses the run. Ten minutes covers waiting for
# a worker and a late wake-up, yet a daily "morning" run is not played in the afternoon after the
# laptop slept all day: a run later than this is reported missed (and `catch_up` jobs may pass
# `misfire_grace_time(True)`, i.e. no limit, to get exactly one late run, thanks to coalescing).
MISFIRE_GRACE_TIME: int = 600

_ONE_US = timedelta(microseconds=1)
_WEEKDAY_NAMES = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")  # APScheduler's order
_CRON_DAY_NUMBERS = {"sun": 0, "mon": 1, "tue": 2, "wed": 3, "thu": 4, "fri": 5, "sat": 6}
_DOW_PART = re.compile(
    r"^(?:(?P<all>\*)|(?P<first>\d+|[a-z]{3})(?:-(?P<last>\d+|[a-z]{3}))?)"
    r"(?:/(?P<step>\d+))?$"
)


class ScheduleLike(Protocol):
    """What `runner.config.ScheduleConfig` provides: exactly one of cron, every, at."""

    @property
    def cron(self) -> str | None: ...

    @property
    def every(self) -> timedelta | None: ...

    @property
    def at(self) -> datetime | None: ...

    @property
    def jitter(self) -> timedelta | None: ...


def misfire_grace_time(catch_up: bool) -> int | None:
    """The `misfire_grace_time` for a job: unlimited for `catch_up` jobs, else the default.

    With coalescing, "unlimited" means a job whose run passed while the machine slept runs
    once on wake-up, which is what `catch_up` promises for a daemon that was down.
    """
    return None if catch_up else MISFIRE_GRACE_TIME


def cron_weekdays(field: str) -> str:
    """Translates a crontab day-of-week field into APScheduler's numbering.

    Numbers follow crontab (0 and 7 = Sunday, 1 = Monday); names (`mon-fri`) mean what they
    say. The result lists names, which APScheduler cannot misread: `1-5` -> `mon,tue,wed,thu,fri`.

    Raises:
        ValueError: the field is not a valid crontab day-of-week.
    """
    days: set[int] = set()  # APScheduler numbering, 0 = Monday
    for part in field.lower().split(","):
        match = _DOW_PART.match(part.strip())
        if not match:
            raise ValueError(f"bad day-of-week {part!r}")
        step = int(match["step"]) if match["step"] else 1
        if step < 1:
            raise ValueError(f"bad day-of-week step in {part!r}")
        if match["all"]:
            # `*/2` counts from Sunday, crontab's day 0: sun, tue, thu, sat.
            days.update(_from_cron(n) for n in range(0, 7, step))
            continue
        first = _cron_day(match["first"], part)
        if match["last"]:
            last = _cron_day(match["last"], part, end=True)
        elif match["step"]:
            last = 6  # `1/2`: from 1 to the end of the week
        else:
            last = first
        if last < first:
            raise ValueError(f"bad day-of-week range {part!r}: the first day comes after the last")
        days.update(_from_cron(n) for n in range(first, last + 1, step))
    if len(days) == 7:
        return "*"
    return ",".join(_WEEKDAY_NAMES[d] for d in sorted(days))


def _cron_day(text: str, part: str, *, end: bool = False) -> int:
    if text.isdigit():
        number = int(text)
        if not 0 <= number <= 7:
            raise ValueError(f"bad day-of-week {part!r}: days are 0-7 (0 and 7 are Sunday)")
        return number
    if text not in _CRON_DAY_NUMBERS:
        raise ValueError(f"bad day-of-week {part!r}: unknown day name {text!r}")
    number = _CRON_DAY_NUMBERS[text]
    # `fri-sun` means Friday to Sunday: as the end of a range Sunday is day 7.
    return 7 if end and number == 0 else number


def _from_cron(number: int) -> int:
    return (number - 1) % 7  # crontab 1 = Monday -> 0; 0 and 7 = Sunday -> 6


def cron_trigger(expr: str, tz: ZoneInfo, *, jitter: float | None = None) -> CronTrigger:
    """A `CronTrigger` for a 5-field crontab expression, with crontab's weekday numbering.

    Raises:
        ValueError: not 5 fields, or a field APScheduler rejects.
    """
    fields = expr.split()
    if len(fields) != 5:
        raise ValueError(f"wrong number of fields (got {len(fields)}, expected 5)")
    minute, hour, day, month, day_of_week = fields
    return CronTrigger(
        minute=minute,
        hour=hour,
        day=day,
        month=month,
        day_of_week=cron_weekdays(day_of_week),
        timezone=tz,
        jitter=jitter,
    )


def build_trigger(
    schedule: ScheduleLike,
    tz: ZoneInfo,
    *,
    start: datetime | None = None,
    with_jitter: bool = True,
) -> BaseTrigger:
    """The APScheduler trigger for a schedule.

    Args:
        schedule: exactly one of `cron`, `every`, `at` set.
        tz: the config's time zone: cron fields and a naive `at` are read in it.
        start: for `every`, the first fire time; later ones follow at the interval, so passing
            the last scheduled run keeps the cadence across restarts. None: now + interval.
        with_jitter: False builds the same trigger without jitter, for computing fire times.
    """
    jitter = _seconds(schedule.jitter) if with_jitter else None
    if schedule.cron is not None:
        return cron_trigger(schedule.cron, tz, jitter=jitter)
    if schedule.every is not None:
        return IntervalTrigger(
            seconds=schedule.every.total_seconds(), start_date=start, timezone=tz, jitter=jitter
        )
    if schedule.at is not None:
        return DateTrigger(schedule.at, timezone=tz)
    raise ValueError("a schedule needs one of cron, every or at")


def _seconds(value: timedelta | None) -> float | None:
    if not value:
        return None
    return value.total_seconds()


def next_fire_times(trigger: BaseTrigger, after: datetime, n: int) -> list[datetime]:
    """Up to `n` fire times strictly after `after`, in UTC (fewer when the trigger ends).

    Jitter is whatever the trigger has: build it with `with_jitter=False` for exact times.
    """
    _require_aware(after, "after")
    times: list[datetime] = []
    previous: datetime | None = None
    cursor = after + _ONE_US
    # DateTrigger ignores `now` and returns its date even when it is past; skip such times
    # (bounded, in case a trigger keeps answering with the past).
    for _ in range(n + 1000):
        if len(times) >= n:
            break
        fire = trigger.get_next_fire_time(previous, cursor)
        if fire is None:
            break
        if fire > after:
            times.append(fire.astimezone(UTC))
        previous = fire
        cursor = fire
    return times


def missed_fire_time(
    schedule: ScheduleLike,
    tz: ZoneInfo,
    *,
    last_scheduled: datetime | None,
    now: datetime,
    created_at: datetime | None = None,
) -> datetime | None:
    """The catch-up decision: the one run to make up for at start, or None.

    Returns the most recent fire time strictly between the last scheduled run and `now` (one,
    however many were missed). With no history the anchor is `created_at` (when the job was
    first seen); with neither, None: a brand-new job does not catch up on its first start.
    `every` schedules are anchored on the last scheduled run (fire times at last + k * interval,
    the cadence `build_trigger(start=last_scheduled)` continues); cron schedules use their own
    calendar; an `at` schedule is missed when its moment lies in between. Jitter is ignored.
    """
    _require_aware(now, "now")
    anchor = last_scheduled if last_scheduled is not None else created_at
    if anchor is None:
        return None
    _require_aware(anchor, "last_scheduled")
    if anchor >= now:
        return None
    if schedule.every is not None:
        return _missed_interval(schedule.every, anchor, now)
    if schedule.cron is not None:
        return _missed_cron(cron_trigger(schedule.cron, tz), anchor, now)
    if schedule.at is not None:
        when = DateTrigger(schedule.at, timezone=tz).run_date
        return when.astimezone(UTC) if anchor < when < now else None
    raise ValueError("a schedule needs one of cron, every or at")


def _missed_interval(interval: timedelta, anchor: datetime, now: datetime) -> datetime | None:
    if interval <= timedelta(0):
        raise ValueError("an interval must be positive")
    count = (now - anchor) // interval
    latest = anchor + count * interval
    if latest >= now:  # exactly at `now` is due, not missed
        count -= 1
        latest -= interval
    return latest.astimezone(UTC) if count >= 1 else None


def _missed_cron(trigger: CronTrigger, anchor: datetime, now: datetime) -> datetime | None:
    def after(moment: datetime) -> datetime | None:
        fire: datetime | None = trigger.get_next_fire_time(None, moment + _ONE_US)
        return fire

    best = after(anchor)
    if best is None or best >= now:
        return None
    # CronTrigger only looks forward, so find the last fire time before `now` by bisecting the
    # gap instead of stepping through every fire time (a per-minute job down for a month would
    # be 40,000 steps). Invariant: `best` fires, and nothing fires in (high, now).
    high = now
    while high - best > timedelta(seconds=1):
        middle = best + (high - best) / 2
        fire = after(middle)
        if fire is not None and fire < now:
            best = fire
        else:
            high = middle
    # At most a second is left between `best` and `high`: step to be exact.
    while (fire := after(best)) is not None and fire < now:
        best = fire
    return best.astimezone(UTC)


def backoff_delay(
    attempt: int,
    *,
    base: float = 30.0,
    cap: float = 3600.0,
    rng: random.Random | None = None,
) -> float:
    """Seconds to wait before retry number `attempt`: exponential, jittered, capped.

    Attempt 1 waits between base/2 and base, attempt 2 between base and 2*base, and so on,
    never above `cap`. The random half spreads retries so that jobs failing together (Spotify
    down) do not come back together.

    Raises:
        ValueError: attempt < 1.
    """
    if attempt < 1:
        raise ValueError("attempt counts from 1")
    # The exponent is bounded so a huge attempt number cannot overflow the float.
    ceiling = min(cap, base * 2.0 ** min(attempt - 1, 64))
    return (rng or random).uniform(ceiling / 2, ceiling)


def retry_delay(
    attempt: int,
    retry_after: float | None,
    *,
    base: float = 30.0,
    cap: float = 3600.0,
    rng: random.Random | None = None,
) -> float:
    """Seconds until retry number `attempt`: the back-off, but never sooner than Retry-After.

    Spotify's Retry-After wins over `cap`: retrying earlier only earns another 429.
    """
    delay = backoff_delay(attempt, base=base, cap=cap, rng=rng)
    if retry_after is None:
        return delay
    return max(delay, float(retry_after))


def _require_aware(value: datetime, name: str) -> None:
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{name} must be timezone-aware, got {value!r}")
