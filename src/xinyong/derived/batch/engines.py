"""The engines behind one interface (`BatchEngine`): DuckDB in-process, Apache Spark on a cluster.

Each runs a `BatchQuery` over the inputs and writes the state as Parquet (`write`) or returns it
(`table`); `read_state` reads what either wrote as one table of `STATE_SCHEMA`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Protocol

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from xinyong.derived.batch.inputs import Inputs
from xinyong.derived.batch.query import BatchQuery, literal
from xinyong.errors import BadInput

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
            con.execute(f"CREATE VIEW {name} AS SELECT * FROM read_parquet({literal(str(path))})")
        return con

    @staticmethod
    def copy(con: Any, sql: str, out: Path) -> None:
        """Write a query's result as one Parquet file; the bare benchmark query writes with it too."""
        con.execute(f"COPY ({sql}) TO {literal(str(out))} (FORMAT parquet)")

    @staticmethod
    def _labelled(query: BatchQuery) -> str:
        """The query with its few-valued columns as ENUMs of their known values, for the writer."""
        # The Parquet writer hashes every row's string into the column's dictionary; an ENUM already
        # is one, so each row's constant scheme and version cost nothing (about a tenth of a batch at
        # 1 M subjects). The file still holds plain strings.
        columns = []
        for name in STATE_SCHEMA.names:
            values = query.labels.get(name, [])
            enum = f"ENUM({', '.join(literal(v) for v in values)})"
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
    try:
        from pyspark.sql import SparkSession
    except ImportError as exc:  # an optional part: `pip install 'xinyong[spark]'`
        raise BadInput("the Spark engine needs the spark extra: pip install 'xinyong[spark]'") from exc

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
        from xinyong import settings

        return SparkEngine(master=spark_master or settings.current().spark_master)
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
