"""Feeds for enforcer agencies: who is under an agency's measures on a day, and the versions that
tell the agency what changed (DESIGN.md, "Enforcers"; the pure part is `rules.feeds`).

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

**Versions.** `cut` compares the set on D with the set the earlier versions add up to (kept in
`feed_members`, which a replay of `feed_entries` gives again) and writes the difference as the next
version, hashed with the agency's current key and signed (the signer is handed in: this layer
imports no keys). When the key changed since the last version, the next one removes every hash made
with the old key and adds every member's hash made with the new one, so that summing versions
still gives the set, under the new key (the entries are marked `rekeyed`; they are no delisting).
A day gets one version at least; cutting again on the same day writes a new version only when
something changed since, and a day before the newest version's is refused: versions go forward.
"""

from __future__ import annotations

import datetime as dt
import tempfile
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Protocol
from zoneinfo import ZoneInfo

from sqlalchemy import Connection, and_, delete, exists, false, func, or_, select

from xinyong.derived.state import StateReader
from xinyong.errors import BadInput, NotFound
from xinyong.ledger.consent import GRANTED
from xinyong.ledger.registry import scheme_versions
from xinyong.rules import feeds
from xinyong.rules.clock import DEFAULT_TIMEZONE, from_storage, to_storage
from xinyong.rules.engine import State
from xinyong.rules.schemes import Scheme, SchemeVersion, version_in_force
from xinyong.storage import tables as t
from xinyong.storage.backend import backend_of
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


# --- versions ---------------------------------------------------------------------------------------


class Signer(Protocol):
    """The platform's signing key (`security.keys.KeyRing`), as cutting a version needs it."""

    def current_id(self) -> str: ...

    def sign(self, message: bytes) -> tuple[str, str]: ...


@dataclass(frozen=True)
class Cut:
    """What cutting did for one agency: a new version (`created`), or the newest one left as it was."""

    agency: str
    version: int | None
    day: dt.date | None
    created: bool
    added: int = 0
    removed: int = 0
    document: dict[str, Any] | None = field(default=None, repr=False)

    def as_dict(self) -> dict[str, Any]:
        return {
            "agency": self.agency,
            "version": self.version,
            "day": self.day.isoformat() if self.day else None,
            "created": self.created,
            "add": self.added,
            "del": self.removed,
        }


def agencies_with_keys(conn: Connection) -> dict[str, int]:
    """Agencies with a feed, and the generation of each one's current key."""
    rows = conn.execute(select(t.feed_agencies.c.agency, t.feed_agencies.c.key_generation))
    return {row.agency: row.key_generation for row in rows}


def newest(conn: Connection, agency: str) -> Any:
    """The agency's newest version's row, or None."""
    v = t.feed_versions
    return conn.execute(select(v).where(v.c.agency == agency).order_by(v.c.version.desc()).limit(1)).first()


def check_day(conn: Connection, agency: str, day: dt.date) -> None:
    """Versions go forward in days: a day before the agency's newest version's is refused."""
    latest = newest(conn, agency)
    if latest is not None and latest.day > day:
        raise BadInput(
            f"--day: {day.isoformat()} is before the day of version {latest.version} of {agency}'s feed "
            f"({latest.day.isoformat()}); versions go forward in days"
        )


def _stamp(instant: dt.datetime) -> str:
    return from_storage(to_storage(instant)).isoformat(timespec="microseconds")


def cut(
    conn: Connection,
    agency: str,
    day: dt.date,
    known_at: dt.datetime,
    sets: Mapping[str, Collection[str]],
    timezones: Mapping[str, str],
    *,
    key: str,
    generation: int,
    signer: Signer,
) -> Cut:
    """Write the agency's next version for `day`: the difference between `sets` (SCHEME/MEASURE →
    subjects under it on the day as known at `known_at`) and what the versions before add up to.
    `timezones` gives each scheme's zone (a measure ends at the start of the day in its scheme's).
    Writers take turns, so two servers cutting at once write one version."""
    backend_of(conn).take_turn(conn, "feeds")
    check_day(conn, agency, day)
    latest = newest(conn, agency)
    if latest is not None and latest.day == day and from_storage(latest.cut_at) >= known_at:
        return Cut(agency, latest.version, latest.day, False)  # cut since with as much knowledge
    before: dict[str, dict[str, str]] = {}
    m = t.feed_members
    for row in conn.execute(select(m.c.measure, m.c.subject_id, m.c.hash).where(m.c.agency == agency)):
        before.setdefault(row.measure, {})[row.subject_id] = row.hash
    after: dict[str, set[str]] = {name: set(subjects) for name, subjects in sets.items()}
    after[feeds.WHOLE] = set().union(*sets.values()) if sets else set()
    rekey = latest is not None and latest.feed_key != generation
    hashes: dict[str, str] = {}

    def hash_of(subject_id: str) -> str:
        found = hashes.get(subject_id)
        if found is None:
            found = hashes[subject_id] = feeds.hashed(subject_id, key)
        return found

    # (measure, op, hash) -> (subject, rekeyed)
    entries: dict[tuple[str, str, str], tuple[str, bool]] = {}
    for name in sorted(set(before) | set(after)):
        was, now = before.get(name, {}), after.get(name, set())
        leaving = was.keys() if rekey else was.keys() - now
        entering = now if rekey else now - was.keys()
        for subject_id in leaving:
            entries[(name, "del", was[subject_id])] = (subject_id, subject_id in now)
        for subject_id in entering:
            entries[(name, "add", hash_of(subject_id))] = (subject_id, subject_id in was)
    if not entries and latest is not None and latest.day == day:
        return Cut(agency, latest.version, latest.day, False)
    number = latest.version + 1 if latest is not None else 1
    previous = latest.digest if latest is not None else feeds.GENESIS
    ended = _ended_at(conn, entries, before, day, known_at, timezones, latest)
    grouped: dict[str, tuple[list[str], list[str]]] = {}
    for name, op, hashed in entries:
        added, removed = grouped.setdefault(name, ([], []))
        (added if op == "add" else removed).append(hashed)
    changes = {name: feeds.change(added, removed) for name, (added, removed) in grouped.items()}
    whole = changes.pop(feeds.WHOLE, feeds.Change())
    signing_key = signer.current_id()
    document = feeds.document(
        agency=agency,
        version=number,
        day=day.isoformat(),
        cut_at=_stamp(known_at),
        feed_key=generation,
        previous=previous,
        whole=whole,
        measures=changes,
        key=signing_key,
    )
    signed_with, signature = signer.sign(feeds.signed_bytes(document))
    if signed_with != signing_key:
        raise RuntimeError("the signing key changed while a feed version was being signed; cut it again")
    document["signature"] = signature
    conn.execute(
        t.feed_versions.insert().values(
            agency=agency,
            version=number,
            day=day,
            cut_at=to_storage(known_at),
            feed_key=generation,
            previous=previous,
            digest=feeds.digest(document),
            key=signing_key,
            signature=signature,
            added=len(whole.add),
            removed=len(whole.remove),
        )
    )
    rows = [
        {
            "agency": agency,
            "version": number,
            "measure": name,
            "hash": hashed,
            "op": op,
            "subject_id": subject_id,
            "rekeyed": rekeyed,
            "ended_at": ended.get(subject_id) if (name == feeds.WHOLE and op == "del" and not rekeyed) else None,
        }
        for (name, op, hashed), (subject_id, rekeyed) in entries.items()
    ]
    for start in range(0, len(rows), 20_000):
        conn.execute(t.feed_entries.insert(), rows[start : start + 20_000])
    _update_members(conn, agency, entries, rekey)
    return Cut(agency, number, day, True, len(whole.add), len(whole.remove), document)


def _update_members(
    conn: Connection, agency: str, entries: Mapping[tuple[str, str, str], tuple[str, bool]], rekey: bool
) -> None:
    m = t.feed_members
    if rekey:
        conn.execute(delete(m).where(m.c.agency == agency))
    else:
        leaving: dict[str, list[str]] = {}
        for (name, op, _), (subject_id, _) in entries.items():
            if op == "del":
                leaving.setdefault(name, []).append(subject_id)
        for name, subjects in leaving.items():
            for start in range(0, len(subjects), 500):
                part = subjects[start : start + 500]
                conn.execute(delete(m).where(m.c.agency == agency, m.c.measure == name, m.c.subject_id.in_(part)))
    entering = [
        {"agency": agency, "measure": name, "subject_id": subject_id, "hash": hashed}
        for (name, op, hashed), (subject_id, _) in entries.items()
        if op == "add"
    ]
    for start in range(0, len(entering), 20_000):
        conn.execute(m.insert(), entering[start : start + 20_000])


def _ended_at(
    conn: Connection,
    entries: Mapping[tuple[str, str, str], tuple[str, bool]],
    before: Mapping[str, Mapping[str, str]],
    day: dt.date,
    known_at: dt.datetime,
    timezones: Mapping[str, str],
    latest: Any,
) -> dict[str, dt.datetime]:
    """When the measures ended for each subject the version removes from the agency's whole set
    (stored naive UTC): the start of `day` in the time zone of the schemes whose measures it left
    (the latest of them), or, when later, the time the change became known — the latest record,
    record event or consent event about the subject recorded since the version before was cut."""
    leaving = {
        subject_id
        for (name, op, _), (subject_id, rekeyed) in entries.items()
        if name == feeds.WHOLE and op == "del" and not rekeyed
    }
    if not leaving:
        return {}
    since = from_storage(latest.cut_at) if latest is not None else None
    recorded = recorded_between(conn, since, known_at, about=leaving) or {}
    ended: dict[str, dt.datetime] = {}
    for subject_id in leaving:
        zones = {
            timezones.get(name.split("/", 1)[0], DEFAULT_TIMEZONE)
            for name, held in before.items()
            if name != feeds.WHOLE and subject_id in held
        } or {DEFAULT_TIMEZONE}
        moments = [dt.datetime.combine(day, dt.time(), ZoneInfo(zone)) for zone in zones]
        if subject_id in recorded:
            moments.append(recorded[subject_id])
        ended[subject_id] = to_storage(max(moments))
    return ended


# --- reading ----------------------------------------------------------------------------------------


def versions(conn: Connection, agency: str, since: int = 0) -> list[dict[str, Any]]:
    """The agency's versions after version `since`, each as it was signed (`rules.feeds.document`)."""
    v, e = t.feed_versions, t.feed_entries
    rows = conn.execute(select(v).where(v.c.agency == agency, v.c.version > since).order_by(v.c.version)).all()
    if not rows:
        return []
    grouped: dict[int, dict[str, tuple[list[str], list[str]]]] = {row.version: {} for row in rows}
    query = select(e.c.version, e.c.measure, e.c.op, e.c.hash).where(e.c.agency == agency, e.c.version > since)
    for version, measure, op, hashed in conn.execute(query):
        added, removed = grouped[version].setdefault(measure, ([], []))
        (added if op == "add" else removed).append(hashed)
    found = []
    for row in rows:
        changes = {name: feeds.change(added, removed) for name, (added, removed) in grouped[row.version].items()}
        whole = changes.pop(feeds.WHOLE, feeds.Change())
        found.append(
            feeds.document(
                agency=agency,
                version=row.version,
                day=row.day.isoformat(),
                cut_at=_stamp(from_storage(row.cut_at)),
                feed_key=row.feed_key,
                previous=row.previous,
                whole=whole,
                measures=changes,
                key=row.key,
                signature=row.signature,
            )
        )
    return found


def members(conn: Connection, agency: str) -> dict[str, dict[str, str]]:
    """The set the agency's versions add up to: measure ('' for the whole) → subject → hash."""
    m = t.feed_members
    found: dict[str, dict[str, str]] = {}
    for row in conn.execute(select(m.c.measure, m.c.subject_id, m.c.hash).where(m.c.agency == agency)):
        found.setdefault(row.measure, {})[row.subject_id] = row.hash
    return found


def require_feed(conn: Connection, agency: str) -> Any:
    """The agency's feed row, or NotFound naming what is missing."""
    row = conn.execute(select(t.feed_agencies).where(t.feed_agencies.c.agency == agency)).first()
    if row is None:
        raise NotFound(f"AGENCY: {agency!r} has no feed (an administrator makes its feed key first)")
    return row


def carrying(conn: Connection, subject_id: str) -> list[dict[str, Any]]:
    """The feed versions that carried a subject (its hash entering or leaving an agency's whole
    set), newest first: what its who-looked shows. The hash and the key stay out of it."""
    e, v = t.feed_entries, t.feed_versions
    query = (
        select(e.c.agency, e.c.version, v.c.day, v.c.cut_at, e.c.op, e.c.rekeyed, v.c.acknowledged_at)
        .select_from(e.join(v, and_(v.c.agency == e.c.agency, v.c.version == e.c.version)))
        .where(e.c.subject_id == subject_id, e.c.measure == feeds.WHOLE)
        .order_by(v.c.day.desc(), e.c.version.desc(), e.c.agency)
    )
    return [
        {
            "agency": row.agency,
            "version": row.version,
            "day": row.day.isoformat(),
            "cut_at": _stamp(from_storage(row.cut_at)),
            "change": row.op,
            "rekeyed": bool(row.rekeyed),
            "acknowledged_at": _stamp(from_storage(row.acknowledged_at)) if row.acknowledged_at else None,
        }
        for row in conn.execute(query)
    ]


def feed_rows(conn: Connection) -> list[Any]:
    """Every agency's feed row (key generation, webhook), by agency."""
    return list(conn.execute(select(t.feed_agencies).order_by(t.feed_agencies.c.agency)))


def record_key(conn: Connection, agency: str, now: dt.datetime, write: Callable[[int], None]) -> int | None:
    """Count the agency's next key and have `write(generation)` keep it (in the keys folder) before
    the store names it current; returns the generation retired, if any. Rotations take turns."""
    backend_of(conn).take_turn(conn, "feeds")
    row = conn.execute(select(t.feed_agencies).where(t.feed_agencies.c.agency == agency)).first()
    generation = row.key_generation + 1 if row is not None else 1
    write(generation)
    values = {"key_generation": generation, "key_made_at": to_storage(now)}
    if row is None:
        conn.execute(t.feed_agencies.insert().values(agency=agency, **values))
        return None
    conn.execute(t.feed_agencies.update().where(t.feed_agencies.c.agency == agency).values(**values))
    return int(row.key_generation)


def record_webhook(conn: Connection, agency: str, url: str, now: dt.datetime) -> None:
    require_feed(conn, agency)
    conn.execute(
        t.feed_agencies.update()
        .where(t.feed_agencies.c.agency == agency)
        .values(webhook_url=url, webhook_set_at=to_storage(now))
    )
