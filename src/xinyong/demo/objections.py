"""The demo city's objections as an office that keeps its deadlines would leave them: most decided
within the deadline (a few late), the newest still open because they are not yet due, and one or
two overdue, so the staff console's overdue flag has something to show without drowning the queue.

An earlier demo decided each objection with a chance of 85% whatever its age, so one in seven sat
undecided for up to three years (720 working days overdue) and the queue was mostly red."""

from __future__ import annotations

import datetime as dt
import random
from collections.abc import Sequence
from typing import Any
from zoneinfo import ZoneInfo

from xinyong.demo.synth import RecordRow
from xinyong.rules.clock import DEFAULT_TIMEZONE
from xinyong.rules.workdays import add_working_days

ZONE = ZoneInfo(DEFAULT_TIMEZONE)
# The shortest objection deadline of the shipped schemes (city-points, tax-credit), in working days.
DEADLINE = 5
# Objections left undecided past their deadline: the newest that fell due.
OVERDUE = 2
# Objections filed in the last few days, not yet due: residents who objected this week.
FRESH = 4
# The share of decisions made after the deadline (a busy week), rounded down; the others within it.
LATE_SHARE = 0.05
OUTCOMES, WEIGHTS = ("upheld", "revoked", "corrected"), (6, 3, 1)

Event = tuple[dt.datetime, str, Any]


def _local(moment: dt.datetime) -> dt.date:
    return moment.astimezone(ZONE).date()


def _at(day: dt.date, hour: int) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(hour), ZONE).astimezone(dt.UTC)


def events(
    filed: Sequence[tuple[dt.datetime, RecordRow]], fresh_candidates: Sequence[RecordRow], now: dt.datetime, seed: int
) -> list[Event]:
    """("object", row) and ("decide", (row, outcome)) events for the objections `filed` (each at
    its moment, all before `now`) and for up to `FRESH` more filed in the last days against rows
    of `fresh_candidates` (records imported well before then, none objected to yet)."""
    rng = random.Random(seed)
    today = _local(now)
    due = [(at, row) for at, row in filed if add_working_days(_local(at), DEADLINE) < today]
    not_yet_due = [(at, row) for at, row in filed if add_working_days(_local(at), DEADLINE) >= today]
    left_overdue = {id(row) for _, row in sorted(due, key=lambda pair: pair[0])[-OVERDUE:]}
    decided = [(at, row) for at, row in due if id(row) not in left_overdue]
    late_ones = {id(row) for _, row in rng.sample(decided, int(len(decided) * LATE_SHARE))}
    out: list[Event] = []
    for at, row in due:
        out.append((at, "object", row))
        if id(row) in left_overdue:
            continue
        late = id(row) in late_ones
        day = add_working_days(_local(at), DEADLINE + rng.randint(1, 3) if late else rng.randint(1, DEADLINE - 1))
        if day >= today:  # a late decision that would fall today or later is made on time instead
            day = add_working_days(_local(at), DEADLINE - 1)
        out.append((max(_at(day, rng.randint(9, 16)), at + dt.timedelta(hours=1)), "decide", (row, _outcome(rng))))
    out += [(at, "object", row) for at, row in not_yet_due]
    taken = {(row.source, row.document_ref) for _, row in filed}
    candidates = [row for row in fresh_candidates if (row.source, row.document_ref) not in taken]
    for back, row in enumerate(rng.sample(candidates, min(FRESH, len(candidates)))):
        at = min(_at(today - dt.timedelta(days=back // 2), 10), now - dt.timedelta(hours=back + 1))
        out.append((at, "object", row))
    return out


def _outcome(rng: random.Random) -> str:
    return rng.choices(OUTCOMES, WEIGHTS)[0]
