"""The store's SQLite behaviour that the rest of the suite takes for granted."""

from __future__ import annotations

import re
import sqlite3
import threading
import time
from pathlib import Path

import pytest
from sqlalchemy import event, select, text
from sqlalchemy.exc import IntegrityError

from helpers import World, at
from xinyong.derived import derivation
from xinyong.due_process import notices
from xinyong.storage.sqlite import Checkpointer
from xinyong.storage.store import Store


def _autocheckpoint(store: Store) -> int:
    with store.read() as conn:
        return int(conn.execute(text("PRAGMA wal_autocheckpoint")).scalar_one())


def test_by_default_commits_checkpoint_themselves(tmp_path: Path) -> None:
    store = Store(f"sqlite:///{tmp_path / 'x.db'}")
    store.migrate()
    assert _autocheckpoint(store) == 1000
    store.dispose()


def test_background_checkpoints_take_the_work_off_commits(tmp_path: Path) -> None:
    path = tmp_path / "x.db"
    store = Store(f"sqlite:///{path}")
    store.migrate()
    store.checkpoint_in_background(interval=0.05)
    try:
        assert _autocheckpoint(store) == 0  # no commit checkpoints any more
        with store.write() as conn:
            # Enough rows for well over 1000 WAL frames, whatever the page size.
            rows = 3 * int(conn.execute(text("PRAGMA page_size")).scalar_one()) // 4
            conn.execute(text("CREATE TABLE filler (x TEXT)"))
            conn.execute(text("INSERT INTO filler VALUES (:x)"), [{"x": "y" * 2000} for _ in range(rows)])
        checkpointer = store.backend.checkpointer  # type: ignore[attr-defined]
        assert checkpointer is not None
        deadline = time.monotonic() + 10
        while checkpointer.last[0] < 1000 and time.monotonic() < deadline:
            time.sleep(0.02)
        logged, copied = checkpointer.last
        assert logged > 1000
        assert copied == logged  # the thread copied every frame of that big commit
    finally:
        store.dispose()
    assert not checkpointer.is_alive()


def test_background_checkpoints_are_a_no_op_in_memory() -> None:
    store = Store("sqlite://")
    store.checkpoint_in_background()
    assert store.backend.checkpointer is None  # type: ignore[attr-defined]
    store.dispose()


def test_under_steady_writes_and_reads_the_wal_starts_over(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """PASSIVE checkpoints alone never let a busy log start over; the writer's finishing pass does."""
    monkeypatch.setattr(Checkpointer, "RESTART_FRAMES", 100)
    path = tmp_path / "x.db"
    store = Store(f"sqlite:///{path}")
    store.migrate()
    with store.write() as conn:
        conn.execute(text("CREATE TABLE filler (x TEXT)"))
    store.checkpoint_in_background(interval=0.05)
    stop = threading.Event()

    def read() -> None:
        reader = sqlite3.connect(path)
        while not stop.is_set():
            reader.execute("SELECT x FROM filler WHERE rowid = 1").fetchone()  # brief, as a server's are
        reader.close()

    reading = threading.Thread(target=read)
    reading.start()
    commits = 0
    try:
        # Writes without a pause (a pause lets a checkpoint finish and the log start over by
        # itself), for at least 1.5 s and 400 commits: a count as well as a time, since on a
        # loaded machine the writes slow down as much as the checkpointer's ticks.
        deadline = time.monotonic() + 1.5
        while commits < 400 or time.monotonic() < deadline:
            with store.write() as conn:
                conn.execute(text("INSERT INTO filler VALUES (:x)"), {"x": "y" * 3000})
            commits += 1
    finally:
        stop.set()
        reading.join()
        wal = Path(f"{path}-wal").stat().st_size
        page = sqlite3.connect(path).execute("PRAGMA page_size").fetchone()[0]
        store.dispose()
    # Every commit appends at least one page (two or three, here): a log that never started over
    # would be past commits × a page (4 KiB pages: 65–69 MB in runs without the writer's pass,
    # against ~5 MB with it).
    assert wal < commits * page


def test_a_driver_write_commits_whole_or_not_at_all(store: Store) -> None:
    """`Store.audit_write_driver` (the audit log's group commits) keeps `write`'s promise on each backend."""
    marker = store.audit_backend.param_marker
    insert = f"INSERT INTO audit_head (id, seq, hash) VALUES ({marker}, 0, 'h')"

    def fails_halfway() -> None:
        with store.audit_write_driver() as connection:
            connection.cursor().execute(insert, (7,))
            raise RuntimeError("the second statement failed")

    with pytest.raises(RuntimeError):
        fails_halfway()
    with store.audit_write_driver() as connection:
        connection.cursor().execute(insert, (8,))
    with store.audit_read() as conn:
        assert [row.id for row in conn.execute(text("SELECT id FROM audit_head"))] == [8]


def test_a_subjects_effects_and_notices_are_read_through_indexes(sqlite_store: Store) -> None:
    """Neither effects nor notices has an index of its own in subject order (a bulk import would
    keep one more random B-tree per row); what reads them per subject goes through the subject's
    records and must never scan either table."""
    world = World(sqlite_store)
    person, _ = world.standard()
    record = world.record(person, "COURT.DEFAULT", "2026-03-01", at("2026-03-02"))
    statements: list[str] = []
    with sqlite_store.read() as conn:
        raw = conn.connection.driver_connection
        raw.set_trace_callback(statements.append)
        try:
            assert derivation.effects_for_subject(conn, person)
            assert derivation.effects_for_subject(conn, person, "demo-city")
            assert notices.inbox(conn, person)
            assert notices.inbox(conn, person, record_id=record, unread_only=True)
            assert notices.count(conn, person) == 1
        finally:
            raw.set_trace_callback(None)
        selects = [s for s in statements if s.lstrip().upper().startswith("SELECT")]
        plans = {s: " / ".join(row[3] for row in raw.execute(f"EXPLAIN QUERY PLAN {s}")) for s in selects}
    assert len(plans) == 5
    for statement, plan in plans.items():
        assert not re.search(r"\bSCAN (effects|notices)\b", plan), (statement, plan)


def test_the_index_migration_goes_down_and_up_keeping_notices_and_their_deliveries(store: Store) -> None:
    """Migration 0006 rebuilds notices and outbox on SQLite (their unique constraints change) while
    outbox rows point at notices; down and up, every notice and delivery stays, and a notice's
    key stays unique."""
    from alembic import command
    from alembic.config import Config
    from sqlalchemy.exc import IntegrityError

    from xinyong.storage import tables as t
    from xinyong.storage.store import MIGRATIONS

    world = World(store)
    person, _ = world.standard()
    with store.write() as conn:
        notices.set_contact(conn, person, email="person@example.invalid", lang="en", now=at("2026-03-01"))
    world.record(person, "COURT.DEFAULT", "2026-03-01", at("2026-03-02"))
    rows = text(
        "SELECT n.id, n.key, n.record_id, o.channel, o.message_id FROM notices AS n "
        "JOIN outbox AS o ON o.notice_id = n.id ORDER BY o.id"
    )
    with store.read() as conn:
        before = conn.execute(rows).all()
    assert [row.channel for row in before] == ["email"]
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    with store.migrating() as conn:
        config.attributes["connection"] = conn
        command.downgrade(config, "0005")
        assert conn.execute(rows).all() == before
        command.upgrade(config, "head")
        assert conn.execute(rows).all() == before
        [notice] = conn.execute(select(t.notices)).all()
        again = {**notice._mapping, "id": None}
        with pytest.raises(IntegrityError), conn.begin_nested():
            conn.execute(t.notices.insert().values(again))
    with store.read() as conn:
        assert [n.id for n in notices.inbox(conn, person)] == [before[0].id]


def test_a_migration_that_leaves_a_broken_reference_is_not_committed(sqlite_store: Store) -> None:
    """Foreign keys are off while migrations copy tables on SQLite, and checked before the commit
    whenever the schema's revision changed."""
    from alembic import command
    from alembic.config import Config

    from xinyong.errors import XinyongError
    from xinyong.storage.store import MIGRATIONS

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    orphan = text(
        "INSERT INTO notices (key, subject_id, record_id, kind, created_at, facts) "
        "VALUES ('7:recorded', 'nobody', 7, 'recorded', '2026-01-01 00:00:00', '{}')"
    )
    statements: list[str] = []
    event.listen(sqlite_store.engine, "before_cursor_execute", lambda *args: statements.append(args[2]))
    sqlite_store.migrate()  # at the head already: no revision changed, nothing to check
    assert statements
    assert "PRAGMA foreign_key_check" not in statements

    def downgrade_leaving_an_orphan() -> None:
        with sqlite_store.migrating() as conn:
            config.attributes["connection"] = conn
            command.downgrade(config, "0005")
            conn.execute(orphan)

    broken = r"2 row\(s\) pointing at missing rows; first: notices row 1 → (subjects|records); nothing was changed"
    with pytest.raises(XinyongError, match=broken):
        downgrade_leaving_an_orphan()
    assert "PRAGMA foreign_key_check" in statements
    with sqlite_store.read() as conn:
        assert conn.execute(text("SELECT count(*) FROM notices")).scalar() == 0
        assert {conn.execute(text("SELECT version_num FROM alembic_version")).scalar()} == sqlite_store.revisions()[1]
    # Outside a migration the checks are back on.
    with pytest.raises(IntegrityError), sqlite_store.write() as conn:
        conn.execute(orphan)
