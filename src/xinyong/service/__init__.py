"""The service: the one door through which the command line, the HTTP API and the web pages act.

Every operation takes a `Principal`, asks `access.decide` whether and how far it may act,
performs the library call, and appends the audit entry (`service.door`). The operations are
grouped by area, each a class of its own sharing the door: `service.records.correct(...)`,
`service.questions.check(...)`, `service.objections.file(...)`. They return library values (or
plain dicts for views that exist only here); each interface shapes them for its callers.

An area's module is imported the first time the area is used: a command line run asks one
question, and importing every area (SMTP, argon2, the import paths, …) cost it a tenth of the
0.6 s it may take to start (benchmarks/REPORT.md, "Start-up").
"""

from __future__ import annotations

from functools import cached_property
from typing import TYPE_CHECKING, Any

from xinyong.rules.clock import Clock
from xinyong.service.answers import AnswerCache
from xinyong.service.door import Door
from xinyong.storage.store import Store

if TYPE_CHECKING:
    from xinyong.security.audit import Entry as AuditEntry
    from xinyong.security.keys import KeyRing
    from xinyong.security.tokens import TokenInfo
    from xinyong.service.aggregates import Aggregates
    from xinyong.service.audit import Audit
    from xinyong.service.credentials import Credentials
    from xinyong.service.due_process import Objections, Repairs
    from xinyong.service.feeds import Feeds
    from xinyong.service.import_jobs import ImportJobs
    from xinyong.service.lab import Lab
    from xinyong.service.notices import Notices
    from xinyong.service.operations import Operations
    from xinyong.service.questions import Questions
    from xinyong.service.records import Records
    from xinyong.service.reports import Reports
    from xinyong.service.schemes import Schemes
    from xinyong.service.subjects import Subjects

# Besides the service: the values interfaces handle of the lower layers — the audit entries a
# deferred read hands back, a credential as its operations return it, and what an enforcer hears.
__all__ = ["ENFORCER_FIELDS", "AuditEntry", "Service", "TokenInfo"]


def __getattr__(name: str) -> Any:
    if name == "AuditEntry":
        from xinyong.security.audit import Entry

        return Entry
    if name == "TokenInfo":
        from xinyong.security.tokens import TokenInfo

        return TokenInfo
    if name == "ENFORCER_FIELDS":
        from xinyong.service.questions import ENFORCER_FIELDS

        return ENFORCER_FIELDS
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


class Service:
    """Authorise, act, audit — for one store and one clock, area by area."""

    def __init__(
        self, store: Store, clock: Clock | None = None, *, cache_answers: bool = True, keys: KeyRing | None = None
    ) -> None:
        self.store = store
        self.clock = clock or Clock()
        self.door = Door(store, self.clock)
        self.answers = AnswerCache(store, enabled=cache_answers)
        self._keys = keys

    @property
    def keys(self) -> KeyRing:
        """The platform's signing keys: as given, or where XINYONG_KEYS (or the store's file) says."""
        if self._keys is None:
            from xinyong import settings
            from xinyong.security.keys import KeyRing, folder_for

            self._keys = KeyRing(folder_for(settings.current().keys, self.store.database_files()))
        return self._keys

    @cached_property
    def schemes(self) -> Schemes:
        from xinyong.service.schemes import Schemes

        return Schemes(self.door)

    @cached_property
    def subjects(self) -> Subjects:
        from xinyong.service.subjects import Subjects

        return Subjects(self.door)

    @cached_property
    def records(self) -> Records:
        from xinyong.service.records import Records

        return Records(self.door)

    @cached_property
    def imports(self) -> ImportJobs:
        from xinyong.service.import_jobs import ImportJobs

        return ImportJobs(self.door, self.records, self.subjects)

    @cached_property
    def questions(self) -> Questions:
        from xinyong.service.questions import Questions

        return Questions(self.door, self.answers)

    @cached_property
    def aggregates(self) -> Aggregates:
        from xinyong.service.aggregates import Aggregates

        return Aggregates(self.door, self.answers)

    @cached_property
    def objections(self) -> Objections:
        from xinyong.service.due_process import Objections

        return Objections(self.door)

    @cached_property
    def repairs(self) -> Repairs:
        from xinyong.service.due_process import Repairs

        return Repairs(self.door)

    @cached_property
    def notices(self) -> Notices:
        from xinyong.service.notices import Notices

        return Notices(self.door)

    @cached_property
    def credentials(self) -> Credentials:
        from xinyong.service.credentials import Credentials

        return Credentials(self.door)

    @cached_property
    def audit(self) -> Audit:
        from xinyong.service.audit import Audit

        return Audit(self.door, lambda: self.keys)

    @cached_property
    def feeds(self) -> Feeds:
        from xinyong.service.feeds import Feeds

        return Feeds(self.door, lambda: self.keys)

    @cached_property
    def lab(self) -> Lab:
        from xinyong.service.lab import Lab

        return Lab(self.door)

    @cached_property
    def reports(self) -> Reports:
        from xinyong.service.reports import Reports

        return Reports(self.door, lambda: self.keys)

    @cached_property
    def operations(self) -> Operations:
        from xinyong.service.operations import Operations

        return Operations(self.door)
