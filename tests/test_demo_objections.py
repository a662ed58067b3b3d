"""The demo city's objections (`demo.objections`): most decided on time, a handful open, one or two
overdue, whatever the seed and the day the demo runs."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

from hypothesis import given, settings
from hypothesis import strategies as st

from xinyong.demo import objections
from xinyong.demo.synth import RecordRow
from xinyong.rules.workdays import add_working_days

ZONE = ZoneInfo("Asia/Shanghai")


def row(n: int, occurred: dt.date) -> RecordRow:
    return RecordRow("court", f"1101051990010100{n:02d}", "COURT.DEFAULT", occurred, f"R-{n}", None, None)


@settings(max_examples=40, deadline=None)
@given(
    now=st.datetimes(dt.datetime(2025, 1, 1), dt.datetime(2027, 12, 1)).map(lambda d: d.replace(tzinfo=dt.UTC)),
    seed=st.integers(0, 10_000),
    count=st.integers(3, 60),
)
def test_most_are_decided_on_time_a_handful_open_one_or_two_overdue(now: dt.datetime, seed: int, count: int) -> None:
    today = now.astimezone(ZONE).date()
    # Filed over the last three years, one every ~18 days, the newest at least a day ago.
    filed = [
        (now - dt.timedelta(days=1 + 18 * n), row(n, today - dt.timedelta(days=30 + 18 * n))) for n in range(count)
    ]
    fresh = [row(100 + n, today - dt.timedelta(days=60 + n)) for n in range(10)]
    events = objections.events(filed, fresh, now, seed)
    assert all(at < now for at, _, _ in events)
    objected = {(p.source, p.document_ref): at for at, kind, p in events if kind == "object"}
    decided = {(p[0].source, p[0].document_ref): at for at, kind, p in events if kind == "decide"}
    assert len(objected) == count + objections.FRESH
    assert decided.keys() <= objected.keys()
    undecided = objected.keys() - decided.keys()
    due = {ref: add_working_days(at.astimezone(ZONE).date(), objections.DEADLINE) for ref, at in objected.items()}
    overdue = {ref for ref in undecided if due[ref] < today}
    assert 1 <= len(overdue) <= objections.OVERDUE
    assert len(undecided - overdue) >= objections.FRESH  # open, not yet due
    on_time = [ref for ref, at in decided.items() if at.astimezone(ZONE).date() <= due[ref]]
    assert len(on_time) >= 0.8 * len(decided)
    for ref, at in decided.items():
        assert at > objected[ref]


def test_the_same_seed_gives_the_same_events() -> None:
    now = dt.datetime(2026, 12, 8, 2, tzinfo=dt.UTC)
    filed = [(now - dt.timedelta(days=10 * n + 1), row(n, dt.date(2026, 1, 1))) for n in range(20)]
    fresh = [row(100 + n, dt.date(2026, 9, 1)) for n in range(10)]
    assert objections.events(filed, fresh, now, 3) == objections.events(filed, fresh, now, 3)
