"""The store: one database, embedded (SQLite) or server (PostgreSQL), behind the same calls.

`Store` opens the database through its backend (`backend.Backend`: every difference between the
two databases is one of its operations), and is the one door for transactions: `read()` for one
consistent snapshot, `write()` for a transaction that commits whole or not at all, `migrating()` for
the schema's migrations; `audit_read()`, `audit_write()` and `audit_write_driver()` (the log's group
commits, on the driver's own connection) do the same on the audit log's database, which on SQLite
is a file of its own. The tables are in `tables.py`.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, inspect
from sqlalchemy.exc import DBAPIError, OperationalError

from xinyong.errors import BadInput, Unavailable, XinyongError
from xinyong.storage.backend import Backend, backend_for

MIGRATIONS = Path(__file__).parent / "migrations"


class Store:
    """One database behind the same tables and calls, whichever backend it is on."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.backend: Backend = backend_for(url)
        self.engine: Engine = self.backend.create_engine()
        # The audit log: in a database of its own where the backend keeps it apart (SQLite), so
        # that a check's entry never waits for the write lock of a long import (`audit_*` below).
        audit_url = self.backend.audit_url()
        self.audit_apart = audit_url is not None
        self.audit_backend: Backend = backend_for(audit_url) if audit_url is not None else self.backend
        self.audit_engine: Engine = self.audit_backend.create_engine() if audit_url is not None else self.engine

    @contextmanager
    def write(self, *, foreign_keys: bool = True, patient: bool = False) -> Iterator[Connection]:
        """The one door for writes: a transaction that commits whole or not at all. Where the
        backend takes the write lock up front (SQLite's BEGIN IMMEDIATE), two writers fail fast or
        wait instead of deadlocking half-way through an import.

        `foreign_keys=False`: for a writer that has checked every reference it writes itself, in
        this transaction (the bulk import); the backend skips its per-row checks where it can
        (`Backend.references_unchecked`: on SQLite a quarter of a bulk import's time).

        `patient=True`: for a writer that must take its turn however long another holds the
        database (an import behind an import: SQLite has one writer, and a bulk import holds it for
        minutes). Other writers give up after the busy timeout, as `errors.Unavailable`."""
        with self._writing(self.engine, self.backend, foreign_keys, patient) as conn:
            yield conn

    @contextmanager
    def _writing(
        self, engine: Engine, backend: Backend, foreign_keys: bool, patient: bool = False
    ) -> Iterator[Connection]:
        with self.answering(), engine.connect() as conn:
            # Marks the connection as a writer's, for a backend that locks when it begins.
            conn.info["xinyong_write"] = "patient" if patient else True
            try:
                with nullcontext() if foreign_keys else backend.references_unchecked(conn), conn.begin():
                    yield conn
            finally:
                conn.info["xinyong_write"] = False
            backend.after_commit(conn.connection.dbapi_connection)

    @contextmanager
    def _writing_driver(self, engine: Engine, backend: Backend) -> Iterator[Any]:
        with self.answering():
            pooled = engine.raw_connection()
        try:
            driver = pooled.driver_connection
            assert driver is not None
            with self.answering():
                backend.begin_driver(driver)
                try:
                    yield driver
                except BaseException:
                    driver.rollback()
                    raise
                driver.commit()
            backend.after_commit(driver)
        finally:
            pooled.close()

    @contextmanager
    def read(self) -> Iterator[Connection]:
        """A read transaction: one consistent snapshot for everything a question needs."""
        with self.answering(), self.engine.connect() as conn, conn.begin():
            yield conn

    # --- the audit log's own transactions: the same doors, on its database (`audit_engine`) ---------

    @contextmanager
    def audit_write(self) -> Iterator[Connection]:
        """A write transaction on the audit log (`write`'s, on the audit log's database)."""
        with self._writing(self.audit_engine, self.audit_backend, True) as conn:
            yield conn

    @contextmanager
    def audit_write_driver(self) -> Iterator[Any]:
        """A write transaction on the audit log's database, on the driver's own connection
        (sqlite3 or psycopg), for the log's group commits: every check commits one, and
        SQLAlchemy's per-transaction machinery (events, the BEGIN through its execution path, the
        connection wrapper) cost ~70 µs of the ~90 µs an empty transaction took here, against
        ~20 µs for the pooled connection alone. Plain SQL on it follows the backend's
        `param_marker` and `timestamps_as_text`."""
        with self._writing_driver(self.audit_engine, self.audit_backend) as driver:
            yield driver

    @contextmanager
    def audit_read(self) -> Iterator[Connection]:
        """A read transaction on the audit log's database."""
        with self.answering(), self.audit_engine.connect() as conn, conn.begin():
            yield conn

    def database_files(self) -> list[Path]:
        """Every file the store lives in (the audit log's too), main file first; empty for a
        server's database or one in memory."""
        files = self.backend.database_files()
        return files + self.audit_backend.database_files() if self.audit_apart else files

    @contextmanager
    def answering(self) -> Iterator[None]:
        """The database's "cannot answer now" (a lock held too long, a server gone) as
        `errors.Unavailable`, whichever layer met it: callers say 503 or try later, never
        crash with a driver's message."""
        try:
            yield
        except Exception as exc:
            error: BaseException = (exc.orig or exc) if isinstance(exc, DBAPIError) else exc
            if self.backend.is_unavailable(error):
                raise Unavailable(f"the store cannot answer now: {error}") from exc
            raise

    def is_initialised(self) -> bool:
        try:
            return inspect(self.engine).has_table("records")
        except OperationalError as exc:
            raise XinyongError(f"cannot open the store {self.url}: {exc.orig}") from None

    def migrate(self) -> None:
        """Bring the schema to the newest Alembic revision; safe to run on every start."""
        from alembic import command
        from alembic.config import Config

        config = Config()
        config.set_main_option("script_location", str(MIGRATIONS))
        with self.migrating() as conn:
            config.attributes["connection"] = conn
            command.upgrade(config, "head")
        if self.audit_apart and not inspect(self.audit_engine).has_table("audit_log"):
            # Migration 0009 made it; a store without it lost its log, which is not started
            # afresh in silence: an empty log would verify.
            raise XinyongError(
                f"the audit log of {self.url} is missing ({self.audit_backend.url}): restore it from a backup"
            )

    def revisions(self) -> tuple[set[str], set[str]]:
        """The schema's revisions: those the store is at, and the newest the code knows (heads)."""
        from alembic.config import Config
        from alembic.runtime.migration import MigrationContext
        from alembic.script import ScriptDirectory

        config = Config()
        config.set_main_option("script_location", str(MIGRATIONS))
        heads = set(ScriptDirectory.from_config(config).get_heads())
        with self.engine.connect() as conn:
            current = set(MigrationContext.configure(conn).get_current_heads())
        return current, heads

    @contextmanager
    def migrating(self) -> Iterator[Connection]:
        """The write transaction schema migrations run in. SQLite alters a table by copying it and
        dropping the old one (Alembic's batch mode), which its foreign-key checks refuse while
        another table's rows point at it; so they are off (see `write`) and every reference is
        checked once before the commit instead: a migration never commits a broken one. Only when
        the schema's revision changed, since the check reads every row that has a foreign key (14 s
        for a store of 5 M records) and `init` on a store already at the head changes nothing."""
        from alembic.migration import MigrationContext

        with self.write(foreign_keys=False) as conn:
            before = MigrationContext.configure(conn).get_current_revision()
            yield conn
            if MigrationContext.configure(conn).get_current_revision() != before:
                broken = self.backend.broken_references(conn)
                if broken:
                    table, rowid, parent = broken[0]
                    raise XinyongError(
                        f"a migration left {len(broken)} row(s) pointing at missing rows; "
                        f"first: {table} row {rowid} → {parent}; nothing was changed"
                    )

    def require_initialised(self) -> None:
        if not self.is_initialised():
            raise BadInput(f"the store {self.url} is empty: run `xinyong init` first")

    def checkpoint_in_background(self, interval: float = 1.0) -> None:
        """Move the database file's upkeep off the commit path, onto a thread of this process's
        own (SQLite's WAL checkpoints: `Backend.checkpoint_in_background`); a no-op where commits
        do no such work (PostgreSQL, an in-memory database)."""
        self.backend.checkpoint_in_background(self.engine, interval)
        if self.audit_apart:
            self.audit_backend.checkpoint_in_background(self.audit_engine, interval)

    def dispose(self) -> None:
        self.backend.stop()
        self.engine.dispose()
        if self.audit_apart:
            self.audit_backend.stop()
            self.audit_engine.dispose()
