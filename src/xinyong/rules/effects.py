"""Effects: what one record does under one scheme, over valid time and knowledge time.

This module holds DESIGN.md's record semantics — notice, objection hold, validity, ended, void,
corrections, declined positive records — in one pure function, `active_window`. Everything that
needs to know whether a record counts (the stored effects table, rebuilds, batch engines' inputs)
goes through it, so there is one definition to read and to test.

A record's history is a handful of events. Between two consecutive event times its derived window
cannot change, so the whole bitemporal history of a record is a short list of rows
(valid_from, valid_until) × [known_from, known_until): the effects table. "The score on day D as
known at K" is then a filtered sum, on any engine.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from decimal import Decimal

from xinyong.rules.clock import local_day
from xinyong.rules.schemes import Scheme

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


@dataclass(frozen=True)
class Window:
    """A record's active window under a scheme: active on D when start ≤ D < until."""

    behaviour: str
    points: int
    start: dt.date
    until: dt.date

    def active_on(self, day: dt.date) -> bool:
        return self.start <= day < self.until


def active_window(view: RecordView, scheme: Scheme) -> Window | None:
    """DESIGN.md's record semantics: the window in which the viewed record counts, or None.

    None means the record has no effect at this knowledge time: void (revoked), unknown to the
    scheme, a declined positive record, held by an undecided objection filed inside the notice
    period, or a window that is empty (ended before it began).
    """
    if view.void:
        return None
    behaviour = scheme.behaviour_by_code.get(view.behaviour)
    if behaviour is None:
        return None
    if view.declined and behaviour.polarity == "positive":
        return None
    recorded_on = local_day(view.record.recorded_at, scheme.timezone)
    start = max(view.occurred_on, behaviour.notice_in(scheme).after(recorded_on))
    base_start = start
    for objection in view.objections:
        if local_day(objection.filed_at, scheme.timezone) >= base_start:
            continue  # filed after the record took effect: no hold, the record keeps counting
        if objection.decided_at is None:
            return None
        start = max(start, local_day(objection.decided_at, scheme.timezone))
    until = behaviour.validity.after(view.occurred_on)
    if view.ended_on is not None:
        until = min(until, view.ended_on)
    if start >= until:
        return None
    return Window(behaviour.code, behaviour.points, start, until)


@dataclass(frozen=True)
class Effect:
    """One row of the effects table."""

    scheme: str
    version: str
    record_id: int
    subject_id: str
    behaviour: str
    points: int
    occurred_on: dt.date
    valid_from: dt.date
    valid_until: dt.date
    known_from: dt.datetime
    known_until: dt.datetime | None

    def known_at(self, instant: dt.datetime) -> bool:
        return self.known_from <= instant and (self.known_until is None or instant < self.known_until)

    def active_on(self, day: dt.date) -> bool:
        return self.valid_from <= day < self.valid_until


def derive_effects(record: Record, events: Sequence[RecordEvent], scheme: Scheme) -> list[Effect]:
    """The record's whole bitemporal history under one scheme version, as effects rows.

    The derived window can only change at an event's time, so we evaluate once per distinct event
    time and merge neighbours that derive the same window.
    """
    times = sorted(
        {
            record.recorded_at,
            *(e.recorded_at for e in events if e.recorded_at >= record.recorded_at),
        }
    )
    rows: list[Effect] = []
    previous: tuple[Window, dt.date] | None = None
    for index, instant in enumerate(times):
        view = view_as_known(record, events, instant)
        window = active_window(view, scheme)
        current = (window, view.occurred_on) if window is not None else None
        known_until = times[index + 1] if index + 1 < len(times) else None
        if current is not None and current == previous and rows:
            rows[-1] = replace(rows[-1], known_until=known_until)
        elif current is not None:
            rows.append(
                Effect(
                    scheme=scheme.scheme,
                    version=scheme.version,
                    record_id=record.id,
                    subject_id=record.subject_id,
                    behaviour=current[0].behaviour,
                    points=current[0].points,
                    occurred_on=current[1],
                    valid_from=current[0].start,
                    valid_until=current[0].until,
                    known_from=instant,
                    known_until=known_until,
                )
            )
        previous = current
    return rows
