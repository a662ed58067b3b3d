"""The SQLite backend: an embedded database file, one writer at a time.

Every connection is set up by `_pragmas` (WAL, normal sync, foreign keys, a busy timeout); a write
transaction takes the write lock up front (BEGIN IMMEDIATE), so that two writers fail fast or wait
instead of deadlocking half-way through an import. That one writer is what the capabilities below
rest on: ids after the largest are the writer's own, ids commit in order (the answer cache's
fingerprint), a turn needs no lock of its own. Rows go in by `executemany` of plain tuples on the
driver's cursor and come out as tuples that Arrow types; WAL checkpoints can move to a thread
(`Checkpointer`).
"""

from __future__ import annotations

import gc
import itertools
import json
import logging
import os
import sqlite3
import stat
import threading
import time
from collections.abc import Callable, Collection, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, Engine, Table, create_engine, event, func, select
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError

from xinyong.storage.backend import Backend, remember

if TYPE_CHECKING:
    import pyarrow as pa

log = logging.getLogger("xinyong.storage.sqlite")

_BATCH = 200_000  # rows per executemany (and per batch read for an export): bounded memory, few round trips


class SQLiteBackend(Backend):
    """SQLite through the standard library's driver (see the module's docstring)."""

    name = "sqlite"
    single_writer = True
    # executemany binds every value through the interpreter, holding the GIL row by row.
    load_frees_python = False
    reads_in_process = True
    timestamps_as_text = True
    param_marker = "?"

    # SQLite's primary result codes for "not now": another writer holds the lock past the busy
    # timeout, the file cannot be opened or read, the disk is full.
    _NOT_NOW = frozenset({"SQLITE_BUSY", "SQLITE_LOCKED", "SQLITE_CANTOPEN", "SQLITE_IOERR", "SQLITE_FULL"})

    def __init__(self, url: str) -> None:
        super().__init__(url)
        self.database = make_url(url).database or ""
        self.checkpointer: Checkpointer | None = None

    @property
    def _on_file(self) -> bool:
        # Only a database file can be opened a second time, or deleted.
        database = self.database
        return bool(database) and database != ":memory:" and "mode=memory" not in database

    # --- the engine and its transactions ---------------------------------------------------------

    def create_engine(self) -> Engine:
        if self._on_file and not self.database.startswith("file:"):
            _create_owner_only(Path(self.database))
            _owner_only(self.database_files())  # a store made before the rule, or copied in loosely
        engine = create_engine(self.url)

        def connected(dbapi_connection: Any, record: Any) -> None:
            _pragmas(dbapi_connection, autocheckpoint=self.checkpointer is None)
            remember(record.info, self)

        event.listen(engine, "connect", connected)
        event.listen(engine, "begin", _begin)
        return engine

    @contextmanager
    def references_unchecked(self, conn: Connection) -> Iterator[None]:
        """SQLite checks a foreign key by an index lookup per row, a quarter of a bulk import's
        time; it can switch the checks off only outside a transaction, so this connection does so
        before BEGIN and after the end."""
        try:
            _set_foreign_keys(conn, on=False)
            yield
        finally:
            if not conn.invalidated:
                _set_foreign_keys(conn, on=True)

    def broken_references(self, conn: Connection) -> list[tuple[str, Any, str]]:
        return [
            (str(table), rowid, str(parent))
            for table, rowid, parent, _ in conn.exec_driver_sql("PRAGMA foreign_key_check")
        ]

    def begin_driver(self, driver: Any) -> None:
        driver.execute("BEGIN IMMEDIATE")

    def after_commit(self, driver: Any) -> None:
        checkpointer = self.checkpointer
        if checkpointer is not None and checkpointer.restart_wanted:
            checkpointer.finish(driver)

    def checkpoint_in_background(self, engine: Engine, interval: float) -> None:
        """Move WAL checkpoints off the commit path, onto a thread of this process's own.

        By default the commit that pushes the WAL past 1,000 pages runs the checkpoint itself —
        copying those pages into the database file and syncing it — so one request in a few
        hundred waits tens of milliseconds for work that is not its own. A server that answers
        after every commit (each check's audit entry) cannot afford that tail, so its connections
        stop checkpointing and a thread checkpoints every `interval` seconds instead (PASSIVE: it
        never blocks a writer or a reader). Other processes on the same file keep the default.
        A no-op on in-memory databases.
        """
        if self.checkpointer is not None or self.database in ("", ":memory:"):
            return
        self.checkpointer = Checkpointer(self.database, interval)
        engine.dispose()  # pooled connections were opened with the default; reopen them
        self.checkpointer.start()

    def stop(self) -> None:
        if self.checkpointer is not None:
            self.checkpointer.stop()
            self.checkpointer = None

    def is_unavailable(self, error: BaseException) -> bool:
        if not isinstance(error, sqlite3.OperationalError):
            return False
        name = getattr(error, "sqlite_errorname", None) or ""
        return any(name == code or name.startswith(f"{code}_") for code in self._NOT_NOW)

    def audit_url(self) -> str | None:
        """A file of its own beside the store (`xinyong.db` → `xinyong-audit.db`): SQLite has one
        writer per file, and an import holds that lock for as long as it writes (a minute for
        millions of records), while every check must append its audit entry before it answers."""
        if not self._on_file:
            return None
        path = Path(self.database)
        return f"sqlite:///{path.with_name(f'{path.stem}-audit{path.suffix}')}"

    def database_files(self) -> list[Path]:
        if not self._on_file:
            return []
        return [Path(self.database + suffix) for suffix in ("", "-wal", "-shm")]

    # --- moving many rows -------------------------------------------------------------------------

    def new_ids(self, conn: Connection, table: Table, n: int) -> pa.Array:
        """After the largest: this transaction is the one writer."""
        import pyarrow as pa

        top = int(conn.execute(select(func.max(table.c.id))).scalar() or 0)
        return pa.array(range(top + 1, top + 1 + n), pa.int64())

    def load_arrow(self, conn: Connection, name: str, table: pa.Table, constants: dict[str, str] | None = None) -> None:
        """`executemany` on SQLite's own cursor, with `constants` for every row."""
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

    def read_arrow(
        self, conn: Connection, query: str, schema: pa.Schema, keys: pa.ChunkedArray | None = None
    ) -> pa.Table:
        """Tuples from the driver (SQLAlchemy rows cost a microsecond each), the keys bound as one
        JSON array; SQLite keeps dates and amounts as text, which Arrow parses into the schema's
        types."""
        import pyarrow as pa

        raw = conn.connection.driver_connection
        assert raw is not None
        values = [] if keys is None else keys.to_pylist()
        query = query.replace("{keys}", "(SELECT value FROM json_each(?))")
        with _collector_paused():
            rows = raw.execute(query, [json.dumps(values)] if keys is not None else []).fetchall()
            columns = list(zip(*rows, strict=True)) if rows else [() for _ in schema]
            return pa.table(
                [
                    pa.array(column, field.type if pa.types.is_integer(field.type) else pa.string()).cast(field.type)
                    for column, field in zip(columns, schema, strict=True)
                ],
                schema=schema,
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
        """Batches of tuples from the driver; dates, amounts and timestamps, text in SQLite, parsed by
        Arrow."""
        import pyarrow as pa
        import pyarrow.parquet as pq

        with pq.ParquetWriter(path, schema) as writer:
            cursor = conn.exec_driver_sql(f"SELECT {', '.join(columns)} FROM {table}")
            while rows := cursor.fetchmany(_BATCH):
                values = list(zip(*[tuple(r) for r in rows], strict=True))
                arrays = []
                for index, column in enumerate(schema):
                    if column.name in micros:
                        arrays.append(_timestamps(values[index]))
                    elif pa.types.is_integer(column.type) or pa.types.is_string(column.type):
                        arrays.append(pa.array(values[index], column.type))
                    else:  # dates and amounts, which SQLite keeps as text
                        arrays.append(pa.array(values[index], pa.string()).cast(column.type))
                writer.write_table(pa.Table.from_arrays(arrays, schema=schema))

    def prepare_bulk_write(self, conn: Connection) -> None:
        """Nothing to do: `Store.write(foreign_keys=False)` switched the checks off before the
        transaction began, and its write lock keeps every table unchanged until the commit."""

    @contextmanager
    def bulk_loading(self, conn: Connection) -> Iterator[None]:
        """Index pages of a large SQLite store do not fit the default 2 MiB page cache; inserting
        millions of keys in subject order then thrashes. A bigger cache for this import only; the
        temporary tables' too: the notices join every record to its template (thousands of them,
        some megabytes), read back from the temporary file when that cache holds 2 MiB (a sixth of
        the time notices took)."""
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

    # --- writers taking turns -----------------------------------------------------------------

    def take_turn(self, conn: Connection, key: str) -> None:
        """Nothing to do: a write transaction already holds the database's one write lock."""

    def take_table_turn(self, conn: Connection, table: str) -> None:
        """Nothing to do: a write transaction already holds the database's one write lock."""

    def locking_read(self, query: str) -> str:
        """Unchanged: the write transaction already holds the one write lock (BEGIN IMMEDIATE), so
        writers are serialised before they read."""
        return query

    # --- the answer cache ---------------------------------------------------------------------

    def fingerprint(self, query: str) -> Callable[[], tuple[Any, ...]] | None:
        return Fingerprint(self.database, query) if self._on_file else None

    def random_hex_sql(self, digits: int) -> str:
        return f"lower(hex(randomblob({digits // 2})))"


def _create_owner_only(path: Path) -> None:
    """The database file, made readable by its owner only before SQLite first opens it: SQLite then
    gives its WAL and shared-memory files the same mode, whatever the umask."""
    try:
        os.close(os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600))
    except FileExistsError:
        pass
    except OSError:
        return  # a folder that is not there, or not ours: SQLite says so when it opens the file


def _owner_only(paths: Collection[Path]) -> None:
    """Take the group's and others' permissions off files that have them (a store made before
    store files were owner-only, or one copied in with a loose mode)."""
    for path in paths:
        try:
            mode = stat.S_IMODE(path.stat().st_mode)
            if mode & 0o077:
                path.chmod(mode & 0o700)
        except OSError:
            continue  # not there (yet), or not ours to change


# How long a statement waits for another connection's lock before SQLite says busy: a short write
# gives up then (`errors.Unavailable`, 503), a patient one (`Store.write`) asks again.
BUSY_TIMEOUT_MS = 10_000

# Address space, not memory: pages are mapped as they are read and shared with the OS's cache.
MMAP_BYTES = 64 << 30


def _pragmas(dbapi_connection: Any, *, autocheckpoint: bool = True) -> None:
    # pysqlite's own transaction handling is switched off so that Store decides how to BEGIN.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    # A new database only (the size is fixed once in WAL mode): 16 KiB pages hold a bulk import's
    # notices (a kilobyte each) with less waste and cost a page's write a quarter as often.
    cursor.execute("PRAGMA page_size=16384")
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
    # Reads through a memory map of the file instead of copying each page into the connection's
    # own cache: a check about a subject asked of nobody before touches a few pages of a store of
    # gigabytes, which a 2 MiB cache per connection never holds. Measured on a 1 M-subject store,
    # one served row with its guard: 43 µs a subject read through the cache, 25 µs mapped. Writes
    # still go through the file (SQLite maps for reading only), so a crash cannot tear a page.
    cursor.execute(f"PRAGMA mmap_size={MMAP_BYTES}")
    if not autocheckpoint:
        cursor.execute("PRAGMA wal_autocheckpoint=0")
    cursor.close()


def _set_foreign_keys(conn: Connection, *, on: bool) -> None:
    # On the driver's connection: through SQLAlchemy the statement would begin a transaction first.
    raw = conn.connection.driver_connection
    assert raw is not None
    raw.execute(f"PRAGMA foreign_keys={'ON' if on else 'OFF'}")


def _begin(conn: Connection) -> None:
    # `Store.write` marks its connections: a writer takes the write lock up front, so that two
    # writers wait (the busy timeout) instead of deadlocking half-way through an import. A patient
    # writer (an import) waits as long as the lock is held: the busy handler's wait, again and again.
    writer = conn.info.get("xinyong_write")
    if not writer:
        conn.exec_driver_sql("BEGIN")
        return
    while True:
        try:
            conn.exec_driver_sql("BEGIN IMMEDIATE")
            return
        except OperationalError as exc:
            if writer != "patient" or getattr(exc.orig, "sqlite_errorname", None) != "SQLITE_BUSY":
                raise


def _quote(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def _plain(column: pa.Array) -> list[Any]:
    """Python values for the driver: text for dates and amounts, as the store keeps them in SQLite."""
    import pyarrow as pa
    import pyarrow.compute as pc

    if pa.types.is_integer(column.type) or pa.types.is_string(column.type):
        return column.to_pylist()  # type: ignore[no-any-return]
    return pc.cast(column, pa.string()).to_pylist()  # type: ignore[no-any-return]


def _timestamps(values: Sequence[Any]) -> pa.Array:
    """SQLite keeps DateTime as text; Arrow parses it, then it becomes epoch microseconds."""
    import pyarrow as pa

    return pa.array(values, pa.string()).cast(pa.timestamp("us")).cast(pa.int64())


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


class Fingerprint:
    """The answer cache's fingerprint query, read on a connection of its own per thread.

    In autocommit mode: each fingerprint is a fresh snapshot, and the pool's connections stay free
    for real work. PRAGMA data_version changes exactly when another connection has committed since
    this one last looked, and is far cheaper than the fingerprint query: under load the fingerprint
    is read once per audit batch (each batch is a commit) instead of once per check."""

    def __init__(self, database: str, query: str) -> None:
        self.database, self.query = database, query
        self._local = threading.local()

    def _connection(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(self.database, isolation_level=None, check_same_thread=True)
            conn.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
            self._local.conn = conn
        return conn

    def __call__(self) -> tuple[Any, ...]:
        conn = self._connection()
        version = conn.execute("PRAGMA data_version").fetchone()
        seen: tuple[Any, tuple[Any, ...]] | None = getattr(self._local, "seen", None)
        if seen is not None and seen[0] == version:
            return seen[1]
        row = conn.execute(self.query).fetchone()
        tag = tuple(row) if row is not None else ()
        self._local.seen = (version, tag)
        return tag


class Checkpointer(threading.Thread):
    """A daemon thread that checkpoints one SQLite database's WAL on a timer (see
    `SQLiteBackend.checkpoint_in_background`); the checkpoint's disk writes and sync release the GIL."""

    RESTART_FRAMES = 1000  # the WAL size (pages) past which a tick also starts the log over
    PASSES = 4  # PASSIVE passes at most per tick
    SHORT_PASS = 0.005  # seconds: a pass this short left too little behind for another

    def __init__(self, database: str, interval: float) -> None:
        super().__init__(name="xinyong-checkpointer", daemon=True)
        self.database, self.interval = database, interval
        self._stopping = threading.Event()
        self.checkpoints = 0
        self.last: tuple[int, int] = (0, 0)  # frames in the WAL, frames copied, at the last checkpoint
        self.restart_wanted = False  # set here, cleared by the writer that finishes the checkpoint

    def run(self) -> None:
        conn = sqlite3.connect(self.database, isolation_level=None, check_same_thread=False)
        try:
            conn.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
            conn.execute(f"PRAGMA journal_size_limit={64 * 1024 * 1024}")  # the file shrinks back after a burst
            while not self._stopping.wait(self.interval):
                self.checkpoint(conn)
            self.checkpoint(conn)
        finally:
            conn.close()

    def checkpoint(self, conn: sqlite3.Connection) -> None:
        try:
            # PASSIVE never blocks anyone, but under steady writes it never lets the WAL start over:
            # SQLite starts the log over only when a write begins with every frame copied, and
            # commits land while a checkpoint copies. The log grew without end (460 MB in 20 s
            # under the check benchmark, commits slowing as its index grew). So a tick copies in
            # PASSIVE passes, each copying what piled up during the last (a tenth as much, at the
            # rates measured), then asks the next writer to copy the last few frames itself right
            # after its commit (`finish`), when no write of its own can land in between; the write
            # after that starts the log over. A RESTART checkpoint would do it from here, but it
            # holds writers off while it waits for readers, in the busy handler's coarse sleeps:
            # 20–55 ms stalls of every commit once a second, measured.
            for _ in range(self.PASSES):
                started = time.perf_counter()
                _, logged, copied = conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
                if time.perf_counter() - started < self.SHORT_PASS:
                    break
            self.checkpoints += 1
            self.last = (int(logged), int(copied))
            self.restart_wanted = logged >= self.RESTART_FRAMES
        except sqlite3.Error as exc:
            # A busy or locked database: the next tick tries again; the WAL only grows meanwhile.
            log.warning("WAL checkpoint of %s failed, will retry: %s", self.database, exc)

    def finish(self, connection: Any) -> None:
        """Copy the last frames on a writer's connection just after its commit (see `checkpoint`)."""
        self.restart_wanted = False
        try:
            connection.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
        except sqlite3.Error as exc:
            log.warning("WAL checkpoint of %s after a commit failed, will retry: %s", self.database, exc)

    def stop(self) -> None:
        self._stopping.set()
        self.join(timeout=30)
