"""ISO 8601 durations with calendar arithmetic."""

from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import given
from hypothesis import strategies as st

from xinyong.rules.periods import Period


@pytest.mark.parametrize(
    ("start", "period", "end"),
    [
        (dt.date(2024, 2, 29), "P1Y", dt.date(2025, 2, 28)),
        (dt.date(2024, 2, 29), "P4Y", dt.date(2028, 2, 29)),
        (dt.date(2026, 8, 31), "P6M", dt.date(2027, 2, 28)),
        (dt.date(2027, 8, 31), "P6M", dt.date(2028, 2, 29)),
        (dt.date(2026, 1, 31), "P1M", dt.date(2026, 2, 28)),
        (dt.date(2026, 9, 30), "P10D", dt.date(2026, 10, 10)),
        (dt.date(2026, 12, 25), "P10D", dt.date(2027, 1, 4)),
        (dt.date(2026, 9, 30), "P2W", dt.date(2026, 10, 14)),
        (dt.date(2026, 1, 1), "P0D", dt.date(2026, 1, 1)),
        (dt.date(2024, 1, 31), "P1Y1M1D", dt.date(2025, 3, 1)),
    ],
)
def test_after(start: dt.date, period: str, end: dt.date) -> None:
    assert Period.parse(period).after(start) == end


def test_before_clips_like_after() -> None:
    assert Period.parse("P1Y").before(dt.date(2024, 2, 29)) == dt.date(2023, 2, 28)
    assert Period.parse("P10D").before(dt.date(2026, 10, 10)) == dt.date(2026, 9, 30)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("P10D", Period(days=10)),
        ("P2W", Period(days=14)),
        ("P6M", Period(months=6)),
        ("P3Y", Period(years=3)),
        ("P1Y2M3W4D", Period(years=1, months=2, days=25)),
        ("P0D", Period()),
        (" P1Y ", Period(years=1)),
    ],
)
def test_parse(text: str, expected: Period) -> None:
    assert Period.parse(text) == expected


def test_weeks_print_as_days() -> None:
    assert str(Period.parse("P2W")) == "P14D"
    assert str(Period()) == "P0D"


@pytest.mark.parametrize(
    "bad",
    ["", "P", "10 days", "10D", "p10d", "PT10H", "P1DT2H", "P-1D", "P1.5Y", "P1D1Y", "1Y", "P 1D"],
)
def test_bad_inputs_raise_value_error(bad: str) -> None:
    with pytest.raises(ValueError, match="ISO 8601"):
        Period.parse(bad)


def test_non_text_raises_value_error() -> None:
    with pytest.raises(ValueError, match="ISO 8601"):
        Period.parse(10)  # type: ignore[arg-type]


periods = st.builds(
    Period,
    years=st.integers(0, 50),
    months=st.integers(0, 600),
    days=st.integers(0, 20_000),
)
dates = st.dates(dt.date(1900, 1, 1), dt.date(2500, 12, 31))


@given(dates, periods)
def test_after_is_never_before_the_day(day: dt.date, period: Period) -> None:
    assert period.after(day) >= day
    assert period.before(day) <= day


@given(dates, st.integers(0, 20_000))
def test_days_are_exact(day: dt.date, days: int) -> None:
    assert Period(days=days).after(day) == day + dt.timedelta(days=days)


@given(periods)
def test_canonical_strings_round_trip(period: Period) -> None:
    text = str(period)
    assert Period.parse(text) == period
    assert str(Period.parse(text)) == text


def canonical(years: int, months: int, days: int) -> str:
    parts = [(years, "Y"), (months, "M"), (days, "D")]
    text = "".join(f"{n}{unit}" for n, unit in parts if n)
    return f"P{text}" if text else "P0D"


@given(st.builds(canonical, st.integers(0, 99), st.integers(0, 99), st.integers(0, 9_999)))
def test_canonical_text_round_trips(text: str) -> None:
    assert str(Period.parse(text)) == text
