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
from collections.abc import Sequence
from dataclasses import dataclass, replace

from xinyong.rules.clock import local_day
from xinyong.rules.records import Record, RecordEvent, RecordView, view_as_known
from xinyong.rules.schemes import Scheme


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
