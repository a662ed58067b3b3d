"""The serving state: checks read it, events keep it true, and it is never served stale."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from sqlalchemy import delete, select, update

from helpers import World, at, d, person_id
from xinyong.derived import serving
from xinyong.derived.checks import check
from xinyong.rules.clock import FixedClock, to_storage
from xinyong.security.access import Principal, Role
from xinyong.service import Service
from xinyong.storage import tables as t

DAY = d("2026-06-01")
MEASURE = "demo-city/no-flights"


def serve_everyone(world: World, subjects: list[str], known: dt.datetime) -> None:
    """What a batch does for a day, here on the online path (the batch's own test is in test_batch)."""
    with world.store.write() as conn:
        for subject in subjects:
            serving.refresh_subject(conn, subject, DAY, known)


def ask(world: World, subject: str, known: dt.datetime) -> bool:
    with world.store.read() as conn:
        return check(conn, subject, MEASURE, DAY, known).applies


def test_a_check_takes_its_no_from_a_fresh_served_row(world: World) -> None:
    person, org = world.standard()
    world.record(person, "COURT.DEFAULT", "2026-03-01", at("2026-03-02"))
    serve_everyone(world, [person, org], at("2026-05-01"))
    assert ask(world, person, at("2026-05-02")) is True
    assert ask(world, org, at("2026-05-02")) is False
    # Make the served row lie: the check now believes it, which shows it was read …
    with world.store.write() as conn:
        conn.execute(update(t.serving_state).where(t.serving_state.c.subject_id == person).values(measures=""))
    assert ask(world, person, at("2026-05-02")) is False
    # … but only while fresh: a record after the row's knowledge time sends the check online.
    world.record(person, "TRAFFIC.MINOR", "2026-04-01", at("2026-05-03"))
    assert ask(world, person, at("2026-05-04")) is True
    # A question about another day, or as known before the row, is never answered from it.
    with world.store.write() as conn:
        conn.execute(update(t.serving_state).where(t.serving_state.c.subject_id == person).values(measures=""))
    with world.store.read() as conn:
        assert check(conn, person, MEASURE, d("2026-06-02"), at("2026-05-04")).applies is True
        assert check(conn, person, MEASURE, DAY, at("2026-04-30")).applies is True


def test_a_yes_is_always_computed_with_its_basis(world: World) -> None:
    person, _ = world.standard()
    record = world.record(person, "COURT.DEFAULT", "2026-03-01", at("2026-03-02"))
    serve_everyone(world, [person], at("2026-05-01"))
    with world.store.read() as conn:
        answer = check(conn, person, MEASURE, DAY, at("2026-05-02"))
    assert answer.applies is True
    assert answer.since == d("2026-03-12")
    assert answer.records == (record,)


def test_served_and_online_answers_agree_for_every_subject(world: World) -> None:
    person, org = world.standard()
    others = [person_id(n) for n in range(2, 8)]
    world.subjects([(p, "person", f"测试{n}") for n, p in enumerate(others)])
    for n, subject in enumerate(others):
        if n % 2 == 0:
            world.consent(subject, True, "2020-01-03")
        if n % 3 == 0:
            world.record(subject, "COURT.DEFAULT", f"2026-0{n % 5 + 1}-05", at(f"2026-0{n % 5 + 1}-06"))
    everyone = [person, org, *others]
    known = at("2026-05-20")
    online = {s: ask(world, s, known) for s in everyone}
    serve_everyone(world, everyone, known)
    assert {s: ask(world, s, known) for s in everyone} == online
    assert any(online.values())
    assert not all(online.values())


def test_a_service_act_about_a_subject_refreshes_its_served_rows(world: World) -> None:
    person, org = world.standard()
    serve_everyone(world, [person, org], at("2026-05-01"))
    service = Service(world.store, FixedClock(at("2026-05-10")))
    officer = Principal(Role.ADMIN, "test", channel="cli")
    service.records.submit(
        officer,
        "court",
        {"subject_id": person, "behaviour": "COURT.DEFAULT", "occurred_on": "2026-05-09", "document_ref": "X-1"},
    )
    with world.store.read() as conn:
        served = serving.served_state(conn, person, "demo-city", DAY, at("2026-05-11"))
        # Refreshed in the record's own transaction: fresh, and it already knows the record.
        assert served is not None
        assert served.known_at == at("2026-05-10")
        assert served.lists == ("defaulters",)
        assert "no-flights" in served.measures
        # The organisation was not touched: its row is as the batch left it.
        untouched = serving.served_state(conn, org, "demo-city", DAY, at("2026-05-11"))
        assert untouched is not None
        assert untouched.known_at == at("2026-05-01")
    service.subjects.change_consent(officer, person, "demo-city", False)
    with world.store.read() as conn:
        # Without consent the person has no state under the scheme, so no row: the check goes online.
        assert serving.served_state(conn, person, "demo-city", DAY, at("2026-05-11")) is None
        assert check(conn, person, MEASURE, DAY, at("2026-05-11")).applies is False


def test_subjects_without_served_rows_are_left_alone(world: World) -> None:
    person, _ = world.standard()
    service = Service(world.store, FixedClock(at("2026-05-10")))
    service.subjects.change_consent(Principal(Role.ADMIN, "test", channel="cli"), person, "demo-city", False)
    with world.store.read() as conn:
        assert conn.execute(t.serving_state.select()).first() is None


def test_the_driver_reads_what_sqlalchemy_reads(world: World) -> None:
    """`DriverQuery` (the lookups on a check's path) gives the rows, types included, that
    `Connection.execute` gives for the same statement: dates, times, flags, numbers, missing rows."""
    from xinyong.derived import derivation
    from xinyong.ledger import consent, registry

    person, org = world.standard()
    world.consent(person, True, "2020-01-03")
    world.record(person, "COURT.DEFAULT", "2026-03-01", at("2026-03-02"))
    serve_everyone(world, [person, org], at("2026-05-01"))
    world.record(org, "TRAFFIC.MINOR", "2026-04-01", at("2026-05-03"))  # org's row no longer fresh
    asked = [
        (serving.SERVED, {"scheme": "demo-city", "subjects": subjects, "known_at": to_storage(known), "as_of": DAY})
        for subjects in ([person], [org], ["110105199001019999"], [org, "110105199001019999", person])
        for known in (at("2026-05-02"), at("2026-05-04"))
    ]
    asked += [(registry._SUBJECT, {"id": s}) for s in (person, org, "110105199001019999")]
    asked += [(registry._VERSIONS_OF, {"scheme": "demo-city"}), (registry._ALL_VERSIONS, {})]
    asked += [(derivation._EFFECTS_OF, {"subject": s}) for s in (person, org)]
    asked += [(derivation._EFFECTS_OF_IN, {"subject": person, "scheme": "demo-city"})]
    asked += [(consent._EVENTS_OF, {"subject": s}) for s in (person, org)]
    with world.store.read() as conn:
        for query, params in asked:
            expected = [tuple(row) for row in conn.execute(query.statement, params)]
            got = [tuple(row) for row in query.all(conn, **params)]
            assert got == expected, (query.statement, params)
            assert [type(v) for row in got for v in row] == [type(v) for row in expected for v in row]
            assert query.first(conn, **params) == (got[0] if got else None)
            assert [dict(row._mapping) for row in query.all(conn, **params)] == [
                dict(row._mapping) for row in conn.execute(query.statement, params)
            ]
        assert not any(row.fresh for row in serving.SERVED.all(conn, **asked[3][1]))  # org, after its record
        assert all(query.all(conn, **params) for query, params in asked[-5:-1])  # effects and consent read


def test_every_way_of_appending_makes_the_served_rows_of_its_subjects_stale(world: World, tmp_path: Path) -> None:
    """A file imported in bulk, a file row by row, an event and a consent each note their subjects'
    change in their own transaction, so the freshness guard stops those subjects' served rows and
    nobody else's."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    person, org = world.standard()
    others = [person_id(n) for n in range(2, 6)]
    world.subjects([(s, "person", f"某{n}") for n, s in enumerate(others)])
    for subject in [person, *others]:
        world.consent(subject, True, "2020-01-03")
    everyone = [person, org, *others]
    serve_everyone(world, everyone, at("2026-05-01"))
    service = Service(world.store, FixedClock(at("2026-05-02")))
    office = Principal(Role.ADMIN, "test", channel="cli")

    def stale() -> set[str]:
        with world.store.read() as conn:
            found = serving.served_many(conn, everyone, "demo-city", DAY, at("2026-05-03"))
        return {s for s, served in found.items() if served.version is None}

    assert stale() == set()
    parquet = tmp_path / "records.parquet"
    columns = {"subject_id": [others[0], others[0]], "behaviour": ["TRAFFIC.MINOR"] * 2}
    columns |= {"occurred_on": ["2026-04-01", "2026-04-02"], "document_ref": ["B-1", "B-2"]}
    pq.write_table(pa.table(columns), parquet)
    assert service.records.import_path(office, parquet, "transport", bulk=True).imported == 2
    assert stale() == {others[0]}
    row = "subject_id,behaviour,occurred_on,document_ref\n" + f"{others[1]},TRAFFIC.MINOR,2026-04-03,R-1\n"
    service.records.import_file(office, "one.csv", row.encode(), source="transport")
    assert stale() == {others[0], others[1]}
    with world.store.write() as conn:  # the event and the consent below refresh rows: none left to refresh
        conn.execute(delete(t.serving_state).where(t.serving_state.c.subject_id.in_([others[2], others[3]])))
    serve_everyone(world, [others[2], others[3]], at("2026-05-01"))
    service.records.revoke(office, "transport:R-1", reason="sent in error")
    service.subjects.change_consent(office, others[3], "demo-city", False)
    with world.store.read() as conn:
        changed = {row.subject_id for row in conn.execute(select(t.subject_changes.c.subject_id))}
    assert {others[0], others[1], others[3]} <= changed
