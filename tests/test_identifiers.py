"""Subject identifiers: GB 11643 resident numbers and GB 32100 unified social credit codes."""

from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import given
from hypothesis import strategies as st
from stdnum.cn import ric, uscc

from xinyong.rules.identifiers import SUBJECT_KINDS, mask, validate

# Synthetic numbers: real division codes (Beijing Chaoyang, Shanghai Xuhui, Rongcheng, Shenzhen
# Nanshan, Chengdu Wuhou), made-up birth dates and sequence numbers.
REGIONS = ["110105", "310104", "371082", "440305", "510107"]
USCC_ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"


def person_id(region: str, born: dt.date, sequence: int) -> str:
    body = f"{region}{born:%Y%m%d}{sequence:03d}"
    # ric.calc_check_digit expects the number with a check character in place and ignores it
    return body + ric.calc_check_digit(body + "0")


def organisation_code(department: str, kind: str, region: str, code: str) -> str:
    body = f"{department}{kind}{region}{code}"
    return body + uscc.calc_check_digit(body)


PERSON = person_id("110105", dt.date(1990, 1, 1), 123)  # 110105199001011232
ORGANISATION = organisation_code("9", "1", "371082", "MA3C4D5E6")

persons = st.builds(
    person_id,
    st.sampled_from(REGIONS),
    st.dates(dt.date(1990, 1, 1), dt.date(2010, 12, 31)),
    st.integers(0, 999),
)
organisations = st.builds(
    organisation_code,
    st.sampled_from("159"),
    st.sampled_from("123"),
    st.sampled_from(REGIONS),
    st.text(USCC_ALPHABET, min_size=9, max_size=9),
)


def test_sample_ids_are_valid() -> None:
    assert PERSON == "110105199001011232"
    assert validate(PERSON, "person") == PERSON
    assert validate(ORGANISATION, "organisation") == ORGANISATION
    assert validate("37108219950704103X", "person") == "37108219950704103X"


def test_ids_are_normalised() -> None:
    assert validate("37108219950704103x", "person") == "37108219950704103X"
    assert validate(" " + ORGANISATION.lower() + " ", "organisation") == ORGANISATION


@given(persons)
def test_generated_person_ids_are_valid(value: str) -> None:
    assert validate(value, "person") == value


@given(organisations)
def test_generated_organisation_codes_are_valid(value: str) -> None:
    assert validate(value, "organisation") == value


@pytest.mark.parametrize(("value", "kind"), [(PERSON, "person"), (ORGANISATION, "organisation")])
def test_wrong_check_character_is_refused(value: str, kind: str) -> None:
    alphabet = "0123456789X" if kind == "person" else USCC_ALPHABET
    wrong = value[:-1] + next(c for c in alphabet if c != value[-1])
    with pytest.raises(ValueError, match="check character") as caught:
        validate(wrong, kind)
    assert wrong in str(caught.value)


def test_the_kinds_are_not_interchangeable() -> None:
    with pytest.raises(ValueError, match="resident identity number"):
        validate(ORGANISATION, "person")
    with pytest.raises(ValueError, match="unified social credit code"):
        validate(PERSON[:-1] + "!", "organisation")


@pytest.mark.parametrize(
    ("value", "kind", "reason"),
    [
        (PERSON[:-1], "person", "18 characters"),
        (PERSON + "1", "person", "18 characters"),
        ("", "organisation", "18 characters"),
        ("1101051990010112X2", "person", "bad format"),
        ("ABCDEFGH1234567890", "organisation", "bad format"),
        ("91371082MA3C4D5EI0", "organisation", "bad format"),  # I is not in the alphabet
    ],
)
def test_malformed_ids_are_refused(value: str, kind: str, reason: str) -> None:
    with pytest.raises(ValueError, match=reason) as caught:
        validate(value, kind)
    assert repr(value) in str(caught.value)


def test_an_impossible_birth_date_is_refused_and_named() -> None:
    body = "11010519901332001"  # 32 December 1990 does not exist
    value = body + ric.calc_check_digit(body + "0")
    with pytest.raises(ValueError, match=r"no such date of birth \(19901332\)"):
        validate(value, "person")


@pytest.mark.parametrize(
    "value",
    [
        "371082197503150029",  # Rongcheng (371082 since 1988), born 1975
        person_id("371082", dt.date(1950, 6, 1), 7),
        person_id("440305", dt.date(1960, 2, 29), 12),  # Shenzhen Nanshan, created 1990
        person_id("110115", dt.date(1970, 3, 3), 1),  # Beijing Daxing district, created 2001
        person_id("110103", dt.date(2012, 5, 5), 2),  # Chongwen, merged away in 2010: still a code
    ],
)
def test_an_area_code_valid_in_any_year_is_accepted(value: str) -> None:
    """The area code is where the number was issued, not where its holder was born: python-stdnum
    alone refuses everyone born before their district was created or after it was merged."""
    assert not ric.is_valid(value)
    assert validate(value, "person") == value


@pytest.mark.parametrize("region", ["999999", "110199", "371099"])
def test_an_area_code_never_in_force_is_refused_and_named(region: str) -> None:
    value = person_id(region, dt.date(1980, 1, 1), 5)
    with pytest.raises(ValueError, match=f"{region} was never an area code"):
        validate(value, "person")


def test_a_birth_date_before_1880_is_refused() -> None:
    with pytest.raises(ValueError, match="no such date of birth"):
        validate(person_id("110105", dt.date(1850, 1, 1), 5), "person")


def test_an_unknown_kind_is_refused() -> None:
    assert SUBJECT_KINDS == ("person", "organisation")
    with pytest.raises(ValueError, match="kind 'company'"):
        validate(ORGANISATION, "company")


def test_mask() -> None:
    assert mask("110105199001011234", "person") == "110105********1234"
    assert mask(ORGANISATION, "organisation") == ORGANISATION
    assert mask("123", "person") == "123"


@given(persons)
def test_mask_hides_the_birth_date(value: str) -> None:
    masked = mask(value, "person")
    assert len(masked) == len(value)
    assert masked[:6] == value[:6]
    assert masked[-4:] == value[-4:]
    assert masked[6:14] == "*" * 8


def single_changes(draw: st.DrawFn, value: str, alphabet: str) -> str:
    position = draw(st.integers(0, len(value) - 1))
    replacement = draw(st.sampled_from(alphabet))
    return value[:position] + replacement + value[position + 1 :]


@st.composite
def changed_persons(draw: st.DrawFn) -> tuple[str, str]:
    value = draw(persons)
    return value, single_changes(draw, value, "0123456789Xx")


@st.composite
def changed_organisations(draw: st.DrawFn) -> tuple[str, str]:
    value = draw(organisations)
    return value, single_changes(draw, value, USCC_ALPHABET + "abcxyzIOSVZ")


@given(changed_persons())
def test_any_single_change_of_a_person_id_is_caught(pair: tuple[str, str]) -> None:
    original, changed = pair
    try:
        result = validate(changed, "person")
    except ValueError:
        return
    assert result == original


@given(changed_organisations())
def test_any_single_change_of_an_organisation_code_is_caught(pair: tuple[str, str]) -> None:
    original, changed = pair
    try:
        result = validate(changed, "organisation")
    except ValueError:
        return
    assert result == original
