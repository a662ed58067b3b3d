"""The versions of an agency's feed: what changed in the set since the versions before, hashed and
signed (DESIGN.md, "Enforcers"; which subjects are in the set is `derived.feeds`).

`cut` compares the set on D with the set the earlier versions add up to (kept in
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
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol
from zoneinfo import ZoneInfo

from sqlalchemy import Connection, and_, delete, select

from xinyong.derived.feeds import recorded_between
from xinyong.errors import BadInput, NotFound
from xinyong.rules import feeds
from xinyong.rules.clock import DEFAULT_TIMEZONE, from_storage, to_storage
from xinyong.storage import tables as t
from xinyong.storage.backend import backend_of


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
