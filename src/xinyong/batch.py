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
from pathlib import Path
from typing import Any, Protocol
from zoneinfo import ZoneInfo

import pyarrow as pa
import pyarrow.parquet as pq
import sqlglot
from sqlalchemy import Connection, delete, select

from xinyong import store as t
from xinyong.clock import from_storage, to_storage
from xinyong.consent import GRANTED
from xinyong.errors import BadInput
from xinyong.registry import SchemeVersion, version_in_force
from xinyong.schemes import Rule, Scheme
from xinyong.store import Store

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
    """One scheme version's CTE chain: the SQL of each step and the columns it ends with."""

    prefix: str
    scheme: Scheme
    atoms: list[str] = field(default_factory=list)  # per-subject counts over the active records
    list_columns: dict[str, str] = field(default_factory=dict)  # list id -> boolean column


def _list_rule(rule: Rule, plan: _Plan, day: dt.date) -> str:
    """A list rule as a boolean over the per-subject columns (atoms, grade)."""
    if rule.any_of is not None:
        plan.atoms.append(f"SUM(CASE WHEN {_in('behaviour', rule.any_of)} THEN 1 ELSE 0 END)")
        return f"(a{len(plan.atoms) - 1} > 0)"
    if rule.count is not None:
        earliest = rule.count.within.before(day)
        plan.atoms.append(
            f"SUM(CASE WHEN {_in('behaviour', rule.count.codes)} AND occurred_on > {_date(earliest)} "
            f"AND occurred_on <= {_date(day)} THEN 1 ELSE 0 END)"
        )
        return f"(a{len(plan.atoms) - 1} >= {rule.count.at_least})"
    if rule.grade_in is not None:
        return f"COALESCE({_in('grade', rule.grade_in)}, FALSE)"
    if rule.all is not None:
        return "(" + " AND ".join(_list_rule(child, plan, day) for child in rule.all) + ")"
    if rule.any is not None:
        return "(" + " OR ".join(_list_rule(child, plan, day) for child in rule.any) + ")"
    raise BadInput(f"scheme {plan.scheme.scheme}: on_list is not allowed in a list rule")


def _scheme_ctes(plan: _Plan, day: dt.date, known: int, consent_before: int) -> list[tuple[str, str]]:
    scheme, p = plan.scheme, plan.prefix
    list_exprs = {item.id: _list_rule(item.rule, plan, day) for item in scheme.lists}
    active = (
        f"SELECT subject_id, behaviour, points, occurred_on FROM effects "
        f"WHERE scheme = {_lit(scheme.scheme)} AND version = {_lit(scheme.version)} "
        f"AND known_from <= {known} AND (known_until IS NULL OR known_until > {known}) "
        f"AND valid_from <= {_date(day)} AND valid_until > {_date(day)}"
    )
    # One aggregation per subject, as a bare score query would do: uncapped behaviours are summed
    # directly, each capped behaviour's total is summed on its own and capped; each list rule's
    # atom counts the active records it looks at (in its window, for count rules).
    capped = {b.code: b.cap for b in scheme.behaviours if b.cap is not None}
    parts = ["SUM(points)"] if not capped else [f"SUM(CASE WHEN {_in('behaviour', capped)} THEN 0 ELSE points END)"]
    parts += [
        f"GREATEST({-cap}, LEAST({cap}, SUM(CASE WHEN behaviour = {_lit(code)} THEN points ELSE 0 END)))"
        for code, cap in capped.items()
    ]
    atoms = "".join(f", {expr} AS a{i}" for i, expr in enumerate(plan.atoms))
    per_subject = f"SELECT subject_id, {' + '.join(parts)} AS delta{atoms} FROM {p}_active GROUP BY subject_id"
    ctes = [(f"{p}_active", active), (f"{p}_per_subject", per_subject)]
    where = [_in("s.kind", scheme.applies_to)]
    joins = ""
    if scheme.consent == "required":
        # The latest consent event recorded by K and on or before D (in the scheme's zone) decides;
        # "latest" orders by (recorded_at, id) as consent.has_consent does. An aggregate (arg_max,
        # max_by on Spark) rather than a window: no sort of every consent event.
        ctes.append(
            (
                f"{p}_consent",
                "SELECT subject_id, ARG_MAX(kind, [recorded_at, id]) AS kind FROM consent "
                f"WHERE scheme = {_lit(scheme.scheme)} AND recorded_at <= {known} AND recorded_at < {consent_before} "
                "GROUP BY subject_id",
            )
        )
        joins = f" LEFT JOIN {p}_consent AS c ON c.subject_id = s.subject_id"
        where.append(f"(s.kind <> 'person' OR c.kind = {_lit(GRANTED)})")
    ctes.append((f"{p}_subjects", f"SELECT s.subject_id FROM subjects AS s{joins} WHERE {' AND '.join(where)}"))
    raw = f"{scheme.initial} + COALESCE(b.delta, 0)"
    if scheme.floor is not None:
        raw = f"GREATEST({scheme.floor}, {raw})"
    if scheme.ceiling is not None:
        raw = f"LEAST({scheme.ceiling}, {raw})"
    atom_cols = "".join(f", COALESCE(b.a{i}, 0) AS a{i}" for i in range(len(plan.atoms)))
    ctes.append(
        (
            f"{p}_scored",
            f"SELECT s.subject_id, CAST({raw} AS BIGINT) AS score{atom_cols} FROM {p}_subjects AS s "
            f"LEFT JOIN {p}_per_subject AS b ON b.subject_id = s.subject_id",
        )
    )
    bands = " ".join(f"WHEN score >= {g.min} THEN {_lit(g.grade)}" for g in scheme.grades)
    grade = f"CASE {bands} ELSE CAST(NULL AS VARCHAR) END" if bands else "CAST(NULL AS VARCHAR)"
    atom_names = "".join(f", a{i}" for i in range(len(plan.atoms)))
    ctes.append((f"{p}_graded", f"SELECT subject_id, score, {grade} AS grade{atom_names} FROM {p}_scored"))
    lists = "".join(f", COALESCE({expr}, FALSE) AS l{i}" for i, expr in enumerate(list_exprs.values()))
    plan.list_columns = {list_id: f"l{i}" for i, list_id in enumerate(list_exprs)}
    ctes.append((f"{p}_lists", f"SELECT subject_id, score, grade{lists} FROM {p}_graded"))
    return ctes


def _array(items: Sequence[tuple[str, str]]) -> str:
    """The ids whose condition holds, in the scheme's order, as a list of strings."""
    if not items:
        return "list_filter([CAST(NULL AS VARCHAR)], x -> x IS NOT NULL)"
    cases = ", ".join(f"CASE WHEN {cond} THEN {_lit(name)} END" for name, cond in items)
    return f"list_filter([{cases}], x -> x IS NOT NULL)"


def _on_list(name: str, plan: _Plan, plans: dict[str, _Plan], joins: dict[str, str]) -> str:
    """`on_list: L` or `on_list: other/L` as a boolean column; another scheme's list is joined in."""
    scheme = plan.scheme
    other, list_id = name.split("/", 1) if "/" in name else (scheme.scheme, name)
    if other == scheme.scheme:
        column = plan.list_columns.get(list_id)
        return f"m.{column}" if column else "FALSE"
    if other not in plans or list_id not in plans[other].list_columns:
        return "FALSE"  # not loaded, or no version in force on D as known at K: no state there
    alias = joins.setdefault(other, f"o{len(joins)}")
    return f"COALESCE({alias}.{plans[other].list_columns[list_id]}, FALSE)"


def _measure_rule(rule: Rule, plan: _Plan, plans: dict[str, _Plan], joins: dict[str, str]) -> str:
    if rule.on_list is not None:
        return _on_list(rule.on_list, plan, plans, joins)
    if rule.grade_in is not None:
        return f"COALESCE({_in('m.grade', rule.grade_in)}, FALSE)"
    if rule.all is not None:
        return "(" + " AND ".join(_measure_rule(c, plan, plans, joins) for c in rule.all) + ")"
    if rule.any is not None:
        return "(" + " OR ".join(_measure_rule(c, plan, plans, joins) for c in rule.any) + ")"
    raise BadInput(f"scheme {plan.scheme.scheme}: a measure rule uses on_list, grade_in, all or any")


@dataclass(frozen=True)
class BatchQuery:
    """The generated query for one day D and knowledge time K, and the versions it uses."""

    as_of: dt.date
    known_at: dt.datetime
    versions: dict[str, str]  # scheme -> version in force, for the schemes that have state
    expression: Any  # a sqlglot expression tree

    def sql(self, dialect: str = "duckdb") -> str:
        return str(self.expression.sql(dialect=dialect))


def build_query(
    versions: Sequence[SchemeVersion], as_of: dt.date, known_at: dt.datetime, schemes: Sequence[str] | None = None
) -> BatchQuery:
    """The state of every subject under each wanted scheme on `as_of` as known at `known_at`."""
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
    known = micros(known_at)
    needed = [s for s in wanted if s in in_force]
    for scheme_id in list(needed):
        for other, _list in sorted(in_force[scheme_id].cross_scheme_lists()):
            if other in in_force and other not in needed:
                needed.append(other)
    plans: dict[str, _Plan] = {}
    ctes: list[tuple[str, str]] = []
    for index, scheme_id in enumerate(needed):
        scheme = in_force[scheme_id]
        # Consent counts from events on or before D in the scheme's zone: before D+1's midnight.
        midnight = dt.datetime.combine(as_of + dt.timedelta(days=1), dt.time(), ZoneInfo(scheme.timezone))
        plan = _Plan(f"s{index}", scheme)
        ctes += _scheme_ctes(plan, as_of, known, micros(midnight))
        plans[scheme_id] = plan
    selects = []
    for scheme_id in (s for s in wanted if s in in_force):
        plan = plans[scheme_id]
        scheme = plan.scheme
        joins: dict[str, str] = {}
        measures = _array([(m.id, _measure_rule(m.applies_when, plan, plans, joins)) for m in scheme.measures])
        lists = _array([(list_id, f"m.{column}") for list_id, column in plan.list_columns.items()])
        join_sql = "".join(
            f" LEFT JOIN {plans[other].prefix}_lists AS {alias} ON {alias}.subject_id = m.subject_id"
            for other, alias in joins.items()
        )
        selects.append(
            f"SELECT {_lit(scheme.scheme)} AS scheme, {_lit(scheme.version)} AS version, m.subject_id, "
            f"m.score, m.grade, {lists} AS lists, {measures} AS measures "
            f"FROM {plan.prefix}_lists AS m{join_sql}"
        )
    if not selects:
        body = (
            "SELECT CAST(NULL AS VARCHAR) AS scheme, CAST(NULL AS VARCHAR) AS version, "
            "CAST(NULL AS VARCHAR) AS subject_id, CAST(NULL AS BIGINT) AS score, CAST(NULL AS VARCHAR) AS grade, "
            f"{_array([])} AS lists, {_array([])} AS measures WHERE FALSE"
        )
        expression: Any = sqlglot.parse_one(body, read="duckdb")
    else:
        expression = sqlglot.parse_one(" UNION ALL ".join(selects), read="duckdb")
        for name, sql in ctes:
            expression = expression.with_(name, as_=sqlglot.parse_one(sql, read="duckdb"), dialect="duckdb")
    return BatchQuery(as_of, known_at, {s: in_force[s].version for s in wanted if s in in_force}, expression)


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
        if self.memory_limit:
            con.execute(f"SET memory_limit = '{self.memory_limit}'")
        if self.threads:
            con.execute(f"SET threads = {int(self.threads)}")
        if self.temp_directory:
            con.execute(f"SET temp_directory = '{self.temp_directory}'")
        for name, path in inputs.tables().items():
            con.execute(f"CREATE VIEW {name} AS SELECT * FROM read_parquet({_lit(str(path))})")
        return con

    def write(self, query: BatchQuery, inputs: Inputs, out: Path) -> None:
        con = self.connect(inputs)
        try:
            con.execute(f"COPY ({query.sql('duckdb')}) TO {_lit(str(out))} (FORMAT parquet)")
        finally:
            con.close()

    def table(self, query: BatchQuery, inputs: Inputs) -> pa.Table:
        con = self.connect(inputs)
        try:
            return con.sql(query.sql("duckdb")).to_arrow_table()
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
        return self.frame(query, inputs).toArrow()


def engine_named(name: str, spark_master: str | None = None) -> BatchEngine:
    if name == "duckdb":
        return DuckDBEngine()
    if name == "spark":
        from xinyong.settings import SPARK_MASTER

        return SparkEngine(master=spark_master or SPARK_MASTER.value() or "local[2]")
    raise BadInput(f"--engine: {name!r} is not an engine; use duckdb or spark")


def read_state(path: Path) -> pa.Table:
    """A state file (DuckDB) or folder (Spark) as one Arrow table."""
    if path.is_dir():
        return pq.ParquetDataset(str(path)).read()
    return pq.read_table(path)


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
            served = refresh_serving_state(conn, table, as_of, known_at, now or known_at)
    return BatchResult(out, engine.name, as_of, known_at, query.versions, table.num_rows, served)


def refresh_serving_state(
    conn: Connection, state: pa.Table, as_of: dt.date, known_at: dt.datetime, computed_at: dt.datetime
) -> int:
    """Replace the serving state of the schemes in a batch's result with that result."""
    schemes = sorted(set(state.column("scheme").to_pylist()))
    for scheme_id in schemes:
        conn.execute(delete(t.serving_state).where(t.serving_state.c.scheme == scheme_id))
    known, computed = to_storage(known_at), to_storage(computed_at)
    written = 0
    for batch in state.to_batches(max_chunksize=20_000):
        rows = [
            {
                "scheme": r["scheme"],
                "subject_id": r["subject_id"],
                "version": r["version"],
                "as_of": as_of,
                "known_at": known,
                "computed_at": computed,
                "score": r["score"],
                "grade": r["grade"],
                "lists": ",".join(r["lists"] or []),
                "measures": ",".join(r["measures"] or []),
            }
            for r in batch.to_pylist()
        ]
        if rows:
            conn.execute(t.serving_state.insert(), rows)
            written += len(rows)
    return written


@dataclass(frozen=True)
class ServedState:
    subject: str
    scheme: str
    version: str
    as_of: dt.date
    known_at: dt.datetime
    score: int | None
    grade: str | None
    lists: tuple[str, ...]
    measures: tuple[str, ...]


def _changed_since(conn: Connection, subject_id: str, since: dt.datetime, until: dt.datetime) -> bool:
    """Whether anything that can change this subject's state was recorded in (since, until]."""
    lo, hi = to_storage(since), to_storage(until)
    checks = [
        select(t.records.c.id).where(
            t.records.c.subject_id == subject_id, t.records.c.recorded_at > lo, t.records.c.recorded_at <= hi
        ),
        select(t.record_events.c.id)
        .join(t.records, t.records.c.id == t.record_events.c.record_id)
        .where(
            t.records.c.subject_id == subject_id,
            t.record_events.c.recorded_at > lo,
            t.record_events.c.recorded_at <= hi,
        ),
        select(t.subject_events.c.id).where(
            t.subject_events.c.subject_id == subject_id,
            t.subject_events.c.recorded_at > lo,
            t.subject_events.c.recorded_at <= hi,
        ),
        select(t.scheme_versions.c.scheme).where(
            t.scheme_versions.c.loaded_at > lo, t.scheme_versions.c.loaded_at <= hi
        ),
    ]
    return any(conn.execute(query.limit(1)).first() is not None for query in checks)


def served_state(
    conn: Connection, subject_id: str, scheme_id: str, as_of: dt.date, known_at: dt.datetime
) -> ServedState | None:
    """The batch's answer for (subject, scheme, D) as known at K, or None when it may be stale.

    A served row is used only for the day it was computed for, for a knowledge time at or after
    the batch's, and only when nothing about the subject (a record, a record event, a consent
    event) nor any scheme version was recorded between the batch's knowledge time and K. Otherwise
    the caller asks the online path, which is always exact: the serving state is a cache that may
    miss, never one that may lie.
    """
    row = conn.execute(
        select(t.serving_state).where(t.serving_state.c.scheme == scheme_id, t.serving_state.c.subject_id == subject_id)
    ).first()
    if row is None or row.as_of != as_of:
        return None
    batch_known = from_storage(row.known_at)
    if known_at < batch_known or _changed_since(conn, subject_id, batch_known, known_at):
        return None
    return ServedState(
        subject=subject_id,
        scheme=scheme_id,
        version=row.version,
        as_of=as_of,
        known_at=batch_known,
        score=row.score,
        grade=row.grade,
        lists=tuple(x for x in (row.lists or "").split(",") if x),
        measures=tuple(x for x in (row.measures or "").split(",") if x),
    )


def refresh_subject(conn: Connection, subject_id: str, as_of: dt.date, known_at: dt.datetime) -> int:
    """Recompute one subject's serving rows on the online path (after an event about them).

    This is the incremental half of the serving state: a batch refreshes everyone, an event
    refreshes its subject. Either way `served_state` checks freshness before answering.
    """
    from xinyong.engine import State
    from xinyong.registry import scheme_ids
    from xinyong.state import StateReader

    reader = StateReader.open(conn, subject_id, known_at)
    rows = []
    for scheme_id in scheme_ids(conn):
        result = reader.state(scheme_id, as_of)
        conn.execute(
            delete(t.serving_state).where(
                t.serving_state.c.scheme == scheme_id, t.serving_state.c.subject_id == subject_id
            )
        )
        if isinstance(result, State):
            rows.append(
                {
                    "scheme": scheme_id,
                    "subject_id": subject_id,
                    "version": result.scheme_version,
                    "as_of": as_of,
                    "known_at": to_storage(known_at),
                    "computed_at": to_storage(known_at),
                    "score": result.score,
                    "grade": result.grade,
                    "lists": ",".join(result.lists),
                    "measures": ",".join(result.measures),
                }
            )
    if rows:
        conn.execute(t.serving_state.insert(), rows)
    return len(rows)
