"""Groups of the policy lab: division, kind, and sex and age band read from the identity number."""

from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import given
from hypothesis import strategies as st

from helpers import d, org_id, person_id
from xinyong.derived.lab import groups
from xinyong.errors import BadInput

DAY = d("2026-06-01")


def test_sex_is_the_parity_of_the_17th_digit() -> None:
    assert groups.sex(person_id(1)) == "male"
    assert groups.sex(person_id(2)) == "female"
    # An organisation has neither sex nor age: its group is "—" under both.
    assert groups.value_of("sex", org_id(1), "organisation", "371082", DAY) == groups.NONE
    assert groups.value_of("age_band", org_id(1), "organisation", "371082", DAY) == groups.NONE
    assert groups.value_of("division", org_id(1), "organisation", None, DAY) == groups.NONE


@pytest.mark.parametrize(
    ("birth", "day", "band"),
    [
        ("20010602", "2026-06-01", "<25"),
        ("20010601", "2026-06-01", "25–34"),
        ("19910602", "2026-06-01", "25–34"),
        ("19910601", "2026-06-01", "35–44"),
        ("19610601", "2026-06-01", "65+"),
        ("19610602", "2026-06-01", "55–64"),
    ],
)
def test_age_bands_count_full_years_on_the_day(birth: str, day: str, band: str) -> None:
    assert groups.age_band(person_id(7, birth), d(day)) == band


@given(st.dates(dt.date(1920, 1, 1), dt.date(2020, 12, 31)), st.integers(0, 36_000))
def test_an_age_band_is_the_band_of_the_full_years_lived(born: dt.date, days: int) -> None:
    day = born + dt.timedelta(days=days)
    age = day.year - born.year - ((day.month, day.day) < (born.month, born.day))
    band = groups.age_band(person_id(3, born.strftime("%Y%m%d")), day)
    limits = [(0, 25), (25, 35), (35, 45), (45, 55), (55, 65), (65, 10_000)]
    assert [lo <= age < hi for lo, hi in limits].index(True) == groups.AGE_BANDS.index(band)


def test_an_unknown_field_is_refused() -> None:
    with pytest.raises(BadInput, match="--by: 'religion' is not a field"):
        groups.check_fields(["religion"])
