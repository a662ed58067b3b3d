"""ISO 8601 durations added with calendar arithmetic (2024-02-29 + P1Y = 2025-02-28)."""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from typing import Annotated, Any

from dateutil.relativedelta import relativedelta
from pydantic import BeforeValidator, PlainSerializer

# ASCII digits only: `\d` alone would read P１０D (full-width digits) as ten days.
_PATTERN = re.compile(r"^P(?:(?P<y>\d{1,9})Y)?(?:(?P<m>\d{1,9})M)?(?:(?P<w>\d{1,9})W)?(?:(?P<d>\d{1,9})D)?$", re.ASCII)
# No period is longer than a thousand years: P1000Y after the last day the platform counts with
# (2199-12-31) is still a date, and a longer one would only fail later, in the middle of a check.
_MAX_MONTHS = 12_000
_MAX_DAYS = 366_000


@dataclass(frozen=True)
class Period:
    """A date-only ISO 8601 duration; time parts are refused because schemes count in days."""

    years: int = 0
    months: int = 0
    days: int = 0

    @classmethod
    def parse(cls, text: str) -> Period:
        """The one reading of a period (`rules.values.period` and scheme files call it): P, then
        years, months, weeks and days in that order, each a whole number; nothing else."""
        match = _PATTERN.match(text.strip()) if isinstance(text, str) else None
        if match is None or text.strip() == "P":
            raise ValueError(
                f"{text!r} is not an ISO 8601 duration of years, months, weeks or days (e.g. P10D, P6M, P2Y)"
            )
        parts = {k: int(v) if v else 0 for k, v in match.groupdict().items()}
        found = cls(years=parts["y"], months=parts["m"], days=parts["d"] + 7 * parts["w"])
        if 12 * found.years + found.months > _MAX_MONTHS or found.days > _MAX_DAYS:
            raise ValueError(f"{text!r} is an ISO 8601 duration of more than a thousand years")
        return found

    def after(self, day: dt.date) -> dt.date:
        """The day this period after `day`; months and years clip to the month's last day."""
        return day + relativedelta(years=self.years, months=self.months, days=self.days)

    def before(self, day: dt.date) -> dt.date:
        return day - relativedelta(years=self.years, months=self.months, days=self.days)

    def __str__(self) -> str:
        if not (self.years or self.months or self.days):
            return "P0D"
        text = "P"
        text += f"{self.years}Y" if self.years else ""
        text += f"{self.months}M" if self.months else ""
        text += f"{self.days}D" if self.days else ""
        return text


def _coerce(value: Any) -> Period:
    if isinstance(value, Period):
        return value
    if not isinstance(value, str):
        raise ValueError(f"{value!r} is not an ISO 8601 duration such as P10D or P2Y")
    return Period.parse(value)


Duration = Annotated[Period, BeforeValidator(_coerce), PlainSerializer(str, return_type=str)]
"""A pydantic field type for durations written as ISO 8601 strings in scheme files."""
