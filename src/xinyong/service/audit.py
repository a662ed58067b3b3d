"""The audit log: verifying its chain and its checkpoints, exporting it, keeping "who looked"
fast, and reading it per subject."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from xinyong.errors import XinyongError
from xinyong.security import audit, audit_index, checkpoints
from xinyong.security.access import Action, Principal, decide
from xinyong.security.keys import KeyRing, NoKeys
from xinyong.service.door import Act, Area, Door


class Audit(Area):
    def __init__(self, door: Door, keys: Callable[[], KeyRing]) -> None:
        super().__init__(door)
        self._keys = keys  # resolved when first needed: most of the log's operations sign nothing

    def verify(self, principal: Principal, given: Sequence[Path] = ()) -> audit.Verification:
        """Recompute the hash chain, then check it against every checkpoint: the store's, the copy
        beside the keys and the files `given` (saved `audit checkpoints --json`, or such copies).
        Intact, or the first broken entry or checkpoint."""
        decide(principal, Action.AUDIT_READ)
        self.door.chain()
        sources: list[tuple[str, list[checkpoints.Checkpoint]]] = []
        public_keys: dict[str, str] = {}
        try:
            ring: KeyRing | None = self._keys()
        except NoKeys:
            ring = None  # no folder for the keys (a server's store without XINYONG_KEYS)
        if ring is not None and ring.folder.is_dir():
            copy = ring.folder / checkpoints.COPY
            sources.append((str(copy), checkpoints.read_copy(copy)[0]))
            public_keys.update(ring.public_keys())
        for path in given:
            listed, published = checkpoints.read_copy(path)
            sources.append((str(path), listed))
            for key, value in published.items():  # a saved list's keys, unless they contradict ours
                public_keys.setdefault(key, value)
        with self.store.audit_read() as conn:
            result = audit.verify(conn)
            if not result.ok:
                return result
            sources.insert(0, ("the store", checkpoints.stored(conn)))
            if any(listed for _, listed in sources) and not public_keys:
                raise NoKeys(
                    "the checkpoints cannot be checked without the public keys that signed them: set "
                    "XINYONG_KEYS, or give a saved list of checkpoints (it carries them)"
                )
            finding = checkpoints.check(conn, sources, public_keys)
        if finding.checkpoint is None:
            return audit.Verification(**{**result.__dict__, "checkpoints": finding.checked})
        return audit.Verification(
            False,
            result.entries,
            result.head_seq,
            result.head_hash,
            None,
            f"checkpoint {finding.checkpoint}: {finding.reason}",
            finding.checked,
            finding.checkpoint,
        )

    def checkpoint(
        self, principal: Principal, *, unless_within: dt.timedelta | None = None
    ) -> checkpoints.Checkpoint | None:
        """Sign the log's head, its own entry included, and publish it (`security.checkpoints`);
        with `unless_within`, nothing when the newest checkpoint is that recent."""
        act, now = Act(principal, Action.AUDIT_CHECKPOINT), self.clock.now()
        try:
            decide(principal, Action.AUDIT_CHECKPOINT)
            ring = self._keys()
            ring.current_id()  # no key, no checkpoint: said before anything is written
        except XinyongError as exc:
            self.door.log_failure(act, now, exc)
            raise
        self.door.chain()  # the writes' entries before the head is signed
        entry = act.entry(now, "done")
        with self.store.audit_write() as conn:
            made = checkpoints.make(conn, ring, entry, unless_within=unless_within)
        if made is not None:
            checkpoints.publish(ring, made)
        return made

    def checkpoints(self, principal: Principal) -> dict[str, Any]:
        """Every checkpoint and the public keys that verify them: public, for anyone to keep."""
        decide(principal, Action.AUDIT_CHECKPOINTS)
        with self.store.audit_read() as conn:
            made = checkpoints.stored(conn)
        try:
            ring = self._keys()
            keys = ring.public_keys() if ring.folder.is_dir() else {}
        except NoKeys:
            keys = {}  # a server that signs nothing still lists what it has (nothing, usually)
        return {"checkpoints": [c.as_dict() for c in made], "keys": keys}

    def compact(self, principal: Principal) -> audit_index.Compaction:
        """Merge the who-looked index's newest runs (`audit_index.compact`); the act is logged like any write."""
        decide(principal, Action.AUDIT_COMPACT)
        result = audit_index.compact(self.store)
        # The act is a write of the log's own index, logged once it is done.
        with self.door.writing(principal, Action.AUDIT_COMPACT) as (_conn, act):
            act.detail.update(op="compact", runs_before=result.runs_before, runs_after=result.runs_after)
        return result

    def export(
        self, principal: Principal, out: Any, *, first: dt.date | None = None, last: dt.date | None = None
    ) -> int:
        """The entries of a period (local days, inclusive) as CSV with their hashes; returns how many."""
        decide(principal, Action.AUDIT_READ)
        self.door.chain()
        with (
            self.door.reading(principal, Action.AUDIT_READ, "audit export") as (_conn, act),
            self.store.audit_read() as log,
        ):
            count = audit.export_csv(log, out, first=first, last=last)
            act.detail.update(op="export", first=str(first), last=str(last), entries=count)
            return count

    def who_looked(self, principal: Principal, subject_id: str) -> list[dict[str, Any]]:
        """Every audited act about a subject, newest first."""
        return list(self.looked(principal, subject_id)["entries"])

    def looked(self, principal: Principal, subject_id: str) -> dict[str, list[dict[str, Any]]]:
        """A subject's who-looked: every audited act about it, newest first (`entries`), and the
        feed versions that carried its keyed hash to enforcer agencies (`feeds`, `derived.feed_versions.carrying`)."""
        from xinyong.derived.feed_versions import carrying

        with self.door.reading(principal, Action.AUDIT_WHO_LOOKED, "who looked") as (conn, act):
            act.subject = subject_id
            decide(principal, Action.AUDIT_WHO_LOOKED, subject=subject_id)
            # Newest first: a write's entry not yet chained, then the log's.
            pending = audit.pending_about(conn, subject_id)
            with self.store.audit_read() as log:
                entries = [*reversed(pending), *audit.who_looked(log, subject_id)]
            return {"entries": entries, "feeds": carrying(conn, subject_id)}
