"""The ledger: records and their events, append-only, the only truth everything else derives from.

Every write here goes through one transaction that appends ledger rows and refreshes the derived
effects of the records it touched, so that a reader never sees a record without its effects.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from sqlalchemy import Connection, func, select

from xinyong.derived import derivation
from xinyong.due_process import notices
from xinyong.errors import BadInput, NotFound, Refused
from xinyong.ledger.registry import SchemeVersion, authorised_behaviours, scheme_versions
from xinyong.rules.clock import local_day, to_storage
from xinyong.rules.effects import (
    CORRECTED,
    DECLINED,
    ENDED,
    REVOKED,
    Record,
    RecordEvent,
    RecordView,
    view_as_known,
)
from xinyong.rules.schemes import Scheme
from xinyong.storage import store as t

END_REASONS = ("fulfilled", "repaired")


@dataclass(frozen=True)
class History:
    """A record with every event that happened to it, oldest first."""

    record: Record
    events: tuple[RecordEvent, ...]

    def view(self, known_at: dt.datetime | None = None) -> RecordView:
        return view_as_known(self.record, self.events, known_at)


def resolve_record_id(conn: Connection, ref: str | int) -> int:
    """A record's id from its id or from SOURCE:DOCUMENT_REF."""
    text = str(ref).strip()
    if text.isdigit():
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
    record, events = derivation.load_records(conn, [record_id])[record_id]
    return History(record, tuple(sorted(events, key=lambda e: (e.recorded_at, e.id))))


def subject_histories(conn: Connection, subject_id: str) -> list[History]:
    ids = [row.id for row in conn.execute(select(t.records.c.id).where(t.records.c.subject_id == subject_id))]
    loaded = derivation.load_records(conn, ids)
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
    conn: Connection, record: Record, kind: str, now: dt.datetime, actor: str, *, notify: bool = True, **fields: Any
) -> int:
    """Append one event and re-derive the record's effects; the only way a record's story changes.

    The subject's notice about the event is written in the same transaction (`notify=False` only
    where a caller writes one notice for several events, as an approved repair does)."""
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
    derivation.refresh_records(conn, [record.id])
    if notify:
        notices.for_event(conn, record.id, event_id, now)
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
    check_correction(conn, found.record, behaviour, occurred_on, now)
    return append_event(
        conn,
        found.record,
        CORRECTED,
        now,
        actor,
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
) -> None:
    """A correction may only use a behaviour some scheme knows and the record's source may submit."""
    if behaviour is not None:
        if behaviour not in known_behaviours(conn):
            raise BadInput(f"--behaviour: {behaviour} is not in any loaded scheme's catalogue")
        if behaviour not in authorised_behaviours(conn, record.source_id):
            raise Refused(f"--behaviour: source {record.source_id} is not authorised for {behaviour}")
    if occurred_on is not None and occurred_on > local_day(now):
        raise BadInput(f"--occurred-on: {occurred_on} is in the future")


def revoke(conn: Connection, ref: str | int, *, now: dt.datetime, actor: str, reason: str) -> int:
    """Void a record: it never had any effect, as known from now on."""
    found = history(conn, ref)
    if found.view().void:
        raise Refused(f"record {found.record.id} is already revoked")
    return append_event(conn, found.record, REVOKED, now, actor, reason=_require_reason(reason))


def end(
    conn: Connection,
    ref: str | int,
    *,
    on: dt.date,
    reason: str,
    now: dt.datetime,
    actor: str,
    note: str | None = None,
) -> int:
    """End a record's effect from day `on`: the obligation was fulfilled, or a repair was approved."""
    if reason not in END_REASONS:
        raise BadInput(f"--reason: {reason!r} is not one of {', '.join(END_REASONS)}")
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
        effective_on=on,
        outcome=reason,
        reason=note or reason,
    )


def decline(conn: Connection, ref: str | int, *, now: dt.datetime, actor: str) -> int:
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
    return append_event(conn, found.record, DECLINED, now, actor, reason="declined by the subject")


def load_scheme(conn: Connection, scheme: Scheme, text: str, now: dt.datetime) -> tuple[SchemeVersion, bool]:
    """Publish a scheme version and derive its effects; loading the same version again is a no-op.

    A different document under an existing version number is refused: a published version is
    never changed in place, so a rule change must be a new version.
    """
    existing = {v.version: v for v in scheme_versions(conn, scheme.scheme)}
    if scheme.version in existing:
        if existing[scheme.version].digest == scheme.digest():
            return existing[scheme.version], False
        raise Refused(
            f"scheme {scheme.scheme} version {scheme.version} is already published with different content; "
            "give the changed scheme a new version (and an effective_from day)"
        )
    if existing and scheme.effective_from is None:
        raise BadInput(f"scheme {scheme.scheme} already has a version: a new version needs effective_from")
    conn.execute(
        t.scheme_versions.insert().values(
            scheme=scheme.scheme,
            version=scheme.version,
            effective_from=scheme.effective_from,
            loaded_at=to_storage(now),
            title=scheme.title,
            digest=scheme.digest(),
            document=scheme.canonical_json(),
            source_text=text,
        )
    )
    version = SchemeVersion(scheme, now, scheme.digest())
    derivation.derive_version(conn, version)
    return version, True


def subject_ids_with_records(conn: Connection) -> Sequence[str]:
    return [row.subject_id for row in conn.execute(select(t.records.c.subject_id).distinct())]
