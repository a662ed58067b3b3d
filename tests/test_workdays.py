"""Objection deadlines in working days on the official Chinese calendar."""

from __future__ import annotations

import datetime as dt

import chinese_calendar
import pytest
from hypothesis import given
from hypothesis import strategies as st

from xinyong.rules.workdays import (
    add_working_days,
    is_provisional,
    is_working_day,
    working_days_between,
)

NATIONAL_DAY_2026 = dt.date(2026, 10, 1)


def official_deadline(start: dt.date, count: int) -> dt.date:
    """Counting directly with chinese_calendar, as a second opinion."""
    day = start
    while count:
        day += dt.timedelta(days=1)
        count -= bool(chinese_calendar.is_workday(day))
    return day


def test_design_example() -> None:
    # DESIGN.md: 5 working days from Wednesday 30 September 2026 ends on Tuesday 13 October.
    start = dt.date(2026, 9, 30)
    assert start.strftime("%A") == "Wednesday"
    end = add_working_days(start, 5)
    assert end == dt.date(2026, 10, 13)
    assert end.strftime("%A") == "Tuesday"


def test_objection_filed_on_the_last_working_day_before_national_day() -> None:
    filed = NATIONAL_DAY_2026 - dt.timedelta(days=1)
    while not chinese_calendar.is_workday(filed):
        filed -= dt.timedelta(days=1)
    holidays = [
        NATIONAL_DAY_2026 + dt.timedelta(days=n)
        for n in range(14)
        if chinese_calendar.is_holiday(NATIONAL_DAY_2026 + dt.timedelta(days=n))
    ]
    holiday_names = {chinese_calendar.get_holiday_detail(day)[1] for day in holidays}
    assert "National Day" in holiday_names
    deadline = add_working_days(filed, 5)
    last_holiday = max(day for day in holidays if chinese_calendar.get_holiday_detail(day)[1] == "National Day")
    assert deadline > last_holiday
    assert deadline == official_deadline(filed, 5)
    assert working_days_between(filed, deadline) == 5
    assert not is_provisional(deadline)
    # the holiday week costs calendar days: the deadline is far more than 5 days away
    assert (deadline - filed).days > 7


def test_the_day_of_filing_is_not_counted() -> None:
    monday = dt.date(2026, 3, 2)
    assert is_working_day(monday)
    assert add_working_days(monday, 1) == dt.date(2026, 3, 3)
    assert add_working_days(monday, 0) == monday


def test_weekends_are_skipped() -> None:
    friday = dt.date(2026, 3, 6)
    assert not is_working_day(dt.date(2026, 3, 7))
    assert not is_working_day(dt.date(2026, 3, 8))
    assert add_working_days(friday, 1) == dt.date(2026, 3, 9)
    assert add_working_days(friday, 5) == dt.date(2026, 3, 13)


def test_filed_on_a_weekend() -> None:
    saturday = dt.date(2026, 3, 7)
    assert add_working_days(saturday, 1) == dt.date(2026, 3, 9)


def test_make_up_saturday_is_a_working_day() -> None:
    make_up = dt.date(2026, 10, 10)
    assert make_up.weekday() == 5
    assert is_working_day(make_up)
    assert add_working_days(dt.date(2026, 10, 9), 1) == make_up
    assert not is_working_day(dt.date(2026, 10, 11))


def test_public_holidays_on_weekdays_are_not_working_days() -> None:
    for day in (NATIONAL_DAY_2026, dt.date(2026, 10, 5), dt.date(2026, 5, 1)):
        assert day.weekday() < 5
        assert not is_working_day(day)


def test_working_days_between_counts_the_half_open_interval() -> None:
    start = dt.date(2026, 9, 30)
    assert working_days_between(start, start) == 0
    assert working_days_between(start, dt.date(2026, 10, 7)) == 0
    assert working_days_between(start, dt.date(2026, 10, 10)) == 3
    assert working_days_between(start, dt.date(2026, 10, 13)) == 5


def test_uncovered_years_fall_back_to_monday_to_friday() -> None:
    with pytest.raises(NotImplementedError):
        chinese_calendar.is_workday(dt.date(2027, 1, 4))
    new_year = dt.date(2027, 1, 1)  # a Friday; the 2027 holidays are not in the library
    assert is_provisional(new_year)
    assert is_working_day(new_year)
    assert not is_working_day(dt.date(2027, 1, 2))
    assert add_working_days(dt.date(2027, 1, 1), 5) == dt.date(2027, 1, 8)
    assert not is_provisional(dt.date(2026, 12, 31))


def test_a_deadline_crossing_into_an_uncovered_year() -> None:
    start = dt.date(2026, 12, 29)  # Tuesday
    end = add_working_days(start, 5)
    assert end.year == 2027
    assert is_provisional(end)
    assert not is_provisional(start)
    assert end == dt.date(2027, 1, 5)


@given(st.dates(dt.date(2005, 1, 1), dt.date(2026, 12, 1)), st.integers(0, 15))
def test_agrees_with_the_official_calendar(start: dt.date, count: int) -> None:
    end = add_working_days(start, count)
    if end.year <= 2026:
        assert end == official_deadline(start, count)
        assert working_days_between(start, end) == count
        assert count == 0 or is_working_day(end)
