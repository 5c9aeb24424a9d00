"""crontab(5) semantics: the manual's examples, the day-field rule, DST as cron(8), the grammar.

Each test goes through what the daemon uses (`ScheduleConfig` -> `build_trigger` ->
fire times, and `missed_fire_time` for the catch-up), and each expected time was worked out by
hand from crontab(5) and cron(8), not taken from the code.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from pydantic import ValidationError

from runner.config import ScheduleConfig
from runner.cron import CrontabTrigger, normalize
from runner.schedule import build_trigger, missed_fire_time, next_fire_times

NEW_YORK = ZoneInfo("America/New_York")
BERLIN = ZoneInfo("Europe/Berlin")
LORD_HOWE = ZoneInfo("Australia/Lord_Howe")
UTC_ZONE = ZoneInfo("UTC")


@dataclass(frozen=True)
class Sched:
    cron: str | None = None
    every: timedelta | None = None
    at: datetime | None = None
    jitter: timedelta | None = None


def fires(expr: str, tz: ZoneInfo, after: datetime, n: int) -> list[datetime]:
    """The next `n` fire times as local wall-clock datetimes (with their UTC offset)."""
    trigger = build_trigger(Sched(cron=expr), tz, with_jitter=False)
    return [t.astimezone(tz) for t in next_fire_times(trigger, after, n)]


def local(tz: ZoneInfo, *args: int, fold: int = 0) -> datetime:
    return datetime(*args, tzinfo=tz, fold=fold)  # type: ignore[misc]


def walls(times: list[datetime]) -> list[str]:
    return [t.strftime("%Y-%m-%d %a %H:%M %Z") for t in times]


# -- crontab(5)'s EXAMPLE section, each a test of its own ------------------------------------


def test_man_page_five_minutes_after_midnight_every_day() -> None:
    assert walls(fires("5 0 * * *", UTC_ZONE, local(UTC_ZONE, 2026, 5, 30, 12), 3)) == [
        "2026-05-31 Sun 00:05 UTC",
        "2026-06-01 Mon 00:05 UTC",
        "2026-06-02 Tue 00:05 UTC",
    ]


def test_man_page_2_15_pm_on_the_first_of_every_month() -> None:
    assert walls(fires("15 14 1 * *", UTC_ZONE, local(UTC_ZONE, 2026, 1, 15), 3)) == [
        "2026-02-01 Sun 14:15 UTC",
        "2026-03-01 Sun 14:15 UTC",
        "2026-04-01 Wed 14:15 UTC",
    ]


def test_man_page_10_pm_on_weekdays() -> None:
    # 2026-06-05 is a Friday: the weekend is skipped.
    assert walls(fires("0 22 * * 1-5", UTC_ZONE, local(UTC_ZONE, 2026, 6, 5, 23), 2)) == [
        "2026-06-08 Mon 22:00 UTC",
        "2026-06-09 Tue 22:00 UTC",
    ]


def test_man_page_23_minutes_after_every_even_hour() -> None:
    times = fires("23 0-23/2 * * *", UTC_ZONE, local(UTC_ZONE, 2026, 6, 1), 13)
    assert [t.hour for t in times] == [0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 0]
    assert {t.minute for t in times} == {23}


def test_man_page_5_after_4_every_sunday() -> None:
    assert walls(fires("5 4 * * sun", UTC_ZONE, local(UTC_ZONE, 2026, 6, 1), 2)) == [
        "2026-06-07 Sun 04:05 UTC",
        "2026-06-14 Sun 04:05 UTC",
    ]


# -- finding 1: the two day fields are ORed when both are restricted --------------------------


def test_the_man_pages_1st_15th_and_every_friday() -> None:
    # crontab(5): "30 4 1,15 * 5" runs at 4:30 am on the 1st and 15th of each month, plus
    # every Friday. May 2026: Fri 1st, Fri 8th, Fri 15th, Fri 22nd, Fri 29th; June: Mon 1st.
    assert walls(fires("30 4 1,15 * 5", UTC_ZONE, local(UTC_ZONE, 2026, 4, 30), 7)) == [
        "2026-05-01 Fri 04:30 UTC",
        "2026-05-08 Fri 04:30 UTC",
        "2026-05-15 Fri 04:30 UTC",
        "2026-05-22 Fri 04:30 UTC",
        "2026-05-29 Fri 04:30 UTC",
        "2026-06-01 Mon 04:30 UTC",
        "2026-06-05 Fri 04:30 UTC",
    ]


def test_a_restricted_day_of_month_or_every_weekday_is_every_day() -> None:
    times = fires("0 0 13 * 0-6", UTC_ZONE, local(UTC_ZONE, 2026, 2, 1, 12), 5)
    assert [t.day for t in times] == [2, 3, 4, 5, 6]


def test_a_day_field_starting_with_star_ands_as_vixie_cron_does() -> None:
    # `*/2` in the day of month starts with `*`: Vixie cron then ANDs, so this is odd-numbered
    # days that are Mondays (March 2026: Monday 9th, 23rd; April: none odd... Monday 13th, 27th).
    assert walls(fires("0 0 */2 * 1", UTC_ZONE, local(UTC_ZONE, 2026, 3, 1), 4)) == [
        "2026-03-09 Mon 00:00 UTC",
        "2026-03-23 Mon 00:00 UTC",
        "2026-04-13 Mon 00:00 UTC",
        "2026-04-27 Mon 00:00 UTC",
    ]


# -- finding 2: no run lost after a spring-forward change --------------------------------------


def test_daily_midnight_in_new_york_runs_every_day_across_spring_forward() -> None:
    times = fires("0 0 * * *", NEW_YORK, local(NEW_YORK, 2026, 3, 7, 12), 3)
    assert walls(times) == [
        "2026-03-08 Sun 00:00 EST",
        "2026-03-09 Mon 00:00 EDT",
        "2026-03-10 Tue 00:00 EDT",
    ]


def test_monthly_in_berlin_keeps_april_first() -> None:
    times = fires("0 0 1 * *", BERLIN, local(BERLIN, 2026, 3, 15), 3)
    assert [t.strftime("%m-%d") for t in times] == ["04-01", "05-01", "06-01"]


def test_yearly_on_lord_howe_keeps_2027() -> None:
    # Lord Howe moves its clocks by 30 minutes; APScheduler's trigger skipped all of 2027.
    times = fires("0 0 1 1 *", LORD_HOWE, local(LORD_HOWE, 2026, 6, 1), 2)
    assert [t.year for t in times] == [2027, 2028]


def test_catch_up_sees_the_run_after_spring_forward() -> None:
    # Down from the 8th's run until the 9th at noon: the 9th's midnight run was missed.
    missed = missed_fire_time(
        Sched(cron="0 0 * * *"),
        NEW_YORK,
        last_scheduled=local(NEW_YORK, 2026, 3, 8),
        now=local(NEW_YORK, 2026, 3, 9, 12),
    )
    assert missed == local(NEW_YORK, 2026, 3, 9).astimezone(UTC)


# -- finding 3: fixed times in the gap run after the change; the repeated hour runs once -------


def test_a_fixed_time_in_the_skipped_hour_runs_right_after_the_change() -> None:
    times = fires("30 1-2 * * *", NEW_YORK, local(NEW_YORK, 2026, 3, 7, 12), 4)
    assert walls(times) == [
        "2026-03-08 Sun 01:30 EST",
        "2026-03-08 Sun 03:00 EDT",  # 02:30 does not exist: cron(8) runs it at the change
        "2026-03-09 Mon 01:30 EDT",
        "2026-03-09 Mon 02:30 EDT",
    ]


def test_a_fixed_time_in_the_repeated_hour_runs_once() -> None:
    times = fires("30 1 * * *", NEW_YORK, local(NEW_YORK, 2026, 10, 31, 12), 2)
    assert walls(times) == ["2026-11-01 Sun 01:30 EDT", "2026-11-02 Mon 01:30 EST"]


def test_a_fixed_time_job_started_in_the_second_copy_does_not_go_back() -> None:
    # Started at 01:10 EST, after 01:30 EDT already passed: the next run is tomorrow's.
    after = local(NEW_YORK, 2026, 11, 1, 1, 10, fold=1)
    assert walls(fires("30 1 * * *", NEW_YORK, after, 1)) == ["2026-11-02 Mon 01:30 EST"]


def test_a_wildcard_job_runs_in_both_copies_of_the_repeated_hour() -> None:
    times = fires("0 * * * *", NEW_YORK, local(NEW_YORK, 2026, 11, 1, 0, 30), 4)
    assert walls(times) == [
        "2026-11-01 Sun 01:00 EDT",
        "2026-11-01 Sun 01:00 EST",
        "2026-11-01 Sun 02:00 EST",
        "2026-11-01 Sun 03:00 EST",
    ]


def test_a_wildcard_job_has_no_runs_in_the_skipped_hour() -> None:
    times = fires("*/30 * * * *", NEW_YORK, local(NEW_YORK, 2026, 3, 8, 1, 0), 3)
    assert walls(times) == [
        "2026-03-08 Sun 01:30 EST",
        "2026-03-08 Sun 03:00 EDT",
        "2026-03-08 Sun 03:30 EDT",
    ]


# -- finding 4: crontab's grammar, no more and no less -----------------------------------------


@pytest.mark.parametrize(
    ("expr", "after", "expected"),
    [
        ("*/60 * * * *", (2026, 1, 1, 0, 1), ["01:00", "02:00"]),  # a step past its range
        ("0 */25 * * *", (2026, 1, 1, 0, 1), ["00:00", "00:00"]),
        ("28-31/11 * * * *", (2026, 1, 1, 0, 0), ["00:28", "01:28"]),
    ],
)
def test_steps_longer_than_their_range_keep_the_first_value(
    expr: str, after: tuple[int, ...], expected: list[str]
) -> None:
    times = fires(expr, UTC_ZONE, local(UTC_ZONE, *after), 2)
    assert [t.strftime("%H:%M") for t in times] == expected


@pytest.mark.parametrize(
    ("macro", "same_as"),
    [
        ("@yearly", "0 0 1 1 *"),
        ("@annually", "0 0 1 1 *"),
        ("@monthly", "0 0 1 * *"),
        ("@weekly", "0 0 * * 0"),
        ("@daily", "0 0 * * *"),
        ("@midnight", "0 0 * * *"),
        ("@hourly", "0 * * * *"),
    ],
)
def test_macros_mean_what_crontab_says(macro: str, same_as: str) -> None:
    schedule = ScheduleConfig.model_validate({"cron": macro})
    start = local(BERLIN, 2026, 3, 28, 5, 17)
    assert fires(schedule.cron or "", BERLIN, start, 5) == fires(same_as, BERLIN, start, 5)


def test_reboot_is_refused_with_what_to_do_instead() -> None:
    with pytest.raises(ValidationError, match=r"@reboot is not supported.*every: or at:"):
        ScheduleConfig.model_validate({"cron": "@reboot"})


@pytest.mark.parametrize(
    ("expr", "reason"),
    [
        ("0 0 last * *", "bad day-of-month field 'last'"),  # APScheduler's dialect
        ("0 0 L * *", "not crontab syntax"),
        ("0 0 * * 5L", "not crontab syntax"),
        ("0 0 * * mon#2", "not crontab syntax"),
        ("0 0 ? * *", "not crontab syntax"),
        ("0 0 * * sat-sun", "runs backwards (write sat,sun or 6-7)"),
        ("5/15 * * * *", "a step needs a range: write 5-59/15"),
        ("0 0 0 * *", "0 is out of range 1-31"),
        ("0 0 * 13 *", "13 is out of range 1-12"),
        ("0 0 * * 8", "8 is out of range 0-7"),
        ("0 0 30 2 *", "never runs"),
        ("0 0 * jan-foo *", "unknown name 'foo'"),
        ("mon 0 * * *", "'mon' is not a number"),
        ("0 0 0 0 0 0", "wrong number of fields (got 6, expected 5)"),
        ("*/0 * * * *", "step 0 must be 1 to 9999"),
        ("@fortnightly", "unknown macro"),
    ],
)
def test_what_crontab_does_not_have_is_refused(expr: str, reason: str) -> None:
    with pytest.raises(ValidationError, match=reason.replace("(", r"\(").replace(")", r"\)")):
        ScheduleConfig.model_validate({"cron": expr})


def test_names_are_case_insensitive_and_7_is_sunday() -> None:
    assert normalize("0 9 * JAN-Mar SUN") == "0 9 * jan-mar sun"
    start = local(UTC_ZONE, 2026, 1, 1)
    assert fires("0 9 * * 7", UTC_ZONE, start, 3) == fires("0 9 * * sun", UTC_ZONE, start, 3)


# -- the catch-up question uses the same calendar -----------------------------------------------


@pytest.mark.parametrize(
    ("expr", "tz"),
    [
        ("30 1-2 * * *", NEW_YORK),
        ("0 * * * *", NEW_YORK),
        ("30 1 * * *", NEW_YORK),
        ("*/20 2 * * *", BERLIN),
        ("15 2 * * *", LORD_HOWE),
        ("0 0 1 1 *", LORD_HOWE),
    ],
)
def test_last_before_agrees_with_stepping_forward(expr: str, tz: ZoneInfo) -> None:
    trigger = CrontabTrigger(expr, tz)
    start = datetime(2026, 1, 1, tzinfo=UTC)
    times = trigger.fire_times(start, 400)
    for earlier, later in zip(times, times[1:], strict=False):
        assert trigger.last_before(later) == earlier
        assert trigger.last_before(later - timedelta(seconds=1)) == earlier
        assert trigger.next_after(earlier) == later
