"""Objections: disputed at once, deadlines in official working days, decisions recorded, overdue."""

from __future__ import annotations

import datetime as dt

import chinese_calendar
import pytest

from helpers import World, at, d
from xinyong.due_process import objections
from xinyong.errors import BadInput, Refused
from xinyong.ledger import records as ledger
from xinyong.rules.workdays import add_working_days


def test_filing_marks_the_record_disputed_at_once(world: World) -> None:
    person, _ = world.standard()
    record = world.record(person, "COURT.DEFAULT", "2026-03-01", at("2026-03-02"))
    world.object(record, at("2026-03-04"))
    with world.store.read() as conn:
        assert ledger.history(conn, record).view().disputed
        assert not ledger.history(conn, record).view(at("2026-03-03")).disputed


def test_deadline_is_five_working_days_after_filing(world: World) -> None:
    person, _ = world.standard()
    record = world.record(person, "COURT.DEFAULT", "2026-09-20", at("2026-09-21"))
    objection = world.object(record, at("2026-09-30"))  # Wednesday before National Day
    with world.store.read() as conn:
        assert objections.get(conn, objection).due_on == d("2026-10-13")


def test_deadline_after_national_day_comes_from_the_official_calendar(world: World) -> None:
    person, _ = world.standard()
    national_day = dt.date(2026, 10, 1)
    last_working_day = national_day - dt.timedelta(days=1)
    while not chinese_calendar.is_workday(last_working_day):
        last_working_day -= dt.timedelta(days=1)
    record = world.record(person, "COURT.DEFAULT", "2026-09-01", at("2026-09-02"))
    objection = world.object(record, at(last_working_day.isoformat()))
    expected, counted = last_working_day, 0
    while counted < 5:
        expected += dt.timedelta(days=1)
        counted += chinese_calendar.is_workday(expected)
    with world.store.read() as conn:
        due = objections.get(conn, objection).due_on
    assert due == expected == add_working_days(last_working_day, 5)
    holidays = [day for day in chinese_calendar.get_holidays(national_day, due) if day.weekday() < 5]
    assert holidays, "the National Day holiday falls inside the window"
    assert due > max(holidays)


def test_overdue_objections_are_escalated(world: World) -> None:
    person, _ = world.standard()
    record = world.record(person, "COURT.DEFAULT", "2026-03-01", at("2026-03-02"))
    objection = world.object(record, at("2026-03-04"))
    with world.store.read() as conn:
        due = objections.get(conn, objection).due_on
        assert objections.overdue(conn, due) == []
        assert [o.id for o in objections.overdue(conn, due + dt.timedelta(days=1))] == [objection]
    world.decide(objection, "upheld", at("2026-03-30"))
    with world.store.read() as conn:
        assert objections.overdue(conn, due + dt.timedelta(days=1)) == []
        decided = objections.get(conn, objection)
    assert (decided.outcome, decided.decision_reason) == ("upheld", "checked")


def test_decisions_are_final_and_need_reasons(world: World) -> None:
    person, _ = world.standard()
    record = world.record(person, "COURT.DEFAULT", "2026-03-01", at("2026-03-02"))
    objection = world.object(record, at("2026-03-04"))
    with world.store.write() as conn, pytest.raises(BadInput, match="reasons"):
        objections.decide(conn, objection, outcome="upheld", reason=" ", now=at("2026-03-05"), actor="t")
    with world.store.write() as conn, pytest.raises(BadInput, match="not one of"):
        objections.decide(conn, objection, outcome="maybe", reason="x", now=at("2026-03-05"), actor="t")
    with world.store.write() as conn, pytest.raises(BadInput, match="corrected outcome"):
        objections.decide(
            conn, objection, outcome="upheld", reason="x", now=at("2026-03-05"), actor="t", occurred_on=d("2026-01-01")
        )
    world.decide(objection, "revoked", at("2026-03-06"))
    with world.store.write() as conn, pytest.raises(Refused, match="already decided"):
        objections.decide(conn, objection, outcome="upheld", reason="x", now=at("2026-03-07"), actor="t")
    with pytest.raises(Refused, match="revoked"):
        world.object(record, at("2026-03-08"))


def test_one_open_objection_per_record(world: World) -> None:
    person, _ = world.standard()
    record = world.record(person, "COURT.DEFAULT", "2026-03-01", at("2026-03-02"))
    world.object(record, at("2026-03-04"))
    with pytest.raises(Refused, match="already has an undecided objection"):
        world.object(record, at("2026-03-05"))


@pytest.mark.parametrize("ref", ["²", "١٢", "12³", "9" * 40])
def test_a_record_named_by_digits_that_are_not_ascii_or_too_many_is_refused_not_crashed(world: World, ref: str) -> None:
    """`str.isdigit` takes "²" and Arabic-Indic digits, which `int` or the store then refuse with
    a crash; an id is ASCII digits, and one longer than any store holds is simply not found."""
    from xinyong.errors import NotFound

    world.standard()
    with world.store.read() as conn, pytest.raises((BadInput, NotFound)) as refused:
        ledger.history(conn, ref)
    assert ref[:24] in str(refused.value)
