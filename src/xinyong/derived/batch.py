"""Batch state: score, grade, lists and measures of every subject, on DuckDB or Apache Spark.

The aggregation of `engine.py` and `lists.py` is generated here, once per scheme version, as one
SQL query built with SQLGlot from the scheme's rules — caps, clamp, grade bands, `any_of` /
`count` / `grade_in` / `all` / `any` list rules, `on_list` / `grade_in` / `all` / `any` measure
rules including another scheme's list. The query is written in DuckDB's dialect and transpiled
by SQLGlot for Spark SQL; an engine is anything that can run it over four input tables:

- ``effects``: the effects table (known_from/known_until as microseconds since the epoch, UTC),
- ``subjects``: subject_id and kind,
- ``consent``: subject events (id, subject_id, scheme, kind, recorded_at in microseconds),
- ``scheme_versions``: every loaded version's document, from which the version in force is chosen.

Everything that depends on the day D and the knowledge time K but not on a subject — the version
in force, the count rules' earliest day, the end of D in the scheme's time zone for consent — is
computed here in Python with the same functions the online path uses (`registry.version_in_force`,
`Period.before`), and enters the SQL as literals. So the SQL holds no calendar arithmetic and no
time zones, which is where engines disagree; the agreement test (tests/test_batch.py) holds the
engines to the online path subject by subject.
"""

from __future__ import annotations

import datetime as dt
import os
import shutil
import tempfile
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from itertools import groupby
from pathlib import Path
from typing import Any, Protocol
from zoneinfo import ZoneInfo

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import sqlglot
from sqlalchemy import Connection

from xinyong.derived import serving
from xinyong.errors import BadInput
from xinyong.ledger.consent import GRANTED
from xinyong.ledger.registry import SchemeVersion, version_in_force
from xinyong.rules.schemes import Rule, Scheme
from xinyong.storage.store import Store

EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
INPUT_TABLES = ("effects", "subjects", "consent", "scheme_versions")

EFFECTS_SCHEMA = pa.schema(
    [
        ("scheme", pa.string()),
        ("version", pa.string()),
        ("record_id", pa.int64()),
        ("subject_id", pa.string()),
        ("behaviour", pa.string()),
        ("points", pa.int64()),
        ("occurred_on", pa.date32()),
        ("valid_from", pa.date32()),
        ("valid_until", pa.date32()),
        ("known_from", pa.int64()),
        ("known_until", pa.int64()),
    ]
)
SUBJECTS_SCHEMA = pa.schema([("subject_id", pa.string()), ("kind", pa.string())])
CONSENT_SCHEMA = pa.schema(
    [
        ("id", pa.int64()),
        ("subject_id", pa.string()),
        ("scheme", pa.string()),
        ("kind", pa.string()),
        ("recorded_at", pa.int64()),
    ]
)
VERSIONS_SCHEMA = pa.schema(
    [
        ("scheme", pa.string()),
        ("version", pa.string()),
        ("loaded_at", pa.int64()),
        ("digest", pa.string()),
        ("document", pa.string()),
    ]
)
STATE_SCHEMA = pa.schema(
    [
        ("scheme", pa.string()),
        ("version", pa.string()),
        ("subject_id", pa.string()),
        ("score", pa.int64()),
        ("grade", pa.string()),
        ("lists", pa.list_(pa.string())),
        ("measures", pa.list_(pa.string())),
    ]
)


def micros(instant: dt.datetime) -> int:
    """An aware instant as integer microseconds since the epoch: the one time form every engine
    compares the same way (no session time zones, no TIMESTAMP vs TIMESTAMP_NTZ)."""
    delta = instant.astimezone(dt.UTC) - EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def from_micros(value: int) -> dt.datetime:
    return EPOCH + dt.timedelta(microseconds=value)


# --- inputs ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Inputs:
    """A folder of Parquet files, one per input table; what every engine reads."""

    folder: Path

    def path(self, table: str) -> Path:
        return self.folder / f"{table}.parquet"

    def tables(self) -> dict[str, Path]:
        return {name: self.path(name) for name in INPUT_TABLES}

    def versions(self) -> list[SchemeVersion]:
        rows = pq.read_table(self.path("scheme_versions")).to_pylist()
        found = [
            SchemeVersion(Scheme.model_validate_json(r["document"]), from_micros(r["loaded_at"]), r["digest"])
            for r in rows
        ]
        return sorted(found, key=lambda v: (v.id, v.loaded_at))


def _sql_text(table: str, columns: str) -> str:
    return f"SELECT {columns} FROM {table}"


_EFFECT_COLUMNS = (
    "scheme, version, record_id, subject_id, behaviour, points, occurred_on, valid_from, valid_until, "
    "known_from, known_until"
)


def _sqlite_batches(conn: Connection, sql: str, size: int = 200_000) -> Iterator[list[tuple[Any, ...]]]:
    cursor = conn.exec_driver_sql(sql)
    while True:
        rows = cursor.fetchmany(size)
        if not rows:
            return
        yield [tuple(r) for r in rows]


def _timestamps(values: Sequence[Any]) -> pa.Array:
    """SQLite keeps DateTime as text; Arrow parses it, then it becomes epoch microseconds."""
    return pa.array(values, pa.string()).cast(pa.timestamp("us")).cast(pa.int64())


def _dates(values: Sequence[Any]) -> pa.Array:
    return pa.array(values, pa.string()).cast(pa.date32())


def _export_sqlite(conn: Connection, inputs: Inputs) -> None:
    def write(name: str, schema: pa.Schema, sql: str, convert: dict[str, str]) -> None:
        with pq.ParquetWriter(inputs.path(name), schema) as writer:
            for rows in _sqlite_batches(conn, sql):
                columns = list(zip(*rows, strict=True))
                arrays = []
                for index, fieldinfo in enumerate(schema):
                    kind = convert.get(fieldinfo.name)
                    values = columns[index]
                    if kind == "ts":
                        arrays.append(_timestamps(values))
                    elif kind == "date":
                        arrays.append(_dates(values))
                    else:
                        arrays.append(pa.array(values, fieldinfo.type))
                writer.write_table(pa.Table.from_arrays(arrays, schema=schema))

    times = {"known_from": "ts", "known_until": "ts", "recorded_at": "ts", "loaded_at": "ts"}
    days = {"occurred_on": "date", "valid_from": "date", "valid_until": "date"}
    write("effects", EFFECTS_SCHEMA, _sql_text("effects", _EFFECT_COLUMNS), times | days)
    write("subjects", SUBJECTS_SCHEMA, _sql_text("subjects", "id, kind"), {})
    write("consent", CONSENT_SCHEMA, _sql_text("subject_events", "id, subject_id, scheme, kind, recorded_at"), times)
    write(
        "scheme_versions",
        VERSIONS_SCHEMA,
        _sql_text("scheme_versions", "scheme, version, loaded_at, digest, document"),
        times,
    )


def _export_postgres(conn: Connection, inputs: Inputs) -> None:
    """COPY each table out as CSV and let Arrow's CSV reader type it: no Python object per value."""
    import pyarrow.csv as pacsv

    def epoch(column: str) -> str:
        return f"(EXTRACT(EPOCH FROM {column}) * 1000000)::bigint AS {column}"

    queries = {
        "effects": _sql_text(
            "effects",
            "scheme, version, record_id, subject_id, behaviour, points, occurred_on, valid_from, valid_until, "
            f"{epoch('known_from')}, {epoch('known_until')}",
        ),
        "subjects": _sql_text("subjects", "id AS subject_id, kind"),
        "consent": _sql_text("subject_events", f"id, subject_id, scheme, kind, {epoch('recorded_at')}"),
        "scheme_versions": _sql_text("scheme_versions", f"scheme, version, {epoch('loaded_at')}, digest, document"),
    }
    schemas = {
        "effects": EFFECTS_SCHEMA,
        "subjects": SUBJECTS_SCHEMA,
        "consent": CONSENT_SCHEMA,
        "scheme_versions": VERSIONS_SCHEMA,
    }
    raw = conn.connection.driver_connection
    assert raw is not None
    for name, sql in queries.items():
        schema = schemas[name]
        with tempfile.NamedTemporaryFile(suffix=".csv", dir=inputs.folder) as tmp:
            with raw.cursor() as cursor, cursor.copy(f"COPY ({sql}) TO STDOUT WITH (FORMAT csv)") as copy:
                for chunk in copy:
                    tmp.write(chunk)
            tmp.flush()
            options = pacsv.ConvertOptions(
                column_types=schema, strings_can_be_null=False, quoted_strings_can_be_null=False
            )
            read = pacsv.ReadOptions(column_names=schema.names, block_size=64 << 20)
            with pq.ParquetWriter(inputs.path(name), schema) as writer:
                if os.path.getsize(tmp.name) == 0:
                    writer.write_table(schema.empty_table())
                    continue
                reader = pacsv.open_csv(tmp.name, read_options=read, convert_options=options)
                for batch in reader:
                    writer.write_table(pa.Table.from_batches([batch]).cast(schema))


def export_inputs(store: Store, folder: Path) -> Inputs:
    """Write the store's effects, subjects, consent events and scheme versions as Parquet.

    One read transaction: the four files are one consistent snapshot of the store.
    """
    folder.mkdir(parents=True, exist_ok=True)
    inputs = Inputs(folder)
    with store.read() as conn:
        if store.is_sqlite:
            _export_sqlite(conn, inputs)
        else:
            _export_postgres(conn, inputs)
    return inputs


# --- the query ------------------------------------------------------------------------------------


def _lit(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def _in(column: str, values: Iterable[str]) -> str:
    return f"{column} IN ({', '.join(_lit(v) for v in values)})"


def _date(day: dt.date) -> str:
    return f"CAST('{day.isoformat()}' AS DATE)"


@dataclass
class _Plan:
    """One scheme version's columns in the per-subject row, all named after its prefix."""

    prefix: str
    scheme: Scheme
    atoms: list[str] = field(default_factory=list)  # per-subject counts over the active records
    lists: dict[str, str] = field(default_factory=dict)  # list id -> its rule as a boolean

    def column(self, name: str) -> str:
        return f"{self.prefix}_{name}"

    @property
    def list_columns(self) -> dict[str, str]:
        """List id -> the boolean column that holds it."""
        return {list_id: self.column(f"l{i}") for i, list_id in enumerate(self.lists)}


def _plan(prefix: str, scheme: Scheme, day: dt.date) -> _Plan:
    plan = _Plan(prefix, scheme)
    plan.lists = {item.id: _list_rule(item.rule, plan, day) for item in scheme.lists}
    return plan


def _list_rule(rule: Rule, plan: _Plan, day: dt.date) -> str:
    """A list rule as a boolean over the scheme's per-subject columns (atoms, grade)."""
    if rule.any_of is not None:
        plan.atoms.append(f"COUNT(CASE WHEN {_in('behaviour', rule.any_of)} THEN 1 END)")
        return f"({plan.column(f'a{len(plan.atoms) - 1}')} > 0)"
    if rule.count is not None:
        earliest = rule.count.within.before(day)
        plan.atoms.append(
            f"COUNT(CASE WHEN {_in('behaviour', rule.count.codes)} AND occurred_on > {_date(earliest)} "
            f"AND occurred_on <= {_date(day)} THEN 1 END)"
        )
        return f"({plan.column(f'a{len(plan.atoms) - 1}')} >= {rule.count.at_least})"
    if rule.grade_in is not None:
        return f"COALESCE({_in(plan.column('grade'), rule.grade_in)}, FALSE)"
    if rule.all is not None:
        return "(" + " AND ".join(_list_rule(child, plan, day) for child in rule.all) + ")"
    if rule.any is not None:
        return "(" + " OR ".join(_list_rule(child, plan, day) for child in rule.any) + ")"
    raise BadInput(f"scheme {plan.scheme.scheme}: on_list is not allowed in a list rule")


def _effects_cte(plan: _Plan, day: dt.date, known: int) -> str:
    """Score points and list-rule counts per subject in one pass, as a bare score query would sum."""
    # One scan per scheme, as the bare query does: one scan shared by every scheme would need the
    # active rows materialised for each scheme's aggregation, which costs more than the scans saved,
    # and one scan grouped once with every scheme's sums side by side costs as much as three (every
    # row then updates every scheme's sums; 6.7 s against 6.5 s of CPU at 10 M subjects).
    scheme = plan.scheme
    # DuckDB sums BIGINT into a HUGEINT (Spark into a BIGINT): each sum cast back to BIGINT makes the
    # caps, the clamp and the score 64-bit arithmetic, and counts are COUNTs, BIGINT on both: about
    # 2% of the batch's CPU at 10 M subjects. A sum past 2^63 fails on DuckDB as it does on Spark.
    # Every point counts, then each capped behaviour gives back what its cap takes away.
    parts = ["CAST(SUM(points) AS BIGINT)"]
    for b in scheme.behaviours:
        if b.cap is not None:
            total = f"CAST(SUM(CASE WHEN behaviour = {_lit(b.code)} THEN points ELSE 0 END) AS BIGINT)"
            parts.append(f"(GREATEST({-b.cap}, LEAST({b.cap}, {total})) - {total})")
    atoms = "".join(f", {expr} AS a{i}" for i, expr in enumerate(plan.atoms))
    return (
        f"SELECT subject_id, {' + '.join(parts)} AS delta{atoms} FROM effects "
        f"WHERE scheme = {_lit(scheme.scheme)} AND version = {_lit(scheme.version)} "
        f"AND known_from <= {known} AND (known_until IS NULL OR known_until > {known}) "
        f"AND valid_from <= {_date(day)} AND valid_until > {_date(day)} GROUP BY subject_id"
    )


# recorded_at and id as one number that orders as (recorded_at, id) does: recorded_at * 2^64 + id,
# exact for any id in [0, 2^64) (ids are positive) and, as DECIMAL(38, 0), for any recorded_at
# before the year 170000; Spark has no HUGEINT, and DuckDB stores DECIMAL(38, 0) as one.
_CONSENT_KEY = "CAST(recorded_at AS DECIMAL(38, 0)) * 18446744073709551616 + id"


def _consent_cte(plan: _Plan, known: int, before: int) -> str:
    """Whether each person's latest consent event (by recorded_at, then id, as consent.has_consent
    orders them) recorded by K and before `before` is a grant."""
    # The latest event is a grant when the latest of all events is the latest grant: two MAX of one
    # number rather than arg_max by a struct (recorded_at, id), a quarter cheaper on DuckDB (2.0 s
    # against 2.7 s of CPU for 7.6 M events); one MAX with the kind in the lowest bit would be
    # cheaper still but for the modulo that reads it back, slow on 128-bit numbers.
    return (
        f"SELECT subject_id, MAX({_CONSENT_KEY}) = MAX(CASE WHEN kind = {_lit(GRANTED)} THEN {_CONSENT_KEY} END) "
        f"AS granted FROM consent WHERE scheme = {_lit(plan.scheme.scheme)} AND recorded_at <= {known} "
        f"AND recorded_at < {before} GROUP BY subject_id"
    )


def _subject_columns(plan: _Plan) -> tuple[str, list[str]]:
    """The scheme's columns of the per-subject row (whether it has state, score, atoms), and the
    joins they need: its effects aggregate and, with consent required, its consent aggregate."""
    scheme, p = plan.scheme, plan.prefix
    has = _in("s.kind", scheme.applies_to)
    joins = f" LEFT JOIN {p}_effects AS {p}e ON {p}e.subject_id = s.subject_id"
    if scheme.consent == "required":
        has += f" AND (s.kind <> 'person' OR COALESCE({p}c.granted, FALSE))"
        joins += f" LEFT JOIN {p}_consent AS {p}c ON {p}c.subject_id = s.subject_id"
    raw = f"{scheme.initial} + COALESCE({p}e.delta, 0)"
    if scheme.floor is not None:
        raw = f"GREATEST({scheme.floor}, {raw})"
    if scheme.ceiling is not None:
        raw = f"LEAST({scheme.ceiling}, {raw})"
    columns = [f"{has} AS {plan.column('has')}", f"CAST({raw} AS BIGINT) AS {plan.column('score')}"]
    columns += [f"COALESCE({p}e.a{i}, 0) AS {plan.column(f'a{i}')}" for i in range(len(plan.atoms))]
    return joins, columns


def _grade(plan: _Plan) -> str:
    score = plan.column("score")
    bands = " ".join(f"WHEN {score} >= {g.min} THEN {_lit(g.grade)}" for g in plan.scheme.grades)
    return f"CASE {bands} ELSE CAST(NULL AS VARCHAR) END" if bands else "CAST(NULL AS VARCHAR)"


# Past this many conditions, the 2^n values a list of ids can take are too many to spell out.
_MAX_CONDITIONS = 8


def _ids(items: Sequence[tuple[str, str]]) -> str:
    """The ids whose condition holds, in the scheme's order, comma-separated as serving_state keeps
    them ('' for none; ids cannot contain a comma, schemes.py)."""
    # A string rather than an array: written as a small dictionary-encoded column, since a scheme's
    # subjects share a handful of combinations.
    if not items:
        return "CAST('' AS VARCHAR)"
    # Neighbours with one condition (five measures on one list) are one condition, their ids joined.
    runs = [(cond, ",".join(name for name, _ in run)) for cond, run in groupby(items, key=lambda item: item[1])]
    if len(runs) == 1:
        return f"CASE WHEN {runs[0][0]} THEN {_lit(runs[0][1])} ELSE '' END"
    if len(runs) > _MAX_CONDITIONS:
        return "CONCAT_WS(',', " + ", ".join(f"CASE WHEN {cond} THEN {_lit(ids)} END" for cond, ids in runs) + ")"
    # The n-th of every combination, n having the bits of the conditions that hold: a constant
    # string per row rather than one concatenated per row, which halves what the lists and measures
    # cost to build and write (0.5 s against 1.2 s of CPU for city-points' 8.6 M rows).
    values = [",".join(ids for i, (_, ids) in enumerate(runs) if n >> i & 1) for n in range(1 << len(runs))]
    bits = " + ".join(f"CASE WHEN {cond} THEN {1 << i} ELSE 0 END" for i, (cond, _) in enumerate(runs))
    return f"[{', '.join(_lit(v) for v in values)}][{bits} + 1]"


def _on_list(name: str, plan: _Plan, plans: dict[str, _Plan]) -> str:
    """`on_list: L` or `on_list: other/L` as a boolean over the per-subject row; another scheme's
    list counts only where the subject has state under that scheme, as state.py decides."""
    scheme = plan.scheme
    other, list_id = name.split("/", 1) if "/" in name else (scheme.scheme, name)
    if other == scheme.scheme:
        return plan.list_columns.get(list_id, "FALSE")
    if other not in plans or list_id not in plans[other].list_columns:
        return "FALSE"  # not loaded, or no version in force on D as known at K: no state there
    source = plans[other]
    return f"({source.column('has')} AND {source.list_columns[list_id]})"


def _measure_rule(rule: Rule, plan: _Plan, plans: dict[str, _Plan]) -> str:
    if rule.on_list is not None:
        return _on_list(rule.on_list, plan, plans)
    if rule.grade_in is not None:
        return f"COALESCE({_in(plan.column('grade'), rule.grade_in)}, FALSE)"
    if rule.all is not None:
        return "(" + " AND ".join(_measure_rule(c, plan, plans) for c in rule.all) + ")"
    if rule.any is not None:
        return "(" + " OR ".join(_measure_rule(c, plan, plans) for c in rule.any) + ")"
    raise BadInput(f"scheme {plan.scheme.scheme}: a measure rule uses on_list, grade_in, all or any")


def _branch(plan: _Plan, plans: dict[str, _Plan]) -> str:
    """A wanted scheme's rows: its columns of the per-subject row where the subject has state."""
    scheme = plan.scheme
    lists = _ids(list(plan.list_columns.items()))
    measures = _ids([(m.id, _measure_rule(m.applies_when, plan, plans)) for m in scheme.measures])
    return (
        f"SELECT {_lit(scheme.scheme)} AS scheme, {_lit(scheme.version)} AS version, subject_id, "
        f"{plan.column('score')} AS score, {plan.column('grade')} AS grade, {lists} AS lists, "
        f"{measures} AS measures FROM listed WHERE {plan.column('has')}"
    )


@dataclass(frozen=True)
class BatchQuery:
    """The generated query for one day D and knowledge time K, and the versions it uses."""

    as_of: dt.date
    known_at: dt.datetime
    versions: dict[str, str]  # scheme -> version in force, for the schemes that have state
    expression: Any  # a sqlglot expression tree
    labels: dict[str, list[str]] = field(default_factory=dict)  # column -> every value it can hold

    def sql(self, dialect: str = "duckdb") -> str:
        return str(self.expression.sql(dialect=dialect))


def _in_force(
    versions: Sequence[SchemeVersion], as_of: dt.date, known_at: dt.datetime, schemes: Sequence[str] | None
) -> tuple[list[str], dict[str, Scheme]]:
    """The wanted schemes, and the version in force on D as known at K of every loaded scheme."""
    by_scheme: dict[str, list[SchemeVersion]] = {}
    for version in versions:
        by_scheme.setdefault(version.id, []).append(version)
    wanted = list(schemes) if schemes else sorted(by_scheme)
    for scheme_id in wanted:
        if scheme_id not in by_scheme:
            raise BadInput(f"--scheme: scheme {scheme_id} is not loaded")
    in_force: dict[str, Scheme] = {}
    for scheme_id, candidates in by_scheme.items():
        chosen = version_in_force(candidates, as_of, known_at)
        if chosen is not None:
            in_force[scheme_id] = chosen.scheme
    return wanted, in_force


def build_query(
    versions: Sequence[SchemeVersion], as_of: dt.date, known_at: dt.datetime, schemes: Sequence[str] | None = None
) -> BatchQuery:
    """The state of every subject under each wanted scheme on `as_of` as known at `known_at`."""
    # The subjects are read and joined once: one row per subject carries every needed scheme's
    # figures side by side (a cross-scheme measure is a column, not another join), and each wanted
    # scheme's rows are that row's columns where the subject has state. A subject without records
    # takes the same path with zero counts rather than a second, outer-joined branch.
    wanted, in_force = _in_force(versions, as_of, known_at, schemes)
    known = micros(known_at)
    needed = [s for s in wanted if s in in_force]
    for scheme_id in list(needed):
        for other, _list in sorted(in_force[scheme_id].cross_scheme_lists()):
            if other in in_force and other not in needed:
                needed.append(other)
    if not needed:
        body = (
            "SELECT CAST(NULL AS VARCHAR) AS scheme, CAST(NULL AS VARCHAR) AS version, "
            "CAST(NULL AS VARCHAR) AS subject_id, CAST(NULL AS BIGINT) AS score, CAST(NULL AS VARCHAR) AS grade, "
            f"{_ids([])} AS lists, {_ids([])} AS measures WHERE FALSE"
        )
        return BatchQuery(as_of, known_at, {}, sqlglot.parse_one(body, read="duckdb"))
    plans = {scheme_id: _plan(f"s{i}", in_force[scheme_id], as_of) for i, scheme_id in enumerate(needed)}
    ctes: list[str] = []
    joins, state, graded, listed = "", ["s.subject_id"], ["subject_id"], ["subject_id"]
    for plan in plans.values():
        ctes.append(f"{plan.prefix}_effects AS ({_effects_cte(plan, as_of, known)})")
        if plan.scheme.consent == "required":
            # Consent counts from events on or before D in the scheme's zone: before D+1's midnight.
            midnight = dt.datetime.combine(as_of + dt.timedelta(days=1), dt.time(), ZoneInfo(plan.scheme.timezone))
            ctes.append(f"{plan.prefix}_consent AS ({_consent_cte(plan, known, micros(midnight))})")
        scheme_joins, columns = _subject_columns(plan)
        joins += scheme_joins
        state += columns
        graded += [plan.column(c) for c in ("has", "score", *(f"a{i}" for i in range(len(plan.atoms))))]
        graded.append(f"{_grade(plan)} AS {plan.column('grade')}")
        listed += [plan.column(c) for c in ("has", "score", "grade")]
        listed += [f"{plan.lists[list_id]} AS {column}" for list_id, column in plan.list_columns.items()]
    # graded and listed are projections, which DuckDB inlines into each scheme's branch; the joined
    # rows of subject_state are then read once per branch, so DuckDB materialises them once.
    ctes.append(f"subject_state AS (SELECT {', '.join(state)} FROM subjects AS s{joins})")
    ctes.append(f"graded AS (SELECT {', '.join(graded)} FROM subject_state)")
    ctes.append(f"listed AS (SELECT {', '.join(listed)} FROM graded)")
    branches = [_branch(plans[scheme_id], plans) for scheme_id in wanted if scheme_id in in_force]
    sql = f"WITH {', '.join(ctes)} {' UNION ALL '.join(branches)}"
    versions_used = {s: in_force[s].version for s in wanted if s in in_force}
    labels = {
        "scheme": list(versions_used),
        "version": list(dict.fromkeys(versions_used.values())),
        "grade": list(dict.fromkeys(g.grade for s in versions_used for g in in_force[s].grades)),
    }
    return BatchQuery(as_of, known_at, versions_used, sqlglot.parse_one(sql, read="duckdb"), labels)


# --- engines --------------------------------------------------------------------------------------


class BatchEngine(Protocol):
    """Runs a generated query over the input tables and writes the state as Parquet."""

    name: str

    def write(self, query: BatchQuery, inputs: Inputs, out: Path) -> None: ...

    def table(self, query: BatchQuery, inputs: Inputs) -> pa.Table: ...


class DuckDBEngine:
    """The default engine: in-process, out-of-core past its memory limit, one file out."""

    name = "duckdb"

    def __init__(self, memory_limit: str | None = None, threads: int | None = None, temp_directory: str | None = None):
        self.memory_limit, self.threads, self.temp_directory = memory_limit, threads, temp_directory

    def connect(self, inputs: Inputs) -> Any:
        import duckdb

        con = duckdb.connect()
        # The result has no order to keep, so DuckDB may write it with every thread.
        con.execute("SET preserve_insertion_order = false")
        # On a large effects file sorted by subject, this optimiser splits each per-subject
        # aggregation into subject ranges and scans the whole file once per range: twice the work
        # at 10 M subjects (benchmarks/scale.py), to keep hash tables small that fit in memory anyway.
        con.execute("SET disabled_optimizers = 'partitioned_execution'")
        if self.memory_limit:
            con.execute(f"SET memory_limit = '{self.memory_limit}'")
        if self.threads:
            con.execute(f"SET threads = {int(self.threads)}")
        if self.temp_directory:
            con.execute(f"SET temp_directory = '{self.temp_directory}'")
        for name, path in inputs.tables().items():
            con.execute(f"CREATE VIEW {name} AS SELECT * FROM read_parquet({_lit(str(path))})")
        return con

    @staticmethod
    def copy(con: Any, sql: str, out: Path) -> None:
        """Write a query's result as one Parquet file; the bare benchmark query writes with it too."""
        con.execute(f"COPY ({sql}) TO {_lit(str(out))} (FORMAT parquet)")

    @staticmethod
    def _labelled(query: BatchQuery) -> str:
        """The query with its few-valued columns as ENUMs of their known values, for the writer."""
        # The Parquet writer hashes every row's string into the column's dictionary; an ENUM already
        # is one, so each row's constant scheme and version cost nothing (about a tenth of a batch at
        # 1 M subjects). The file still holds plain strings.
        columns = []
        for name in STATE_SCHEMA.names:
            values = query.labels.get(name, [])
            enum = f"ENUM({', '.join(_lit(v) for v in values)})"
            columns.append(f"CAST({name} AS {enum}) AS {name}" if values else name)
        return f"SELECT {', '.join(columns)} FROM ({query.sql('duckdb')})"

    def write(self, query: BatchQuery, inputs: Inputs, out: Path) -> None:
        con = self.connect(inputs)
        try:
            self.copy(con, self._labelled(query), out)
        finally:
            con.close()

    def table(self, query: BatchQuery, inputs: Inputs) -> pa.Table:
        con = self.connect(inputs)
        try:
            return _state_table(con.sql(query.sql("duckdb")).to_arrow_table())
        finally:
            con.close()


def spark_session(master: str = "local[2]", app_name: str = "xinyong-batch", **conf: str) -> Any:
    """A SparkSession; local mode needs only Java 17. On a cluster pass its master URL and make
    the input folder readable by every executor (a shared file system or object store)."""
    from pyspark.sql import SparkSession

    builder = SparkSession.builder.master(master).appName(app_name)
    settings = {
        "spark.sql.session.timeZone": "UTC",
        "spark.ui.enabled": "false",
        "spark.ui.showConsoleProgress": "false",
        "spark.sql.shuffle.partitions": "4" if master.startswith("local") else "200",
        "spark.sql.adaptive.enabled": "true",
    }
    if master.startswith("local"):
        settings |= {"spark.driver.host": "127.0.0.1", "spark.driver.bindAddress": "127.0.0.1"}
    for key, value in (settings | conf).items():
        builder = builder.config(key, value)
    return builder.getOrCreate()


class SparkEngine:
    """The same query, transpiled by SQLGlot to Spark SQL; writes a Parquet folder (part files)."""

    name = "spark"

    def __init__(self, session: Any = None, master: str = "local[2]") -> None:
        self._session, self.master = session, master

    @property
    def session(self) -> Any:
        if self._session is None:
            self._session = spark_session(self.master)
        return self._session

    def frame(self, query: BatchQuery, inputs: Inputs) -> Any:
        for name, path in inputs.tables().items():
            self.session.read.parquet(str(path)).createOrReplaceTempView(name)
        return self.session.sql(query.sql("spark"))

    def write(self, query: BatchQuery, inputs: Inputs, out: Path) -> None:
        if out.exists() and out.is_file():
            out.unlink()
        self.frame(query, inputs).write.mode("overwrite").parquet(str(out))

    def table(self, query: BatchQuery, inputs: Inputs) -> pa.Table:
        return _state_table(self.frame(query, inputs).toArrow())


def engine_named(name: str, spark_master: str | None = None) -> BatchEngine:
    if name == "duckdb":
        return DuckDBEngine()
    if name == "spark":
        from xinyong.settings import SPARK_MASTER

        return SparkEngine(master=spark_master or SPARK_MASTER.value() or "local[2]")
    raise BadInput(f"--engine: {name!r} is not an engine; use duckdb or spark")


def _id_lists(column: pa.ChunkedArray) -> pa.Array:
    """Comma-separated ids as lists of ids."""
    # Each distinct text is split once and the lists taken by index: a column holds a handful.
    encoded = column.combine_chunks()
    if not pa.types.is_dictionary(encoded.type):
        encoded = pc.dictionary_encode(encoded)
    texts = pc.fill_null(encoded.dictionary.cast(pa.string()), "")
    parts = pc.split_pattern(texts, ",")
    lengths = pc.subtract(pc.list_value_length(parts), pc.cast(pc.equal(texts, ""), pa.int32()))
    offsets = pa.concat_arrays([pa.array([0], pa.int32()), pc.cumulative_sum(lengths)])
    values = parts.flatten()
    lists = pa.ListArray.from_arrays(offsets, pc.filter(values, pc.not_equal(values, "")))
    return pc.take(lists, encoded.indices)


def _state_table(table: pa.Table) -> pa.Table:
    """An engine's result in STATE_SCHEMA: lists and measures as lists of ids."""
    columns = {name: table.column(name) for name in STATE_SCHEMA.names}
    for name in ("lists", "measures"):
        columns[name] = _id_lists(columns[name])
    return pa.table(columns).cast(STATE_SCHEMA)


def read_state(path: Path) -> pa.Table:
    """A state file (DuckDB) or folder (Spark) as one Arrow table in STATE_SCHEMA."""
    id_columns = ["lists", "measures"]
    if path.is_dir():
        table = pq.ParquetDataset(str(path), read_dictionary=id_columns).read()
    else:
        table = pq.read_table(path, read_dictionary=id_columns)
    return _state_table(table)


# --- the run and the serving state ----------------------------------------------------------------


@dataclass(frozen=True)
class BatchResult:
    out: Path
    engine: str
    as_of: dt.date
    known_at: dt.datetime
    versions: dict[str, str]
    rows: int
    served: int


@contextmanager
def _workdir(folder: Path | None) -> Iterator[Path]:
    if folder is not None:
        folder.mkdir(parents=True, exist_ok=True)
        yield folder
        return
    path = Path(tempfile.mkdtemp(prefix="xinyong-batch-"))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def run(
    store: Store,
    engine: BatchEngine,
    *,
    as_of: dt.date,
    known_at: dt.datetime,
    out: Path,
    schemes: Sequence[str] | None = None,
    workdir: Path | None = None,
    refresh_serving: bool = True,
    now: dt.datetime | None = None,
) -> BatchResult:
    """Export the store, compute every subject's state on one engine, write it, refresh serving."""
    with _workdir(workdir) as folder:
        inputs = export_inputs(store, folder / "inputs")
        query = build_query(inputs.versions(), as_of, known_at, schemes)
        out.parent.mkdir(parents=True, exist_ok=True)
        engine.write(query, inputs, out)
    table = read_state(out)
    served = 0
    if refresh_serving:
        with store.write() as conn:
            served = serving.replace_from_batch(conn, table, as_of, known_at, now or known_at)
    return BatchResult(out, engine.name, as_of, known_at, query.versions, table.num_rows, served)
