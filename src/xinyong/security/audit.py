"""The audit log: append-only and hash-chained, beside the ledger.

Reads (every check, every look at personal data) append their entry before they answer; writes
leave theirs in `audit_pending`, in the write's own transaction, and `chain_pending` moves them into
the chain right after the write commits. On SQLite the log is a database file of its own
(`Store.audit_*`): a check's append never waits for the write lock a long import holds.

Each entry's hash is SHA-256 over the previous entry's hash and a canonical serialisation of the
entry's own fields, its sequence number included. So:
- an edited entry no longer matches its hash;
- a deleted entry leaves a gap in the sequence (and the next entry's prev_hash points nowhere);
- an inserted or renumbered entry breaks the next link;
- two swapped entries each hash with the other's sequence number.
`audit_head` keeps the newest (seq, hash), so a log cut short at the end is found as well. What a
chain cannot prove alone is that nobody rewrote the whole log and its head together: publish the
head hash `verify` prints (a newspaper, a notary, another system's log) to pin it.
"""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import io
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, NamedTuple
from zoneinfo import ZoneInfo

import orjson
from sqlalchemy import Connection, delete, func, select

from xinyong.rules.clock import DEFAULT_TIMEZONE, UTC, from_storage, to_storage
from xinyong.rules.identifiers import mask_text
from xinyong.security.audit_index import about
from xinyong.storage import tables as t
from xinyong.storage.backend import Backend, backend_of

if TYPE_CHECKING:
    from xinyong.storage.store import Store

GENESIS = "0" * 64
HEAD_ID = 1
FIELDS = ("seq", "at", "actor", "role", "action", "subject_id", "purpose", "outcome", "detail", "prev_hash", "hash")


class Entry(NamedTuple):
    """One act to log: who (actor, role), what (action), about whom, why, when, and how it ended.

    A named tuple rather than a frozen dataclass: every check builds one, and a tuple is made in C
    where a frozen dataclass sets each field through object.__setattr__.
    """

    at: dt.datetime
    actor: str
    role: str
    action: str
    outcome: str
    subject_id: str | None = None
    purpose: str | None = None
    detail: dict[str, Any] | None = None

    def stamped(self, at: dt.datetime) -> Entry:
        """The same act again at another time (a repeated check); the detail is shared, never changed."""
        return Entry(at, *self[1:])


@dataclass(frozen=True)
class Verification:
    """The chain intact, or where it breaks (`broken_at`, the first bad entry); `checkpoints`, how
    many signed checkpoints the log was found to match (`security.checkpoints`), `checkpoint` the
    first it no longer matches."""

    ok: bool
    entries: int
    head_seq: int
    head_hash: str
    broken_at: int | None = None
    reason: str | None = None
    checkpoints: int = 0
    checkpoint: int | None = None


def _detail_text(detail: dict[str, Any] | None) -> str | None:
    return orjson.dumps(detail, option=orjson.OPT_SORT_KEYS).decode() if detail else None


def entry_hash(prev_hash: str, values: dict[str, Any]) -> str:
    """The chain link: SHA-256 of the previous hash and the entry's fields as canonical JSON.

    Times are naive UTC with microseconds, exactly as both backends store and return them, so the
    hash computed when appending is the one recomputed when verifying.
    """
    at = values["at"]
    return _link(
        prev_hash,
        int(values["seq"]),
        at.isoformat(timespec="microseconds") if isinstance(at, dt.datetime) else str(at),
        values["action"],
        values["actor"],
        values["detail"],
        values["outcome"],
        values["purpose"],
        values["role"],
        values["subject_id"],
    )


def _link(
    prev_hash: str,
    seq: int,
    at: str,
    action: str,
    actor: str,
    detail: str | None,
    outcome: str,
    purpose: str | None,
    role: str,
    subject_id: str | None,
) -> str:
    # Keys in sorted order, written out, so that no sort is needed per entry: this runs for every
    # check under load. The bytes are those of orjson.dumps(…, OPT_SORT_KEYS) on the same dict.
    canonical = {
        "action": action,
        "actor": actor,
        "at": at,
        "detail": detail,
        "outcome": outcome,
        "purpose": purpose,
        "role": role,
        "seq": seq,
        "subject_id": subject_id,
    }
    return hashlib.sha256(prev_hash.encode() + b"\n" + orjson.dumps(canonical)).hexdigest()


_INSERTED = (*FIELDS, "origin")


def _insert_sql(marker: str) -> str:
    return f"INSERT INTO audit_log ({', '.join(_INSERTED)}) VALUES ({', '.join(marker for _ in _INSERTED)})"


def lock_head(cursor: Any, backend: Backend) -> tuple[int, str, int]:
    """The chain head (seq, hash, indexed), locked for the rest of the transaction.

    Two transactions could otherwise read the same head and fork the chain; the head row is read
    locked (`Backend.locking_read`: SELECT … FOR UPDATE on PostgreSQL), which makes the second wait
    until the first commits, then read the new head. On SQLite the write transaction already holds
    the database's one write lock (BEGIN IMMEDIATE in `Store.write`), so appenders are serialised
    before they get here. We lock a row rather than take an advisory lock (`Backend.take_turn`)
    because the row is needed anyway (it is how `verify` notices a log cut short at the end) and a
    row lock cannot collide with another program's advisory-lock numbers. The first append of a
    store creates the row (two appenders racing to create it both end up reading the one that won).
    """
    select_head = backend.locking_read(f"SELECT seq, hash, indexed FROM audit_head WHERE id = {HEAD_ID}")
    row = cursor.execute(select_head).fetchone()
    if row is None:
        cursor.execute(
            f"INSERT INTO audit_head (id, seq, hash, indexed) VALUES ({HEAD_ID}, 0, {backend.param_marker}, 0) "
            "ON CONFLICT (id) DO NOTHING",
            (GENESIS,),
        )
        row = cursor.execute(select_head).fetchone()
    return int(row[0]), str(row[1]), int(row[2])


# Entries reach audit_subjects (who looked at whom) in runs of this many: each run sorted by
# subject and keyed by its first entry's seq, so that a run is written after the last one, at the
# end of the table, a dozen new pages whatever the table's size. Two layouts were measured first:
# - an index on audit_log.subject_id put a random page into every commit: a commit of 32 checks
#   wrote 55 pages to the WAL with it and 11 without, and the server spent 15-20 µs more CPU per
#   check (of ~110);
# - one B-tree on (subject, seq), filled in sorted batches, wrote each page once per batch, but a
#   batch touches one page per subject it names: with 1.5 M entries about 1,000 subjects, 1,230
#   pages (20 MB of WAL) and 33 ms of insert per batch, a stall every 0.3 s under the check
#   benchmark; a run takes 14 pages and 2.6 ms.
# The price is at lookup: "who looked at me" reads the subject's part of every run (a B-tree seek
# each, ~10 µs; 4 ms for 420 runs), which is rare next to the checks that write. Until their run
# comes, the newest entries are found by scanning the log's tail (`_about`), fewer than this many.
INDEX_EVERY = 4096


def append(conn: Connection, entries: Sequence[Entry]) -> list[int]:
    """Append entries in order inside the caller's write transaction; returns their sequence numbers.

    Every check appends, so this is on the API's hot path: the statements go straight to the
    transaction's own DBAPI cursor (plain SQL, the same on both backends but for the parameter
    marker), skipping SQLAlchemy's per-statement and per-row machinery, which cost more than the
    statements themselves.
    """
    return append_driver(conn.connection.dbapi_connection, backend_of(conn), entries)


def append_driver(
    connection: Any, backend: Backend, entries: Sequence[Entry], origins: Sequence[int] | None = None
) -> list[int]:
    """`append` on the driver's connection in a transaction (`Store.audit_write_driver`) of the
    audit log whose backend is `backend`; `origins`, the `audit_pending` ids the entries come from."""
    if not entries:
        return []
    marker = backend.param_marker
    as_text = backend.timestamps_as_text
    cursor = connection.cursor()
    try:
        first, prev, indexed = lock_head(cursor, backend)
        seq = first
        rows: list[tuple[Any, ...]] = []
        details: dict[int, str | None] = {}  # repeated checks share one detail dict: one text each
        for number, entry in enumerate(entries):
            seq += 1
            at = entry.at
            at = at.replace(tzinfo=None) if at.tzinfo is UTC else to_storage(at)
            iso = at.isoformat(timespec="microseconds")
            detail = None
            if entry.detail:
                detail = details.get(id(entry.detail))
                if detail is None:
                    detail = details[id(entry.detail)] = _detail_text(entry.detail)
            link = _link(
                prev,
                seq,
                iso,
                entry.action,
                entry.actor,
                detail,
                entry.outcome,
                entry.purpose,
                entry.role,
                entry.subject_id,
            )
            # SQLite keeps the text form SQLAlchemy's DateTime stores and reads back.
            stored = iso.replace("T", " ") if as_text else at
            rows.append(
                (
                    seq,
                    stored,
                    entry.actor,
                    entry.role,
                    entry.action,
                    entry.subject_id,
                    entry.purpose,
                    entry.outcome,
                    detail,
                    prev,
                    link,
                    origins[number] if origins is not None else None,
                )
            )
            prev = link
        cursor.executemany(_insert_sql(marker), rows)
        if seq - indexed >= INDEX_EVERY:
            cursor.execute(
                f"INSERT INTO audit_subjects (run, subject_id, seq) SELECT {marker}, subject_id, seq FROM audit_log "
                f"WHERE seq >= {marker} AND subject_id IS NOT NULL ORDER BY subject_id, seq",
                (indexed + 1, indexed + 1),
            )
            indexed = seq
        cursor.execute(
            f"UPDATE audit_head SET seq = {marker}, hash = {marker}, indexed = {marker} WHERE id = {HEAD_ID}",
            (seq, prev, indexed),
        )
    finally:
        cursor.close()
    return list(range(first + 1, seq + 1))


def pend(conn: Connection, entries: Sequence[Entry]) -> None:
    """A write's entries, in the write's own transaction, until `chain_pending` chains them: the
    write and its entry commit together whichever database the log is in."""
    conn.execute(
        t.audit_pending.insert(),
        [
            {
                "at": to_storage(e.at),
                "actor": e.actor,
                "role": e.role,
                "action": e.action,
                "subject_id": e.subject_id,
                "purpose": e.purpose,
                "outcome": e.outcome,
                "detail": _detail_text(e.detail),
            }
            for e in entries
        ],
    )


def _pending_entry(row: Any) -> Entry:
    detail = orjson.loads(row.detail) if row.detail else None
    return Entry(
        from_storage(row.at), row.actor, row.role, row.action, row.outcome, row.subject_id, row.purpose, detail
    )


def chain_pending(store: Store, *, limit: int = 10_000) -> int:
    """Chain the entries writes left pending, oldest first, and clear them; how many were chained.

    Run right after every write (`service.door`), and by anyone who reads the log whole; safe to
    run at once in several processes and again after a crash: under the chain head's lock, an
    entry already chained (its `origin`) is skipped, and only the rows read are cleared (on
    PostgreSQL a lower id may commit later than a higher one)."""
    with store.read() as conn:
        rows = conn.execute(select(t.audit_pending).order_by(t.audit_pending.c.id).limit(limit)).all()
    if not rows:
        return 0
    ids = [int(row.id) for row in rows]
    backend = store.audit_backend
    with store.audit_write_driver() as driver:
        cursor = driver.cursor()
        try:
            lock_head(cursor, backend)  # taken again by append_driver, within this transaction
            marker = backend.param_marker
            found = cursor.execute(
                f"SELECT origin FROM audit_log WHERE origin IN ({', '.join(marker for _ in ids)})", ids
            ).fetchall()
        finally:
            cursor.close()
        done = {int(origin) for (origin,) in found}
        fresh = [row for row in rows if int(row.id) not in done]
        append_driver(driver, backend, [_pending_entry(row) for row in fresh], [int(row.id) for row in fresh])
    with store.write() as conn:
        conn.execute(delete(t.audit_pending).where(t.audit_pending.c.id.in_(ids)))
    return len(fresh)


def pending_about(conn: Connection, subject_id: str) -> list[dict[str, Any]]:
    """A subject's entries still pending (a write just committed, its entry not yet chained), as
    its who-looked shows them (`shown_to`)."""
    rows = conn.execute(
        select(t.audit_pending).where(t.audit_pending.c.subject_id == subject_id).order_by(t.audit_pending.c.id)
    ).all()
    return [
        shown_to(
            subject_id,
            {
                "seq": None,
                "at": from_storage(row.at).isoformat(),
                "actor": row.actor,
                "role": row.role,
                "action": row.action,
                "subject_id": row.subject_id,
                "purpose": row.purpose,
                "outcome": row.outcome,
                "detail": orjson.loads(row.detail) if row.detail else None,
            },
        )
        for row in rows
    ]


def _stream(conn: Connection, query: Any, size: int = 5000) -> Iterator[Any]:
    result = conn.execution_options(yield_per=size).execute(query)
    yield from result


def verify(conn: Connection) -> Verification:
    """Recompute the whole chain and name the first entry where it breaks."""
    expected_seq, prev, count = 1, GENESIS, 0

    def broken(seq: int, why: str) -> Verification:
        return Verification(False, count, expected_seq - 1, prev, seq, why)

    for row in _stream(conn, select(t.audit_log).order_by(t.audit_log.c.seq)):
        values = dict(row._mapping)
        if values["seq"] != expected_seq:
            if values["seq"] > expected_seq:
                return broken(
                    expected_seq,
                    f"entry {expected_seq} is missing (the next entry is {values['seq']}): deleted",
                )
            return broken(values["seq"], "entry out of sequence")
        if values["prev_hash"] != prev:
            return broken(expected_seq, "its prev_hash does not match the hash of the entry before it")
        if entry_hash(prev, values) != values["hash"]:
            return broken(expected_seq, "its content does not match its hash: edited, inserted or moved")
        prev = values["hash"]
        expected_seq += 1
        count += 1
    head = conn.execute(select(t.audit_head).where(t.audit_head.c.id == HEAD_ID)).first()
    head_seq, head_hash = (int(head.seq), str(head.hash)) if head is not None else (0, GENESIS)
    if head_seq != count or head_hash != prev:
        return Verification(
            False,
            count,
            count,
            prev,
            count + 1 if head_seq > count else head_seq,
            f"the log ends at entry {count} but its head records entry {head_seq}: entries were removed "
            "from the end, or the head was altered",
        )
    indexed = int(head.indexed) if head is not None else 0
    wrong = _index_mismatch(conn, indexed)
    if wrong is not None:
        return Verification(False, count, count, prev, *wrong)
    return Verification(True, count, count, prev)


def _index_mismatch(conn: Connection, indexed: int) -> tuple[int, str] | None:
    """The first entry the subject index disagrees with the log about, if any: a row removed from
    audit_subjects would hide a look from its subject, one added would show a look that was not."""
    logged = select(t.audit_log.c.seq, t.audit_log.c.subject_id).where(
        t.audit_log.c.seq <= indexed, t.audit_log.c.subject_id.is_not(None)
    )
    listed = select(t.audit_subjects.c.seq, t.audit_subjects.c.subject_id)
    missing = logged.except_(listed).subquery()
    first_missing = conn.execute(select(func.min(missing.c.seq))).scalar()
    if first_missing is not None:
        return int(first_missing), "its subject is missing from the subject index (audit_subjects): who_looked hides it"
    stray = listed.except_(logged).subquery()
    first_stray = conn.execute(select(func.min(stray.c.seq))).scalar()
    if first_stray is not None:
        return int(first_stray), "the subject index (audit_subjects) lists it for a subject it is not about"
    return None


def entry_dict(row: Any) -> dict[str, Any]:
    values = dict(row._mapping)
    values.pop("origin", None)  # bookkeeping of `chain_pending`, not part of the entry
    values["at"] = from_storage(values["at"]).isoformat()
    values["detail"] = orjson.loads(values["detail"]) if values["detail"] else None
    return values


def _day_bounds(first: dt.date | None, last: dt.date | None, timezone: str) -> tuple[Any, Any]:
    zone = ZoneInfo(timezone)
    start = to_storage(dt.datetime.combine(first, dt.time(), zone)) if first else None
    end = to_storage(dt.datetime.combine(last + dt.timedelta(days=1), dt.time(), zone)) if last else None
    return start, end


def entries(
    conn: Connection,
    *,
    first: dt.date | None = None,
    last: dt.date | None = None,
    subject_id: str | None = None,
    limit: int | None = None,
    timezone: str = DEFAULT_TIMEZONE,
) -> Iterator[Any]:
    """Entries in sequence order, optionally between two calendar days (inclusive) or about one subject."""
    query = select(t.audit_log).order_by(t.audit_log.c.seq)
    start, end = _day_bounds(first, last, timezone)
    if start is not None:
        query = query.where(t.audit_log.c.at >= start)
    if end is not None:
        query = query.where(t.audit_log.c.at < end)
    if subject_id is not None:
        query = query.where(about(subject_id))
    if limit is not None:
        query = query.limit(limit)
    return _stream(conn, query)


def export_csv(conn: Connection, out: io.TextIOBase | Any, *, first: dt.date | None, last: dt.date | None) -> int:
    """Write the entries of a period as CSV (with their hashes, so an export can be checked too)."""
    writer = csv.writer(out)
    writer.writerow(FIELDS)
    count = 0
    for row in entries(conn, first=first, last=last):
        values = dict(row._mapping)
        values["at"] = from_storage(values["at"]).isoformat()
        writer.writerow([values[f] if values[f] is not None else "" for f in FIELDS])
        count += 1
    return count


def who_looked(conn: Connection, subject_id: str, *, limit: int = 1000) -> list[dict[str, Any]]:
    """Every logged act about a subject, newest first: who, in which role, what, why, when, outcome,
    as the subject may see it (`shown_to`)."""
    query = select(t.audit_log).where(about(subject_id)).order_by(t.audit_log.c.seq.desc()).limit(limit)
    return [
        shown_to(subject_id, {k: v for k, v in entry_dict(row).items() if k not in {"prev_hash", "hash"}})
        for row in conn.execute(query)
    ]


def shown_to(subject_id: str, entry: dict[str, Any]) -> dict[str, Any]:
    """An entry about a subject as its who-looked shows it: every other person's id in it masked
    (`identifiers.mask_text`) — a subject refused a look at another is logged in the role
    `subject:<its id>`, a web log-in is named by its id, a refusal's reason repeats the role — so
    that one person's full id never appears in another's who-looked. The log keeps them whole."""
    keep = (subject_id,)
    shown = dict(entry)
    for key in ("actor", "role", "purpose"):
        if isinstance(shown.get(key), str):
            shown[key] = mask_text(shown[key], keep=keep)
    if shown.get("detail") is not None:
        shown["detail"] = _masked(shown["detail"], keep)
    return shown


def _masked(value: Any, keep: tuple[str, ...]) -> Any:
    if isinstance(value, str):
        return mask_text(value, keep=keep)
    if isinstance(value, dict):
        return {k: _masked(v, keep) for k, v in value.items()}
    if isinstance(value, list):
        return [_masked(v, keep) for v in value]
    return value
