"""Batch state: DuckDB, Spark and the online per-subject path agree on every subject and scheme.

The fixture is a small synthetic city replayed through the library (the demo's own replay: monthly
imports, objections, decisions, fulfilled judgments, consent), then a second round of events that
the batch must honour exactly: revocations, corrections, declined positive records, ended records,
objections holding fresh records, withdrawn consent, and a new version of a scheme in force from a
later day. Each case is a day D and a knowledge time K.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path

import pyarrow as pa
import pytest

from helpers import World, at, person_id
from xinyong import batch, consent, demo, imports, ledger, objections, registry
from xinyong.clock import FixedClock
from xinyong.engine import State
from xinyong.schemes import parse_scheme
from xinyong.state import population
from xinyong.store import Store

NOW = dt.datetime(2026, 6, 30, 1, tzinfo=dt.UTC)
T1 = NOW + dt.timedelta(hours=2)  # second round of events
T2 = NOW + dt.timedelta(days=3)  # some objections decided
LATER = NOW + dt.timedelta(days=40)

Key = tuple[str, str]
Value = tuple[int, str | None, tuple[str, ...], tuple[str, ...]]

CASES = [
    (dt.date(2026, 6, 1), NOW),
    (dt.date(2026, 7, 15), LATER),
    (dt.date(2026, 7, 15), T1 - dt.timedelta(seconds=1)),
    (dt.date(2025, 1, 1), LATER),
]


def second_round(store: Store) -> None:
    """Events of every kind after the replay, through the library's own doors."""
    with store.write() as conn:
        rows = list(conn.exec_driver_sql("SELECT id, source_id, behaviour, subject_id FROM records ORDER BY id"))
        negatives = [r for r in rows if r[1] in {"court", "tax", "transport"}]
        positives = [r for r in rows if r[2].startswith("CIVIL.")]
        for r in negatives[5:200:20]:
            ledger.revoke(conn, r[0], now=T1, actor="test", reason="wrong person")
        for r in negatives[7:200:25]:
            if r[1] == "transport":
                ledger.correct(conn, r[0], now=T1, actor="test", reason="typo", behaviour="TRAFFIC.DRUNK_DRIVING")
            else:
                ledger.correct(conn, r[0], now=T1, actor="test", reason="typo", occurred_on=dt.date(2026, 3, 3))
        for r in positives[3:100:9]:
            ledger.decline(conn, r[0], now=T1, actor="test")
        for r in negatives[11:300:30]:
            ledger.end(conn, r[0], on=dt.date(2026, 7, 1), reason="fulfilled", now=T1, actor="test")
        kinds = dict(conn.exec_driver_sql("SELECT id, kind FROM subjects").fetchall())
        persons = sorted({r[3] for r in rows if kinds[r[3]] == "person"})
        for subject in persons[::10]:
            consent.record_consent(conn, subject, "city-points", False, T1, "test")
        # Fresh negative records, some held by an objection filed inside their notice period.
        fresh = persons[1:40:3]
        body = "subject_id,behaviour,occurred_on,document_ref\n" + "".join(
            f"{s},COURT.DEFAULT,2026-06-20,FRESH-{i}\n" for i, s in enumerate(fresh)
        )
        imports.import_records(conn, "fresh.csv", body.encode(), source="court", now=T1, actor="test")
        for i in range(0, len(fresh), 2):
            record_id = ledger.resolve_record_id(conn, f"court:FRESH-{i}")
            filed = objections.file(conn, record_id, reason="paid", now=T1 + dt.timedelta(hours=1), actor="t")
            if i % 4 == 0:
                objections.decide(conn, filed.id, outcome="upheld", reason="checked", now=T2, actor="t")
        text = (demo.schemes_dir() / "city-points.yaml").read_text(encoding="utf-8")
        text = text.replace('version: "2026.1"', 'version: "2026.2"\neffective_from: 2026-07-01')
        text = text.replace("cap: 30", "cap: 15").replace("min: 1050", "min: 1040")
        ledger.load_scheme(conn, parse_scheme(text), text, T1)


@pytest.fixture(scope="session")
def city(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Store]:
    folder = tmp_path_factory.mktemp("city")
    url = f"sqlite:///{folder / 'xinyong-demo.db'}"
    demo.run(url, FixedClock(NOW), persons=300, organisations=60, seed=11, console=None)
    store = Store(url)
    second_round(store)
    yield store
    store.dispose()


@pytest.fixture(scope="session")
def inputs(city: Store, tmp_path_factory: pytest.TempPathFactory) -> batch.Inputs:
    return batch.export_inputs(city, tmp_path_factory.mktemp("inputs"))


def online(store: Store, day: dt.date, known: dt.datetime) -> dict[Key, Value]:
    found: dict[Key, Value] = {}
    with store.read() as conn:
        schemes = registry.scheme_ids(conn)
        for reader in population(conn, day, known):
            for scheme in schemes:
                state = reader.state(scheme, day)
                if isinstance(state, State):
                    found[(scheme, reader.subject.id)] = (state.score, state.grade, state.lists, state.measures)
    return found


def from_table(table: pa.Table) -> dict[Key, Value]:
    return {
        (r["scheme"], r["subject_id"]): (r["score"], r["grade"], tuple(r["lists"]), tuple(r["measures"]))
        for r in table.to_pylist()
    }


def differences(want: dict[Key, Value], got: dict[Key, Value]) -> list[tuple[Key, Value | None, Value | None]]:
    return sorted((k, want.get(k), got.get(k)) for k in want.keys() | got.keys() if want.get(k) != got.get(k))


def test_the_fixture_has_what_the_agreement_needs(city: Store) -> None:
    with city.read() as conn:
        kinds = dict(conn.exec_driver_sql("SELECT kind, count(*) FROM record_events GROUP BY kind").fetchall())
        versions = [(v.id, v.version) for v in registry.scheme_versions(conn)]
    for kind in ("revoked", "corrected", "declined", "ended", "disputed", "decided"):
        assert kinds.get(kind, 0) > 0, kind
    assert ("city-points", "2026.2") in versions
    states = online(city, *CASES[1])
    assert {s for s, _ in states} == {"city-points", "court-defaulters", "tax-credit"}
    assert any(v[3] for v in states.values()), "some measure must apply somewhere"
    assert any("no-procurement" in v[3] for (s, _), v in states.items() if s == "tax-credit")


@pytest.mark.parametrize(("day", "known"), CASES)
def test_duckdb_agrees_with_the_online_path(
    city: Store, inputs: batch.Inputs, day: dt.date, known: dt.datetime
) -> None:
    want = online(city, day, known)
    got = from_table(batch.DuckDBEngine().table(batch.build_query(inputs.versions(), day, known), inputs))
    assert len(want) > 300
    assert differences(want, got) == []


@pytest.mark.filterwarnings("ignore::FutureWarning")
def test_spark_agrees_with_the_online_path_and_duckdb(city: Store, inputs: batch.Inputs, tmp_path: Path) -> None:
    """One test, so that one xdist worker starts one local Spark session for all of it."""
    # Tiny data: code generation and adaptive planning cost more than they save here.
    quick = {
        "spark.sql.shuffle.partitions": "1",
        "spark.sql.adaptive.enabled": "false",
        "spark.sql.codegen.wholeStage": "false",
        "spark.sql.codegen.factoryMode": "NO_CODEGEN",
    }
    session = batch.spark_session("local[2]", "xinyong-tests", **quick)
    engine = batch.SparkEngine(session)
    try:
        # The richest case (every kind of event, a new scheme version) through the file Spark
        # writes, and knowledge from before the second round through a table: two Spark jobs.
        day, known = CASES[1]
        engine.write(batch.build_query(inputs.versions(), day, known), inputs, tmp_path / "state.parquet")
        assert differences(online(city, day, known), from_table(batch.read_state(tmp_path / "state.parquet"))) == []
        day, known = CASES[2]
        table = engine.table(batch.build_query(inputs.versions(), day, known), inputs)
        assert differences(online(city, day, known), from_table(table)) == []
    finally:
        session.stop()


def test_a_deliberate_difference_fails_the_agreement(city: Store, inputs: batch.Inputs) -> None:
    day, known = CASES[1]
    want = online(city, day, known)
    got = from_table(batch.DuckDBEngine().table(batch.build_query(inputs.versions(), day, known), inputs))
    key = next(iter(sorted(got)))
    score, grade, lists, measures = got[key]
    tampered = dict(got) | {key: (score + 1, grade, lists, measures)}
    assert differences(want, tampered) == [(key, want[key], tampered[key])]
    # An engine that read one cap differently disagrees too.
    versions = inputs.versions()
    changed = []
    for version in versions:
        scheme = version.scheme
        if scheme.scheme == "city-points":
            behaviours = [b.model_copy(update={"cap": 5}) if b.cap else b for b in scheme.behaviours]
            scheme = scheme.model_copy(update={"behaviours": behaviours})
            scheme.__dict__.pop("behaviour_by_code", None)
        changed.append(registry.SchemeVersion(scheme, version.loaded_at, version.digest))
    other = from_table(batch.DuckDBEngine().table(batch.build_query(changed, day, known), inputs))
    assert differences(want, other) != []


def test_the_query_is_written_once_and_transpiled(inputs: batch.Inputs) -> None:
    query = batch.build_query(inputs.versions(), *CASES[1], schemes=["tax-credit"])
    duck, spark = query.sql("duckdb"), query.sql("spark")
    assert "LIST_FILTER" in duck.upper()
    assert "FILTER(ARRAY(" in spark.upper()
    assert query.versions == {"tax-credit": "2026.1"}
    # The cross-scheme measure pulls in the court list's chain but yields no court rows.
    assert "court-defaulters" in duck
    table = batch.DuckDBEngine().table(query, inputs)
    assert set(table.column("scheme").to_pylist()) == {"tax-credit"}
    with pytest.raises(Exception, match="not loaded"):
        batch.build_query(inputs.versions(), *CASES[1], schemes=["nope"])


def test_export_from_either_backend_agrees(world: World, store: Store, tmp_path: Path) -> None:
    person, org = world.standard()
    for i in range(4):
        world.record(person, "TRAFFIC.MINOR", f"2026-0{i + 1}-10", at(f"2026-0{i + 1}-12"))
    world.record(person, "CHARITY.BLOOD", "2026-02-01", at("2026-02-02"))
    court = world.record(org, "COURT.DEFAULT", "2026-01-05", at("2026-01-06"))
    world.object(court, at("2026-01-07"))
    world.record(person, "COURT.DEFAULT", "2026-02-05", at("2026-02-06"))
    inputs = batch.export_inputs(store, tmp_path / "in")
    for day, known in [(dt.date(2026, 4, 20), at("2026-05-01")), (dt.date(2026, 2, 20), at("2026-02-10"))]:
        want = online(store, day, known)
        got = from_table(batch.DuckDBEngine().table(batch.build_query(inputs.versions(), day, known), inputs))
        assert want
        assert differences(want, got) == []


def test_serving_state_is_refreshed_and_never_stale(world: World, sqlite_store: Store, tmp_path: Path) -> None:
    world = World(sqlite_store)
    person, _org = world.standard()
    other = person_id(7)
    world.subjects([(other, "person", "李四")])
    world.consent(other, True, "2020-01-03")
    world.record(person, "COURT.DEFAULT", "2026-01-05", at("2026-01-06"))
    day, known = dt.date(2026, 3, 1), at("2026-03-01")
    result = batch.run(sqlite_store, batch.DuckDBEngine(), as_of=day, known_at=known, out=tmp_path / "s.parquet")
    assert result.rows == result.served == 3  # the person, the other person and the organisation
    with sqlite_store.read() as conn:
        served = batch.served_state(conn, person, "demo-city", day, at("2026-03-02"))
        assert served is not None
        assert served.lists == ("defaulters",)
        assert served.measures == ("no-flights",)
        assert batch.served_state(conn, person, "demo-city", dt.date(2026, 3, 2), at("2026-03-02")) is None
        assert batch.served_state(conn, person, "demo-city", day, at("2026-02-01")) is None
    # A new record for the person makes their served row stale at once; the other stays served.
    world.record(person, "TRAFFIC.MINOR", "2026-02-20", at("2026-03-02", 9))
    with sqlite_store.read() as conn:
        assert batch.served_state(conn, person, "demo-city", day, at("2026-03-03")) is None
        assert batch.served_state(conn, other, "demo-city", day, at("2026-03-03")) is not None
    world.consent(other, False, "2026-03-02")
    with sqlite_store.read() as conn:
        assert batch.served_state(conn, other, "demo-city", day, at("2026-03-03")) is None
    # An event's subject is refreshed on the online path; then it is served again, and right.
    with sqlite_store.write() as conn:
        assert batch.refresh_subject(conn, person, day, at("2026-03-03")) == 1
        # Consent was withdrawn on 2 March: on 1 March the other person still has state.
        assert batch.refresh_subject(conn, other, day, at("2026-03-03")) == 1
        assert batch.refresh_subject(conn, other, dt.date(2026, 3, 5), at("2026-03-03")) == 0
    with sqlite_store.read() as conn:
        served = batch.served_state(conn, person, "demo-city", day, at("2026-03-04"))
        assert served is not None
        assert served.score == online(sqlite_store, day, at("2026-03-04"))[("demo-city", person)][0]
        assert batch.served_state(conn, other, "demo-city", day, at("2026-03-04")) is None  # that row was dropped


def test_the_state_command(sqlite_store: Store, tmp_path: Path) -> None:
    import json

    from typer.testing import CliRunner

    from xinyong.cli import app

    world = World(sqlite_store)
    person, _org = world.standard()
    world.record(person, "COURT.DEFAULT", "2026-01-05", at("2026-01-06"))
    out = tmp_path / "state.parquet"
    args = ["--db", sqlite_store.url, "state", "--as-of", "2026-03-01", "--out", str(out), "--json"]
    result = CliRunner().invoke(app, args, env={"XINYONG_NOW": "2026-03-01T12:00:00+08:00"})
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["rows"] == 2
    assert data["engine"] == "duckdb"
    assert data["versions"] == {"demo-city": "2026.1"}
    assert from_table(batch.read_state(out))[("demo-city", person)][2] == ("defaulters",)
    bad = CliRunner().invoke(app, [*args[:-1], "--engine", "oracle", "--json"])
    assert bad.exit_code != 0
