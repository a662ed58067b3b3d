"""Bulk import: records from Parquet, CSV or JSON Lines, checked and written column-wise.

Same guarantees as `imports.import_records` — the whole file or nothing, every bad line reported
with its column and reason, importing a file twice adds nothing, a source submits only the
behaviours it is authorised for — but the checks are one DuckDB query over an Arrow table instead
of a Python loop, and rows reach the store by `executemany` of plain tuples (SQLite) or binary
`COPY` encoded column-wise (PostgreSQL), effects included.

Effects of fresh records are derived column-wise too. A record with no events yet is the simplest
case of DESIGN.md's semantics: start = max(occurred_on, recorded_on + notice), until = occurred_on +
validity. Every record of one import has the same recorded_on, so `recorded_on + notice` is one
date per behaviour, computed here with `Period.after` exactly as `effects.active_window` does; only
`occurred_on + validity` varies per row, and DuckDB's `date + INTERVAL` clips to the month's last
day like dateutil (2024-02-29 + P1Y = 2025-02-28; months before days). tests/test_bulk.py checks
this derivation against `effects.derive_effects` on random records with Hypothesis.

Notices are set-based as well (`notices.write_fresh`): one facts text per (behaviour, occurred_on,
subject kind), rendered by the row-wise code and stored once as a template; each notice keeps the
record's own values that go into it, written by SQLite (in SQL) or Arrow (for PostgreSQL, whose
one backend is the bottleneck).

Differences from the row-wise import, all stricter or cosmetic: dates must be written YYYY-MM-DD
(Python would also accept 20240101); Parquet rows are numbered from 1 as "row N" in place of a line.
"""

from __future__ import annotations

import csv
import datetime as dt
import functools
import gc
import hashlib
import io
import itertools
import json
import re
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager, nullcontext
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
from sqlalchemy import Connection
from sqlalchemy.exc import DBAPIError

from xinyong.due_process import notices
from xinyong.errors import BadInput, Problem
from xinyong.ledger import records as ledger
from xinyong.ledger.imports import MAX_PROBLEMS, RECORD_COLUMNS, RECORD_OPTIONAL, ImportResult, source_turn
from xinyong.ledger.registry import SchemeVersion, require_source, scheme_versions
from xinyong.rules import identifiers
from xinyong.rules.clock import local_day, to_storage
from xinyong.storage import store as t
from xinyong.storage.store import Store

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
    lines are skipped as by the row-wise import (rows whose fields are all blank, counted as lines).
    A row with more or fewer fields than the header is reported with its line, as row-wise."""
    header = pacsv.open_csv(path, parse_options=_csv_parsing(lambda _row: "skip")).schema.names
    set_aside: list[Any] = []  # pyarrow.csv.InvalidRow: rows Arrow could not split into the header's fields

    def keep_aside(row: Any) -> str:
        set_aside.append(row)
        return "skip"

    table = _parse_csv(path, header, keep_aside, use_threads=True)
    if set_aside:
        # The parallel reader cannot number the rows it sets aside (a block does not know how many
        # rows came before it); the serial one can. Only such files are read a second time.
        set_aside.clear()
        table = _parse_csv(path, header, keep_aside, use_threads=False)
    rows = table.num_rows + len(set_aside)
    aside = np.array([row.number - 2 for row in set_aside], dtype=np.int64)  # Arrow's row 1 is the header
    parsed = np.ones(rows, dtype=bool)
    parsed[aside] = False
    breaks = np.zeros(rows, dtype=np.int64)
    breaks[aside] = [len(re.findall(_LINE_BREAK, row.text)) for row in set_aside]
    for column in table.columns:
        if pc.any(pc.match_substring_regex(column, "[\r\n]")).as_py():
            counted = pc.count_substring_regex(column, _LINE_BREAK).to_numpy(zero_copy_only=False)
            breaks[parsed] += counted
    first = 2 + sum(len(re.findall(_LINE_BREAK, name)) for name in header)
    starts = np.cumsum(breaks) - breaks + np.arange(first, first + rows)
    problems = [
        Problem(f"line {line}", f"{row.actual_columns} fields, the header has {row.expected_columns}", line=line)
        for row, line in zip(set_aside, starts[aside].tolist(), strict=True)
        if not _blank_row(row.text)
    ]
    if problems:
        more = f" (showing the first {MAX_PROBLEMS})" if len(problems) > MAX_PROBLEMS else ""
        message = f"{path.name}: {len(problems)} problem(s){more}; nothing was imported"
        raise BadInput(message, problems[:MAX_PROBLEMS])
    blank = functools.reduce(pc.and_, (pc.equal(pc.utf8_trim_whitespace(c), "") for c in table.columns))
    keep = pc.invert(blank)
    return table.filter(keep), pa.array(starts[parsed]).filter(keep)


def _parse_csv(path: Path, header: list[str], invalid_row: Callable[[Any], str], *, use_threads: bool) -> pa.Table:
    return pacsv.read_csv(
        path,
        read_options=pacsv.ReadOptions(encoding="utf8", block_size=64 << 20, use_threads=use_threads),
        parse_options=_csv_parsing(invalid_row),
        convert_options=pacsv.ConvertOptions(
            column_types={name: pa.string() for name in header},
            strings_can_be_null=False,
            quoted_strings_can_be_null=False,
        ),
    )


def _csv_parsing(invalid_row: Callable[[Any], str]) -> pacsv.ParseOptions:
    # Blank lines become rows of empty fields, so that they keep their place in the count.
    return pacsv.ParseOptions(newlines_in_values=True, ignore_empty_lines=False, invalid_row_handler=invalid_row)


def _blank_row(text: str) -> bool:
    """Whether a row's fields are all blank (the row-wise import skips such a row whatever its
    number of fields, e.g. a line of spaces)."""
    fields = next(csv.reader(io.StringIO(text, newline="")), [])
    return not any(field.strip() for field in fields)


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
           k.subject_id IS NOT NULL AS registered, k.kind AS subject_kind, k.email AS subject_email,
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
_KINDS = pa.schema([("subject_id", pa.string()), ("kind", pa.string())])
_EMAILS = pa.schema([("subject_id", pa.string()), ("email", pa.string())])


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
    """The kinds and e-mail addresses (for their notices) of the registered subjects among those a
    file names. Read apart and joined here: SQLite joins by probing the contacts' index once per
    subject, which took more than twice as long as reading both (5 M records on 1 M subjects, one in
    two with an address: 8.2 s against 3.6 s)."""
    kinds = _probe_or_scan(conn, "SELECT id, kind FROM subjects WHERE true", "id", named, _KINDS)
    emails = _probe_or_scan(
        conn, "SELECT subject_id, email FROM contacts WHERE email <> ''", "subject_id", named, _EMAILS
    )
    return kinds.join(emails, "subject_id", join_type="left outer")


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


_BATCH = 200_000  # rows per executemany: bounded memory, few round trips
_COPY_BATCH = 50_000  # rows encoded at a time for COPY: small enough for encoding to overlap sending

# The order in which PostgreSQL is sent a table's rows. A file's document references arrive in no
# order, and records' UNIQUE (source_id, document_ref) index then takes a random leaf per row; in
# reference order each insert lands beside the one before (5 M records: 45 s of the server's CPU
# for the records' COPY, 35–42 s sorted). Only a sort of the whole file helps: sorted runs of
# 250,000 rows measured no gain, nor did subject order (the other indexes lose what that one
# wins). Row order is no contract: ids are assigned before, in the file's order.
_COPY_ORDER: dict[str, tuple[str, ...]] = {"records": ("document_ref",)}


def _plain(column: pa.Array) -> list[Any]:
    """Python values for the driver: text for dates and amounts, as the store keeps them in SQLite."""
    if pa.types.is_integer(column.type) or pa.types.is_string(column.type):
        return column.to_pylist()  # type: ignore[no-any-return]
    return pc.cast(column, pa.string()).to_pylist()  # type: ignore[no-any-return]


def _load_sqlite(conn: Connection, name: str, table: pa.Table, constants: dict[str, str] | None = None) -> None:
    """Insert an Arrow table by `executemany` on SQLite's own cursor, with `constants` for every row."""
    constants = constants or {}
    # Constants are written into the statement as literals rather than bound again on every row
    # (about a second less per million records here); a NUL would end SQLite's literal: bound.
    inline = {k: v for k, v in constants.items() if "\x00" not in v}
    bound = {k: v for k, v in constants.items() if k not in inline}
    names = [*table.column_names, *bound, *inline]
    values = ["?"] * (table.num_columns + len(bound)) + [_quote(v) for v in inline.values()]
    statement = f"INSERT INTO {name} ({', '.join(names)}) VALUES ({', '.join(values)})"
    raw = conn.connection.driver_connection
    assert raw is not None
    cursor = raw.cursor()
    try:
        for batch in table.to_batches(max_chunksize=_BATCH):
            columns = [_plain(column) for column in batch.columns]
            fixed = [itertools.repeat(value, batch.num_rows) for value in bound.values()]
            cursor.executemany(statement, zip(*columns, *fixed, strict=True))
    finally:
        cursor.close()


def _load_postgres(conn: Connection, name: str, table: pa.Table, constants: dict[str, str] | None = None) -> None:
    """COPY an Arrow table into PostgreSQL: in the binary format, encoded column-wise here, where
    every column's type allows (the server then parses nothing); otherwise as CSV written by Arrow
    (nulls are unquoted empty fields). Rows are sent in `_COPY_ORDER` where the table has one."""
    order = [(column, "ascending") for column in _COPY_ORDER.get(name, ()) if column in table.column_names]
    # Only the order is worked out here (half a second for 2.3 M references); the rows are gathered
    # batch by batch on the encoding thread, from contiguous columns (gathering from DuckDB's
    # chunks took 1.8 s of CPU for those references, 0.7 s with the chunks joined first). A text
    # column joined into one chunk must stay under Arrow's 2 GiB of offsets: larger files are not.
    table = table.combine_chunks() if order and table.nbytes < 2**31 else table
    indices = pc.sort_indices(table, sort_keys=order) if order else None
    for column, value in (constants or {}).items():
        table = table.append_column(column, pa.repeat(pa.scalar(value, pa.string()), table.num_rows))
    raw = conn.connection.driver_connection
    assert raw is not None
    types = _pg_types(conn, name)
    binary = all(_encodable(table.column(c).type, types.get(c, "")) for c in table.column_names)
    form = "binary" if binary else "csv"
    statement = f"COPY {name} ({', '.join(table.column_names)}) FROM STDIN WITH (FORMAT {form})"

    def encode(batch: pa.RecordBatch) -> memoryview | bytes:
        if binary:
            return _pg_binary_rows(batch, [types[c] for c in batch.schema.names])
        buffer = io.BytesIO()
        pacsv.write_csv(batch, buffer, write_options=pacsv.WriteOptions(include_header=False))
        return buffer.getvalue()

    def prepare(start: int) -> list[memoryview | bytes]:
        part = table.slice(start, _COPY_BATCH) if indices is None else table.take(indices.slice(start, _COPY_BATCH))
        return [encode(batch) for batch in part.to_batches()]

    # A thread gathers and encodes the next batch (Arrow and NumPy, without the GIL) while this one
    # is sent and the server inserts it: encoding and inserting overlap instead of taking turns.
    starts = range(0, table.num_rows, _COPY_BATCH)
    with (
        raw.cursor() as cursor,
        cursor.copy(statement) as copy,
        ThreadPoolExecutor(max_workers=1, thread_name_prefix="copy") as pool,
    ):
        if binary:
            copy.write(_PG_COPY_SIGNATURE)
        pending: Future[list[memoryview | bytes]] | None = None
        for start in starts:
            following = pool.submit(prepare, start)
            if pending is not None:
                for data in pending.result():
                    copy.write(data)
            pending = following
        if pending is not None:
            for data in pending.result():
                copy.write(data)
        if binary:
            copy.write(b"\xff\xff")  # the trailer: a row of -1 fields


def _pg_types(conn: Connection, name: str) -> dict[str, str]:
    """The table's columns and their types as `regtype` names them (e.g. bigint, text, date)."""
    rows = conn.exec_driver_sql(
        "SELECT attname, atttypid::regtype::text FROM pg_attribute "
        "WHERE attrelid = %(name)s::regclass AND attnum > 0 AND NOT attisdropped",
        {"name": name},
    )
    return {str(column): str(kind) for column, kind in rows}


# PostgreSQL's binary COPY: a signature, flags and header-extension length, then per row the
# number of fields (int16) and per field its length (int32, -1 for NULL) and its bytes, big-endian.
_PG_COPY_SIGNATURE = b"PGCOPY\n\xff\r\n\x00" + b"\x00\x00\x00\x00" + b"\x00\x00\x00\x00"
_PG_EPOCH = dt.date(2000, 1, 1)
_NULL_FIELD = pa.scalar(b"\xff\xff\xff\xff", pa.binary())


def _fixed_fields(values: np.ndarray, width: str, nulls: pa.Array | None) -> pa.Array:
    """Fields of a fixed-width type: the length, then the value, big-endian; -1 for NULL."""
    record = np.empty(len(values), dtype=[("length", ">i4"), ("value", width)])
    record["length"] = np.dtype(width).itemsize
    record["value"] = values
    fields = pa.FixedSizeBinaryArray.from_buffers(
        pa.binary(record.itemsize), len(values), [None, pa.py_buffer(record.tobytes())]
    ).cast(pa.binary())
    return fields if nulls is None else pc.if_else(nulls, _NULL_FIELD, fields)


def _numeric_scale(kind: pa.DataType) -> int | None:
    """The scale of a decimal column whose values the binary numeric encoding here can carry."""
    if pa.types.is_decimal128(kind) and kind.precision <= 18 and 0 <= kind.scale <= 4:
        return int(kind.scale)
    return None


def _encodable(kind: pa.DataType, pg_type: str) -> bool:
    if pg_type == "numeric":
        return _numeric_scale(kind) is not None
    return pg_type in _BINARY_FIELD


_NUMERIC = np.dtype(
    [("length", ">i4"), ("ndigits", ">i2"), ("weight", ">i2"), ("sign", ">u2"), ("dscale", ">i2"), ("digits", ">i2", 6)]
)


def _numeric_fields(column: pa.Array) -> pa.Array:
    """NUMERIC in PostgreSQL's binary form from a decimal column of at most 18 digits: a fixed
    layout of five base-10000 groups before the point and one after (the server strips the zero
    groups), display scale that of the column."""
    scale = int(column.type.scale)
    nulls = column.is_null() if column.null_count else None
    # A decimal128 is a 16-byte little-endian integer; at most 18 digits fit its low 8 bytes.
    words = np.frombuffer(column.buffers()[1], dtype="<i8")[2 * column.offset : 2 * (column.offset + len(column))]
    unscaled = np.where(column.is_valid().to_numpy(zero_copy_only=False), words[0::2], 0)
    magnitude = np.abs(unscaled)
    whole, fraction = np.divmod(magnitude, 10**scale)
    record = np.empty(len(column), dtype=_NUMERIC)
    record["length"] = record.itemsize - 4
    record["ndigits"], record["weight"], record["dscale"] = 6, 4, scale
    record["sign"] = np.where(unscaled < 0, 0x4000, 0)
    for group in range(5):
        record["digits"][:, group] = (whole // 10 ** (4 * (4 - group))) % 10_000
    record["digits"][:, 5] = fraction * 10 ** (4 - scale)
    fields = pa.FixedSizeBinaryArray.from_buffers(
        pa.binary(record.itemsize), len(column), [None, pa.py_buffer(record.tobytes())]
    ).cast(pa.binary())
    return fields if nulls is None else pc.if_else(nulls, _NULL_FIELD, fields)


def _text_fields(column: pa.Array) -> pa.Array:
    """Text fields: the UTF-8 length (-1 for NULL), then the bytes."""
    text = column if pa.types.is_string(column.type) else pc.cast(column, pa.string())
    lengths = pc.binary_length(text).fill_null(-1).to_numpy().astype(">i4")
    prefixes = pa.FixedSizeBinaryArray.from_buffers(pa.binary(4), len(text), [None, pa.py_buffer(lengths.tobytes())])
    return pc.binary_join_element_wise(
        prefixes.cast(pa.binary()), pc.cast(text, pa.binary()), b"", null_handling="replace", null_replacement=b""
    )


def _epoch_offset(column: pa.Array, unit: pa.DataType, shift: int) -> tuple[np.ndarray, pa.Array | None]:
    """Days (dates) or microseconds (timestamps) since PostgreSQL's epoch, and where the NULLs are."""
    values = pc.cast(column, unit).cast(pa.int64() if pa.types.is_timestamp(unit) else pa.int32())
    nulls = values.is_null() if values.null_count else None
    return values.fill_null(0).to_numpy() - shift, nulls


def _date_fields(column: pa.Array) -> pa.Array:
    days, nulls = _epoch_offset(column, pa.date32(), (_PG_EPOCH - dt.date(1970, 1, 1)).days)
    return _fixed_fields(days, ">i4", nulls)


def _timestamp_fields(column: pa.Array) -> pa.Array:
    shift = (_PG_EPOCH - dt.date(1970, 1, 1)).days * 86_400_000_000
    micros, nulls = _epoch_offset(column, pa.timestamp("us"), shift)
    return _fixed_fields(micros, ">i8", nulls)


def _integer_fields(kind: pa.DataType, width: str) -> Callable[[pa.Array], pa.Array]:
    def encode(column: pa.Array) -> pa.Array:
        nulls = column.is_null() if column.null_count else None
        # A safe cast: a value too large for the column fails here, as the server would refuse it.
        return _fixed_fields(pc.cast(column, kind).fill_null(0).to_numpy(), width, nulls)

    return encode


_BINARY_FIELD: dict[str, Callable[[pa.Array], pa.Array]] = {
    "bigint": _integer_fields(pa.int64(), ">i8"),
    "integer": _integer_fields(pa.int32(), ">i4"),
    "text": _text_fields,
    "character varying": _text_fields,
    "date": _date_fields,
    "timestamp without time zone": _timestamp_fields,
    "numeric": _numeric_fields,
}


def _pg_binary_rows(batch: pa.RecordBatch, types: Sequence[str]) -> memoryview:
    """The rows of a batch in PostgreSQL's binary COPY format, built column by column."""
    fields = [_BINARY_FIELD[kind](column) for column, kind in zip(batch.columns, types, strict=True)]
    count = pa.scalar(len(fields).to_bytes(2, "big"), pa.binary())
    rows = pc.binary_join_element_wise(count, *fields, b"")
    offsets = np.frombuffer(rows.buffers()[1], dtype=np.int32)[rows.offset : rows.offset + len(rows) + 1]
    return memoryview(rows.buffers()[2])[offsets[0] : offsets[-1]]


def _prepare_postgres(conn: Connection) -> None:
    """Where the role may, skip the per-row foreign-key triggers.

    PostgreSQL checks a foreign key row by row, locking the parent row each time: about 8 µs per
    key, four keys per adverse record (a million records: 63 s with the triggers, under 40 s
    without). The import checks every reference itself, in this transaction (subjects and source
    before writing; notices point at records and outbox rows at notices written here), and SHARE
    locks keep subjects and sources unchanged until commit, so the triggers would find nothing.
    `session_replication_role` needs a superuser or (15+) `GRANT SET ON PARAMETER
    session_replication_role`; without it the triggers run as usual."""
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
    millions of keys in subject order then thrashes. A bigger cache for this import only; the
    temporary tables' too: the notices join every record to its template (thousands of them, some
    megabytes), read back from the temporary file when that cache holds 2 MiB (a sixth of the time
    notices took)."""
    raw = conn.connection.driver_connection
    assert raw is not None
    previous = {schema: raw.execute(f"PRAGMA {schema}.cache_size").fetchone()[0] for schema in ("main", "temp")}
    for schema in previous:
        raw.execute(f"PRAGMA {schema}.cache_size = -524288")
    try:
        yield
    finally:
        for schema, size in previous.items():
            raw.execute(f"PRAGMA {schema}.cache_size = {int(size)}")


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
        # Every reference is checked here (subjects, source) or written here (records, notices).
        with store.write(foreign_keys=False) as conn:
            authorised = require_source(conn, source)
            source_turn(conn, source)
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
            records = con.sql(
                "SELECT document_ref, subject_id, behaviour, occurred_on, amount, note, subject_kind, subject_email "
                "FROM checked WHERE existing_id IS NULL ORDER BY line"
            ).to_arrow_table()
            # In the file's order; drawn from the sequence on PostgreSQL, where imports of other
            # sources write side by side.
            records = records.add_column(0, "id", t.new_ids(conn, t.records, records.num_rows))
            con.register("new_records", records)
            versions = scheme_versions(conn)
            effects = fresh_effects(con, "new_records", behaviour_parameters(versions, now))
            if records.num_rows:
                load = _load_sqlite if store.is_sqlite else _load_postgres
                # Notices need each subject's e-mail address; PostgreSQL's are composed by Arrow
                # (notices.write_fresh), from the records' own fields too.
                own = ["subject_email"] + ([] if store.is_sqlite else ["subject_id", "document_ref", "amount"])
                fresh = records.select(["id", "behaviour", "occurred_on", "subject_kind", *own])
                with (
                    _page_cache(conn) if store.is_sqlite else nullcontext(),
                    ThreadPoolExecutor(max_workers=1, thread_name_prefix="notice-templates") as pool,
                ):
                    templates = _templates_meanwhile(pool, store, fresh, now, versions, source, actor)
                    constants = {"source_id": source, "recorded_at": stamp, "recorded_by": actor}
                    load(conn, "records", records.drop_columns(["subject_kind", "subject_email"]), constants)
                    load(conn, "effects", effects, {"known_from": stamp})
                    # Notice before effect holds on this path too: every new adverse record gets its
                    # notice, and the notice its deliveries, in this transaction.
                    notices.write_fresh(
                        conn, fresh, now, versions, load, source=source, recorded_by=actor, templates=templates.result()
                    )
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


def _templates_meanwhile(
    pool: ThreadPoolExecutor,
    store: Store,
    fresh: pa.Table,
    now: dt.datetime,
    versions: Sequence[SchemeVersion],
    source: str,
    actor: str,
) -> Future[list[notices.Template]]:
    """The notice templates of the fresh records, rendered while PostgreSQL copies the records in.

    Rendering is Python (a few seconds per million records) and the server's COPY leaves this
    process idle, so on PostgreSQL a thread renders meanwhile. On SQLite the writes hold the GIL
    for every row they bind, and the two would only take turns: rendered in place, when needed."""
    render = functools.partial(notices.fresh_templates_of, fresh, now, versions, source=source, recorded_by=actor)
    if store.is_sqlite:
        done: Future[list[notices.Template]] = Future()
        done.set_result(render())
        return done
    return pool.submit(render)


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
