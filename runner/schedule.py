"""Schedules as APScheduler triggers, and the pure computations around them.

The daemon wraps APScheduler around these; nothing here reads the clock or sleeps, so every
decision (next fire times, catch-up, back-off) is tested by computing with a given `now`.

- `cron`: `runner.cron.CrontabTrigger`, crontab(5) with cron(8)'s DST rules (see that module).
- `every`: `GridTrigger`, a fixed grid `anchor + k * interval` anchored on *scheduled* times
  (never on when a run actually started, so lateness and jitter never shift it). A catch-up run
  counts as the run of the slot it makes up for, and the next run is the first grid point at
  least one interval after the catch-up started: never two runs in a row. A restart without
  catch-up keeps the grid: the runs that fell while the daemon was down are not made up, and
  the next run is the first grid point from the restart on.
- `at`: APScheduler's `DateTrigger`, once.
- A failover (state on PostgreSQL, an active/standby pair) is not a restart: the fire times
  that fell in its gap of seconds each run once, late (`failover_gap`), and the schedule goes on
  at its own times.

The scheduler and the catch-up check use the same trigger objects, so they cannot disagree.
"""

from __future__ import annotations

import random
from collections import deque
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta, tzinfo
from itertools import takewhile
from typing import Any, Protocol

from apscheduler.triggers.base import BaseTrigger
from apscheduler.triggers.date import DateTrigger

from runner.cron import CrontabTrigger
from runner.state.contract import RunRecord, RunStatus

# APScheduler's default misfire_grace_time of 1 s drops a run that starts more than a second
# late, and the check happens in the worker thread: a run that waited for a free worker, or a
# scheduler that woke a few seconds late, silently loses the run. Ten minutes covers waiting for
# a worker and a late wake-up, yet a daily "morning" run is not played in the afternoon after the
# laptop slept all day: a run later than this is reported missed (and `catch_up` jobs may pass
# `misfire_grace_time(True)`, i.e. no limit, to get exactly one late run, thanks to coalescing).
MISFIRE_GRACE_TIME: int = 600

_ONE_US = timedelta(microseconds=1)


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


class GridTrigger(BaseTrigger):  # type: ignore[misc]  # APScheduler has no type hints
    """Fires at `anchor + k * interval` (k any integer), never before `not_before`.

    Args:
        anchor: one point of the grid (a scheduled time, never an actual start time).
        interval: the grid's spacing; positive.
        not_before: no fire time earlier than this (after a catch-up: one interval after it).
        jitter: up to this many seconds added to each fire time; shorter than the interval.
    """

    __slots__ = ("anchor", "interval", "not_before", "jitter")

    def __init__(
        self,
        anchor: datetime,
        interval: timedelta,
        *,
        not_before: datetime | None = None,
        jitter: float | None = None,
    ) -> None:
        _require_aware(anchor, "anchor")
        if interval <= timedelta(0):
            raise ValueError("an interval must be positive")
        self.anchor = anchor.astimezone(UTC)
        self.interval = interval
        self.not_before = not_before.astimezone(UTC) if not_before is not None else None
        self.jitter = jitter

    def first_at_or_after(self, moment: datetime) -> datetime:
        """The first grid point at or after `moment` (and not before `not_before`)."""
        if self.not_before is not None and moment < self.not_before:
            moment = self.not_before
        steps = -((self.anchor - moment) // self.interval)  # ceiling division
        return self.anchor + steps * self.interval

    def next_after(self, moment: datetime) -> datetime:
        """The first fire time strictly after `moment`."""
        return self.first_at_or_after(moment + _ONE_US)

    def last_before(self, moment: datetime) -> datetime | None:
        """The latest grid point strictly before `moment`, or None before `not_before`."""
        steps = -((self.anchor - moment) // self.interval) - 1
        latest = self.anchor + steps * self.interval
        if self.not_before is not None and latest < self.not_before:
            return None
        return latest

    def get_next_fire_time(
        self, previous_fire_time: datetime | None, now: datetime
    ) -> datetime | None:
        """APScheduler's question: the grid point after the previous one, or from `now`."""
        start = previous_fire_time + _ONE_US if previous_fire_time is not None else now
        fire: datetime | None = self._apply_jitter(
            self.first_at_or_after(start.astimezone(UTC)), self.jitter, now
        )
        return fire

    def __str__(self) -> str:
        return f"every[{self.interval} from {self.anchor.isoformat()}]"


@dataclass(frozen=True)
class Plan:
    """What to do with one job when the daemon (re)schedules it.

    Attributes:
        trigger: the regular trigger, jitter included; None when nothing more is to run.
        exact: the same without jitter: for naming a run's slot and for showing the next run.
        catch_up: the missed slot that one run now makes up for, or None.
    """

    trigger: BaseTrigger | None
    exact: BaseTrigger | None
    catch_up: datetime | None


def plan(
    schedule: ScheduleLike,
    tz: tzinfo,
    *,
    now: datetime,
    last_scheduled: datetime | None,
    caught_up_at: datetime | None = None,
    catch_up: bool = False,
    created_at: datetime | None = None,
) -> Plan:
    """The triggers and the catch-up decision for one job: the daemon's and `jobs`'s one answer.

    Args:
        schedule: exactly one of cron, every, at.
        tz: the config's time zone.
        now: the current time (aware).
        last_scheduled: the latest slot recorded for the job, None for a job that never ran.
        caught_up_at: when the catch-up run of that slot started, if it was one.
        catch_up: the job's `catch_up` setting.
        created_at: for a job with no history, when it was first seen (stands in for the last
            run in the catch-up decision); None: a brand-new job does not catch up.
    """
    _require_aware(now, "now")
    jitter = _seconds(schedule.jitter)
    missed = None
    if catch_up:
        missed = missed_fire_time(
            schedule,
            tz,
            last_scheduled=last_scheduled,
            now=now,
            created_at=created_at,
            caught_up_at=caught_up_at,
        )
    if schedule.every is not None:
        interval = schedule.every
        if last_scheduled is None:
            # A new job runs one interval after it is first scheduled.
            anchor, not_before = now, now + interval
        else:
            anchor = last_scheduled
            not_before = now
            if caught_up_at is not None:
                not_before = max(now, caught_up_at + interval)
        if missed is not None:
            # The catch-up run now is the run of its slot: the next is an interval later.
            not_before = now + interval
        return Plan(
            GridTrigger(anchor, interval, not_before=not_before, jitter=jitter),
            GridTrigger(anchor, interval, not_before=not_before),
            missed,
        )
    if schedule.cron is not None:
        return Plan(
            CrontabTrigger(schedule.cron, tz, jitter=jitter),
            CrontabTrigger(schedule.cron, tz),
            missed,
        )
    if schedule.at is not None:
        once = DateTrigger(schedule.at, timezone=tz)
        late = now - once.run_date
        if last_scheduled is not None or late > timedelta(seconds=MISFIRE_GRACE_TIME):
            # A one-off that already ran (or is long past) is not run again by a restart; a
            # missed one is made up once by the catch-up. One a little late runs now, as any
            # run within the misfire grace time does.
            return Plan(None, None, missed)
        return Plan(once, once, None if late >= timedelta(0) else missed)
    raise ValueError("a schedule needs one of cron, every or at")


class _Configured(Protocol):
    """The part of `runner.config.Config` `past_one_offs` reads."""

    @property
    def jobs(self) -> Mapping[str, Any]: ...

    def tzinfo(self) -> tzinfo: ...

    def problem(self, key_path: Sequence[str | int], message: str) -> str: ...


def past_one_offs(config: _Configured, now: datetime) -> list[str]:
    """`check`'s problems for enabled one-off jobs whose `at` has passed: they never run again.

    Only `check` refuses them: the daemon keeps starting with such a job (it may have run it
    already, or catch it up once), so a finished one-off never blocks a restart.
    """
    problems = []
    for name, job in config.jobs.items():
        at = job.schedule.at
        if at is None or not job.enabled:
            continue
        when = DateTrigger(at, timezone=config.tzinfo()).run_date
        if when <= now:
            problems.append(
                config.problem(
                    ("jobs", name, "schedule", "at"),
                    f"{at:%Y-%m-%d %H:%M} is in the past, so this one-off never runs (again): "
                    "move it ahead, or remove the job or set enabled: false",
                )
            )
    return problems


def build_trigger(
    schedule: ScheduleLike,
    tz: tzinfo,
    *,
    start: datetime | None = None,
    with_jitter: bool = True,
) -> BaseTrigger:
    """The APScheduler trigger for a schedule, for a job whose last slot was `start`.

    Args:
        schedule: exactly one of `cron`, `every`, `at` set.
        tz: the config's time zone: cron fields and a naive `at` are read in it.
        start: for `every`, a point of the grid (the last scheduled run); the first fire time
            is the first grid point after it. None: the grid starts now + interval.
        with_jitter: False builds the same trigger without jitter, for computing fire times.
    """
    jitter = _seconds(schedule.jitter) if with_jitter else None
    if schedule.cron is not None:
        return CrontabTrigger(schedule.cron, tz, jitter=jitter)
    if schedule.every is not None:
        if start is None:
            return GridTrigger(datetime.now(UTC) + schedule.every, schedule.every, jitter=jitter)
        return GridTrigger(start, schedule.every, not_before=start + _ONE_US, jitter=jitter)
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


def slot_of(exact: BaseTrigger, now: datetime) -> datetime:
    """The scheduled time a regular run starting at `now` stands for: the last one due.

    Jitter only delays a run (APScheduler adds 0..jitter), so the run's slot is the latest
    exact fire time at or before `now`; with no such time (a DateTrigger), `now`.
    """
    if isinstance(exact, CrontabTrigger | GridTrigger):
        slot = exact.last_before(now + _ONE_US)
        if slot is not None:
            return slot
    if isinstance(exact, DateTrigger):
        return exact.run_date.astimezone(UTC)  # type: ignore[no-any-return]
    return now.astimezone(UTC)


class RunHistory(Protocol):
    """The part of `runner.state.StateStore` the schedule reads."""

    def last_scheduled_at(self, job: str, account: str = "default") -> datetime | None: ...

    def runs(
        self, job: str | None = None, *, limit: int = 50, account: str = "default"
    ) -> list[Any]: ...


def slot_history(
    state: RunHistory, job: str, account: str = "default"
) -> tuple[datetime | None, datetime | None]:
    """The job's last slot and, when a catch-up run made it up, when that run started."""
    last = state.last_scheduled_at(job, account=account)
    if last is None:
        return None, None
    for record in state.runs(job, limit=20, account=account):
        if record.scheduled_at == last and record.trigger == "catch_up":
            return last, record.started_at
    return last, None


def lost_to_authorization(
    state: RunHistory,
    job: str,
    account: str,
    *,
    exact: BaseTrigger | None,
    now: datetime,
) -> datetime | None:
    """The job's latest fire time when it did not run for want of an authorization, or None.

    The fire time of `refused_for_authorization`'s run.
    """
    refused = refused_for_authorization(state, job, account, exact=exact, now=now)
    return None if refused is None or refused.scheduled_at is None else refused.scheduled_at


def refused_for_authorization(
    state: RunHistory,
    job: str,
    account: str,
    *,
    exact: BaseTrigger | None,
    now: datetime,
) -> RunRecord | None:
    """The run of the job's latest fire time that ended `needs_auth`, if it is to be made up.

    That is the newest run recorded for the job's last slot, when it ended `needs_auth`, no run
    of the job (of any slot, manual ones too) has ended ok since, and the schedule (`exact`:
    its trigger without jitter, None when nothing more is scheduled) has no fire time after it
    up to `now`: once a later fire time has come, its own run stands for the job, and a
    make-up of the older one would be a second run in a row. One fire time however many were
    lost: the make-up is coalesced, like a restart's catch-up. Its `scheduled_at` is in UTC.
    """
    _require_aware(now, "now")
    last = state.last_scheduled_at(job, account=account)
    if last is None:
        return None
    runs = state.runs(job, limit=20, account=account)
    of_slot = [record for record in runs if record.scheduled_at == last]
    if not of_slot:
        return None  # beyond the recent history: nothing to go by
    newest: RunRecord = max(of_slot, key=lambda record: record.id)
    if newest.status is not RunStatus.NEEDS_AUTH or newest.ended_at is None:
        return None
    if any(record.status is RunStatus.OK and record.id > newest.id for record in runs):
        return None
    if exact is not None:
        later = next_fire_times(exact, last, 1)
        if later and later[0] <= now:
            return None
    return replace(newest, scheduled_at=last.astimezone(UTC))


def missed_fire_time(
    schedule: ScheduleLike,
    tz: tzinfo,
    *,
    last_scheduled: datetime | None,
    now: datetime,
    created_at: datetime | None = None,
    caught_up_at: datetime | None = None,
) -> datetime | None:
    """The catch-up decision: the one run to make up for at start, or None.

    Returns the most recent fire time strictly between the last scheduled run and `now` (one,
    however many were missed). With no history the anchor is `created_at` (when the job was
    first seen); with neither, None: a brand-new job does not catch up on its first start.
    `every` schedules use the grid through the last scheduled run; a slot less than one interval
    after a catch-up run's start (`caught_up_at`) was covered by that run, not missed. Cron
    schedules use their own calendar; an `at` schedule is missed when its moment lies in
    between. Jitter is ignored.
    """
    _require_aware(now, "now")
    anchor = last_scheduled if last_scheduled is not None else created_at
    if anchor is None:
        return None
    _require_aware(anchor, "last_scheduled")
    if anchor >= now:
        return None
    latest: datetime | None
    if schedule.every is not None:
        not_before = anchor + _ONE_US
        if caught_up_at is not None:
            not_before = max(not_before, caught_up_at + schedule.every)
        latest = GridTrigger(anchor, schedule.every, not_before=not_before).last_before(now)
    elif schedule.cron is not None:
        latest = CrontabTrigger(schedule.cron, tz).last_before(now)
    elif schedule.at is not None:
        latest = DateTrigger(schedule.at, timezone=tz).run_date.astimezone(UTC)
        if latest >= now:
            latest = None
    else:
        raise ValueError("a schedule needs one of cron, every or at")
    if latest is None or latest <= anchor:
        return None
    return latest.astimezone(UTC)


# A failover leaves a gap of seconds (the dead daemon's session ending, a standby's poll): its fire
# times run late, one by one. This bounds how far before the last sight of the old active daemon
# they may lie; what is older was not lost to the failover (the catch-up rule decides).
FAILOVER_GAP = timedelta(seconds=30)
# At most this many of a gap's fire times run one by one (a schedule of seconds); older ones
# coalesce into one catch-up.
FAILOVER_GAP_RUNS = 20


def failover_gap(
    schedule: ScheduleLike,
    tz: tzinfo,
    *,
    last_scheduled: datetime | None,
    caught_up_at: datetime | None,
    since: datetime,
    now: datetime,
) -> list[datetime]:
    """The fire times a failover held up: after the last recorded one, from `since`, before now.

    The new active daemon runs each of them once, late (each claims its own fire time), rather
    than the one coalesced catch-up of a restart: both daemons were meant to be running, so
    no fire time was meant to be skipped. `since` is when the standby last saw the old active
    daemon lead, less `FAILOVER_GAP`. At most the last `FAILOVER_GAP_RUNS`. A job with no
    recorded run, and a one-off, have no gap. Jitter is ignored.
    """
    _require_aware(now, "now")
    _require_aware(since, "since")
    if last_scheduled is None or schedule.at is not None:
        # A new job starts its schedule afresh; a one-off's late or missed run is `plan`'s.
        return []
    start = max(last_scheduled, since - _ONE_US)
    if start >= now:
        return []
    fires: Iterator[datetime]
    if schedule.every is not None:
        not_before = start + _ONE_US
        if caught_up_at is not None:
            not_before = max(not_before, caught_up_at + schedule.every)
        grid = GridTrigger(last_scheduled, schedule.every, not_before=not_before)
        fires = _grid_points(grid, grid.first_at_or_after(not_before))
    elif schedule.cron is not None:
        fires = CrontabTrigger(schedule.cron, tz).forward(start)
    else:
        raise ValueError("a schedule needs one of cron, every or at")
    held = deque(takewhile(lambda fire: fire < now, fires), maxlen=FAILOVER_GAP_RUNS)
    return [fire.astimezone(UTC) for fire in held]


def _grid_points(grid: GridTrigger, first: datetime) -> Iterator[datetime]:
    fire = first
    while True:
        yield fire
        fire = grid.next_after(fire)


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
