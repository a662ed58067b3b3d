"""Records and their events: append-only, the only truth everything else derives from.

Every change to a record's story is an appended event (`append_event`); nothing is updated in
place. What follows from an event (effects, the subject's notice, the serving state) is done by
the after-append step the caller passes in, in the same transaction (see `ledger.appended`).
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from sqlalchemy import Connection, Row, func, select

from xinyong.errors import BadInput, NotFound, Refused
from xinyong.ledger.appended import AfterAppend
from xinyong.ledger.registry import authorised_behaviours, mark_changed, scheme_versions
from xinyong.rules import values
from xinyong.rules.clock import from_storage, local_day, to_storage
from xinyong.rules.records import CORRECTED, DECLINED, ENDED, REVOKED, Record, RecordEvent, RecordView, view_as_known
from xinyong.storage import tables as t

END_REASONS = ("fulfilled", "repaired")


@dataclass(frozen=True)
class History:
    """A record with every event that happened to it, oldest first."""

    record: Record
    events: tuple[RecordEvent, ...]

    def view(self, known_at: dt.datetime | None = None) -> RecordView:
        return view_as_known(self.record, self.events, known_at)


_CHUNK = 500


def record_from_row(row: Row[Any]) -> Record:
    return Record(
        id=row.id,
        source_id=row.source_id,
        document_ref=row.document_ref,
        subject_id=row.subject_id,
        behaviour=row.behaviour,
        occurred_on=row.occurred_on,
        recorded_at=from_storage(row.recorded_at),
        recorded_by=row.recorded_by,
        amount=row.amount,
        note=row.note,
    )


def event_from_row(row: Row[Any]) -> RecordEvent:
    values = dict(row._mapping)
    values["recorded_at"] = from_storage(values["recorded_at"])
    return RecordEvent(**values)


def load_records(conn: Connection, ids: Sequence[int]) -> dict[int, tuple[Record, list[RecordEvent]]]:
    """Records with their events, fetched in chunks so any number of ids stays one bounded query each."""
    found: dict[int, tuple[Record, list[RecordEvent]]] = {}
    for start in range(0, len(ids), _CHUNK):
        chunk = list(ids[start : start + _CHUNK])
        for row in conn.execute(select(t.records).where(t.records.c.id.in_(chunk))):
            found[row.id] = (record_from_row(row), [])
        query = select(t.record_events).where(t.record_events.c.record_id.in_(chunk)).order_by(t.record_events.c.id)
        for row in conn.execute(query):
            found[row.record_id][1].append(event_from_row(row))
    return found


_RECORD_ID = re.compile(r"[0-9]+")


def resolve_record_id(conn: Connection, ref: str | int) -> int:
    """A record's id from its id or from SOURCE:DOCUMENT_REF. An id is ASCII digits only
    (`str.isdigit` also takes "²", which `int` refuses); one too long for any store is simply not
    found rather than overflowing the database's integer."""
    text = str(ref).strip()
    if _RECORD_ID.fullmatch(text):
        if len(text) > 18:
            raise NotFound(f"record {text[:24]}… does not exist")
        row = conn.execute(select(t.records.c.id).where(t.records.c.id == int(text))).first()
    elif ":" in text:
        source, document_ref = text.split(":", 1)
        row = conn.execute(
            select(t.records.c.id).where(t.records.c.source_id == source, t.records.c.document_ref == document_ref)
        ).first()
    else:
        raise BadInput(f"record {text!r}: give a record id or SOURCE:DOCUMENT_REF")
    if row is None:
        raise NotFound(f"record {text} does not exist")
    return int(row.id)


def history(conn: Connection, ref: str | int) -> History:
    record_id = resolve_record_id(conn, ref)
    record, events = load_records(conn, [record_id])[record_id]
    return History(record, tuple(sorted(events, key=lambda e: (e.recorded_at, e.id))))


def subject_histories(conn: Connection, subject_id: str) -> list[History]:
    ids = [row.id for row in conn.execute(select(t.records.c.id).where(t.records.c.subject_id == subject_id))]
    loaded = load_records(conn, ids)
    return [
        History(record, tuple(sorted(events, key=lambda e: (e.recorded_at, e.id))))
        for record, events in (loaded[i] for i in sorted(loaded))
    ]


def known_behaviours(conn: Connection) -> dict[str, str]:
    """Every behaviour code of every loaded scheme version, with the first scheme that defines it."""
    codes: dict[str, str] = {}
    for version in scheme_versions(conn):
        for behaviour in version.scheme.behaviours:
            codes.setdefault(behaviour.code, version.id)
    return codes


def record_count(conn: Connection) -> int:
    return int(conn.execute(select(func.count()).select_from(t.records)).scalar_one())


def append_event(
    conn: Connection,
    record: Record,
    kind: str,
    now: dt.datetime,
    actor: str,
    *,
    after: AfterAppend,
    notify: bool = True,
    **fields: Any,
) -> int:
    """Append one event, then the after-append step: the only way a record's story changes.

    The step re-derives the record's effects and writes the subject's notice about the event in
    the same transaction (`notify=False` only where a caller writes one notice for several events,
    as an approved repair does)."""
    if now < record.recorded_at:
        raise BadInput(
            f"record {record.id} was recorded at {record.recorded_at.isoformat()}, after the clock's "
            f"now ({now.isoformat()}); events cannot precede their record"
        )
    values = {
        "record_id": record.id,
        "kind": kind,
        "recorded_at": to_storage(now),
        "actor": actor,
        **fields,
    }
    inserted = conn.execute(t.record_events.insert().values(**values).returning(t.record_events.c.id))
    event_id = int(inserted.scalar_one())
    mark_changed(conn, [record.subject_id], now)
    after.event_appended(conn, record, event_id, now, notify=notify)
    return event_id


def _require_reason(reason: str | None) -> str:
    if reason is None or not reason.strip():
        raise BadInput("--reason: a written reason is required for every change to a record")
    return reason.strip()


def correct(
    conn: Connection,
    ref: str | int,
    *,
    now: dt.datetime,
    actor: str,
    after: AfterAppend,
    reason: str,
    behaviour: str | None = None,
    occurred_on: dt.date | None = None,
    amount: Decimal | None = None,
) -> int:
    """Replace a record's behaviour, date or amount; as known from now on, it was always so."""
    found = history(conn, ref)
    view = found.view()
    if view.void:
        raise Refused(f"record {found.record.id} is revoked; a revoked record cannot be corrected")
    if behaviour is None and occurred_on is None and amount is None:
        raise BadInput("records correct: give at least one of --behaviour, --occurred-on, --amount")
    amount = check_correction(conn, found.record, behaviour, occurred_on, now, amount)
    return append_event(
        conn,
        found.record,
        CORRECTED,
        now,
        actor,
        after=after,
        reason=_require_reason(reason),
        behaviour=behaviour,
        occurred_on=occurred_on,
        amount=amount,
    )


def check_correction(
    conn: Connection,
    record: Record,
    behaviour: str | None,
    occurred_on: dt.date | None,
    now: dt.datetime,
    amount: Decimal | None = None,
) -> Decimal | None:
    """A correction may only use a behaviour some scheme knows and the record's source may submit,
    and a date and an amount the file import would take (`rules.values`: the interfaces have read
    them by the same rule; this holds callers of the library to it too). Returns the amount in its
    stored form (two decimals)."""
    if behaviour is not None:
        if behaviour not in known_behaviours(conn):
            raise BadInput(f"--behaviour: {behaviour} is not in any loaded scheme's catalogue")
        if behaviour not in authorised_behaviours(conn, record.source_id):
            raise Refused(f"--behaviour: source {record.source_id} is not authorised for {behaviour}")
    if occurred_on is not None:
        values.day(occurred_on, where="--occurred-on", not_after=local_day(now))
    return values.amount(amount, where="--amount")


def revoke(conn: Connection, ref: str | int, *, now: dt.datetime, actor: str, after: AfterAppend, reason: str) -> int:
    """Void a record: it never had any effect, as known from now on."""
    found = history(conn, ref)
    if found.view().void:
        raise Refused(f"record {found.record.id} is already revoked")
    return append_event(conn, found.record, REVOKED, now, actor, after=after, reason=_require_reason(reason))


def end(
    conn: Connection,
    ref: str | int,
    *,
    on: dt.date,
    reason: str,
    now: dt.datetime,
    actor: str,
    after: AfterAppend,
    note: str | None = None,
) -> int:
    """End a record's effect from day `on`: the obligation was fulfilled, or a repair was approved."""
    if reason not in END_REASONS:
        raise BadInput(f"--reason: {reason!r} is not one of {', '.join(END_REASONS)}")
    values.day(on, where="--on")
    found = history(conn, ref)
    view = found.view()
    if view.void:
        raise Refused(f"record {found.record.id} is revoked; there is nothing to end")
    if on < view.occurred_on:
        raise BadInput(f"--on: {on} is before the record occurred ({view.occurred_on})")
    return append_event(
        conn,
        found.record,
        ENDED,
        now,
        actor,
        after=after,
        effective_on=on,
        outcome=reason,
        reason=note or reason,
    )


def decline(conn: Connection, ref: str | int, *, now: dt.datetime, actor: str, after: AfterAppend) -> int:
    """The subject declines a positive record (Shenzhen 2023): it has no effect from now on."""
    found = history(conn, ref)
    view = found.view()
    if view.declined:
        raise Refused(f"record {found.record.id} is already declined")
    polarities = {
        v.scheme.behaviour_by_code[view.behaviour].polarity
        for v in scheme_versions(conn)
        if view.behaviour in v.scheme.behaviour_by_code
    }
    if "positive" not in polarities:
        raise Refused(
            f"record {found.record.id} ({view.behaviour}) is not a positive record; only those can be declined"
        )
    return append_event(conn, found.record, DECLINED, now, actor, after=after, reason="declined by the subject")


def subject_ids_with_records(conn: Connection) -> Sequence[str]:
    return [row.subject_id for row in conn.execute(select(t.records.c.subject_id).distinct())]
