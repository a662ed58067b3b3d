"""The serving state: every subject's state for one day, precomputed, for reads that must be fast.

A batch (`batch.run`) fills it for everyone; an event about a subject refreshes that subject's rows
in the event's own transaction (`refresh_if_served`). It is a cache that may miss, never one that
may lie: `served_state` answers only while nothing that can change the subject's state was
recorded after the row was computed, and otherwise the caller asks the online path, which is
always exact. Checks (`checks.check`) read it first.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, Select, bindparam, delete, exists, or_, select

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
    """One served row with whether anything that can change its subject's state was recorded
    after the row was computed and by :known_at — built once: building it costs more than running it."""
    s, records, events, subject_events, versions = (
        t.serving_state,
        t.records,
        t.record_events,
        t.subject_events,
        t.scheme_versions,
    )
    since, until = s.c.known_at, bindparam("known_at", type_=t.serving_state.c.known_at.type)
    changed = or_(
        exists().where(
            records.c.subject_id == s.c.subject_id, records.c.recorded_at > since, records.c.recorded_at <= until
        ),
        exists()
        .select_from(events.join(records, records.c.id == events.c.record_id))
        .where(records.c.subject_id == s.c.subject_id, events.c.recorded_at > since, events.c.recorded_at <= until),
        exists().where(
            subject_events.c.subject_id == s.c.subject_id,
            subject_events.c.recorded_at > since,
            subject_events.c.recorded_at <= until,
        ),
        exists().where(versions.c.loaded_at > since, versions.c.loaded_at <= until),
    )
    return select(s, changed.label("changed")).where(
        s.c.scheme == bindparam("scheme"), s.c.subject_id == bindparam("subject")
    )


SERVED = DriverQuery(_served_query())


def served_state(
    conn: Connection, subject_id: str, scheme_id: str, as_of: dt.date, known_at: dt.datetime
) -> ServedState | None:
    """The precomputed answer for (subject, scheme, D) as known at K, or None when it may be stale.

    A served row is used only for the day it was computed for, for a knowledge time at or after
    the row's, and only when nothing about the subject (a record, a record event, a consent event)
    nor any scheme version was recorded between the row's knowledge time and K. The row and its
    freshness are one query: this is on the path of every check the answer cache cannot answer.
    """
    row = SERVED.first(conn, scheme=scheme_id, subject=subject_id, known_at=to_storage(known_at))
    if row is None or row.as_of != as_of or row.changed:
        return None
    row_known = from_storage(row.known_at)
    if known_at < row_known:
        return None
    return ServedState(
        subject=subject_id,
        scheme=scheme_id,
        version=row.version,
        as_of=as_of,
        known_at=row_known,
        score=row.score,
        grade=row.grade,
        lists=tuple(x for x in (row.lists or "").split(",") if x),
        measures=tuple(x for x in (row.measures or "").split(",") if x),
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
