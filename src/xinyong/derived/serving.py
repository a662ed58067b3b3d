"""The serving state: every subject's state for one day, precomputed, for reads that must be fast.

A batch (`batch.run`) fills it for everyone; an event about a subject refreshes that subject's rows
in the event's own transaction (`refresh_if_served`). It is a cache that may miss, never one that
may lie: `served_many` lets a row answer only while nothing that can change the subject's state
was recorded after the row was computed (`tables.subject_changes`), and otherwise the caller asks
the online path, which is always exact. Checks (`checks.check_many`) read it first.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, Select, and_, bindparam, delete, exists, or_, select

from xinyong.ledger.registry import Subject
from xinyong.rules.clock import from_storage, to_storage
from xinyong.storage import tables as t
from xinyong.storage.driver_query import DriverQuery

if TYPE_CHECKING:
    import pyarrow as pa


@dataclass(frozen=True)
class ServedState:
    subject: str
    scheme: str
    version: str
    as_of: dt.date
    known_at: dt.datetime
    score: int | None
    grade: str | None
    lists: tuple[str, ...]
    measures: tuple[str, ...]


def _row(
    scheme_id: str, subject_id: str, as_of: dt.date, known_at: dt.datetime, computed_at: dt.datetime, **state: Any
) -> dict[str, Any]:
    return {
        "scheme": scheme_id,
        "subject_id": subject_id,
        "version": state["version"],
        "as_of": as_of,
        "known_at": to_storage(known_at),
        "computed_at": to_storage(computed_at),
        "score": state["score"],
        "grade": state["grade"],
        "lists": ",".join(state["lists"] or ()),
        "measures": ",".join(state["measures"] or ()),
    }


def replace_from_batch(
    conn: Connection, state: pa.Table, as_of: dt.date, known_at: dt.datetime, computed_at: dt.datetime
) -> int:
    """Replace the serving state of the schemes in a batch's result with that result."""
    schemes = sorted(set(state.column("scheme").to_pylist()))
    for scheme_id in schemes:
        conn.execute(delete(t.serving_state).where(t.serving_state.c.scheme == scheme_id))
    written = 0
    for part in state.to_batches(max_chunksize=20_000):
        rows = [_batch_row(r, as_of, known_at, computed_at) for r in part.to_pylist()]
        if rows:
            conn.execute(t.serving_state.insert(), rows)
            written += len(rows)
    return written


def _batch_row(r: Mapping[str, Any], as_of: dt.date, known_at: dt.datetime, computed_at: dt.datetime) -> dict[str, Any]:
    return _row(
        r["scheme"],
        r["subject_id"],
        as_of,
        known_at,
        computed_at,
        version=r["version"],
        score=r["score"],
        grade=r["grade"],
        lists=r["lists"],
        measures=r["measures"],
    )


def _served_query() -> Select[Any]:
    """Subjects by id, each with its served row under :scheme (if any) and whether anything that
    can change its state was recorded after the row was computed and by :known_at — built once:
    building it costs more than running it. The subject's own columns come along, so an unknown id
    and a subject to compute online need no second lookup."""
    s, subjects, changes, versions = t.serving_state, t.subjects, t.subject_changes, t.scheme_versions
    since, until = s.c.known_at, bindparam("known_at", type_=t.serving_state.c.known_at.type)
    # The ledger notes every subject whose story an append changed (`ledger.registry.mark_changed`):
    # a record, an event of one of its records, a consent. One index seek per subject.
    changed = or_(
        exists().where(
            changes.c.subject_id == s.c.subject_id, changes.c.changed_at > since, changes.c.changed_at <= until
        ),
        exists().where(versions.c.loaded_at > since, versions.c.loaded_at <= until),
    )
    served = subjects.outerjoin(s, and_(s.c.subject_id == subjects.c.id, s.c.scheme == bindparam("scheme")))
    # Whether the row may answer is decided in the query: the row's day and knowledge time are
    # compared there rather than read back (parsing SQLite's timestamps cost more than the lookup).
    fresh = and_(s.c.as_of == bindparam("as_of", type_=s.c.as_of.type), s.c.known_at <= until, ~changed)
    return (
        select(
            subjects.c.id,
            subjects.c.kind,
            subjects.c.name,
            subjects.c.legal_representative,
            subjects.c.division,
            s.c.version,
            s.c.measures,
            fresh.label("fresh"),
        )
        .select_from(served)
        .where(subjects.c.id.in_(bindparam("subjects", expanding=True)))
    )


SERVED = DriverQuery(_served_query())


@dataclass(frozen=True)
class Served:
    """A subject as the serving state knows it under one scheme on (D, K): who it is, and the
    version and measures of its served row where that row may answer (`version` None otherwise)."""

    subject: Subject
    version: str | None
    measures: tuple[str, ...]


def served_many(
    conn: Connection, subject_ids: Collection[str], scheme_id: str, as_of: dt.date, known_at: dt.datetime
) -> dict[str, Served]:
    """The registered subjects among `subject_ids` (normalised ids), each with its precomputed
    state for (scheme, D) as known at K where that may answer — one query for all.

    A served row answers only for the day it was computed for, for a knowledge time at or after
    the row's, and only when nothing about the subject (a record, a record event, a consent) nor
    any scheme version was recorded between the row's knowledge time and K.
    """
    found: dict[str, Served] = {}
    rows = SERVED.all(conn, scheme=scheme_id, subjects=list(subject_ids), known_at=to_storage(known_at), as_of=as_of)
    for row in rows:
        subject = Subject(row.id, row.kind, row.name, row.legal_representative, row.division)
        if row.fresh:
            found[row.id] = Served(subject, row.version, tuple(x for x in row.measures.split(",") if x))
        else:
            found[row.id] = Served(subject, None, ())
    return found


def served_state(
    conn: Connection, subject_id: str, scheme_id: str, as_of: dt.date, known_at: dt.datetime
) -> ServedState | None:
    """The precomputed state of (subject, scheme, D) as known at K in full, or None when it may
    be stale (`served_many` decides)."""
    found = served_many(conn, [subject_id], scheme_id, as_of, known_at).get(subject_id)
    if found is None or found.version is None:
        return None
    s = t.serving_state
    row = conn.execute(select(s).where(s.c.scheme == scheme_id, s.c.subject_id == subject_id)).one()
    return ServedState(
        subject=subject_id,
        scheme=scheme_id,
        version=row.version,
        as_of=row.as_of,
        known_at=from_storage(row.known_at),
        score=row.score,
        grade=row.grade,
        lists=tuple(x for x in row.lists.split(",") if x),
        measures=tuple(x for x in row.measures.split(",") if x),
    )


def refresh_subject(conn: Connection, subject_id: str, as_of: dt.date, known_at: dt.datetime) -> int:
    """Recompute one subject's serving rows for day D on the online path, as known at K."""
    from xinyong.derived.state import StateReader
    from xinyong.ledger.registry import scheme_ids
    from xinyong.rules.engine import State

    reader = StateReader.open(conn, subject_id, known_at)
    rows = []
    for scheme_id in scheme_ids(conn):
        result = reader.state(scheme_id, as_of)
        conn.execute(
            delete(t.serving_state).where(
                t.serving_state.c.scheme == scheme_id, t.serving_state.c.subject_id == subject_id
            )
        )
        if isinstance(result, State):
            rows.append(
                _row(
                    scheme_id,
                    subject_id,
                    as_of,
                    known_at,
                    known_at,
                    version=result.scheme_version,
                    score=result.score,
                    grade=result.grade,
                    lists=result.lists,
                    measures=result.measures,
                )
            )
    if rows:
        conn.execute(t.serving_state.insert(), rows)
    return len(rows)


def refresh_if_served(conn: Connection, subject_ids: Iterable[str], now: dt.datetime) -> int:
    """After an event, in its transaction: recompute the serving rows its subjects already have.

    The newest day a subject is served for is kept (a batch serves one day); subjects with no rows
    are left alone — a check for them goes to the online path anyway. Returns the rows written.
    """
    written = 0
    for subject_id in dict.fromkeys(subject_ids):
        column = t.serving_state.c.as_of  # ordered rather than max(): max() would lose the Date type on SQLite
        day = conn.execute(
            select(column).where(t.serving_state.c.subject_id == subject_id).order_by(column.desc()).limit(1)
        ).scalar()
        if day is not None:
            written += refresh_subject(conn, subject_id, day, now)
    return written
