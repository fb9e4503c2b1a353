"""The cron matcher: fields, ranges, steps, names, shortcuts, previous/next in UTC."""

from __future__ import annotations

import datetime as dt

import pytest

from mloop.errors import InvalidInput
from mloop.pipelines import CronSchedule


def ts(*args: int) -> float:
    return dt.datetime(*args, tzinfo=dt.UTC).timestamp()


def test_every_fifteen_minutes_on_weekdays_at_three() -> None:
    cron = CronSchedule.parse("*/15 3 * * mon-fri")
    assert cron.matches(ts(2026, 1, 5, 3, 30))  # a Monday
    assert not cron.matches(ts(2026, 1, 5, 3, 31))
    assert not cron.matches(ts(2026, 1, 4, 3, 30))  # a Sunday


def test_previous_and_next_find_the_neighbouring_slots() -> None:
    cron = CronSchedule.parse("0 3 * * *")
    now = ts(2026, 3, 10, 12, 0)
    assert cron.previous(now) == ts(2026, 3, 10, 3, 0)
    assert cron.next(now) == ts(2026, 3, 11, 3, 0)
    assert cron.previous(ts(2026, 3, 10, 3, 0, 30)) == ts(2026, 3, 10, 3, 0)


def test_shortcuts_and_leap_day() -> None:
    assert CronSchedule.parse("@daily").next(ts(2026, 1, 1, 0, 0)) == ts(2026, 1, 2)
    leap = CronSchedule.parse("0 0 29 feb *")
    assert leap.next(ts(2026, 1, 1)) == ts(2028, 2, 29)


def test_day_of_month_or_weekday_when_both_are_restricted() -> None:
    cron = CronSchedule.parse("0 0 1 * sun")
    assert cron.matches(ts(2026, 4, 1))  # the 1st (a Wednesday)
    assert cron.matches(ts(2026, 4, 5))  # a Sunday


@pytest.mark.parametrize(
    "bad", ["* * * *", "61 * * * *", "*/0 * * * *", "5-1 * * * *", "x * * * *"]
)
def test_bad_expressions_say_what_is_wrong(bad: str) -> None:
    with pytest.raises(InvalidInput, match="Cron expression"):
        CronSchedule.parse(bad)
