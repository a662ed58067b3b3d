"""Web sessions kept on the server, so that log-out ends a session for good.

A log-in makes a session: 32 random bytes (the session secret) go into the browser's signed cookie,
and a row of `web_sessions` keeps the SHA-256 of that secret with the credential it stands for and
its end (8 hours on). Every request finds the row again (one primary-key read), so a cookie whose
row is gone stands for nobody: log-out deletes the row, and a copy of the cookie taken before is
worthless after. As for tokens, only the digest is stored: a copy of the store opens no session.

A new password for a log-in ends that log-in's sessions (`end_all`); revoking or expiring its
credential ends them too, since each request checks the credential as well (`Credentials.session`).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets

from sqlalchemy import Connection, delete, select

from xinyong.rules.clock import from_storage, to_storage
from xinyong.security.access import Unauthenticated
from xinyong.storage import tables as t

LIFETIME = dt.timedelta(hours=8)


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def start(conn: Connection, credential: str, now: dt.datetime) -> str:
    """A new session for the credential; its secret, for the cookie (never stored). Sessions that
    have ended by themselves are swept away at the same time (indexed by their end)."""
    conn.execute(delete(t.web_sessions).where(t.web_sessions.c.expires_at <= to_storage(now)))
    secret = secrets.token_urlsafe(32)
    conn.execute(
        t.web_sessions.insert().values(
            secret_sha256=_digest(secret),
            credential=credential,
            created_at=to_storage(now),
            expires_at=to_storage(now + LIFETIME),
        )
    )
    return secret


def find(conn: Connection, secret: str, now: dt.datetime) -> str:
    """The credential id of a session that is still on (Unauthenticated otherwise)."""
    row = conn.execute(
        select(t.web_sessions.c.credential, t.web_sessions.c.expires_at).where(
            t.web_sessions.c.secret_sha256 == _digest(secret)
        )
    ).first()
    if row is None:
        raise Unauthenticated("the session has ended: log in again")
    if from_storage(row.expires_at) <= now:
        raise Unauthenticated("the session has expired: log in again")
    return str(row.credential)


def end(conn: Connection, secret: str) -> bool:
    """Log-out: the session ends on the server. Whether there was one."""
    return conn.execute(delete(t.web_sessions).where(t.web_sessions.c.secret_sha256 == _digest(secret))).rowcount > 0


def end_all(conn: Connection, credential: str) -> int:
    """Every session of a credential ends (its password was set anew); how many there were."""
    return conn.execute(delete(t.web_sessions).where(t.web_sessions.c.credential == credential)).rowcount
