"""Bulk import: the column-wise path keeps the row-wise import's guarantees (whole file or nothing,
located errors, idempotent, source authorisation) and derives the same effects. Storage tests run
on SQLite and PostgreSQL; the vectorised derivation is checked against `effects.derive_effects`
with Hypothesis."""

from __future__ import annotations

import csv
import datetime as dt
import json
import re
import sys
import uuid
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Connection, func, select
from sqlalchemy.exc import IntegrityError

from helpers import World, at, bulk_import, org_id, person_id
from xinyong.derived import derivation, fresh_effects
from xinyong.due_process import notices
from xinyong.due_process.after_append import AFTER_APPEND
from xinyong.errors import BadInput, NotFound
from xinyong.ledger import imports
from xinyong.ledger import records as ledger
from xinyong.ledger.imports import ImportResult
from xinyong.rules.effects import derive_effects
from xinyong.rules.periods import Period
from xinyong.rules.records import Record
from xinyong.rules.schemes import SchemeVersion, parse_scheme
from xinyong.storage import postgres, postgres_copy
from xinyong.storage import tables as t
from xinyong.storage.store import Store

NOW = at("2026-03-02")
COLUMNS = ["subject_id", "behaviour", "occurred_on", "document_ref", "amount", "note"]


def rows_for(people: list[str], n: int, prefix: str = "B") -> list[dict[str, str]]:
    codes = ["COURT.DEFAULT", "TRAFFIC.MINOR", "CHARITY.BLOOD"]
    return [
        {
            "subject_id": people[i % len(people)],
            "behaviour": codes[i % 3],
            "occurred_on": (dt.date(2025, 1, 31) + dt.timedelta(days=5 * i)).isoformat(),
            "document_ref": f"{prefix}-{i}",
            "amount": "" if i % 4 else f"{1000 + i}.5",
            "note": "" if i % 5 else "备注",
        }
        for i in range(n)
    ]


def write_csv(path: Path, rows: list[dict[str, str]]) -> Path:
    lines = [",".join(COLUMNS)] + [",".join(r[c] for c in COLUMNS) for r in rows]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def write_parquet(path: Path, rows: list[dict[str, str]]) -> Path:
    pq.write_table(pa.table({c: [r[c] for r in rows] for c in COLUMNS}), path)
    return path


@pytest.fixture
def people(world: World) -> list[str]:
    world.standard()
    world.source("all", ["COURT.DEFAULT", "TRAFFIC.MINOR", "CHARITY.BLOOD"])
    ids = [person_id(n) for n in range(2, 12)]
    world.subjects([(p, "person", f"人{n}") for n, p in enumerate(ids)])
    return ids


def counts(store: Store) -> tuple[int, int]:
    with store.read() as conn:
        return ledger.record_count(conn), len(derivation.all_effects(conn))


def snapshot(store: Store) -> tuple[list[tuple[object, ...]], list[tuple[object, ...]]]:
    """Records and effects keyed by document_ref, so two stores with other ids compare equal."""
    with store.read() as conn:
        records = {r[0]: r for r in ledger_rows(conn)}
        effects = sorted(
            (records[e.record_id][1], e.scheme, e.version, e.points, e.occurred_on, e.valid_from, e.valid_until)
            for e in derivation.all_effects(conn)
        )
    return sorted(v for v in records.values()), effects


def ledger_rows(conn: object) -> list[tuple[object, ...]]:
    from sqlalchemy import select

    from xinyong.storage import tables as t

    result = conn.execute(select(t.records).order_by(t.records.c.id))  # type: ignore[attr-defined]
    return [
        (r.id, r.document_ref, r.subject_id, r.behaviour, r.occurred_on, r.amount, r.note, r.recorded_at)
        for r in result
    ]


def test_bulk_equals_the_row_wise_import(store: Store, people: list[str], tmp_path: Path) -> None:
    rows = rows_for(people, 60)
    path = write_csv(tmp_path / "court.csv", rows)
    result = bulk_import(store, path, source="all", now=NOW, actor="test")
    assert (result.imported, result.already_present, result.lines) == (60, 0, 60)
    reference = Store(f"sqlite:///{tmp_path / 'ref.db'}")
    reference.migrate()
    World(reference).standard()
    World(reference).source("all", ["COURT.DEFAULT", "TRAFFIC.MINOR", "CHARITY.BLOOD"])
    World(reference).subjects([(p, "person", f"人{n}") for n, p in enumerate(people)])
    with reference.write() as conn:
        imports.import_records(
            conn, "court.csv", path.read_bytes(), source="all", now=NOW, actor="test", after=AFTER_APPEND
        )
    mine, theirs = snapshot(store), snapshot(reference)
    strip = [r[1:] for r in mine[0]], [r[1:] for r in theirs[0]]
    assert strip[0] == strip[1]
    assert mine[1] == theirs[1]
    assert len(mine[1]) > 0
    # Subjects are told of adverse records whichever import path brought them (notice before effect).
    with store.read() as bulk_conn, reference.read() as row_conn:
        told_in_bulk = sorted((n.subject_id, n.record_id is not None) for n in notices.inbox(bulk_conn))
        told_row_wise = sorted((n.subject_id, n.record_id is not None) for n in notices.inbox(row_conn))
    assert told_in_bulk == told_row_wise
    assert told_in_bulk
    reference.dispose()


def test_parquet_import_is_idempotent_and_ids_continue(
    store: Store, world: World, people: list[str], tmp_path: Path
) -> None:
    path = write_parquet(tmp_path / "r.parquet", rows_for(people, 30))
    assert bulk_import(store, path, source="all", now=NOW, actor="test").imported == 30
    before = counts(store)
    again = bulk_import(store, path, source="all", now=NOW, actor="test")
    assert (again.imported, again.already_present) == (0, 30)
    assert counts(store) == before
    # The row-wise path still works after explicit ids (PostgreSQL's sequence was moved on).
    record_id = world.record(people[0], "COURT.DEFAULT", "2026-01-05", NOW)
    assert record_id > 30
    more = write_parquet(tmp_path / "more.parquet", rows_for(people, 40))
    assert bulk_import(store, more, source="all", now=NOW, actor="test").imported == 10


def test_bad_lines_are_all_reported_and_nothing_changes(store: Store, people: list[str], tmp_path: Path) -> None:
    rows = rows_for(people, 12)
    rows[1]["subject_id"] = people[0][:-1] + ("0" if people[0][-1] != "0" else "1")  # wrong check
    rows[2]["behaviour"] = "NOPE.X"
    rows[3]["occurred_on"] = "2026-13-01"
    rows[4]["occurred_on"] = "2027-01-01"
    rows[5]["amount"] = "abc"
    rows[6]["amount"] = "-5"
    rows[7]["document_ref"] = rows[0]["document_ref"]
    rows[8]["document_ref"] = ""
    path = write_csv(tmp_path / "bad.csv", rows)
    before = counts(store)
    with pytest.raises(BadInput) as caught:
        bulk_import(store, path, source="all", now=NOW, actor="test")
    assert counts(store) == before
    where = {(p.line, p.column) for p in caught.value.problems}
    assert where == {
        (3, "subject_id"),
        (4, "behaviour"),
        (5, "occurred_on"),
        (6, "occurred_on"),
        (7, "amount"),
        (8, "amount"),
        (9, "document_ref"),
        (10, "document_ref"),
    }
    text = caught.value.render()
    assert "already appears on line 2" in text
    assert "in the future" in text
    assert "unknown behaviour 'NOPE.X'" in text


def test_a_failure_while_writing_leaves_nothing_behind(
    store: Store, people: list[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A failure after the last write (records, effects, notices and their e-mail rows all written)
    rolls back all of them; on SQLite the foreign-key checks the import switched off are on again
    afterwards."""
    path = write_parquet(tmp_path / "r.parquet", rows_for(people, 30))
    with store.write() as conn:
        notices.set_contact(conn, people[0], email="p0@example.org", lang=None, now=NOW)
    checking = []
    write_fresh = notices.write_fresh

    def fail(conn: Connection, *args: Any, **kwargs: Any) -> None:
        assert write_fresh(conn, *args, **kwargs) > 0
        assert conn.execute(select(func.count()).select_from(t.outbox)).scalar_one() > 0
        if store.backend.name == "sqlite":
            checking.append(conn.exec_driver_sql("PRAGMA foreign_keys").scalar())
        raise RuntimeError("disk full")

    def written() -> tuple[int, ...]:
        with store.read() as conn:
            return tuple(
                int(conn.execute(select(func.count()).select_from(table)).scalar_one())
                for table in (t.records, t.effects, t.notice_templates, t.notices, t.outbox, t.imports)
            )

    before = written()
    with monkeypatch.context() as patched:
        patched.setattr(notices, "write_fresh", fail)
        with pytest.raises(RuntimeError, match="disk full"):
            bulk_import(store, path, source="all", now=NOW, actor="test")
    assert written() == before
    if store.backend.name == "sqlite":
        assert checking == [0]  # the import checks every reference itself
        with store.write() as conn:
            assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
    assert bulk_import(store, path, source="all", now=NOW, actor="test").imported == 30
    if store.backend.name == "sqlite":
        with store.read() as conn:
            assert conn.exec_driver_sql("PRAGMA foreign_key_check").fetchall() == []


def test_authorisation_and_conflicts(store: Store, people: list[str], tmp_path: Path) -> None:
    path = write_parquet(tmp_path / "r.parquet", rows_for(people, 6))
    with pytest.raises(BadInput) as caught:
        bulk_import(store, path, source="transport", now=NOW, actor="test")
    assert "not authorised to submit COURT.DEFAULT" in caught.value.render()
    with pytest.raises(NotFound):
        bulk_import(store, path, source="nobody", now=NOW, actor="test")
    bulk_import(store, path, source="all", now=NOW, actor="test")
    changed = rows_for(people, 6)
    changed[2]["occurred_on"] = "2024-01-01"
    with pytest.raises(BadInput) as caught:
        bulk_import(store, write_parquet(tmp_path / "c.parquet", changed), source="all", now=NOW, actor="t")
    assert "with different facts" in caught.value.render()


def test_missing_and_unknown_columns(sqlite_store: Store, tmp_path: Path) -> None:
    World(sqlite_store).standard()
    path = tmp_path / "x.csv"
    path.write_text("subject_id,behaviour,when,document_ref\n", encoding="utf-8")
    with pytest.raises(BadInput) as caught:
        bulk_import(sqlite_store, path, source="court", now=NOW, actor="test")
    assert {p.column for p in caught.value.problems} == {"when", "occurred_on"}


def test_the_cli_takes_the_bulk_path_for_parquet(sqlite_store: Store, tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from xinyong.interfaces.cli import app

    world = World(sqlite_store)
    person, _org = world.standard()
    path = write_parquet(tmp_path / "r.parquet", rows_for([person], 5))
    world.source("all", ["COURT.DEFAULT", "TRAFFIC.MINOR", "CHARITY.BLOOD"])
    runner = CliRunner()
    args = ["--db", sqlite_store.url, "records", "import", str(path), "--source", "all", "--json"]
    result = runner.invoke(app, args, env={"XINYONG_NOW": "2026-03-02T12:00:00+08:00"})
    assert result.exit_code == 0, result.output
    assert '"imported": 5' in result.output


# --- the vectorised derivation equals the semantics -------------------------------------------------

periods = st.builds(
    Period,
    years=st.integers(0, 3),
    months=st.integers(0, 14),
    days=st.integers(0, 40),
).filter(lambda p: bool(p.years or p.months or p.days))


def scheme_text(behaviours: list[tuple[int, Period, Period | None]], default_notice: Period) -> str:
    lines = [
        "scheme: prop",
        'version: "1"',
        "title: Property scheme",
        'jurisdiction: "371082"',
        "applies_to: [person]",
        f"default_notice: {default_notice}",
        "behaviours:",
    ]
    for index, (points, validity, notice) in enumerate(behaviours):
        extra = f", notice: {notice}" if notice is not None else ""
        lines.append(
            f"  - {{code: B.X{index}, title: b{index}, points: {points}, validity: {validity}{extra}, "
            'legal_basis: "basis"}'
        )
    return "\n".join(lines) + "\n"


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    behaviours=st.lists(
        st.tuples(
            st.integers(-50, 50).filter(bool),
            periods,
            st.one_of(st.none(), st.builds(Period, days=st.integers(0, 40))),
        ),
        min_size=1,
        max_size=4,
    ),
    default_notice=st.builds(Period, days=st.integers(0, 20)),
    records=st.lists(
        st.tuples(st.integers(0, 3), st.dates(dt.date(2020, 1, 1), dt.date(2026, 12, 31))),
        min_size=1,
        max_size=30,
    ),
    recorded=st.datetimes(dt.datetime(2020, 1, 1), dt.datetime(2027, 1, 1)),
)
def test_fresh_effects_equal_derive_effects(
    behaviours: list[tuple[int, Period, Period | None]],
    default_notice: Period,
    records: list[tuple[int, dt.date]],
    recorded: dt.datetime,
) -> None:
    scheme = parse_scheme(scheme_text(behaviours, default_notice))
    version = SchemeVersion(scheme, at("2019-01-01"), scheme.digest())
    recorded_at = recorded.replace(tzinfo=dt.UTC)
    codes = [f"B.X{i % len(behaviours)}" for i, _ in records]
    table = pa.table(
        {
            "id": pa.array(range(1, len(records) + 1), pa.int64()),
            "subject_id": pa.array(["S"] * len(records)),
            "behaviour": pa.array(codes),
            "occurred_on": pa.array([day for _, day in records], pa.date32()),
        }
    )
    got = sorted(
        (r["record_id"], r["points"], r["valid_from"], r["valid_until"])
        for r in fresh_effects.derive_fresh_effects(table, [version], recorded_at).to_pylist()
    )
    want = []
    for index, (_, day) in enumerate(records, start=1):
        record = Record(index, "src", f"D{index}", "S", codes[index - 1], day, recorded_at)
        for effect in derive_effects(record, [], scheme):
            assert effect.known_until is None
            want.append((index, effect.points, effect.valid_from, effect.valid_until))
    assert got == sorted(want)


def test_calendar_clipping_is_dateutils() -> None:
    """The cases the property test might miss by chance: month ends and 29 February."""
    text = scheme_text([(-5, Period(years=1), Period()), (-5, Period(months=1, days=1), Period())], Period())
    scheme = parse_scheme(text)
    version = SchemeVersion(scheme, at("2019-01-01"), scheme.digest())
    days = [dt.date(2024, 2, 29), dt.date(2024, 1, 31), dt.date(2023, 1, 31), dt.date(2024, 3, 31)]
    table = pa.table(
        {
            "id": pa.array(range(1, 9), pa.int64()),
            "subject_id": pa.array(["S"] * 8),
            "behaviour": pa.array(["B.X0"] * 4 + ["B.X1"] * 4),
            "occurred_on": pa.array(days * 2, pa.date32()),
        }
    )
    got = {
        r["record_id"]: r["valid_until"]
        for r in fresh_effects.derive_fresh_effects(table, [version], at("2019-01-01")).to_pylist()
    }
    assert got[1] == dt.date(2025, 2, 28)
    assert got[6] == dt.date(2024, 3, 1)  # 2024-01-31 + P1M1D: 29 February, then a day
    assert got[7] == dt.date(2023, 3, 1)
    assert got[8] == dt.date(2024, 5, 1)


def test_json_lines_keep_text_values_and_physical_lines(sqlite_store: Store, tmp_path: Path) -> None:
    import json

    world = World(sqlite_store)
    person, _org = world.standard()
    good = {"subject_id": person, "behaviour": "COURT.DEFAULT", "occurred_on": "2026-01-15", "document_ref": "J1"}
    path = tmp_path / "r.jsonl"
    lines = [json.dumps(good | {"amount": 12.5}), "", json.dumps(good | {"document_ref": "J2", "occurred_on": "x"})]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    with pytest.raises(BadInput) as caught:
        bulk_import(sqlite_store, path, source="court", now=NOW, actor="test")
    assert {(p.line, p.column) for p in caught.value.problems} == {(3, "occurred_on")}
    path.write_text("\n".join([*lines[:2], json.dumps(good | {"document_ref": "J2", "extra": 1})]) + "\n")
    with pytest.raises(BadInput) as caught:
        bulk_import(sqlite_store, path, source="court", now=NOW, actor="test")
    assert {(p.line, p.column) for p in caught.value.problems} == {(3, "extra")}
    path.write_text("\n".join(lines[:2]) + "\n", encoding="utf-8")
    assert bulk_import(sqlite_store, path, source="court", now=NOW, actor="test").imported == 1
    with sqlite_store.read() as conn:
        assert ledger.history(conn, "court:J1").record.amount == Decimal("12.50")


# --- notices: the set-based path writes what the row-wise path writes ---------------------------------

Setup = Callable[[Store], None]
Files = list[tuple[str, Path]]


def write_rows_csv(path: Path, header: list[str], rows: list[list[str]]) -> Path:
    """A CSV written by the csv module, so that quotes, commas and line breaks in fields are quoted."""
    with path.open("w", encoding="utf-8", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(header)
        writer.writerows(rows)
    return path


def example_city(tmp_path: Path) -> tuple[Setup, Files]:
    """DESIGN.md's example scheme, a person and an organisation with e-mail addresses, and references
    that JSON must escape (quotes, backslashes, control characters, CJK, U+2028, astral)."""
    person, org, others = person_id(1), org_id(1), [person_id(n) for n in range(2, 6)]

    def setup(store: Store) -> None:
        world = World(store)
        assert world.standard() == (person, org)
        world.source("all", ["COURT.DEFAULT", "TRAFFIC.MINOR", "CHARITY.BLOOD"])
        world.subjects([(p, "person", f"人{n}") for n, p in enumerate(others)])
        with store.write() as conn:
            notices.set_contact(conn, person, email="zhang@example.org", lang="en", now=at("2026-01-01"))
            notices.set_contact(conn, org, email="office@example.com", lang=None, now=at("2026-01-01"))
            notices.set_contact(conn, others[0], email=None, lang="en", now=at("2026-01-01"))

    refs = ['Q"1', "Q\\2", "文书-3", "Q\t4", "Q\x015", "Q/6", "Q\u20287", "Q🙂8", "Q-9"]
    # The separator of a templated notice's values, which JSON escapes there (an adverse record).
    refs += ["Q\x1f10"] + [f"R-{i}" for i in range(50)]
    kinds = [("COURT.DEFAULT", "1000.50"), ("TRAFFIC.MINOR", ""), ("CHARITY.BLOOD", "0.00")]
    subjects = [person, org, *others]
    days = [(dt.date(2025, 1, 31) + dt.timedelta(days=5 * i)).isoformat() for i in range(len(refs))]
    rows = [[subjects[i % len(subjects)], kinds[i % 3][0], days[i], ref, kinds[i % 3][1]] for i, ref in enumerate(refs)]
    header = ["subject_id", "behaviour", "occurred_on", "document_ref", "amount"]
    return setup, [("all", write_rows_csv(tmp_path / "all.csv", header, rows))]


def shipped_city(tmp_path: Path) -> tuple[Setup, Files]:
    """The three shipped schemes (lists, measures, behaviours under several schemes) and a small
    synthetic city with both kinds of subject, some with e-mail addresses: one CSV per source."""
    from xinyong.demo import city as demo
    from xinyong.demo.synth import SOURCES, write_parquet
    from xinyong.ledger import registry
    from xinyong.rules.schemes import load_scheme_file
    from xinyong.storage import tables as t

    synth = write_parquet(tmp_path, persons=300, organisations=60, records=1500, today=dt.date(2026, 2, 1), seed=11)
    subjects = pq.read_table(synth["subjects.parquet"]).to_pylist()
    when = at("2023-01-01")

    def setup(store: Store) -> None:
        with store.write() as conn:
            for name in demo.SHIPPED_SCHEMES:
                path = demo.schemes_dir() / name
                registry.publish_scheme(
                    conn, load_scheme_file(path), path.read_text(encoding="utf-8"), when, after=AFTER_APPEND
                )
            for source, codes in SOURCES.items():
                registry.add_source(conn, source, codes, when)
            registered = when.replace(tzinfo=None)
            rows = [
                {"id": s["subject_id"], "kind": s["kind"], "name": s["name"], "registered_at": registered}
                for s in subjects
            ]
            conn.execute(t.subjects.insert(), rows)
            for s in subjects[::7]:
                notices.set_contact(conn, s["subject_id"], email=f"{s['subject_id']}@example.org", lang=None, now=when)

    files = []
    for name, path in sorted(synth.items()):
        if name.startswith("records-"):
            pacsv.write_csv(pq.read_table(path), path.with_suffix(".csv"))
            files.append((name[8:-8], path.with_suffix(".csv")))
    return setup, files


def notices_and_outbox(store: Store) -> tuple[list[tuple[object, ...]], list[tuple[object, ...]]]:
    """Notices (with their facts text) and deliveries, by record reference instead of id."""
    from sqlalchemy import select

    from xinyong.storage import tables as t

    with store.read() as conn:
        refs = {row.id: f"{row.source_id}:{row.document_ref}" for row in conn.execute(select(t.records))}
        found: dict[int, tuple[object, ...]] = {}
        for n in conn.execute(notices.NOTICE_ROWS):
            facts = t.facts_text(n.facts, n.parts, n.fill)
            assert json.loads(facts)["record"]["ref"] == refs[n.record_id]
            found[n.id] = (refs[n.record_id], n.record_id, n.key, n.subject_id, n.event_id, n.kind, n.created_at)
            found[n.id] += (n.takes_effect_on, n.object_by, n.read_at, facts)
        deliveries = []
        for row in conn.execute(select(t.outbox)):
            pattern = rf"<notice-{row.notice_id}\.{row.channel}\.[0-9a-f]{{16}}@xinyong\.invalid>"
            assert re.fullmatch(pattern, row.message_id), row.message_id
            ref = found[row.notice_id][0]
            deliveries.append((ref, row.channel, row.address, row.state, row.attempts, row.next_attempt_at))
            deliveries[-1] += (row.claimed_until, row.last_error, row.delivered_at)
    return sorted(found.values(), key=repr), sorted(deliveries, key=repr)


# Who imports goes into every notice (the bulk path renders it into the templates): one that JSON escapes.
ACTOR = 'bulk "importer" \\ 局\u2028'


def kept_as(store: Store) -> set[tuple[bool, bool]]:
    """How the notices keep their facts: (whole, as a template and values)."""
    with store.read() as conn:
        query = select(t.notices.c.facts.is_not(None), t.notices.c.template_id.is_not(None)).distinct()
        return {(bool(whole), bool(templated)) for whole, templated in conn.execute(query)}


@pytest.mark.parametrize("city", [example_city, shipped_city], ids=["example", "shipped"])
def test_bulk_notices_equal_the_row_wise_ones(
    store: Store,
    request: pytest.FixtureRequest,
    tmp_path: Path,
    city: Callable[[Path], tuple[Setup, Files]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Key, kind, dates, facts byte for byte, and deliveries of every notice: the set-based path
    composes them from per-key templates (in SQLite, or in Arrow for PostgreSQL), the row-wise path
    renders each in Python."""
    composed = []
    from xinyong.due_process.notices import fresh

    compose = fresh._write_composed
    monkeypatch.setattr(fresh, "_write_composed", lambda *args: composed.append(1) or compose(*args))
    setup, files = city(tmp_path)
    url = (
        f"sqlite:///{tmp_path / 'row-wise.db'}"
        if store.backend.name == "sqlite"
        else request.getfixturevalue("pg_cluster").new_database()
    )
    row_wise = Store(url)
    row_wise.migrate()
    setup(store)
    setup(row_wise)
    for source, path in files:
        bulk_import(store, path, source=source, now=NOW, actor=ACTOR)
        with row_wise.write() as conn:
            imports.import_records(
                conn, path.name, path.read_bytes(), source=source, now=NOW, actor=ACTOR, after=AFTER_APPEND
            )
    mine, theirs = notices_and_outbox(store), notices_and_outbox(row_wise)
    # The same texts, stored once per template in bulk and whole row by row.
    assert kept_as(store) == {(False, True)}
    assert kept_as(row_wise) == {(True, False)}
    row_wise.dispose()
    assert len(mine[0]) > 20
    if city is example_city:
        assert "all:Q\x1f10" in {notice[0] for notice in mine[0]}
    assert any(delivery[1] == "email" for delivery in mine[1])
    assert mine[0] == theirs[0]
    assert mine[1] == theirs[1]
    assert bool(composed) == (not store.backend.single_writer)


def test_csv_lines_are_the_files_own_with_quoted_line_breaks_and_blank_lines(
    sqlite_store: Store, tmp_path: Path
) -> None:
    """A quoted field may span lines (\\n, \\r\\n or \\r) and blank lines are skipped: an error still
    names the line of the file, the very line the row-wise import names."""
    world = World(sqlite_store)
    person, _org = world.standard()
    header = "subject_id,behaviour,occurred_on,document_ref,amount,note\n"
    body = (
        f'{person},COURT.DEFAULT,2025-01-31,Q-1,,"two\nlines"\n'  # lines 2-3
        "\n"  # line 4
        f'{person},COURT.DEFAULT,2025-13-01,Q-2,,"a\r\nb\rc"\n'  # lines 5-7: bad date
        " , ,,,,\n"  # line 8: every field blank, skipped
        f"{person},NOPE.X,2025-01-31,Q-3,,\n"  # line 9: unknown behaviour
        f'{person},COURT.DEFAULT,2025-02-01,Q-1,"1,5",""\n'  # line 10: repeated reference, bad amount
    )
    path = tmp_path / "lines.csv"
    path.write_bytes((header + body).encode())
    with pytest.raises(BadInput) as caught:
        bulk_import(sqlite_store, path, source="court", now=NOW, actor="test")
    found = {(p.line, p.column) for p in caught.value.problems}
    assert found == {(5, "occurred_on"), (9, "behaviour"), (10, "document_ref"), (10, "amount")}
    assert "already appears on line 2" in caught.value.render()
    with sqlite_store.write() as conn, pytest.raises(BadInput) as row_wise:
        imports.import_records(
            conn, "lines.csv", path.read_bytes(), source="court", now=NOW, actor="test", after=AFTER_APPEND
        )
    assert {(p.line, p.column) for p in row_wise.value.problems} == found
    good = header + body.split("\n\n")[0] + "\n\n" + f"{person},COURT.DEFAULT,2025-01-30,Q-4,,\n"
    path.write_bytes(good.encode())
    result = bulk_import(sqlite_store, path, source="court", now=NOW, actor="test")
    assert (result.imported, result.lines) == (2, 2)
    with sqlite_store.read() as conn:
        assert ledger.history(conn, "court:Q-1").record.note == "two\nlines"


@pytest.mark.parametrize(
    ("bad_row", "found"),
    [
        ("{person},COURT.DEFAULT,2025-03-01,W-3,,,surplus", "7 fields, the header has 6"),
        ("{person},COURT.DEFAULT,2025-03-01,W-3", "4 fields, the header has 6"),
    ],
    ids=["too-many-fields", "too-few-fields"],
)
def test_a_row_with_the_wrong_number_of_fields_is_named_by_its_line(
    store: Store, people: list[str], tmp_path: Path, bad_row: str, found: str
) -> None:
    """Arrow's reader would reject the whole file quoting the row's text; the import names the
    row's line in the file (after a quoted line break, a blank line and a line of spaces, which the
    row-wise import skips but counts), as the row-wise import does, and writes nothing."""
    person = people[0]
    header = "subject_id,behaviour,occurred_on,document_ref,amount,note\n"
    body = (
        f'{person},COURT.DEFAULT,2025-01-31,W-1,,"two\r\nlines"\n'  # lines 2-3
        "\n"  # line 4
        "   \n"  # line 5: one blank field, skipped like a blank line
        f"{person},TRAFFIC.MINOR,2025-02-01,W-2,,\n"  # line 6
        + bad_row.format(person=person)
        + "\n"  # line 7
        + f"{person},COURT.DEFAULT,2025-03-02,W-4,,\n"  # line 8
        + f'{person},COURT.DEFAULT,2025-03-03,W-5,,"x",\n'  # line 9: 7 fields
    )
    path = tmp_path / "fields.csv"
    path.write_bytes((header + body).encode())
    before = counts(store), imported_files(store)
    with pytest.raises(BadInput) as caught:
        bulk_import(store, path, source="all", now=NOW, actor="test")
    assert [(p.line, p.why) for p in caught.value.problems] == [(7, found), (9, "7 fields, the header has 6")]
    assert f"line 7: {found}" in caught.value.render()
    assert (counts(store), imported_files(store)) == before
    with store.write() as conn, pytest.raises(BadInput) as row_wise:
        imports.import_records(
            conn, path.name, path.read_bytes(), source="all", now=NOW, actor="test", after=AFTER_APPEND
        )
    assert [(p.line, p.why) for p in row_wise.value.problems] == [(7, found), (9, "7 fields, the header has 6")]
    # Without the bad rows the same file imports, its lines counted the same way.
    good = header + "\n".join(body.split("\n")[:5]) + f"\n{person},COURT.DEFAULT,2025-13-01,W-6,,\n"
    path.write_bytes(good.encode())
    with pytest.raises(BadInput) as caught:
        bulk_import(store, path, source="all", now=NOW, actor="test")
    assert [(p.line, p.column) for p in caught.value.problems] == [(7, "occurred_on")]
    path.write_bytes((header + "\n".join(body.split("\n")[:5]) + "\n").encode())
    result = bulk_import(store, path, source="all", now=NOW, actor="test")
    assert (result.imported, result.lines) == (2, 2)


def imported_files(store: Store) -> int:
    with store.read() as conn:
        return int(conn.execute(select(func.count()).select_from(t.imports)).scalar_one())


def test_the_cli_shows_a_bulk_rows_problem_with_its_line(
    sqlite_store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """`records import` prints the problem with its line and exits 2, as for any other bad line."""
    from xinyong.interfaces import cli

    world = World(sqlite_store)
    person, _org = world.standard()
    path = tmp_path / "r.csv"
    path.write_text(
        "subject_id,behaviour,occurred_on,document_ref\n"
        f'{person},COURT.DEFAULT,2025-01-31,"A\n1"\n'
        f"{person},COURT.DEFAULT,2025-01-31,A-2,5\n",
        encoding="utf-8",
    )
    monkeypatch.setenv("XINYONG_NOW", "2026-03-02T12:00:00+08:00")
    monkeypatch.setattr("sys.argv", ["xinyong", "--db", sqlite_store.url, "records", "import", str(path)])
    monkeypatch.setattr("sys.argv", [*sys.argv, "--source", "court", "--bulk"])
    with pytest.raises(SystemExit) as exited:
        cli.main()
    assert exited.value.code == 2
    shown = capsys.readouterr().err
    assert "r.csv: 1 problem(s); nothing was imported" in shown
    assert "line 4: 5 fields, the header has 4" in shown


def test_a_small_file_into_a_large_store_is_checked_by_probing(
    store: Store, world: World, people: list[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Subjects and earlier records are looked up by key when the file is small beside the store
    (and read whole otherwise, as in the tests above): the same answers either way. A table smaller
    than the probes would cost, like the contacts here (none), is read whole."""
    world.subjects([(person_id(n), "person", f"人{n}") for n in range(50, 80)])
    first = write_csv(tmp_path / "all.csv", rows_for(people, 60))
    assert bulk_import(store, first, source="all", now=NOW, actor="t").imported == 60
    probed: list[tuple[str, bool]] = []
    read = store.backend.read_arrow

    def spy(conn: object, query: str, schema: pa.Schema, keys: pa.ChunkedArray | None = None) -> pa.Table:
        probed.append((query.split(" FROM ")[1].split()[0], keys is not None))
        return read(conn, query, schema, keys)  # type: ignore[arg-type]

    monkeypatch.setattr(store.backend, "read_arrow", spy)
    again = [*rows_for(people, 60)[:2], rows_for(people[:1], 1, prefix="NEW")[0]]
    result = bulk_import(store, write_csv(tmp_path / "again.csv", again), source="all", now=NOW, actor="t")
    assert (result.imported, result.already_present) == (1, 2)
    assert probed == [("subjects", True), ("contacts", False), ("records", True)]
    with store.write() as conn:  # many addresses: the file's subjects' are looked up by key
        for n in range(50, 80):
            notices.set_contact(conn, person_id(n), email=f"p{n}@example.invalid", lang="en", now=NOW)
        notices.set_contact(conn, people[0], email="first@example.invalid", lang="en", now=NOW)
    probed.clear()
    addressed = write_csv(tmp_path / "addressed.csv", rows_for(people[:1], 1, prefix="ADDRESSED"))
    assert bulk_import(store, addressed, source="all", now=NOW, actor="t").imported == 1
    assert probed == [("subjects", True), ("contacts", True), ("records", True)]
    with store.read() as conn:
        [latest] = notices.inbox(conn, people[0], limit=1)
        assert [d["address"] for d in notices.deliveries(conn, latest)] == [None, "first@example.invalid"]
    again[0]["amount"] = "1.00"
    again[2] = rows_for([person_id(40)], 1, prefix="NEWER")[0]
    with pytest.raises(BadInput) as caught:
        bulk_import(store, write_csv(tmp_path / "bad.csv", again), source="all", now=NOW, actor="t")
    assert {(p.line, p.column) for p in caught.value.problems} == {(2, "document_ref"), (4, "subject_id")}
    assert "is not registered" in caught.value.render()


def test_postgres_roles_that_may_not_skip_foreign_key_triggers_keep_them(pg_url: str, tmp_path: Path) -> None:
    """Only a role allowed to set session_replication_role skips the per-row foreign-key triggers
    (the import then checks and locks the parents itself); any other role imports as well, checked
    by the triggers."""
    import uuid

    from sqlalchemy.engine import make_url

    owner = Store(pg_url)
    owner.migrate()
    world = World(owner)
    person, org = world.standard()
    world.source("all", ["COURT.DEFAULT", "TRAFFIC.MINOR", "CHARITY.BLOOD"])
    clerk = f"clerk_{uuid.uuid4().hex[:8]}"
    with owner.write() as conn:
        conn.exec_driver_sql(f"CREATE ROLE {clerk} LOGIN")
        conn.exec_driver_sql(f"GRANT ALL ON ALL TABLES IN SCHEMA public TO {clerk}")
        conn.exec_driver_sql(f"GRANT ALL ON ALL SEQUENCES IN SCHEMA public TO {clerk}")
    store = Store(make_url(pg_url).set(username=clerk).render_as_string(hide_password=False))
    for role, expected in ((owner, ("replica", True)), (store, ("origin", False))):
        with role.write() as conn:
            role.backend.prepare_bulk_write(conn)
            setting = conn.exec_driver_sql("SHOW session_replication_role").scalar()
            locks = "SELECT count(*) FROM pg_locks WHERE relation = 'subjects'::regclass AND mode = 'ShareLock'"
            assert (setting, conn.exec_driver_sql(locks).scalar() == 1) == expected
    path = write_csv(tmp_path / "r.csv", rows_for([person, org], 9))
    assert bulk_import(store, path, source="all", now=NOW, actor="t").imported == 9
    with store.read() as conn:
        assert notices.count(conn) == 6  # the blood donations are good news
    store.dispose()
    owner.dispose()


DAY_MAX, EPOCH = dt.date(9999, 12, 31), dt.date(1970, 1, 1)


def test_binary_copy_into_postgres_keeps_every_value(pg_url: str) -> None:
    """The column-wise encoder of PostgreSQL's binary COPY format: NULLs apart from empty text,
    amounts at the edges of NUMERIC(18, 2), dates before and after 2000, timestamps to the
    microsecond, text PostgreSQL would have to unescape from CSV; and a type it cannot encode
    (a decimal of more digits) goes the CSV way with the same result."""
    store = Store(pg_url)
    store.migrate()
    amounts = ["0.00", "0.05", "-1.50", "9999999999999999.99", "-9999999999999999.99", "1000.5", None]
    table = pa.table(
        {
            "n": pa.array([1, -2, 2**40, 0, 7, 9, 10], pa.int64()),
            "small": pa.array([1, -2, 2**31 - 1, 0, None, 3, 4], pa.int64()),
            "label": pa.array(["", None, 'a "b", c\\d\ne', "文书🙂", "\r", "x" * 5000, "z"], pa.string()),
            "day": pa.array(
                [
                    dt.date(1999, 12, 31),
                    dt.date(2000, 1, 1),
                    dt.date(2026, 3, 2),
                    None,
                    dt.date(1, 1, 1),
                    DAY_MAX,
                    EPOCH,
                ],
                pa.date32(),
            ),
            "amount": pa.array([None if a is None else Decimal(a) for a in amounts], pa.decimal128(18, 2)),
        }
    )
    constants = {"at": "2026-03-02 01:02:03.456789", "who": "bulk 'importer'"}
    with store.write() as conn:
        conn.exec_driver_sql(
            "CREATE TEMP TABLE b (n bigint, small integer, label text, day date, amount numeric(18, 2), "
            "at timestamp, who varchar(64))"
        )
        conn.exec_driver_sql("CREATE TEMP TABLE c (LIKE b)")
        conn.exec_driver_sql("ALTER TABLE c ALTER COLUMN amount TYPE numeric(30, 2)")
        store.backend.load_arrow(conn, "b", table.slice(0, 0), constants)  # nothing to copy: nothing copied
        store.backend.load_arrow(conn, "b", table, constants)
        store.backend.load_arrow(
            conn, "c", table.set_column(4, "amount", table.column("amount").cast(pa.decimal128(30, 2))), constants
        )
        binary = conn.exec_driver_sql("SELECT * FROM b ORDER BY n").all()
        csv_way = conn.exec_driver_sql("SELECT * FROM c ORDER BY n").all()
        assert postgres_copy.encodable(pa.decimal128(30, 2), "numeric") is False
    expected = sorted(
        zip(
            table.column("n").to_pylist(),
            table.column("small").to_pylist(),
            table.column("label").to_pylist(),
            table.column("day").to_pylist(),
            [None if a is None else Decimal(a).quantize(Decimal("0.01")) for a in amounts],
            [dt.datetime(2026, 3, 2, 1, 2, 3, 456789)] * 7,
            ["bulk 'importer'"] * 7,
            strict=True,
        )
    )
    assert [tuple(row) for row in binary] == expected
    assert [tuple(row) for row in csv_way] == expected
    shown = {str(row.amount) for row in binary}  # the display scale is the column's
    assert shown == {"0.00", "0.05", "-1.50", "9999999999999999.99", "-9999999999999999.99", "1000.50", "None"}
    store.dispose()


def test_postgres_is_sent_records_sorted_by_reference_with_ids_in_line_order(
    pg_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Records reach PostgreSQL sorted by document reference, over several batches (their unique
    index is then filled leaf by leaf); their ids still follow the file's lines."""
    store = Store(pg_url)
    store.migrate()
    world = World(store)
    person, _org = world.standard()
    world.source("all", ["COURT.DEFAULT", "TRAFFIC.MINOR", "CHARITY.BLOOD"])
    monkeypatch.setattr(postgres, "_COPY_BATCH", 3)
    refs = ["R-9", "R-3", "R-7", "R-1", "R-8", "R-2", "R-6", "R-4", "R-5", "R-0"]
    rows = [dict(row, document_ref=ref) for row, ref in zip(rows_for([person], 10), refs, strict=True)]
    assert bulk_import(store, write_csv(tmp_path / "r.csv", rows), source="all", now=NOW, actor="t").imported
    with store.read() as conn:
        by_id = conn.exec_driver_sql("SELECT document_ref FROM records ORDER BY id").scalars().all()
        as_stored = conn.exec_driver_sql("SELECT document_ref FROM records ORDER BY ctid").scalars().all()
    assert by_id == refs
    assert as_stored == sorted(refs)
    store.dispose()


def test_the_notice_migrations_go_down_and_up_keeping_every_text(
    store: Store, world: World, people: list[str], tmp_path: Path
) -> None:
    """Down to 0003, templated notices get their facts text whole again and every notice its portal
    row (delivered when it was written); back up, the portal rows go and every text reads the same."""
    from alembic import command
    from alembic.config import Config
    from sqlalchemy import text

    from xinyong.storage.store import MIGRATIONS

    path = write_parquet(tmp_path / "r.parquet", rows_for(people, 30))
    bulk_import(store, path, source="all", now=NOW, actor=ACTOR)
    world.record(people[0], "COURT.DEFAULT", "2026-01-05", NOW)
    assert kept_as(store) == {(False, True), (True, False)}

    def texts(conn: Connection) -> dict[int, str]:
        return {n.id: t.facts_text(n.facts, n.parts, n.fill) for n in conn.execute(notices.NOTICE_ROWS)}

    with store.read() as conn:
        before = texts(conn)
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    with store.migrating() as conn:
        config.attributes["connection"] = conn
        command.downgrade(config, "0003")
        assert dict(conn.execute(text("SELECT id, facts FROM notices")).all()) == before
        portal = conn.execute(text("SELECT notice_id, state FROM outbox WHERE channel = 'portal'")).all()
        assert sorted(portal) == [(n, "delivered") for n in sorted(before)]
        command.upgrade(config, "head")
        assert conn.execute(text("SELECT count(*) FROM outbox WHERE channel = 'portal'")).scalar() == 0
        # A notice keeps its facts one way or the other, never neither.
        textless = t.notices.insert().values(
            key="x", subject_id=people[0], record_id=min(before), kind="recorded", created_at=NOW.replace(tzinfo=None)
        )
        with pytest.raises(IntegrityError), conn.begin_nested():
            conn.execute(textless)
    with store.read() as conn:
        assert texts(conn) == before
    assert kept_as(store) == {(True, False)}


def waits_for_its_turn(store: Store, waiting: int = 1, seconds: float = 20) -> bool:
    """Whether `waiting` transactions come to wait for an advisory lock (a source's turn) within
    `seconds`."""
    import time

    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        with store.read() as conn:
            query = "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted"
            if (conn.exec_driver_sql(query).scalar() or 0) >= waiting:
                return True
        time.sleep(0.05)
    return False


def test_imports_of_other_sources_write_side_by_side_and_of_one_source_take_turns(
    pg_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """PostgreSQL: while one import is held after writing everything, an import of another source
    runs to the end; imports of the same source, bulk and row by row, wait for it, then find its
    references present. Ids, notices and e-mail rows stay exact with both writing at once."""
    import threading
    from concurrent.futures import ThreadPoolExecutor

    store = Store(pg_url)
    store.migrate()
    world = World(store)
    world.standard()
    for source in ("all", "other"):
        world.source(source, ["COURT.DEFAULT", "TRAFFIC.MINOR", "CHARITY.BLOOD"])
    people = [person_id(n) for n in range(2, 12)]
    world.subjects([(p, "person", f"人{n}") for n, p in enumerate(people)])
    with store.write() as conn:
        notices.set_contact(conn, people[0], email="p0@example.org", lang=None, now=NOW)
    first = write_parquet(tmp_path / "a.parquet", rows_for(people, 30, "A"))
    second = write_parquet(tmp_path / "b.parquet", rows_for(people, 30, "B"))
    written, release = threading.Event(), threading.Event()
    write_fresh = notices.write_fresh

    def held(conn: Connection, *args: Any, **kwargs: Any) -> int:
        count = write_fresh(conn, *args, **kwargs)
        if kwargs.get("source") == "all" and not release.is_set():
            written.set()
            assert release.wait(20), "the other import never finished"
        return int(count)

    monkeypatch.setattr(notices, "write_fresh", held)
    data = write_csv(tmp_path / "a.csv", rows_for(people, 30, "A")).read_bytes()

    def row_wise() -> ImportResult:
        with store.write() as conn:
            return imports.import_records(conn, "a.csv", data, source="all", now=NOW, actor="test", after=AFTER_APPEND)

    with ThreadPoolExecutor(max_workers=3) as pool:
        waiting = pool.submit(bulk_import, store, first, source="all", now=NOW, actor="test")
        assert written.wait(20)
        assert bulk_import(store, second, source="other", now=NOW, actor="test").imported == 30
        again = pool.submit(bulk_import, store, first, source="all", now=NOW, actor="test")
        assert waits_for_its_turn(store), "the second import of the source did not wait"
        by_rows = pool.submit(row_wise)
        assert waits_for_its_turn(store, 2), "the row-wise import of the source did not wait"
        release.set()
        assert waiting.result(60).imported == 30
        results = [again.result(60), by_rows.result(60)]
    assert [(r.imported, r.already_present) for r in results] == [(0, 30), (0, 30)]
    with store.read() as conn:
        ids = [row.id for row in conn.execute(select(t.records.c.id))]
        told = notices.inbox(conn)
        emails = [row.notice_id for row in conn.execute(select(t.outbox.c.notice_id))]
    assert len(ids) == len(set(ids)) == 60
    assert len(told) == len({n.record_id for n in told}) == 40  # COURT.DEFAULT and TRAFFIC.MINOR
    assert sorted(emails) == sorted(n.id for n in told if n.subject_id == people[0])


# --- one reading of every value ----------------------------------------------------------------

# Texts that rules.values accepts, refuses, or where the two paths once differed (a third decimal
# rounded in bulk, 1_000 read by DuckDB, a lower-case x, a day before 1900, 1e16 crashing the cast).
AMOUNTS = st.one_of(
    st.decimals(min_value=0, max_value=Decimal("9999999999999999.99"), places=2).map(str),
    st.sampled_from(["", " 12.50 ", "1.005", "2.675", "1e-3", "1_000", "1e16", "1E+2", "-0", "-5", "NaN", "１２", "x"]),
)
DAYS = st.one_of(
    st.dates(dt.date(1890, 1, 1), dt.date(2030, 12, 31)).map(str),
    st.sampled_from(["", "2026-02-30", "20260101", "2026-1-5", " 2026-01-05 ", "1899-12-31", "2199-12-31"]),
)


@pytest.fixture(scope="module")
def alike(tmp_path_factory: pytest.TempPathFactory) -> Store:
    """One store for every example: DESIGN.md's example scheme and a person whose id ends in X."""
    store = Store(f"sqlite:///{tmp_path_factory.mktemp('alike') / 'alike.db'}")
    store.migrate()
    world = World(store)
    world.standard()
    world.subjects([(person_id(7), "person", "李四")])
    return store


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(amount=AMOUNTS, day=DAYS, spaced=st.booleans(), lower=st.booleans())
def test_both_paths_read_every_value_alike(
    alike: Store, tmp_path: Path, amount: str, day: str, spaced: bool, lower: bool
) -> None:
    """The same line imported row by row and in bulk (under two references): the same verdict,
    the same reasons for the same columns, and on acceptance the same stored values — every value
    is read by `rules.values` on both paths."""
    person = person_id(7)
    assert person.endswith("X")
    written = person.lower() if lower else person
    written = f" {written[:6]} {written[6:]} " if spaced else written
    verdicts = []
    for way in ("rows", "bulk"):
        ref = f"{way}-{uuid.uuid4().hex}"
        line = {
            "subject_id": written,
            "behaviour": "COURT.DEFAULT",
            "occurred_on": day,
            "document_ref": ref,
            "note": "",
        }
        path = write_csv(tmp_path / f"{ref}.csv", [{**line, "amount": amount}])
        try:
            if way == "bulk":
                bulk_import(alike, path, source="court", now=NOW, actor="test")
            else:
                with alike.write() as conn:
                    imports.import_records(
                        conn, path.name, path.read_bytes(), source="court", now=NOW, actor="test", after=AFTER_APPEND
                    )
            with alike.read() as conn:
                row = conn.execute(select(t.records).where(t.records.c.document_ref == ref)).one()
            verdicts.append(("stored", row.subject_id, row.occurred_on, row.amount))
        except BadInput as exc:
            verdicts.append(("refused", sorted((p.column or "", p.why) for p in exc.problems)))
    assert verdicts[0] == verdicts[1]
