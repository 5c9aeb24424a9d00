"""Schedule computations, tested by computing with a given `now`: nothing here sleeps."""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from apscheduler.triggers.base import BaseTrigger
from apscheduler.triggers.date import DateTrigger
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from runner.config import ScheduleConfig
from runner.cron import CrontabTrigger
from runner.schedule import (
    FAILOVER_GAP_RUNS,
    MISFIRE_GRACE_TIME,
    GridTrigger,
    backoff_delay,
    build_trigger,
    failover_gap,
    lost_to_authorization,
    misfire_grace_time,
    missed_fire_time,
    next_fire_times,
    plan,
    retry_delay,
    slot_of,
)
from runner.state import RunStatus, StateStore, open_state

BERLIN = ZoneInfo("Europe/Berlin")
UTC_ZONE = ZoneInfo("UTC")


@dataclass(frozen=True)
class Sched:
    cron: str | None = None
    every: timedelta | None = None
    at: datetime | None = None
    jitter: timedelta | None = None


def utc(y: int, mo: int, d: int, h: int = 0, mi: int = 0, s: int = 0) -> datetime:
    return datetime(y, mo, d, h, mi, s, tzinfo=UTC)


def berlin(y: int, mo: int, d: int, h: int = 0, mi: int = 0, s: int = 0) -> datetime:
    return datetime(y, mo, d, h, mi, s, tzinfo=BERLIN)


# -- build_trigger -----------------------------------------------------------------------------


def test_cron_builds_a_cron_trigger_in_the_config_zone() -> None:
    trigger = build_trigger(Sched(cron="45 18 * * *"), BERLIN)
    assert isinstance(trigger, CrontabTrigger)
    times = next_fire_times(trigger, utc(2026, 7, 1, 0, 0), 2)
    # 18:45 in Berlin summer time is 16:45 UTC.
    assert times == [utc(2026, 7, 1, 16, 45), utc(2026, 7, 2, 16, 45)]


def test_cron_jitter_is_applied_and_can_be_left_out() -> None:
    schedule = Sched(cron="0 * * * *", jitter=timedelta(minutes=5))
    jittered = build_trigger(schedule, UTC_ZONE)
    exact = build_trigger(schedule, UTC_ZONE, with_jitter=False)
    assert jittered.jitter == 300
    assert exact.jitter is None
    assert next_fire_times(exact, utc(2026, 1, 1, 10, 30), 1) == [utc(2026, 1, 1, 11, 0)]


def test_every_builds_a_grid_trigger_through_start() -> None:
    start = utc(2026, 1, 1, 10, 0, 7)
    trigger = build_trigger(Sched(every=timedelta(minutes=15)), BERLIN, start=start)
    assert isinstance(trigger, GridTrigger)
    assert next_fire_times(trigger, utc(2026, 1, 1, 11, 0), 3) == [
        utc(2026, 1, 1, 11, 0, 7),
        utc(2026, 1, 1, 11, 15, 7),
        utc(2026, 1, 1, 11, 30, 7),
    ]


def test_every_with_jitter_stays_on_its_grid() -> None:
    # Jitter delays each run by up to its amount but never moves the grid: the 20th run is
    # still within 30 s of start + 19 intervals (APScheduler's IntervalTrigger drifted).
    start = utc(2026, 1, 1)
    trigger = build_trigger(
        Sched(every=timedelta(minutes=10), jitter=timedelta(seconds=30)), UTC_ZONE, start=start
    )
    times = next_fire_times(trigger, start, 20)
    for k, fire in enumerate(times, start=1):
        slot = start + k * timedelta(minutes=10)
        assert slot <= fire <= slot + timedelta(seconds=30)
    assert len({t.microsecond for t in times}) > 1


def test_at_builds_a_date_trigger_and_a_naive_time_is_in_the_config_zone() -> None:
    trigger = build_trigger(Sched(at=datetime(2026, 12, 24, 18, 0)), BERLIN)
    assert isinstance(trigger, DateTrigger)
    assert next_fire_times(trigger, utc(2026, 1, 1), 5) == [utc(2026, 12, 24, 17, 0)]
    # A one-off in the past has no next fire time.
    assert next_fire_times(trigger, utc(2027, 1, 1), 5) == []


def test_at_with_an_offset_keeps_it() -> None:
    when = datetime(2026, 12, 24, 18, 0, tzinfo=ZoneInfo("America/New_York"))
    trigger = build_trigger(Sched(at=when), BERLIN)
    assert next_fire_times(trigger, utc(2026, 1, 1), 1) == [utc(2026, 12, 24, 23, 0)]


def test_the_real_schedule_config_is_accepted() -> None:
    schedule = ScheduleConfig.model_validate({"cron": "0 9 * * 1-5"})
    trigger = build_trigger(schedule, BERLIN)
    # 2026-03-06 is a Friday: the next weekday 09:00 is Monday the 9th.
    assert next_fire_times(trigger, berlin(2026, 3, 6, 10, 0), 1) == [utc(2026, 3, 9, 8, 0)]


def test_a_schedule_with_nothing_set_is_an_error() -> None:
    with pytest.raises(ValueError, match="one of cron, every or at"):
        build_trigger(Sched(), UTC_ZONE)


# -- crontab weekdays --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("field", "weekdays"),
    [
        ("*", {"Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"}),
        ("0", {"Sun"}),
        ("7", {"Sun"}),
        ("1", {"Mon"}),
        ("1-5", {"Mon", "Tue", "Wed", "Thu", "Fri"}),
        ("mon-fri", {"Mon", "Tue", "Wed", "Thu", "Fri"}),
        ("5-7", {"Fri", "Sat", "Sun"}),
        ("0,6", {"Sat", "Sun"}),
        ("sat,sun", {"Sat", "Sun"}),
        ("*/2", {"Sun", "Tue", "Thu", "Sat"}),
        ("1-5/2", {"Mon", "Wed", "Fri"}),
        ("0-7", {"Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"}),
        ("SUN", {"Sun"}),
    ],
)
def test_cron_weekdays_follow_crontab_numbering(field: str, weekdays: set[str]) -> None:
    trigger = CrontabTrigger(f"0 9 * * {field}", UTC_ZONE)
    fired = {t.strftime("%a") for t in next_fire_times(trigger, utc(2026, 3, 1), 14)}
    assert fired == weekdays


@pytest.mark.parametrize("field", ["8", "5-1", "funday", "1-", "", "*/0", "L", "fri-sun"])
def test_bad_cron_weekdays_are_refused(field: str) -> None:
    with pytest.raises(ValueError, match="day-of-week|number of fields"):
        CrontabTrigger(f"0 9 * * {field}", UTC_ZONE)


def test_sunday_is_day_zero_as_in_crontab() -> None:
    # APScheduler's own from_crontab would read 0 as Monday.
    trigger = CrontabTrigger("0 9 * * 0", UTC_ZONE)
    (fire,) = next_fire_times(trigger, utc(2026, 3, 2), 1)  # a Monday
    assert fire == utc(2026, 3, 8, 9, 0)
    assert fire.strftime("%A") == "Sunday"


def test_cron_needs_five_fields() -> None:
    with pytest.raises(ValueError, match="expected 5"):
        CrontabTrigger("0 9 * *", UTC_ZONE)


# -- next_fire_times ---------------------------------------------------------------------------


def test_next_fire_times_are_strictly_after() -> None:
    trigger = CrontabTrigger("*/15 * * * *", UTC_ZONE)
    assert next_fire_times(trigger, utc(2026, 1, 1, 10, 15), 2) == [
        utc(2026, 1, 1, 10, 30),
        utc(2026, 1, 1, 10, 45),
    ]


def test_next_fire_times_cross_a_dst_change_in_local_time() -> None:
    # Berlin springs forward on 2026-03-29: 02:30 does not exist that day.
    trigger = CrontabTrigger("30 1 * * *", BERLIN)
    times = next_fire_times(trigger, berlin(2026, 3, 28, 12, 0), 3)
    assert [t.astimezone(BERLIN).hour for t in times] == [1, 1, 1]
    assert times[1] - times[0] == timedelta(hours=23)


def test_next_fire_times_zero_is_empty() -> None:
    assert next_fire_times(CrontabTrigger("* * * * *", UTC_ZONE), utc(2026, 1, 1), 0) == []


# -- missed_fire_time --------------------------------------------------------------------------


def test_no_history_means_no_catch_up() -> None:
    schedule = Sched(cron="0 9 * * *")
    assert missed_fire_time(schedule, UTC_ZONE, last_scheduled=None, now=utc(2026, 1, 5)) is None


def test_created_at_stands_in_for_missing_history() -> None:
    schedule = Sched(cron="0 9 * * *")
    missed = missed_fire_time(
        schedule,
        UTC_ZONE,
        last_scheduled=None,
        now=utc(2026, 1, 5, 12, 0),
        created_at=utc(2026, 1, 5, 8, 0),
    )
    assert missed == utc(2026, 1, 5, 9, 0)


def test_cron_catch_up_is_the_most_recent_missed_run_only() -> None:
    schedule = Sched(cron="0 9 * * *")
    missed = missed_fire_time(
        schedule, UTC_ZONE, last_scheduled=utc(2026, 1, 1, 9, 0), now=utc(2026, 1, 5, 12, 0)
    )
    assert missed == utc(2026, 1, 5, 9, 0)


def test_cron_nothing_missed_when_the_next_run_is_still_ahead() -> None:
    schedule = Sched(cron="0 9 * * *")
    assert (
        missed_fire_time(
            schedule, UTC_ZONE, last_scheduled=utc(2026, 1, 5, 9, 0), now=utc(2026, 1, 6, 8, 59)
        )
        is None
    )


def test_a_run_due_exactly_now_is_not_missed() -> None:
    schedule = Sched(cron="0 9 * * *")
    now = utc(2026, 1, 6, 9, 0)
    assert (
        missed_fire_time(schedule, UTC_ZONE, last_scheduled=utc(2026, 1, 5, 9, 0), now=now) is None
    )


def test_cron_catch_up_uses_the_config_zone() -> None:
    schedule = Sched(cron="45 18 * * *")
    missed = missed_fire_time(
        schedule, BERLIN, last_scheduled=utc(2026, 7, 1, 16, 45), now=utc(2026, 7, 3, 17, 0)
    )
    assert missed == utc(2026, 7, 3, 16, 45)


def test_cron_catch_up_after_a_long_outage_of_a_frequent_job() -> None:
    # Per-minute during one hour of the day, down for a year: no stepping through 20,000 runs.
    schedule = Sched(cron="* 9 * * *")
    missed = missed_fire_time(
        schedule, UTC_ZONE, last_scheduled=utc(2025, 1, 1, 9, 0), now=utc(2026, 1, 1, 12, 0)
    )
    assert missed == utc(2026, 1, 1, 9, 59)


def test_every_is_anchored_on_the_last_scheduled_run() -> None:
    schedule = Sched(every=timedelta(hours=2))
    last = utc(2026, 1, 1, 10, 7)
    missed = missed_fire_time(schedule, UTC_ZONE, last_scheduled=last, now=utc(2026, 1, 1, 17, 0))
    assert missed == utc(2026, 1, 1, 16, 7)
    # The trigger the daemon builds from the same anchor continues that cadence.
    trigger = build_trigger(schedule, UTC_ZONE, start=last, with_jitter=False)
    assert next_fire_times(trigger, utc(2026, 1, 1, 17, 0), 1) == [utc(2026, 1, 1, 18, 7)]


def test_every_nothing_missed_within_one_interval() -> None:
    schedule = Sched(every=timedelta(hours=2))
    last = utc(2026, 1, 1, 10, 0)
    assert (
        missed_fire_time(schedule, UTC_ZONE, last_scheduled=last, now=utc(2026, 1, 1, 11, 59))
        is None
    )
    assert (
        missed_fire_time(schedule, UTC_ZONE, last_scheduled=last, now=utc(2026, 1, 1, 12, 0))
        is None
    )
    assert missed_fire_time(
        schedule, UTC_ZONE, last_scheduled=last, now=utc(2026, 1, 1, 12, 0, 1)
    ) == utc(2026, 1, 1, 12, 0)


def test_at_is_missed_only_when_it_passed_since_the_last_run() -> None:
    schedule = Sched(at=datetime(2026, 6, 1, 8, 0))
    kwargs = {"last_scheduled": utc(2026, 5, 1)}
    assert missed_fire_time(schedule, BERLIN, now=utc(2026, 6, 2), **kwargs) == utc(
        2026, 6, 1, 6, 0
    )
    assert missed_fire_time(schedule, BERLIN, now=utc(2026, 5, 20), **kwargs) is None
    # Already ran (its scheduled time is in the history): nothing to catch up.
    assert (
        missed_fire_time(
            schedule, BERLIN, last_scheduled=utc(2026, 6, 1, 6, 0), now=utc(2026, 6, 2)
        )
        is None
    )


def test_a_clock_behind_the_history_catches_up_nothing() -> None:
    schedule = Sched(every=timedelta(minutes=5))
    assert (
        missed_fire_time(schedule, UTC_ZONE, last_scheduled=utc(2026, 2, 1), now=utc(2026, 1, 1))
        is None
    )


def test_naive_now_is_refused() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        missed_fire_time(
            Sched(cron="* * * * *"), UTC_ZONE, last_scheduled=None, now=datetime(2026, 1, 1)
        )


@given(
    minute=st.integers(0, 59),
    hour=st.integers(0, 23),
    last_offset=st.integers(0, 60 * 24 * 40),
    down=st.integers(1, 60 * 24 * 40),
)
# On the shared machine one draw once stalled for 3.5 s (integers, nothing to make faster): the
# property is about the catch-up, not about speed.
@settings(suppress_health_check=[HealthCheck.too_slow], deadline=None)
def test_cron_catch_up_matches_stepping_through_every_fire_time(
    minute: int, hour: int, last_offset: int, down: int
) -> None:
    expr = f"{minute} {hour},{(hour + 7) % 24} * * *"
    last = utc(2026, 1, 1) + timedelta(minutes=last_offset)
    now = last + timedelta(minutes=down, seconds=13)
    stepped = [t for t in next_fire_times(CrontabTrigger(expr, BERLIN), last, 200) if t < now]
    expected = stepped[-1] if stepped else None
    assert missed_fire_time(Sched(cron=expr), BERLIN, last_scheduled=last, now=now) == expected


# -- back-off ----------------------------------------------------------------------------------


def test_backoff_grows_exponentially_within_its_band() -> None:
    rng = random.Random(7)
    for attempt, (low, high) in enumerate([(15, 30), (30, 60), (60, 120), (120, 240)], start=1):
        for _ in range(50):
            assert low <= backoff_delay(attempt, rng=rng) <= high


def test_backoff_never_exceeds_the_cap() -> None:
    rng = random.Random(1)
    delays = [backoff_delay(a, base=30, cap=600, rng=rng) for a in range(1, 2000)]
    assert max(delays) <= 600
    assert min(delays[10:]) >= 300


def test_backoff_is_jittered() -> None:
    rng = random.Random(3)
    assert len({backoff_delay(3, rng=rng) for _ in range(10)}) == 10


def test_backoff_counts_attempts_from_one() -> None:
    with pytest.raises(ValueError, match="from 1"):
        backoff_delay(0)


def test_retry_after_is_respected_even_above_the_cap() -> None:
    rng = random.Random(5)
    assert retry_delay(1, 3600.0, cap=60, rng=rng) == 3600.0
    assert 15 <= retry_delay(1, 2.0, rng=rng) <= 30
    assert 15 <= retry_delay(1, None, rng=rng) <= 30


def test_misfire_grace_time_is_deliberate() -> None:
    # APScheduler's default of 1 s drops runs that wait for a worker or a late wake-up.
    assert MISFIRE_GRACE_TIME >= 60
    assert misfire_grace_time(False) == MISFIRE_GRACE_TIME
    assert misfire_grace_time(True) is None


# -- finding 5: every: keeps a grid of scheduled times; a catch-up is its slot's run -----------


def test_a_catch_up_counts_as_its_slots_run_and_the_next_is_an_interval_later() -> None:
    # every 1h, last run the 11:00 slot, back at 12:59:59: the old code caught up at 12:59:59
    # and ran the 13:00 slot one second later.
    hourly = Sched(every=timedelta(hours=1))
    decided = plan(
        hourly,
        UTC_ZONE,
        now=utc(2026, 1, 1, 12, 59, 59),
        last_scheduled=utc(2026, 1, 1, 11),
        catch_up=True,
    )
    assert decided.catch_up == utc(2026, 1, 1, 12)
    assert decided.exact is not None
    assert next_fire_times(decided.exact, utc(2026, 1, 1, 12, 59, 59), 2) == [
        utc(2026, 1, 1, 14),
        utc(2026, 1, 1, 15),
    ]


def test_a_restart_after_a_catch_up_does_not_make_up_the_slot_it_skipped() -> None:
    # The catch-up at 12:59:59 covered the 13:00 slot; a restart at 13:30 owes nothing.
    hourly = Sched(every=timedelta(hours=1))
    decided = plan(
        hourly,
        UTC_ZONE,
        now=utc(2026, 1, 1, 13, 30),
        last_scheduled=utc(2026, 1, 1, 12),
        caught_up_at=utc(2026, 1, 1, 12, 59, 59),
        catch_up=True,
    )
    assert decided.catch_up is None
    assert decided.exact is not None
    assert next_fire_times(decided.exact, utc(2026, 1, 1, 13, 30), 1) == [utc(2026, 1, 1, 14)]


def test_a_restart_without_catch_up_keeps_the_grid_and_makes_up_nothing() -> None:
    decided = plan(
        Sched(every=timedelta(minutes=15)),
        UTC_ZONE,
        now=utc(2026, 1, 1, 13, 7),
        last_scheduled=utc(2026, 1, 1, 10, 30),
    )
    assert decided.catch_up is None
    assert decided.exact is not None
    assert next_fire_times(decided.exact, utc(2026, 1, 1, 13, 7), 2) == [
        utc(2026, 1, 1, 13, 15),
        utc(2026, 1, 1, 13, 30),
    ]


def test_a_new_every_job_first_runs_one_interval_after_it_is_scheduled() -> None:
    now = utc(2026, 1, 1, 9, 0, 13)
    decided = plan(Sched(every=timedelta(minutes=10)), UTC_ZONE, now=now, last_scheduled=None)
    assert decided.exact is not None
    assert next_fire_times(decided.exact, now - timedelta(seconds=1), 1) == [
        now + timedelta(minutes=10)
    ]


def test_a_late_or_jittered_run_is_recorded_at_its_slot_so_the_grid_never_drifts() -> None:
    exact = GridTrigger(utc(2026, 1, 1), timedelta(hours=1))
    assert slot_of(exact, utc(2026, 1, 1, 13, 0, 7)) == utc(2026, 1, 1, 13)  # 7 s late
    assert slot_of(exact, utc(2026, 1, 1, 13)) == utc(2026, 1, 1, 13)  # on time
    cron = CrontabTrigger("*/15 * * * *", BERLIN)
    assert slot_of(cron, utc(2026, 3, 29, 1, 16, 30)) == utc(2026, 3, 29, 1, 15)
    # The restart anchors on that slot, so the grid stays where it was.
    decided = plan(
        Sched(every=timedelta(hours=1)),
        UTC_ZONE,
        now=utc(2026, 1, 1, 13, 20),
        last_scheduled=slot_of(exact, utc(2026, 1, 1, 13, 0, 7)),
    )
    assert decided.exact is not None
    assert next_fire_times(decided.exact, utc(2026, 1, 1, 13, 20), 1) == [utc(2026, 1, 1, 14)]


# -- failover_gap ------------------------------------------------------------------------------


def test_a_failover_gap_holds_each_grid_point_after_the_last_run_and_before_now() -> None:
    two = Sched(every=timedelta(seconds=2))
    last = utc(2026, 3, 1, 12, 0, 0)
    gap = failover_gap(
        two,
        UTC,
        last_scheduled=last,
        caught_up_at=None,
        since=last - timedelta(seconds=30),
        now=last + timedelta(seconds=7),
    )
    assert gap == [last + timedelta(seconds=k) for k in (2, 4, 6)]


def test_a_failover_gap_starts_at_since_and_keeps_the_newest_when_long() -> None:
    second = Sched(every=timedelta(seconds=1))
    last = utc(2026, 3, 1, 12, 0, 0)
    since = last + timedelta(seconds=10, milliseconds=500)
    now = last + timedelta(seconds=13)
    gap = failover_gap(second, UTC, last_scheduled=last, caught_up_at=None, since=since, now=now)
    assert gap == [last + timedelta(seconds=k) for k in (11, 12)]  # 1..10 lie before `since`
    long = failover_gap(
        second,
        UTC,
        last_scheduled=last,
        caught_up_at=None,
        since=last,
        now=last + timedelta(hours=1),
    )
    assert len(long) == FAILOVER_GAP_RUNS
    assert long[-1] == last + timedelta(hours=1, seconds=-1)


def test_a_failover_gap_after_a_catch_up_starts_an_interval_after_it() -> None:
    minute = Sched(every=timedelta(minutes=1))
    last = utc(2026, 3, 1, 12, 0)
    caught_up_at = utc(2026, 3, 1, 12, 0, 40)  # the slot of 12:00 was made up at 12:00:40
    gap = failover_gap(
        minute,
        UTC,
        last_scheduled=last,
        caught_up_at=caught_up_at,
        since=last,
        now=utc(2026, 3, 1, 12, 2, 30),
    )
    assert gap == [utc(2026, 3, 1, 12, 2)]  # 12:01 was covered by the catch-up


def test_a_failover_gap_follows_the_cron_calendar_in_its_zone() -> None:
    nine = Sched(cron="0 9 * * *")
    gap = failover_gap(
        nine,
        BERLIN,
        last_scheduled=berlin(2026, 3, 1, 9),
        caught_up_at=None,
        since=berlin(2026, 3, 2, 8, 59, 50),
        now=berlin(2026, 3, 2, 9, 0, 5),
    )
    assert gap == [berlin(2026, 3, 2, 9).astimezone(UTC)]


def test_no_failover_gap_for_a_new_job_a_one_off_or_a_gap_without_fire_times() -> None:
    last = utc(2026, 3, 1, 12)
    now = last + timedelta(seconds=9)
    two = Sched(every=timedelta(seconds=2))
    assert failover_gap(two, UTC, last_scheduled=None, caught_up_at=None, since=last, now=now) == []
    once = Sched(at=last + timedelta(seconds=3))
    assert (
        failover_gap(once, UTC, last_scheduled=last, caught_up_at=None, since=last, now=now) == []
    )
    assert failover_gap(two, UTC, last_scheduled=last, caught_up_at=None, since=now, now=now) == []


# -- the fire time a missing authorization cost ---------------------------------------------------

DAY = timedelta(days=1)
T1 = datetime(2026, 12, 1, 3, 0, tzinfo=UTC)


def record(
    state: StateStore, status: RunStatus, slot: datetime | None, trigger: str = "schedule"
) -> None:
    run = state.start_run("daily", scheduled_at=slot, started_at=slot or T1, trigger=trigger)
    if status is not RunStatus.RUNNING:
        state.finish_run(run, status, ended_at=(slot or T1) + timedelta(seconds=1))


def test_the_fire_time_lost_to_authorization_is_the_last_one_until_something_runs(
    tmp_path: Path,
) -> None:
    grid = GridTrigger(T1, DAY)
    now = T1 + timedelta(hours=5)
    state = open_state(tmp_path)
    try:

        def lost(at: datetime = now, exact: BaseTrigger | None = grid) -> datetime | None:
            return lost_to_authorization(state, "daily", "default", exact=exact, now=at)

        assert lost() is None  # no history
        record(state, RunStatus.OK, T1 - DAY)
        record(state, RunStatus.NEEDS_AUTH, T1)
        assert lost() == T1
        # A later fire time has come: its own run stands for the job, not a make-up of T1.
        assert lost(T1 + DAY) is None
        assert lost(T1 + DAY, exact=None) == T1  # nothing more scheduled (a past one-off)
        record(state, RunStatus.RUNNING, T1, "catch_up")
        assert lost() is None  # being made up right now
    finally:
        state.close()


@pytest.mark.parametrize(
    ("status", "slot", "trigger"),
    [
        (RunStatus.OK, T1, "catch_up"),  # made up already
        (RunStatus.SKIPPED, T1, "catch_up"),  # made up, and refused (a rate-limit hold)
        (RunStatus.OK, None, "manual"),  # someone ran it by hand since
    ],
)
def test_no_fire_time_is_lost_once_a_run_came_after_the_refused_one(
    tmp_path: Path, status: RunStatus, slot: datetime | None, trigger: str
) -> None:
    state = open_state(tmp_path)
    try:
        record(state, RunStatus.NEEDS_AUTH, T1)
        record(state, status, slot, trigger)
        found = lost_to_authorization(
            state, "daily", "default", exact=GridTrigger(T1, DAY), now=T1 + timedelta(hours=5)
        )
        assert found is None
    finally:
        state.close()
