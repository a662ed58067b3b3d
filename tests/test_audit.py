"""The audit log: the hash chain holds on an untouched log and breaks, at a named entry, on any edit,
deletion, insertion, swap or truncation — found by `audit verify` on both backends."""

from __future__ import annotations

import csv
import json
import threading
from pathlib import Path

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


def looks(store: Store, subjects: list[str], n: int) -> None:
    """n checks, one append each, about the subjects in turn."""
    for i in range(n):
        look = audit.Entry(
            at("2026-03-01", 9), "api:t", "enforcer:civil-aviation", "checks.ask", "done", subjects[i % len(subjects)]
        )
        with store.audit_write() as conn:
            audit.append(conn, [look])


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
    looks(store, ["110105199001010010", "91110000100000000A", "110105199001010029"], 9)
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
    looks(store, subjects, 10)
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
