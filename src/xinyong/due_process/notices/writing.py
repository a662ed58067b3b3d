"""Writing notices row by row, in the transaction of the ledger event that caused them.

Generation is keyed by (record, event): running it twice for the same event writes nothing
twice. Imports call `for_new_records` once per chunk, so a file costs two bulk inserts, not a
query per record. The portal inbox is the notices table itself, so a committed notice is in the
subject's portal at once; when the subject has an e-mail address, an outbox row is written in the
same transaction too (`due_process.outbox` sends it).
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Sequence
from email.utils import parseaddr
from typing import TYPE_CHECKING, Any

from sqlalchemy import (
    Connection,
    select,
)

from xinyong import settings
from xinyong.due_process.notices.contacts import contacts_of
from xinyong.due_process.notices.facts import (
    EMAIL,
    NOTIFIED,
    RECORDED,
    facts_for,
    facts_json,
    object_by_day,
    schemes_in_force,
    takes_effect_day,
)
from xinyong.ledger import records as ledger_records
from xinyong.ledger.registry import existing_subjects, scheme_versions
from xinyong.rules.clock import local_day, to_storage
from xinyong.rules.records import (
    Record,
    RecordEvent,
)
from xinyong.rules.schemes import SchemeVersion
from xinyong.storage import tables as t

if TYPE_CHECKING:
    pass


def mail_domain() -> str:
    address = parseaddr(settings.current().smtp_from)[1]
    return address.rsplit("@", 1)[1] if "@" in address else "xinyong.invalid"


def _written(conn: Connection, rows: Sequence[dict[str, Any]]) -> dict[str, int]:
    """The ids of the notices already written under these rows' keys, by key: looked up with their
    records' ids, which lead the one index that holds the keys."""
    found: dict[str, int] = {}
    for start in range(0, len(rows), 500):
        part = rows[start : start + 500]
        query = select(t.notices.c.id, t.notices.c.key).where(
            t.notices.c.record_id.in_(sorted({r["record_id"] for r in part})),
            t.notices.c.key.in_([r["key"] for r in part]),
        )
        found.update((row.key, int(row.id)) for row in conn.execute(query))
    return found


def _write(
    conn: Connection,
    items: Sequence[tuple[Record, RecordEvent | None, dict[str, Any]]],
    now: dt.datetime,
    *,
    fresh: bool = False,
) -> list[int]:
    """Insert notices and their e-mail outbox rows (for subjects with an address).

    `fresh`: the records were written in this transaction, so no notice can exist for them yet."""
    if not items:
        return []
    stamp = to_storage(now)
    rows = [
        {
            "key": f"{record.id}:{event.id if event is not None else RECORDED}",
            "subject_id": record.subject_id,
            "record_id": record.id,
            "event_id": event.id if event is not None else None,
            "kind": facts["kind"],
            "created_at": stamp,
            "takes_effect_on": takes_effect_day(facts),
            "object_by": object_by_day(facts),
            "facts": facts_json(facts),
        }
        for record, event, facts in items
    ]
    if not fresh:
        existing = _written(conn, rows)
        rows = [r for r in rows if r["key"] not in existing]
    if not rows:
        return []
    # A plain executemany, then the ids by key: RETURNING in parameter order makes SQLite insert
    # row by row, which would double the cost of a bulk import.
    conn.execute(t.notices.insert(), rows)
    by_key = _written(conn, rows)
    ids = [by_key[r["key"]] for r in rows]
    contacts = contacts_of(conn, {r["subject_id"] for r in rows})
    domain = mail_domain()
    deliveries = []
    for notice_id, row in zip(ids, rows, strict=True):
        contact = contacts.get(row["subject_id"])
        if contact is None or not contact.email:
            continue
        deliveries.append(
            {
                "notice_id": notice_id,
                "channel": EMAIL,
                "address": contact.email,
                "message_id": f"<notice-{notice_id}.{EMAIL}.{uuid.uuid4().hex[:16]}@{domain}>",
                "state": "pending",
                "attempts": 0,
                "next_attempt_at": stamp,
            }
        )
    if deliveries:
        conn.execute(t.outbox.insert(), deliveries)
    return ids


def for_new_records(
    conn: Connection,
    records: Sequence[Record],
    now: dt.datetime,
    versions: Sequence[SchemeVersion] | None = None,
    *,
    fresh: bool = True,
) -> list[int]:
    """Notices for records just recorded (an import chunk): one query for kinds, two bulk inserts.

    `fresh=False` first skips records that already have their notice (for callers that may retry)."""
    if not records:
        return []
    in_force = schemes_in_force(versions if versions is not None else scheme_versions(conn), local_day(now), now)
    kinds = {s.id: s.kind for s in existing_subjects(conn, (r.subject_id for r in records)).values()}
    items = []
    cache: dict[Any, Any] = {}
    for record in records:
        facts = facts_for(record, (), None, kinds.get(record.subject_id, "person"), in_force, now, cache)
        if facts is not None:
            items.append((record, None, facts))
    return _write(conn, items, now, fresh=fresh)


def for_record_ids(conn: Connection, ids: Sequence[int], now: dt.datetime, *, chunk: int = 5000) -> int:
    """Notices for records just written by another path (the bulk importer), read back in chunks;
    call it in the writing transaction. Idempotent; returns how many notices were written."""
    versions = scheme_versions(conn)
    written = 0
    for start in range(0, len(ids), chunk):
        part = list(ids[start : start + chunk])
        query = (
            select(t.records).where(t.records.c.id.in_(part))
            if len(part) < 1000
            else (select(t.records).where(t.records.c.id >= min(part), t.records.c.id <= max(part)))
        )
        wanted = set(part)
        found = [ledger_records.record_from_row(row) for row in conn.execute(query) if row.id in wanted]
        written += len(for_new_records(conn, found, now, versions, fresh=False))
    return written


def for_event(conn: Connection, record_id: int, event_id: int, now: dt.datetime) -> int | None:
    """The notice about one event of a record, written in the event's transaction; its id or None."""
    record, events = ledger_records.load_records(conn, [record_id])[record_id]
    event = next(e for e in events if e.id == event_id)
    if event.kind not in NOTIFIED:
        return None
    subject = existing_subjects(conn, [record.subject_id])[record.subject_id]
    in_force = schemes_in_force(scheme_versions(conn), local_day(now), now)
    facts = facts_for(record, events, event, subject.kind, in_force, now)
    if facts is None:
        return None
    ids = _write(conn, [(record, event, facts)], now)
    return ids[0] if ids else None
