"""Due process: objecting to a record and deciding it; applying to repair one and deciding that."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from xinyong.due_process import objections, repairs
from xinyong.due_process.objections import ObjectionStatus
from xinyong.due_process.repairs import RepairStatus
from xinyong.ledger.records import history
from xinyong.rules.clock import local_day
from xinyong.security.access import Action, Principal, Role, decide, gate
from xinyong.service.door import Area


def _filed_as(principal: Principal, filed_as: str | None) -> str:
    """Who the application is from: the subject itself, or an officer on its behalf."""
    if filed_as is not None:
        return filed_as
    return "subject" if principal.role is Role.SUBJECT else "officer"


class Objections(Area):
    def file(self, principal: Principal, ref: str, *, reason: str, filed_as: str | None = None) -> ObjectionStatus:
        """File an objection; `filed_as` is "subject" or "officer" (an officer filing on the
        subject's behalf), by default what the caller's role is."""
        gate(principal, Action.OBJECTIONS_FILE)
        with self.door.writing(principal, Action.OBJECTIONS_FILE) as (conn, act):
            found = history(conn, ref)
            act.subject = found.record.subject_id
            act.detail.update(record=found.record.id)
            decide(principal, Action.OBJECTIONS_FILE, subject=found.record.subject_id)
            status = objections.file(
                conn,
                ref,
                reason=reason,
                now=self.clock.now(),
                actor=principal.name,
                filed_as=_filed_as(principal, filed_as),
            )
            act.detail.update(objection=status.id)
            return status

    def decide(
        self,
        principal: Principal,
        objection_id: int,
        *,
        outcome: str,
        reason: str,
        behaviour: str | None = None,
        occurred_on: dt.date | None = None,
        amount: Decimal | None = None,
    ) -> ObjectionStatus:
        """Decide with written reasons: upheld, corrected (with the replacement values) or revoked."""
        gate(principal, Action.OBJECTIONS_DECIDE)
        with self.door.writing(principal, Action.OBJECTIONS_DECIDE) as (conn, act):
            decide(principal, Action.OBJECTIONS_DECIDE)
            status = objections.get(conn, objection_id)
            act.subject = status.subject_id
            act.detail.update(objection=objection_id, outcome=outcome)
            return objections.decide(
                conn,
                objection_id,
                outcome=outcome,
                reason=reason,
                now=self.clock.now(),
                actor=principal.name,
                behaviour=behaviour,
                occurred_on=occurred_on,
                amount=amount,
            )

    def listing(
        self, principal: Principal, *, subject_id: str | None = None, undecided: bool = False
    ) -> list[ObjectionStatus]:
        """Objections, newest first: a subject's own, or any for the office."""
        if subject_id is None and principal.role is Role.SUBJECT:
            subject_id = principal.subject  # a subject's list is its own
        with self.door.reading(principal, Action.OBJECTIONS_READ) as (conn, act):
            act.subject = subject_id
            decide(principal, Action.OBJECTIONS_READ, subject=subject_id)
            return objections.listing(conn, subject_id=subject_id, undecided_only=undecided)

    def get(self, principal: Principal, objection_id: int) -> ObjectionStatus:
        gate(principal, Action.OBJECTIONS_READ)
        with self.door.reading(principal, Action.OBJECTIONS_READ) as (conn, act):
            status = objections.get(conn, objection_id)
            act.subject = status.subject_id
            decide(principal, Action.OBJECTIONS_READ, subject=status.subject_id)
            return status

    def overdue(self, principal: Principal) -> list[ObjectionStatus]:
        """Undecided objections past their deadline (escalated), for the office."""
        with self.door.reading(principal, Action.OBJECTIONS_READ, "overdue objections") as (conn, act):
            decide(principal, Action.OBJECTIONS_READ)
            found = objections.overdue(conn, local_day(self.clock.now()))
            act.detail.update(overdue=len(found))
            return found


class Repairs(Area):
    def apply(self, principal: Principal, ref: str, *, evidence: str, filed_as: str | None = None) -> RepairStatus:
        """Apply to end a record's effect early; a subject for itself, an officer on its behalf."""
        gate(principal, Action.OBJECTIONS_FILE)
        with self.door.writing(principal, Action.OBJECTIONS_FILE, "repair application") as (conn, act):
            found = history(conn, ref)
            act.subject = found.record.subject_id
            act.detail.update(record=found.record.id, op="repair")
            decide(principal, Action.OBJECTIONS_FILE, subject=found.record.subject_id)
            status = repairs.apply(
                conn,
                ref,
                evidence=evidence,
                now=self.clock.now(),
                actor=principal.name,
                filed_as="subject" if _filed_as(principal, filed_as) == "subject" else "officer",
            )
            act.detail.update(repair=status.id)
            return status

    def decide(self, principal: Principal, repair_id: int, *, outcome: str, reason: str) -> RepairStatus:
        """Approve (the record's effect ends today) or refuse, with written reasons."""
        gate(principal, Action.OBJECTIONS_DECIDE)
        with self.door.writing(principal, Action.OBJECTIONS_DECIDE, "repair decision") as (conn, act):
            decide(principal, Action.OBJECTIONS_DECIDE)
            status = repairs.get(conn, repair_id)
            act.subject = status.subject_id
            act.detail.update(repair=repair_id, outcome=outcome, op="repair")
            return repairs.decide(
                conn, repair_id, outcome=outcome, reason=reason, now=self.clock.now(), actor=principal.name
            )

    def listing(
        self, principal: Principal, *, subject_id: str | None = None, undecided: bool = False
    ) -> list[RepairStatus]:
        """Repair applications, newest first: a subject's own, or any for the office."""
        if subject_id is None and principal.role is Role.SUBJECT:
            subject_id = principal.subject
        with self.door.reading(principal, Action.OBJECTIONS_READ, "repairs") as (conn, act):
            act.subject = subject_id
            decide(principal, Action.OBJECTIONS_READ, subject=subject_id)
            return repairs.listing(conn, subject_id=subject_id, undecided_only=undecided)

    def overdue(self, principal: Principal) -> list[RepairStatus]:
        """Undecided repair applications past their deadline, for the office."""
        with self.door.reading(principal, Action.OBJECTIONS_READ, "overdue repairs") as (conn, act):
            decide(principal, Action.OBJECTIONS_READ)
            found = repairs.overdue(conn, local_day(self.clock.now()))
            act.detail.update(overdue=len(found))
            return found
