"""Time: one clock object per interface, so replays (XINYONG_NOW) never leak into the server."""

from __future__ import annotations

import datetime as dt
import functools
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from xinyong.errors import BadInput

UTC = dt.UTC
DEFAULT_TIMEZONE = "Asia/Shanghai"


class Clock:
    """The system clock; knowledge times are aware UTC instants."""

    def now(self) -> dt.datetime:
        return dt.datetime.now(UTC)

    def today(self, timezone: str = DEFAULT_TIMEZONE) -> dt.date:
        return self.now().astimezone(ZoneInfo(timezone)).date()


@dataclass(frozen=True)
class FixedClock(Clock):
    """A clock stopped at one instant, for replaying scenarios from the command line and in tests."""

    instant: dt.datetime

    def now(self) -> dt.datetime:
        return self.instant


def parse_instant(text: str, *, where: str = "time", timezone: str = DEFAULT_TIMEZONE) -> dt.datetime:
    """Read an ISO date or timestamp; a bare date means the end of that day, a naive time is local.

    A bare date as a knowledge time means "everything known by the end of that day", which is what
    a person asking "as known on 3 March" expects.
    """
    try:
        if len(text) == 10:
            day = dt.date.fromisoformat(text)
            local = dt.datetime.combine(day, dt.time.max, ZoneInfo(timezone))
            return local.astimezone(UTC)
        value = dt.datetime.fromisoformat(text)
    except ValueError:
        raise BadInput(f"{where}: {text!r} is not an ISO date or timestamp") from None
    if value.tzinfo is None:
        value = value.replace(tzinfo=ZoneInfo(timezone))
    return value.astimezone(UTC)


def parse_day(text: str, *, where: str = "date") -> dt.date:
    """Read a calendar day, naming the field when it is not one: `rules.values.day`, the one rule
    for a day (kept under this name for its callers)."""
    from xinyong.rules import values

    return values.day(text, where=where)


def local_day(instant: dt.datetime, timezone: str = DEFAULT_TIMEZONE) -> dt.date:
    """The calendar day an instant falls on in a scheme's time zone."""
    return instant.astimezone(_zone(timezone)).date()


# ZoneInfo(name) consults its own cache under a lock; every check asks for today, so keep the zone.
_zone = functools.cache(ZoneInfo)


def to_storage(instant: dt.datetime) -> dt.datetime:
    """Naive UTC, the one form both SQLite and PostgreSQL columns hold without surprises."""
    return instant.astimezone(UTC).replace(tzinfo=None)


def from_storage(value: dt.datetime) -> dt.datetime:
    return value.replace(tzinfo=UTC)
