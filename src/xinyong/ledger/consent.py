"""Consent to scoring: a person's grant or withdrawal, per scheme, kept as subject events.

Rongcheng's 2021 rules score residents only with their consent; a scheme says `consent: required`
and then a person without consent on record has no score, grade, list or measure under it.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import Connection, bindparam, select

from xinyong.errors import BadInput, Refused, did_you_mean
from xinyong.ledger.appended import AfterAppend
from xinyong.ledger.registry import existing_subjects, mark_changed, scheme_ids, scheme_versions, unregistered
from xinyong.rules.clock import from_storage, local_day, to_storage
from xinyong.storage import tables as t
from xinyong.storage.driver_query import DriverQuery

GRANTED = "consent_granted"
WITHDRAWN = "consent_withdrawn"


@dataclass(frozen=True)
class ConsentEvent:
    scheme: str
    kind: str
    recorded_at: dt.datetime


# Run on the driver: this is read for every state computed online (see registry._SUBJECT for why).
_EVENTS_OF = DriverQuery(
    select(t.subject_events)
    .where(t.subject_events.c.subject_id == bindparam("subject"))
    .order_by(t.subject_events.c.recorded_at, t.subject_events.c.id)
)


def consent_events(conn: Connection, subject_id: str) -> list[ConsentEvent]:
    rows = _EVENTS_OF.all(conn, subject=subject_id)
    return [ConsentEvent(row.scheme, row.kind, from_storage(row.recorded_at)) for row in rows]


def has_consent(
    events: Sequence[ConsentEvent], scheme: str, day: dt.date, known_at: dt.datetime, timezone: str
) -> bool:
    """Consent is on record on `day` as known at `known_at` when the latest such event is a grant."""
    latest = None
    for event in events:
        if event.scheme == scheme and event.recorded_at <= known_at and local_day(event.recorded_at, timezone) <= day:
            latest = event
    return latest is not None and latest.kind == GRANTED


def record_consent(
    conn: Connection, subject_id: str, scheme_id: str, grant: bool, now: dt.datetime, actor: str, *, after: AfterAppend
) -> bool:
    """Grant or withdraw; returns False when the consent was already in that state (nothing written)."""
    return record_consents(conn, [subject_id], scheme_id, grant, now, actor, after=after) == 1


def record_consents(
    conn: Connection,
    subject_ids: Sequence[str],
    scheme_id: str,
    grant: bool,
    now: dt.datetime,
    actor: str,
    *,
    after: AfterAppend,
) -> int:
    """Grant or withdraw for many persons at once (a consent campaign); returns how many changed."""
    if not scheme_versions(conn, scheme_id):
        raise BadInput(f"--scheme: scheme {scheme_id} is not loaded{did_you_mean(scheme_id, scheme_ids(conn))}")
    subjects = existing_subjects(conn, subject_ids)
    for subject_id in subject_ids:
        if subject_id not in subjects:
            raise unregistered(subject_id)
        if subjects[subject_id].kind != "person":
            raise Refused(f"subject {subject_id} is an organisation: consent applies to persons only")
    latest: dict[str, str] = {}
    query = (
        select(t.subject_events.c.subject_id, t.subject_events.c.kind)
        .where(t.subject_events.c.scheme == scheme_id)
        .order_by(t.subject_events.c.recorded_at, t.subject_events.c.id)
    )
    for row in conn.execute(query):
        latest[row.subject_id] = row.kind
    kind = GRANTED if grant else WITHDRAWN
    changed = [s for s in dict.fromkeys(subject_ids) if latest.get(s, WITHDRAWN) != kind]
    if changed:
        stamp = to_storage(now)
        conn.execute(
            t.subject_events.insert(),
            [
                {"subject_id": s, "scheme": scheme_id, "kind": kind, "recorded_at": stamp, "actor": actor}
                for s in changed
            ],
        )
        mark_changed(conn, changed, now)
        after.subjects_changed(conn, changed, now)
    return len(changed)
