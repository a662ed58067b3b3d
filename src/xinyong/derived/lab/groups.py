"""The groups a policy-lab report is broken down by: division, kind, sex and age band.

Sex and age band are read from a person's resident identity number (GB 11643: the birth date in
digits 7–14, an odd 17th digit for a man) when a report asks for them, and only then: they are
never stored and no scheme can read them (a scheme sees behaviours, never the subject's row), so
the audit of a scheme's fairness is the one place they exist.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

import pyarrow as pa
from sqlalchemy import select

from xinyong.errors import BadInput
from xinyong.storage import tables as t
from xinyong.storage.store import Store

FIELDS = ("division", "kind", "sex", "age_band")
# What a subject has where a field does not apply (an organisation's sex) or is not known.
NONE = "—"
AGE_BANDS = ("<25", "25–34", "35–44", "45–54", "55–64", "65+")


def check_fields(fields: Sequence[str], option: str = "--by") -> list[str]:
    """The fields, or a clear error naming the first unknown one."""
    for name in fields:
        if name not in FIELDS:
            raise BadInput(f"{option}: {name!r} is not a field to group by; use one of {', '.join(FIELDS)}")
    if len(set(fields)) != len(fields):
        raise BadInput(f"{option}: a field is given twice")
    return list(fields)


def _birth(subject_id: str) -> dt.date | None:
    try:
        return dt.date(int(subject_id[6:10]), int(subject_id[10:12]), int(subject_id[12:14]))
    except ValueError:
        return None


def sex(subject_id: str) -> str:
    """ "male" or "female" from the 17th digit of an 18-character resident identity number."""
    if len(subject_id) != 18 or not subject_id[16].isdigit():
        return NONE
    return "male" if int(subject_id[16]) % 2 else "female"


def age_band(subject_id: str, day: dt.date) -> str:
    """The person's age band on `day` in full years, from the birth date in the identity number."""
    born = _birth(subject_id) if len(subject_id) == 18 else None
    if born is None or born > day:
        return NONE
    age = day.year - born.year - ((day.month, day.day) < (born.month, born.day))
    for limit, band in zip((25, 35, 45, 55, 65), AGE_BANDS, strict=False):
        if age < limit:
            return band
    return AGE_BANDS[-1]


def value_of(field: str, subject_id: str, kind: str, division: str | None, day: dt.date) -> str:
    """One subject's value of one field on `day`."""
    if field == "division":
        return division or NONE
    if field == "kind":
        return kind
    if kind != "person":
        return NONE
    return sex(subject_id) if field == "sex" else age_band(subject_id, day)


def group_table(store: Store, fields: Sequence[str], day: dt.date) -> pa.Table:
    """`subject_id` and `grp`, the subject's values of `fields` joined by " / " (one group per
    combination when several fields are given)."""
    ids: list[str] = []
    groups: list[str] = []
    with store.read() as conn:
        rows = conn.execute(select(t.subjects.c.id, t.subjects.c.kind, t.subjects.c.division))
        for subject_id, kind, division in rows:
            ids.append(subject_id)
            groups.append(" / ".join(value_of(f, subject_id, kind, division, day) for f in fields))
    return pa.table({"subject_id": pa.array(ids, pa.string()), "grp": pa.array(groups, pa.string())})
