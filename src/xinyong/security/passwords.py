"""Passwords for the web pages, kept as credentials beside the bearer tokens.

A person logging in to the portal types a log-in name and a password, not a 60-character token.
A password is stored as a row of the tokens table whose id is ``pw-<login>`` (so it has a role, a
subject or agency, an expiry, can be listed and revoked exactly like a token) and whose hash
column holds a salted scrypt of the password instead of a SHA-256 of a random secret. Scrypt is
slow on purpose: unlike a token's 32 random bytes, a password can be guessed. The salt is the
row's id, unique per log-in; scrypt's output is 32 bytes, so it fits the same 64 hex characters.

A password row can never be used as a bearer token: ``tokens.authenticate`` compares a SHA-256,
which a scrypt hash never equals.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import re

from sqlalchemy import Connection, delete, select

from xinyong.errors import BadInput
from xinyong.ledger.registry import get_subject
from xinyong.rules.clock import to_storage
from xinyong.security import tokens
from xinyong.security.access import AGENCY_ROLES, SUBJECT_ROLES, Role, Unauthenticated
from xinyong.storage import store as t

PREFIX = "pw-"
LOGIN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9.-]{0,28}$")
MIN_LENGTH = 8


def _hash(token_id: str, password: str) -> str:
    return hashlib.scrypt(password.encode(), salt=token_id.encode(), n=2**14, r=8, p=1, dklen=32).hex()


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
            secret_sha256=_hash(row_id, password),
            role=role.value,
            agency=agency,
            subject_id=subject,
            label=label or login.strip(),
            created_at=to_storage(now),
            created_by=actor,
        )
    )
    return tokens.get(conn, row_id)


def authenticate(conn: Connection, login: str, password: str, now: dt.datetime) -> tokens.TokenInfo:
    """The credential of a log-in, if the password matches and it is neither expired nor revoked."""
    row_id = token_id(login)
    row = conn.execute(select(t.tokens).where(t.tokens.c.id == row_id)).first()
    # Hash even for an unknown log-in, so that the time taken does not tell which log-ins exist.
    given = _hash(row_id, password)
    if row is None or not hmac.compare_digest(row.secret_sha256, given):
        raise Unauthenticated("the log-in name or the password is wrong")
    info = tokens.get(conn, row_id)
    status = info.status(now)
    if status != "active":
        raise Unauthenticated(f"this log-in is {status}")
    return info
