"""Checks: yes or no, since when, on what basis, and how to contest — with hand-worked dates."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import delete

from helpers import World, at, d
from xinyong import settings
from xinyong.derived import batch, checks
from xinyong.derived.checks import CheckAnswer, check, parse_measure
from xinyong.errors import BadInput, NotFound
from xinyong.ledger import registry
from xinyong.rules.clock import FixedClock
from xinyong.security.access import Principal, Role
from xinyong.service import Service
from xinyong.storage import tables as t
from xinyong.storage.store import Store


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


def test_every_cold_answer_agrees_with_the_online_path(store: Store, tmp_path: Path) -> None:
    """Over a whole demo city: the answers of `check_many` — served rows where fresh, the online
    path for the rest — equal the online path's alone, for every subject, measure and day; also
    after appends that leave some served rows stale, and on days the batch did not serve."""
    from xinyong.demo import city as demo

    now = dt.datetime(2026, 11, 1, 4, tzinfo=dt.UTC)
    with settings.using(settings.load({"XINYONG_KEYS": str(tmp_path / "keys")})):
        demo.run(store.url, FixedClock(now), persons=160, organisations=30, seed=11, console=None)
    day = dt.date(2026, 11, 1)
    batch.run(store, batch.DuckDBEngine(), as_of=day, known_at=now, out=tmp_path / "state.parquet")
    later = now + dt.timedelta(hours=2)
    service = Service(store, FixedClock(later))
    with store.read() as conn:
        ids = sorted(s.id for s in registry.existing_subjects(conn, _all_ids(conn)).values())
        schemes = {v.id: v.scheme for v in registry.scheme_versions(conn)}
    office = Principal(Role.ADMIN, "test", channel="cli")
    # Appends after the batch: a new record, a withdrawn consent, a revocation — their subjects'
    # served rows are stale or refreshed; everyone else's still answer.
    service.records.submit(
        office,
        "court",
        {"subject_id": ids[3], "behaviour": "COURT.DEFAULT", "occurred_on": "2026-10-30", "document_ref": "AGREE-1"},
    )
    service.subjects.change_consent(office, ids[5], "city-points", False)
    # A file leaves its subjects' served rows as they were: only the freshness guard keeps those
    # from answering (an honour lifts many of them a grade at once, and the grade's rewards).
    rows = "".join(f"{s},CIVIL.HONOUR,2026-10-01,AGREE-F{n}\n" for n, s in enumerate(ids[10:60]))
    header = "subject_id,behaviour,occurred_on,document_ref\n"
    service.records.import_file(office, "honours.csv", (header + rows).encode(), source="civil-affairs")
    measures = [f"{scheme_id}/{m.id}" for scheme_id, scheme in schemes.items() for m in scheme.measures]
    online_computed: list[str] = []
    original = checks._applies_since

    def counted(reader: Any, *args: Any) -> Any:
        online_computed.append(reader.subject.id)
        return original(reader, *args)

    answered_from_rows = all_noes = 0
    for asked_day in (day, day - dt.timedelta(days=40), day + dt.timedelta(days=400)):
        for measure in measures:
            online_computed.clear()
            with store.read() as conn:
                with pytest.MonkeyPatch.context() as patch:
                    patch.setattr(checks, "_applies_since", counted)
                    cold = checks.check_many(conn, ids, measure, asked_day, later)
                went_online = set(online_computed)
                noes = [s for s, a in zip(ids, cold, strict=True) if isinstance(a, CheckAnswer) and not a.applies]
                served = sum(1 for s in noes if s not in went_online)
            with store.engine.connect() as conn, conn.begin() as transaction:
                conn.execute(delete(t.serving_state))  # nothing served: every answer online
                online = checks.check_many(conn, ids, measure, asked_day, later)
                transaction.rollback()
            assert cold == online, (measure, asked_day)
            if asked_day == day:
                answered_from_rows += served
                all_noes += len(noes)
            else:
                assert served == 0  # a row answers only for the day it was computed for
    assert answered_from_rows > all_noes // 2  # the served rows did answer most of the noes
    assert any(a.applies for a in cold)


def _all_ids(conn: Any) -> list[str]:
    from sqlalchemy import select

    return [row.id for row in conn.execute(select(t.subjects.c.id))]
