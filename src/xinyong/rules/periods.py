"""ISO 8601 durations added with calendar arithmetic (2024-02-29 + P1Y = 2025-02-28)."""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from typing import Annotated, Any

from dateutil.relativedelta import relativedelta
from pydantic import BeforeValidator, PlainSerializer

_PATTERN = re.compile(r"^P(?:(?P<y>\d+)Y)?(?:(?P<m>\d+)M)?(?:(?P<w>\d+)W)?(?:(?P<d>\d+)D)?$")


@dataclass(frozen=True)
class Period:
    """A date-only ISO 8601 duration; time parts are refused because schemes count in days."""

    years: int = 0
    months: int = 0
    days: int = 0

    @classmethod
    def parse(cls, text: str) -> Period:
        match = _PATTERN.match(text.strip()) if isinstance(text, str) else None
        if match is None or text.strip() == "P":
            raise ValueError(
                f"{text!r} is not an ISO 8601 duration of years, months, weeks or days (e.g. P10D, P6M, P2Y)"
            )
        parts = {k: int(v) if v else 0 for k, v in match.groupdict().items()}
        return cls(years=parts["y"], months=parts["m"], days=parts["d"] + 7 * parts["w"])

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
