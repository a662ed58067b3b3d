"""Synthetic identifiers: resident identity numbers (GB 11643) and unified social credit codes
(GB 32100), valid and unique, so that the import path is exercised exactly as with real files.

A resident identity number is an address code, a birth date, a sequence number (odd for men, even
for women) and a check character; a unified social credit code is a registration authority and
entity type, a division, a GB 11714 organisation code (eight characters and their own check
character) and a check character. The row-wise city draws one id at a time (`draw_resident_id`,
`draw_uscc`); the vectorised population draws them as (n, 18) ASCII matrices (`person_ids`,
`org_ids`). Both take the check characters from the same functions: python-stdnum's
`calc_check_digit` for GB 11643 and GB 32100, and `gb11714_check_character` for the organisation
code, which python-stdnum does not cover.

Check characters come from one scalar definition each and are never re-derived by hand: the
row-wise city calls it per id; the vectorised population, which draws millions of ids, computes
whole columns from a table read off that same function (`_derived`: the standards define the check
as a weighted sum modulo 11 or 31, so each position adds a fixed amount per character, and one
probe per position and character finds it). Calling stdnum per id there was measured and
rejected. At 1,000,000 subjects (900,000 persons, 100,000 organisations, as the scale benchmark
splits them), CPU time, best of three alternating runs in one process on two shared cores: the
check characters alone took 1.18 s per id against 0.065 s from the table; generate_subjects_table
3.89 s against 2.59 s; write_parquet with 5 M records 13.6 s against 11.7 s. Per id would have
been a third of the subjects' time and a seventh of the whole run (it cost 1.2 to 1.7 s per
million subjects in every run), above the tenth we were willing to pay for it.
tests/test_synth_identifiers.py holds the table to stdnum's `calc_check_digit` for random ids.
"""

from __future__ import annotations

import datetime
import functools
import random
from collections.abc import Callable
from typing import Any

from stdnum.cn import ric, uscc

from xinyong.demo.synth.dates import adult_birth_dates

# A resident identity number carries the address code in force where the number was first
# assigned. `rules.identifiers` accepts any code that was ever in force, but the synthetic city
# gives each resident the code of their birth year, as stdnum's table dates it. The four
# current codes date from 1987-2014, so older residents carry the code of the same county under
# the former Yantai prefecture (3706xx, 1983-1987) or Yantai district (3721xx, up to 1983).
# Each entry: (first year, last year, code), newest first; the years are those in stdnum's table.
ID_ADDRESS_CODES: dict[str, tuple[tuple[int, int, str], ...]] = {
    "371002": ((1987, 9999, "371002"), (1983, 1987, "370620"), (0, 1983, "372102")),
    "371003": (
        (2014, 9999, "371003"),
        (1989, 2014, "371081"),
        (1987, 1988, "371022"),
        (1983, 1987, "370632"),
        (0, 1983, "372132"),
    ),
    "371082": (
        (1989, 9999, "371082"),
        (1987, 1988, "371023"),
        (1983, 1987, "370633"),
        (0, 1983, "372133"),
    ),
    "371083": (
        (1993, 9999, "371083"),
        (1987, 1993, "371021"),
        (1983, 1987, "370630"),
        (0, 1983, "372130"),
    ),
}

# GB 11714 organisation codes may use letters; the USCC alphabet omits I O S V Z, and an
# organisation code inside a USCC must use only characters the USCC alphabet allows.
USCC_ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"
_GB11714_WEIGHTS = (3, 7, 9, 10, 5, 8, 4, 2)


def id_address_code(division: str, year: int) -> str:
    """The address code a resident of `division` born in `year` was given."""
    for first, last, code in ID_ADDRESS_CODES[division]:
        if first <= year <= last:
            return code
    raise AssertionError(f"no address code for {division} in {year}")  # tables cover all years


# --- check characters -----------------------------------------------------------------------


def ric_check_character(first17: str) -> str:
    """The GB 11643 check character of a resident identity number's first 17 digits."""
    # stdnum's ric.calc_check_digit ignores the last character of its argument, so it is given a
    # placeholder check character.
    return ric.calc_check_digit(first17 + "0")


def uscc_check_character(first17: str) -> str:
    """The GB 32100 check character of a unified social credit code's first 17 characters."""
    return uscc.calc_check_digit(first17)


def gb11714_check_character(body: str) -> str:
    """The GB 11714 check character of an organisation code's first 8 characters: the characters
    as base-36 digits, weighted; 11 - sum % 11, with 10 written X and 11 written 0."""
    total = sum(int(c, 36) * w for c, w in zip(body, _GB11714_WEIGHTS, strict=True))
    check = 11 - total % 11
    return "X" if check == 10 else "0" if check == 11 else str(check)


# --- one at a time (the row-wise city) ------------------------------------------------------


def draw_resident_id(
    rng: random.Random, division: str, male: bool, born_from: datetime.date, born_span: int, used: set[str]
) -> str:
    """A resident identity number not in `used` (and added to it), born in the `born_span` days
    from `born_from`."""
    while True:
        born = born_from + datetime.timedelta(days=rng.randrange(born_span))
        # The sequence number is odd for men and even for women (GB 11643).
        seq = rng.randrange(500) * 2 + 1 if male else rng.randrange(1, 500) * 2
        first17 = f"{id_address_code(division, born.year)}{born:%Y%m%d}{seq:03d}"
        subject_id = first17 + ric_check_character(first17)
        if subject_id not in used:
            used.add(subject_id)
            return subject_id


def draw_organisation_code(rng: random.Random) -> str:
    """A 9-character organisation code with a valid GB 11714 check character."""
    if rng.random() < 0.6:
        # Codes assigned since the 2015 reform start with MA and use letters.
        body = "MA" + "".join(rng.choice(USCC_ALPHABET) for _ in range(6))
    else:
        body = rng.choice("3456789") + f"{rng.randrange(10**7):07d}"
    return body + gb11714_check_character(body)


def draw_uscc(rng: random.Random, prefix: str, division: str, used: set[str]) -> str:
    """A unified social credit code not in `used` (and added to it)."""
    while True:
        first17 = prefix + division + draw_organisation_code(rng)
        code = first17 + uscc_check_character(first17)
        if code not in used:
            used.add(code)
            return code


# --- a column at a time (the vectorised population) -----------------------------------------


def _ascii(rows: list[str]) -> Any:
    import numpy as np

    return np.frombuffer("".join(rows).encode("ascii"), dtype=np.uint8).reshape(len(rows), -1)


def _digits(values: Any, width: int) -> Any:
    """Non-negative integers as a (n, width) matrix of ASCII digits."""
    import numpy as np

    out = np.empty((len(values), width), dtype=np.uint8)
    rest = np.asarray(values, dtype=np.int64).copy()
    for col in range(width - 1, -1, -1):
        out[:, col] = 48 + rest % 10
        rest //= 10
    return out


# What each check character is computed over (the number of characters before it, the characters
# they may be) and how its values are written, in order of value (X is 10, as in ISO 7064).
_CHECKED: dict[Callable[[str], str], tuple[int, str, str]] = {
    ric_check_character: (17, "0123456789", "0123456789X"),
    uscc_check_character: (17, USCC_ALPHABET, USCC_ALPHABET),
    gb11714_check_character: (8, USCC_ALPHABET, "0123456789X"),
}


@functools.cache
def _derived(check: Callable[[str], str]) -> tuple[int, Any, Any]:
    """(value for all zeros, (width, 256) table, check characters in order of value) such that
    check(s) == characters[(value + sum of table[i, ord(s[i])]) % len(characters)].

    All three standards define the check as a weighted sum modulo 11 or 31, so each position adds
    a fixed amount per character; the amounts are read off `check` itself, one probe per position
    and character, and hold for any input whatever weights and offsets `check` uses.
    """
    import numpy as np

    width, inputs, outputs = _CHECKED[check]
    value = {char: v for v, char in enumerate(outputs)}
    zeros = inputs[0] * width
    base = value[check(zeros)]
    table = np.zeros((width, 256), dtype=np.int64)
    for i in range(width):
        for char in inputs:
            table[i, ord(char)] = (value[check(zeros[:i] + char + zeros[i + 1 :])] - base) % len(outputs)
    return base, table, np.frombuffer(outputs.encode("ascii"), dtype=np.uint8)


def with_check_characters(body: Any, check: Callable[[str], str]) -> Any:
    """An (n, k) ASCII matrix with one more column: `check` of each row, computed for all rows
    at once from the table `_derived` reads off `check`."""
    import numpy as np

    base, table, chars = _derived(check)
    if body.shape[1] != len(table):
        raise ValueError(f"{check.__name__} takes {len(table)} characters, not {body.shape[1]}")
    residue = np.full(len(body), base, dtype=np.int64)
    for i in range(len(table)):
        residue += table[i][body[:, i]]
    return np.concatenate([body, chars[residue % len(chars)].reshape(-1, 1)], axis=1)


def _keep_new(candidate: Any, taken: set[bytes]) -> Any:
    """Which rows of an (n, 18) matrix are neither in `taken` nor repeat an earlier row; those
    are added to `taken`."""
    import numpy as np

    keys = candidate.view("S18").ravel()
    _, first_index = np.unique(keys, return_index=True)
    fresh = np.zeros(len(candidate), dtype=bool)
    fresh[first_index] = True
    for index in np.flatnonzero(fresh):
        key = bytes(keys[index])
        if key in taken:
            fresh[index] = False
        else:
            taken.add(key)
    return fresh


def person_ids(rng: Any, divisions: Any, today: datetime.date, n: int) -> tuple[Any, Any]:
    """(ids as an (n, 18) ASCII matrix, male flags); unique, with the address code of the birth year."""
    import numpy as np

    oldest, span = adult_birth_dates(today)
    ids = np.empty((n, 18), dtype=np.uint8)
    male = rng.random(n) < 0.5
    todo = np.arange(n)
    seen: set[bytes] = set()
    base = np.datetime64(oldest.isoformat(), "D")
    while len(todo):
        born = base + rng.integers(0, span, len(todo)).astype("timedelta64[D]")
        years = born.astype("datetime64[Y]").astype(np.int64) + 1970
        ymd = years * 10_000
        months = born.astype("datetime64[M]").astype(np.int64) % 12 + 1
        days = (born - born.astype("datetime64[M]")).astype(np.int64) + 1
        ymd = ymd + months * 100 + days
        m = male[todo]
        seq = np.where(m, rng.integers(0, 500, len(todo)) * 2 + 1, rng.integers(1, 500, len(todo)) * 2)
        codes = np.zeros(len(todo), dtype=np.int64)
        for division, table in ID_ADDRESS_CODES.items():
            mine = divisions[todo] == int(division)
            for first, last, code in table:
                codes[mine & (years >= first) & (years <= last) & (codes == 0)] = int(code)
        body = np.concatenate([_digits(codes, 6), _digits(ymd, 8), _digits(seq, 3)], axis=1)
        candidate = with_check_characters(body, ric_check_character)
        fresh = _keep_new(candidate, seen)
        ids[todo[fresh]] = candidate[fresh]
        todo = todo[~fresh]
    return ids, male


def org_ids(rng: Any, divisions: Any, prefixes: Any, n: int, taken: set[bytes]) -> Any:
    """Unified social credit codes (an (n, 18) ASCII matrix) with a valid GB 11714 organisation
    code inside; unique and not in `taken` (to which they are added)."""
    import numpy as np

    alphabet = np.frombuffer(USCC_ALPHABET.encode(), dtype=np.uint8)
    ids = np.empty((n, 18), dtype=np.uint8)
    todo = np.arange(n)
    while len(todo):
        k = len(todo)
        letters = rng.random(k) < 0.6
        body = np.empty((k, 8), dtype=np.uint8)
        body[:, 0], body[:, 1] = ord("M"), ord("A")
        body[:, 2:] = alphabet[rng.integers(0, len(alphabet), (k, 6))]
        numeric = _digits(rng.integers(3, 10, k) * 10**7 + rng.integers(0, 10**7, k), 8)
        body = np.where(letters[:, None], body, numeric)
        first17 = np.concatenate(
            [
                _ascii(list(prefixes[todo])),
                _digits(divisions[todo], 6),
                with_check_characters(body, gb11714_check_character),
            ],
            axis=1,
        )
        candidate = with_check_characters(first17, uscc_check_character)
        fresh = _keep_new(candidate, taken)
        ids[todo[fresh]] = candidate[fresh]
        todo = todo[~fresh]
    return ids
