"""The server's upkeep: when it runs and what it does (its settings, XINYONG_AUDIT_COMPACT_AT and
XINYONG_AUDIT_CHECKPOINT_EVERY, are read and checked with the others: tests/test_settings.py)."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import text

from xinyong import settings
from xinyong.interfaces import upkeep
from xinyong.security import audit
from xinyong.service import Service
from xinyong.storage.store import Store

SHANGHAI = dt.timezone(dt.timedelta(hours=8))


@pytest.mark.parametrize(
    ("now", "expected"),
    [
        (dt.datetime(2026, 3, 1, 1, 0, tzinfo=SHANGHAI), 2.5 * 3600),  # later the same night
        (dt.datetime(2026, 3, 1, 3, 30, tzinfo=SHANGHAI), 24 * 3600),  # just done: tomorrow's
        (dt.datetime(2026, 3, 1, 12, 0, tzinfo=SHANGHAI), 15.5 * 3600),
        (dt.datetime(2026, 3, 1, 4, 0, tzinfo=dt.UTC), 15.5 * 3600),  # 12:00 in Shanghai
    ],
)
def test_the_next_night_is_found_on_the_local_clock(now: dt.datetime, expected: float) -> None:
    assert upkeep.seconds_until(now, dt.time(3, 30)) == expected


def test_a_day_with_a_clock_change_is_not_24_hours() -> None:
    # Berlin moved from 02:00 to 03:00 on 2026-03-29: midnight to 03:30 is 2.5 hours that night.
    now = dt.datetime(2026, 3, 29, 0, 0, tzinfo=dt.timezone(dt.timedelta(hours=1)))
    assert upkeep.seconds_until(now, dt.time(3, 30), "Europe/Berlin") == 2.5 * 3600


def test_a_night_merges_the_runs_and_is_logged(sqlite_store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(audit, "INDEX_EVERY", 4)
    service = Service(sqlite_store)
    with sqlite_store.audit_write() as conn:
        audit.append(conn, [audit.Entry(dt.datetime(2026, 3, 1, tzinfo=dt.UTC), "a", "r", "checks.ask", "done", "s")])
        for _ in range(3):
            audit.append(conn, [audit.Entry(dt.datetime(2026, 3, 1, tzinfo=dt.UTC), "a", "r", "x", "done", "s")] * 4)
    upkeep.compaction(service, dt.time(3, 30)).run_once()
    with sqlite_store.audit_read() as conn:
        runs = conn.execute(text("SELECT count(DISTINCT run) FROM audit_subjects")).scalar()
        last = list(audit.entries(conn))[-1]
    assert runs == 1
    assert (last.action, last.actor, last.role) == ("audit.compact", "server:nightly", "admin")


def test_off_starts_no_thread(sqlite_store: Store) -> None:
    off = {
        "XINYONG_AUDIT_COMPACT_AT": "off",
        "XINYONG_AUDIT_CHECKPOINT_EVERY": "0",
        "XINYONG_FEED_PUBLISH_AT": "off",
        "XINYONG_OUTBOX_EVERY": "0",
    }
    with settings.using(settings.load(off)):
        assert upkeep.start(Service(sqlite_store)) == []
    with settings.using(settings.load({**off, "XINYONG_AUDIT_COMPACT_AT": "03:30"})):
        jobs = upkeep.start(Service(sqlite_store))
        assert [job.name for job in jobs] == ["xinyong-nightly"]
        for job in jobs:
            job.stop()
    with settings.using(settings.load({})):
        jobs = upkeep.start(Service(sqlite_store))
        assert [job.name for job in jobs] == ["xinyong-nightly", "xinyong-hourly", "xinyong-feeds", "xinyong-outbox"]
        for job in jobs:
            job.stop()


def test_each_hour_one_checkpoint_however_many_workers(sqlite_store: Store) -> None:
    """Two workers' hourly jobs at once: one checkpoint, made by the first; the server's own act."""
    Service(sqlite_store).keys.ensure()
    workers = [upkeep.checkpoints(Service(sqlite_store), 3600) for _ in range(2)]
    for worker in workers:
        worker.run_once()
    with sqlite_store.audit_read() as conn:
        made = [e for e in audit.entries(conn) if e.action == "audit.checkpoint"]
    assert [(e.actor, e.role) for e in made] == [("server:hourly", "admin")]
    assert Service(sqlite_store).audit.verify(upkeep.HOURLY).checkpoints == 1


def test_a_failed_run_is_logged_and_the_thread_goes_on(sqlite_store: Store, caplog: pytest.LogCaptureFixture) -> None:
    """No signing key: the hourly job says so in the log, and raises nothing into the server."""
    job = upkeep.checkpoints(Service(sqlite_store), 3600)
    job.run_once()
    assert "xinyong-hourly failed" in caplog.text
    assert "no signing key" in caplog.text
