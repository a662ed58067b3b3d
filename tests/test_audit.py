"""The audit log: the hash chain holds on an untouched log and breaks, at a named entry, on any edit,
deletion, insertion, swap or truncation — found by `audit verify` on both backends."""

from __future__ import annotations

import contextlib
import csv
import json
import math
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text

from helpers import World, at, run_cli
from xinyong.rules.clock import FixedClock
from xinyong.security import audit
from xinyong.security.access import Principal, Role
from xinyong.service import Service
from xinyong.storage.store import Store

ADMIN = Principal(Role.ADMIN, "auditor", channel="test")


def entries(store: Store, n: int) -> None:
    with store.audit_write() as conn:
        audit.append(
            conn,
            [
                audit.Entry(
                    at=at("2026-03-01", 9 + i % 10),
                    actor=f"api:tester-{i}",
                    role="enforcer:civil-aviation",
                    action="checks.ask",
                    outcome="done",
                    subject_id="110105199001010010",
                    purpose="boarding",
                    detail={"measure": "demo-city/no-flights", "applies": i % 2 == 0},
                )
                for i in range(n)
            ],
        )


def verify(store: Store) -> audit.Verification:
    with store.audit_read() as conn:
        return audit.verify(conn)


def test_an_untouched_log_verifies(store: Store) -> None:
    assert verify(store).ok
    assert verify(store).entries == 0
    entries(store, 5)
    entries(store, 3)
    result = verify(store)
    assert result.ok
    assert result.entries == 8
    assert result.head_seq == 8
    code, out, _ = run_cli(store.url, "audit", "verify", "--json")
    assert code == 0
    assert json.loads(out)["ok"] is True


SWAP = (
    "UPDATE audit_log SET actor = CASE seq WHEN 2 THEN (SELECT actor FROM audit_log WHERE seq = 4) "
    "ELSE (SELECT actor FROM audit_log WHERE seq = 2) END, "
    "hash = CASE seq WHEN 2 THEN (SELECT hash FROM audit_log WHERE seq = 4) "
    "ELSE (SELECT hash FROM audit_log WHERE seq = 2) END WHERE seq IN (2, 4)"
)


@pytest.mark.parametrize(
    ("tamper", "broken_at", "why"),
    [
        ("UPDATE audit_log SET actor = 'api:tester-X' WHERE seq = 3", 3, "content"),
        ("UPDATE audit_log SET detail = replace(detail, 'true', 'fals') WHERE seq = 5", 5, "content"),
        ("DELETE FROM audit_log WHERE seq = 3", 3, "missing"),
        (SWAP, 2, "content"),
        ("DELETE FROM audit_log WHERE seq = 6", 6, "head"),
        (
            "INSERT INTO audit_log (seq, at, actor, role, action, subject_id, purpose, outcome, detail, "
            "prev_hash, hash) SELECT 7, at, actor, role, action, subject_id, purpose, outcome, detail, hash, hash "
            "FROM audit_log WHERE seq = 6",
            7,
            "content",
        ),
        ("UPDATE audit_log SET seq = seq + 100 WHERE seq >= 4", 4, "missing"),
    ],
    ids=["edit", "edit-detail", "delete", "swap", "truncate", "insert", "renumber"],
)
def test_tampering_is_found_and_named(store: Store, tamper: str, broken_at: int, why: str) -> None:
    entries(store, 6)
    with store.audit_engine.begin() as conn:
        conn.execute(text(tamper))
    result = verify(store)
    assert not result.ok
    assert result.broken_at == broken_at, result
    assert why in (result.reason or "") or (why == "head" and "head" in (result.reason or ""))
    code, out, _err = run_cli(store.url, "audit", "verify")
    assert code == 1
    assert f"entry {broken_at}" in out


def _looks(store: Store, subjects: list[str], n: int) -> None:
    """n checks, one append each, about the subjects in turn."""
    for i in range(n):
        look = audit.Entry(
            at("2026-03-01", 9), "api:t", "enforcer:civil-aviation", "checks.ask", "done", subjects[i % len(subjects)]
        )
        with store.audit_write() as conn:
            audit.append(conn, [look])


def test_who_looked_finds_indexed_and_newest_entries(store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    """Entries reach the subject index in sorted batches; who_looked sees every entry, indexed or not."""
    monkeypatch.setattr(audit, "INDEX_EVERY", 4)
    subjects = ["110105199001010010", "91110000100000000A", "110105199001010029"]
    _looks(store, subjects, 11)
    with store.audit_read() as conn:
        indexed = conn.execute(text("SELECT indexed FROM audit_head")).scalar()
        listed = conn.execute(text("SELECT count(*) FROM audit_subjects")).scalar()
        runs = conn.execute(text("SELECT run, min(seq), max(seq) FROM audit_subjects GROUP BY run ORDER BY run")).all()
        found = {s: [e["seq"] for e in audit.who_looked(conn, s)] for s in subjects}
        via_entries = [r.seq for r in audit.entries(conn, subject_id=subjects[1])]
    assert indexed == 8  # two batches of four; entries 9 to 11 are the unindexed tail
    assert listed == 8
    assert [tuple(r) for r in runs] == [(1, 1, 4), (5, 5, 8)]  # each run keyed by its first entry
    assert found == {
        subjects[0]: [10, 7, 4, 1],
        subjects[1]: [11, 8, 5, 2],
        subjects[2]: [9, 6, 3],
    }
    assert via_entries == [2, 5, 8, 11]
    assert verify(store).ok


def _runs(store: Store) -> list[tuple[int, int]]:
    """The subject index's runs: (run, rows)."""
    with store.audit_read() as conn:
        query = "SELECT run, count(*) FROM audit_subjects GROUP BY run ORDER BY run"
        return [(int(r[0]), int(r[1])) for r in conn.execute(text(query))]


def test_compaction_merges_the_newest_runs_and_changes_no_answer(store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(audit, "INDEX_EVERY", 4)
    subjects = ["110105199001010010", "91110000100000000A", "110105199001010029"]
    _looks(store, subjects, 33)  # eight runs of four (1, 5, … 29) and entry 33 in the tail

    def answers() -> dict[str, list[int]]:
        with store.audit_read() as conn:
            return {s: [e["seq"] for e in audit.who_looked(conn, s)] for s in subjects}

    before = answers()
    assert _runs(store) == [(run, 4) for run in range(1, 30, 4)]
    code, out, _ = run_cli(store.url, "audit", "compact", "--json")
    assert code == 0
    assert json.loads(out) == {"runs_before": 8, "runs_after": 1, "merged": 8, "moved": 28}
    assert _runs(store) == [(1, 32)]
    assert answers() == before
    assert verify(store).ok
    with store.audit_read() as conn:  # the act is logged like any other write
        assert [e.action for e in audit.entries(conn)][-1] == "audit.compact"
    # Nothing younger to merge with: the one run stays as it is.
    assert Service(store).audit.compact(ADMIN).merged == 0
    # Two new runs of four entries (33 to 40: the two compactions' own, about no subject, among
    # the checks): merged with each other, not with the run of 32, bigger than both together.
    _looks(store, subjects, 7)
    assert _runs(store)[1:] == [(33, 2), (37, 4)]
    result = Service(store).audit.compact(ADMIN)
    assert (result.runs_before, result.runs_after, result.moved) == (3, 2, 4)
    assert _runs(store) == [(1, 32), (33, 6)]
    assert verify(store).ok


def test_a_run_made_while_compacting_is_left_alone(store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    """The merge moves the runs the compaction read, not one an appender committed since."""
    monkeypatch.setattr(audit, "INDEX_EVERY", 4)
    _looks(store, ["110105199001010010", "91110000100000000A"], 12)  # runs 1, 5, 9
    _looks(store, ["110105199001010029"], 4)  # run 13, "committed meanwhile"
    assert audit._merge(store, 1, [5, 9]) == 8
    assert _runs(store) == [(1, 12), (13, 4)]
    assert verify(store).ok


def test_compactions_at_once_move_each_row_once(store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    """Two compactions of the same runs, step by step side by side: each row moves once, none is
    copied twice or lost, whichever gets each step first."""
    monkeypatch.setattr(audit, "INDEX_EVERY", 4)
    subjects = [f"11010519900101{n:03d}X" for n in range(9)]
    _looks(store, subjects, 36)  # runs 1, 5, … 33
    with store.audit_read() as conn:
        before = sorted(conn.execute(text("SELECT subject_id, seq FROM audit_subjects")).all())
    moved: list[int] = []
    workers = [threading.Thread(target=lambda: moved.append(audit._merge(store, 1, list(range(5, 34, 4)), 1)))]
    workers.append(threading.Thread(target=lambda: moved.append(audit._merge(store, 1, list(range(5, 34, 4)), 2))))
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(30)
    assert sum(moved) == 32
    assert _runs(store) == [(1, 36)]
    with store.audit_read() as conn:
        assert sorted(conn.execute(text("SELECT subject_id, seq FROM audit_subjects")).all()) == before
    assert verify(store).ok


def test_a_compaction_holds_the_log_a_step_at_a_time(store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    """Each transaction moves at most a step's rows (a subject's rows of a run stay together), so an
    appender (every check) waits for one step, never for the whole merge."""
    monkeypatch.setattr(audit, "INDEX_EVERY", 8)
    subjects = ["110105199001010010", "91110000100000000A", "110105199001010029", "110105199001010037"]
    _looks(store, subjects, 48)  # six runs of eight
    steps: list[int] = []
    real = store.audit_write

    @contextlib.contextmanager
    def counted() -> Iterator[Any]:
        with real() as conn:
            yield conn
            steps.append(conn.execute(text("SELECT count(*) FROM audit_subjects WHERE run = 1")).scalar_one())

    monkeypatch.setattr(store, "audit_write", counted)
    result = audit.compact(store, step=3)
    monkeypatch.undo()
    assert result.merged == 6
    grown = [after - before for before, after in zip([8, *steps], steps, strict=False)]
    # Runs of eight hold each subject twice: a step of three rows takes one subject's two.
    assert grown == [2] * 20
    assert _runs(store) == [(1, 48)]
    assert verify(store).ok


def test_compaction_keeps_few_runs_and_rewrites_each_entry_a_few_times() -> None:
    """Compacting after every new run (the worst case), 2,000 runs of slightly different sizes."""
    runs: list[int] = []
    end, rewrites, most_runs = 1, 0, 0
    for made in range(2000):
        runs.append(end)
        end += 4096 + made * 7919 % 61  # as index batches end wherever a commit ends
        count = audit._merge_from(runs, end)
        if count >= 2:
            rewrites += end - runs[-count + 1]  # every run but the oldest merged one moves
            runs = runs[: len(runs) - count + 1]
        most_runs = max(most_runs, len(runs))
    entries = end - 1
    bound = math.log(entries / 4096, 1.5) + 1
    assert most_runs <= bound  # about 16 for these 8 M entries
    assert rewrites <= entries * bound


@pytest.mark.parametrize(
    ("tamper", "broken_at"),
    [
        ("DELETE FROM audit_subjects WHERE seq = 3", 3),
        ("UPDATE audit_subjects SET subject_id = '110105199001010010' WHERE seq = 2", 2),
        ("INSERT INTO audit_subjects (run, subject_id, seq) VALUES (5, '110105199001010029', 10)", 10),
    ],
    ids=["hidden", "moved", "invented"],
)
def test_a_tampered_subject_index_is_found(
    store: Store, monkeypatch: pytest.MonkeyPatch, tamper: str, broken_at: int
) -> None:
    monkeypatch.setattr(audit, "INDEX_EVERY", 4)
    _looks(store, ["110105199001010010", "91110000100000000A", "110105199001010029"], 9)
    with store.audit_engine.begin() as conn:
        conn.execute(text(tamper))
    result = verify(store)
    assert not result.ok
    assert result.broken_at == broken_at, result
    assert "subject index" in (result.reason or "")


def test_the_migration_indexes_what_was_logged_before_it(tmp_path: Path) -> None:
    from alembic import command
    from alembic.config import Config

    from xinyong.storage.store import MIGRATIONS

    store = Store(f"sqlite:///{tmp_path / 'old.db'}")
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    with store.migrating() as conn:
        config.attributes["connection"] = conn
        command.upgrade(config, "0001")
        for seq in (1, 2, 3):  # as the log was kept before: no `indexed` column yet
            conn.execute(
                text(
                    "INSERT INTO audit_log (seq, at, actor, role, action, subject_id, outcome, prev_hash, hash) "
                    f"VALUES ({seq}, '2026-03-01 01:00:00.000000', 'a', 'r', 'checks.ask', "
                    f"'11010519900101001{seq}', 'done', 'p', 'h')"
                )
            )
        conn.execute(text("INSERT INTO audit_head (id, seq, hash) VALUES (1, 3, 'h')"))
    store.migrate()
    with store.audit_read() as conn:
        assert conn.execute(text("SELECT indexed FROM audit_head")).scalar() == 3
        assert [e["seq"] for e in audit.who_looked(conn, "110105199001010012")] == [2]


def test_the_runs_migration_goes_down_and_up_keeping_every_look(store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    from alembic import command
    from alembic.config import Config

    from xinyong.storage.store import MIGRATIONS

    monkeypatch.setattr(audit, "INDEX_EVERY", 4)
    subjects = ["110105199001010010", "91110000100000000A"]
    _looks(store, subjects, 10)
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    pairs = "SELECT subject_id, seq FROM audit_subjects ORDER BY seq"
    with store.audit_read() as conn:
        before = conn.execute(text(pairs)).all()
    with store.migrating() as conn:
        config.attributes["connection"] = conn
        command.downgrade(config, "0002")  # the log back in the store, where 0003 found it
        assert conn.execute(text(pairs)).all() == before
        command.upgrade(config, "head")
    with store.audit_read() as conn:
        assert conn.execute(text("SELECT DISTINCT run FROM audit_subjects")).all() == [(1,)]
        assert conn.execute(text(pairs)).all() == before
    assert len(before) == 8
    assert verify(store).ok


def test_the_schema_and_the_migrations_agree(store: Store) -> None:
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext
    from sqlalchemy import MetaData

    from xinyong.storage.tables import audit_metadata, metadata

    def described(name: str | None, kind: str, parents: object) -> bool:
        # The look-up's text index belongs to its engine (migration 0013): SQLite's FTS5 table and
        # its shadow tables, PostgreSQL's GIN expression indexes; SQLAlchemy describes neither.
        return not (name or "").startswith(("search_text", "ix_search_entries_"))

    opts = {"include_name": described}
    if store.audit_apart:
        with store.engine.connect() as conn:
            assert compare_metadata(MigrationContext.configure(conn, opts=opts), metadata) == []
        with store.audit_engine.connect() as conn:
            assert compare_metadata(MigrationContext.configure(conn), audit_metadata) == []
    else:
        both = MetaData()
        for table in [*metadata.tables.values(), *audit_metadata.tables.values()]:
            table.to_metadata(both)
        with store.engine.connect() as conn:
            assert compare_metadata(MigrationContext.configure(conn, opts=opts), both) == []


def test_an_edited_head_is_found(sqlite_store: Store) -> None:
    entries(sqlite_store, 3)
    with sqlite_store.audit_engine.begin() as conn:
        conn.execute(text("UPDATE audit_head SET seq = 2"))
    assert not verify(sqlite_store).ok


def test_concurrent_appends_never_fork_the_chain(store: Store) -> None:
    errors: list[BaseException] = []

    def worker() -> None:
        try:
            for _ in range(10):
                entries(store, 2)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    result = verify(store)
    assert result.ok
    assert result.entries == 80


def test_writes_are_audited_with_the_act_in_one_transaction(store: Store) -> None:
    world = World(store)
    person, _ = world.standard()
    record = world.record(person, "COURT.DEFAULT", "2026-01-05", at("2026-01-06"))
    service = Service(store, FixedClock(at("2026-02-01")))
    service.records.revoke(ADMIN, str(record), reason="wrong person")
    from xinyong.errors import Refused

    with pytest.raises(Refused):
        service.records.revoke(ADMIN, str(record), reason="again")
    with store.audit_read() as conn:
        rows = [audit.entry_dict(r) for r in audit.entries(conn)]
    assert [(r["action"], r["outcome"], r["subject_id"]) for r in rows] == [
        ("records.revoke", "done", person),
        ("records.revoke", "refused", person),
    ]
    assert rows[0]["actor"] == "test:auditor"
    assert rows[0]["role"] == "admin"
    assert rows[1]["detail"]["why"].startswith(f"record {record} is already revoked")


def test_a_failed_append_rolls_the_write_back(sqlite_store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    world = World(sqlite_store)
    person, _ = world.standard()
    record = world.record(person, "COURT.DEFAULT", "2026-01-05", at("2026-01-06"))
    service = Service(sqlite_store, FixedClock(at("2026-02-01")))

    def broken(*args: object, **kwargs: object) -> list[int]:
        raise RuntimeError("disk full")

    monkeypatch.setattr(audit, "pend", broken)
    with pytest.raises(RuntimeError):
        service.records.revoke(ADMIN, str(record), reason="wrong person")
    monkeypatch.undo()
    with sqlite_store.read() as conn:
        assert conn.exec_driver_sql("SELECT count(*) FROM record_events").scalar_one() == 0


def test_export_and_who_looked_from_the_command_line(sqlite_store: Store, tmp_path: Path) -> None:
    entries(sqlite_store, 4)
    out = tmp_path / "audit.csv"
    code, printed, err = run_cli(
        sqlite_store.url, "audit", "export", "--from", "2026-03-01", "--to", "2026-03-01", "--out", str(out), "--json"
    )
    assert code == 0, err
    assert json.loads(printed)["entries"] == 4
    rows = list(csv.DictReader(out.open(encoding="utf-8")))
    assert [r["seq"] for r in rows] == ["1", "2", "3", "4"]
    assert rows[0]["prev_hash"] == audit.GENESIS
    code, printed, _ = run_cli(sqlite_store.url, "audit", "export", "--from", "2026-03-03", "--out", str(out), "--json")
    assert json.loads(printed)["entries"] == 0
    code, printed, _ = run_cli(sqlite_store.url, "audit", "who-looked", "110105199001010010", "--json")
    seen = json.loads(printed)["entries"]
    assert len(seen) >= 4
    assert {e["role"] for e in seen[-4:]} == {"enforcer:civil-aviation"}
    # the export itself, and who-looked, are logged acts too
    with sqlite_store.audit_read() as conn:
        actions = [audit.entry_dict(r)["action"] for r in audit.entries(conn)]
    assert "audit.read" in actions
    assert "audit.who_looked" in actions
    assert verify(sqlite_store).ok


def test_tokens_from_the_command_line(sqlite_store: Store) -> None:
    World(sqlite_store).standard()
    code, out, err = run_cli(sqlite_store.url, "tokens", "create", "--role", "enforcer:civil-aviation", "--json")
    assert code == 0, err
    created = json.loads(out)
    assert created["token"].startswith("xy_")
    assert created["agency"] == "civil-aviation"
    code, out, _ = run_cli(sqlite_store.url, "tokens", "list", "--json")
    listed = json.loads(out)["tokens"]
    assert [t["id"] for t in listed] == [created["id"]]
    assert "token" not in listed[0]
    code, out, _ = run_cli(sqlite_store.url, "tokens", "revoke", created["id"], "--json")
    assert json.loads(out)["status"] == "revoked"
    code, _, err = run_cli(sqlite_store.url, "tokens", "create", "--role", "enforcer")
    assert code == 2
    assert "--agency" in err
    code, _, err = run_cli(sqlite_store.url, "tokens", "create", "--role", "king")
    assert code == 2
    assert "not a role" in err
    code, out, _ = run_cli(sqlite_store.url, "audit", "verify", "--json")
    assert json.loads(out)["entries"] == 3  # the creation, the revocation and the refused creation
