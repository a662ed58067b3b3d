"""Properties of the engine, checked by Hypothesis over random histories.

- the effects rows of a record say, for every knowledge time K and day D, exactly what the
  semantics (`active_window` of the record as known at K) say;
- explanation lines sum exactly to score − initial, and no record outside its window counts;
- state as known at K ignores every event recorded after K;
- incremental maintenance equals a rebuild, and SQLite and PostgreSQL agree.
"""

from __future__ import annotations

import datetime as dt
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from helpers import DEMO_CITY, World, at, org_id, person_id
from xinyong.due_process.after_append import AFTER_APPEND
from xinyong.errors import XinyongError
from xinyong.rules.effects import active_window, derive_effects
from xinyong.rules.engine import State, evaluate_state
from xinyong.rules.records import (
    CORRECTED,
    DECIDED,
    DECLINED,
    DISPUTED,
    ENDED,
    REVOKED,
    Record,
    RecordEvent,
    view_as_known,
)
from xinyong.rules.schemes import parse_scheme
from xinyong.storage.store import Store

SCHEME = parse_scheme(DEMO_CITY)
CODES = ["TRAFFIC.MINOR", "COURT.DEFAULT", "CHARITY.BLOOD", "UNKNOWN.CODE"]
EPOCH = dt.datetime(2025, 1, 1, tzinfo=dt.UTC)
DAY0 = dt.date(2025, 1, 1)

days = st.integers(min_value=0, max_value=1200).map(lambda n: DAY0 + dt.timedelta(days=n))
hours = st.integers(min_value=1, max_value=24 * 120)


@st.composite
def histories(draw: st.DrawFn, record_id: int = 1, subject: str = "S") -> tuple[Record, list[RecordEvent]]:
    occurred = draw(days)
    recorded_at = dt.datetime.combine(occurred, dt.time(), dt.UTC) + dt.timedelta(hours=draw(hours))
    record = Record(
        record_id,
        "src",
        f"D{record_id}",
        subject,
        draw(st.sampled_from(CODES)),
        occurred,
        recorded_at,
    )
    events: list[RecordEvent] = []
    now = recorded_at
    open_dispute: int | None = None
    for index in range(draw(st.integers(min_value=0, max_value=6))):
        now += dt.timedelta(hours=draw(hours))
        kind = draw(st.sampled_from([CORRECTED, DISPUTED, DECIDED, ENDED, REVOKED, DECLINED]))
        event_id = record_id * 100 + index
        fields: dict[str, Any] = {}
        if kind == CORRECTED:
            fields = {
                "behaviour": draw(st.sampled_from([*CODES, None])),
                "occurred_on": draw(st.none() | days),
            }
        elif kind == DISPUTED:
            open_dispute = event_id
        elif kind == DECIDED:
            if open_dispute is None:
                continue
            outcome = draw(st.sampled_from(["upheld", "corrected", "revoked"]))
            fields = {"refers_to": open_dispute, "outcome": outcome}
            if outcome == "corrected":
                fields["occurred_on"] = draw(days)
            open_dispute = None
        elif kind == ENDED:
            fields = {"effective_on": draw(days)}
        events.append(RecordEvent(event_id, record_id, kind, now, **fields))
    return record, events


instants = st.integers(min_value=0, max_value=24 * 1500).map(lambda h: EPOCH + dt.timedelta(hours=h))


@given(history=histories(), known_at=instants, day=days)
@settings(max_examples=400, deadline=None)
def test_effects_rows_say_what_the_semantics_say(
    history: tuple[Record, list[RecordEvent]], known_at: dt.datetime, day: dt.date
) -> None:
    record, events = history
    rows = [e for e in derive_effects(record, events, SCHEME) if e.known_at(known_at) and e.active_on(day)]
    window = None
    if record.recorded_at <= known_at:
        window = active_window(view_as_known(record, events, known_at), SCHEME)
    expected = window is not None and window.active_on(day)
    assert len(rows) == (1 if expected else 0)
    if expected:
        assert window is not None
        assert (rows[0].behaviour, rows[0].points) == (window.behaviour, window.points)


@dataclass(frozen=True)
class Population:
    histories: list[tuple[Record, list[RecordEvent]]]


@st.composite
def populations(draw: st.DrawFn) -> Population:
    count = draw(st.integers(min_value=0, max_value=12))
    return Population([draw(histories(record_id=i + 1)) for i in range(count)])


@given(population=populations(), known_at=instants, day=days)
@settings(max_examples=300, deadline=None)
def test_explanation_sums_and_windows(population: Population, known_at: dt.datetime, day: dt.date) -> None:
    effects = [e for record, events in population.histories for e in derive_effects(record, events, SCHEME)]
    state = evaluate_state(SCHEME, "S", effects, day, known_at)
    assert sum(line.points for line in state.contributions) == state.score - state.initial
    assert state.score >= 0  # the floor
    for line in state.contributions:
        if line.kind == "record":
            assert line.start is not None
            assert line.until is not None
            assert line.start <= day < line.until
    assert state.grade == SCHEME.grade_for(state.score)


@given(population=populations(), known_at=instants, day=days)
@settings(max_examples=300, deadline=None)
def test_state_as_known_at_k_ignores_later_events(population: Population, known_at: dt.datetime, day: dt.date) -> None:
    full = [e for record, events in population.histories for e in derive_effects(record, events, SCHEME)]
    truncated = [
        e
        for record, events in population.histories
        if record.recorded_at <= known_at
        for e in derive_effects(record, [x for x in events if x.recorded_at <= known_at], SCHEME)
    ]
    assert evaluate_state(SCHEME, "S", full, day, known_at) == evaluate_state(SCHEME, "S", truncated, day, known_at)


# --- through the store, on both backends ---------------------------------------------------------

operations = st.lists(
    st.tuples(
        st.sampled_from(
            [
                "record",
                "record",
                "record",
                "object",
                "decide",
                "correct",
                "revoke",
                "end",
                "decline",
                "consent",
                "version",
            ]
        ),
        st.integers(min_value=0, max_value=50),
        st.integers(min_value=0, max_value=400),
    ),
    min_size=1,
    max_size=14,
)

V2 = DEMO_CITY.replace('version: "2026.1"', 'version: "2026.2"\neffective_from: 2026-01-01').replace(
    "points: -100", "points: -150"
)


def replay(store: Store, ops: list[tuple[str, int, int]]) -> None:
    world = World(store)
    person, org = world.standard()
    subjects = [person, org]
    now = at("2025-01-01")
    records: list[int] = []
    objection_ids: list[int] = []
    version_loaded = False
    for kind, pick, offset in ops:
        now += dt.timedelta(hours=7 + offset)
        day = (now - dt.timedelta(days=offset)).date()
        try:
            if kind == "record":
                code = ["TRAFFIC.MINOR", "COURT.DEFAULT", "CHARITY.BLOOD"][pick % 3]
                records.append(world.record(subjects[pick % 2], code, day.isoformat(), now))
            elif kind == "object" and records:
                objection_ids.append(world.object(records[pick % len(records)], now))
            elif kind == "decide" and objection_ids:
                outcome = ["upheld", "revoked", "corrected"][pick % 3]
                extra = {"occurred_on": day} if outcome == "corrected" else {}
                world.decide(objection_ids[pick % len(objection_ids)], outcome, now, **extra)
            elif kind == "correct" and records:
                world.correct(records[pick % len(records)], now, occurred_on=day)
            elif kind == "revoke" and records:
                world.revoke(records[pick % len(records)], now)
            elif kind == "end" and records:
                with store.write() as conn:
                    from xinyong.ledger import records as ledger

                    ledger.end(
                        conn,
                        records[pick % len(records)],
                        on=day + dt.timedelta(days=pick),
                        reason="fulfilled",
                        now=now,
                        actor="t",
                        after=AFTER_APPEND,
                    )
            elif kind == "decline" and records:
                world.decline(records[pick % len(records)], now)
            elif kind == "consent":
                world.consent(person, pick % 2 == 0, now.date().isoformat())
            elif kind == "version" and not version_loaded:
                world.load(V2, when=now.date().isoformat())
                version_loaded = True
        except XinyongError:
            continue  # refused operations (deciding twice, correcting a revoked record) change nothing


def snapshot(store: Store) -> tuple[list[tuple[Any, ...]], list[Any]]:
    """Effects keyed by document reference (ids may differ between backends) and sampled states."""
    world = World(store)
    from sqlalchemy import select

    from xinyong.storage import tables

    with store.read() as conn:
        refs = {
            row.id: row.document_ref for row in conn.execute(select(tables.records.c.id, tables.records.c.document_ref))
        }
    rows = sorted(
        (
            refs[e.record_id],
            e.scheme,
            e.version,
            e.points,
            e.valid_from,
            e.valid_until,
            e.known_from,
            e.known_until,
        )
        for e in world.effects()  # type: ignore[attr-defined]
    )
    states = []
    for subject in (person_id(1), org_id(1)):
        for day in ("2025-06-01", "2026-01-15", "2026-09-01"):
            for known in (at("2025-09-01"), at("2026-06-01"), at("2100-01-01")):
                result = world.state(subject, day, known)
                states.append((result.score, result.grade, result.lists) if isinstance(result, State) else None)
    return rows, states


@given(ops=operations)
@settings(
    max_examples=12,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
def test_incremental_equals_rebuild_and_backends_agree(ops: list[tuple[str, int, int]], pg_cluster: Any) -> None:
    with tempfile.TemporaryDirectory() as folder:
        sqlite = Store(f"sqlite:///{Path(folder) / 'p.db'}")
        postgres = Store(pg_cluster.new_database())
        try:
            for store in (sqlite, postgres):
                store.migrate()
                replay(store, ops)
            incremental = snapshot(sqlite)
            assert incremental == snapshot(postgres)
            World(sqlite).rebuilt_effects()
            assert snapshot(sqlite) == incremental
        finally:
            sqlite.dispose()
            postgres.dispose()
