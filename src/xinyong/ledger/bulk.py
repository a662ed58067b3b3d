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

import csv
import datetime as dt
import functools
import hashlib
import io
import re
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
from sqlalchemy import Connection

from xinyong.errors import BadInput, Problem
from xinyong.ledger import records as ledger
from xinyong.ledger.appended import AfterAppend
from xinyong.ledger.files import MAX_PROBLEMS, RECORD_COLUMNS, RECORD_OPTIONAL
from xinyong.ledger.imports import ImportResult, source_turn
from xinyong.ledger.registry import require_source, scheme_versions
from xinyong.rules import values
from xinyong.rules.clock import local_day, to_storage
from xinyong.storage import tables as t
from xinyong.storage.backend import backend_of
from xinyong.storage.store import Store
from xinyong.storage.tables import STORED_TIMESTAMP

BULK_SUFFIXES = (".parquet", ".csv", ".jsonl", ".ndjson")
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
           trim(coalesce(behaviour, '')) AS behaviour,
           coalesce(occurred_on, '') AS occurred_text,
           trim(coalesce(document_ref, '')) AS document_ref,
           coalesce(amount, '') AS amount_text,
           nullif(trim(coalesce(note, '')), '') AS note
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


def _verdicts(texts: Sequence[str], read: Callable[[str], Any], kind: pa.DataType) -> pa.Table:
    """Each text read by its rule: (text, value, why), `why` being the refusal's reason."""
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


def _distinct(con: Any, column: str) -> list[str]:
    found: list[str] = (
        con.sql(f"SELECT DISTINCT coalesce({column}, '') FROM raw").to_arrow_table().column(0).to_pylist()
    )
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


def _subjects_named(conn: Connection, texts: list[str]) -> tuple[pa.Table, pa.Table]:
    """The subjects a file names: the fixes (text, id, why) for the texts that are not a registered
    id as written — each read by `values.subject_id`, which gives the canonical id or why not —
    and the registered subjects among them (`_subjects`)."""
    named = pa.chunked_array([pa.array(texts, pa.string())])
    registered = _subjects(conn, named)
    as_written = set(registered.column("subject_id").to_pylist())
    fixes = _verdicts([x for x in texts if x not in as_written], _subject_id, pa.string())
    canonical = pc.unique(fixes.column("value").drop_null()).to_pylist()
    fresh = [x for x in canonical if x not in as_written]
    if fresh:
        found = _subjects(conn, pa.chunked_array([pa.array(fresh, pa.string())]))
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
    table, label = read_table(path)
    problems = _column_problems([c for c in table.column_names if c != _LINE], label)
    if problems:
        raise BadInput(f"{name}: {len(problems)} problem(s); nothing was imported", problems)
    for optional in RECORD_OPTIONAL:
        if optional not in table.column_names:
            table = table.append_column(optional, pa.nulls(table.num_rows, pa.string()))
    table = table.rename_columns(["line" if c == _LINE else c for c in table.column_names])
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
        refs = con.sql("SELECT DISTINCT trim(coalesce(document_ref, '')) FROM raw").to_arrow_table().column(0)
        con.register("existing", _existing(conn, source, refs))
        con.execute(f"CREATE TEMP TABLE checked AS {_CHECKS}")
        found = con.execute(_PROBLEMS).fetchall()
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


def wants_bulk(path: Path, threshold_bytes: int | None = None) -> bool:
    """Parquet always goes the bulk way; CSV and JSON Lines do when the file is large."""
    if threshold_bytes is None:
        from xinyong import settings

        threshold_bytes = settings.current().bulk_bytes
    if path.suffix.lower() == ".parquet":
        return True
    try:
        return path.suffix.lower() in BULK_SUFFIXES and path.stat().st_size >= threshold_bytes
    except OSError:
        return False
