"""The door every operation goes through: authorise, act, and write the audit entry.

A write and its audit entry share one transaction: either both are in the store or neither is. A
read of non-public personal data is logged right after the read, before its answer is handed
back, so no answer leaves without its entry. Refusals (denied, bad input, not found) by an
identified caller are logged too, in a transaction of their own, since the failed operation's
transaction was rolled back. What follows an append to the ledger (effects, notices, the serving
state) is the after-append step's, which the door hands to every area that appends (`after`).
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection

from xinyong.errors import Unavailable, XinyongError
from xinyong.rules.clock import Clock
from xinyong.security import audit
from xinyong.security.access import Action, Principal, Role
from xinyong.storage.store import Store

if TYPE_CHECKING:
    from xinyong.ledger.appended import AfterAppend

log = logging.getLogger("xinyong.service")

DEFAULT_PURPOSE = {
    Action.CHECKS_ASK: "enforcement check",
    Action.STATE_READ: "state inquiry",
    Action.REPORTS_READ: "credit report",
    Action.SUBJECTS_READ: "profile",
    Action.RECORDS_READ: "record inquiry",
}


@dataclass
class Act:
    """One operation in progress: what the audit entry will say once it is done."""

    principal: Principal
    action: Action
    purpose: str | None = None
    subject: str | None = None
    detail: dict[str, Any] = field(default_factory=dict)
    audited: bool = True

    def entry(self, at: dt.datetime, outcome: str, why: str | None = None) -> audit.Entry:
        detail = dict(self.detail)
        if why:
            detail["why"] = why
        return audit.Entry(
            at=at,
            actor=self.principal.audit_actor,
            role=self.principal.audit_role,
            action=self.action.value,
            outcome=outcome,
            subject_id=self.subject,
            purpose=self.purpose or DEFAULT_PURPOSE.get(self.action),
            detail=detail or None,
        )


class Door:
    """The transactions operations act in, for one store and one clock."""

    def __init__(self, store: Store, clock: Clock, after: AfterAppend | None = None) -> None:
        self.store, self.clock = store, clock
        self._after = after

    @property
    def after(self) -> AfterAppend:
        """The after-append step every area that appends hands to the ledger (by default the
        platform's one, imported when first needed: a read needs none of it)."""
        if self._after is None:
            from xinyong.due_process.after_append import AFTER_APPEND

            self._after = AFTER_APPEND
        return self._after

    def log(self, entries: Sequence[audit.Entry]) -> None:
        """Append entries in a transaction of the audit log's own (reads and refusals): on SQLite
        in its own database file, so that a check never waits for a write of the ledger."""
        with self.store.audit_write_driver() as connection:
            audit.append_driver(connection, self.store.audit_backend, entries)

    def chain(self) -> None:
        """Chain the entries of committed writes into the log (`audit.chain_pending`); when the
        store cannot take it now, they stay pending, committed with their writes, for the next."""
        try:
            audit.chain_pending(self.store)
        except Unavailable:
            log.warning("audit entries left pending: the store could not take them now")

    def log_failure(self, act: Act, at: dt.datetime, exc: XinyongError) -> None:
        # An anonymous caller's failures carry no personal data and no identity worth logging;
        # when the store could not answer, nothing was decided and nothing can be written.
        if act.principal.role is Role.PUBLIC or isinstance(exc, Unavailable):
            return
        self.log([act.entry(at, exc.code, exc.message)])

    @contextmanager
    def writing(
        self,
        principal: Principal,
        action: Action,
        purpose: str | None = None,
        *,
        foreign_keys: bool = True,
        patient: bool = False,
    ) -> Iterator[tuple[Connection, Act]]:
        """A write transaction whose audit entry commits with it (`audit.pend`), and is chained
        into the log right after (`foreign_keys` and `patient` as in `Store.write`)."""
        act = Act(principal, action, purpose)
        now = self.clock.now()
        try:
            with self.store.write(foreign_keys=foreign_keys, patient=patient) as conn:
                yield conn, act
                audit.pend(conn, [act.entry(now, "done")])
        except XinyongError as exc:
            self.log_failure(act, now, exc)
            raise
        self.chain()

    @contextmanager
    def reading(
        self,
        principal: Principal,
        action: Action,
        purpose: str | None = None,
        *,
        defer: list[audit.Entry] | None = None,
    ) -> Iterator[tuple[Connection, Act]]:
        """A read; its entry is appended afterwards, or handed to `defer` for the caller to append."""
        act = Act(principal, action, purpose)
        now = self.clock.now()
        try:
            with self.store.read() as conn:
                yield conn, act
        except XinyongError as exc:
            self.log_failure(act, now, exc)
            raise
        if act.audited:
            if defer is not None:
                defer.append(act.entry(now, "done"))
            else:
                self.log([act.entry(now, "done")])

    @contextmanager
    def auditing(self, principal: Principal, action: Action, purpose: str | None = None) -> Iterator[Act]:
        """An operation that reads the store in transactions of its own (a batch export, a
        simulation): its entry is appended once it is done, or its refusal once refused."""
        act = Act(principal, action, purpose)
        now = self.clock.now()
        try:
            yield act
        except XinyongError as exc:
            self.log_failure(act, now, exc)
            raise
        self.log([act.entry(now, "done")])

    def day(self, as_of: dt.date | None) -> dt.date:
        return as_of or self.clock.today()

    def known(self, known_at: dt.datetime | None) -> dt.datetime:
        return known_at or self.clock.now()


class Area:
    """One area of the service (schemes, records, questions, …): its operations share the door."""

    def __init__(self, door: Door) -> None:
        self.door = door
        self.store = door.store
        self.clock = door.clock
