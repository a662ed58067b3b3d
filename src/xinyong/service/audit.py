"""The audit log: verifying its chain, exporting it, keeping "who looked" fast, and reading it per subject."""

from __future__ import annotations

import datetime as dt
from typing import Any

from xinyong.security import audit
from xinyong.security.access import Action, Principal, decide
from xinyong.service.door import Area


class Audit(Area):
    def verify(self, principal: Principal) -> audit.Verification:
        """Recompute the hash chain: intact, or the first broken entry."""
        decide(principal, Action.AUDIT_READ)
        with self.store.read() as conn:
            return audit.verify(conn)

    def compact(self, principal: Principal) -> audit.Compaction:
        """Merge the who-looked index's newest runs (`audit.compact`); the act is logged like any write."""
        with self.door.writing(principal, Action.AUDIT_COMPACT) as (conn, act):
            decide(principal, Action.AUDIT_COMPACT)
            result = audit.compact(conn)
            act.detail.update(op="compact", runs_before=result.runs_before, runs_after=result.runs_after)
            return result

    def export(
        self, principal: Principal, out: Any, *, first: dt.date | None = None, last: dt.date | None = None
    ) -> int:
        """The entries of a period (local days, inclusive) as CSV with their hashes; returns how many."""
        with self.door.reading(principal, Action.AUDIT_READ, "audit export") as (conn, act):
            decide(principal, Action.AUDIT_READ)
            count = audit.export_csv(conn, out, first=first, last=last)
            act.detail.update(op="export", first=str(first), last=str(last), entries=count)
            return count

    def who_looked(self, principal: Principal, subject_id: str) -> list[dict[str, Any]]:
        """Who looked at a subject's data, and every other logged act about it, newest first."""
        with self.door.reading(principal, Action.AUDIT_WHO_LOOKED, "who looked") as (conn, act):
            act.subject = subject_id
            decide(principal, Action.AUDIT_WHO_LOOKED, subject=subject_id)
            return audit.who_looked(conn, subject_id)
