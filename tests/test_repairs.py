"""Repair: applications once repair_after has passed, officers' decisions with reasons, and the
"ended" event an approval writes (reason: repaired).

In demo-city, COURT.DEFAULT is serious with repair_after P0D (repair at once), TRAFFIC.MINOR is
minor (default P0D); the GENERAL and SERIOUS behaviours added below use their severity's default
(P3M and P1Y).
"""

from __future__ import annotations

import datetime as dt

import pytest

from helpers import DEMO_CITY, World, at, d, person_id
from xinyong.due_process import repairs
from xinyong.errors import BadInput, NotFound, Refused
from xinyong.ledger import records as ledger
from xinyong.rules.records import ENDED
from xinyong.rules.workdays import add_working_days

WITH_SEVERITIES = DEMO_CITY.replace(
    "  - {code: CHARITY.BLOOD,",
    "  - {code: MARKET.FAKE, title: Counterfeit goods, points: -30, validity: P3Y, severity: general,\n"
    "     data_class: public, legal_basis: 'Product Quality Law art. 50'}\n"
    "  - {code: MARKET.FRAUD, title: Contract fraud, points: -80, validity: P3Y, severity: serious,\n"
    "     data_class: public, legal_basis: 'Criminal Law art. 224'}\n"
    "  - {code: CHARITY.BLOOD,",
)


@pytest.fixture
def person(world: World) -> str:
    world.load(WITH_SEVERITIES)
    world.source("court", ["COURT.DEFAULT"])
    world.source("market", ["MARKET.FAKE", "MARKET.FRAUD"])
    world.source("civil-affairs", ["CHARITY.BLOOD"])
    subject = person_id(1)
    world.subjects([(subject, "person", "张三")])
    world.consent(subject, True, "2020-01-02")
    return str(subject)


def apply(world: World, record: int, day: str, actor: str = "subject") -> repairs.RepairStatus:
    with world.store.write() as conn:
        return repairs.apply(conn, record, evidence="judgment paid in full", now=at(day), actor=actor)


def decide(world: World, repair: int, outcome: str, day: str) -> repairs.RepairStatus:
    with world.store.write() as conn:
        return repairs.decide(conn, repair, outcome=outcome, reason="receipt verified", now=at(day), actor="office")


def test_an_approved_repair_ends_the_effect_on_the_decision_day(world: World, person: str) -> None:
    record = world.record(person, "COURT.DEFAULT", "2026-03-01", at("2026-03-02"), source="court")
    assert world.score(person, "2026-04-01") == 900
    applied = apply(world, record, "2026-04-01")
    assert applied.due_on == add_working_days(d("2026-04-01"), 5)
    assert applied.outcome is None
    assert world.score(person, "2026-04-02") == 900  # applying changes nothing
    decided = decide(world, applied.id, "approved", "2026-04-03")
    assert (decided.outcome, decided.decided_by, decided.decision_reason) == ("approved", "office", "receipt verified")
    assert decided.ended_on == d("2026-04-03")
    assert world.score(person, "2026-04-02") == 900
    assert world.score(person, "2026-04-03") == 1000
    # As known before the decision, the record still counted (bitemporal).
    assert world.score(person, "2026-04-05", known_at=at("2026-04-02")) == 900
    with world.store.read() as conn:
        found = ledger.history(conn, record)
    ended = [e for e in found.events if e.kind == ENDED]
    assert [(e.outcome, e.effective_on, e.refers_to) for e in ended] == [("repaired", d("2026-04-03"), applied.id)]
    assert world.effects() == world.rebuilt_effects()


def test_a_refused_repair_keeps_the_effect(world: World, person: str) -> None:
    record = world.record(person, "COURT.DEFAULT", "2026-03-01", at("2026-03-02"), source="court")
    applied = apply(world, record, "2026-04-01")
    refused = decide(world, applied.id, "refused", "2026-04-02")
    assert refused.outcome == "refused"
    assert refused.ended_on is None
    assert world.score(person, "2027-01-01") == 900
    # A new application may follow a refusal.
    assert apply(world, record, "2026-05-01").id != applied.id


@pytest.mark.parametrize(
    ("code", "first_day"),
    [("MARKET.FAKE", "2026-06-01"), ("MARKET.FRAUD", "2027-03-01")],  # general P3M, serious P1Y
)
def test_an_early_application_is_refused_with_the_day_it_becomes_possible(
    world: World, person: str, code: str, first_day: str
) -> None:
    record = world.record(person, code, "2026-03-01", at("2026-03-02"), source="market")
    with pytest.raises(repairs.RepairTooEarly) as refused:
        apply(world, record, (d(first_day) - dt.timedelta(days=1)).isoformat())
    assert refused.value.possible_from == d(first_day)
    assert first_day in str(refused.value)
    assert refused.value.exit_code == 2
    assert apply(world, record, first_day).outcome is None


def test_what_cannot_be_repaired_or_decided(world: World, person: str) -> None:
    record = world.record(person, "COURT.DEFAULT", "2026-03-01", at("2026-03-02"), source="court")
    positive = world.record(person, "CHARITY.BLOOD", "2026-03-01", at("2026-03-02"), source="civil-affairs")
    with world.store.write() as conn:
        with pytest.raises(BadInput, match="evidence"):
            repairs.apply(conn, record, evidence=" ", now=at("2026-04-01"), actor="s")
        with pytest.raises(Refused, match="not negative"):
            repairs.apply(conn, positive, evidence="x", now=at("2026-04-01"), actor="s")
    applied = apply(world, record, "2026-04-01")
    with world.store.write() as conn:
        with pytest.raises(Refused, match="undecided repair"):
            repairs.apply(conn, record, evidence="again", now=at("2026-04-02"), actor="s")
        with pytest.raises(BadInput, match="outcome"):
            repairs.decide(conn, applied.id, outcome="maybe", reason="r", now=at("2026-04-02"), actor="o")
        with pytest.raises(BadInput, match="reason"):
            repairs.decide(conn, applied.id, outcome="approved", reason="", now=at("2026-04-02"), actor="o")
        with pytest.raises(NotFound):
            repairs.decide(conn, 999_999, outcome="approved", reason="r", now=at("2026-04-02"), actor="o")
    decide(world, applied.id, "approved", "2026-04-02")
    with world.store.write() as conn:
        with pytest.raises(Refused, match="already decided"):
            repairs.decide(conn, applied.id, outcome="refused", reason="r", now=at("2026-04-03"), actor="o")
        with pytest.raises(Refused, match="already ended"):
            repairs.apply(conn, record, evidence="x", now=at("2026-04-03"), actor="s")
    other = world.record(person, "COURT.DEFAULT", "2026-03-02", at("2026-03-03"), source="court")
    world.revoke(other, at("2026-04-04"))
    with world.store.write() as conn, pytest.raises(Refused, match="revoked"):
        repairs.apply(conn, other, evidence="x", now=at("2026-04-05"), actor="s")


def test_an_officer_may_apply_on_the_subjects_behalf_and_the_office_sees_overdue_ones(
    world: World, person: str
) -> None:
    record = world.record(person, "COURT.DEFAULT", "2026-03-01", at("2026-03-02"), source="court")
    with world.store.write() as conn:
        applied = repairs.apply(
            conn, record, evidence="commitment letter", now=at("2026-04-01"), actor="office:li", filed_as="officer"
        )
    assert (applied.applied_by, applied.filed_as) == ("office:li", "officer")
    with world.store.read() as conn:
        assert [r.id for r in repairs.listing(conn, subject_id=person)] == [applied.id]
        due = add_working_days(d("2026-04-01"), 5)
        assert repairs.overdue(conn, due) == []
        [late] = repairs.overdue(conn, due + dt.timedelta(days=1))
    assert late.as_dict(due + dt.timedelta(days=1))["overdue"] is True
