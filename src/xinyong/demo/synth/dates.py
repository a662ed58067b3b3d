"""The calendar both generators share: the window records occur in and the birth dates of adults.

Years are subtracted as DESIGN.md adds durations, so that a window ending on 29 February starts on
the 28th and the generated records fall inside the window the engine will look at.
"""

from __future__ import annotations

import datetime


def years_before(day: datetime.date, years: int) -> datetime.date:
    """Calendar subtraction as DESIGN.md adds durations: 29 February falls back to the 28th."""
    try:
        return day.replace(year=day.year - years)
    except ValueError:
        return day.replace(year=day.year - years, day=28)


def record_window(today: datetime.date, years: int) -> tuple[datetime.date, int]:
    """(first day, number of days) of the `years` years before `today`, today excluded."""
    start = years_before(today, years)
    return start, (today - start).days


def adult_birth_dates(today: datetime.date) -> tuple[datetime.date, int]:
    """(earliest birth date, number of possible birth dates) of residents aged 18 to 80 inclusive:
    born after today - 81 years and no later than today - 18 years."""
    oldest = years_before(today, 81) + datetime.timedelta(days=1)
    return oldest, (years_before(today, 18) - oldest).days + 1
