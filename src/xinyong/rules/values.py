"""One reading of every value that comes from outside: amounts, days, subject identifiers,
document references and periods.

Each function here is the rule for its concept, and every interface calls it: the command line
(`--amount`, `--occurred-on`), the HTTP API (the body's fields, through pydantic), the web forms,
the row-wise file import (a file's line and column) and the ledger itself, which checks the
values of a record event again for callers of the library. Before there was one function per
concept there were three rules for one amount: the command line stored NaN and -5, the API
stored negatives, the import refused both; a person could not know which rule applied without
knowing which door a value came in by.

Every function reads text (surrounding whitespace ignored, as a file's fields are), or a value
already of its type, and returns the value in its canonical form; a refusal is `BadInput` with
one `Problem` that names where the value was (the option, the field, or the file's line and
column) and why it is refused, and nothing is changed. The messages are the file import's, which
agencies already know. This module is pure and cheap to import: the identifier checks
(python-stdnum, 45 ms to import) and periods (pydantic) are imported when first used, because
the command line imports this module to start.
"""

from __future__ import annotations

import datetime as dt
import re
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING, NoReturn

from xinyong.errors import BadInput, Problem

if TYPE_CHECKING:
    from xinyong.rules.periods import Period

# The days the platform counts with. Outside this range calendar arithmetic (validity periods,
# notice, working days) leaves what the date type and the holiday calendar know.
FIRST_DAY = dt.date(1900, 1, 1)
LAST_DAY = dt.date(2199, 12, 31)

AMOUNT_LIMIT = Decimal("1e16")
CENT = Decimal("0.01")
DOCUMENT_REF_MAX = 128

_DAY = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
# Plain decimal notation, with an exponent because JSON Lines numbers arrive as Python prints
# floats (1e-05, 1e+16). Digit group separators (1_000, 1,000) and non-ASCII digits are refused,
# although Python's Decimal reads the first and the third: a file's amounts are read alike by the
# row-wise and the bulk path only if neither guesses.
_NUMBER = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")


def refuse(why: str, *, where: str, line: int | None = None) -> NoReturn:
    """Raise the one `BadInput` every validator raises: `where` is an option or field name, or a
    file's column when `line` is given (then the problem carries line and column)."""
    if line is None:
        problem = Problem(where, why)
    else:
        problem = Problem(f"line {line}, column {where}", why, line=line, column=where)
    raise BadInput(str(problem), [problem])


def amount(value: str | Decimal | None, *, where: str, line: int | None = None) -> Decimal | None:
    """An amount of money: finite, 0 ≤ x < 10^16, with at most two decimals (DESIGN.md, "One
    validator per concept"); None when there is none (no value, or an empty field).

    The store keeps NUMERIC(18, 2), so 10^16 is the first amount it cannot hold. A third decimal
    is refused, not rounded: an agency that sends 1.005 meant something the ledger would silently
    change, and rounding rules differ (Python rounds half to even, DuckDB half away from zero).
    Zeros after the second decimal lose nothing, so 1.500 is 1.50. NaN and Infinity, which
    Python's Decimal reads, are not numbers here, nor to DuckDB's cast on the bulk path. The
    amount is returned with exactly two decimals, the form the store gives back, so a file sent
    twice compares equal.
    """
    if value is None:
        return None
    if isinstance(value, Decimal):
        number, text = value, str(value)
    elif isinstance(value, str):
        text = value.strip()
        if not text:
            return None
        number = _decimal(text, where=where, line=line)
    else:
        refuse(f"{value!r} is not a number", where=where, line=line)
    if not number.is_finite():
        refuse(f"{text!r} is not a number", where=where, line=line)
    if number < 0 or number >= AMOUNT_LIMIT:
        refuse(f"{text} is not a non-negative amount below 10^16", where=where, line=line)
    cents = number.quantize(CENT)
    if cents != number:
        refuse(
            f"{text} has more than two decimals; amounts are kept to the cent, never rounded", where=where, line=line
        )
    return abs(cents)  # -0 is 0


def _decimal(text: str, *, where: str, line: int | None) -> Decimal:
    if not _NUMBER.fullmatch(text):
        # NaN and Infinity too, in any spelling: Decimal reads them, DuckDB's cast (the bulk
        # path) does not, and "'NaN' is not a number" is what both paths say.
        refuse(f"{text!r} is not a number", where=where, line=line)
    try:
        return Decimal(text)
    except InvalidOperation:  # an exponent of more than 18 digits, beyond what Decimal reads
        refuse(f"{text!r} is not a number", where=where, line=line)


def day(
    value: str | dt.date,
    *,
    where: str,
    line: int | None = None,
    not_after: dt.date | None = None,
) -> dt.date:
    """A calendar day written YYYY-MM-DD, between 1900-01-01 and 2199-12-31, and not after
    `not_after` when given (today, where the day a fact occurred is meant: it cannot be in the
    future).

    Only the one ISO form is read: Python 3.11 also reads 20260301 and 2026-W09-1, the import
    never did, and a date means the same thing through every door or it means nothing.
    """
    if isinstance(value, dt.datetime):
        refuse(f"{value.isoformat()!r} is a time, not a date (YYYY-MM-DD)", where=where, line=line)
    if isinstance(value, dt.date):
        found = value
    elif isinstance(value, str):
        text = value.strip()
        try:
            if not _DAY.fullmatch(text):
                raise ValueError(text)
            found = dt.date.fromisoformat(text)
        except ValueError:
            refuse(f"{text!r} is not a date (YYYY-MM-DD)", where=where, line=line)
    else:
        refuse(f"{value!r} is not a date (YYYY-MM-DD)", where=where, line=line)
    if not FIRST_DAY <= found <= LAST_DAY:
        refuse(f"{found} is not a day between {FIRST_DAY} and {LAST_DAY}", where=where, line=line)
    if not_after is not None and found > not_after:
        refuse(f"{found} is in the future", where=where, line=line)
    return found


def document_ref(value: str, *, where: str, line: int | None = None) -> str:
    """A source's reference for the document behind a record (a judgment's number, a decision's
    file number): 1 to 128 characters, without NUL, surrounding whitespace ignored.

    It is the record's key within its source (SOURCE:DOCUMENT_REF names a record), so it must be
    there and fit the column; PostgreSQL cannot store a NUL, and no real document needs one.
    """
    text = value.strip() if isinstance(value, str) else ""
    if not text or len(text) > DOCUMENT_REF_MAX:
        refuse(f"a document reference of 1 to {DOCUMENT_REF_MAX} characters is required", where=where, line=line)
    if "\x00" in text:
        refuse("contains a NUL character", where=where, line=line)
    return text


def subject_id(value: str, *, kind: str | None = None, where: str, line: int | None = None) -> str:
    """A subject's identifier in its canonical form: a GB 11643 resident identity number for a
    person, a GB 32100 unified social credit code for an organisation, each with its check
    character (python-stdnum); any kind when `kind` is None.

    Whitespace anywhere is ignored and letters are read in upper case (a trailing x is the check
    character X), because ids are copied from documents that space them out; nothing else is
    forgiven, so a typo in one digit is caught here rather than creating a second, phantom subject.
    """
    from xinyong.rules import identifiers

    text = identifiers.normalise(value) if isinstance(value, str) else ""
    if kind is None:
        reason = identifiers.invalid_reason(text)
        if reason is not None:
            refuse(reason, where=where, line=line)
        return text
    try:
        return identifiers.validate(text, kind)
    except ValueError as exc:
        refuse(str(exc), where=where, line=line)


def period(value: str, *, where: str, line: int | None = None) -> Period:
    """An ISO 8601 duration of years, months, weeks or days (P10D, P6M, P2Y); see `Period.parse`,
    which holds the rule (scheme files read their periods through it)."""
    from xinyong.rules.periods import Period

    try:
        return Period.parse(value)
    except ValueError as exc:
        refuse(str(exc), where=where, line=line)


# The outbox's address column holds at most this many characters.
URL_MAX = 254


def webhook_url(value: str, *, where: str) -> str:
    """Where an agency's webhook calls go: an absolute http or https URL with a host, at most 254
    characters, no user name or password in it (the store would keep them in clear), no spaces or
    control characters, no fragment. https is expected outside a test bench: the calls are signed,
    but an eavesdropper on http learns when versions come."""
    from urllib.parse import urlsplit

    text = value.strip() if isinstance(value, str) else ""
    if not text:
        refuse("give a URL, e.g. https://feeds.example.org/xinyong", where=where)
    if len(text) > URL_MAX:
        refuse(f"at most {URL_MAX} characters, not {len(text)}", where=where)
    if any(c.isspace() or ord(c) < 32 or ord(c) == 127 for c in text):
        refuse("a URL has no spaces or control characters", where=where)
    try:
        parts = urlsplit(text)
        port = parts.port
    except ValueError as exc:
        refuse(f"{text!r} is not a URL: {exc}", where=where)
    if parts.scheme not in ("http", "https"):
        refuse(f"{text!r} is not an http or https URL", where=where)
    if not parts.hostname:
        refuse(f"{text!r} names no host", where=where)
    if parts.username is not None or parts.password is not None:
        refuse("a user name or password in the URL would be stored in clear; use a secret path instead", where=where)
    if parts.fragment:
        refuse("a URL sent to has no #fragment", where=where)
    if port == 0:
        refuse(f"{text!r}: port 0", where=where)
    return text
