"""DESIGN.md's record semantics with hand-worked dates, on SQLite and PostgreSQL.

The person below has consented to demo-city since 2020-01-02. COURT.DEFAULT is -100 points, valid
P2Y, notice P10D; TRAFFIC.MINOR is -5, valid P1Y, notice from the scheme default P10D; CHARITY.BLOOD
is +5 with a cap of 20, valid P1Y, no notice (positive).
"""

from __future__ import annotations

from decimal import Decimal

import pytest

from helpers import World, at, d
from xinyong.derived.state import NoState
from xinyong.errors import Refused
from xinyong.rules.engine import State


@pytest.fixture
def person(world: World) -> str:
    return world.standard()[0]


def test_notice_period_counts_from_the_recorded_day(world: World, person: str) -> None:
    world.record(person, "COURT.DEFAULT", "2026-03-01", at("2026-03-02"))
    # start = max(occurred 03-01, recorded 03-02 + P10D = 03-12)
    assert world.score(person, "2026-03-11") == 1000
    assert world.score(person, "2026-03-12") == 900
    # until = occurred + P2Y = 2028-03-01, half-open
    assert world.score(person, "2028-02-29") == 900
    assert world.score(person, "2028-03-01") == 1000


def test_late_recorded_fact_counts_from_notice_until_its_validity_ends(world: World, person: str) -> None:
    # occurred 2025-06-01, recorded 2026-03-30: start = 03-30 + P10D = 04-09, until = 2026-06-01.
    world.record(person, "TRAFFIC.MINOR", "2025-06-01", at("2026-03-30"))
    assert world.score(person, "2026-04-08") == 1000
    assert world.score(person, "2026-04-09") == 995
    assert world.score(person, "2026-05-31") == 995
    assert world.score(person, "2026-06-01") == 1000


def test_fact_expired_before_its_notice_ended_never_counts(world: World, person: str) -> None:
    # occurred 2025-03-01, recorded 2026-03-30: the window [2026-04-09, 2026-03-01) is empty.
    world.record(person, "TRAFFIC.MINOR", "2025-03-01", at("2026-03-30"))
    for day in ("2025-03-01", "2026-03-01", "2026-04-09"):
        assert world.score(person, day) == 1000
    assert world.effects() == []


def test_positive_records_take_effect_without_notice(world: World, person: str) -> None:
    world.record(person, "CHARITY.BLOOD", "2026-03-01", at("2026-03-05"))
    assert world.score(person, "2026-03-04") == 1000
    assert world.score(person, "2026-03-05") == 1005
    assert world.score(person, "2027-03-01") == 1000


def test_objection_inside_notice_holds_until_decided_then_upheld(world: World, person: str) -> None:
    record = world.record(person, "COURT.DEFAULT", "2026-03-01", at("2026-03-02"))
    objection = world.object(record, at("2026-03-05"))
    # Undecided: no effect, whatever the day.
    assert world.score(person, "2026-03-15", known_at=at("2026-03-19")) == 1000
    assert world.score(person, "2027-01-01", known_at=at("2026-03-19")) == 1000
    world.decide(objection, "upheld", at("2026-03-20"))
    # Upheld on 03-20: start = max(03-12, 03-20).
    assert world.score(person, "2026-03-19") == 1000
    assert world.score(person, "2026-03-20") == 900
    # As known before the decision, the hold still applies (bitemporal).
    assert world.score(person, "2026-03-25", known_at=at("2026-03-19")) == 1000
    # As known before the objection, the record was going to count from 03-12.
    assert world.score(person, "2026-03-13", known_at=at("2026-03-04")) == 900


def test_objection_after_the_record_took_effect_does_not_hold(world: World, person: str) -> None:
    record = world.record(person, "COURT.DEFAULT", "2026-03-01", at("2026-03-02"))
    world.object(record, at("2026-03-15"))
    assert world.score(person, "2026-03-16") == 900


def test_objection_revoked_means_never(world: World, person: str) -> None:
    record = world.record(person, "COURT.DEFAULT", "2026-03-01", at("2026-03-02"))
    objection = world.object(record, at("2026-03-05"))
    world.decide(objection, "revoked", at("2026-03-20"))
    for day in ("2026-03-12", "2026-03-20", "2027-01-01"):
        assert world.score(person, day) == 1000


def test_objection_corrected_recomputes_with_the_new_date(world: World, person: str) -> None:
    record = world.record(person, "COURT.DEFAULT", "2026-03-01", at("2026-03-02"))
    objection = world.object(record, at("2026-03-05"))
    world.decide(objection, "corrected", at("2026-03-20"), occurred_on=d("2025-01-10"))
    assert world.score(person, "2026-03-19") == 1000
    assert world.score(person, "2026-03-20") == 900
    assert world.score(person, "2027-01-09") == 900
    assert world.score(person, "2027-01-10") == 1000  # 2025-01-10 + P2Y


def test_correction_is_as_if_always_so_from_its_knowledge_time(world: World, person: str) -> None:
    record = world.record(person, "COURT.DEFAULT", "2026-03-01", at("2026-03-02"))
    world.correct(record, at("2026-06-01"), occurred_on=d("2025-01-10"), amount=Decimal("12.50"))
    assert world.score(person, "2027-02-01") == 1000
    assert world.score(person, "2027-02-01", known_at=at("2026-05-31")) == 900


def test_ended_record_stops_counting_on_the_day(world: World, person: str) -> None:
    record = world.record(person, "COURT.DEFAULT", "2026-03-01", at("2026-03-02"))
    world.end(record, "2026-06-01", at("2026-06-01"))
    assert world.score(person, "2026-05-31") == 900
    assert world.score(person, "2026-06-01") == 1000


def test_revoked_record_is_void(world: World, person: str) -> None:
    record = world.record(person, "COURT.DEFAULT", "2026-03-01", at("2026-03-02"))
    world.revoke(record, at("2026-04-01"))
    assert world.score(person, "2026-03-20") == 1000
    assert world.score(person, "2026-03-20", known_at=at("2026-03-31")) == 900


def test_declined_positive_record_has_no_effect(world: World, person: str) -> None:
    blood = world.record(person, "CHARITY.BLOOD", "2026-03-01", at("2026-03-01"))
    world.decline(blood, at("2026-04-01"))
    assert world.score(person, "2026-03-10") == 1000
    assert world.score(person, "2026-03-10", known_at=at("2026-03-31")) == 1005
    court = world.record(person, "COURT.DEFAULT", "2026-03-01", at("2026-03-02"))
    with pytest.raises(Refused, match="not a positive record"):
        world.decline(court, at("2026-04-02"))


def test_cap_limits_one_behaviours_total(world: World, person: str) -> None:
    for month in range(1, 6):
        world.record(person, "CHARITY.BLOOD", f"2026-0{month}-01", at(f"2026-0{month}-01"))
    state = world.state(person, "2026-06-01")
    assert isinstance(state, State)
    assert state.score == 1020
    caps = [c for c in state.contributions if c.kind == "cap"]
    assert [(c.points, c.behaviour, c.record) for c in caps] == [(-5, "CHARITY.BLOOD", None)]
    assert sum(c.points for c in state.contributions) == state.score - state.initial


def test_clamp_applies_the_floor(world: World, person: str) -> None:
    for n in range(11):
        world.record(person, "COURT.DEFAULT", "2026-03-01", at("2026-03-02", 8 + n))
    state = world.state(person, "2026-04-01")
    assert isinstance(state, State)
    assert state.score == 0
    assert state.grade == "D"
    clamp = [c for c in state.contributions if c.kind == "clamp"]
    assert [c.points for c in clamp] == [100]
    assert sum(c.points for c in state.contributions) == state.score - state.initial


def test_grades_lists_and_measures(world: World, person: str) -> None:
    world.record(person, "COURT.DEFAULT", "2026-03-01", at("2026-03-02"))
    state = world.state(person, "2026-03-12")
    assert isinstance(state, State)
    assert (state.score, state.grade) == (900, "B")
    assert state.lists == ("defaulters",)
    assert state.measures == ("no-flights",)
    assert state.next_grade is not None
    assert (state.next_grade.grade, state.next_grade.points_needed) == ("A", 60)
    assert state.next_grade.reachable_on == d("2028-03-01")


def test_count_rule_window(world: World, person: str) -> None:
    for occurred in ("2026-01-10", "2026-03-10", "2026-06-20"):
        world.record(person, "TRAFFIC.MINOR", occurred, at(occurred))
    # D − P6M < occurred_on ≤ D, and each record active (start = recorded + P10D).
    on_list = world.state(person, "2026-07-09")
    assert isinstance(on_list, State)
    assert "repeat-traffic" in on_list.lists
    off_list = world.state(person, "2026-07-10")  # 2026-07-10 − P6M = 2026-01-10: excluded
    assert isinstance(off_list, State)
    assert "repeat-traffic" not in off_list.lists


def test_grade_in_list_and_any_measure(world: World, person: str) -> None:
    for month in range(1, 5):
        world.record(person, "CHARITY.BLOOD", f"2026-0{month}-01", at(f"2026-0{month}-01"))
    state = world.state(person, "2026-04-01")
    assert isinstance(state, State)
    assert (state.score, state.grade) == (1020, "A")
    assert "fast-track" not in state.measures


def test_consent_required_for_persons(world: World) -> None:
    _person, org = world.standard()
    other = "110105199001010029"
    world.subjects([(other, "person", "李四")])
    world.record(other, "COURT.DEFAULT", "2026-03-01", at("2026-03-02"))
    world.record(org, "COURT.DEFAULT", "2026-03-01", at("2026-03-02"))
    no_state = world.state(other, "2026-04-01")
    assert isinstance(no_state, NoState)
    assert "consent" in no_state.reason
    assert world.score(org, "2026-04-01") == 900  # organisations need no consent
    world.consent(other, True, "2026-05-01")
    assert world.score(other, "2026-04-30") is None
    assert world.score(other, "2026-05-01") == 900
    world.consent(other, False, "2026-06-01")
    assert world.score(other, "2026-06-01") is None
    assert world.score(other, "2026-05-15") == 900
    # As known before the withdrawal, consent was still on record for June.
    assert world.score(other, "2026-06-15", known_at=at("2026-05-31")) == 900


def test_scheme_ignores_subject_kinds_it_does_not_apply_to(world: World) -> None:
    person, org = world.standard()
    world.load(ORG_ONLY)
    assert isinstance(world.state(person, "2026-01-01", scheme="org-only"), NoState)
    assert world.score(org, "2026-01-01", scheme="org-only") == 100


def test_version_in_force_on_the_day_as_known_then(world: World, person: str) -> None:
    world.record(person, "COURT.DEFAULT", "2026-03-01", at("2026-03-02"))
    world.load(DEMO_CITY_V2, when="2026-06-15")
    assert world.score(person, "2026-06-30") == 900
    assert world.score(person, "2026-07-01") == 800
    assert world.score(person, "2026-07-01", known_at=at("2026-06-14")) == 900


def test_cross_scheme_measure(world: World, person: str) -> None:
    world.load(PROCUREMENT)
    world.record(person, "COURT.DEFAULT", "2026-03-01", at("2026-03-02"))
    state = world.state(person, "2026-03-12", scheme="procurement")
    assert isinstance(state, State)
    assert state.measures == ("no-procurement",)
    assert state.measure_basis["no-procurement"].lists == ("demo-city/defaulters",)
    assert world.state(person, "2026-03-11", scheme="procurement").measures == ()  # type: ignore[union-attr]


def test_incremental_effects_equal_a_rebuild(world: World, person: str) -> None:
    record = world.record(person, "COURT.DEFAULT", "2026-03-01", at("2026-03-02"))
    objection = world.object(record, at("2026-03-05"))
    world.decide(objection, "corrected", at("2026-03-20"), occurred_on=d("2025-12-01"))
    blood = world.record(person, "CHARITY.BLOOD", "2026-03-01", at("2026-03-03"))
    world.decline(blood, at("2026-04-01"))
    world.load(DEMO_CITY_V2, when="2026-06-15")
    assert world.effects() == world.rebuilt_effects()


ORG_ONLY = """\
scheme: org-only
version: "1"
title: Organisations only
jurisdiction: "371082"
applies_to: [organisation]
initial: 100
behaviours:
  - {code: COURT.DEFAULT, title: Failure to perform an effective judgment, points: -10, validity: P1Y,
     legal_basis: "SPC provisions 2017 art. 1"}
"""

DEMO_CITY_V2 = """\
scheme: demo-city
version: "2026.2"
effective_from: 2026-07-01
title: Demo City citizen credit scheme
jurisdiction: "371082"
applies_to: [person, organisation]
initial: 1000
floor: 0
consent: required
grades: [{grade: A, min: 960}, {grade: B, min: 850}, {grade: C, min: 0}]
behaviours:
  - {code: COURT.DEFAULT, title: Failure to perform an effective judgment, points: -200,
     validity: P2Y, notice: P10D, severity: serious, legal_basis: "SPC provisions 2017 art. 1"}
"""

PROCUREMENT = """\
scheme: procurement
version: "1"
title: Procurement eligibility
jurisdiction: "371082"
applies_to: [person, organisation]
behaviours:
  - {code: PROC.FRAUD, title: Bid rigging, points: 0, polarity: negative, validity: P3Y,
     legal_basis: "Government Procurement Law art. 77"}
measures:
  - {id: no-procurement, kind: punishment, title: Excluded from government procurement,
     implemented_by: finance, applies_when: {on_list: demo-city/defaulters},
     legal_basis: "Joint punishment memorandum 2016 item 3"}
"""
