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

Differences from the row-wise import, all stricter or cosmetic: dates must be written YYYY-MM-DD
(Python would also accept 20240101); a CSV line number assumes no quoted line breaks before it;
Parquet rows are numbered from 1 as "row N" in place of a line.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import io
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
from sqlalchemy import Connection, func, select

from xinyong import identifiers, ledger, notices
from xinyong import store as t
from xinyong.clock import local_day, to_storage
from xinyong.errors import BadInput, Problem
from xinyong.imports import MAX_PROBLEMS, RECORD_COLUMNS, RECORD_OPTIONAL, ImportResult
from xinyong.registry import SchemeVersion, require_source, scheme_versions
from xinyong.store import Store

BULK_SUFFIXES = (".parquet", ".csv", ".jsonl", ".ndjson")
_TS_FORMAT = "%Y-%m-%d %H:%M:%S.%f"  # how SQLAlchemy keeps DateTime in SQLite
_LINE = "__line__"  # a reader that knows physical line numbers (JSON Lines) hands them over here


# --- reading ------------------------------------------------------------------------------------


def read_table(path: Path) -> tuple[pa.Table, int, str]:
    """The file as a table of strings, the line number of its first row, and how rows are named."""
    suffix = path.suffix.lower()
    try:
        if suffix == ".parquet":
            table = pq.read_table(path)
            first, label = 1, "row"
        elif suffix == ".csv":
            header = pacsv.open_csv(path).schema.names
            table = pacsv.read_csv(
                path,
                read_options=pacsv.ReadOptions(encoding="utf8", block_size=64 << 20),
                convert_options=pacsv.ConvertOptions(
                    column_types={name: pa.string() for name in header},
                    strings_can_be_null=False,
                    quoted_strings_can_be_null=False,
                ),
            )
            first, label = 2, "line"
        elif suffix in {".jsonl", ".ndjson"}:
            return _read_jsonl(path)
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
    return pa.table(columns), first, label


def _read_jsonl(path: Path) -> tuple[pa.Table, int, str]:
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
    return table.append_column(_LINE, pa.array(lines, pa.int64())), 1, "line"


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
           k.subject_id IS NOT NULL AS registered,
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


def _existing(conn: Connection, source: str) -> pa.Table:
    query = select(
        t.records.c.id,
        t.records.c.document_ref,
        t.records.c.subject_id,
        t.records.c.behaviour,
        t.records.c.occurred_on,
        t.records.c.amount,
        t.records.c.note,
    ).where(t.records.c.source_id == source)
    rows = conn.execute(query).all()
    return pa.table(
        {
            "id": pa.array([r.id for r in rows], pa.int64()),
            "document_ref": pa.array([r.document_ref for r in rows], pa.string()),
            "subject_id": pa.array([r.subject_id for r in rows], pa.string()),
            "behaviour": pa.array([r.behaviour for r in rows], pa.string()),
            "occurred_on": pa.array([r.occurred_on for r in rows], pa.date32()),
            "amount": pa.array([r.amount for r in rows], pa.decimal128(18, 2)),
            "note": pa.array([r.note for r in rows], pa.string()),
        }
    )


def _known_subjects(conn: Connection) -> pa.Table:
    ids = [row[0] for row in conn.exec_driver_sql("SELECT id FROM subjects")]
    return pa.table({"subject_id": pa.array(ids, pa.string())})


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


def _as_text(column: pa.ChunkedArray | pa.Array) -> list[Any]:
    return pc.cast(column, pa.string()).to_pylist()  # type: ignore[no-any-return]


def _write_sqlite(conn: Connection, records: pa.Table, effects: pa.Table, stamp: str, actor: str) -> None:
    raw = conn.connection.driver_connection
    assert raw is not None
    cursor = raw.cursor()
    # Index pages of a large store do not fit SQLite's default 2 MiB page cache; inserting
    # millions of keys in subject order then thrashes. A bigger cache for this write only.
    previous = cursor.execute("PRAGMA cache_size").fetchone()[0]
    cursor.execute("PRAGMA cache_size = -524288")
    n = records.num_rows
    cursor.executemany(
        "INSERT INTO records (id, source_id, document_ref, subject_id, behaviour, occurred_on, amount, note, "
        "recorded_at, recorded_by) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        zip(
            records.column("id").to_pylist(),
            records.column("source_id").to_pylist(),
            records.column("document_ref").to_pylist(),
            records.column("subject_id").to_pylist(),
            records.column("behaviour").to_pylist(),
            _as_text(records.column("occurred_on")),
            _as_text(records.column("amount")),
            records.column("note").to_pylist(),
            [stamp] * n,
            [actor] * n,
            strict=True,
        ),
    )
    m = effects.num_rows
    cursor.executemany(
        "INSERT INTO effects (scheme, version, record_id, subject_id, behaviour, points, occurred_on, valid_from, "
        "valid_until, known_from, known_until) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, NULL)",
        zip(
            effects.column("scheme").to_pylist(),
            effects.column("version").to_pylist(),
            effects.column("record_id").to_pylist(),
            effects.column("subject_id").to_pylist(),
            effects.column("behaviour").to_pylist(),
            effects.column("points").to_pylist(),
            _as_text(effects.column("occurred_on")),
            _as_text(effects.column("valid_from")),
            _as_text(effects.column("valid_until")),
            [stamp] * m,
            strict=True,
        ),
    )
    cursor.execute(f"PRAGMA cache_size = {int(previous)}")
    cursor.close()


def _copy(raw: Any, table_name: str, table: pa.Table) -> None:
    """COPY an Arrow table into PostgreSQL as CSV: nulls are unquoted empty fields."""
    columns = ", ".join(table.column_names)
    with raw.cursor() as cursor, cursor.copy(f"COPY {table_name} ({columns}) FROM STDIN WITH (FORMAT csv)") as copy:
        for batch in table.to_batches(max_chunksize=200_000):
            buffer = io.BytesIO()
            pacsv.write_csv(
                pa.Table.from_batches([batch]),
                buffer,
                write_options=pacsv.WriteOptions(include_header=False, quoting_style="needed"),
            )
            copy.write(buffer.getvalue())


def _write_postgres(conn: Connection, records: pa.Table, effects: pa.Table, stamp: str, actor: str) -> None:
    raw = conn.connection.driver_connection
    n, m = records.num_rows, effects.num_rows
    _copy(
        raw,
        "records",
        records.append_column("recorded_at", pa.array([stamp] * n, pa.string())).append_column(
            "recorded_by", pa.array([actor] * n, pa.string())
        ),
    )
    _copy(raw, "effects", effects.append_column("known_from", pa.array([stamp] * m, pa.string())))
    top = conn.execute(select(func.max(t.records.c.id))).scalar()
    if top is not None:
        conn.exec_driver_sql(f"SELECT setval(pg_get_serial_sequence('records', 'id'), {int(top)})")


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
    """Check the whole file, then write its new records and their effects in one transaction."""
    import duckdb

    name = name or path.name
    table, first_line, label = read_table(path)
    problems = _column_problems([c for c in table.column_names if c != _LINE], label)
    if problems:
        raise BadInput(f"{name}: {len(problems)} problem(s); nothing was imported", problems)
    for optional in RECORD_OPTIONAL:
        if optional not in table.column_names:
            table = table.append_column(optional, pa.nulls(table.num_rows, pa.string()))
    if _LINE in table.column_names:
        table = table.rename_columns(["line" if c == _LINE else c for c in table.column_names])
    else:
        table = table.append_column("line", pa.array(range(first_line, first_line + table.num_rows), pa.int64()))
    stamp = to_storage(now).strftime(_TS_FORMAT)
    con = duckdb.connect()
    try:
        with store.write() as conn:
            authorised = require_source(conn, source)
            known = ledger.known_behaviours(conn)
            if not store.is_sqlite:
                # Ids are assigned here, so no other writer may insert records meanwhile.
                conn.exec_driver_sql("LOCK TABLE records IN EXCLUSIVE MODE")
            con.register("raw", table)
            con.register("known_subjects", _known_subjects(conn))
            con.register("known_behaviours", pa.table({"behaviour": pa.array(sorted(known), pa.string())}))
            con.register("authorised_behaviours", pa.table({"behaviour": pa.array(sorted(authorised), pa.string())}))
            con.register("existing", _existing(conn, source))
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
                f"SELECT {int(top)} + row_number() OVER (ORDER BY line) AS id, {_quote(source)} AS source_id, "
                "document_ref, subject_id, behaviour, occurred_on, amount, note "
                "FROM checked WHERE existing_id IS NULL ORDER BY line"
            ).to_arrow_table()
            con.register("new_records", records)
            effects = fresh_effects(con, "new_records", behaviour_parameters(scheme_versions(conn), now))
            if records.num_rows:
                writer = _write_sqlite if store.is_sqlite else _write_postgres
                writer(conn, records, effects, stamp, actor)
                # Notice before effect holds on this path too: every new adverse record gets its
                # notice in the same transaction. This is per-record Python and dominates the cost
                # of very large files; a set-based version is the next step (benchmarks/REPORT.md).
                notices.for_record_ids(conn, records.column("id").to_pylist(), now)
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
