"""Subject identifiers: GB 11643 resident numbers for persons, GB 32100 codes for organisations."""

from __future__ import annotations

import functools
import re
from collections.abc import Collection
from typing import Literal

from stdnum import exceptions as stdnum_errors
from stdnum.cn import ric, uscc

SubjectKind = Literal["person", "organisation"]
SUBJECT_KINDS: tuple[SubjectKind, ...] = ("person", "organisation")

_VALIDATORS = {
    "person": (ric, "resident identity number (GB 11643)"),
    "organisation": (uscc, "unified social credit code (GB 32100)"),
}


def validate(value: str, kind: str) -> str:
    """The normalised identifier, or ValueError naming the id and why it is wrong.

    python-stdnum checks length, alphabet, the embedded date of birth and the check character, so
    a typo in any one digit is caught here rather than creating a second, phantom subject. The id
    is normalised first (`normalise`); python-stdnum would also drop hyphens from a code, which
    the records import never did, so a hyphen is refused: one id has one spelling.
    """
    if kind not in _VALIDATORS:
        raise ValueError(f"kind {kind!r} is not one of person, organisation")
    module, label = _VALIDATORS[kind]
    value = normalise(value)
    try:
        found = _resident_number(value) if kind == "person" else str(module.validate(value))
        if found != value:
            raise stdnum_errors.InvalidFormat()
        return found
    except stdnum_errors.InvalidChecksum:
        raise ValueError(f"{value!r} is not a valid {label}: wrong check character") from None
    except stdnum_errors.InvalidLength:
        raise ValueError(f"{value!r} is not a valid {label}: it must have 18 characters") from None
    except _BadBirthDate:
        raise ValueError(f"{value!r} is not a valid {label}: no such date of birth ({value[6:14]})") from None
    except _UnknownAreaCode:
        raise ValueError(f"{value!r} is not a valid {label}: {value[:6]} was never an area code") from None
    except stdnum_errors.InvalidComponent:
        raise ValueError(f"{value!r} is not a valid {label}: a component (date, region) is invalid") from None
    except stdnum_errors.ValidationError:
        raise ValueError(f"{value!r} is not a valid {label}: bad format") from None


class _BadBirthDate(stdnum_errors.InvalidComponent):
    pass


class _UnknownAreaCode(stdnum_errors.InvalidComponent):
    pass


# Earliest birth year accepted: resident numbers were first issued in 1985, to the living.
_FIRST_BIRTH_YEAR = 1880


def _resident_number(value: str) -> str:
    """`value` if it is a well-formed GB 11643 number whose area code was valid in some year.

    python-stdnum's `ric.validate` also asks that the area code existed in the holder's birth
    year, but the code says where the number was *issued*, not where its holder was born: a
    Rongcheng resident born in 1975 holds 371082…, a code created in 1988, and would be refused
    with most adults of any district created or renamed since. So structure, check character and
    date are stdnum's checks, and the area code is looked up in stdnum's table with its history
    (every code ever in force, any year)."""
    if len(value) != 18:
        raise stdnum_errors.InvalidLength()
    if not value[:-1].isdigit() or not value[:-1].isascii():
        raise stdnum_errors.InvalidFormat()
    if value[-1] != ric.calc_check_digit(value):
        raise stdnum_errors.InvalidChecksum()
    try:
        born = ric.get_birth_date(value)
    except stdnum_errors.InvalidComponent:
        raise _BadBirthDate() from None
    if born.year < _FIRST_BIRTH_YEAR:
        raise _BadBirthDate()
    if not _ever_an_area_code(value[:6]):
        raise _UnknownAreaCode()
    return value


@functools.cache
def _ever_an_area_code(code: str) -> bool:
    """Whether stdnum's table names a county for `code` in any year (cached: an import asks about
    the same few codes millions of times)."""
    from stdnum import numdb

    found = numdb.get("cn/loc").info(code)
    return len(found) == 2 and bool(found[1][1].get("county"))


def normalise(value: str) -> str:
    """The canonical form used as a key: no spaces, upper case (a trailing x is the check character X)."""
    return "".join(value.split()).upper()


def invalid_reason(value: str) -> str | None:
    """Why `value` is neither a valid resident number nor a valid unified code, or None if it is one.

    An unregistered id is checked as both kinds, because most unified codes are digits too and the
    kind cannot be told from the shape alone; both verdicts are given so the sender can see which
    check failed.
    """
    reasons = []
    for kind in SUBJECT_KINDS:
        try:
            validate(value, kind)
        except ValueError as exc:
            reasons.append(str(exc).split(": ", 1)[-1])
        else:
            return None
    return (
        f"{value!r} is neither a valid resident identity number ({reasons[0]}) "
        f"nor a valid unified social credit code ({reasons[1]})"
    )


def mask(value: str, kind: str) -> str:
    """A person's id as it may leave their own view (110105********1234); codes are public."""
    if kind != "person" or len(value) < 10:
        return value
    return value[:6] + "*" * (len(value) - 10) + value[-4:]


# A run that may be a person's id inside free text (a logged path, an audit entry's actor or role):
# 15 or more digits (a first-generation resident number has 15, today's 18 with a check character
# that may be X). Organisations' codes that are all digits are masked too: in a log that costs
# nothing, and the code is public anyway where it is shown whole.
_PERSON_LIKE = re.compile(r"(?<![0-9])[0-9]{14,}[0-9Xx](?![0-9])")


def mask_text(text: str, *, keep: Collection[str] = ()) -> str:
    """`text` with every run that may be a person's id masked as `mask` masks one (the first six
    and last four characters kept; a longer run keeps only those too), except the ids in `keep`
    (a subject's own id in its own view)."""
    if not text:
        return text

    def masked(found: re.Match[str]) -> str:
        value = found.group()
        return value if value in keep else mask(value, "person")

    return _PERSON_LIKE.sub(masked, text)
