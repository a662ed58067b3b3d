"""Feeds for enforcer agencies: who is under an agency's measures on a day, and the versions that
tell the agency what changed (`derived.feed_versions`; DESIGN.md, "Enforcers"; the pure part is `rules.feeds`).

**The set on a day.** `membership` finds, for each of the agencies' measures, the subjects it applies
to on day D as known at K, exactly: a version that wrongly lists a person keeps them off a plane, one
that wrongly leaves them out lets a measure lapse. Three ways give the same answer (the agreement
tests hold them to each other):

- *served*: the serving state (`derived.serving`, which a nightly `state --serve` fills) where its
  row for the subject is for D, for the version in force and fresh — nothing about the subject, nor
  any scheme version, recorded after the row was computed, found by one scan of what was recorded
  since the oldest row rather than a freshness query per row;
- *online*: `derived.state.StateReader` for each subject that could be under a measure and has no
  such row (new subjects, the day's changes, or every subject when nothing is served). "Could be"
  is decided in SQL and errs only towards asking: a subject of a kind the scheme applies to, and for
  a scheme that scores persons only with consent, a person with a grant of it on record;
- *batch*: when more subjects would take the online path than `batch_threshold` allows (a
  serving state of another day, a scheme version loaded since, a first feed on an empty serving
  state), the scheme's whole population on DuckDB (`derived.batch`) as the nightly batch computes
  it, without writing the serving state.

The online path costs about 1 ms a subject; the DuckDB batch 16 s at 1 M subjects, 15 s of it the
export of the store to Parquet (benchmarks/feeds.py): a day of changes goes online, and a fiftieth
of the population or more to the batch.
"""

from __future__ import annotations

import datetime as dt
import tempfile
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from sqlalchemy import Connection, and_, exists, false, func, or_, select

from xinyong.derived.state import StateReader
from xinyong.ledger.consent import GRANTED
from xinyong.ledger.registry import scheme_versions
from xinyong.rules.clock import from_storage, to_storage
from xinyong.rules.engine import State
from xinyong.rules.schemes import Scheme, SchemeVersion, version_in_force
from xinyong.storage import tables as t
from xinyong.storage.store import Store


def batch_threshold(population: int) -> int:
    """How many subjects one scheme may send to the online path before the batch is cheaper: the
    online path costs about 1 ms a subject, the batch (export and query) 16–26 µs a subject of the
    population (benchmarks/feeds.py), so the batch wins past about a fiftieth of the population."""
    return max(1_000, population // 50)


Way = Literal["auto", "online", "batch"]


@dataclass(frozen=True)
class FeedMeasure:
    """A measure of the version in force on the day, and the agency that implements it."""

    scheme: str
    version: str
    measure: str
    agency: str
    timezone: str

    @property
    def id(self) -> str:
        return f"{self.scheme}/{self.measure}"


def known_agencies(conn: Connection) -> set[str]:
    """Every agency that implements a measure of some loaded scheme version."""
    return {m.implemented_by for v in scheme_versions(conn) for m in v.scheme.measures}


def measures_on(conn: Connection, day: dt.date, known_at: dt.datetime, agencies: Collection[str]) -> list[FeedMeasure]:
    """The agencies' measures in the scheme versions in force on `day` as known at `known_at`."""
    by_scheme: dict[str, list[SchemeVersion]] = {}
    for version in scheme_versions(conn):
        by_scheme.setdefault(version.id, []).append(version)
    found = []
    for scheme_id in sorted(by_scheme):
        chosen = version_in_force(by_scheme[scheme_id], day, known_at)
        if chosen is None:
            continue
        scheme = chosen.scheme
        found += [
            FeedMeasure(scheme_id, scheme.version, m.id, m.implemented_by, scheme.timezone)
            for m in scheme.measures
            if m.implemented_by in agencies
        ]
    return found


@dataclass
class Membership:
    """Who is under each measure (SCHEME/MEASURE → subjects), and how each scheme was answered."""

    measures: dict[str, set[str]] = field(default_factory=dict)
    paths: dict[str, str] = field(default_factory=dict)  # scheme -> served | online | batch
    online: int = 0  # subjects computed on the online path

    def of(self, measures: Iterable[FeedMeasure]) -> dict[str, set[str]]:
        return {m.id: self.measures.get(m.id, set()) for m in measures}


def membership(
    store: Store,
    day: dt.date,
    known_at: dt.datetime,
    measures: Sequence[FeedMeasure],
    *,
    path: Way = "auto",
    online_limit: int | None = None,
) -> Membership:
    """The subjects each measure applies to on `day` as known at `known_at` (see the module's
    docstring for the three ways; `path` forces one, for the tests that hold them to each other)."""
    wanted: dict[str, list[FeedMeasure]] = {}
    for measure in measures:
        wanted.setdefault(measure.scheme, []).append(measure)
    found = Membership({m.id: set() for m in measures})
    to_batch: list[str] = sorted(wanted) if path == "batch" else []
    with store.read() as conn:
        versions: dict[str, list[SchemeVersion]] = {}
        for version in scheme_versions(conn):
            versions.setdefault(version.id, []).append(version)
        schemes = {}
        for scheme_id in sorted(set(wanted) - set(to_batch)):
            chosen = version_in_force(versions[scheme_id], day, known_at)
            assert chosen is not None  # measures_on found its measures in it
            schemes[scheme_id] = chosen.scheme
        limit = None
        if path == "auto":
            population = conn.execute(select(func.count()).select_from(t.subjects)).scalar_one()
            limit = online_limit if online_limit is not None else batch_threshold(population)
        bases = {s: _base(conn, scheme, day, known_at) for s, scheme in schemes.items()} if path == "auto" else {}
        # What was recorded since the oldest served row: one scan, shared by every scheme.
        since = [base for base in bases.values() if base is not None]
        recent = recorded_between(conn, min(since), known_at, limit=limit) if since else {}
        readers: dict[str, StateReader] = {}
        for scheme_id, scheme in schemes.items():
            base = bases.get(scheme_id)
            if recent is None:
                plan = None
            else:
                touched = {subject for subject, at in recent.items() if base is not None and at > base}
                plan = _plan(conn, scheme, day, known_at, base, touched, limit)
            if plan is None:
                to_batch.append(scheme_id)
                continue
            served, asked = plan
            subjects: dict[str, Iterable[str]] = dict(served)
            for subject_id in asked:
                reader = readers.get(subject_id)
                if reader is None:
                    reader = readers[subject_id] = StateReader.open(conn, subject_id, known_at, versions)
                result = reader.state(scheme_id, day)
                subjects[subject_id] = result.measures if isinstance(result, State) else ()
            found.online += len(asked)
            found.paths[scheme_id] = "served" if base is not None else "online"
            _collect(found, scheme_id, wanted[scheme_id], subjects.items())
    if to_batch:
        for scheme_id, batched in _batch(store, day, known_at, to_batch).items():
            _collect(found, scheme_id, wanted[scheme_id], batched)
        found.paths.update(dict.fromkeys(to_batch, "batch"))
    return found


def _collect(
    found: Membership, scheme_id: str, measures: Sequence[FeedMeasure], subjects: Iterable[tuple[str, Iterable[str]]]
) -> None:
    ids = {m.measure: found.measures[m.id] for m in measures}
    for subject_id, applying in subjects:
        for measure in applying:
            members = ids.get(measure)
            if members is not None:
                members.add(subject_id)


def _fresh(scheme: Scheme, day: dt.date, known_at: dt.datetime) -> Any:
    """The serving rows that may answer for (scheme, day) as known at K, unless their subject changed."""
    s = t.serving_state
    return and_(
        s.c.scheme == scheme.scheme,
        s.c.as_of == day,
        s.c.version == scheme.version,
        s.c.known_at <= to_storage(known_at),
    )


def _base(conn: Connection, scheme: Scheme, day: dt.date, known_at: dt.datetime) -> dt.datetime | None:
    """The knowledge time of the oldest serving row that may answer, or None when none may: a
    scheme version loaded since may change any subject's state."""
    s, known = t.serving_state, to_storage(known_at)
    base = conn.execute(
        select(s.c.known_at).where(_fresh(scheme, day, known_at)).order_by(s.c.known_at).limit(1)
    ).scalar()
    if base is None:
        return None
    loaded = t.scheme_versions.c.loaded_at
    if conn.execute(select(t.scheme_versions.c.scheme).where(loaded > base, loaded <= known)).first():
        return None
    return from_storage(base)


def _plan(
    conn: Connection,
    scheme: Scheme,
    day: dt.date,
    known_at: dt.datetime,
    base: dt.datetime | None,
    touched: set[str],
    limit: int | None,
) -> tuple[dict[str, tuple[str, ...]], list[str]] | None:
    """The served rows to trust (subject → measures applying; none without a `base`) and the
    subjects to ask online: those `touched` since the base, and those that could be under a measure
    but have no row; None when more than `limit` would be asked online."""
    s, known = t.serving_state, to_storage(known_at)
    fresh = _fresh(scheme, day, known_at) if base is not None else false()
    if limit is not None and len(touched) > limit:
        return None
    subjects = t.subjects
    eligible: Any = subjects.c.kind.in_(scheme.applies_to)
    if scheme.consent == "required":
        events = t.subject_events
        granted = exists().where(
            events.c.subject_id == subjects.c.id,
            events.c.scheme == scheme.scheme,
            events.c.kind == GRANTED,
            events.c.recorded_at <= known,
        )
        eligible = and_(eligible, or_(subjects.c.kind != "person", granted))
    unserved = select(subjects.c.id).where(eligible)
    if base is not None:
        unserved = unserved.where(~exists().where(fresh, s.c.subject_id == subjects.c.id))
    if limit is not None:
        unserved = unserved.limit(limit + 1 - len(touched))
    asked = set(conn.execute(unserved).scalars()) | touched
    if limit is not None and len(asked) > limit:
        return None
    rows: dict[str, tuple[str, ...]] = {}
    if base is not None:
        for row in conn.execute(select(s.c.subject_id, s.c.measures).where(fresh, s.c.measures != "")):
            if row.subject_id not in touched:
                rows[row.subject_id] = tuple(row.measures.split(","))
    return rows, sorted(asked)


def _batch(
    store: Store, day: dt.date, known_at: dt.datetime, schemes: Sequence[str]
) -> dict[str, list[tuple[str, list[str]]]]:
    """The measures applying to every subject under `schemes`, on DuckDB, subjects under none left out."""
    from xinyong.derived.batch import DuckDBEngine, build_query, export_inputs

    found: dict[str, list[tuple[str, list[str]]]] = {scheme_id: [] for scheme_id in schemes}
    with tempfile.TemporaryDirectory(prefix="xinyong-feeds-") as folder:
        inputs = export_inputs(store, Path(folder))
        query = build_query(inputs.versions(), day, known_at, schemes)
        engine = DuckDBEngine()
        con = engine.connect(inputs)
        try:
            rows = con.execute(
                f"SELECT scheme, subject_id, measures FROM ({query.sql('duckdb')}) WHERE measures <> ''"
            ).fetchall()
        finally:
            con.close()
    for scheme_id, subject_id, measures in rows:
        found[scheme_id].append((subject_id, measures.split(",")))
    return found


def recorded_between(
    conn: Connection,
    since: dt.datetime | None,
    until: dt.datetime,
    *,
    about: Collection[str] | None = None,
    limit: int | None = None,
) -> dict[str, dt.datetime] | None:
    """Every subject (or every one of `about`) about whom something that can change its state (a
    record, a record event, a consent event) was recorded after `since` and by `until`, with the
    latest such time; None when there are more than `limit`. The ledger notes each such change as
    it appends (`tables.subject_changes`), so this reads that one narrow table: for everyone, one
    scan of it; for a few, their rows through its subject index."""
    changes = t.subject_changes
    window = changes.c.changed_at <= to_storage(until)
    if since is not None:
        window = and_(window, changes.c.changed_at > to_storage(since))
    query = select(changes.c.subject_id, func.max(changes.c.changed_at)).where(window).group_by(changes.c.subject_id)
    ids = sorted(about) if about is not None else []
    parts = [query.where(changes.c.subject_id.in_(ids[n : n + 500])) for n in range(0, len(ids), 500)]
    if about is None:
        parts = [query]
    latest: dict[str, dt.datetime] = {}
    for part in parts:
        for subject_id, at in conn.execute(part):
            latest[subject_id] = at
            if limit is not None and len(latest) > limit:
                return None
    return {subject_id: from_storage(at) for subject_id, at in latest.items()}
