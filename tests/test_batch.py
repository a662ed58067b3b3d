"""Batch state: DuckDB, Spark and the online per-subject path agree on every subject and scheme.

The fixture is a small synthetic city replayed through the library (the demo's own replay: monthly
imports, objections, decisions, fulfilled judgments, consent), then a second round of events that
the batch must honour exactly: revocations, corrections, declined positive records, ended records,
objections holding fresh records, withdrawn consent, and a new version of a scheme in force from a
later day. Each case is a day D and a knowledge time K.

Random worlds (Hypothesis) then reach what a replayed city rarely does: caps and clamping on both
sides, consent events recorded at the same instant, around the end of D in the scheme's zone or
after K, cross-scheme measures both ways, scheme versions not yet in force or not yet known, and
subjects without records. Their online answer is the online path's own StateReader, fed the
world's rows instead of a store.
"""

from __future__ import annotations

import datetime as dt
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import Connection

from helpers import World, at, person_id
from xinyong.demo import city as demo
from xinyong.derived import batch, serving
from xinyong.derived.state import StateReader, population
from xinyong.due_process import objections
from xinyong.due_process.after_append import AFTER_APPEND
from xinyong.ledger import consent, imports, registry
from xinyong.ledger import records as ledger
from xinyong.ledger.consent import GRANTED, WITHDRAWN, ConsentEvent
from xinyong.rules.clock import FixedClock
from xinyong.rules.effects import Effect
from xinyong.rules.engine import State
from xinyong.rules.schemes import Scheme, parse_scheme
from xinyong.storage.store import Store

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
            ledger.revoke(conn, r[0], now=T1, actor="test", reason="wrong person", after=AFTER_APPEND)
        for r in negatives[7:200:25]:
            if r[1] == "transport":
                ledger.correct(
                    conn,
                    r[0],
                    now=T1,
                    actor="test",
                    reason="typo",
                    behaviour="TRAFFIC.DRUNK_DRIVING",
                    after=AFTER_APPEND,
                )
            else:
                ledger.correct(
                    conn, r[0], now=T1, actor="test", reason="typo", occurred_on=dt.date(2026, 3, 3), after=AFTER_APPEND
                )
        for r in positives[3:100:9]:
            ledger.decline(conn, r[0], now=T1, actor="test", after=AFTER_APPEND)
        for r in negatives[11:300:30]:
            ledger.end(conn, r[0], on=dt.date(2026, 7, 1), reason="fulfilled", now=T1, actor="test", after=AFTER_APPEND)
        kinds = dict(conn.exec_driver_sql("SELECT id, kind FROM subjects").fetchall())
        persons = sorted({r[3] for r in rows if kinds[r[3]] == "person"})
        for subject in persons[::10]:
            consent.record_consent(conn, subject, "city-points", False, T1, "test", after=AFTER_APPEND)
        # Fresh negative records, some held by an objection filed inside their notice period.
        fresh = persons[1:40:3]
        body = "subject_id,behaviour,occurred_on,document_ref\n" + "".join(
            f"{s},COURT.DEFAULT,2026-06-20,FRESH-{i}\n" for i, s in enumerate(fresh)
        )
        imports.import_records(
            conn, "fresh.csv", body.encode(), source="court", now=T1, actor="test", after=AFTER_APPEND
        )
        for i in range(0, len(fresh), 2):
            record_id = ledger.resolve_record_id(conn, f"court:FRESH-{i}")
            filed = objections.file(conn, record_id, reason="paid", now=T1 + dt.timedelta(hours=1), actor="t")
            if i % 4 == 0:
                objections.decide(conn, filed.id, outcome="upheld", reason="checked", now=T2, actor="t")
        text = (demo.schemes_dir() / "city-points.yaml").read_text(encoding="utf-8")
        text = text.replace('version: "2026.1"', 'version: "2026.2"\neffective_from: 2026-07-01')
        text = text.replace("cap: 30", "cap: 15").replace("min: 1050", "min: 1040")
        registry.publish_scheme(conn, parse_scheme(text), text, T1, after=AFTER_APPEND)


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
        # Every edge of the query (consent ties, clamps, caps, cross-scheme measures) on Spark too.
        world = edge_world()
        edges = write_world(world, tmp_path / "edges")
        table = engine.table(batch.build_query(edges.versions(), W_DAY, W_KNOWN), edges)
        assert differences(online_world(world, W_DAY, W_KNOWN), from_table(table)) == []
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
    everything = batch.build_query(inputs.versions(), *CASES[1])
    duck, spark = everything.sql("duckdb").upper(), everything.sql("spark").upper()
    # The latest consent event: (recorded_at, id) as one DECIMAL(38, 0) on both engines (Spark has
    # no HUGEINT, which SQLGlot would write as INT128).
    assert "CAST(RECORDED_AT AS DECIMAL(38, 0)) * 18446744073709551616 + ID" in duck
    assert "CAST(RECORDED_AT AS DECIMAL(38, 0)) * 18446744073709551616 + ID" in spark
    assert "INT128" not in spark
    query = batch.build_query(inputs.versions(), *CASES[1], schemes=["tax-credit"])
    duck = query.sql("duckdb")
    assert query.versions == {"tax-credit": "2026.1"}
    # The cross-scheme measure pulls in the court list's chain but yields no court rows.
    assert "court-defaulters" in duck
    table = batch.DuckDBEngine().table(query, inputs)
    assert set(table.column("scheme").to_pylist()) == {"tax-credit"}
    with pytest.raises(Exception, match="not loaded"):
        batch.build_query(inputs.versions(), *CASES[1], schemes=["nope"])


# --- random worlds ---------------------------------------------------------------------------------

W_DAY = dt.date(2026, 3, 1)
W_KNOWN = dt.datetime(2026, 3, 2, 3, tzinfo=dt.UTC)  # after the end of D in Shanghai (16:00 UTC on D)
LOADED = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
CODES = ("X.ONE", "X.TWO", "X.THREE")
# Days between occurred_on and D, often on a count rule's window edge (P10D, P1M and P1Y before D).
AGES = st.sampled_from([0, 1, 9, 10, 11, 27, 28, 29, 364, 365, 366]) | st.integers(min_value=0, max_value=400)
EFFECTIVE = (W_DAY - dt.timedelta(days=5), W_DAY, W_DAY + dt.timedelta(days=1))  # a second version's first day
# Few distinct instants, so that one person's consent events often share one.
CONSENT_AT = (
    W_KNOWN - dt.timedelta(days=3),
    dt.datetime(2026, 3, 1, 16, tzinfo=dt.UTC) - dt.timedelta(microseconds=1),  # last instant of D in Shanghai
    dt.datetime(2026, 3, 1, 16, tzinfo=dt.UTC),
    W_KNOWN,
    W_KNOWN + dt.timedelta(microseconds=1),
)


@dataclass(frozen=True)
class WorldData:
    versions: list[registry.SchemeVersion]
    subjects: list[tuple[str, str]]
    effects: list[Effect]
    consent: list[tuple[int, str, str, str, dt.datetime]]  # id, subject, scheme, kind, recorded_at


def scheme_document(name: str, version: str, **fields: Any) -> dict[str, Any]:
    """A valid scheme document over CODES; `fields` override or add any key."""
    behaviours = [
        {"code": code, "title": code, "points": -10, "validity": "P1Y", "legal_basis": "test"} for code in CODES
    ]
    return {
        "scheme": name,
        "version": version,
        "title": name,
        "jurisdiction": "000000",
        "applies_to": ["person", "organisation"],
        "behaviours": behaviours,
    } | fields


def version_of(document: dict[str, Any], loaded_at: dt.datetime = LOADED) -> registry.SchemeVersion:
    scheme = Scheme.model_validate({k: v for k, v in document.items() if v is not None})
    return registry.SchemeVersion(scheme, loaded_at, scheme.digest())


def either_or_both(one: st.SearchStrategy[dict[str, Any]]) -> st.SearchStrategy[dict[str, Any]]:
    """A rule, or `all` or `any` of two such rules."""
    pair = st.builds(lambda key, a, b: {key: [a, b]}, st.sampled_from(["all", "any"]), one, one)
    return one | pair


def grade_in(grades: list[str]) -> list[st.SearchStrategy[dict[str, Any]]]:
    subsets = st.lists(st.sampled_from(grades), min_size=1, max_size=2, unique=True)
    return [subsets.map(lambda g: {"grade_in": g})] if grades else []


def list_rules(grades: list[str]) -> st.SearchStrategy[dict[str, Any]]:
    codes = st.lists(st.sampled_from(CODES), min_size=1, max_size=2, unique=True)
    count = st.builds(
        lambda c, n, w: {"count": {"codes": c, "at_least": n, "within": w}},
        codes,
        st.integers(min_value=1, max_value=3),
        st.sampled_from(["P10D", "P1M", "P1Y"]),
    )
    return either_or_both(st.one_of([codes.map(lambda c: {"any_of": c}), count, *grade_in(grades)]))


def measure_rules(lists: int, grades: list[str], other: str) -> st.SearchStrategy[dict[str, Any]]:
    """Own lists, the other scheme's (which may not have that list), and grades."""
    simple = [st.integers(min_value=0, max_value=2).map(lambda i: {"on_list": f"{other}/l{i}"}), *grade_in(grades)]
    if lists:
        simple.append(st.integers(min_value=0, max_value=lists - 1).map(lambda i: {"on_list": f"l{i}"}))
    return either_or_both(st.one_of(simple))


@st.composite
def scheme_documents(draw: st.DrawFn, name: str, version: str, other: str) -> dict[str, Any]:
    behaviours = []
    for code in CODES:
        points = draw(st.integers(min_value=-30, max_value=30))
        behaviours.append(
            {
                "code": code,
                "title": code,
                "points": points,
                "polarity": "negative" if points == 0 else None,
                "cap": draw(st.none() | st.integers(min_value=1, max_value=40)),
                "validity": "P1Y",
                "legal_basis": "test",
            }
        )
    mins = sorted(draw(st.sets(st.integers(min_value=-50, max_value=150), max_size=3)), reverse=True)
    grades = [{"grade": f"G{i}", "min": m} for i, m in enumerate(mins)]
    names = [g["grade"] for g in grades]
    lists = [
        {"id": f"l{i}", "kind": "black", "title": "t", "rule": draw(list_rules(names))}
        for i in range(draw(st.integers(min_value=0, max_value=3)))
    ]
    measures = [
        {
            "id": f"m{i}",
            "kind": "punishment",
            "title": "t",
            "implemented_by": "t",
            "legal_basis": "test",
            "applies_when": draw(measure_rules(len(lists), names, other)),
        }
        for i in range(draw(st.integers(min_value=0, max_value=3)))
    ]
    floor = draw(st.none() | st.integers(min_value=-10, max_value=100))
    ceiling = draw(st.none() | st.integers(min_value=floor if floor is not None else -10, max_value=150))
    return {
        "scheme": name,
        "version": version,
        "title": name,
        "jurisdiction": "000000",
        "applies_to": draw(st.sampled_from([["person"], ["organisation"], ["person", "organisation"]])),
        "initial": draw(st.integers(min_value=-20, max_value=120)),
        "floor": floor,
        "ceiling": ceiling,
        "consent": draw(st.sampled_from(["required", "not_required"])),
        "timezone": draw(st.sampled_from(["Asia/Shanghai", "UTC"])),
        "effective_from": None if version == "1" else draw(st.sampled_from(EFFECTIVE)).isoformat(),
        "grades": grades,
        "behaviours": [{k: v for k, v in b.items() if v is not None} for b in behaviours],
        "lists": lists,
        "measures": measures,
    }


@st.composite
def worlds(draw: st.DrawFn) -> WorldData:
    versions = []
    for name, other in (("alpha", "beta"), ("beta", "alpha")):
        versions.append(version_of(draw(scheme_documents(name, "1", other))))
        if draw(st.booleans()):
            loaded = draw(st.sampled_from([LOADED, W_KNOWN, W_KNOWN + dt.timedelta(hours=1)]))
            versions.append(version_of(draw(scheme_documents(name, "2", other)), loaded))
    subjects = [
        (f"S{i}", draw(st.sampled_from(["person", "organisation"])))
        for i in range(draw(st.integers(min_value=1, max_value=6)))
    ]
    ids = [s for s, _ in subjects]
    effects = []
    for record_id in range(draw(st.integers(min_value=0, max_value=16))):
        valid_from = W_DAY + dt.timedelta(days=draw(st.integers(min_value=-30, max_value=3)))
        known_from = W_KNOWN + dt.timedelta(hours=draw(st.integers(min_value=-48, max_value=2)))
        lasts = draw(st.none() | st.integers(min_value=1, max_value=72))
        effects.append(
            Effect(
                scheme=draw(st.sampled_from(["alpha", "beta"])),
                version=draw(st.sampled_from(["1", "2"])),
                record_id=record_id,
                subject_id=draw(st.sampled_from(ids)),
                behaviour=draw(st.sampled_from(CODES)),
                points=draw(st.integers(min_value=-40, max_value=40)),
                occurred_on=W_DAY - dt.timedelta(days=draw(AGES)),
                valid_from=valid_from,
                valid_until=valid_from + dt.timedelta(days=draw(st.integers(min_value=0, max_value=60))),
                known_from=known_from,
                known_until=None if lasts is None else known_from + dt.timedelta(hours=lasts),
            )
        )
    events = draw(
        st.lists(
            st.tuples(
                st.sampled_from(ids),
                st.sampled_from(["alpha", "beta"]),
                st.sampled_from([GRANTED, WITHDRAWN]),
                st.sampled_from(CONSENT_AT),
            ),
            max_size=10,
        )
    )
    # Ids in a random order relative to the instants: ties are broken by id, not by position.
    order = draw(st.permutations(range(len(events))))
    consent_rows = [(order[i] + 1, *event) for i, event in enumerate(events)]
    return WorldData(versions, subjects, effects, consent_rows)


def write_world(world: WorldData, folder: Path) -> batch.Inputs:
    """The world as the four Parquet inputs that `batch.export_inputs` writes from a store."""
    folder.mkdir(parents=True, exist_ok=True)
    inputs = batch.Inputs(folder)
    columns = [f.name for f in batch.EFFECTS_SCHEMA]
    rows = [
        {
            **{name: getattr(e, name) for name in columns},
            "known_from": batch.micros(e.known_from),
            "known_until": None if e.known_until is None else batch.micros(e.known_until),
        }
        for e in world.effects
    ]
    tables = {
        "effects": pa.Table.from_pylist(rows, batch.EFFECTS_SCHEMA),
        "subjects": pa.Table.from_pylist(
            [{"subject_id": s, "kind": k} for s, k in world.subjects], batch.SUBJECTS_SCHEMA
        ),
        "consent": pa.Table.from_pylist(
            [
                {"id": i, "subject_id": s, "scheme": scheme, "kind": kind, "recorded_at": batch.micros(when)}
                for i, s, scheme, kind, when in world.consent
            ],
            batch.CONSENT_SCHEMA,
        ),
        "scheme_versions": pa.Table.from_pylist(
            [
                {
                    "scheme": v.id,
                    "version": v.version,
                    "loaded_at": batch.micros(v.loaded_at),
                    "digest": v.digest,
                    "document": v.scheme.model_dump_json(exclude_none=True),
                }
                for v in world.versions
            ],
            batch.VERSIONS_SCHEMA,
        ),
    }
    for name, table in tables.items():
        pq.write_table(table, inputs.path(name))
    return inputs


def online_world(world: WorldData, day: dt.date, known: dt.datetime) -> dict[Key, Value]:
    """The online path's answer for every subject: StateReader, preloaded as `population` does."""
    versions: dict[str, list[registry.SchemeVersion]] = {}
    for version in world.versions:
        versions.setdefault(version.id, []).append(version)
    events = sorted(world.consent, key=lambda c: (c[4], c[0]))
    found: dict[Key, Value] = {}
    for subject_id, kind in world.subjects:
        effects = [e for e in world.effects if e.subject_id == subject_id and e.known_at(known)]
        consents = [ConsentEvent(scheme, k, when) for _, s, scheme, k, when in events if s == subject_id]
        subject = registry.Subject(subject_id, kind, subject_id)
        reader = StateReader(cast(Connection, None), subject, known, versions, effects, consents)
        for scheme_id in versions:
            state = reader.state(scheme_id, day)
            if isinstance(state, State):
                found[(scheme_id, subject_id)] = (state.score, state.grade, state.lists, state.measures)
    return found


def edge_world() -> WorldData:
    """One world with every edge the query has, each where nothing else hides it: a cap that binds,
    a floor and a ceiling that bind, a count rule's window boundary, consent events at one instant
    (broken by id both ways), consent just after D in the scheme's zone or after K, cross-scheme
    measures both ways, a version not yet in force, and subjects without records."""
    behaviours = [
        {"code": "X.ONE", "title": "one", "points": 20, "cap": 30, "validity": "P1Y", "legal_basis": "test"},
        {"code": "X.TWO", "title": "two", "points": -40, "cap": 50, "validity": "P1Y", "legal_basis": "test"},
        {"code": "X.THREE", "title": "three", "points": 40, "validity": "P1Y", "legal_basis": "test"},
    ]
    rule = {"count": {"codes": ["X.TWO"], "at_least": 3, "within": "P1M"}}
    alpha = scheme_document(
        "alpha",
        "1",
        initial=50,
        floor=20,
        ceiling=100,
        consent="required",
        behaviours=behaviours,
        grades=[{"grade": "A", "min": 55}, {"grade": "B", "min": 10}],
        lists=[
            {"id": "top", "kind": "red", "title": "t", "rule": {"grade_in": ["A"]}},
            {"id": "bad", "kind": "black", "title": "t", "rule": rule},
        ],
        measures=[
            {"id": "reward", "kind": "reward", "title": "t", "implemented_by": "t", "legal_basis": "test"}
            | {"applies_when": {"on_list": "top"}},
            {"id": "cross", "kind": "punishment", "title": "t", "implemented_by": "t", "legal_basis": "test"}
            | {"applies_when": {"any": [{"on_list": "bad"}, {"on_list": "beta/listed"}]}},
        ],
    )
    beta = scheme_document(
        "beta",
        "1",
        applies_to=["organisation"],
        lists=[{"id": "listed", "kind": "black", "title": "t", "rule": {"any_of": ["X.THREE"]}}],
        measures=[
            {"id": "echo", "kind": "punishment", "title": "t", "implemented_by": "t", "legal_basis": "test"}
            | {"applies_when": {"on_list": "alpha/top"}},
        ],
    )
    later = scheme_document("beta", "2", effective_from=(W_DAY + dt.timedelta(days=1)).isoformat(), initial=99)
    subjects = [("P1", "person"), ("P2", "person"), ("P3", "person"), ("P4", "person")]
    subjects += [("O1", "organisation"), ("O2", "organisation")]

    def effect(
        record_id: int,
        subject: str,
        scheme: str,
        code: str,
        points: int,
        occurred: str = "2026-02-20",
        version: str = "1",
    ) -> Effect:
        start, until = W_DAY - dt.timedelta(days=2), W_DAY + dt.timedelta(days=30)
        occurred_on = dt.date.fromisoformat(occurred)
        return Effect(scheme, version, record_id, subject, code, points, occurred_on, start, until, LOADED, None)

    effects = [
        *(effect(i, "P1", "alpha", "X.ONE", 20) for i in range(3)),  # 60 capped at 30: 80
        *(effect(10 + i, "P3", "alpha", "X.THREE", 40) for i in range(2)),  # 130, above the ceiling: 100
        # -120 capped at -50, +40: 40; two of the three X.TWO fall inside (D - P1M, D], so not "bad".
        effect(20, "O1", "alpha", "X.TWO", -40, occurred="2026-02-01"),
        effect(21, "O1", "alpha", "X.TWO", -40, occurred="2026-02-02"),
        effect(22, "O1", "alpha", "X.TWO", -40, occurred="2026-03-01"),
        effect(23, "O1", "alpha", "X.THREE", 40),
        effect(24, "O2", "alpha", "X.TWO", -40),  # 10, below the floor: 20
        effect(25, "O1", "beta", "X.THREE", -10),
        effect(26, "O1", "beta", "X.THREE", -10, version="2"),  # a version not in force on D
        effect(27, "P1", "beta", "X.THREE", -10),  # beta is for organisations: P1 is on no beta list
    ]
    end_of_day = dt.datetime(2026, 3, 1, 16, tzinfo=dt.UTC)  # midnight starting D+1 in Shanghai
    consent_rows = [
        (2, "P1", "alpha", GRANTED, LOADED),
        (5, "P2", "alpha", WITHDRAWN, LOADED),  # the same instant as the grant, a higher id: withdrawn
        (4, "P2", "alpha", GRANTED, LOADED),
        (7, "P3", "alpha", WITHDRAWN, LOADED),  # the same instant as the grant, a lower id: granted
        (8, "P3", "alpha", GRANTED, LOADED),
        (9, "P4", "alpha", GRANTED, end_of_day),  # on D+1 in Shanghai: not yet
        (10, "P1", "alpha", WITHDRAWN, W_KNOWN + dt.timedelta(microseconds=1)),  # after K
        (11, "P4", "beta", GRANTED, LOADED),  # another scheme's consent
    ]
    return WorldData([version_of(alpha), version_of(beta), version_of(later)], subjects, effects, consent_rows)


def test_the_edge_world_agrees() -> None:
    world = edge_world()
    want = online_world(world, W_DAY, W_KNOWN)
    assert want[("alpha", "P1")] == (80, "A", ("top",), ("reward",))
    assert want[("alpha", "P3")] == (100, "A", ("top",), ("reward",))
    assert want[("alpha", "O1")] == (40, "B", (), ("cross",))
    assert want[("alpha", "O2")] == (20, "B", (), ())
    assert want[("beta", "O1")] == (-10, None, ("listed",), ())
    assert ("alpha", "P2") not in want
    assert ("alpha", "P4") not in want
    with tempfile.TemporaryDirectory() as folder:
        inputs = write_world(world, Path(folder) / "inputs")
        query = batch.build_query(inputs.versions(), W_DAY, W_KNOWN)
        got = from_table(batch.DuckDBEngine().table(query, inputs))
        batch.DuckDBEngine().write(query, inputs, Path(folder) / "state.parquet")
        written = from_table(batch.read_state(Path(folder) / "state.parquet"))
    assert differences(want, got) == []
    assert differences(want, written) == []


@settings(max_examples=60, deadline=None)
@given(world=worlds())
def test_duckdb_agrees_with_the_online_path_on_random_worlds(world: WorldData) -> None:
    with tempfile.TemporaryDirectory() as folder:
        inputs = write_world(world, Path(folder))
        got = from_table(batch.DuckDBEngine().table(batch.build_query(inputs.versions(), W_DAY, W_KNOWN), inputs))
    assert differences(online_world(world, W_DAY, W_KNOWN), got) == []


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
        served = serving.served_state(conn, person, "demo-city", day, at("2026-03-02"))
        assert served is not None
        assert served.lists == ("defaulters",)
        assert served.measures == ("no-flights",)
        assert serving.served_state(conn, person, "demo-city", dt.date(2026, 3, 2), at("2026-03-02")) is None
        assert serving.served_state(conn, person, "demo-city", day, at("2026-02-01")) is None
    # A new record for the person makes their served row stale at once; the other stays served.
    world.record(person, "TRAFFIC.MINOR", "2026-02-20", at("2026-03-02", 9))
    with sqlite_store.read() as conn:
        assert serving.served_state(conn, person, "demo-city", day, at("2026-03-03")) is None
        assert serving.served_state(conn, other, "demo-city", day, at("2026-03-03")) is not None
    # A consent withdrawn refreshes the other person's served row in its own transaction: still
    # served, and what the online path says as known after the withdrawal (consent was on record
    # on the day asked about, withdrawn the day after).
    world.consent(other, False, "2026-03-02")
    with sqlite_store.read() as conn:
        served = serving.served_state(conn, other, "demo-city", day, at("2026-03-03"))
        exact = StateReader.open(conn, other, at("2026-03-03")).state("demo-city", day)
        assert served is not None
        assert isinstance(exact, State)
        assert (served.score, served.grade, served.lists, served.measures) == (
            exact.score,
            exact.grade,
            tuple(exact.lists),
            tuple(exact.measures),
        )
        assert serving.served_state(conn, other, "demo-city", dt.date(2026, 3, 3), at("2026-03-03")) is None
    # An event's subject is refreshed on the online path; then it is served again, and right.
    with sqlite_store.write() as conn:
        assert serving.refresh_subject(conn, person, day, at("2026-03-03")) == 1
        # Consent was withdrawn on 2 March: on 1 March the other person still has state.
        assert serving.refresh_subject(conn, other, day, at("2026-03-03")) == 1
        assert serving.refresh_subject(conn, other, dt.date(2026, 3, 5), at("2026-03-03")) == 0
    with sqlite_store.read() as conn:
        served = serving.served_state(conn, person, "demo-city", day, at("2026-03-04"))
        assert served is not None
        assert served.score == online(sqlite_store, day, at("2026-03-04"))[("demo-city", person)][0]
        assert serving.served_state(conn, other, "demo-city", day, at("2026-03-04")) is None  # that row was dropped


def test_the_state_command(sqlite_store: Store, tmp_path: Path) -> None:
    import json

    from typer.testing import CliRunner

    from xinyong.interfaces.cli import app

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
