"""Working days on the official Chinese calendar, for objection deadlines.

chinese-calendar carries the State Council's published holidays and make-up working days. Years
it does not cover yet (the schedule is published each November for the next year) fall back to
Monday–Friday, and `is_provisional` says so, so that a deadline can be shown as provisional rather
than silently wrong.
"""

from __future__ import annotations

import datetime as dt

import chinese_calendar


def is_working_day(day: dt.date) -> bool:
    try:
        return bool(chinese_calendar.is_workday(day))
    except NotImplementedError:
        return day.weekday() < 5


def is_provisional(day: dt.date) -> bool:
    """True when `day` lies in a year the official calendar does not yet cover."""
    try:
        chinese_calendar.is_workday(day)
    except NotImplementedError:
        return True
    return False


def add_working_days(start: dt.date, count: int) -> dt.date:
    """The `count`-th working day after `start`; the start day itself is never counted."""
    day = start
    remaining = count
    while remaining > 0:
        day += dt.timedelta(days=1)
        if is_working_day(day):
            remaining -= 1
    return day


def working_days_between(start: dt.date, end: dt.date) -> int:
    """Working days in (start, end]: how many of a deadline's days have been used by `end`."""
    count = 0
    day = start
    while day < end:
        day += dt.timedelta(days=1)
        if is_working_day(day):
            count += 1
    return count
