"""Checks: yes or no, since when, on what basis, and how to contest — with hand-worked dates."""

from __future__ import annotations

import pytest

from helpers import World, at, d
from xinyong.derived.checks import check, parse_measure
from xinyong.errors import BadInput, NotFound


def ask(world: World, subject: str, measure: str, day: str) -> object:
    with world.store.read() as conn:
        return check(conn, subject, measure, d(day), at("2100-01-01"))


def test_a_listed_defaulter_may_not_fly_since_the_record_took_effect(world: World) -> None:
    person, _ = world.standard()
    record = world.record(person, "COURT.DEFAULT", "2026-03-01", at("2026-03-02"))
    before = ask(world, person, "demo-city/no-flights", "2026-03-11")
    assert before.applies is False  # type: ignore[attr-defined]
    assert before.since is None  # type: ignore[attr-defined]
    answer = ask(world, person, "demo-city/no-flights", "2026-06-01")
    assert answer.applies is True  # type: ignore[attr-defined]
    assert answer.since == d("2026-03-12")  # type: ignore[attr-defined]
    assert answer.lists == ("defaulters",)  # type: ignore[attr-defined]
    assert answer.records == (record,)  # type: ignore[attr-defined]
    assert answer.legal_basis == "Joint punishment memorandum 2016 item 1"  # type: ignore[attr-defined]
    assert "objection" in answer.contest  # type: ignore[attr-defined]


def test_since_spans_overlapping_records(world: World) -> None:
    person, _ = world.standard()
    world.record(person, "COURT.DEFAULT", "2024-01-01", at("2024-01-02"))  # active 2024-01-12 … 2026-01-01
    world.record(person, "COURT.DEFAULT", "2025-06-01", at("2025-06-02"))  # active 2025-06-12 … 2027-06-01
    answer = ask(world, person, "demo-city/no-flights", "2026-06-01")
    assert answer.since == d("2024-01-12")  # type: ignore[attr-defined]


def test_since_restarts_after_a_gap(world: World) -> None:
    person, _ = world.standard()
    world.record(person, "COURT.DEFAULT", "2023-01-01", at("2023-01-02"))  # until 2025-01-01
    world.record(person, "COURT.DEFAULT", "2025-06-01", at("2025-06-02"))  # from 2025-06-12
    assert ask(world, person, "demo-city/no-flights", "2026-06-01").since == d("2025-06-12")  # type: ignore[attr-defined]


def test_the_enforcer_sees_a_masked_person_id(world: World) -> None:
    person, org = world.standard()
    answer = ask(world, person, "demo-city/no-flights", "2026-06-01")
    assert answer.subject == person[:6] + "********" + person[-4:]  # type: ignore[attr-defined]
    assert ask(world, org, "demo-city/no-flights", "2026-06-01").subject == org  # type: ignore[attr-defined]


def test_unknown_measures_and_schemes_are_named(world: World) -> None:
    person, _ = world.standard()
    with pytest.raises(NotFound, match="no measure no-boats"):
        ask(world, person, "demo-city/no-boats", "2026-06-01")
    with pytest.raises(NotFound, match="scheme elsewhere is not loaded"):
        ask(world, person, "elsewhere/no-flights", "2026-06-01")
    with pytest.raises(BadInput, match="SCHEME/MEASURE"):
        parse_measure("no-flights")


def test_since_counts_a_consent_on_its_local_day(world: World) -> None:
    """Consent granted at 07:00 in Shanghai on 1 March is 23:00 UTC on 28 February: the measure
    applies from 1 March (the day consent is on record, as the state counts it), not from the
    UTC date."""
    person, _ = world.standard()
    world.consent(person, False, "2026-01-01")
    world.record(person, "COURT.DEFAULT", "2025-06-01", at("2025-06-02"))  # active from 2025-06-12
    with world.store.write() as conn:
        from xinyong.due_process.after_append import AFTER_APPEND
        from xinyong.ledger import consent

        consent.record_consent(conn, person, "demo-city", True, at("2026-03-01", 7), "test", after=AFTER_APPEND)
    assert ask(world, person, "demo-city/no-flights", "2026-02-28").applies is False  # type: ignore[attr-defined]
    answer = ask(world, person, "demo-city/no-flights", "2026-06-01")
    assert answer.applies is True  # type: ignore[attr-defined]
    assert answer.since == d("2026-03-01")  # type: ignore[attr-defined]
