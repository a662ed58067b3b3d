"""The ledger's vocabulary: a record, the events that happen to it, and the record as known at a time.

A record is one fact about a subject from a source; an event (corrected, revoked, ended, disputed,
decided, declined, repair applied or decided) is one thing that happened to it afterwards. Events
are appended, never changed, so what the record "is" at a knowledge time K is a fold of the events
recorded up to K (`view_as_known`): the latest correction supplies the behaviour, date and amount.
These are pure values; the ledger stores them (`xinyong.ledger.records`) and the semantics read them
(`xinyong.rules.effects`).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from decimal import Decimal

# Record event kinds. "recorded" is the records row itself; the rest are rows of record_events.
CORRECTED = "corrected"
REVOKED = "revoked"
ENDED = "ended"
DISPUTED = "disputed"
DECIDED = "decided"
DECLINED = "declined"
REPAIR_APPLIED = "repair_applied"
REPAIR_DECIDED = "repair_decided"


@dataclass(frozen=True)
class Record:
    """A record as first recorded by its source."""

    id: int
    source_id: str
    document_ref: str
    subject_id: str
    behaviour: str
    occurred_on: dt.date
    recorded_at: dt.datetime
    recorded_by: str = ""
    amount: Decimal | None = None
    note: str | None = None


@dataclass(frozen=True)
class RecordEvent:
    """One thing that happened to a record after it was recorded; events are never changed."""

    id: int
    record_id: int
    kind: str
    recorded_at: dt.datetime
    actor: str = ""
    reason: str | None = None
    behaviour: str | None = None
    occurred_on: dt.date | None = None
    amount: Decimal | None = None
    effective_on: dt.date | None = None
    due_on: dt.date | None = None
    outcome: str | None = None
    refers_to: int | None = None
    evidence: str | None = None


@dataclass(frozen=True)
class Objection:
    id: int
    filed_at: dt.datetime
    due_on: dt.date | None
    decided_at: dt.datetime | None = None
    outcome: str | None = None


@dataclass(frozen=True)
class RecordView:
    """The record as known at one knowledge time: corrections applied, objections and ends known."""

    record: Record
    behaviour: str
    occurred_on: dt.date
    amount: Decimal | None
    void: bool = False
    declined: bool = False
    ended_on: dt.date | None = None
    objections: tuple[Objection, ...] = field(default_factory=tuple)

    @property
    def disputed(self) -> bool:
        """An objection is open: the record shows as disputed wherever it shows."""
        return any(o.decided_at is None for o in self.objections)


def view_as_known(record: Record, events: Iterable[RecordEvent], known_at: dt.datetime | None) -> RecordView:
    """Fold the events recorded at or before `known_at` (all of them when None) into a view."""
    ordered = sorted(
        (e for e in events if known_at is None or e.recorded_at <= known_at),
        key=lambda e: (e.recorded_at, e.id),
    )
    behaviour, occurred_on, amount = record.behaviour, record.occurred_on, record.amount
    void = declined = False
    ended: list[dt.date] = []
    objections: dict[int, Objection] = {}
    for event in ordered:
        if event.kind == REVOKED:
            void = True
        elif event.kind == DECLINED:
            declined = True
        elif event.kind == ENDED and event.effective_on is not None:
            ended.append(event.effective_on)
        elif event.kind == DISPUTED:
            objections[event.id] = Objection(event.id, event.recorded_at, event.due_on)
        elif event.kind == DECIDED and event.refers_to in objections:
            objections[event.refers_to] = replace(
                objections[event.refers_to], decided_at=event.recorded_at, outcome=event.outcome
            )
            if event.outcome == "revoked":
                void = True
        if event.kind == CORRECTED or (event.kind == DECIDED and event.outcome == "corrected"):
            behaviour = event.behaviour or behaviour
            occurred_on = event.occurred_on or occurred_on
            amount = event.amount if event.amount is not None else amount
    return RecordView(
        record=record,
        behaviour=behaviour,
        occurred_on=occurred_on,
        amount=amount,
        void=void,
        declined=declined,
        ended_on=min(ended) if ended else None,
        objections=tuple(objections.values()),
    )
