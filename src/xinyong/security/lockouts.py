"""Log-in lock-outs: after 5 failed log-ins for one name or 20 from one address within 15 minutes,
log-in is refused at once, for a time that doubles with each lock-out in a row.

Why in the store. A server runs several worker processes, each with its own memory, and a guesser
spreads its requests over all of them; counts kept in a worker would let it guess five times per
worker. The store is the one thing every worker shares (no other service to run, and it is the
same on SQLite and PostgreSQL), and log-ins are few: an attempt costs two short writes. So every
attempt is a row of `login_attempts` (15 minutes, then swept), and every name and address that has
failed has a row of `login_locks` with its lock-out state.

How an attempt goes (`Service.credentials.log_in`):

1. `locked` — a read, nothing written: if the name or the address is locked, the attempt is
   refused (`LockedOut`, HTTP 429 with Retry-After) before any password is looked at. A flood of
   requests during a lock-out therefore costs one indexed read each and writes nothing.
2. `reserve` — a short write: the attempt is recorded *before* the password is checked (argon2id
   takes a tenth of a second, and is done outside any write transaction), so that requests in
   flight at the same moment count too: at most 5 checks for a name can be under way at once, not
   one per worker or thread. If the budget is spent (see below) the attempt is refused here.
3. the password is checked, outside any transaction of the store's;
4. `succeeded` or `failed` — a short write. A success removes its own attempt and, for the name
   only, makes earlier failures no longer count (`counted_from`); an address keeps its count of
   failures against other names (and against this one), so an attacker cannot reset it by
   logging in to an account of its own. A failure that brings a name to 5, or an address to 20,
   failures in 15 minutes starts a lock-out, written into the audit log once (`LockOut.entry`).

The budget. Without a lock-out in the last 15 minutes a name has 5 attempts in 15 minutes and an
address 20. When a lock-out ends, one attempt is allowed, and its failure starts the next lock-out
at once, twice as long: 1 minute, 2, 4, … up to an hour, so a guesser gets a handful of guesses an
hour instead of thousands. The series is forgotten a day after its last lock-out began, or (for a
name) at a successful log-in.

Concurrency. Every write here first locks the `login_locks` rows of the name and the address (in
one order, so two writers never wait for each other in a circle): on PostgreSQL with SELECT … FOR
UPDATE, on SQLite by the write lock every write transaction takes. Two workers therefore never
count at the same time, and a lock-out starts once.

What counts as an address is the interface's to say (the connecting address, or the one a trusted
proxy forwarded: `interfaces.web.client`); `address_key` groups an IPv6 client by its /64, the
block one subscriber is usually given, so that a guesser cannot take a fresh address per guess.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import math
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Select, delete, func, select, update
from sqlalchemy.exc import IntegrityError

from xinyong.rules.clock import from_storage, to_storage
from xinyong.security.access import Unauthenticated
from xinyong.security.audit import Entry
from xinyong.storage import tables as t

WINDOW = dt.timedelta(minutes=15)
NAME_LIMIT = 5
ADDRESS_LIMIT = 20
LIMITS = {"login": NAME_LIMIT, "address": ADDRESS_LIMIT}
FIRST_LOCKOUT = dt.timedelta(minutes=1)
LONGEST_LOCKOUT = dt.timedelta(hours=1)
SERIES_MEMORY = dt.timedelta(days=1)
COLUMN_LENGTH = 64  # login_attempts.login and .address, login_locks.value

ACTION = "web.log_in"  # a lock-out's audit entry: what was refused
OUTCOME = "locked_out"
_TINY = dt.timedelta(microseconds=1)


class LockedOut(Unauthenticated):
    """Log-in is refused for a while: `retry_after` whole seconds (HTTP 429 with Retry-After)."""

    def __init__(self, retry_after: int) -> None:
        super().__init__(f"too many failed log-ins: try again in {retry_after} seconds")
        self.retry_after = retry_after


def login_key(login: str | None) -> str | None:
    """A log-in name as it is counted: trimmed and upper case (as `passwords.token_id`), cut to fit."""
    if login is None or not login.strip():
        return None
    return login.strip().upper()[:COLUMN_LENGTH]


def address_key(address: str | None) -> str | None:
    """An address as it is counted: an IPv4 address as it is, an IPv6 address by its /64 (one
    mapping an IPv4 address as that address), anything else (a test client's name) as given."""
    if address is None or not address.strip():
        return None
    text = address.strip()
    try:
        found = ipaddress.ip_address(text.split("%", 1)[0])
    except ValueError:
        return text[:COLUMN_LENGTH]
    if isinstance(found, ipaddress.IPv6Address):
        if found.ipv4_mapped is not None:
            return str(found.ipv4_mapped)
        return str(ipaddress.IPv6Network((found, 64), strict=False))
    return str(found)


def keys_of(login: str | None, address: str | None) -> list[tuple[str, str]]:
    """The (kind, value) an attempt counts against, in the one order their rows are locked in."""
    return sorted((kind, value) for kind, value in (("login", login), ("address", address)) if value is not None)


def duration(lockouts: int) -> dt.timedelta:
    """How long the `lockouts`-th lock-out in a row lasts: 1 minute, doubling, at most an hour."""
    return min(FIRST_LOCKOUT * (1 << min(max(lockouts, 1) - 1, 20)), LONGEST_LOCKOUT)


def _seconds(delta: dt.timedelta) -> int:
    return max(1, math.ceil(delta.total_seconds()))


@dataclass(frozen=True)
class Lock:
    """A name's or an address's row of `login_locks`, read."""

    kind: str
    value: str
    locked_at: dt.datetime | None = None
    locked_until: dt.datetime | None = None
    lockouts: int = 0
    counted_from: dt.datetime | None = None

    @classmethod
    def of(cls, kind: str, value: str, row: Any) -> Lock:
        if row is None:
            return cls(kind, value)
        stored = (row.locked_at, row.locked_until, row.counted_from)
        locked_at, locked_until, counted_from = (from_storage(v) if v is not None else None for v in stored)
        return cls(kind, value, locked_at, locked_until, int(row.lockouts), counted_from)

    def active(self, now: dt.datetime) -> bool:
        return self.locked_until is not None and self.locked_until > now

    def probation(self, now: dt.datetime) -> bool:
        """The last lock-out ended less than WINDOW ago: one attempt at a time, and a failure locks."""
        return self.locked_until is not None and now - WINDOW < self.locked_until <= now

    def counted_since(self, now: dt.datetime) -> dt.datetime:
        """Attempts after this instant count: the window's start, or (from) a successful log-in's."""
        since = now - WINDOW
        return max(since, self.counted_from - _TINY) if self.counted_from is not None else since


@dataclass(frozen=True)
class LockOut:
    """A lock-out that has just begun, for its audit entry."""

    kind: str
    value: str
    seconds: int
    failures: int
    lockouts: int
    at: dt.datetime
    address: str | None

    def entry(self) -> Entry:
        """Its audit entry: the actor is the name or the address locked out, never a password."""
        detail: dict[str, Any] = {"failures": self.failures, "seconds": self.seconds, "in_a_row": self.lockouts}
        if self.kind == "login" and self.address is not None:
            detail["address"] = self.address  # where the failure that locked the name came from
        return Entry(self.at, f"{self.kind}:{self.value}", "public", ACTION, OUTCOME, detail=detail)


def _row(kind: str, value: str, *, for_update: bool = False) -> Select[Any]:
    query = select(t.login_locks).where(t.login_locks.c.kind == kind, t.login_locks.c.value == value)
    return query.with_for_update() if for_update else query


def _attempts(conn: Connection, kind: str, value: str, after: dt.datetime) -> tuple[int, dt.datetime | None]:
    """How many attempts against the name or address came after `after`, and the oldest one's time."""
    table = t.login_attempts
    column = table.c.login if kind == "login" else table.c.address
    query = select(func.count(), func.min(table.c.at)).where(column == value, table.c.at > to_storage(after))
    count, oldest = conn.execute(query).one()
    return int(count), from_storage(oldest) if oldest is not None else None


def _lock_rows(conn: Connection, keys: list[tuple[str, str]], now: dt.datetime) -> list[Lock]:
    """The keys' rows, made when missing, locked for the rest of the transaction (in `keys`' order)."""
    locks: list[Lock] = []
    for kind, value in keys:
        row = conn.execute(_row(kind, value, for_update=True)).first()
        while row is None:
            try:
                with conn.begin_nested():
                    conn.execute(
                        t.login_locks.insert().values(kind=kind, value=value, lockouts=0, touched_at=to_storage(now))
                    )
            except IntegrityError:
                pass  # another writer made it first: wait for its lock instead
            row = conn.execute(_row(kind, value, for_update=True)).first()
        locks.append(Lock.of(kind, value, row))
    return locks


def locked(conn: Connection, login: str | None, address: str | None, now: dt.datetime) -> int | None:
    """Seconds until the lock-out of the name or the address ends, if one is on: a read only."""
    waits = []
    for kind, value in keys_of(login, address):
        lock = Lock.of(kind, value, conn.execute(_row(kind, value)).first())
        if lock.active(now):
            assert lock.locked_until is not None
            waits.append(_seconds(lock.locked_until - now))
    return max(waits) if waits else None


def reserve(conn: Connection, login: str | None, address: str | None, now: dt.datetime) -> int | None:
    """Record an attempt before its password is checked, or refuse it (`LockedOut`) when the name
    or the address is locked or has no attempt left; the attempt's id, for `succeeded`."""
    keys = keys_of(login, address)
    if not keys:
        return None
    waits: list[int] = []
    for lock in _lock_rows(conn, keys, now):
        if lock.active(now):
            assert lock.locked_until is not None
            waits.append(_seconds(lock.locked_until - now))
        elif lock.probation(now):
            assert lock.locked_until is not None
            under_way, _ = _attempts(conn, lock.kind, lock.value, lock.locked_until - _TINY)
            if under_way:
                waits.append(1)  # the one attempt after a lock-out is being checked
        else:
            count, oldest = _attempts(conn, lock.kind, lock.value, lock.counted_since(now))
            if count >= LIMITS[lock.kind]:
                # Attempts still being checked fill the budget and no lock-out has begun (yet).
                waits.append(_seconds(oldest + WINDOW - now) if oldest is not None else 1)
    if waits:
        raise LockedOut(max(waits))
    inserted = conn.execute(t.login_attempts.insert().values(at=to_storage(now), login=login, address=address))
    key = inserted.inserted_primary_key
    assert key is not None
    return int(key[0])


def succeeded(conn: Connection, attempt: int | None, login: str | None, now: dt.datetime) -> None:
    """A successful log-in: its attempt goes, and the name's earlier failures stop counting (its
    series of lock-outs ends too). The address's count stays as it is."""
    if attempt is not None:
        conn.execute(delete(t.login_attempts).where(t.login_attempts.c.id == attempt))
    if login is not None:
        _lock_rows(conn, [("login", login)], now)
        conn.execute(
            update(t.login_locks)
            .where(t.login_locks.c.kind == "login", t.login_locks.c.value == login)
            .values(
                counted_from=to_storage(now), locked_at=None, locked_until=None, lockouts=0, touched_at=to_storage(now)
            )
        )


def failed(conn: Connection, login: str | None, address: str | None, now: dt.datetime) -> list[LockOut]:
    """A failed attempt, recorded already by `reserve`: the lock-outs it begins, if any."""
    begun: list[LockOut] = []
    for lock in _lock_rows(conn, keys_of(login, address), now):
        if lock.active(now):
            continue  # an attempt of the same moment locked it already
        failures, _ = _attempts(conn, lock.kind, lock.value, lock.counted_since(now))
        if not lock.probation(now) and failures < LIMITS[lock.kind]:
            continue
        recent = lock.locked_at is not None and lock.locked_at > now - SERIES_MEMORY
        lockouts = lock.lockouts + 1 if recent else 1
        lasting = duration(lockouts)
        conn.execute(
            update(t.login_locks)
            .where(t.login_locks.c.kind == lock.kind, t.login_locks.c.value == lock.value)
            .values(
                locked_at=to_storage(now),
                locked_until=to_storage(now + lasting),
                lockouts=lockouts,
                touched_at=to_storage(now),
            )
        )
        begun.append(LockOut(lock.kind, lock.value, _seconds(lasting), failures, lockouts, now, address))
    sweep(conn, now)
    return begun


def sweep(conn: Connection, now: dt.datetime) -> None:
    """Attempts older than the window, and lock-out rows untouched for a day, go (both indexed)."""
    conn.execute(delete(t.login_attempts).where(t.login_attempts.c.at <= to_storage(now - WINDOW)))
    conn.execute(delete(t.login_locks).where(t.login_locks.c.touched_at <= to_storage(now - SERIES_MEMORY)))
