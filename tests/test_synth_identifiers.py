"""Synthetic identifiers: the vectorised check characters are python-stdnum's, and every id either
generator draws passes stdnum's validation (GB 11643, GB 32100) and GB 11714 inside."""

from __future__ import annotations

import datetime as dt
import random
from collections.abc import Callable

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from stdnum.cn import ric, uscc

from xinyong.demo.synth import generate_subjects_table
from xinyong.demo.synth.dates import adult_birth_dates
from xinyong.demo.synth.identifiers import (
    USCC_ALPHABET,
    draw_resident_id,
    draw_uscc,
    gb11714_check_character,
    ric_check_character,
    uscc_check_character,
    with_check_characters,
)
from xinyong.demo.synth.vocabulary import DIVISIONS, ORG_TYPE_POOL

DIGITS = "0123456789"


def _matrix(rows: list[str]) -> np.ndarray:
    return np.frombuffer("".join(rows).encode("ascii"), dtype=np.uint8).reshape(len(rows), -1)


def _checks(rows: list[str], check: Callable[[str], str]) -> list[str]:
    out = with_check_characters(_matrix(rows), check)
    assert (out[:, :-1] == _matrix(rows)).all()
    return [chr(c) for c in out[:, -1]]


@settings(max_examples=200, deadline=None)  # a shared machine under load missed 200 ms
@given(st.lists(st.text(DIGITS, min_size=17, max_size=17), min_size=1, max_size=40))
def test_resident_check_characters_are_stdnums(bodies: list[str]) -> None:
    # ric.calc_check_digit reads all but the last character of its argument.
    assert _checks(bodies, ric_check_character) == [ric.calc_check_digit(b + "0") for b in bodies]


@settings(max_examples=200)
@given(st.lists(st.text(USCC_ALPHABET, min_size=17, max_size=17), min_size=1, max_size=40))
def test_uscc_check_characters_are_stdnums(bodies: list[str]) -> None:
    assert _checks(bodies, uscc_check_character) == [uscc.calc_check_digit(b) for b in bodies]


@settings(max_examples=200)
@given(st.lists(st.text(USCC_ALPHABET, min_size=8, max_size=8), min_size=1, max_size=40))
def test_organisation_code_check_characters_vectorised(bodies: list[str]) -> None:
    assert _checks(bodies, gb11714_check_character) == [gb11714_check_character(b) for b in bodies]


def test_organisation_code_check_character() -> None:
    # stdnum's own USCC example, 91110000600037341L, holds the organisation code 60003734-1.
    assert gb11714_check_character("60003734") == "1"
    # M = 22 and A = 10 as base-36 digits: 22*3 + 10*7 + 4*2 = 144 = 13*11 + 1, and 11 - 1 is written X;
    # with a last digit 9 the sum is 154 = 14*11, and 11 - 0 is written 0.
    assert gb11714_check_character("MA000004") == "X"
    assert gb11714_check_character("MA000009") == "0"


def test_width_must_match() -> None:
    with pytest.raises(ValueError, match="17 characters"):
        with_check_characters(_matrix(["1234"]), ric_check_character)


def _assert_organisation_code(code: str) -> None:
    assert code[16] == gb11714_check_character(code[8:16]), code


@settings(max_examples=30, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    today=st.dates(dt.date(2000, 1, 1), dt.date(2045, 12, 31)),
    persons=st.integers(0, 200),
    organisations=st.integers(0, 60),
)
def test_every_row_wise_id_validates(seed: int, today: dt.date, persons: int, organisations: int) -> None:
    rng = random.Random(seed)
    used: set[str] = set()
    oldest, span = adult_birth_dates(today)
    for _ in range(persons):
        division = rng.choice(sorted(DIVISIONS))
        male = rng.random() < 0.5
        subject_id = draw_resident_id(rng, division, male, oldest, span, used)
        assert ric.validate(subject_id) == subject_id
        assert int(subject_id[16]) % 2 == int(male)
    for _ in range(organisations):
        _kind, prefix = rng.choice(ORG_TYPE_POOL)
        code = draw_uscc(rng, prefix, rng.choice(sorted(DIVISIONS)), used)
        assert uscc.validate(code) == code
        _assert_organisation_code(code)
    assert len(used) == persons + organisations


@settings(max_examples=30, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    today=st.dates(dt.date(2000, 1, 1), dt.date(2045, 12, 31)),
    persons=st.integers(0, 400),
    organisations=st.integers(0, 100),
)
def test_every_vectorised_id_validates(seed: int, today: dt.date, persons: int, organisations: int) -> None:
    table = generate_subjects_table(persons, organisations, today=today, seed=seed)
    ids = table.column("subject_id").to_pylist()
    assert len(set(ids)) == persons + organisations
    for subject_id in ids[:persons]:
        assert ric.validate(subject_id) == subject_id
    for code in ids[persons:]:
        assert uscc.validate(code) == code
        _assert_organisation_code(code)
