"""Bulk import: records from Parquet, CSV or JSON Lines, checked and written column-wise.

Same guarantees as `imports.import_records` — the whole file or nothing, every bad line reported
with its column and reason, importing a file twice adds nothing, a source submits only the
behaviours it is authorised for — but the checks are one DuckDB query over an Arrow table instead
of a Python loop, and rows reach the store by `executemany` of plain tuples (SQLite) or `COPY`
(PostgreSQL), effects included.

Effects of fresh records are derived column-wise too. A record with no events yet is the simplest
case of DESIGN.md's semantics: start = max(occurred_on, recorded_on + notice), until = occurred_on +
validity. Every record of one import has the same recorded_on, so `recorded_on + notice` is one
date per behaviour, computed here with `Period.after` exactly as `effects.active_window` does; only
`occurred_on + validity` varies per row, and DuckDB's `date + INTERVAL` clips to the month's last
day like dateutil (2024-02-29 + P1Y = 2025-02-28; months before days). tests/test_bulk.py checks
this derivation against `effects.derive_effects` on random records with Hypothesis.

Notices are set-based as well (`notices.write_fresh`): one facts text per (behaviour, occurred_on,
subject kind), rendered by the row-wise code, into which the database pastes each record's fields.

Differences from the row-wise import, all stricter or cosmetic: dates must be written YYYY-MM-DD
(Python would also accept 20240101); Parquet rows are numbered from 1 as "row N" in place of a line.
"""

from __future__ import annotations

import datetime as dt
import functools
import gc
import hashlib
import io
import itertools
import json
import re
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, nullcontext
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
from sqlalchemy import Connection, func, select
from sqlalchemy.exc import DBAPIError

from xinyong import identifiers, ledger, notices
from xinyong import store as t
from xinyong.clock import local_day, to_storage
from xinyong.errors import BadInput, Problem
from xinyong.imports import MAX_PROBLEMS, RECORD_COLUMNS, RECORD_OPTIONAL, ImportResult
from xinyong.registry import SchemeVersion, require_source, scheme_versions
from xinyong.store import Store

BULK_SUFFIXES = (".parquet", ".csv", ".jsonl", ".ndjson")
_TS_FORMAT = "%Y-%m-%d %H:%M:%S.%f"  # how SQLAlchemy keeps DateTime in SQLite
_LINE = "__line__"  # every reader numbers its rows here, as the file's own lines (Parquet: rows)


# --- reading ------------------------------------------------------------------------------------


def read_table(path: Path) -> tuple[pa.Table, str]:
    """The file as a table of strings with each row's line (`_LINE`), and how rows are named."""
    suffix = path.suffix.lower()
    try:
        if suffix == ".parquet":
            # ParquetFile, not read_table: the dataset layer behind the latter imports pandas (1 s).
            table = pq.ParquetFile(path).read()
            label = "row"
            lines = pa.array(np.arange(1, table.num_rows + 1, dtype=np.int64))
        elif suffix == ".csv":
            table, lines = _read_csv(path)
            label = "line"
        elif suffix in {".jsonl", ".ndjson"}:
            return _read_jsonl(path), "line"
        else:
            raise BadInput(f"{path.name}: use a .parquet, .csv or .jsonl file")
    except pa.ArrowInvalid as exc:
        raise BadInput(f"{path.name}: cannot be read: {exc}") from None
    except OSError as exc:
        raise BadInput(f"cannot read {path}: {exc}") from None
    columns = {}
    for name in table.column_names:
        column = table.column(name)
        columns[name.strip()] = column if column.type == pa.string() else pc.cast(column, pa.string())
    columns[_LINE] = lines
    return pa.table(columns), label


# A line ends at \r\n, \r or \n, as for the csv module that the row-wise import reads with.
_LINE_BREAK = "\r\n|\r|\n"


def _read_csv(path: Path) -> tuple[pa.Table, pa.Array]:
    """Rows and the physical line each starts on: a quoted field may hold line breaks, and blank
    lines are skipped as by the row-wise import (rows whose fields are all blank, counted as lines)."""
    header = pacsv.open_csv(path).schema.names
    table = pacsv.read_csv(
        path,
        read_options=pacsv.ReadOptions(encoding="utf8", block_size=64 << 20),
        # Blank lines become rows of empty fields, so that they keep their place in the count.
        parse_options=pacsv.ParseOptions(newlines_in_values=True, ignore_empty_lines=False),
        convert_options=pacsv.ConvertOptions(
            column_types={name: pa.string() for name in header},
            strings_can_be_null=False,
            quoted_strings_can_be_null=False,
        ),
    )
    n = table.num_rows
    breaks = pa.array(np.zeros(n, dtype=np.int64))
    for column in table.columns:
        if pc.any(pc.match_substring_regex(column, "[\r\n]")).as_py():
            breaks = pc.add(breaks, pc.cast(pc.count_substring_regex(column, _LINE_BREAK), pa.int64()))
    first = 2 + sum(len(re.findall(_LINE_BREAK, name)) for name in header)
    starts = pc.add(pc.subtract(pc.cumulative_sum(breaks), breaks), pa.array(np.arange(first, first + n)))
    blank = functools.reduce(pc.and_, (pc.equal(pc.utf8_trim_whitespace(c), "") for c in table.columns))
    keep = pc.invert(blank)
    return table.filter(keep), starts.filter(keep)


def _read_jsonl(path: Path) -> pa.Table:
    """JSON Lines read as the row-wise import reads them (values as text, physical line numbers);
    Arrow's JSON reader would guess dates and numbers, and drop the line numbers."""
    import orjson

    columns: dict[str, list[str | None]] = {name: [] for name in RECORD_COLUMNS + RECORD_OPTIONAL}
    lines: list[int] = []
    problems: list[Problem] = []
    with path.open("rb") as fh:
        for number, raw in enumerate(fh, start=1):
            if not raw.strip():
                continue
            try:
                value = orjson.loads(raw)
            except orjson.JSONDecodeError as exc:
                problems.append(Problem(f"line {number}", f"not JSON: {exc}", line=number))
                continue
            if not isinstance(value, dict):
                problems.append(Problem(f"line {number}", "each line must be a JSON object", line=number))
                continue
            for key in sorted(set(value) - set(columns)):
                problems.append(Problem(f"line {number}, column {key}", "unknown column", line=number, column=key))
            for key in RECORD_COLUMNS:
                if key not in value:
                    problems.append(Problem(f"line {number}, column {key}", "missing", line=number, column=key))
            lines.append(number)
            for key, values in columns.items():
                item = value.get(key)
                values.append(None if item is None else str(item).strip())
    if problems:
        raise BadInput(f"{path.name}: {len(problems)} problem(s); nothing was imported", problems[:MAX_PROBLEMS])
    table = pa.table({k: pa.array(v, pa.string()) for k, v in columns.items()})
    return table.append_column(_LINE, pa.array(lines, pa.int64()))


# --- checking -----------------------------------------------------------------------------------

_CHECKS = """
WITH f AS (
    SELECT line,
           trim(coalesce(subject_id, '')) AS subject_id,
           trim(coalesce(behaviour, '')) AS behaviour,
           trim(coalesce(occurred_on, '')) AS occurred_text,
           trim(coalesce(document_ref, '')) AS document_ref,
           nullif(trim(coalesce(amount, '')), '') AS amount_text,
           nullif(trim(coalesce(note, '')), '') AS note,
           CASE WHEN regexp_full_match(trim(coalesce(occurred_on, '')), '[0-9]{4}-[0-9]{2}-[0-9]{2}')
                THEN TRY_CAST(trim(occurred_on) AS DATE) END AS occurred_on,
           TRY_CAST(nullif(trim(coalesce(amount, '')), '') AS DECIMAL(38, 6)) AS amount_exact
    FROM raw
),
firsts AS (
    SELECT document_ref, min(line) AS first_line FROM f
    WHERE length(document_ref) BETWEEN 1 AND 128 GROUP BY document_ref
),
g AS (
    SELECT f.*, firsts.first_line, CAST(round(amount_exact, 2) AS DECIMAL(18, 2)) AS amount,
           k.subject_id IS NOT NULL AS registered, k.kind AS subject_kind,
           b.behaviour IS NOT NULL AS known,
           a.behaviour IS NOT NULL AS authorised,
           e.id AS existing_id,
           e.id IS NOT NULL AND (
               e.subject_id IS DISTINCT FROM f.subject_id OR e.behaviour IS DISTINCT FROM f.behaviour
               OR e.occurred_on IS DISTINCT FROM f.occurred_on
               OR CAST(e.amount AS DECIMAL(18, 2)) IS DISTINCT FROM CAST(round(f.amount_exact, 2) AS DECIMAL(18, 2))
               OR e.note IS DISTINCT FROM f.note
           ) AS conflicting
    FROM f
    LEFT JOIN firsts ON firsts.document_ref = f.document_ref
    LEFT JOIN known_subjects AS k ON k.subject_id = f.subject_id
    LEFT JOIN known_behaviours AS b ON b.behaviour = f.behaviour
    LEFT JOIN authorised_behaviours AS a ON a.behaviour = f.behaviour
    LEFT JOIN existing AS e ON e.document_ref = f.document_ref AND firsts.first_line = f.line
)
SELECT * FROM g ORDER BY line
"""

_PROBLEMS = """
SELECT line, 'subject_id' AS col, subject_id AS value, 'unregistered' AS why FROM checked WHERE NOT registered
UNION ALL SELECT line, 'behaviour', behaviour, 'unknown' FROM checked WHERE NOT known
UNION ALL SELECT line, 'behaviour', behaviour, 'unauthorised' FROM checked WHERE known AND NOT authorised
UNION ALL SELECT line, 'occurred_on', occurred_text, 'not a date' FROM checked WHERE occurred_on IS NULL
UNION ALL SELECT line, 'occurred_on', CAST(occurred_on AS VARCHAR), 'future' FROM checked WHERE occurred_on > $today
UNION ALL SELECT line, 'amount', amount_text, 'not a number'
    FROM checked WHERE amount_text IS NOT NULL AND amount_exact IS NULL
UNION ALL SELECT line, 'amount', amount_text, 'out of range'
    FROM checked WHERE amount_exact IS NOT NULL AND (amount_exact < 0 OR amount_exact >= 1e16)
UNION ALL SELECT line, 'document_ref', document_ref, 'bad ref' FROM checked WHERE first_line IS NULL
UNION ALL SELECT line, 'document_ref', document_ref || '|' || CAST(first_line AS VARCHAR), 'duplicate'
    FROM checked WHERE first_line IS NOT NULL AND first_line <> line
UNION ALL SELECT line, 'document_ref', document_ref || '|' || CAST(existing_id AS VARCHAR), 'conflict'
    FROM checked WHERE conflicting
ORDER BY line, col
"""


def _unregistered_reason(subject_id: str) -> str:
    # The same wording as imports.import_records: a malformed id is named as such.
    reasons = []
    for kind in identifiers.SUBJECT_KINDS:
        try:
            identifiers.validate(subject_id, kind)
        except ValueError as exc:
            reasons.append(str(exc))
    if len(reasons) == 2:
        return reasons[0] if len(subject_id) == 18 and subject_id[:17].isdigit() else reasons[1]
    return f"subject {subject_id} is not registered: import it in a subjects file first"


def _reason(col: str, value: str, why: str, source: str) -> str:
    if why == "unregistered":
        return _unregistered_reason(value)
    if why == "unknown":
        return f"unknown behaviour {value!r}: it is in no loaded scheme's catalogue"
    if why == "unauthorised":
        return f"source {source} is not authorised to submit {value}"
    if why == "not a date":
        return f"{value!r} is not a date (YYYY-MM-DD)"
    if why == "future":
        return f"{value} is in the future"
    if why == "not a number":
        return f"{value!r} is not a number"
    if why == "out of range":
        return f"{value} is not a non-negative amount below 10^16"
    if why == "bad ref":
        return "a document reference of 1 to 128 characters is required"
    ref, _, other = value.rpartition("|")
    if why == "duplicate":
        return f"{ref} already appears on line {other}"
    return (
        f"{ref} is already record {other} with different facts; "
        "change a record with `records correct`, not by sending it again"
    )


def _column_problems(columns: Sequence[str], label: str) -> list[Problem]:
    expected = RECORD_COLUMNS + RECORD_OPTIONAL
    where = "line 1" if label == "line" else "columns"
    problems = [
        Problem(f"{where}, column {c}", f"unknown column (expected {', '.join(expected)})", line=1, column=c)
        for c in columns
        if c not in expected
    ]
    problems += [
        Problem(f"{where}, column {c}", "required column is missing", line=1, column=c)
        for c in RECORD_COLUMNS
        if c not in columns
    ]
    return problems


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
_SUBJECTS = pa.schema([("subject_id", pa.string()), ("kind", pa.string())])


# Probing an index for one key costs about as much as reading eight rows in a scan.
_PROBE_COST = 8


@contextmanager
def _collector_paused() -> Iterator[None]:
    """Fetched rows are tuples of plain values, which form no cycles; left on, the cyclic collector
    walks every tuple alive again and again while a million of them are made (seconds, not ms)."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _read(conn: Connection, query: str, schema: pa.Schema, keys: pa.ChunkedArray | None = None) -> pa.Table:
    """The rows of `query` as Arrow without a Python object per row where the driver allows (SQLAlchemy
    rows cost a microsecond each). With `keys`, `{keys}` in the query is that set of values."""
    raw = conn.connection.driver_connection
    assert raw is not None
    values = [] if keys is None else keys.to_pylist()
    if conn.dialect.name == "sqlite":
        query = query.replace("{keys}", "(SELECT value FROM json_each(?))")
        with _collector_paused():
            rows = raw.execute(query, [json.dumps(values)] if keys is not None else []).fetchall()
            columns = list(zip(*rows, strict=True)) if rows else [() for _ in schema]
            # SQLite keeps dates and amounts as text, which Arrow parses into the schema's types.
            return pa.table(
                [
                    pa.array(column, field.type if pa.types.is_integer(field.type) else pa.string()).cast(field.type)
                    for column, field in zip(columns, schema, strict=True)
                ],
                schema=schema,
            )
    # COPY TO STDOUT hands the rows over as CSV for Arrow to parse; psycopg binds `values` client-side.
    if keys is not None:
        query = query.replace("%", "%%").replace("{keys}", "(SELECT unnest(%s::text[]))")
    buffer = io.BytesIO()
    with (
        raw.cursor() as cursor,
        cursor.copy(f"COPY ({query}) TO STDOUT WITH (FORMAT csv)", [values] if keys is not None else None) as copy,
    ):
        for block in copy:
            buffer.write(block)
    if not buffer.tell():
        return schema.empty_table()
    buffer.seek(0)
    return pacsv.read_csv(
        buffer,
        read_options=pacsv.ReadOptions(column_names=schema.names),
        # PostgreSQL writes NULL as an unquoted empty field and an empty string as "".
        convert_options=pacsv.ConvertOptions(
            column_types=schema, null_values=[""], strings_can_be_null=True, quoted_strings_can_be_null=False
        ),
    )


def _probe_or_scan(conn: Connection, query: str, column: str, keys: pa.ChunkedArray, schema: pa.Schema) -> pa.Table:
    """The rows of `query` whose `column` is one of `keys`: looked up key by key, or, when `query`
    has fewer rows than that would cost, read whole (a fresh source's records, or most subjects).
    The count stops at that bound, so it costs no more than the probing it may save."""
    bound = len(keys) * _PROBE_COST
    found = conn.exec_driver_sql(f"SELECT count(*) FROM ({query} LIMIT {bound}) AS bounded").scalar()
    if (found or 0) < bound:
        return _read(conn, query, schema)
    return _read(conn, f"{query} AND {column} IN {{keys}}", schema, keys)


def _subjects(conn: Connection, named: pa.ChunkedArray) -> pa.Table:
    """The kinds of the registered subjects among those a file names."""
    return _probe_or_scan(conn, "SELECT id, kind FROM subjects WHERE true", "id", named, _SUBJECTS)


def _existing(conn: Connection, source: str, refs: pa.ChunkedArray) -> pa.Table:
    """The records this source already sent under the file's references."""
    query = (
        "SELECT id, document_ref, subject_id, behaviour, occurred_on, amount, note FROM records "
        f"WHERE source_id = {_quote(source)}"
    )
    return _probe_or_scan(conn, query, "document_ref", refs, _EXISTING)


# --- effects of fresh records ---------------------------------------------------------------------


def behaviour_parameters(versions: Sequence[SchemeVersion], recorded_at: dt.datetime) -> pa.Table:
    """One row per (scheme version, behaviour): points, the earliest start its notice allows for
    records recorded at `recorded_at`, and its validity in months and days."""
    rows: dict[str, list[Any]] = {k: [] for k in ("scheme", "version", "behaviour", "points", "notice_from")}
    rows |= {"months": [], "days": []}
    for version in versions:
        scheme = version.scheme
        recorded_on = local_day(recorded_at, scheme.timezone)
        for b in scheme.behaviours:
            rows["scheme"].append(scheme.scheme)
            rows["version"].append(scheme.version)
            rows["behaviour"].append(b.code)
            rows["points"].append(b.points)
            rows["notice_from"].append(b.notice_in(scheme).after(recorded_on))
            rows["months"].append(b.validity.years * 12 + b.validity.months)
            rows["days"].append(b.validity.days)
    types = {
        "scheme": pa.string(),
        "version": pa.string(),
        "behaviour": pa.string(),
        "points": pa.int64(),
        "notice_from": pa.date32(),
        "months": pa.int32(),
        "days": pa.int32(),
    }
    return pa.table({k: pa.array(v, types[k]) for k, v in rows.items()})


FRESH_EFFECTS = """
SELECT p.scheme, p.version, r.id AS record_id, r.subject_id, r.behaviour, p.points, r.occurred_on,
       greatest(r.occurred_on, p.notice_from) AS valid_from,
       CAST(r.occurred_on + to_months(p.months) + to_days(p.days) AS DATE) AS valid_until
FROM fresh AS r JOIN parameters AS p ON p.behaviour = r.behaviour
WHERE greatest(r.occurred_on, p.notice_from) < CAST(r.occurred_on + to_months(p.months) + to_days(p.days) AS DATE)
ORDER BY r.id, p.scheme, p.version
"""


def fresh_effects(con: Any, records: str, parameters: pa.Table) -> pa.Table:
    """Effects rows (without knowledge times) of records that have no events yet.

    `records` names a DuckDB relation with id, subject_id, behaviour and occurred_on (DATE).
    """
    con.register("parameters", parameters)
    con.execute(f"CREATE OR REPLACE TEMP VIEW fresh AS SELECT * FROM {records}")
    table: pa.Table = con.sql(FRESH_EFFECTS).to_arrow_table()
    return table


def derive_fresh_effects(records: pa.Table, versions: Sequence[SchemeVersion], recorded_at: dt.datetime) -> pa.Table:
    """`fresh_effects` on an Arrow table, for callers without a DuckDB connection of their own."""
    import duckdb

    con = duckdb.connect()
    try:
        con.register("input_records", records)
        return fresh_effects(con, "input_records", behaviour_parameters(versions, recorded_at))
    finally:
        con.close()


# --- writing --------------------------------------------------------------------------------------


_BATCH = 200_000  # rows per executemany or COPY chunk: bounded memory, few round trips


def _plain(column: pa.Array) -> list[Any]:
    """Python values for the driver: text for dates and amounts, as the store keeps them in SQLite."""
    if pa.types.is_integer(column.type) or pa.types.is_string(column.type):
        return column.to_pylist()  # type: ignore[no-any-return]
    return pc.cast(column, pa.string()).to_pylist()  # type: ignore[no-any-return]


def _load_sqlite(conn: Connection, name: str, table: pa.Table, constants: dict[str, str] | None = None) -> None:
    """Insert an Arrow table by `executemany` on SQLite's own cursor, with `constants` for every row."""
    constants = constants or {}
    names = [*table.column_names, *constants]
    statement = f"INSERT INTO {name} ({', '.join(names)}) VALUES ({', '.join('?' * len(names))})"
    raw = conn.connection.driver_connection
    assert raw is not None
    cursor = raw.cursor()
    try:
        for batch in table.to_batches(max_chunksize=_BATCH):
            columns = [_plain(column) for column in batch.columns]
            fixed = [itertools.repeat(value, batch.num_rows) for value in constants.values()]
            cursor.executemany(statement, zip(*columns, *fixed, strict=True))
    finally:
        cursor.close()


def _load_postgres(conn: Connection, name: str, table: pa.Table, constants: dict[str, str] | None = None) -> None:
    """COPY an Arrow table into PostgreSQL as CSV written by Arrow (nulls are unquoted empty fields)."""
    for column, value in (constants or {}).items():
        table = table.append_column(column, pa.repeat(pa.scalar(value, pa.string()), table.num_rows))
    raw = conn.connection.driver_connection
    assert raw is not None
    statement = f"COPY {name} ({', '.join(table.column_names)}) FROM STDIN WITH (FORMAT csv)"
    with raw.cursor() as cursor, cursor.copy(statement) as copy:
        for batch in table.to_batches(max_chunksize=_BATCH):
            buffer = io.BytesIO()
            pacsv.write_csv(batch, buffer, write_options=pacsv.WriteOptions(include_header=False))
            copy.write(buffer.getvalue())


def _prepare_postgres(conn: Connection) -> None:
    """Lock out other record writers (ids are assigned here) and, where the role may, skip the
    per-row foreign-key triggers.

    PostgreSQL checks a foreign key row by row, locking the parent row each time: about 8 µs per
    key, four keys per adverse record (a million records: 63 s with the triggers, under 40 s
    without). The import checks every reference itself, in this transaction (subjects and source
    before writing; notices point at records and outbox rows at notices written here), and SHARE
    locks keep subjects and sources unchanged until commit, so the triggers would find nothing.
    `session_replication_role` needs a superuser or (15+) `GRANT SET ON PARAMETER
    session_replication_role`; without it the triggers run as usual."""
    conn.exec_driver_sql("LOCK TABLE records IN EXCLUSIVE MODE")
    # The notices are composed by joining the new records with their templates: in memory, not in
    # batches on disk as the default 4 MB would have it (for this transaction only).
    conn.exec_driver_sql("SET LOCAL work_mem = '256MB'")
    try:
        with conn.begin_nested():
            conn.exec_driver_sql("SET LOCAL session_replication_role = replica")
    except DBAPIError as exc:
        if getattr(exc.orig, "sqlstate", None) != "42501":  # insufficient_privilege
            raise
        return
    conn.exec_driver_sql("LOCK TABLE subjects, sources IN SHARE MODE")


@contextmanager
def _page_cache(conn: Connection) -> Iterator[None]:
    """Index pages of a large SQLite store do not fit the default 2 MiB page cache; inserting
    millions of keys in subject order then thrashes. A bigger cache for this import only."""
    raw = conn.connection.driver_connection
    assert raw is not None
    previous = raw.execute("PRAGMA cache_size").fetchone()[0]
    raw.execute("PRAGMA cache_size = -524288")
    try:
        yield
    finally:
        raw.execute(f"PRAGMA cache_size = {int(previous)}")


# --- the import -----------------------------------------------------------------------------------


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def import_records(
    store: Store,
    path: Path,
    *,
    source: str,
    now: dt.datetime,
    actor: str,
    name: str | None = None,
) -> ImportResult:
    """Check the whole file, then write its new records, their effects and notices in one transaction."""
    import duckdb

    name = name or path.name
    table, label = read_table(path)
    problems = _column_problems([c for c in table.column_names if c != _LINE], label)
    if problems:
        raise BadInput(f"{name}: {len(problems)} problem(s); nothing was imported", problems)
    for optional in RECORD_OPTIONAL:
        if optional not in table.column_names:
            table = table.append_column(optional, pa.nulls(table.num_rows, pa.string()))
    table = table.rename_columns(["line" if c == _LINE else c for c in table.column_names])
    stamp = to_storage(now).strftime(_TS_FORMAT)
    con = duckdb.connect()
    try:
        with store.write() as conn:
            authorised = require_source(conn, source)
            known = ledger.known_behaviours(conn)
            if not store.is_sqlite:
                _prepare_postgres(conn)
            con.register("raw", table)
            named = con.sql("SELECT DISTINCT trim(coalesce(subject_id, '')) FROM raw").to_arrow_table().column(0)
            con.register("known_subjects", _subjects(conn, named))
            con.register("known_behaviours", pa.table({"behaviour": pa.array(sorted(known), pa.string())}))
            con.register("authorised_behaviours", pa.table({"behaviour": pa.array(sorted(authorised), pa.string())}))
            refs = con.sql("SELECT DISTINCT trim(coalesce(document_ref, '')) FROM raw").to_arrow_table().column(0)
            con.register("existing", _existing(conn, source, refs))
            con.execute(f"CREATE TEMP TABLE checked AS {_CHECKS}")
            today = local_day(now)
            found = con.execute(_PROBLEMS.replace("$today", f"DATE '{today.isoformat()}'")).fetchall()
            if found:
                shown = [
                    Problem(
                        f"{label} {line}, column {col}",
                        _reason(col, value, why, source),
                        line=line,
                        column=col,
                    )
                    for line, col, value, why in found[:MAX_PROBLEMS]
                ]
                more = f" (showing the first {MAX_PROBLEMS})" if len(found) > MAX_PROBLEMS else ""
                raise BadInput(f"{name}: {len(found)} problem(s){more}; nothing was imported", shown)
            present = con.execute("SELECT count(*) FROM checked WHERE existing_id IS NOT NULL").fetchall()
            already = int(present[0][0])
            top = conn.execute(select(func.max(t.records.c.id))).scalar() or 0
            records = con.sql(
                f"SELECT {int(top)} + row_number() OVER (ORDER BY line) AS id, "
                "document_ref, subject_id, behaviour, occurred_on, amount, note, subject_kind "
                "FROM checked WHERE existing_id IS NULL ORDER BY line"
            ).to_arrow_table()
            con.register("new_records", records)
            versions = scheme_versions(conn)
            effects = fresh_effects(con, "new_records", behaviour_parameters(versions, now))
            if records.num_rows:
                load = _load_sqlite if store.is_sqlite else _load_postgres
                with _page_cache(conn) if store.is_sqlite else nullcontext():
                    constants = {"source_id": source, "recorded_at": stamp, "recorded_by": actor}
                    load(conn, "records", records.drop_columns(["subject_kind"]), constants)
                    load(conn, "effects", effects, {"known_from": stamp})
                    if not store.is_sqlite:
                        last = int(top) + records.num_rows
                        conn.exec_driver_sql(f"SELECT setval(pg_get_serial_sequence('records', 'id'), {last})")
                    # Notice before effect holds on this path too: every new adverse record gets its
                    # notice, and the notice its deliveries, in this transaction.
                    fresh = records.select(["id", "behaviour", "occurred_on", "subject_kind"])
                    notices.write_fresh(conn, fresh, now, versions, load)
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


def wants_bulk(path: Path, threshold_bytes: int | None = None) -> bool:
    """Parquet always goes the bulk way; CSV and JSON Lines do when the file is large."""
    if threshold_bytes is None:
        from xinyong.settings import BULK_BYTES

        threshold_bytes = int(BULK_BYTES.value() or 64 << 20)
    if path.suffix.lower() == ".parquet":
        return True
    try:
        return path.suffix.lower() in BULK_SUFFIXES and path.stat().st_size >= threshold_bytes
    except OSError:
        return False
