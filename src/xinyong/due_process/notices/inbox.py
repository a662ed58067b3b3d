"""A subject's inbox: notices as stored, read back with their text put together."""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sqlalchemy import (
    Connection,
    func,
    select,
    update,
)

from xinyong.due_process.notices.facts import PORTAL, iso
from xinyong.due_process.notices.text import render
from xinyong.errors import NotFound
from xinyong.rules.clock import from_storage, to_storage
from xinyong.storage import tables as t
from xinyong.storage.tables import facts_text

if TYPE_CHECKING:
    pass


@dataclass(frozen=True)
class Notice:
    id: int
    subject_id: str
    record_id: int
    event_id: int | None
    kind: str
    created_at: dt.datetime
    takes_effect_on: dt.date | None
    object_by: dt.date | None
    facts: dict[str, Any]
    read_at: dt.datetime | None


# Every notice with its template's parts, if it has one.
NOTICE_ROWS = select(t.notices, t.notice_templates.c.parts).select_from(
    t.notices.outerjoin(t.notice_templates, t.notice_templates.c.id == t.notices.c.template_id)
)


def _notice(row: Any) -> Notice:
    return Notice(
        id=int(row.id),
        subject_id=row.subject_id,
        record_id=int(row.record_id),
        event_id=int(row.event_id) if row.event_id is not None else None,
        kind=row.kind,
        created_at=from_storage(row.created_at),
        takes_effect_on=row.takes_effect_on,
        object_by=row.object_by,
        facts=json.loads(facts_text(row.facts, row.parts, row.fill)),
        read_at=from_storage(row.read_at) if row.read_at is not None else None,
    )


def inbox(
    conn: Connection,
    subject_id: str | None = None,
    *,
    record_id: int | None = None,
    unread_only: bool = False,
    limit: int | None = None,
) -> list[Notice]:
    """A subject's notices, newest first (every subject's when `subject_id` is None)."""
    query = NOTICE_ROWS.order_by(t.notices.c.id.desc())
    if subject_id is not None:
        query = query.where(t.of_subject(t.notices, subject_id))
    if record_id is not None:
        query = query.where(t.notices.c.record_id == record_id)
    if unread_only:
        query = query.where(t.notices.c.read_at.is_(None))
    if limit is not None:
        query = query.limit(limit)
    return [_notice(row) for row in conn.execute(query)]


def get(conn: Connection, notice_id: int) -> Notice:
    row = conn.execute(NOTICE_ROWS.where(t.notices.c.id == notice_id)).first()
    if row is None:
        raise NotFound(f"notice {notice_id} does not exist")
    return _notice(row)


def mark_read(conn: Connection, notice_id: int, now: dt.datetime) -> Notice:
    """The subject has read the notice in the portal (the first reading is kept)."""
    get(conn, notice_id)
    conn.execute(
        update(t.notices)
        .where(t.notices.c.id == notice_id, t.notices.c.read_at.is_(None))
        .values(read_at=to_storage(now))
    )
    return get(conn, notice_id)


def count(conn: Connection, subject_id: str | None = None) -> int:
    query = select(func.count()).select_from(t.notices)
    if subject_id is not None:
        query = query.where(t.of_subject(t.notices, subject_id))
    return int(conn.execute(query).scalar_one())


def deliveries(conn: Connection, notice: Notice) -> list[dict[str, Any]]:
    """The notice's deliveries: the portal's, done when it was written, then its outbox rows."""
    portal = {
        "channel": PORTAL,
        "address": None,
        "state": "delivered",
        "attempts": 0,
        "delivered_at": iso(notice.created_at),
        "last_error": None,
    }
    query = select(t.outbox).where(t.outbox.c.notice_id == notice.id).order_by(t.outbox.c.id)
    return [portal] + [
        {
            "channel": row.channel,
            "address": row.address,
            "state": row.state,
            "attempts": row.attempts,
            "delivered_at": iso(from_storage(row.delivered_at)) if row.delivered_at else None,
            "last_error": row.last_error,
        }
        for row in conn.execute(query)
    ]


def to_dict(notice: Notice, lang: str, delivered: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """The notice as JSON for the command line and the API: facts plus its text in `lang`."""
    text = render(notice, lang)
    data: dict[str, Any] = {
        "id": notice.id,
        "subject": notice.subject_id,
        "record": notice.record_id,
        "event": notice.event_id,
        "kind": notice.kind,
        "created_at": iso(notice.created_at),
        "takes_effect_on": iso(notice.takes_effect_on),
        "object_by": iso(notice.object_by),
        "read_at": iso(notice.read_at),
        "language": text.language,
        "title": text.subject,
        "text": text.body,
        "facts": notice.facts,
    }
    if delivered is not None:
        data["deliveries"] = delivered
    return data
