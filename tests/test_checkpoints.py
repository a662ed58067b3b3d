"""Anchored audit: the two rewrites the hash chain alone cannot see are caught by a signed
checkpoint, wherever that checkpoint was kept (the store, the copy beside the keys, a file someone
saved), and the first checkpoint that no longer matches is named."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Connection, inspect, select, text, update

from helpers import at, run_cli
from xinyong.errors import BadInput, XinyongError
from xinyong.rules.clock import FixedClock
from xinyong.security import audit, checkpoints, keys
from xinyong.security.access import Forbidden, Principal, Role
from xinyong.service import Service
from xinyong.storage import tables as t
from xinyong.storage.store import Store

ADMIN = Principal(Role.ADMIN, "auditor", channel="test")
OFFICER = Principal(Role.OFFICER, "clerk", channel="test")
PERSON = "110105199001010010"


def _looks(store: Store, n: int, day: str = "2026-03-01") -> None:
    """n checks logged, as the API logs them."""
    looks = [
        audit.Entry(at(day, 9), f"api:gate-{i}", "enforcer:civil-aviation", "checks.ask", "done", PERSON)
        for i in range(n)
    ]
    with store.audit_write() as conn:
        audit.append(conn, looks)


@pytest.fixture
def service(store: Store, tmp_path: Path) -> Service:
    made = Service(store, FixedClock(at("2026-03-02")), keys=keys.KeyRing(tmp_path / "keys"))
    made.keys.ensure()
    return made


def _rewrite_from(conn: Connection, seq: int) -> None:
    """What someone who can write the store does: every hash from `seq` on recomputed, the head too."""
    log = t.audit_log
    prev = conn.execute(select(log.c.hash).where(log.c.seq == seq - 1)).scalar() or audit.GENESIS
    rows = conn.execute(select(log).where(log.c.seq >= seq).order_by(log.c.seq)).all()
    for row in rows:
        values = dict(row._mapping)
        link = audit.entry_hash(prev, values)
        conn.execute(update(log).where(log.c.seq == row.seq).values(prev_hash=prev, hash=link))
        prev = link
    last = conn.execute(select(log.c.seq).order_by(log.c.seq.desc()).limit(1)).scalar() or 0
    conn.execute(update(t.audit_head).values(seq=last, hash=prev))


def _delete_the_last_and_rewrite_the_head(conn: Connection) -> None:
    log = t.audit_log
    last = conn.execute(select(log.c.seq).order_by(log.c.seq.desc()).limit(1)).scalar_one()
    conn.execute(log.delete().where(log.c.seq == last))
    conn.execute(text("DELETE FROM audit_subjects WHERE seq = :seq"), {"seq": last})
    _rewrite_from(conn, last)


def _edit_and_recompute(conn: Connection, seq: int) -> None:
    conn.execute(update(t.audit_log).where(t.audit_log.c.seq == seq).values(actor="api:somebody-else"))
    _rewrite_from(conn, seq)


def _chain_alone(store: Store) -> audit.Verification:
    with store.audit_read() as conn:
        return audit.verify(conn)


def test_a_checkpoint_signs_a_head_that_includes_its_own_entry(service: Service, store: Store) -> None:
    _looks(store, 3)
    made = service.audit.checkpoint(ADMIN)
    assert made is not None
    with store.audit_read() as conn:
        entries = list(audit.entries(conn))
    assert made.seq == len(entries) == 4
    own = entries[-1]
    assert (own.action, own.actor) == ("audit.checkpoint", "test:auditor")
    assert json.loads(own.detail) == {"checkpoint": 1}
    assert made.hash == own.hash
    assert made.previous == checkpoints.GENESIS
    assert keys.verify(service.keys.public_keys(), made.key, made.signed(), made.signature)
    second = service.audit.checkpoint(ADMIN)
    assert second is not None
    assert second.n == 2
    assert second.previous == made.digest()
    result = service.audit.verify(ADMIN)
    assert result.ok
    assert result.checkpoints == 2
    # The copy beside the keys holds both, one per line.
    copy = service.keys.folder / checkpoints.COPY
    assert [c.n for c in checkpoints.read_copy(copy)[0]] == [1, 2]


@pytest.mark.parametrize(
    ("rewrite", "named"),
    [
        (_delete_the_last_and_rewrite_the_head, "the log ends at entry 4"),
        (lambda conn: _edit_and_recompute(conn, 2), "entry 5 no longer has the hash"),
    ],
    ids=["delete-last-rewrite-head", "edit-recompute-all"],
)
def test_a_rewritten_log_that_the_chain_passes_is_caught(
    service: Service, store: Store, rewrite: object, named: str
) -> None:
    _looks(store, 4)
    made = service.audit.checkpoint(ADMIN)
    assert made is not None
    assert made.seq == 5
    with store.audit_engine.begin() as conn:
        rewrite(conn)  # type: ignore[operator]
    assert _chain_alone(store).ok  # what the chain alone says: intact
    result = service.audit.verify(ADMIN)
    assert not result.ok
    assert result.checkpoint == 1
    assert named in (result.reason or "")


def test_the_command_line_names_the_broken_checkpoint(tmp_path: Path) -> None:
    store = Store(f"sqlite:///{tmp_path / 'cli.db'}")
    code, out, err = run_cli(store.url, "init")
    assert code == 0, err
    assert (tmp_path / "cli-keys" / keys.CURRENT).is_file()
    _looks(store, 2)
    code, out, err = run_cli(store.url, "audit", "checkpoint", "--json")
    assert code == 0, err
    made = json.loads(out)
    assert (made["n"], made["seq"]) == (1, 3)
    code, out, _ = run_cli(store.url, "audit", "checkpoints", "--json")
    published = json.loads(out)
    assert [c["n"] for c in published["checkpoints"]] == [1]
    assert set(published["keys"]) == {made["key"]}
    code, out, _ = run_cli(store.url, "audit", "verify", "--json")
    assert code == 0
    assert json.loads(out)["checkpoints"] == 1
    with store.audit_engine.begin() as conn:
        _edit_and_recompute(conn, 1)
    code, out, err = run_cli(store.url, "audit", "verify")
    assert code == 1
    assert "BROKEN at checkpoint 1" in out
    assert "checkpoint 1" in err
    store.dispose()


def test_a_rewrite_by_the_key_holder_is_caught_by_a_saved_copy(service: Service, store: Store, tmp_path: Path) -> None:
    """Whoever holds the key and the store can sign a new history, and replace the store's
    checkpoints and the copy beside the keys; a checkpoint someone saved still names the lie."""
    _looks(store, 3)
    service.audit.checkpoint(ADMIN)
    saved = tmp_path / "saved.json"
    saved.write_text(json.dumps(service.audit.checkpoints(ADMIN)), encoding="utf-8")
    with store.audit_engine.begin() as conn:
        _edit_and_recompute(conn, 2)
        conn.execute(t.audit_checkpoints.delete())
        conn.execute(t.audit_log.delete().where(t.audit_log.c.action == "audit.checkpoint"))
        _rewrite_from(conn, 4)
    (service.keys.folder / checkpoints.COPY).unlink()
    service.audit.checkpoint(ADMIN)  # the new history, signed with the same key
    assert service.audit.verify(ADMIN).ok  # by the store and the copy alone, it holds
    result = service.audit.verify(ADMIN, [saved])
    assert not result.ok
    assert result.checkpoint == 1
    assert "saved.json differs" in (result.reason or "")


def test_a_checkpoint_edited_in_the_store_is_caught(service: Service, store: Store) -> None:
    _looks(store, 2)
    service.audit.checkpoint(ADMIN)
    with store.audit_engine.begin() as conn:
        conn.execute(update(t.audit_checkpoints).values(seq=2))
    result = service.audit.verify(ADMIN)
    assert not result.ok
    assert result.checkpoint == 1
    assert "differs" in (result.reason or "")  # the copy beside the keys disagrees
    (service.keys.folder / checkpoints.COPY).unlink()
    result = service.audit.verify(ADMIN)
    assert not result.ok
    assert "signature does not verify" in (result.reason or "")


def test_a_missing_checkpoint_breaks_the_chain_of_checkpoints(service: Service, store: Store) -> None:
    for _ in range(3):
        _looks(store, 1)
        service.audit.checkpoint(ADMIN)
    (service.keys.folder / checkpoints.COPY).unlink()
    with store.audit_engine.begin() as conn:
        conn.execute(t.audit_checkpoints.delete().where(t.audit_checkpoints.c.n == 2))
    result = service.audit.verify(ADMIN)
    assert not result.ok
    assert result.checkpoint == 3
    assert "checkpoint 2, which it follows, is missing" in (result.reason or "")


def test_only_the_administrator_checkpoints_and_a_refusal_is_logged(service: Service, store: Store) -> None:
    with pytest.raises(Forbidden):
        service.audit.checkpoint(OFFICER)
    with store.audit_read() as conn:
        last = list(audit.entries(conn))[-1]
    assert (last.action, last.outcome, last.actor) == ("audit.checkpoint", "denied", "test:clerk")
    assert service.audit.checkpoints(Principal(Role.PUBLIC, "anyone"))["checkpoints"] == []


def test_a_checkpoint_needs_a_key(store: Store, tmp_path: Path) -> None:
    bare = Service(store, FixedClock(at("2026-03-02")), keys=keys.KeyRing(tmp_path / "none"))
    with pytest.raises(keys.NoKeys, match="xinyong init"):
        bare.audit.checkpoint(ADMIN)
    with store.audit_read() as conn:
        assert conn.execute(select(t.audit_checkpoints)).first() is None


def test_a_bad_saved_copy_is_refused_naming_the_line(service: Service, tmp_path: Path) -> None:
    bad = tmp_path / "copy.jsonl"
    bad.write_text('{"n": 1}\n', encoding="utf-8")
    with pytest.raises(BadInput, match=r"copy.jsonl, line 1: a checkpoint without 'at'"):
        service.audit.verify(ADMIN, [bad])
    bad.write_text('{"checkpoints": [{"n": 0, "at": "x"}]}', encoding="utf-8")
    with pytest.raises(BadInput, match="checkpoint 1: not a checkpoint"):
        service.audit.verify(ADMIN, [bad])


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    length=st.integers(2, 12),
    marks=st.lists(st.integers(1, 12), min_size=1, max_size=3, unique=True),
    edited=st.integers(1, 12),
)
def test_an_edit_is_caught_exactly_when_a_checkpoint_covers_it(
    tmp_path_factory: pytest.TempPathFactory, length: int, marks: list[int], edited: int
) -> None:
    """Whatever the log and wherever the checkpoints, an entry edited with every later hash
    recomputed is caught if and only if some checkpoint was made after it was written."""
    folder = tmp_path_factory.mktemp("prop")
    store = Store(f"sqlite:///{folder / 'p.db'}")
    store.migrate()
    service = Service(store, FixedClock(at("2026-03-02")), keys=keys.KeyRing(folder / "keys"))
    service.keys.ensure()
    covered = 0
    written = 0
    for i in range(1, length + 1):
        _looks(store, 1)
        written += 1
        if i in marks:
            made = service.audit.checkpoint(ADMIN)
            assert made is not None
            written += 1
            covered = made.seq
    target = min(edited, written)
    with store.audit_engine.begin() as conn:
        _edit_and_recompute(conn, target)
    result = service.audit.verify(ADMIN)
    assert result.ok == (target > covered), (target, covered, result)
    store.dispose()


def test_keys_are_owner_only_rotatable_and_never_in_the_current_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ring = keys.KeyRing(tmp_path / "k")
    first = ring.ensure()
    assert ring.ensure() == first  # made once
    assert stat.S_IMODE(ring.folder.stat().st_mode) == 0o700
    assert all(stat.S_IMODE(p.stat().st_mode) == 0o600 for p in ring.folder.iterdir())
    key, signature = ring.sign(b"report")
    assert key == first
    second = ring.rotate()
    assert second != first
    assert ring.current_id() == second
    published = ring.public_keys()
    assert set(published) == {first, second}
    assert keys.verify(published, first, b"report", signature)  # the old signature still verifies
    assert not keys.verify(published, first, b"rep0rt", signature)
    assert not keys.verify(published, "0" * 16, b"report", signature)
    assert not keys.verify(published, first, b"report", "not base64!")
    assert ring.sign(b"x")[0] == second
    # Where the keys are.
    assert keys.folder_for(None, [tmp_path / "city.db"]) == tmp_path / "city-keys"
    assert keys.folder_for("/srv/keys", []) == Path("/srv/keys")
    with pytest.raises(keys.NoKeys, match="required for a store without a file"):
        keys.folder_for(None, [])
    monkeypatch.chdir(tmp_path)
    with pytest.raises(keys.NoKeys, match="is the current folder"):
        keys.folder_for(str(tmp_path), [])
    with pytest.raises(keys.NoKeys, match="is the current folder"):
        keys.folder_for(".", [])


def test_the_migration_goes_down_and_up(store: Store) -> None:
    from alembic import command
    from alembic.config import Config

    from xinyong.storage.store import MIGRATIONS

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    with store.migrating() as conn:
        config.attributes["connection"] = conn
        command.downgrade(config, "0009")
    with store.audit_read() as conn:
        assert not inspect(conn).has_table("audit_checkpoints")
    with store.migrating() as conn:
        config.attributes["connection"] = conn
        command.upgrade(config, "head")
    with store.audit_read() as conn:
        assert conn.execute(select(t.audit_checkpoints)).all() == []


def test_a_store_on_a_server_needs_xinyong_keys(store: Store) -> None:
    if not store.url.startswith("postgresql"):
        pytest.skip("a server's store has no file to keep the keys beside")
    from xinyong import settings as config

    with config.using(config.load({})), pytest.raises(XinyongError, match="XINYONG_KEYS"):
        Service(store).audit.checkpoint(ADMIN)


def test_the_public_reads_the_seals_on_a_page_and_a_saved_copy_catches_a_rewrite(
    service: Service, store: Store, tmp_path: Path
) -> None:
    """The portal's page lists every checkpoint, newest first, with the keys, in plain words and in
    both languages (no command, no API path); its download is the very document the API answers,
    so a copy saved by a citizen later names a rewrite the store itself can no longer see."""
    from fastapi.testclient import TestClient

    from xinyong.interfaces.site import create_app

    _looks(store, 3)
    first = service.audit.checkpoint(ADMIN)
    _looks(store, 2)
    second = service.audit.checkpoint(ADMIN)
    assert first is not None
    assert second is not None
    app = create_app(store, clock=FixedClock(at("2026-03-02")), keys=service.keys)
    with TestClient(app) as client:
        page = client.get("/audit")
        assert page.status_code == 200
        body = page.text
        assert body.index(second.hash[:16]) < body.index(first.hash[:16])  # newest first
        assert service.keys.current_id() in body
        assert "/v1/" not in body
        assert "xinyong audit" not in body
        # Chinese first (the default), times in Beijing time with the zone named.
        assert "审计日志及其签封" in body
        assert "签封不能证明什么" in body
        assert "2026年3月2日 12:00 (中国标准时间)" in body
        client.get("/lang/en")
        english = client.get("/audit").text
        assert "What a seal does not prove" in english
        assert "2 March 2026, 12:00 (China Standard Time)" in english
        saved = client.get("/audit/checkpoints.json")
        assert saved.status_code == 200
        assert "attachment" in saved.headers["content-disposition"]
        assert saved.json() == client.get("/v1/audit/checkpoints").json()
    copy = tmp_path / "kept.json"
    copy.write_bytes(saved.content)
    # The operator rewrites the log, then the store's checkpoints and the copy beside the keys to match.
    with store.audit_engine.begin() as conn:
        _edit_and_recompute(conn, 2)
        conn.execute(t.audit_checkpoints.delete())
    (service.keys.folder / checkpoints.COPY).unlink()
    assert service.audit.verify(ADMIN).ok  # nothing left inside the platform to tell
    result = service.audit.verify(ADMIN, [copy])
    assert not result.ok
    assert result.checkpoint == 1
