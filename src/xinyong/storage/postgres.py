"""The PostgreSQL backend: a server, with writers side by side.

Imports of different sources write at the same time, so ids are drawn from the sequences
(`new_ids`), turns are advisory locks (`take_turn`), and a row that must not be read by two
writers at once is locked (`locking_read`). Many rows go in by binary `COPY … FROM STDIN`,
encoded column-wise here (`postgres_copy`), and come out by `COPY (…) TO STDOUT` as CSV that
Arrow's reader types: never as a Python object per row.
"""

from __future__ import annotations

import io
import os
import tempfile
from collections.abc import Callable, Collection, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import psycopg
from sqlalchemy import Connection, Engine, Table, create_engine, event
from sqlalchemy.exc import DBAPIError

from xinyong.storage.backend import Backend, remember

if TYPE_CHECKING:
    import pyarrow as pa

_COPY_BATCH = 50_000  # rows encoded at a time for COPY: small enough for encoding to overlap sending

# The order in which PostgreSQL is sent a table's rows. A file's document references arrive in no
# order, and records' UNIQUE (source_id, document_ref) index then takes a random leaf per row; in
# reference order each insert lands beside the one before (5 M records: 45 s of the server's CPU
# for the records' COPY, 35–42 s sorted). Only a sort of the whole file helps: sorted runs of
# 250,000 rows measured no gain, nor did subject order (the other indexes lose what that one
# wins). Row order is no contract: ids are assigned before, in the file's order.
_COPY_ORDER: dict[str, tuple[str, ...]] = {"records": ("document_ref",)}


class PostgresBackend(Backend):
    """PostgreSQL through psycopg 3 (see the module's docstring)."""

    name = "postgresql"
    single_writer = False
    # COPY: the server inserts while a thread encodes in Arrow and NumPy, both without the GIL.
    load_frees_python = True
    reads_in_process = False
    timestamps_as_text = False
    param_marker = "%s"

    # --- the engine and its transactions ---------------------------------------------------------

    def create_engine(self) -> Engine:
        engine = create_engine(self.url, pool_pre_ping=True)
        event.listen(engine, "connect", lambda _dbapi, record: remember(record.info, self))
        return engine

    @contextmanager
    def references_unchecked(self, conn: Connection) -> Iterator[None]:
        """Unchanged: PostgreSQL checks foreign keys by triggers, which only a privileged role may
        skip, per transaction (`prepare_bulk_write`); nothing to switch around a transaction."""
        yield

    def broken_references(self, conn: Connection) -> list[tuple[str, Any, str]]:
        return []  # the checks were never off

    def begin_driver(self, driver: Any) -> None:
        """Nothing to send: psycopg begins a transaction with the first statement, and the audit
        head's row lock (`locking_read`) is what orders writers."""

    def after_commit(self, driver: Any) -> None:
        """Nothing to do: the server keeps its write-ahead log itself."""

    def checkpoint_in_background(self, engine: Engine, interval: float) -> None:
        """A no-op: the server checkpoints on its own, never in a client's commit."""

    def stop(self) -> None:
        pass

    def is_unavailable(self, error: BaseException) -> bool:
        # psycopg's OperationalError: the server gone or unreachable, a lock or statement timeout,
        # a shutdown; a missing table or a bad statement is a ProgrammingError.
        return isinstance(error, psycopg.OperationalError)

    def database_files(self) -> list[Path]:
        return []

    # --- moving many rows -------------------------------------------------------------------------

    def new_ids(self, conn: Connection, table: Table, n: int) -> pa.Array:
        """`n` ids from the sequence of `table`, ascending.

        Drawn, not numbered after the largest id, so that imports can write side by side. They come
        back as one text: millions of one-value rows, each a Python object, took longer to fetch than
        the rows they number took to compose (0.57 M notice ids: 1.7 s as rows, 0.1 s to parse as
        one text). The sequence is looked up once (a subquery run before the rows): in the call
        itself it was looked up in the catalogue for every id drawn, three quarters of the server's
        time here."""
        import numpy as np
        import pyarrow as pa

        drawn = conn.exec_driver_sql(
            "SELECT string_agg(CAST(id AS text), ' ') FROM "
            "(SELECT nextval((SELECT pg_get_serial_sequence(%(table)s, 'id'))::regclass) AS id "
            "FROM generate_series(1, %(n)s)) AS drawn",
            {"table": table.name, "n": n},
        ).scalar_one()
        ids = np.array(drawn.split() if drawn else [], dtype=np.int64)
        ids.sort()
        return pa.array(ids)

    def load_arrow(self, conn: Connection, name: str, table: pa.Table, constants: dict[str, str] | None = None) -> None:
        """COPY: in the binary format, encoded column-wise (`postgres_copy`), where every column's
        type allows (the server then parses nothing); otherwise as CSV written by Arrow (nulls are
        unquoted empty fields). Rows are sent in `_COPY_ORDER` where the table has one."""
        import pyarrow as pa
        import pyarrow.compute as pc
        import pyarrow.csv as pacsv

        from xinyong.storage import postgres_copy

        order = [(column, "ascending") for column in _COPY_ORDER.get(name, ()) if column in table.column_names]
        # Only the order is worked out here (half a second for 2.3 M references); the rows are
        # gathered batch by batch on the encoding thread, from contiguous columns (gathering from
        # DuckDB's chunks took 1.8 s of CPU for those references, 0.7 s with the chunks joined
        # first). A text column joined into one chunk must stay under Arrow's 2 GiB of offsets:
        # larger files are not.
        table = table.combine_chunks() if order and table.nbytes < 2**31 else table
        indices = pc.sort_indices(table, sort_keys=order) if order else None
        for column, value in (constants or {}).items():
            table = table.append_column(column, pa.repeat(pa.scalar(value, pa.string()), table.num_rows))
        raw = conn.connection.driver_connection
        assert raw is not None
        types = _column_types(conn, name)
        binary = all(postgres_copy.encodable(table.column(c).type, types.get(c, "")) for c in table.column_names)
        form = "binary" if binary else "csv"
        statement = f"COPY {name} ({', '.join(table.column_names)}) FROM STDIN WITH (FORMAT {form})"

        def encode(batch: pa.RecordBatch) -> memoryview | bytes:
            if binary:
                return postgres_copy.binary_rows(batch, [types[c] for c in batch.schema.names])
            buffer = io.BytesIO()
            pacsv.write_csv(batch, buffer, write_options=pacsv.WriteOptions(include_header=False))
            return buffer.getvalue()

        def prepare(start: int) -> list[memoryview | bytes]:
            part = table.slice(start, _COPY_BATCH) if indices is None else table.take(indices.slice(start, _COPY_BATCH))
            return [encode(batch) for batch in part.to_batches()]

        # A thread gathers and encodes the next batch (Arrow and NumPy, without the GIL) while this
        # one is sent and the server inserts it: encoding and inserting overlap instead of taking
        # turns.
        starts = range(0, table.num_rows, _COPY_BATCH)
        with (
            raw.cursor() as cursor,
            cursor.copy(statement) as copy,
            ThreadPoolExecutor(max_workers=1, thread_name_prefix="copy") as pool,
        ):
            if binary:
                copy.write(postgres_copy.SIGNATURE)
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

    def read_arrow(
        self, conn: Connection, query: str, schema: pa.Schema, keys: pa.ChunkedArray | None = None
    ) -> pa.Table:
        """COPY TO STDOUT hands the rows over as CSV for Arrow to parse; psycopg binds the keys
        client-side, as one text array."""
        import pyarrow.csv as pacsv

        raw = conn.connection.driver_connection
        assert raw is not None
        values = [] if keys is None else keys.to_pylist()
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

    def export_parquet(
        self,
        conn: Connection,
        table: str,
        columns: Sequence[str],
        schema: pa.Schema,
        path: Path,
        *,
        micros: Collection[str] = (),
    ) -> None:
        """COPY the table out as CSV into a scratch file beside `path`, and let Arrow's CSV reader
        type it batch by batch: no Python object per value. The server turns timestamps into
        microseconds."""
        import pyarrow as pa
        import pyarrow.csv as pacsv
        import pyarrow.parquet as pq

        selected = [
            f"(EXTRACT(EPOCH FROM {column}) * 1000000)::bigint AS {column}" if column in micros else column
            for column in columns
        ]
        raw = conn.connection.driver_connection
        assert raw is not None
        with tempfile.NamedTemporaryFile(suffix=".csv", dir=path.parent) as tmp:
            copying = f"COPY (SELECT {', '.join(selected)} FROM {table}) TO STDOUT WITH (FORMAT csv)"
            with raw.cursor() as cursor, cursor.copy(copying) as copy:
                for chunk in copy:
                    tmp.write(chunk)
            tmp.flush()
            # NULL is an unquoted empty field, an empty string a quoted one (as in `read_arrow`).
            options = pacsv.ConvertOptions(
                column_types=schema, null_values=[""], strings_can_be_null=True, quoted_strings_can_be_null=False
            )
            read = pacsv.ReadOptions(column_names=schema.names, block_size=64 << 20)
            with pq.ParquetWriter(path, schema) as writer:
                if os.path.getsize(tmp.name) == 0:
                    writer.write_table(schema.empty_table())
                    return
                reader = pacsv.open_csv(tmp.name, read_options=read, convert_options=options)
                for batch in reader:
                    writer.write_table(pa.Table.from_batches([batch]).cast(schema))

    def prepare_bulk_write(self, conn: Connection) -> None:
        """Where the role may, skip the per-row foreign-key triggers.

        PostgreSQL checks a foreign key row by row, locking the parent row each time: about 8 µs
        per key, four keys per adverse record (a million records: 63 s with the triggers, under
        40 s without). The import checks every reference itself, in this transaction (subjects and
        source before writing; notices point at records and outbox rows at notices written here),
        and SHARE locks keep subjects and sources unchanged until commit, so the triggers would
        find nothing. `session_replication_role` needs a superuser or (15+) `GRANT SET ON
        PARAMETER session_replication_role`; without it the triggers run as usual."""
        # The notices are composed by joining the new records with their templates: in memory, not
        # in batches on disk as the default 4 MB would have it (for this transaction only).
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
    def bulk_loading(self, conn: Connection) -> Iterator[None]:
        """Nothing to change: `prepare_bulk_write` set what the transaction needs."""
        yield

    # --- writers taking turns -----------------------------------------------------------------

    def take_turn(self, conn: Connection, key: str) -> None:
        """An advisory lock held until this transaction ends, its key a 64-bit hash of `key` (a
        collision only makes two keys take turns)."""
        conn.exec_driver_sql("SELECT pg_advisory_xact_lock(hashtextextended(%(key)s, 0))", {"key": key})

    def take_table_turn(self, conn: Connection, table: str) -> None:
        """SHARE UPDATE EXCLUSIVE: it conflicts with itself (and with schema changes and VACUUM),
        not with inserts or reads."""
        conn.exec_driver_sql(f"LOCK TABLE {table} IN SHARE UPDATE EXCLUSIVE MODE")

    def locking_read(self, query: str) -> str:
        """SELECT … FOR UPDATE: a second transaction reading the rows waits until the first
        commits, then reads the new rows."""
        return f"{query} FOR UPDATE"

    # --- the answer cache ---------------------------------------------------------------------

    def fingerprint(self, query: str) -> Callable[[], tuple[Any, ...]] | None:
        """None: a transaction holding a lower id can commit after one holding a higher id, so
        max(id) would miss it."""
        return None

    def random_hex_sql(self, digits: int) -> str:
        return f"left(md5(CAST(random() AS text)), {digits})"


def _column_types(conn: Connection, name: str) -> dict[str, str]:
    """The table's columns and their types as `regtype` names them (e.g. bigint, text, date)."""
    rows = conn.exec_driver_sql(
        "SELECT attname, atttypid::regtype::text FROM pg_attribute "
        "WHERE attrelid = %(name)s::regclass AND attnum > 0 AND NOT attisdropped",
        {"name": name},
    )
    return {str(column): str(kind) for column, kind in rows}
