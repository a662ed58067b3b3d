"""Bulk import: records from Parquet, CSV or JSON Lines, checked and written column-wise.

Same guarantees as `imports.import_records` — the whole file or nothing, every bad line reported
with its column and reason, importing a file twice adds nothing, a source submits only the
behaviours it is authorised for — but the checks are one DuckDB query over an Arrow table instead
of a Python loop, and rows reach the store the fastest way its backend has (`Backend.load_arrow`:
`executemany` of plain tuples on SQLite, binary `COPY` encoded column-wise on PostgreSQL), effects
included; what the file is checked against is read as Arrow (`Backend.read_arrow`).

What follows from the fresh records is the after-append step's (`ledger.appended`), set-based as
well: their effects derived column-wise (`derived.fresh_effects`) and their notices written from
one facts text per (behaviour, occurred_on, subject kind) (`notices.write_fresh`), in this
import's transaction.

Differences from the row-wise import, all stricter or cosmetic: dates must be written YYYY-MM-DD
(Python would also accept 20240101); Parquet rows are numbered from 1 as "row N" in place of a line.
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
from sqlalchemy import Connection

from xinyong.errors import BadInput, Problem
from xinyong.ledger import records as ledger
from xinyong.ledger.appended import AfterAppend
from xinyong.ledger.bulk_files import LINE, read_table
from xinyong.ledger.files import MAX_PROBLEMS, RECORD_OPTIONAL, raise_problems
from xinyong.ledger.imports import ImportResult, source_turn
from xinyong.ledger.registry import require_source, scheme_versions
from xinyong.rules import values
from xinyong.rules.clock import local_day, to_storage
from xinyong.storage import tables as t
from xinyong.storage.backend import backend_of
from xinyong.storage.store import Store
from xinyong.storage.tables import STORED_TIMESTAMP

# --- checking -----------------------------------------------------------------------------------

# Every value is read by its one rule (`rules.values`), as on the row-wise path: each distinct
# text of a column is read once in Python and the verdicts joined back in (`_verdicts`), so a file
# is refused for exactly the values, and with exactly the reasons, the row-wise import gives. A
# 5 M-record file has some tens of thousands of distinct amounts and a few thousand days: a fraction
# of a second. Subject ids are read only when they are not registered exactly as written (most
# are: registration stores them in their canonical form), which spares a million identifier checks.
_CHECKS = """
WITH f AS (
    SELECT line,
           coalesce(subject_id, '') AS subject_text,
           coalesce(behaviour, '') AS behaviour,
           coalesce(occurred_on, '') AS occurred_text,
           coalesce(document_ref, '') AS document_ref,
           coalesce(amount, '') AS amount_text,
           nullif(coalesce(note, ''), '') AS note
    FROM raw
),
firsts AS (
    SELECT document_ref, min(line) AS first_line FROM f
    WHERE length(document_ref) BETWEEN 1 AND 128 GROUP BY document_ref
),
v AS (
    SELECT f.*, coalesce(s.value, CASE WHEN s.why IS NULL THEN f.subject_text END) AS subject_id,
           s.why AS subject_why, d.value AS occurred_on, d.why AS occurred_why, m.value AS amount, m.why AS amount_why
    FROM f
    LEFT JOIN subject_fixes AS s ON s.text = f.subject_text
    LEFT JOIN days AS d ON d.text = f.occurred_text
    LEFT JOIN amounts AS m ON m.text = f.amount_text
),
g AS (
    SELECT v.*, firsts.first_line,
           k.subject_id IS NOT NULL AS registered, k.kind AS subject_kind, k.email AS subject_email,
           b.behaviour IS NOT NULL AS known,
           a.behaviour IS NOT NULL AS authorised,
           e.id AS existing_id,
           e.id IS NOT NULL AND (
               e.subject_id IS DISTINCT FROM v.subject_id OR e.behaviour IS DISTINCT FROM v.behaviour
               OR e.occurred_on IS DISTINCT FROM v.occurred_on
               OR CAST(e.amount AS DECIMAL(18, 2)) IS DISTINCT FROM v.amount
               OR e.note IS DISTINCT FROM v.note
           ) AS conflicting
    FROM v
    LEFT JOIN firsts ON firsts.document_ref = v.document_ref
    LEFT JOIN known_subjects AS k ON k.subject_id = v.subject_id
    LEFT JOIN known_behaviours AS b ON b.behaviour = v.behaviour
    LEFT JOIN authorised_behaviours AS a ON a.behaviour = v.behaviour
    LEFT JOIN existing AS e ON e.document_ref = v.document_ref AND firsts.first_line = v.line
)
SELECT * FROM g ORDER BY line
"""

# `value` is the problem's reason itself where `why` is 'read' (a rule of `rules.values` refused it).
_PROBLEMS = """
SELECT line, 'subject_id' AS col, subject_why AS value, 'read' AS why FROM checked WHERE subject_why IS NOT NULL
UNION ALL SELECT line, 'subject_id', subject_id, 'unregistered'
    FROM checked WHERE subject_why IS NULL AND NOT registered
UNION ALL SELECT line, 'behaviour', behaviour, 'unknown' FROM checked WHERE NOT known
UNION ALL SELECT line, 'behaviour', behaviour, 'unauthorised' FROM checked WHERE known AND NOT authorised
UNION ALL SELECT line, 'occurred_on', occurred_why, 'read' FROM checked WHERE occurred_why IS NOT NULL
UNION ALL SELECT line, 'amount', amount_why, 'read' FROM checked WHERE amount_why IS NOT NULL
UNION ALL SELECT line, 'document_ref', document_ref, 'bad ref' FROM checked WHERE first_line IS NULL
UNION ALL SELECT line, 'document_ref', document_ref || '|' || CAST(first_line AS VARCHAR), 'duplicate'
    FROM checked WHERE first_line IS NOT NULL AND first_line <> line
UNION ALL SELECT line, 'document_ref', document_ref || '|' || CAST(existing_id AS VARCHAR), 'conflict'
    FROM checked WHERE conflicting
ORDER BY line, col
"""


def _verdicts(column: pa.ChunkedArray | Sequence[str], read: Callable[[str], Any], kind: pa.DataType) -> pa.Table:
    """Each text read by its rule: (text, value, why), `why` being the refusal's reason."""
    texts: list[str] = column.to_pylist() if isinstance(column, pa.ChunkedArray) else list(column)
    got: list[Any] = []
    whys: list[str | None] = []
    for text in texts:
        try:
            got.append(read(text))
            whys.append(None)
        except BadInput as exc:
            got.append(None)
            whys.append(exc.problems[0].why if exc.problems else exc.message)
    return pa.table(
        {"text": pa.array(texts, pa.string()), "value": pa.array(got, kind), "why": pa.array(whys, pa.string())}
    )


def _distinct(con: Any, column: str) -> pa.ChunkedArray:
    found: pa.ChunkedArray = con.sql(f"SELECT DISTINCT coalesce({column}, '') FROM raw").to_arrow_table().column(0)
    return found


def _reason(col: str, value: str, why: str, source: str) -> str:
    if why == "read":
        return value
    if why == "unregistered":
        return f"subject {value} is not registered: import it in a subjects file first"
    if why == "unknown":
        return f"unknown behaviour {value!r}: it is in no loaded scheme's catalogue"
    if why == "unauthorised":
        return f"source {source} is not authorised to submit {value}"
    if why == "bad ref":
        return "a document reference of 1 to 128 characters is required"
    ref, _, other = value.rpartition("|")
    if why == "duplicate":
        return f"{ref} already appears on line {other}"
    return (
        f"{ref} is already record {other} with different facts; "
        "change a record with `records correct`, not by sending it again"
    )


_EXISTING = pa.schema(
    [
        ("id", pa.int64()),
        ("document_ref", pa.string()),
        ("subject_id", pa.string()),
        ("behaviour", pa.string()),
        ("occurred_on", pa.date32()),
        ("amount", pa.decimal128(18, 2)),
        ("note", pa.string()),
    ]
)
_KINDS = pa.schema([("subject_id", pa.string()), ("kind", pa.string())])
_EMAILS = pa.schema([("subject_id", pa.string()), ("email", pa.string())])


# Probing an index for one key costs about as much as reading eight rows in a scan.
_PROBE_COST = 8


def _probe_or_scan(conn: Connection, query: str, column: str, keys: pa.ChunkedArray, schema: pa.Schema) -> pa.Table:
    """The rows of `query` whose `column` is one of `keys`: looked up key by key, or, when `query`
    has fewer rows than that would cost, read whole (a fresh source's records, or most subjects).
    The count stops at that bound, so it costs no more than the probing it may save."""
    bound = len(keys) * _PROBE_COST
    found = conn.exec_driver_sql(f"SELECT count(*) FROM ({query} LIMIT {bound}) AS bounded").scalar()
    read = backend_of(conn).read_arrow
    if (found or 0) < bound:
        return read(conn, query, schema)
    return read(conn, f"{query} AND {column} IN {{keys}}", schema, keys)


def _subjects(conn: Connection, named: pa.ChunkedArray) -> pa.Table:
    """The kinds and e-mail addresses (for their notices) of the registered subjects among those a
    file names. Read apart and joined here: SQLite joins by probing the contacts' index once per
    subject, which took more than twice as long as reading both (5 M records on 1 M subjects, one in
    two with an address: 8.2 s against 3.6 s)."""
    kinds = _probe_or_scan(conn, "SELECT id, kind FROM subjects WHERE true", "id", named, _KINDS)
    emails = _probe_or_scan(
        conn, "SELECT subject_id, email FROM contacts WHERE email <> ''", "subject_id", named, _EMAILS
    )
    return kinds.join(emails, "subject_id", join_type="left outer")


def _subjects_named(conn: Connection, texts: pa.ChunkedArray) -> tuple[pa.Table, pa.Table]:
    """The subjects a file names: the fixes (text, id, why) for the texts that are not a registered
    id as written — each read by `values.subject_id`, which gives the canonical id or why not —
    and the registered subjects among them (`_subjects`). Texts are compared in Arrow: a file
    names up to millions of subjects, nearly all registered as written, and only the others
    reach Python."""
    registered = _subjects(conn, texts)
    as_written = registered.column("subject_id")
    fixes = _verdicts(texts.filter(pc.invert(pc.is_in(texts, value_set=as_written))), _subject_id, pa.string())
    canonical = pc.unique(fixes.column("value").drop_null())
    fresh = canonical.filter(pc.invert(pc.is_in(canonical, value_set=as_written)))
    if len(fresh):
        found = _subjects(conn, pa.chunked_array([fresh]))
        registered = pa.concat_tables([registered, found.cast(registered.schema)])
    return fixes, registered


def _day_reader(today: dt.date) -> Callable[[str], dt.date]:
    return functools.partial(values.day, where="occurred_on", not_after=today)


def _amount(text: str) -> Any:
    return values.amount(text, where="amount")


def _subject_id(text: str) -> str:
    return values.subject_id(text, where="subject_id")


def _existing(conn: Connection, source: str, refs: pa.ChunkedArray) -> pa.Table:
    """The records this source already sent under the file's references."""
    query = (
        "SELECT id, document_ref, subject_id, behaviour, occurred_on, amount, note FROM records "
        f"WHERE source_id = {_quote(source)}"
    )
    return _probe_or_scan(conn, query, "document_ref", refs, _EXISTING)


# --- the import -----------------------------------------------------------------------------------


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def import_records(
    store: Store,
    conn: Connection,
    path: Path,
    *,
    source: str,
    now: dt.datetime,
    actor: str,
    after: AfterAppend,
    name: str | None = None,
) -> ImportResult:
    """Check the whole file, then write its new records; the after-append step writes their
    effects and notices, all in the caller's transaction `conn`, which `store.write` opened with
    foreign-key checks off: every reference is checked here (subjects, source) or written here
    (records, notices)."""
    import duckdb

    name = name or path.name
    # Text without its surrounding whitespace, every line readable, as the row-wise reader's rows;
    # the lines that are not are left out, their problems kept to be reported with the others.
    table, label, problems = read_table(path, name)
    for optional in RECORD_OPTIONAL:
        if optional not in table.column_names:
            table = table.append_column(optional, pa.nulls(table.num_rows, pa.string()))
    table = table.rename_columns(["line" if c == LINE else c for c in table.column_names])
    stamp = to_storage(now).strftime(STORED_TIMESTAMP)
    backend = store.backend
    con = duckdb.connect()
    try:
        authorised = require_source(conn, source)
        source_turn(conn, source)
        known = ledger.known_behaviours(conn)
        backend.prepare_bulk_write(conn)
        con.register("raw", table)
        today = local_day(now)
        con.register("days", _verdicts(_distinct(con, "occurred_on"), _day_reader(today), pa.date32()))
        con.register("amounts", _verdicts(_distinct(con, "amount"), _amount, pa.decimal128(18, 2)))
        fixes, subjects = _subjects_named(conn, _distinct(con, "subject_id"))
        con.register("subject_fixes", fixes)
        con.register("known_subjects", subjects)
        con.register("known_behaviours", pa.table({"behaviour": pa.array(sorted(known), pa.string())}))
        con.register("authorised_behaviours", pa.table({"behaviour": pa.array(sorted(authorised), pa.string())}))
        refs = con.sql("SELECT DISTINCT coalesce(document_ref, '') FROM raw").to_arrow_table().column(0)
        con.register("existing", _existing(conn, source, refs))
        con.execute(f"CREATE TEMP TABLE checked AS {_CHECKS}")
        found = con.execute(_PROBLEMS).fetchall()
        if found or problems:
            # `found` is in line order: only its first MAX_PROBLEMS can be among those shown.
            count = len(problems) + len(found)
            problems += [
                Problem(f"{label} {line}, column {col}", _reason(col, value, why, source), line=line, column=col)
                for line, col, value, why in found[:MAX_PROBLEMS]
            ]
            raise_problems(name, problems, count)
        present = con.execute("SELECT count(*) FROM checked WHERE existing_id IS NOT NULL").fetchall()
        already = int(present[0][0])
        records = con.sql(
            "SELECT document_ref, subject_id, behaviour, occurred_on, amount, note, subject_kind, subject_email "
            "FROM checked WHERE existing_id IS NULL ORDER BY line"
        ).to_arrow_table()
        # In the file's order; drawn from the sequence where imports of other sources write side
        # by side (`Backend.new_ids`).
        records = records.add_column(0, "id", backend.new_ids(conn, t.records, records.num_rows))
        if records.num_rows:
            # What follows from the records (their effects and notices) is begun before they
            # are written, so that work needing no store may overlap the writing (see
            # `AfterAppend.bulk_appending`), and finished in this transaction once they are in.
            follow = after.bulk_appending(
                records, now, scheme_versions(conn), source=source, actor=actor, overlap=backend.load_frees_python
            )
            load = backend.load_arrow
            with backend.bulk_loading(conn):
                constants = {"source_id": source, "recorded_at": stamp, "recorded_by": actor}
                load(conn, "records", records.drop_columns(["subject_kind", "subject_email"]), constants)
                changed = pa.table({"subject_id": pc.unique(records.column("subject_id"))})
                load(conn, "subject_changes", changed, {"changed_at": stamp})
                follow.finish(conn, load)
        conn.execute(
            t.imports.insert().values(
                kind="records",
                source_id=source,
                file_name=name,
                file_sha256=_sha256(path),
                imported_at=to_storage(now),
                actor=actor,
                lines=table.num_rows,
                added=records.num_rows,
            )
        )
    finally:
        con.close()
    return ImportResult(records.num_rows, already, table.num_rows)


def _quote(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"
