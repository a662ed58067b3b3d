"""The storage backend interface: every operation does the same thing on SQLite and PostgreSQL.

The `store` fixture runs each test on both backends. Where the interface lets them differ (a
capability, such as whether writers of different keys wait for each other), the test reads the
capability rather than the database's name. The last test keeps every dialect difference inside
`xinyong.storage`.
"""

from __future__ import annotations

import ast
import datetime as dt
import re
import threading
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from sqlalchemy import Column, Connection, Date, DateTime, MetaData, String, Table, Text, create_engine, select, text
from sqlalchemy.exc import IntegrityError

from xinyong.errors import BadInput
from xinyong.storage import tables as t
from xinyong.storage.backend import Backend, backend_for, backend_of
from xinyong.storage.store import Store

SRC = Path(__file__).resolve().parent.parent / "src" / "xinyong"

AT = "2026-03-02 01:02:03.456789"  # tables.STORED_TIMESTAMP
CONSTANTS = {"at": AT, "who": "bulk 'importer'"}
ROWS = pa.table(
    {
        "id": pa.array([3, 1, 2, 4], pa.int64()),
        "label": pa.array(["", None, 'a "b", c\\d\ne\r', "文书🙂"], pa.string()),
        "day": pa.array([dt.date(1999, 12, 31), None, dt.date(2026, 3, 2), dt.date(1, 1, 1)], pa.date32()),
        "amount": pa.array(
            [Decimal("0.05"), None, Decimal("9999999999999999.99"), Decimal("-1.50")], pa.decimal128(18, 2)
        ),
    }
)
SCHEMA = pa.schema(
    [
        ("id", pa.int64()),
        ("label", pa.string()),
        ("day", pa.date32()),
        ("amount", pa.decimal128(18, 2)),
        ("at", pa.timestamp("us")),
        ("who", pa.string()),
    ]
)
EXPECTED = sorted(
    (row["id"], row["label"], row["day"], row["amount"], dt.datetime(2026, 3, 2, 1, 2, 3, 456789), CONSTANTS["who"])
    for row in ROWS.to_pylist()
)


def _probe(conn: Connection) -> Table:
    """A temporary table of the store's column types, on this connection."""
    probe = Table(
        "probe",
        MetaData(),
        Column("id", t.Id, primary_key=True, autoincrement=False),
        Column("label", Text),
        Column("day", Date),
        Column("amount", t.Amount()),
        Column("at", DateTime, nullable=False),
        Column("who", String(64), nullable=False),
        prefixes=["TEMPORARY"],
    )
    probe.create(conn)
    return probe


def test_the_store_and_its_connections_share_one_backend(store: Store) -> None:
    with store.read() as conn:
        assert backend_of(conn) is store.backend
    with store.write() as conn:
        assert backend_of(conn) is store.backend
    # A connection of an engine no store made still finds a backend of its database's kind.
    engine = create_engine(store.url)
    try:
        with engine.connect() as conn:
            found = backend_of(conn)
            assert type(found) is type(store.backend)
            assert found is not store.backend
            assert conn.exec_driver_sql(f"SELECT {found.random_hex_sql(8)}").scalar()
    finally:
        engine.dispose()


@pytest.mark.parametrize("url", ["mysql://somewhere/db", "not a url"])
def test_only_the_two_databases_are_backends(url: str) -> None:
    with pytest.raises(BadInput, match="--db"):
        backend_for(url)


def test_arrow_loaded_reads_back_the_same(store: Store) -> None:
    """`load_arrow` then `read_arrow`, and SQLAlchemy's own reading: every value as it was,
    NULL apart from the empty text, amounts exact at the edge, dates before and after 2000."""
    backend = store.backend
    with store.write() as conn:
        probe = _probe(conn)
        backend.load_arrow(conn, "probe", ROWS.slice(0, 0), CONSTANTS)  # nothing to load: nothing loaded
        backend.load_arrow(conn, "probe", ROWS, CONSTANTS)
        by_sqlalchemy = [tuple(row) for row in conn.execute(select(probe).order_by(probe.c.id))]
        read = backend.read_arrow(conn, "SELECT id, label, day, amount, at, who FROM probe ORDER BY id", SCHEMA)
        keys = pa.chunked_array([["", "文书🙂", "not there"]])
        keyed = backend.read_arrow(
            conn,
            "SELECT id, label, day, amount, at, who FROM probe WHERE who LIKE 'bulk%' AND label IN {keys} ORDER BY id",
            SCHEMA,
            keys,
        )
        nothing = backend.read_arrow(conn, "SELECT id, label, day, amount, at, who FROM probe WHERE false", SCHEMA)
    assert by_sqlalchemy == EXPECTED
    assert read.schema == SCHEMA
    assert [tuple(row.values()) for row in read.to_pylist()] == EXPECTED
    assert keyed.column("id").to_pylist() == [3, 4]
    assert nothing.num_rows == 0
    assert nothing.schema == SCHEMA


def test_a_table_exported_to_parquet_reads_the_same(store: Store, tmp_path: Path) -> None:
    """`export_parquet`: the rows as the schema names and types them, timestamps as microseconds."""
    schema = SCHEMA.set(SCHEMA.get_field_index("at"), pa.field("at", pa.int64()))
    with store.write() as conn:
        _probe(conn)
        store.backend.export_parquet(conn, "probe", schema.names, schema, tmp_path / "empty.parquet", micros=("at",))
        store.backend.load_arrow(conn, "probe", ROWS, CONSTANTS)
        store.backend.export_parquet(conn, "probe", schema.names, schema, tmp_path / "probe.parquet", micros=("at",))
    assert pq.read_table(tmp_path / "empty.parquet").num_rows == 0
    exported = pq.read_table(tmp_path / "probe.parquet")
    assert exported.schema == schema
    micros = (dt.datetime(2026, 3, 2, 1, 2, 3, 456789, tzinfo=dt.UTC) - dt.datetime(1970, 1, 1, tzinfo=dt.UTC)) // (
        dt.timedelta(microseconds=1)
    )
    assert sorted(tuple(row.values()) for row in exported.to_pylist()) == [
        (*row[:4], micros, row[5]) for row in EXPECTED
    ]


def test_new_ids_are_ascending_and_never_used(store: Store) -> None:
    backend = store.backend
    templates = t.notice_templates
    with store.write() as conn:
        taken = [conn.execute(templates.insert().values(parts="[]", fields="[]")).inserted_primary_key[0] for _ in "ab"]
        assert backend.new_ids(conn, templates, 0).to_pylist() == []
        drawn = backend.new_ids(conn, templates, 5)
        assert drawn.type == pa.int64()
        ids = drawn.to_pylist()
        assert ids == sorted(ids)
        assert len(set(ids)) == 5
        assert min(ids) > max(taken)
        rows = pa.table({"id": drawn, "parts": pa.array(["[]"] * 5), "fields": pa.array(["[]"] * 5)})
        backend.load_arrow(conn, templates.name, rows)
        after = conn.execute(templates.insert().values(parts="[]", fields="[]")).inserted_primary_key[0]
        assert after > max(ids)
        assert min(backend.new_ids(conn, templates, 3).to_pylist()) > max(ids)


def test_writers_side_by_side_draw_different_ids(store: Store) -> None:
    """Where writers do not take turns, two transactions drawing at once get ids of their own."""
    if store.backend.single_writer:
        pytest.skip("one writer at a time: a second write transaction would wait for the first")
    with store.write() as first, store.write() as second:
        one = store.backend.new_ids(first, t.records, 50).to_pylist()
        two = store.backend.new_ids(second, t.records, 50).to_pylist()
    assert not set(one) & set(two)


def _side_by_side(store: Store, first: Any, second: Any, *, hold: float = 0.4, log: bool = False) -> list[str]:
    """Run `first(conn)` in a write transaction held open for `hold` seconds, and meanwhile, once it
    has run, `second(conn)` in another (on the audit log's database if `log`); returns the events
    in the order they happened."""
    write = store.audit_write if log else store.write
    events: list[str] = []
    started = threading.Event()
    failures: list[BaseException] = []

    def one() -> None:
        try:
            with write() as conn:
                first(conn)
                events.append("first in")
                started.set()
                time.sleep(hold)
                events.append("first out")
        except BaseException as exc:  # pragma: no cover - shown below
            failures.append(exc)
            started.set()

    def two() -> None:
        try:
            started.wait(10)
            with write() as conn:
                second(conn)
                events.append("second in")
        except BaseException as exc:  # pragma: no cover - shown below
            failures.append(exc)

    threads = [threading.Thread(target=one), threading.Thread(target=two)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert not failures, failures
    return events


def test_take_turn_serialises_two_writers_of_one_key(store: Store) -> None:
    backend = store.backend
    events = _side_by_side(
        store, lambda conn: backend.take_turn(conn, "test:key"), lambda conn: backend.take_turn(conn, "test:key")
    )
    assert events == ["first in", "first out", "second in"]
    # Writers of another key wait only where every writer waits anyway.
    events = _side_by_side(
        store, lambda conn: backend.take_turn(conn, "test:key"), lambda conn: backend.take_turn(conn, "test:other")
    )
    if backend.single_writer:
        assert events == ["first in", "first out", "second in"]
    else:
        assert events == ["first in", "second in", "first out"]


def test_take_table_turn_serialises_jobs_but_not_inserts(store: Store) -> None:
    """As the audit log's compaction uses it, on the log's database."""
    backend = store.audit_backend
    table = t.audit_subjects.name
    events = _side_by_side(
        store,
        lambda conn: backend.take_table_turn(conn, table),
        lambda conn: backend.take_table_turn(conn, table),
        log=True,
    )
    assert events == ["first in", "first out", "second in"]

    def insert(conn: Connection) -> None:
        conn.execute(t.audit_subjects.insert().values(run=1, subject_id="S", seq=1))

    events = _side_by_side(store, lambda conn: backend.take_table_turn(conn, table), insert, log=True)
    if backend.single_writer:
        assert events == ["first in", "first out", "second in"]
    else:
        assert events == ["first in", "second in", "first out"]


def test_a_locking_read_makes_the_second_writer_wait_and_read_the_new_row(store: Store) -> None:
    """What the audit chain's head relies on, on the driver's own connections (`audit_write_driver`)."""
    backend = store.audit_backend
    with store.audit_write() as conn:
        conn.execute(t.audit_head.insert().values(id=1, seq=0, hash="h", indexed=0))
    head = backend.locking_read("SELECT seq FROM audit_head WHERE id = 1")
    update = f"UPDATE audit_head SET seq = {backend.param_marker} WHERE id = 1"
    read_first = threading.Event()
    seen: list[int] = []

    def first() -> None:
        with store.audit_write_driver() as driver:
            cursor = driver.cursor()
            seq = cursor.execute(head).fetchone()[0]
            read_first.set()
            time.sleep(0.4)
            cursor.execute(update, (seq + 1,))

    def second() -> None:
        read_first.wait(10)
        with store.audit_write_driver() as driver:
            cursor = driver.cursor()
            seq = cursor.execute(head).fetchone()[0]
            seen.append(seq)
            cursor.execute(update, (seq + 1,))

    threads = [threading.Thread(target=first), threading.Thread(target=second)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert seen == [1]
    with store.audit_read() as conn:
        assert conn.execute(select(t.audit_head.c.seq)).scalar_one() == 2


def test_driver_timestamps_are_bound_as_the_backend_says(store: Store) -> None:
    """`timestamps_as_text` and `param_marker`: a row written on the driver's cursor reads back
    through SQLAlchemy as the same instant."""
    backend = store.audit_backend
    instant = dt.datetime(2026, 3, 2, 1, 2, 3, 456789)
    bound: Any = instant.strftime(t.STORED_TIMESTAMP) if backend.timestamps_as_text else instant
    marker = backend.param_marker
    with store.audit_write_driver() as driver:
        driver.cursor().execute(
            "INSERT INTO audit_log (seq, at, actor, role, action, outcome, prev_hash, hash) "
            f"VALUES (1, {marker}, 'a', 'r', 'x', 'done', 'p', 'h')",
            (bound,),
        )
    with store.audit_read() as conn:
        assert conn.execute(select(t.audit_log.c.at)).scalar_one() == instant


def test_references_unchecked_are_refused_or_found_before_the_commit(store: Store) -> None:
    """A row pointing nowhere, written with the checks off: either the database still refuses it,
    or `broken_references` names it (what `Store.migrating` checks before committing)."""
    orphan = t.source_behaviours.insert().values(source_id="nobody", behaviour="X", granted_at=dt.datetime(2026, 1, 1))
    found: list[list[tuple[str, Any, str]]] = []

    def write_an_orphan() -> None:
        with store.write(foreign_keys=False) as conn:
            conn.execute(orphan)
            found.append(store.backend.broken_references(conn))
            raise RuntimeError("not committed")

    with pytest.raises((IntegrityError, RuntimeError)):
        write_an_orphan()
    assert found in ([], [[("source_behaviours", 1, "sources")]])
    with store.read() as conn:
        assert conn.execute(text("SELECT count(*) FROM source_behaviours")).scalar() == 0
        assert store.backend.broken_references(conn) == []
    # Outside `foreign_keys=False` every backend checks.
    with pytest.raises(IntegrityError), store.write() as conn:
        conn.execute(orphan)


def test_bulk_preparation_keeps_the_transaction_usable(store: Store) -> None:
    """`prepare_bulk_write` and `bulk_loading` change settings for one import only: the load works
    inside them, and afterwards the connection is as it was."""

    def settings(conn: Connection) -> Any:
        if store.backend.name == "sqlite":
            return conn.exec_driver_sql("PRAGMA cache_size").scalar()
        return conn.exec_driver_sql("SHOW work_mem").scalar()

    with store.write(foreign_keys=False) as conn:
        before = settings(conn)
        store.backend.prepare_bulk_write(conn)
        with store.backend.bulk_loading(conn):
            store.backend.load_arrow(
                conn, "sources", pa.table({"id": ["a", "b"], "title": ["A", None]}), {"created_at": AT}
            )
        assert conn.execute(select(t.sources.c.id).order_by(t.sources.c.id)).scalars().all() == ["a", "b"]
    with store.read() as conn:
        assert settings(conn) == before


def test_the_fingerprint_follows_every_commit_where_ids_commit_in_order(store: Store) -> None:
    query = "SELECT (SELECT max(id) FROM notice_templates), (SELECT count(*) FROM sources)"
    fingerprint = store.backend.fingerprint(query)
    if not store.backend.single_writer:
        assert fingerprint is None  # ids may commit out of order: no such fingerprint
        return
    assert fingerprint is not None
    assert fingerprint() == (None, 0)
    assert fingerprint() == (None, 0)
    with store.write() as conn:
        conn.execute(t.notice_templates.insert().values(parts="[]", fields="[]"))
        assert fingerprint() == (None, 0)  # not committed yet
    assert fingerprint() == (1, 0)
    assert Store("sqlite://").backend.fingerprint(query) is None  # in memory: nothing to open twice


def test_random_hex_is_random_hex(store: Store) -> None:
    expression = store.backend.random_hex_sql(16)
    with store.read() as conn:
        one, two = conn.exec_driver_sql(f"SELECT {expression}, {expression}").one()
    assert re.fullmatch("[0-9a-f]{16}", one)
    assert re.fullmatch("[0-9a-f]{16}", two)
    assert one != two


def test_database_files_are_the_whole_embedded_store(store: Store, tmp_path: Path) -> None:
    files = store.database_files()
    if store.url.startswith("sqlite"):
        assert files[0] == tmp_path / "test.db"
        main, log = store.backend.database_files(), store.audit_backend.database_files()
        assert files == main + log
        assert log[0] == tmp_path / "test-audit.db"  # the audit log apart, beside the store
        assert all(p.parent == tmp_path and p.name.startswith(("test.db", "test-audit.db")) for p in files)
        assert files[0].exists()
        assert log[0].exists()
    else:
        assert files == []
    store.checkpoint_in_background(interval=0.05)  # wherever it is a no-op, it is harmless
    with store.write() as conn:
        conn.execute(t.notice_templates.insert().values(parts="[]", fields="[]"))


def test_every_backend_implements_every_operation() -> None:
    from xinyong.storage.postgres import PostgresBackend
    from xinyong.storage.sqlite import SQLiteBackend

    for kind in (SQLiteBackend, PostgresBackend):
        assert not getattr(kind, "__abstractmethods__", None), kind
        for capability in ("name", "single_writer", "load_frees_python", "reads_in_process", "timestamps_as_text"):
            assert hasattr(kind, capability), (kind, capability)
        assert issubclass(kind, Backend)


# --- no dialect outside storage ---------------------------------------------------------------

DRIVERS = ("sqlite3", "psycopg", "psycopg2", "pysqlite2", "asyncpg")
DATABASE_NAMES = {"sqlite", "postgresql", "postgres"}


def dialect_knowledge(tree: ast.AST) -> list[tuple[int, str]]:
    """Where a module imports a database driver or asks which database it is on."""
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, f"import {a.name}") for a in node.names if a.name.split(".")[0] in DRIVERS]
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] in DRIVERS:
            found.append((node.lineno, f"from {node.module} import"))
        elif isinstance(node, ast.Attribute) and node.attr in {"is_sqlite", "dialect", "get_backend_name"}:
            found.append((node.lineno, f".{node.attr}"))
        elif isinstance(node, ast.Compare):
            operands = [node.left, *node.comparators]
            for operand in operands:
                if isinstance(operand, ast.Constant) and str(operand.value).lower() in DATABASE_NAMES:
                    found.append((node.lineno, f"compares with {operand.value!r}"))
                if isinstance(operand, ast.Set | ast.Tuple | ast.List):
                    names = [e.value for e in operand.elts if isinstance(e, ast.Constant)]
                    if any(str(name).lower() in DATABASE_NAMES for name in names):
                        found.append((node.lineno, f"compares with {names!r}"))
    return found


def test_the_detector_finds_what_it_is_for() -> None:
    sample = (
        "import sqlite3\nfrom psycopg import sql\nimport psycopg.rows\n"
        "if store.is_sqlite: pass\nif conn.dialect.name == 'postgresql': pass\n"
        "if name in ('sqlite', 'x'): pass\nkind = url.get_backend_name()\n"
        "batch.sql(dialect='duckdb')\nurl = 'sqlite:///x.db'\n"
    )
    assert sorted(line for line, _ in dialect_knowledge(ast.parse(sample))) == [1, 2, 3, 4, 5, 5, 6, 7]


def test_no_module_outside_storage_imports_a_driver_or_asks_the_dialect() -> None:
    modules = [path for path in sorted(SRC.rglob("*.py")) if "storage" not in path.relative_to(SRC).parts[:1]]
    assert len(modules) > 50
    found = {
        f"{path.relative_to(SRC)}:{line}: {what}"
        for path in modules
        for line, what in dialect_knowledge(ast.parse(path.read_text(encoding="utf-8")))
    }
    assert found == set(), "every dialect difference belongs to xinyong.storage's backends:\n" + "\n".join(
        sorted(found)
    )
