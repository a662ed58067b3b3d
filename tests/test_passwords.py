"""Web passwords (passwords.py): argon2id with a random salt, old scrypt rows verified and re-hashed
at their next log-in, never usable as a bearer token; migration 0007 down and up. Every test runs
on SQLite and on PostgreSQL."""

from __future__ import annotations

from typing import Any

import pytest
from argon2 import PasswordHasher, Type, extract_parameters
from sqlalchemy import Connection, Row, inspect, select, text

from helpers import at
from xinyong.rules.clock import FixedClock, to_storage
from xinyong.security import passwords, tokens
from xinyong.security.access import Role, Unauthenticated
from xinyong.service import Service
from xinyong.storage import tables as t
from xinyong.storage.store import Store

NOW = at("2026-03-01")
PASSWORD = "correct horse battery"


def row(conn: Connection, login: str) -> Row[Any]:
    return conn.execute(select(t.tokens).where(t.tokens.c.id == passwords.token_id(login))).one()


def set_officer(store: Store, login: str = "officer", password: str = PASSWORD) -> None:
    with store.write() as conn:
        passwords.set_password(conn, login, password, Role.OFFICER, now=NOW, actor="test")


def insert_old(store: Store, login: str, password: str) -> None:
    """A password row as written before migration 0007: scrypt salted with the row id."""
    row_id = passwords.token_id(login)
    with store.write() as conn:
        conn.execute(
            t.tokens.insert().values(
                id=row_id,
                secret_sha256=passwords.scrypt_hex(row_id, password),
                role=Role.OFFICER.value,
                label=login,
                created_at=to_storage(NOW),
                created_by="test",
            )
        )


def log_in(store: Store, login: str, password: str) -> tokens.TokenInfo:
    with store.write() as conn:
        return passwords.authenticate(conn, login, password, NOW)


def test_a_new_password_is_argon2id_with_a_random_salt_and_a_non_hex_marker(store: Store) -> None:
    set_officer(store, "officer")
    set_officer(store, "auditor")
    with store.read() as conn:
        first, second = row(conn, "officer"), row(conn, "auditor")
    for stored in (first, second):
        assert stored.password_hash.startswith("$argon2id$")
        assert extract_parameters(stored.password_hash).type is Type.ID
        assert not passwords.HASHER.check_needs_rehash(stored.password_hash)
        assert stored.secret_sha256 == passwords.MARKER
    assert len(passwords.MARKER) == 64
    assert not all(c in "0123456789abcdef" for c in passwords.MARKER)
    # Same password, different salts, different hashes; nothing of the password is in either.
    assert first.password_hash != second.password_hash
    assert first.password_hash.split("$")[4] != second.password_hash.split("$")[4]  # the salts
    assert PASSWORD not in first.password_hash
    # Setting the same password again also salts afresh.
    set_officer(store, "officer")
    with store.read() as conn:
        assert row(conn, "officer").password_hash != first.password_hash


def test_the_right_password_authenticates_and_a_wrong_one_does_not(store: Store) -> None:
    set_officer(store)
    info = log_in(store, " Officer ", PASSWORD)  # log-in names are trimmed and case-insensitive
    assert (info.id, info.role) == ("pw-OFFICER", Role.OFFICER)
    with store.read() as conn:
        before = row(conn, "officer").password_hash
    for login, password in (("officer", PASSWORD + "x"), ("officer", ""), ("nobody", PASSWORD)):
        with pytest.raises(Unauthenticated, match="the log-in name or the password is wrong"):
            log_in(store, login, password)
    with store.read() as conn:
        assert row(conn, "officer").password_hash == before  # a current hash is left alone


def test_an_old_scrypt_row_authenticates_and_is_rehashed_with_argon2id(store: Store) -> None:
    insert_old(store, "old-officer", PASSWORD)
    with pytest.raises(Unauthenticated):
        log_in(store, "old-officer", "wrong password")
    with store.read() as conn:
        untouched = row(conn, "old-officer")
    assert untouched.password_hash is None
    assert untouched.secret_sha256 == passwords.scrypt_hex("pw-OLD-OFFICER", PASSWORD)
    # Through the service, whose log-in is a write transaction: the new hash is committed.
    service = Service(store, FixedClock(NOW))
    assert service.credentials.log_in("old-officer", PASSWORD).role is Role.OFFICER
    with store.read() as conn:
        rehashed = row(conn, "old-officer")
    assert rehashed.password_hash.startswith("$argon2id$")
    assert rehashed.secret_sha256 == passwords.MARKER
    assert PasswordHasher().verify(rehashed.password_hash, PASSWORD)
    assert service.credentials.log_in("old-officer", PASSWORD).id == "pw-OLD-OFFICER"
    with pytest.raises(Unauthenticated):
        service.credentials.log_in("old-officer", "wrong password")


def test_a_hash_with_weaker_parameters_is_rehashed_at_log_in(store: Store) -> None:
    set_officer(store)
    weak = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1).hash(PASSWORD)
    with store.write() as conn:
        conn.execute(t.tokens.update().where(t.tokens.c.id == "pw-OFFICER").values(password_hash=weak))
    log_in(store, "officer", PASSWORD)
    with store.read() as conn:
        stored = row(conn, "officer").password_hash
    assert stored != weak
    assert not passwords.HASHER.check_needs_rehash(stored)


def test_a_revoked_old_row_is_refused_and_not_rehashed(store: Store) -> None:
    insert_old(store, "gone", PASSWORD)
    with store.write() as conn:
        tokens.revoke(conn, "pw-GONE", now=NOW)
    with pytest.raises(Unauthenticated, match="revoked"):
        log_in(store, "gone", PASSWORD)
    with store.read() as conn:
        assert row(conn, "gone").password_hash is None


def test_a_password_row_never_authenticates_as_a_bearer_token(store: Store) -> None:
    set_officer(store, "officer")
    insert_old(store, "old-officer", PASSWORD)
    for row_id in ("pw-OFFICER", "PW-OFFICER", "pw-OLD-OFFICER"):
        for secret in (PASSWORD, passwords.MARKER, ""):
            with pytest.raises(Unauthenticated), store.read() as conn:
                tokens.authenticate(conn, f"xy_{row_id}_{secret}", NOW)


def test_an_unknown_log_in_verifies_against_the_dummy_hash(store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    """The timing defence: an unknown log-in costs one argon2id verification with the same
    parameters as a known one's."""
    assert not passwords.HASHER.check_needs_rehash(passwords.DUMMY_HASH)
    checked: list[str] = []
    real = passwords._matches

    def spy(encoded: str, password: str) -> bool:
        checked.append(encoded)
        return real(encoded, password)

    monkeypatch.setattr(passwords, "_matches", spy)
    set_officer(store)
    with pytest.raises(Unauthenticated):
        log_in(store, "nobody", PASSWORD)
    assert checked == [passwords.DUMMY_HASH]
    with pytest.raises(Unauthenticated):
        log_in(store, "officer", "wrong password")
    assert len(checked) == 2
    assert extract_parameters(checked[1]) == extract_parameters(passwords.DUMMY_HASH)


def test_the_password_migration_goes_down_and_up(store: Store) -> None:
    """Down, the column goes and every row stays; an old row works throughout, a row hashed with
    argon2id fails closed (its marker matches nothing) until its password is set again."""
    from alembic import command
    from alembic.config import Config

    from xinyong.storage.store import MIGRATIONS

    set_officer(store, "officer")
    insert_old(store, "old-officer", PASSWORD)
    ids = text("SELECT id, secret_sha256 FROM tokens ORDER BY id")
    with store.read() as conn:
        before = conn.execute(ids).all()
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    with store.migrating() as conn:
        config.attributes["connection"] = conn
        command.downgrade(config, "0006")
        assert "password_hash" not in {c["name"] for c in inspect(conn).get_columns("tokens")}
        assert conn.execute(ids).all() == before
        command.upgrade(config, "head")
        assert "password_hash" in {c["name"] for c in inspect(conn).get_columns("tokens")}
        assert conn.execute(ids).all() == before
        assert conn.execute(text("SELECT count(*) FROM tokens WHERE password_hash IS NULL")).scalar() == 2
        assert {conn.execute(text("SELECT version_num FROM alembic_version")).scalar()} == store.revisions()[1]
    assert log_in(store, "old-officer", PASSWORD).id == "pw-OLD-OFFICER"
    with pytest.raises(Unauthenticated):
        log_in(store, "officer", PASSWORD)
    set_officer(store, "officer")
    assert log_in(store, "officer", PASSWORD).id == "pw-OFFICER"
