"""Objections: a subject contests a record; it shows as disputed at once and must be decided in
time. An objection filed inside the notice period holds the record's effect until it is decided
(the hold itself is in `effects.active_window`).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from sqlalchemy import Connection, Row, select

from xinyong.due_process.after_append import AFTER_APPEND
from xinyong.errors import BadInput, NotFound, Refused
from xinyong.ledger import records as ledger
from xinyong.ledger.registry import scheme_versions
from xinyong.rules.clock import from_storage, local_day
from xinyong.rules.records import DECIDED, DISPUTED
from xinyong.rules.schemes import DEFAULT_OBJECTION_DEADLINE
from xinyong.rules.workdays import add_working_days
from xinyong.storage import tables as t

OUTCOMES = ("upheld", "corrected", "revoked")
FILED_AS = ("subject", "officer")
DEFAULT_DEADLINE = DEFAULT_OBJECTION_DEADLINE


@dataclass(frozen=True)
class ObjectionStatus:
    id: int
    record_id: int
    subject_id: str
    filed_at: dt.datetime
    filed_by: str
    reason: str | None
    due_on: dt.date
    decided_at: dt.datetime | None
    outcome: str | None
    decision_reason: str | None
    filed_as: str = "subject"  # or "officer": filed by an officer on the subject's behalf (filed_by names who)
    decided_by: str | None = None

    def overdue(self, today: dt.date) -> bool:
        return self.decided_at is None and today > self.due_on


def deadline_for(conn: Connection, subject_behaviour: str, filed_on: dt.date) -> dt.date:
    """The decision deadline: the shortest objection_deadline among the schemes the record feeds."""
    days = [
        v.scheme.objection_deadline for v in scheme_versions(conn) if subject_behaviour in v.scheme.behaviour_by_code
    ]
    return add_working_days(filed_on, min(days) if days else DEFAULT_DEADLINE)


def file(
    conn: Connection,
    ref: str | int,
    *,
    reason: str,
    now: dt.datetime,
    actor: str,
    filed_as: str = "subject",
) -> ObjectionStatus:
    """Object to a record. `actor` is who filed; `filed_as="officer"` when an officer files on the
    subject's behalf (at the counter, by letter), kept in the event's outcome column."""
    if filed_as not in FILED_AS:
        raise BadInput(f"filed_as: {filed_as!r} is not one of {', '.join(FILED_AS)}")
    found = ledger.history(conn, ref)
    view = found.view()
    if view.void:
        raise Refused(f"record {found.record.id} is revoked; there is nothing to object to")
    if view.disputed:
        open_ids = ", ".join(str(o.id) for o in view.objections if o.decided_at is None)
        raise Refused(f"record {found.record.id} already has an undecided objection ({open_ids})")
    if not reason or not reason.strip():
        raise BadInput("--reason: say why the record is wrong")
    due_on = deadline_for(conn, view.behaviour, local_day(now))
    objection_id = ledger.append_event(
        conn,
        found.record,
        DISPUTED,
        now,
        actor,
        after=AFTER_APPEND,
        reason=reason.strip(),
        due_on=due_on,
        outcome=filed_as,
    )
    return get(conn, objection_id)


def decide(
    conn: Connection,
    objection_id: int,
    *,
    outcome: str,
    reason: str,
    now: dt.datetime,
    actor: str,
    behaviour: str | None = None,
    occurred_on: dt.date | None = None,
    amount: Decimal | None = None,
) -> ObjectionStatus:
    """Decide an objection; "corrected" carries the replacement values, "revoked" voids the record."""
    if outcome not in OUTCOMES:
        raise BadInput(f"--outcome: {outcome!r} is not one of {', '.join(OUTCOMES)}")
    status = get(conn, objection_id)
    if status.decided_at is not None:
        raise Refused(f"objection {objection_id} was already decided ({status.outcome})")
    if not reason or not reason.strip():
        raise BadInput("--reason: a decision needs written reasons")
    found = ledger.history(conn, status.record_id)
    if outcome == "corrected":
        if behaviour is None and occurred_on is None and amount is None:
            raise BadInput("a corrected outcome needs --behaviour, --occurred-on or --amount")
        amount = ledger.check_correction(conn, found.record, behaviour, occurred_on, now, amount)
    elif behaviour is not None or occurred_on is not None or amount is not None:
        raise BadInput(f"--behaviour, --occurred-on and --amount belong to a corrected outcome, not {outcome}")
    ledger.append_event(
        conn,
        found.record,
        DECIDED,
        now,
        actor,
        after=AFTER_APPEND,
        outcome=outcome,
        reason=reason.strip(),
        refers_to=objection_id,
        behaviour=behaviour,
        occurred_on=occurred_on,
        amount=amount,
    )
    return get(conn, objection_id)


def _status(row: Row[Any], decision: Row[Any] | None, subject_id: str) -> ObjectionStatus:
    return ObjectionStatus(
        id=row.id,
        record_id=row.record_id,
        subject_id=subject_id,
        filed_at=from_storage(row.recorded_at),
        filed_by=row.actor,
        reason=row.reason,
        due_on=row.due_on,
        decided_at=from_storage(decision.recorded_at) if decision is not None else None,
        outcome=decision.outcome if decision is not None else None,
        decision_reason=decision.reason if decision is not None else None,
        filed_as=row.outcome or "subject",
        decided_by=decision.actor if decision is not None else None,
    )


def listing(
    conn: Connection,
    *,
    subject_id: str | None = None,
    record_id: int | None = None,
    objection_id: int | None = None,
    undecided_only: bool = False,
) -> list[ObjectionStatus]:
    """Objections with their decisions, newest first, filtered as asked."""
    events = t.record_events
    query = (
        select(events, t.records.c.subject_id)
        .join(t.records, t.records.c.id == events.c.record_id)
        .where(events.c.kind == DISPUTED)
        .order_by(events.c.id.desc())
    )
    if subject_id is not None:
        query = query.where(t.records.c.subject_id == subject_id)
    if record_id is not None:
        query = query.where(events.c.record_id == record_id)
    if objection_id is not None:
        query = query.where(events.c.id == objection_id)
    rows = list(conn.execute(query))
    decisions = (
        {
            row.refers_to: row
            for row in conn.execute(
                select(events).where(events.c.kind == DECIDED, events.c.refers_to.in_([r.id for r in rows]))
            )
        }
        if rows
        else {}
    )
    found = [_status(row, decisions.get(row.id), row.subject_id) for row in rows]
    return [o for o in found if o.decided_at is None] if undecided_only else found


def get(conn: Connection, objection_id: int) -> ObjectionStatus:
    found = listing(conn, objection_id=objection_id)
    if not found:
        raise NotFound(f"objection {objection_id} does not exist")
    return found[0]


def overdue(conn: Connection, today: dt.date) -> list[ObjectionStatus]:
    """Undecided objections past their deadline: escalated, shown to the office and the subject."""
    return [o for o in listing(conn, undecided_only=True) if o.overdue(today)]
