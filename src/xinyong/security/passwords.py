"""Passwords for the web pages, kept as credentials beside the bearer tokens.

A person logging in to the portal types a log-in name and a password, not a 60-character token.
A password is stored as a row of the tokens table whose id is ``pw-<login>`` (so it has a role, a
subject or agency, an expiry, can be listed and revoked exactly like a token). Its
``password_hash`` column holds an argon2id hash in the library's encoded form
(``$argon2id$v=19$m=65536,t=3,p=4$<salt>$<hash>``): a random 16-byte salt per hash and the
parameters it was made with, so a hash can be checked after the defaults change and two log-ins
with the same password (or one log-in set twice) never share a hash. Argon2id is slow and
memory-hard on purpose: unlike a token's 32 random bytes, a password can be guessed. With the
library's defaults (RFC 9106's low-memory profile, 64 MiB) one hash took about 0.12 s on the
development machine's two shared cores, against 0.04 s for the scrypt it replaces.

Rows written before migration 0007 keep ``password_hash`` NULL and hold in ``secret_sha256`` the
hex of ``scrypt(password, salt=row id)``: a salt that every deployment computes alike for the same
log-in, so one precomputed table would serve them all. Such a row still verifies, and a successful
log-in replaces it with an argon2id hash (``rehash``, right after the log-in, in a write transaction
that changes the row only if it still holds the hash that was verified); so does a hash whose
parameters are no longer the hasher's (``check_needs_rehash``). The slow hash is checked outside
any transaction (``stored``, then ``verify``), so that no writer waits for it.

A password row can never be used as a bearer token: ``tokens.authenticate`` compares the SHA-256
hex of the bearer's secret with ``secret_sha256``, and a row written now holds there `MARKER`,
64 characters that are not all hexadecimal digits, which no SHA-256 hex digest equals (the column
is NOT NULL and String(64), so it cannot simply be left empty). An old row's scrypt hex could only
match a SHA-256 preimage of a scrypt output, which nobody can find.

An unknown log-in is answered after verifying the password against `DUMMY_HASH`, a fixed argon2id
hash made with the same parameters, so the time taken does not tell which log-ins exist. Until it
is next used, an old scrypt row answers in scrypt's time rather than argon2's; that tells only that
a log-in exists and has not logged in since the upgrade.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import re
from dataclasses import dataclass

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import Connection, delete, select, update

from xinyong.errors import BadInput
from xinyong.ledger.registry import get_subject
from xinyong.rules.clock import to_storage
from xinyong.security import tokens
from xinyong.security.access import AGENCY_ROLES, SUBJECT_ROLES, Role, Unauthenticated
from xinyong.storage import tables as t

PREFIX = "pw-"
LOGIN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9.-]{0,28}$")
MIN_LENGTH = 8

# The library's defaults, kept in the encoded hash; a change of them re-hashes at the next log-in.
HASHER = PasswordHasher()
# What `secret_sha256` holds for a password hashed with argon2id: 64 characters, not a hex digest.
MARKER = "password:argon2id:see-password_hash:never-a-bearer-token".ljust(64, "-")
# A hash of a random secret nobody kept, with HASHER's parameters (a test holds them in step).
DUMMY_HASH = "$argon2id$v=19$m=65536,t=3,p=4$oLNVHTkvU4pNfv+n14u0bQ$+ffutKdxfb8/hnDwREAXr41CG+kMdPYiJ3193kRSHbs"


def scrypt_hex(token_id: str, password: str) -> str:
    """The hash of rows written before migration 0007 (salt: the row's id), still verified."""
    return hashlib.scrypt(password.encode(), salt=token_id.encode(), n=2**14, r=8, p=1, dklen=32).hex()


def _matches(encoded: str, password: str) -> bool:
    try:
        return HASHER.verify(encoded, password)
    except (VerificationError, InvalidHashError):
        return False


def token_id(login: str) -> str:
    return PREFIX + login.strip().upper()


def set_password(
    conn: Connection,
    login: str,
    password: str,
    role: Role,
    *,
    now: dt.datetime,
    actor: str,
    agency: str | None = None,
    subject: str | None = None,
    label: str | None = None,
) -> tokens.TokenInfo:
    """Create or replace the password of a log-in (a subject's log-in is its identifier)."""
    if not LOGIN.match(login.strip()):
        raise BadInput("login: use 1-29 letters, digits, dots or hyphens")
    if len(password) < MIN_LENGTH:
        raise BadInput(f"password: use at least {MIN_LENGTH} characters")
    if role is Role.PUBLIC:
        raise BadInput("role: the public needs no password")
    if (role in AGENCY_ROLES) != bool(agency) or (role in SUBJECT_ROLES) != bool(subject):
        raise BadInput(f"role: a {role.value} password needs exactly what its role is bound to")
    if subject is not None:
        get_subject(conn, subject)
    row_id = token_id(login)
    conn.execute(delete(t.tokens).where(t.tokens.c.id == row_id))
    conn.execute(
        t.tokens.insert().values(
            id=row_id,
            secret_sha256=MARKER,
            password_hash=HASHER.hash(password),
            role=role.value,
            agency=agency,
            subject_id=subject,
            label=label or login.strip(),
            created_at=to_storage(now),
            created_by=actor,
        )
    )
    return tokens.get(conn, row_id)


@dataclass(frozen=True)
class Stored:
    """What the store holds for a log-in name, read in one transaction and checked after it."""

    row_id: str
    secret_sha256: str | None  # None: no such log-in
    password_hash: str | None
    info: tokens.TokenInfo | None


def stored(conn: Connection, login: str) -> Stored:
    """The password row of a log-in name, if there is one (a read)."""
    row_id = token_id(login)
    row = conn.execute(select(t.tokens).where(t.tokens.c.id == row_id)).first()
    if row is None:
        return Stored(row_id, None, None, None)
    return Stored(row_id, row.secret_sha256, row.password_hash, tokens.get(conn, row_id))


def verify(found: Stored, password: str, now: dt.datetime) -> tuple[tokens.TokenInfo, bool]:
    """The credential, if the password matches and it is neither expired nor revoked, and whether
    its hash must be made again (an old scrypt hash, or argon2id with other parameters than
    HASHER's): Unauthenticated otherwise. Touches no store, so that the slow hash is computed
    outside any transaction (`Service.credentials.log_in`)."""
    if found.secret_sha256 is None or found.info is None:
        _matches(DUMMY_HASH, password)  # the same cost as a known log-in's verification
        matched = stale = False
    elif found.password_hash is None:
        matched = stale = hmac.compare_digest(found.secret_sha256, scrypt_hex(found.row_id, password))
    else:
        matched = _matches(found.password_hash, password)
        stale = matched and HASHER.check_needs_rehash(found.password_hash)
    if not matched or found.info is None:
        raise Unauthenticated("the log-in name or the password is wrong")
    status = found.info.status(now)
    if status != "active":
        raise Unauthenticated(f"this log-in is {status}")
    return found.info, stale


def rehash(conn: Connection, found: Stored, password: str) -> bool:
    """Replace a stale hash with argon2id, in a write transaction; only if the row still holds what
    was verified (a password set in between is kept). Whether it was replaced."""
    same_hash = (
        t.tokens.c.password_hash.is_(None)
        if found.password_hash is None
        else t.tokens.c.password_hash == found.password_hash
    )
    done = conn.execute(
        update(t.tokens)
        .where(t.tokens.c.id == found.row_id, t.tokens.c.secret_sha256 == found.secret_sha256, same_hash)
        .values(secret_sha256=MARKER, password_hash=HASHER.hash(password))
    )
    return done.rowcount > 0


def authenticate(conn: Connection, login: str, password: str, now: dt.datetime) -> tokens.TokenInfo:
    """The credential of a log-in, if the password matches and it is neither expired nor revoked.

    All in one write transaction: an old scrypt hash, or an argon2id hash made with other
    parameters than HASHER's, is replaced after a successful log-in. (The service reads, verifies
    and re-hashes in three steps instead, so that no write waits for the slow hash.)"""
    found = stored(conn, login)
    info, stale = verify(found, password, now)
    if stale:
        rehash(conn, found, password)
    return info
