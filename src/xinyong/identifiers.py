"""Subject identifiers: GB 11643 resident numbers for persons, GB 32100 codes for organisations."""

from __future__ import annotations

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
    a typo in any one digit is caught here rather than creating a second, phantom subject.
    """
    if kind not in _VALIDATORS:
        raise ValueError(f"kind {kind!r} is not one of person, organisation")
    module, label = _VALIDATORS[kind]
    try:
        return str(module.validate(value))
    except stdnum_errors.InvalidChecksum:
        raise ValueError(f"{value!r} is not a valid {label}: wrong check character") from None
    except stdnum_errors.InvalidLength:
        raise ValueError(f"{value!r} is not a valid {label}: it must have 18 characters") from None
    except stdnum_errors.InvalidComponent:
        raise ValueError(f"{value!r} is not a valid {label}: a component (date, region) is invalid") from None
    except stdnum_errors.ValidationError:
        raise ValueError(f"{value!r} is not a valid {label}: bad format") from None


def mask(value: str, kind: str) -> str:
    """A person's id as it may leave their own view (110105********1234); codes are public."""
    if kind != "person" or len(value) < 10:
        return value
    return value[:6] + "*" * (len(value) - 10) + value[-4:]
