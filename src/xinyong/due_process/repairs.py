"""Repair (信用修复): a subject applies to end a negative record's effect early, with evidence.

An application is possible once the behaviour's `repair_after` has passed since the record
occurred (default by severity: minor P0D, general P3M, serious P1Y); earlier ones are refused
with the day they become possible. An officer approves or refuses with written reasons; approval
also appends an "ended" event (reason: repaired) effective on the decision day, so from then on the
record counts nowhere. Applications and decisions are record events (repair_applied,
repair_decided), like objections: decisions are recorded, never overwritten.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any, Literal

from sqlalchemy import Connection, select

from xinyong.due_process.after_append import AFTER_APPEND
from xinyong.errors import BadInput, NotFound, Problem, Refused
from xinyong.ledger import records as ledger
from xinyong.ledger.registry import scheme_versions
from xinyong.rules.clock import from_storage, local_day
from xinyong.rules.records import ENDED, REPAIR_APPLIED, REPAIR_DECIDED, RecordView
from xinyong.rules.workdays import add_working_days
from xinyong.storage import tables as t

OUTCOMES = ("approved", "refused")
DEFAULT_DEADLINE = 5
FiledAs = Literal["subject", "officer"]


class RepairTooEarly(Refused):
    """An application before `repair_after` has passed; `possible_from` is the first day it may be made."""

    def __init__(self, record_id: int, possible_from: dt.date) -> None:
        super().__init__(
            f"record {record_id}: repair is possible from {possible_from.isoformat()}",
            [Problem("repair_after", f"an application may be made from {possible_from.isoformat()}")],
        )
        self.possible_from = possible_from


@dataclass(frozen=True)
class RepairStatus:
    id: int
    record_id: int
    subject_id: str
    applied_at: dt.datetime
    applied_by: str
    filed_as: str
    evidence: str
    due_on: dt.date | None
    decided_at: dt.datetime | None
    decided_by: str | None
    outcome: str | None
    decision_reason: str | None
    ended_on: dt.date | None

    def overdue(self, today: dt.date) -> bool:
        return self.decided_at is None and self.due_on is not None and today > self.due_on

    def as_dict(self, today: dt.date) -> dict[str, Any]:
        return {
            "id": self.id,
            "record": self.record_id,
            "subject": self.subject_id,
            "applied_at": self.applied_at.isoformat(),
            "applied_by": self.applied_by,
            "filed_as": self.filed_as,
            "evidence": self.evidence,
            "deadline": self.due_on.isoformat() if self.due_on else None,
            "decided_at": self.decided_at.isoformat() if self.decided_at else None,
            "decided_by": self.decided_by,
            "outcome": self.outcome,
            "decision_reason": self.decision_reason,
            "ended_on": self.ended_on.isoformat() if self.ended_on else None,
            "overdue": self.overdue(today),
        }


def possible_from(conn: Connection, view: RecordView) -> dt.date | None:
    """The first day a repair may be applied for: occurred_on + repair_after, under the strictest of
    the schemes that count the behaviour as negative (the ended event ends it under all of them).
    None when no scheme counts the record as negative: there is nothing to repair."""
    days = [
        v.scheme.behaviour_by_code[view.behaviour].effective_repair_after.after(view.occurred_on)
        for v in scheme_versions(conn)
        if view.behaviour in v.scheme.behaviour_by_code and v.scheme.behaviour_by_code[view.behaviour].negative
    ]
    return max(days) if days else None


def _deadline(conn: Connection, behaviour: str, filed_on: dt.date) -> dt.date:
    days = [v.scheme.objection_deadline for v in scheme_versions(conn) if behaviour in v.scheme.behaviour_by_code]
    return add_working_days(filed_on, min(days) if days else DEFAULT_DEADLINE)


def apply(
    conn: Connection,
    ref: str | int,
    *,
    evidence: str,
    now: dt.datetime,
    actor: str,
    filed_as: FiledAs = "subject",
) -> RepairStatus:
    """Apply to end a record's effect early; refused before repair_after with the day it is possible."""
    if filed_as not in ("subject", "officer"):
        raise BadInput(f"filed_as: {filed_as!r} is not subject or officer")
    if not evidence or not evidence.strip():
        raise BadInput("--evidence: say what was done (obligation performed, a commitment, …)")
    found = ledger.history(conn, ref)
    view = found.view()
    record_id = found.record.id
    if view.void:
        raise Refused(f"record {record_id} is revoked; there is nothing to repair")
    if view.ended_on is not None:
        raise Refused(f"record {record_id} already ended on {view.ended_on.isoformat()}")
    first = possible_from(conn, view)
    if first is None:
        raise Refused(f"record {record_id} ({view.behaviour}) is not negative under any scheme; nothing to repair")
    today = local_day(now)
    if today < first:
        raise RepairTooEarly(record_id, first)
    undecided = [r for r in listing(conn, record_id=record_id) if r.decided_at is None]
    if undecided:
        raise Refused(f"record {record_id} already has an undecided repair application ({undecided[0].id})")
    event_id = ledger.append_event(
        conn,
        found.record,
        REPAIR_APPLIED,
        now,
        actor,
        after=AFTER_APPEND,
        evidence=evidence.strip(),
        due_on=_deadline(conn, view.behaviour, today),
        outcome=filed_as,
    )
    return get(conn, event_id)


def decide(
    conn: Connection,
    repair_id: int,
    *,
    outcome: str,
    reason: str,
    now: dt.datetime,
    actor: str,
) -> RepairStatus:
    """Approve (the record's effect ends today) or refuse, with written reasons; the subject is told."""
    if outcome not in OUTCOMES:
        raise BadInput(f"--outcome: {outcome!r} is not one of {', '.join(OUTCOMES)}")
    if not reason or not reason.strip():
        raise BadInput("--reason: a decision needs written reasons")
    status = get(conn, repair_id)
    if status.decided_at is not None:
        raise Refused(f"repair {repair_id} was already decided ({status.outcome})")
    found = ledger.history(conn, status.record_id)
    view = found.view()
    if outcome == "approved" and (view.void or view.ended_on is not None):
        raise Refused(f"record {status.record_id} is {'revoked' if view.void else 'ended'}; nothing to end")
    if outcome == "approved":
        # The ended event first, without a notice of its own: the decision's notice says it all.
        ledger.append_event(
            conn,
            found.record,
            ENDED,
            now,
            actor,
            after=AFTER_APPEND,
            notify=False,
            effective_on=max(local_day(now), view.occurred_on),
            outcome="repaired",
            reason=reason.strip(),
            refers_to=repair_id,
        )
    ledger.append_event(
        conn,
        found.record,
        REPAIR_DECIDED,
        now,
        actor,
        after=AFTER_APPEND,
        outcome=outcome,
        reason=reason.strip(),
        refers_to=repair_id,
    )
    return get(conn, repair_id)


def listing(
    conn: Connection,
    *,
    subject_id: str | None = None,
    record_id: int | None = None,
    repair_id: int | None = None,
    undecided_only: bool = False,
) -> list[RepairStatus]:
    """Repair applications with their decisions, newest first."""
    events = t.record_events
    query = (
        select(events, t.records.c.subject_id)
        .join(t.records, t.records.c.id == events.c.record_id)
        .where(events.c.kind == REPAIR_APPLIED)
        .order_by(events.c.id.desc())
    )
    if subject_id is not None:
        query = query.where(t.records.c.subject_id == subject_id)
    if record_id is not None:
        query = query.where(events.c.record_id == record_id)
    if repair_id is not None:
        query = query.where(events.c.id == repair_id)
    rows = list(conn.execute(query))
    decided: dict[int, Any] = {}
    ended: dict[int, Any] = {}
    if rows:
        query = select(events).where(
            events.c.kind.in_([REPAIR_DECIDED, ENDED]), events.c.refers_to.in_([r.id for r in rows])
        )
        for row in conn.execute(query):
            (decided if row.kind == REPAIR_DECIDED else ended)[row.refers_to] = row
    found = []
    for row in rows:
        decision, end = decided.get(row.id), ended.get(row.id)
        found.append(
            RepairStatus(
                id=int(row.id),
                record_id=int(row.record_id),
                subject_id=row.subject_id,
                applied_at=from_storage(row.recorded_at),
                applied_by=row.actor,
                filed_as=row.outcome or "subject",
                evidence=row.evidence or "",
                due_on=row.due_on,
                decided_at=from_storage(decision.recorded_at) if decision is not None else None,
                decided_by=decision.actor if decision is not None else None,
                outcome=decision.outcome if decision is not None else None,
                decision_reason=decision.reason if decision is not None else None,
                ended_on=end.effective_on if end is not None else None,
            )
        )
    return [r for r in found if r.decided_at is None] if undecided_only else found


def get(conn: Connection, repair_id: int) -> RepairStatus:
    found = listing(conn, repair_id=repair_id)
    if not found:
        raise NotFound(f"repair application {repair_id} does not exist")
    return found[0]


def overdue(conn: Connection, today: dt.date) -> list[RepairStatus]:
    return [r for r in listing(conn, undecided_only=True) if r.overdue(today)]
