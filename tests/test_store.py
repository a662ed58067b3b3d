"""The store's SQLite behaviour that the rest of the suite takes for granted."""

from __future__ import annotations

import sqlite3
import threading
import time
from pathlib import Path

import pytest
from sqlalchemy import text

from xinyong.store import Checkpointer, Store


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
        checkpointer = store._checkpointer
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
    assert store._checkpointer is None
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
    """`Store.write_driver` (the audit log's group commits) keeps `write`'s promise on each backend."""
    marker = "?" if store.is_sqlite else "%s"
    insert = f"INSERT INTO audit_head (id, seq, hash) VALUES ({marker}, 0, 'h')"

    def fails_halfway() -> None:
        with store.write_driver() as connection:
            connection.cursor().execute(insert, (7,))
            raise RuntimeError("the second statement failed")

    with pytest.raises(RuntimeError):
        fails_halfway()
    with store.write_driver() as connection:
        connection.cursor().execute(insert, (8,))
    with store.read() as conn:
        assert [row.id for row in conn.execute(text("SELECT id FROM audit_head"))] == [8]
