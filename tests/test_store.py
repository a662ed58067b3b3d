"""The store's SQLite behaviour that the rest of the suite takes for granted."""

from __future__ import annotations

import time
from pathlib import Path

from sqlalchemy import text

from xinyong.store import Store


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
            conn.execute(text("CREATE TABLE filler (x TEXT)"))
            conn.execute(text("INSERT INTO filler VALUES (:x)"), [{"x": "y" * 2000} for _ in range(3000)])
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
