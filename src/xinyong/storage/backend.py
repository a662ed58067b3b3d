"""The storage backend: everything that differs between the databases the store runs on.

`Store` (store.py) and every module above storage speak SQLAlchemy Core, which is the same on both
databases; whatever is not — how a transaction takes its locks, how millions of rows go in and
come out as Arrow, how ids are handed out, how two writers take turns, what a background thread
must do for the database file — is an operation of this interface, implemented once per database:
`sqlite.SQLiteBackend` (an embedded file, one writer at a time) and `postgres.PostgresBackend` (a
server, writers side by side). No module outside `xinyong.storage` imports a database driver or
asks which database it is on: it asks the backend (`Store.backend`, or `backend_of(conn)` for a
connection) to do the thing, or reads one of its capabilities below.

One backend object belongs to one store (one engine); the connections of its engine know it
(`backend_of`), so code holding only a connection reaches the same object.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Collection, Sequence
from contextlib import AbstractContextManager
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from sqlalchemy import Connection, Engine, Table
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from xinyong.errors import BadInput

if TYPE_CHECKING:
    import pyarrow as pa

# Where a connection of a store's engine keeps its backend (the pool record's `info`, which lasts
# as long as the driver's connection).
BACKEND_KEY = "xinyong.backend"


class Backend(ABC):
    """The operations whose SQL or driver calls differ between databases, each with its promise.

    Capabilities (class attributes) say what a caller may rely on; they name a property of the
    database, never the database, so a caller reads as the reason for its choice."""

    name: ClassVar[str]
    """SQLAlchemy's name of the database ("sqlite", "postgresql"): for messages, never for a branch."""

    single_writer: ClassVar[bool]
    """A write transaction is the database's only writer until it ends: ids numbered after the
    largest are this transaction's alone and contiguous, ids commit in the order they were given,
    and a set-based write may select rows by a range of its own ids. False where other
    transactions write the same tables side by side (their ids interleave with this one's)."""

    load_frees_python: ClassVar[bool]
    """`load_arrow` leaves this process's interpreter free while the rows go in (the database
    inserts them elsewhere; encoding runs in Arrow and NumPy without the GIL), so Python work can
    overlap it. False where loading binds every row through the interpreter, so that work beside it
    would only take turns with it."""

    reads_in_process: ClassVar[bool]
    """The database is read inside this process, without a network round trip: a point lookup
    takes microseconds, less than handing it to a thread pool would cost an event loop."""

    timestamps_as_text: ClassVar[bool]
    """On the driver's own cursor (`Store.write_driver`), a DateTime column is bound and read as
    text in `tables.STORED_TIMESTAMP` form, as SQLAlchemy keeps it; otherwise as a naive
    `datetime`."""

    param_marker: ClassVar[str]
    """The driver's parameter marker in plain SQL on its own cursor ("?" or "%s")."""

    # --- the engine and its transactions (used by `Store`) ------------------------------------

    def __init__(self, url: str) -> None:
        self.url = url

    @abstractmethod
    def create_engine(self) -> Engine:
        """The engine of this store, its connections set up as every transaction of `Store`
        expects (and knowing this backend, for `backend_of`)."""

    @abstractmethod
    def references_unchecked(self, conn: Connection) -> AbstractContextManager[None]:
        """Around a transaction on `conn` (entered before BEGIN, left after its end): foreign keys
        are not checked row by row, for a writer that checks every reference it writes itself.
        Where the database cannot switch them off cheaply, nothing changes."""

    @abstractmethod
    def broken_references(self, conn: Connection) -> list[tuple[str, Any, str]]:
        """(table, row, parent table) of every row pointing at a missing row, after a migration
        ran in `references_unchecked`; always empty where the checks were never off."""

    @abstractmethod
    def begin_driver(self, driver: Any) -> None:
        """Begin a write transaction on the driver's own connection (`Store.write_driver`), taking
        whatever lock `Store.write` would take up front."""

    @abstractmethod
    def after_commit(self, driver: Any) -> None:
        """Just after a write transaction committed on this driver connection: upkeep of the
        database file that must run on a writer's connection (see `checkpoint_in_background`)."""

    @abstractmethod
    def checkpoint_in_background(self, engine: Engine, interval: float) -> None:
        """Move the upkeep a commit would otherwise do itself onto a thread of this process's own,
        run every `interval` seconds, so that no commit waits for work not its own. A no-op where
        commits do no such work."""

    @abstractmethod
    def stop(self) -> None:
        """Stop what `checkpoint_in_background` started (the engine is disposed by the caller)."""

    @abstractmethod
    def is_unavailable(self, error: BaseException) -> bool:
        """Whether a driver's error means the database cannot answer now (locked, busy,
        unreachable), as raised on its own cursor or wrapped by SQLAlchemy: `Store` turns those into
        `errors.Unavailable` (503, try later). A missing table or a bad statement is a defect, not
        a busy database, and is left to surface as itself."""

    def audit_url(self) -> str | None:
        """Where the audit log lives when not in this database: a URL of its own, so that what
        appends to it (every check) never waits for this database's write lock. None (the
        default): in this database, whose writers do not keep one another waiting for long."""
        return None

    @abstractmethod
    def database_files(self) -> list[Path]:
        """The files the whole store lives in, main file first, which deleting removes the store;
        empty for a server's database or one in memory."""

    # --- moving many rows (bulk import, batch export) ------------------------------------------

    @abstractmethod
    def new_ids(self, conn: Connection, table: Table, n: int) -> pa.Array:
        """Ids for `n` new rows of `table` (an autoincrementing `id`), ascending, as an Arrow int64
        array: none used by a committed row or by another transaction's rows."""

    @abstractmethod
    def load_arrow(self, conn: Connection, name: str, table: pa.Table, constants: dict[str, str] | None = None) -> None:
        """Insert the rows of `table` into the store's table `name` (columns by name), in `conn`'s
        transaction, with `constants` as the value of further columns in every row, as text
        (timestamps in `tables.STORED_TIMESTAMP` form): the fastest way this database has. Where the
        rows land on disk is no contract. The `ledger.appended.Load` of the bulk import."""

    @abstractmethod
    def read_arrow(
        self, conn: Connection, query: str, schema: pa.Schema, keys: pa.ChunkedArray | None = None
    ) -> pa.Table:
        """The rows of `query` (plain SQL, columns in `schema`'s order) as an Arrow table of
        `schema`, without a Python object per row where the driver allows. With `keys`, `{keys}` in
        the query stands for that set of text values (e.g. `… WHERE id IN {keys}`)."""

    @abstractmethod
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
        """Write `columns` of every row of `table` to the Parquet file `path`, named and typed as
        `schema`, in batches of bounded memory, within `conn`'s snapshot; the timestamp columns
        named in `micros` as integer microseconds since the epoch (the stored naive time read as
        UTC). Files beside `path` may be used as scratch space."""

    @abstractmethod
    def prepare_bulk_write(self, conn: Connection) -> None:
        """Before a bulk import reads what it checks its file against: make its writes skip
        per-row reference checks where the database allows, and keep the subjects and sources it
        reads unchanged until the transaction ends (the import checks every reference itself)."""

    @abstractmethod
    def bulk_loading(self, conn: Connection) -> AbstractContextManager[None]:
        """Around the `load_arrow` calls of one bulk import: settings that pay for millions of
        inserts (and are put back afterwards)."""

    # --- writers taking turns -------------------------------------------------------------------

    @abstractmethod
    def take_turn(self, conn: Connection, key: str) -> None:
        """Wait until no other transaction holding the turn of `key` is running, and hold it
        until `conn`'s transaction ends. Writers of other keys need not wait (unless
        `single_writer`, where every write transaction waits for the one before anyway)."""

    @abstractmethod
    def take_table_turn(self, conn: Connection, table: str) -> None:
        """The turn of one maintenance job on `table`, held until `conn`'s transaction ends: a
        second such job waits, while readers and inserters of the table do not."""

    @abstractmethod
    def locking_read(self, query: str) -> str:
        """The plain SELECT `query`, made to lock the rows it reads until the transaction ends,
        so that a second writer reading them waits for this one's commit and reads the new rows."""

    # --- the answer cache -------------------------------------------------------------------------

    @abstractmethod
    def fingerprint(self, query: str) -> Callable[[], tuple[Any, ...]] | None:
        """A function reading the one-row `query` (newest ids of append-only tables) in a fresh
        snapshot, on a connection of its own per thread, cheaply when nothing was committed since
        its last call on that thread. Such a fingerprint changes with every commit only when ids
        commit in order (`single_writer`); None where they do not, or where the database cannot be
        opened a second time (in memory)."""

    # --- SQL that is not the same text on both ------------------------------------------------

    @abstractmethod
    def random_hex_sql(self, digits: int) -> str:
        """An SQL expression of `digits` (even) random lower-case hexadecimal digits."""


def backend_for(url: str) -> Backend:
    """The backend of a database URL (a new one: it opens an engine when asked)."""
    try:
        parsed = make_url(url)
    except ArgumentError:
        raise BadInput(f"--db: {url!r} is not a database URL (e.g. sqlite:///xinyong.db)") from None
    kind = _kind(parsed.get_backend_name())
    if kind is None:
        raise BadInput(f"--db: {parsed.get_backend_name()} is not supported; use sqlite:/// or postgresql+psycopg://")
    return kind(url)


def backend_of(conn: Connection) -> Backend:
    """The backend of the store whose engine opened `conn`. A connection of an engine no store made
    gets a backend of its database's kind, enough for every operation on a connection."""
    found = conn.info.get(BACKEND_KEY)
    if found is not None:
        return found  # type: ignore[no-any-return]
    found = _kind(conn.dialect.name)
    assert found is not None, conn.dialect.name
    backend = found(conn.engine.url.render_as_string(hide_password=False))
    conn.info[BACKEND_KEY] = backend
    return backend


def _kind(name: str) -> type[Backend] | None:
    """The backend class of a database by SQLAlchemy's name for it. Imported here, and only the
    one asked for: both modules build on this one, and a command on an embedded store need not
    load the PostgreSQL driver (a tenth of a second of its start-up)."""
    if name == "sqlite":
        from xinyong.storage.sqlite import SQLiteBackend

        return SQLiteBackend
    if name == "postgresql":
        from xinyong.storage.postgres import PostgresBackend

        return PostgresBackend
    return None


def remember(record_info: dict[str, Any], backend: Backend) -> None:
    """Mark a new driver connection as one of `backend`'s (from its engine's "connect" event)."""
    record_info[BACKEND_KEY] = backend
