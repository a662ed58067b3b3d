"""Check answers as known now, kept until the ledger changes (the answer cache)."""

from __future__ import annotations

import datetime as dt
import sys
import threading
from typing import Any

from xinyong.storage.store import Store


class AnswerCache:
    """Check answers as known now, valid while the ledger has not changed.

    A check's answer as known now depends only on the ledger (records, their events, consent,
    scheme versions) and the day asked about. The ledger is append-only, so a fingerprint of the
    newest id of each table (and the number of scheme versions) changes exactly when anything it
    could depend on does; an answer cached under an older fingerprint is never served. The
    fingerprint is read before the answer is computed, so a write landing in between makes the
    entry merely stale-keyed, never wrong.

    Only where the backend can read such a fingerprint (`Backend.fingerprint`): a single writer
    commits ids in order, so "newest id" moves with every commit (SQLite, on a file). On PostgreSQL
    a transaction holding a lower id can commit after one holding a higher id, so max(id) would
    miss it; there every check is computed (the audit entries still dominate). The audit log
    itself is not in the fingerprint: a check changes no answer.
    """

    SQL = (
        "SELECT (SELECT max(id) FROM records), (SELECT max(id) FROM record_events), "
        "(SELECT max(id) FROM subject_events), (SELECT count(*) FROM scheme_versions)"
    )
    MAX_ENTRIES = 100_000

    def __init__(self, store: Store, *, enabled: bool = True) -> None:
        self.store = store
        self._fingerprint = store.backend.fingerprint(self.SQL) if enabled else None
        self.enabled = self._fingerprint is not None
        self._answers: dict[tuple[str, str, dt.date], tuple[tuple[Any, ...], dict[str, Any]]] = {}
        self._local = threading.local()

    def tag(self) -> tuple[Any, ...]:
        # On an event loop (the API server) the tag is read once per loop iteration and shared by
        # the checks run in it: every request handled in an iteration arrived before the iteration
        # began, so each answer still reflects every write committed before its request arrived,
        # and the read (a WAL read transaction, ~6 µs, a fifth of a cached check) is paid once for
        # the many requests one iteration handles under load.
        # asyncio is looked up, not imported: a process that never imported it runs no loop, and the
        # command line's start-up is spared its import (17 ms of a check's 0.65 s).
        running = sys.modules.get("asyncio")
        loop = running._get_running_loop() if running is not None else None  # the loop or None, never raises
        if loop is None:
            return self._read_tag()
        held: tuple[Any, ...] | None = getattr(self._local, "held", None)
        if held is None:
            held = self._local.held = self._read_tag()
            loop.call_soon(self._release)
        return held

    def _release(self) -> None:
        self._local.held = None

    def _read_tag(self) -> tuple[Any, ...]:
        # A fresh snapshot on a connection of the fingerprint's own per thread, read again only
        # when another connection has committed since (SQLite's PRAGMA data_version): under load
        # the fingerprint is read once per audit batch (each batch is a commit), not once per check.
        fingerprint = self._fingerprint
        return fingerprint() if fingerprint is not None else ()

    def get(self, key: tuple[str, str, dt.date], tag: tuple[Any, ...] | None) -> dict[str, Any] | None:
        if tag is None:
            return None
        hit = self._answers.get(key)
        return hit[1] if hit is not None and hit[0] == tag else None

    def put(self, key: tuple[str, str, dt.date], tag: tuple[Any, ...] | None, data: dict[str, Any]) -> None:
        if tag is None:
            return
        if len(self._answers) >= self.MAX_ENTRIES:
            self._answers.clear()
        self._answers[key] = (tag, data)
