"""Checks never stop and imports take their turns ("Trust under load" in DESIGN.md).

SQLite has one writer per database file, and an import holds it for as long as it writes (a
minute and more for millions of records). These tests hold the store's write lock as such an import
does, with SQLite's busy timeout cut to a tenth of a second: what waits for the lock then fails at
once with `Unavailable`, so each test fails, without timing anything, when a check or an import
needs the lock the "import" holds.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import func, select, text

from helpers import World, at
from xinyong.errors import Unavailable
from xinyong.rules.clock import FixedClock
from xinyong.security import audit
from xinyong.security.access import Action, Principal, Role
from xinyong.service import Service
from xinyong.storage import sqlite
from xinyong.storage import tables as t
from xinyong.storage.store import Store

ADMIN = Principal(Role.ADMIN, "officer", channel="test")
AVIATION = Principal(Role.ENFORCER, "gate", agency="civil-aviation", channel="test")


@pytest.fixture
def impatient(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Store]:
    """A SQLite store whose connections give up on a held lock after 100 ms."""
    monkeypatch.setattr(sqlite, "BUSY_TIMEOUT_MS", 100)
    store = Store(f"sqlite:///{tmp_path / 'turns.db'}")
    store.migrate()
    yield store
    store.dispose()


class Held:
    """The store's write lock, held by another thread as a long import holds it, until `release`."""

    def __init__(self, store: Store) -> None:
        self._holding, self._done = threading.Event(), threading.Event()
        self._thread = threading.Thread(target=self._hold, args=(store,))

    def _hold(self, store: Store) -> None:
        with store.write() as conn:
            conn.execute(t.notice_templates.insert().values(parts="[]", fields="[]"))
            self._holding.set()
            self._done.wait(30)

    def __enter__(self) -> Held:
        self._thread.start()
        assert self._holding.wait(10)
        return self

    def release(self) -> None:
        self._done.set()

    def __exit__(self, *exc: object) -> None:
        self.release()
        self._thread.join(30)


def _city(store: Store) -> tuple[Service, str]:
    world = World(store)
    person, _ = world.standard()
    world.record(person, "COURT.DEFAULT", "2026-01-05", at("2026-01-06"))
    return Service(store, FixedClock(at("2026-02-01"))), person


def test_a_check_answers_and_is_audited_while_an_import_holds_the_store(impatient: Store) -> None:
    """Before the audit log had a file of its own, the check's entry waited for the import's lock."""
    service, person = _city(impatient)
    with Held(impatient):
        answer = service.questions.check(AVIATION, person, "demo-city/no-flights")
        with pytest.raises(Unavailable):  # the lock is held indeed: a short write of the ledger waits
            service.subjects.change_consent(ADMIN, person, "demo-city", False)
    assert answer["applies"] in (True, False)
    with impatient.audit_read() as conn:
        last = audit.entry_dict(list(audit.entries(conn))[-1])
    assert (last["action"], last["subject_id"], last["outcome"]) == ("checks.ask", person, "done")
    assert last["detail"]["applies"] == answer["applies"]


def test_a_second_import_waits_its_turn(impatient: Store) -> None:
    """An import behind another waits however long that one writes, where it failed with
    "database is locked" after the busy timeout."""
    service, person = _city(impatient)
    body = f"subject_id,behaviour,occurred_on,document_ref\n{person},TRAFFIC.MINOR,2026-01-20,TURN-1\n"
    results = []
    with Held(impatient) as held:
        second = threading.Thread(
            target=lambda: results.append(service.records.import_file(ADMIN, "r.csv", body.encode(), "transport"))
        )
        second.start()
        second.join(1.0)  # ten busy timeouts: it is still waiting, not failed
        assert second.is_alive()
        held.release()
        second.join(30)
    assert [r.imported for r in results] == [1]
    with impatient.read() as conn:
        assert conn.execute(select(func.count()).select_from(t.audit_pending)).scalar_one() == 0
    with impatient.audit_read() as conn:
        assert audit.entry_dict(list(audit.entries(conn))[-1])["action"] == "records.submit"


def test_a_writes_entry_is_chained_once_when_chaining_stopped_half_way(sqlite_store: Store) -> None:
    """A crash after the entries were chained and before they were cleared: the next chaining adds
    nothing twice, and clears them."""
    service, person = _city(sqlite_store)
    with sqlite_store.write() as conn:
        audit.pend(conn, [audit.Entry(at("2026-02-01"), "test:x", "admin", "consent.change", "done", person)])
    real_write = sqlite_store.write

    def no_clearing() -> Iterator[object]:
        raise RuntimeError("killed before the pending entries were cleared")

    sqlite_store.write = no_clearing  # type: ignore[method-assign, assignment]
    with pytest.raises(RuntimeError):
        audit.chain_pending(sqlite_store)
    sqlite_store.write = real_write  # type: ignore[method-assign]
    with sqlite_store.read() as conn:
        assert conn.execute(select(func.count()).select_from(t.audit_pending)).scalar_one() == 1
    assert audit.chain_pending(sqlite_store) == 0  # already in the chain: cleared, not added again
    with sqlite_store.read() as conn:
        assert conn.execute(select(func.count()).select_from(t.audit_pending)).scalar_one() == 0
    with sqlite_store.audit_read() as conn:
        assert [e.action for e in audit.entries(conn)].count("consent.change") == 1
        assert audit.verify(conn).ok
    assert service.audit.verify(ADMIN).ok


def test_a_write_and_its_entry_commit_together(sqlite_store: Store) -> None:
    """The entry is in the write's own transaction (`audit_pending`): a write rolled back leaves no
    entry behind, one committed has its entry in the chain."""
    service, person = _city(sqlite_store)
    with sqlite_store.audit_read() as conn:
        before = audit.verify(conn).entries

    def failing() -> None:
        with service.door.writing(ADMIN, Action.CONSENT_CHANGE) as (conn, act):
            act.subject = person
            conn.execute(text("DELETE FROM notice_templates"))
            raise RuntimeError("the write fails after its work")

    with pytest.raises(RuntimeError):
        failing()
    with sqlite_store.read() as conn:
        assert conn.execute(select(func.count()).select_from(t.audit_pending)).scalar_one() == 0
    assert service.subjects.change_consent(ADMIN, person, "demo-city", False)
    with sqlite_store.audit_read() as conn:
        entries = [audit.entry_dict(e) for e in audit.entries(conn)]
    assert len(entries) == before + 1
    assert (entries[-1]["action"], entries[-1]["subject_id"]) == ("consent.change", person)


def test_a_missing_audit_log_is_not_started_afresh(tmp_path: Path) -> None:
    """An empty log would verify: a store whose log file is gone says so and stops."""
    from xinyong.errors import XinyongError

    store = Store(f"sqlite:///{tmp_path / 'lost.db'}")
    store.migrate()
    log_files = store.audit_backend.database_files()
    store.dispose()
    for file in log_files:
        file.unlink(missing_ok=True)
    again = Store(f"sqlite:///{tmp_path / 'lost.db'}")
    try:
        with pytest.raises(XinyongError, match=r"audit log .* is missing"):
            again.migrate()
    finally:
        again.dispose()
