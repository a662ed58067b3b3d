"""Storage: SQLAlchemy Core tables and one `Store` that works the same on SQLite and PostgreSQL.

The ledger tables (subjects, sources, scheme versions, records, record events, subject events) are
append-only: rows are inserted, never updated. `effects` is derived and may be rebuilt at any time.
Writes go through `Store.write()`, which on SQLite takes the write lock up front (BEGIN IMMEDIATE)
so that two writers fail fast instead of deadlocking half-way through an import.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
from collections import namedtuple
from collections.abc import Iterator
from contextlib import contextmanager
from decimal import Decimal
from pathlib import Path
from typing import Any

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    Column,
    Connection,
    Date,
    DateTime,
    Engine,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    Numeric,
    String,
    Table,
    Text,
    TypeDecorator,
    UniqueConstraint,
    and_,
    create_engine,
    event,
    func,
    inspect,
    select,
)
from sqlalchemy.engine import Dialect, make_url
from sqlalchemy.exc import ArgumentError, OperationalError
from sqlalchemy.sql import ColumnElement
from sqlalchemy.types import TypeEngine

from xinyong.errors import BadInput, XinyongError

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)


class Amount(TypeDecorator[Decimal]):
    """Money, exact on every backend: NUMERIC(18, 2) on PostgreSQL, text on SQLite, whose NUMERIC
    affinity would turn 9999999999999999.99 into a rounded float."""

    impl = Numeric(18, 2)
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        return dialect.type_descriptor(Text() if dialect.name == "sqlite" else Numeric(18, 2, asdecimal=True))

    def process_bind_param(self, value: Decimal | None, dialect: Dialect) -> Any:
        if value is None:
            return None
        return str(value) if dialect.name == "sqlite" else value

    def process_result_value(self, value: Any, dialect: Dialect) -> Decimal | None:
        return None if value is None else Decimal(str(value))


# BigInteger ids are plain INTEGER on SQLite (so they stay rowid aliases) and BIGINT elsewhere.
Id = BigInteger().with_variant(Integer(), "sqlite")

subjects = Table(
    "subjects",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("kind", String(16), nullable=False),
    Column("name", Text, nullable=False),
    Column("legal_representative", Text),
    Column("division", String(12)),
    Column("registered_at", DateTime, nullable=False),
    Index(None, "name"),
)

sources = Table(
    "sources",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("title", Text),
    Column("created_at", DateTime, nullable=False),
)

source_behaviours = Table(
    "source_behaviours",
    metadata,
    Column("source_id", String(64), ForeignKey("sources.id"), primary_key=True),
    Column("behaviour", String(64), primary_key=True),
    Column("granted_at", DateTime, nullable=False),
)

scheme_versions = Table(
    "scheme_versions",
    metadata,
    Column("scheme", String(64), primary_key=True),
    Column("version", String(32), primary_key=True),
    Column("effective_from", Date),
    Column("loaded_at", DateTime, nullable=False),
    Column("title", Text, nullable=False),
    Column("digest", String(64), nullable=False),
    Column("document", Text, nullable=False),
    Column("source_text", Text, nullable=False),
)

records = Table(
    "records",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("source_id", String(64), ForeignKey("sources.id"), nullable=False),
    Column("document_ref", String(128), nullable=False),
    Column("subject_id", String(32), ForeignKey("subjects.id"), nullable=False),
    Column("behaviour", String(64), nullable=False),
    Column("occurred_on", Date, nullable=False),
    Column("amount", Amount()),
    Column("note", Text),
    Column("recorded_at", DateTime, nullable=False),
    Column("recorded_by", String(128), nullable=False),
    UniqueConstraint("source_id", "document_ref"),
    Index(None, "subject_id"),
)


def of_subject(table: Table, subject: Any) -> ColumnElement[bool]:
    """Rows of `table` (effects, notices) about a subject (`subject`: an id or a bind parameter),
    found through its records, since records.subject_id is the one index in subject order. The
    table's own subject_id is compared too: a filter here, and what lets a table partitioned by
    subject (the national plan in docs/scale.md) read one partition."""
    records_of = select(records.c.id).where(records.c.subject_id == subject)
    return and_(table.c.record_id.in_(records_of), table.c.subject_id == subject)


# One row per event after "recorded" (the records row is the recorded event). Columns that only
# some kinds use are nullable; a wide table keeps "what happened to this record" a single query.
record_events = Table(
    "record_events",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("record_id", Id, ForeignKey("records.id"), nullable=False),
    Column("kind", String(16), nullable=False),
    Column("recorded_at", DateTime, nullable=False),
    Column("actor", String(128), nullable=False),
    Column("reason", Text),
    Column("behaviour", String(64)),
    Column("occurred_on", Date),
    Column("amount", Amount()),
    Column("effective_on", Date),
    Column("due_on", Date),
    Column("outcome", String(16)),
    Column("refers_to", Id),
    Column("evidence", Text),
    Index(None, "record_id"),
    Index(None, "kind", "refers_to"),
)

subject_events = Table(
    "subject_events",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("subject_id", String(32), ForeignKey("subjects.id"), nullable=False),
    Column("scheme", String(64), nullable=False),
    Column("kind", String(32), nullable=False),
    Column("recorded_at", DateTime, nullable=False),
    Column("actor", String(128), nullable=False),
    Index(None, "subject_id", "scheme"),
)

effects = Table(
    "effects",
    metadata,
    Column("scheme", String(64), nullable=False),
    Column("version", String(32), nullable=False),
    Column("record_id", Id, nullable=False),
    Column("subject_id", String(32), nullable=False),
    Column("behaviour", String(64), nullable=False),
    Column("points", Integer, nullable=False),
    Column("occurred_on", Date, nullable=False),
    Column("valid_from", Date, nullable=False),
    Column("valid_until", Date, nullable=False),
    Column("known_from", DateTime, nullable=False),
    Column("known_until", DateTime),
    # No index of its own on subject_id: a subject's effects are found through its records
    # (`of_subject`), so a bulk import keeps one B-tree fewer in subject order per effect.
    Index(None, "record_id"),
)

imports = Table(
    "imports",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("kind", String(16), nullable=False),
    Column("source_id", String(64)),
    Column("file_name", Text, nullable=False),
    Column("file_sha256", String(64), nullable=False),
    Column("imported_at", DateTime, nullable=False),
    Column("actor", String(128), nullable=False),
    Column("lines", Integer, nullable=False),
    Column("added", Integer, nullable=False),
)

# --- tables: access and audit (the API issue) ---------------------------------------------------

# Bearer tokens: only a SHA-256 of the secret is kept, so a copy of the store grants nothing.
tokens = Table(
    "tokens",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("secret_sha256", String(64), nullable=False),
    Column("role", String(16), nullable=False),
    Column("agency", String(64)),
    Column("subject_id", String(32)),
    Column("label", Text),
    Column("created_at", DateTime, nullable=False),
    Column("created_by", String(128), nullable=False),
    Column("expires_at", DateTime),
    Column("revoked_at", DateTime),
)

# The audit log: append-only, each entry's hash covers the previous hash and the entry's own
# fields (sequence number included), so an edit, a deletion, an insertion or a swap breaks the
# chain at a nameable entry. `audit_head` holds the newest (seq, hash): appenders lock it, and
# `audit verify` compares it with the last entry so that cutting off the tail is found too.
audit_log = Table(
    "audit_log",
    metadata,
    Column("seq", Id, primary_key=True, autoincrement=False),
    Column("at", DateTime, nullable=False),
    Column("actor", String(128), nullable=False),
    Column("role", String(80), nullable=False),
    Column("action", String(64), nullable=False),
    Column("subject_id", String(32)),
    Column("purpose", Text),
    Column("outcome", String(32), nullable=False),
    Column("detail", Text),
    Column("prev_hash", String(64), nullable=False),
    Column("hash", String(64), nullable=False),
    Index(None, "at"),
)

# `indexed`: every entry up to this seq has its (subject_id, seq) in audit_subjects.
audit_head = Table(
    "audit_head",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("seq", Id, nullable=False),
    Column("hash", String(64), nullable=False),
    Column("indexed", Id, nullable=False, server_default="0"),
)

# Which entries are about which subject, for "who looked at my data": filled by `audit.append`
# in runs of a few thousand entries, each run sorted by subject and keyed by its first entry's seq
# (see there why runs, and not an index on audit_log.subject_id); `audit verify` checks it against
# the log.
audit_subjects = Table(
    "audit_subjects",
    metadata,
    Column("run", Id, primary_key=True, autoincrement=False),
    Column("subject_id", String(32), primary_key=True),
    Column("seq", Id, primary_key=True, autoincrement=False),
    sqlite_with_rowid=False,
)

# Import jobs submitted over HTTP: the job row outlives a failed import (whose data is rolled
# back) so that its line-level problems can be read afterwards.
import_jobs = Table(
    "import_jobs",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("kind", String(16), nullable=False),
    Column("source_id", String(64)),
    Column("file_name", Text, nullable=False),
    Column("submitted_at", DateTime, nullable=False),
    Column("submitted_by", String(128), nullable=False),
    Column("status", String(16), nullable=False),
    Column("imported", Integer),
    Column("already_present", Integer),
    Column("message", Text),
    Column("problems", Text),
)

# --- tables: notices, outbox and repairs (the due-process issue) ---------------------------------

# The facts text of the notices of many records, around the places where each record's own values
# go (`parts`: JSON array of texts; `fields`: JSON array naming the value between parts i and i+1).
# A bulk import writes one per behaviour, occurrence day and subject kind instead of a kilobyte or
# more of text per notice. Never changed: a notice's text is its template's, whenever it is read.
notice_templates = Table(
    "notice_templates",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("parts", Text, nullable=False),
    Column("fields", Text, nullable=False),
)

# A subject's inbox. `key` (record id and the event that caused the notice) is unique, so a notice
# is generated at most once per event however often generation runs. `facts` is language-neutral
# JSON; the text is rendered in the reader's language when it is shown or sent. It is stored
# whole, or (bulk imports) as a template and `fill`, the record's values as they appear in the text,
# separated by U+001F (which JSON text never holds unescaped); `notices.facts_text` puts them
# together. Repairs need no table of their own: applications and decisions are record events
# (repair_applied/repair_decided).
notices = Table(
    "notices",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("key", String(64), nullable=False),
    Column("subject_id", String(32), ForeignKey("subjects.id"), nullable=False),
    Column("record_id", Id, ForeignKey("records.id"), nullable=False),
    Column("event_id", Id),
    Column("kind", String(16), nullable=False),
    Column("created_at", DateTime, nullable=False),
    Column("takes_effect_on", Date),
    Column("object_by", Date),
    Column("facts", Text),
    Column("template_id", Id, ForeignKey("notice_templates.id")),
    Column("fill", Text),
    Column("read_at", DateTime),
    # `key` begins with the record's id, so (record_id, key) is unique exactly when key is; led by
    # record_id, the one index serves both a record's notices and, through the subject's records
    # (`of_subject`), a subject's inbox, where an index of its own in subject order made every
    # bulk-imported notice cost a second random B-tree insert.
    UniqueConstraint("record_id", "key"),
    CheckConstraint("(facts IS NULL) = (template_id IS NOT NULL)", name="ck_notices_facts_or_template"),
)

# How to reach a subject: an e-mail address and the language of its notices.
contacts = Table(
    "contacts",
    metadata,
    Column("subject_id", String(32), ForeignKey("subjects.id"), primary_key=True),
    Column("email", String(254)),
    Column("language", String(16), nullable=False),
    Column("updated_at", DateTime, nullable=False),
)

# One row per notice and channel, written in the notice's own transaction (the transactional
# outbox): a committed notice always has its deliveries queued. `message_id` is fixed when the row
# is written, so a resend after a crash between the SMTP server's acceptance and our commit carries
# the same Message-ID and the receiving side can recognise it.
outbox = Table(
    "outbox",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("notice_id", Id, ForeignKey("notices.id"), nullable=False),
    Column("channel", String(16), nullable=False),
    Column("address", String(254)),
    # Unique by construction, never looked up: it names the notice and the channel, whose pair is
    # unique below, so it needs no index of its own (a random key in a B-tree for every e-mail).
    Column("message_id", String(128), nullable=False),
    Column("state", String(16), nullable=False),
    Column("attempts", Integer, nullable=False),
    Column("next_attempt_at", DateTime, nullable=False),
    Column("claimed_until", DateTime),
    Column("last_error", Text),
    Column("delivered_at", DateTime),
    UniqueConstraint("notice_id", "channel"),
    Index(None, "state", "next_attempt_at"),
)

# --- tables: batch state (the scale issue) -------------------------------------------------------

# The state a batch computed for every subject, one row per (scheme, subject), replaced by the next
# batch. It is a cache for reads, never a source of truth: `batch.served_state` answers from it only
# while nothing about the subject was recorded after the batch's knowledge time, and otherwise the
# caller falls back to the online path. lists and measures are comma-separated ids.
serving_state = Table(
    "serving_state",
    metadata,
    Column("scheme", String(64), primary_key=True),
    Column("subject_id", String(32), primary_key=True),
    Column("version", String(32), nullable=False),
    Column("as_of", Date, nullable=False),
    Column("known_at", DateTime, nullable=False),
    Column("computed_at", DateTime, nullable=False),
    Column("score", BigInteger),
    Column("grade", String(16)),
    Column("lists", Text, nullable=False),
    Column("measures", Text, nullable=False),
)

MIGRATIONS = Path(__file__).parent / "migrations"
log = logging.getLogger("xinyong.storage.store")


def new_ids(conn: Connection, table: Table, n: int) -> Any:
    """Ids for `n` new rows of `table`, ascending, as an Arrow array: after the largest on SQLite
    (whose one writer is this transaction), drawn from the sequence on PostgreSQL (`draw_ids`)."""
    if conn.dialect.name == "sqlite":
        import pyarrow as pa

        top = int(conn.execute(select(func.max(table.c.id))).scalar() or 0)
        return pa.array(range(top + 1, top + 1 + n), pa.int64())
    return draw_ids(conn, table.name, n)


def draw_ids(conn: Connection, table: str, n: int) -> Any:
    """`n` ids from the sequence of `table` (PostgreSQL), ascending, as an Arrow array.

    Drawn, not numbered after the largest id, so that imports can write side by side. They come
    back as one text: millions of one-value rows, each a Python object, took longer to fetch than
    the rows they number took to compose. The sequence is looked up once (a subquery run before the
    rows): in the call itself it was looked up in the catalogue for every id drawn, three quarters
    of the server's time here."""
    import numpy as np
    import pyarrow as pa

    drawn = conn.exec_driver_sql(
        "SELECT string_agg(CAST(id AS text), ' ') FROM "
        "(SELECT nextval((SELECT pg_get_serial_sequence(%(table)s, 'id'))::regclass) AS id "
        "FROM generate_series(1, %(n)s)) AS drawn",
        {"table": table, "n": n},
    ).scalar_one()
    ids = np.array(drawn.split() if drawn else [], dtype=np.int64)
    ids.sort()
    return pa.array(ids)


def _sqlite_pragmas(dbapi_connection: Any, _record: Any, *, autocheckpoint: bool = True) -> None:
    # pysqlite's own transaction handling is switched off so that Store decides how to BEGIN.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    # A new database only (the size is fixed once in WAL mode): 16 KiB pages hold a bulk import's
    # notices (a kilobyte each) with less waste and cost a page's write a quarter as often.
    cursor.execute("PRAGMA page_size=16384")
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=10000")
    if not autocheckpoint:
        cursor.execute("PRAGMA wal_autocheckpoint=0")
    cursor.close()


def _set_foreign_keys(conn: Connection, *, on: bool) -> None:
    # On the driver's connection: through SQLAlchemy the statement would begin a transaction first.
    raw = conn.connection.driver_connection
    assert raw is not None
    raw.execute(f"PRAGMA foreign_keys={'ON' if on else 'OFF'}")


def _sqlite_begin(conn: Connection) -> None:
    conn.exec_driver_sql("BEGIN IMMEDIATE" if conn.info.get("xinyong_write") else "BEGIN")


class DriverQuery:
    """A SELECT built once and run on the driver's cursor of a SQLAlchemy connection, inside its
    transaction, with the columns' own type conversions (a SQLite date's text read as a date).

    For the point lookups on the path of every check the answer cache cannot answer. SQLAlchemy's
    execution machinery (events, an execution context, result metadata) cost a prebuilt lookup of
    a subject about 45 µs of its ~60; the driver takes 7. The statement is compiled once per
    dialect; parameters go by name, as they would to `Connection.execute`.
    """

    def __init__(self, statement: Any) -> None:
        self.statement = statement
        # Rows read as SQLAlchemy's are, by attribute (row.kind) or as a mapping (row._mapping).
        plain: Any = namedtuple("Row", [column.key for column in statement.selected_columns])  # type: ignore[misc]
        self.row: Any = type("Row", (plain,), {"__slots__": (), "_mapping": property(plain._asdict)})
        self._compiled: dict[str, tuple[str, list[tuple[str, Any]], dict[str, Any], list[Any]]] = {}

    def _for(self, dialect: Dialect) -> tuple[str, list[tuple[str, Any]], dict[str, Any], list[Any]]:
        ready = self._compiled.get(dialect.name)
        if ready is None:
            compiled = self.statement.compile(dialect=dialect)
            names = compiled.positiontup if compiled.positional else list(compiled.binds)
            binds = [
                (name, compiled.binds[name].type.dialect_impl(dialect).bind_processor(dialect)) for name in names or ()
            ]
            columns = self.statement.selected_columns
            results = [column.type.dialect_impl(dialect).result_processor(dialect, None) for column in columns]
            ready = self._compiled[dialect.name] = (str(compiled), binds, dict(compiled.params), results)
        return ready

    def _rows(self, conn: Connection, params: dict[str, Any], many: bool) -> list[Any]:
        sql, binds, defaults, results = self._for(conn.dialect)
        given = {**defaults, **params}  # literals in the statement keep their compiled values
        values = [given[name] if bind is None else bind(given[name]) for name, bind in binds]
        cursor = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
        try:
            cursor.execute(
                sql, values if conn.dialect.positional else dict(zip([n for n, _ in binds], values, strict=True))
            )
            raw = cursor.fetchall() if many else cursor.fetchmany(1)
        finally:
            cursor.close()
        return [
            self.row(
                *[value if convert is None else convert(value) for convert, value in zip(results, row, strict=True)]
            )
            for row in raw
        ]

    def first(self, conn: Connection, **params: Any) -> Any:
        rows = self._rows(conn, params, many=False)
        return rows[0] if rows else None

    def all(self, conn: Connection, **params: Any) -> list[Any]:
        return self._rows(conn, params, many=True)


class Store:
    """One database, embedded (SQLite) or server (PostgreSQL), behind the same tables and calls."""

    def __init__(self, url: str) -> None:
        try:
            parsed = make_url(url)
        except ArgumentError:
            raise BadInput(f"--db: {url!r} is not a database URL (e.g. sqlite:///xinyong.db)") from None
        self.url = url
        self.dialect = parsed.get_backend_name()
        if self.dialect not in {"sqlite", "postgresql"}:
            raise BadInput(f"--db: {self.dialect} is not supported; use sqlite:/// or postgresql+psycopg://")
        self._checkpointer: Checkpointer | None = None
        if self.dialect == "sqlite":
            self.engine: Engine = create_engine(url)
            event.listen(
                self.engine,
                "connect",
                lambda dbapi, record: _sqlite_pragmas(dbapi, record, autocheckpoint=self._checkpointer is None),
            )
            event.listen(self.engine, "begin", _sqlite_begin)
        else:
            self.engine = create_engine(url, pool_pre_ping=True)

    @property
    def is_sqlite(self) -> bool:
        return self.dialect == "sqlite"

    @contextmanager
    def write(self, *, foreign_keys: bool = True) -> Iterator[Connection]:
        """The one door for writes: a transaction that commits whole or not at all.

        `foreign_keys=False` (SQLite; PostgreSQL ignores it): for a writer that has checked every
        reference it writes itself, in this transaction (the bulk import). SQLite checks a foreign
        key by an index lookup per row, a quarter of a bulk import's time; it can switch the checks
        off only outside a transaction, so this connection does so before BEGIN and after the end."""
        with self.engine.connect() as conn:
            conn.info["xinyong_write"] = True
            unchecked = self.is_sqlite and not foreign_keys
            try:
                if unchecked:
                    _set_foreign_keys(conn, on=False)
                with conn.begin():
                    yield conn
            finally:
                conn.info["xinyong_write"] = False
                if unchecked and not conn.invalidated:
                    _set_foreign_keys(conn, on=True)
            if self._checkpointer is not None and self._checkpointer.restart_wanted:
                self._checkpointer.finish(conn.connection.dbapi_connection)

    @contextmanager
    def write_driver(self) -> Iterator[Any]:
        """A write transaction on the driver's own connection (sqlite3 or psycopg), for the audit
        log's group commits: every check commits one, and SQLAlchemy's per-transaction machinery
        (events, the BEGIN through its execution path, the connection wrapper) cost ~70 µs of
        the ~90 µs an empty transaction took here, against ~20 µs for the pooled connection alone."""
        pooled = self.engine.raw_connection()
        try:
            driver = pooled.driver_connection
            assert driver is not None
            if self.is_sqlite:
                driver.execute("BEGIN IMMEDIATE")
            try:
                yield driver
            except BaseException:
                driver.rollback()
                raise
            driver.commit()
            if self._checkpointer is not None and self._checkpointer.restart_wanted:
                self._checkpointer.finish(driver)
        finally:
            pooled.close()

    @contextmanager
    def read(self) -> Iterator[Connection]:
        """A read transaction: one consistent snapshot for everything a question needs."""
        with self.engine.connect() as conn, conn.begin():
            yield conn

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
            if self.is_sqlite and MigrationContext.configure(conn).get_current_revision() != before:
                broken = conn.exec_driver_sql("PRAGMA foreign_key_check").all()
                if broken:
                    table, rowid, parent, _ = broken[0]
                    raise XinyongError(
                        f"a migration left {len(broken)} row(s) pointing at missing rows; "
                        f"first: {table} row {rowid} → {parent}; nothing was changed"
                    )

    def require_initialised(self) -> None:
        if not self.is_initialised():
            raise BadInput(f"the store {self.url} is empty: run `xinyong init` first")

    def checkpoint_in_background(self, interval: float = 1.0) -> None:
        """SQLite: move WAL checkpoints off the commit path, onto a thread of this process's own.

        By default the commit that pushes the WAL past 1,000 pages runs the checkpoint itself —
        copying those pages into the database file and syncing it — so one request in a few
        hundred waits tens of milliseconds for work that is not its own. A server that answers
        after every commit (each check's audit entry) cannot afford that tail, so its connections
        stop checkpointing and a thread checkpoints every `interval` seconds instead (PASSIVE: it
        never blocks a writer or a reader). Other processes on the same file keep the default.
        A no-op on PostgreSQL and on in-memory databases.
        """
        database = self.engine.url.database or ""
        if not self.is_sqlite or self._checkpointer is not None or database in ("", ":memory:"):
            return
        self._checkpointer = Checkpointer(database, interval)
        self.engine.dispose()  # pooled connections were opened with the default; reopen them
        self._checkpointer.start()

    def dispose(self) -> None:
        if self._checkpointer is not None:
            self._checkpointer.stop()
            self._checkpointer = None
        self.engine.dispose()


class Checkpointer(threading.Thread):
    """A daemon thread that checkpoints one SQLite database's WAL on a timer (see
    `Store.checkpoint_in_background`); the checkpoint's disk writes and sync release the GIL."""

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
            conn.execute("PRAGMA busy_timeout=10000")
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
