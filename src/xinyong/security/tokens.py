"""Bearer tokens: created once, shown once, stored as a SHA-256 of the secret, expirable, revocable.

A token reads `xy_<id>_<secret>`. The id is public (it names the token in lists and logs and
finds its row with one primary-key lookup); the secret is 32 random bytes, so a plain SHA-256 is
enough — there is nothing to brute-force that a slow password hash would protect.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import secrets
from dataclasses import dataclass

from sqlalchemy import Connection, select, update

from xinyong.errors import BadInput, NotFound, Refused
from xinyong.ledger.registry import get_subject
from xinyong.rules.clock import from_storage, to_storage
from xinyong.security.access import AGENCY_ROLES, SUBJECT_ROLES, Principal, Role, Unauthenticated
from xinyong.storage import tables as t

PREFIX = "xy_"


@dataclass(frozen=True)
class TokenInfo:
    id: str
    role: Role
    agency: str | None
    subject: str | None
    label: str | None
    created_at: dt.datetime
    created_by: str
    expires_at: dt.datetime | None
    revoked_at: dt.datetime | None

    def status(self, now: dt.datetime) -> str:
        if self.revoked_at is not None:
            return "revoked"
        if self.expires_at is not None and now >= self.expires_at:
            return "expired"
        return "active"

    def principal(self) -> Principal:
        return Principal(
            role=self.role,
            name=self.label or f"token:{self.id}",
            agency=self.agency,
            subject=self.subject,
            token_id=self.id,
        )


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def _info(row: object) -> TokenInfo:
    return TokenInfo(
        id=row.id,  # type: ignore[attr-defined]
        role=Role(row.role),  # type: ignore[attr-defined]
        agency=row.agency,  # type: ignore[attr-defined]
        subject=row.subject_id,  # type: ignore[attr-defined]
        label=row.label,  # type: ignore[attr-defined]
        created_at=from_storage(row.created_at),  # type: ignore[attr-defined]
        created_by=row.created_by,  # type: ignore[attr-defined]
        expires_at=from_storage(row.expires_at) if row.expires_at else None,  # type: ignore[attr-defined]
        revoked_at=from_storage(row.revoked_at) if row.revoked_at else None,  # type: ignore[attr-defined]
    )


def create(
    conn: Connection,
    role: Role,
    *,
    now: dt.datetime,
    actor: str,
    agency: str | None = None,
    subject: str | None = None,
    label: str | None = None,
    expires_at: dt.datetime | None = None,
) -> tuple[str, TokenInfo]:
    """A new token; returns the full bearer string (never stored) and what was stored."""
    if role is Role.PUBLIC:
        raise BadInput("--role: the public needs no token")
    if role in AGENCY_ROLES and not agency:
        raise BadInput(f"--agency: a {role.value} token must name its agency (e.g. --role {role.value}:court)")
    if role not in AGENCY_ROLES and agency:
        raise BadInput(f"--agency: a {role.value} token is not bound to an agency")
    if role in SUBJECT_ROLES and not subject:
        raise BadInput("--subject: a subject token must name its subject")
    if role not in SUBJECT_ROLES and subject:
        raise BadInput(f"--subject: a {role.value} token is not bound to a subject")
    if subject is not None:
        get_subject(conn, subject)
    if expires_at is not None and expires_at <= now:
        raise BadInput("--expires: the token would be expired already")
    token_id = secrets.token_hex(6)
    secret = secrets.token_urlsafe(32)
    conn.execute(
        t.tokens.insert().values(
            id=token_id,
            secret_sha256=_digest(secret),
            role=role.value,
            agency=agency,
            subject_id=subject,
            label=label,
            created_at=to_storage(now),
            created_by=actor,
            expires_at=to_storage(expires_at) if expires_at else None,
        )
    )
    return f"{PREFIX}{token_id}_{secret}", get(conn, token_id)


def get(conn: Connection, token_id: str) -> TokenInfo:
    row = conn.execute(select(t.tokens).where(t.tokens.c.id == token_id)).first()
    if row is None:
        raise NotFound(f"token {token_id} does not exist")
    return _info(row)


def listing(conn: Connection) -> list[TokenInfo]:
    return [_info(row) for row in conn.execute(select(t.tokens).order_by(t.tokens.c.created_at, t.tokens.c.id))]


def revoke(conn: Connection, token_id: str, *, now: dt.datetime) -> TokenInfo:
    found = get(conn, token_id)
    if found.revoked_at is not None:
        raise Refused(f"token {token_id} is already revoked")
    conn.execute(update(t.tokens).where(t.tokens.c.id == token_id).values(revoked_at=to_storage(now)))
    return get(conn, token_id)


def authenticate(conn: Connection, bearer: str, now: dt.datetime) -> TokenInfo:
    """The token a bearer string names, if the secret matches and it is neither expired nor revoked."""
    if not bearer.startswith(PREFIX) or bearer.count("_") < 2:
        raise Unauthenticated("the bearer token is malformed")
    token_id, _, secret = bearer[len(PREFIX) :].partition("_")
    row = conn.execute(select(t.tokens).where(t.tokens.c.id == token_id)).first()
    if row is None or not hmac.compare_digest(row.secret_sha256, _digest(secret)):
        raise Unauthenticated("the bearer token is not valid")
    info = _info(row)
    status = info.status(now)
    if status != "active":
        raise Unauthenticated(f"the bearer token is {status}")
    return info
