"""The service: the one door through which the API and the command line act for a principal.

Every operation here takes a `Principal`, asks `access.decide` whether and how far it may act,
performs the library call, and appends the audit entry. A write and its audit entry share one
transaction: either both are in the store or neither is. A read of non-public personal data is
logged right after the read, before its answer is handed back, so no answer leaves without its
entry. Refusals (denied, bad input, not found) by an identified caller are logged too, in a
transaction of their own, since the failed operation's transaction was rolled back.

The operations return library values (or plain dicts for views that exist only here); the API
and the command line shape them for their callers.
"""

from __future__ import annotations

import datetime as dt
import sqlite3
import threading
from asyncio import _get_running_loop as asyncio_running_loop  # the loop or None, never raises
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import orjson
from sqlalchemy import Connection, String, func, select

from xinyong.derived import checks, search, serving
from xinyong.derived.state import NoState, StateReader, population
from xinyong.due_process import notices, objections, repairs
from xinyong.due_process.objections import ObjectionStatus
from xinyong.due_process.repairs import RepairStatus
from xinyong.errors import BadInput, NotFound, Problem, Refused, XinyongError
from xinyong.ledger import consent, imports, registry
from xinyong.ledger import records as ledger
from xinyong.ledger.imports import ImportResult
from xinyong.ledger.records import History
from xinyong.ledger.registry import SchemeVersion, Subject, version_in_force
from xinyong.presentation import outputs, reports
from xinyong.rules.clock import Clock, local_day, to_storage
from xinyong.rules.engine import State
from xinyong.rules.identifiers import mask
from xinyong.rules.schemes import Scheme, parse_scheme
from xinyong.security import audit, passwords, tokens
from xinyong.security.access import (
    MIN_CELL,
    Action,
    Forbidden,
    Principal,
    Role,
    Scope,
    Unauthenticated,
    decide,
    gate,
    refusal,
    scope_for,
)
from xinyong.security.tokens import TokenInfo
from xinyong.storage import store as t
from xinyong.storage.store import Store

# What an enforcer learns from a check, and nothing else (DESIGN.md safeguard 6).
# Acts about one subject that can change its state: they refresh its serving rows. (File imports
# touch many subjects and leave theirs to be found stale: checks then take the exact online path.)
CHANGES_STATE = frozenset(
    {
        Action.RECORDS_SUBMIT,
        Action.RECORDS_CORRECT,
        Action.RECORDS_REVOKE,
        Action.RECORDS_END,
        Action.OBJECTIONS_FILE,
        Action.OBJECTIONS_DECIDE,
        Action.CONSENT_CHANGE,
    }
)
ENFORCER_FIELDS = ("subject", "measure", "as_of", "applies", "since", "legal_basis", "contest")
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


def outcome_of(exc: XinyongError) -> str:
    if isinstance(exc, Forbidden | Unauthenticated):
        return "denied"
    if isinstance(exc, NotFound):
        return "not_found"
    if isinstance(exc, Refused):
        return "refused"
    if isinstance(exc, BadInput):
        return "invalid"
    return "failed"


class AnswerCache:
    """Check answers as known now, valid while the ledger has not changed.

    A check's answer as known now depends only on the ledger (records, their events, consent,
    scheme versions) and the day asked about. The ledger is append-only, so a fingerprint of the
    newest id of each table (and the number of scheme versions) changes exactly when anything it
    could depend on does; an answer cached under an older fingerprint is never served. The
    fingerprint is read before the answer is computed, so a write landing in between makes the
    entry merely stale-keyed, never wrong.

    Only on SQLite: its one writer commits ids in order, so "newest id" moves with every commit.
    On PostgreSQL a transaction holding a lower id can commit after one holding a higher id, so
    max(id) would miss it; there every check is computed (the audit entries still dominate).
    The audit log itself is not in the fingerprint: a check changes no answer.
    """

    SQL = (
        "SELECT (SELECT max(id) FROM records), (SELECT max(id) FROM record_events), "
        "(SELECT max(id) FROM subject_events), (SELECT count(*) FROM scheme_versions)"
    )
    MAX_ENTRIES = 100_000

    def __init__(self, store: Store, *, enabled: bool = True) -> None:
        self.store = store
        database = store.engine.url.database or ""
        # Only a database file can be fingerprinted from a second connection.
        on_file = bool(database) and database != ":memory:" and "mode=memory" not in database
        self.enabled = enabled and store.is_sqlite and on_file
        self._answers: dict[tuple[str, str, dt.date], tuple[tuple[Any, ...], dict[str, Any]]] = {}
        self._local = threading.local()

    def _connection(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            # A connection of its own per thread, in autocommit mode: each fingerprint is a fresh
            # snapshot, and the pool's connections stay free for real work.
            conn = sqlite3.connect(str(self.store.engine.url.database), isolation_level=None, check_same_thread=True)
            conn.execute("PRAGMA busy_timeout=10000")
            self._local.conn = conn
        return conn

    def tag(self) -> tuple[Any, ...]:
        # On an event loop (the API server) the tag is read once per loop iteration and shared by
        # the checks run in it: every request handled in an iteration arrived before the iteration
        # began, so each answer still reflects every write committed before its request arrived,
        # and the read (a WAL read transaction, ~6 µs, a fifth of a cached check) is paid once for
        # the many requests one iteration handles under load.
        loop = asyncio_running_loop()
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
        # PRAGMA data_version changes exactly when another connection has committed since this one
        # last looked, and is far cheaper than the fingerprint query: under load the fingerprint is
        # read once per audit batch (each batch is a commit) instead of once per check.
        conn = self._connection()
        version = conn.execute("PRAGMA data_version").fetchone()
        seen: tuple[Any, tuple[Any, ...]] | None = getattr(self._local, "seen", None)
        if seen is not None and seen[0] == version:
            return seen[1]
        row = conn.execute(self.SQL).fetchone()
        tag = tuple(row) if row is not None else ()
        self._local.seen = (version, tag)
        return tag

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


class Service:
    """Authorise, act, audit — for one store and one clock."""

    def __init__(self, store: Store, clock: Clock | None = None, *, cache_answers: bool = True) -> None:
        self.store = store
        self.clock = clock or Clock()
        self.answers = AnswerCache(store, enabled=cache_answers)

    # --- the two doors ---------------------------------------------------------------------------

    def log(self, entries: Sequence[audit.Entry]) -> None:
        """Append entries in a write transaction of their own (reads and refusals)."""
        with self.store.write_driver() as connection:
            audit.append_driver(connection, self.store.is_sqlite, entries)

    def _log_failure(self, act: Act, at: dt.datetime, exc: XinyongError) -> None:
        # An anonymous caller's failures carry no personal data and no identity worth logging.
        if act.principal.role is Role.PUBLIC:
            return
        self.log([act.entry(at, outcome_of(exc), exc.message)])

    @contextmanager
    def _writing(self, principal: Principal, action: Action, purpose: str | None) -> Iterator[tuple[Connection, Act]]:
        act = Act(principal, action, purpose)
        now = self.clock.now()
        try:
            with self.store.write() as conn:
                yield conn, act
                if act.subject is not None and action in CHANGES_STATE:
                    # Keep the subject's serving rows (if a batch made any) true in the same
                    # transaction, so checks go on being answered from them; as known after the
                    # act, whose own rows were stamped with the clock after `now`.
                    serving.refresh_if_served(conn, [act.subject], self.clock.now())
                audit.append(conn, [act.entry(now, "done")])
        except XinyongError as exc:
            self._log_failure(act, now, exc)
            raise

    @contextmanager
    def _reading(
        self, principal: Principal, action: Action, purpose: str | None, *, defer: list[audit.Entry] | None = None
    ) -> Iterator[tuple[Connection, Act]]:
        """A read; its entry is appended afterwards, or handed to `defer` for the caller to append."""
        act = Act(principal, action, purpose)
        now = self.clock.now()
        try:
            with self.store.read() as conn:
                yield conn, act
        except XinyongError as exc:
            self._log_failure(act, now, exc)
            raise
        if act.audited:
            if defer is not None:
                defer.append(act.entry(now, "done"))
            else:
                self.log([act.entry(now, "done")])

    def _day(self, as_of: dt.date | None) -> dt.date:
        return as_of or self.clock.today()

    def _known(self, known_at: dt.datetime | None) -> dt.datetime:
        return known_at or self.clock.now()

    # --- schemes and sources ---------------------------------------------------------------------

    def schemes(self, principal: Principal) -> list[SchemeVersion]:
        """Every published version of every scheme (public, in full: no secret rules)."""
        decide(principal, Action.SCHEMES_READ)
        with self.store.read() as conn:
            return registry.scheme_versions(conn)

    def scheme_source(self, principal: Principal, scheme: str, version: str) -> str:
        decide(principal, Action.SCHEMES_READ)
        with self.store.read() as conn:
            return registry.source_text(conn, scheme, version)

    def load_scheme(
        self, principal: Principal, text: str, *, scheme: Scheme | None = None, where: str = "scheme"
    ) -> tuple[SchemeVersion, bool]:
        """Publish a scheme version (`scheme` when the caller has parsed `text` already, with its
        own locations for errors)."""
        with self._writing(principal, Action.SCHEMES_LOAD, None) as (conn, act):
            decide(principal, Action.SCHEMES_LOAD)
            scheme = scheme or parse_scheme(text, where=where)
            version, added = ledger.load_scheme(conn, scheme, text, self.clock.now())
            act.detail.update(scheme=version.id, version=version.version, added=added)
            return version, added

    def add_source(
        self, principal: Principal, agency: str, behaviours: Sequence[str], title: str | None = None
    ) -> tuple[list[str], list[str]]:
        """Authorise an agency for behaviour codes; returns (codes added, all its codes)."""
        with self._writing(principal, Action.SOURCES_MANAGE, None) as (conn, act):
            decide(principal, Action.SOURCES_MANAGE)
            codes = [c.strip() for c in behaviours if c.strip()]
            if not codes:
                raise BadInput("--behaviours: give at least one behaviour code")
            known = ledger.known_behaviours(conn)
            unknown = [c for c in codes if c not in known]
            if unknown:
                raise BadInput(
                    f"--behaviours: {', '.join(unknown)} is in no loaded scheme's catalogue (load the scheme first)"
                )
            added = registry.add_source(conn, agency, codes, self.clock.now(), title)
            act.detail.update(source=agency, added=added)
            return added, sorted(registry.authorised_behaviours(conn, agency))

    # --- subjects ----------------------------------------------------------------------------------

    def search(self, principal: Principal, query: str, *, limit: int = 50) -> list[dict[str, Any]]:
        """Subjects by name, unified code / id, or legal representative.

        The public finds organisations only (Credit China's look-up); the office finds persons
        too, and that search is logged because it reads personal data.
        """
        text = query.strip()
        if not text:
            raise BadInput("q: give a name, a code or a legal representative to search for")
        scope = decide(principal, Action.SUBJECTS_SEARCH)
        with self._reading(principal, Action.SUBJECTS_SEARCH, None) as (conn, act):
            act.audited = scope is not Scope.PUBLIC
            # Fuzzy, by characters or pinyin, over an in-memory index (search.py).
            found = search.search(conn, text, organisations_only=scope is Scope.PUBLIC, limit=limit)
            act.detail.update(q=text, found=len(found))
            return found

    def _subject_scope(self, conn: Connection, principal: Principal, action: Action, subject_id: str) -> Scope:
        """The scope for an act on a subject; under the public scope only organisations exist."""
        scope = decide(principal, action, subject=subject_id)
        if scope is Scope.PUBLIC:
            found = registry.existing_subjects(conn, [subject_id]).get(subject_id)
            if found is None or found.kind != "organisation":
                # The same answer for an unknown id and a person's: the public learns nothing about persons.
                raise NotFound(f"there is no public profile for {mask(subject_id, 'person')}")
        return scope

    def profile(
        self, principal: Principal, subject_id: str, *, as_of: dt.date | None = None, purpose: str | None = None
    ) -> dict[str, Any]:
        """Who the subject is and where it stands: the public view for the public, in full otherwise."""
        data = self.report(principal, subject_id, as_of=as_of, purpose=purpose, action=Action.SUBJECTS_READ)
        return {k: data[k] for k in ("audience", "subject", "as_of", "schemes", "how_to_contest") if k in data}

    def import_subjects(self, principal: Principal, name: str, data: bytes) -> ImportResult:
        with self._writing(principal, Action.SUBJECTS_IMPORT, None) as (conn, act):
            decide(principal, Action.SUBJECTS_IMPORT)
            result = imports.import_subjects(conn, name, data, now=self.clock.now(), actor=principal.name)
            act.detail.update(file=name, imported=result.imported, already_present=result.already_present)
            return result

    def change_consent(self, principal: Principal, subject_id: str, scheme: str, grant: bool) -> bool:
        gate(principal, Action.CONSENT_CHANGE)
        with self._writing(principal, Action.CONSENT_CHANGE, None) as (conn, act):
            act.subject = subject_id
            decide(principal, Action.CONSENT_CHANGE, subject=subject_id)
            changed = consent.record_consent(conn, subject_id, scheme, grant, self.clock.now(), principal.name)
            act.detail.update(scheme=scheme, consent="granted" if grant else "withdrawn", changed=changed)
            return changed

    # --- records -----------------------------------------------------------------------------------

    def _submission_scope(self, conn: Connection, principal: Principal, source: str, behaviours: set[str]) -> None:
        authorised = frozenset(registry.authorised_behaviours(conn, source))
        decide(
            principal,
            Action.RECORDS_SUBMIT,
            agency=source,
            behaviours=frozenset(behaviours),
            authorised=authorised,
        )

    def import_records(
        self,
        principal: Principal,
        name: str,
        data: bytes,
        source: str,
        progress: imports.Progress | None = None,
    ) -> ImportResult:
        """A whole file of a source's records, or nothing; a source may send only its own behaviours."""
        gate(principal, Action.RECORDS_SUBMIT)
        with self._writing(principal, Action.RECORDS_SUBMIT, None) as (conn, act):
            act.detail.update(file=name, source=source)
            codes: set[str] = set()
            if scope_for(principal, Action.RECORDS_SUBMIT) is Scope.AUTHORISED_BEHAVIOURS:
                # Only a source's own submissions are limited by behaviour, so only then is the
                # file read twice (once here for its codes, once by the import itself).
                rows, _ = imports.read_rows(name, data, imports.RECORD_COLUMNS, imports.RECORD_OPTIONAL)
                codes = {r.values.get("behaviour", "") for r in rows}
            self._submission_scope(conn, principal, source, codes)
            result = imports.import_records(
                conn, name, data, source=source, now=self.clock.now(), actor=principal.name, progress=progress
            )
            act.detail.update(imported=result.imported, already_present=result.already_present)
            return result

    def submit_record(self, principal: Principal, source: str, values: dict[str, str]) -> tuple[History, bool]:
        """One record, validated exactly as a file line is; returns it and whether it was new."""
        line = {k: v for k, v in values.items() if v is not None}
        data = outputs_json_line(line)
        gate(principal, Action.RECORDS_SUBMIT)
        with self._writing(principal, Action.RECORDS_SUBMIT, None) as (conn, act):
            act.subject = line.get("subject_id")
            self._submission_scope(conn, principal, source, {line.get("behaviour", "")})
            result = imports.import_records(
                conn, "record.jsonl", data, source=source, now=self.clock.now(), actor=principal.name
            )
            found = ledger.history(conn, f"{source}:{line['document_ref']}")
            act.detail.update(record=found.record.id, source=source, behaviour=line.get("behaviour"))
            return found, result.imported == 1

    def record(self, principal: Principal, ref: str, *, purpose: str | None = None) -> History:
        gate(principal, Action.RECORDS_READ)
        with self._reading(principal, Action.RECORDS_READ, purpose) as (conn, act):
            found = _history(conn, ref)
            act.subject = found.record.subject_id
            act.detail.update(record=found.record.id)
            decide(principal, Action.RECORDS_READ, subject=found.record.subject_id)
            return found

    def _record_event(
        self,
        principal: Principal,
        action: Action,
        ref: str,
        perform: Callable[[Connection], int],
    ) -> int:
        gate(principal, action)
        with self._writing(principal, action, None) as (conn, act):
            found = _history(conn, ref)
            act.subject = found.record.subject_id
            act.detail.update(record=found.record.id)
            decide(principal, action, subject=found.record.subject_id)
            event_id = perform(conn)
            act.detail.update(event=event_id)
            return event_id

    def correct(
        self,
        principal: Principal,
        ref: str,
        *,
        reason: str,
        behaviour: str | None = None,
        occurred_on: dt.date | None = None,
        amount: Decimal | None = None,
    ) -> int:
        return self._record_event(
            principal,
            Action.RECORDS_CORRECT,
            ref,
            lambda conn: ledger.correct(
                conn,
                ref,
                now=self.clock.now(),
                actor=principal.name,
                reason=reason,
                behaviour=behaviour,
                occurred_on=occurred_on,
                amount=amount,
            ),
        )

    def revoke(self, principal: Principal, ref: str, *, reason: str) -> int:
        return self._record_event(
            principal,
            Action.RECORDS_REVOKE,
            ref,
            lambda conn: ledger.revoke(conn, ref, now=self.clock.now(), actor=principal.name, reason=reason),
        )

    def end(self, principal: Principal, ref: str, *, on: dt.date, reason: str, note: str | None = None) -> int:
        return self._record_event(
            principal,
            Action.RECORDS_END,
            ref,
            lambda conn: ledger.end(
                conn, ref, on=on, reason=reason, now=self.clock.now(), actor=principal.name, note=note
            ),
        )

    def decline(self, principal: Principal, ref: str) -> int:
        # Declining a positive record is the subject's own choice about its data: consent's rule.
        return self._record_event(
            principal,
            Action.CONSENT_CHANGE,
            ref,
            lambda conn: ledger.decline(conn, ref, now=self.clock.now(), actor=principal.name),
        )

    # --- import jobs (HTTP) -----------------------------------------------------------------------

    def submit_import_job(self, principal: Principal, kind: str, name: str, data: bytes, source: str | None) -> int:
        """Run an import and keep its outcome as a job whose status and line-level problems can be read.

        Imports are whole-file transactions and fast (tens of thousands of lines a second), so the
        job runs before the request returns; the job row is what lets a source read its errors later.
        """
        if kind not in {"records", "subjects"}:
            raise BadInput("kind: use records or subjects")
        if kind == "records" and not source:
            raise BadInput("source: a records import names its source agency")
        status, message, problems = "succeeded", None, []
        result: ImportResult | None = None
        try:
            if kind == "records":
                assert source is not None
                result = self.import_records(principal, name, data, source)
            else:
                result = self.import_subjects(principal, name, data)
        except (Forbidden, Unauthenticated):
            raise
        except BadInput as exc:
            status, message, problems = "failed", exc.message, list(exc.problems)
        with self.store.write() as conn:
            inserted = conn.execute(
                t.import_jobs.insert()
                .values(
                    kind=kind,
                    source_id=source if kind == "records" else None,
                    file_name=name,
                    submitted_at=to_storage(self.clock.now()),
                    submitted_by=principal.audit_actor,
                    status=status,
                    imported=result.imported if result else None,
                    already_present=result.already_present if result else None,
                    message=message,
                    problems=outputs_problems(problems),
                )
                .returning(t.import_jobs.c.id)
            )
            return int(inserted.scalar_one())

    def import_job(self, principal: Principal, job_id: int) -> dict[str, Any]:
        gate(principal, Action.IMPORTS_READ)
        with self.store.read() as conn:
            row = conn.execute(select(t.import_jobs).where(t.import_jobs.c.id == job_id)).first()
        if row is None:
            decide(principal, Action.IMPORTS_READ)
            raise NotFound(f"import {job_id} does not exist")
        decide(principal, Action.IMPORTS_READ, agency=row.source_id)
        return {
            "id": row.id,
            "kind": row.kind,
            "source": row.source_id,
            "file_name": row.file_name,
            "submitted_at": outputs.plain(row.submitted_at.replace(tzinfo=dt.UTC)),
            "submitted_by": row.submitted_by,
            "status": row.status,
            "imported": row.imported,
            "already_present": row.already_present,
            "message": row.message,
            "problems": orjson.loads(row.problems) if row.problems else [],
        }

    # --- questions ---------------------------------------------------------------------------------

    def states(
        self,
        principal: Principal,
        subject_id: str,
        *,
        scheme: str | None = None,
        as_of: dt.date | None = None,
        known_at: dt.datetime | None = None,
        purpose: str | None = None,
    ) -> list[State | NoState]:
        """Score, grade, explanation, lists and measures: the subject's own, or the office's to read."""
        day, known = self._day(as_of), self._known(known_at)
        with self._reading(principal, Action.STATE_READ, purpose) as (conn, act):
            act.subject = subject_id
            act.detail.update(scheme=scheme, as_of=day.isoformat())
            decide(principal, Action.STATE_READ, subject=subject_id)
            reader = StateReader.open(conn, subject_id, known)
            wanted = [scheme] if scheme else registry.scheme_ids(conn)
            return [reader.state(s, day) for s in wanted]

    def check(
        self,
        principal: Principal,
        subject_id: str,
        measure: str,
        *,
        as_of: dt.date | None = None,
        known_at: dt.datetime | None = None,
        purpose: str | None = None,
        defer: list[audit.Entry] | None = None,
    ) -> dict[str, Any]:
        """Does the measure apply? An enforcer hears yes/no, since, legal basis and how to contest.

        Who asked about whom is always logged, with the answer: a subject can see every check made
        on it. With `defer`, the entry is handed back for the caller to append (the API's batched
        appends), and the caller must not answer before it is stored. Answers as known now are
        cached against the ledger's fingerprint (see `AnswerCache`); authorisation and the audit
        entry happen on every call, cached or not.
        """
        gate(principal, Action.CHECKS_ASK)
        now = self.clock.now()
        day = as_of or local_day(now)
        known = known_at or now
        act = Act(principal, Action.CHECKS_ASK, purpose, subject_id, {"measure": measure, "as_of": day.isoformat()})
        try:
            scheme_id, measure_id = checks.parse_measure(measure)
            key = (subject_id, measure, day)
            tag = self.answers.tag() if known_at is None and self.answers.enabled else None
            data = self.answers.get(key, tag)
            if data is None:
                with self.store.read() as conn:
                    versions = registry.scheme_versions(conn, scheme_id)
                    version = version_in_force(versions, day, known)
                    found = version.scheme.measure_by_id.get(measure_id) if version is not None else None
                    # Authorise before computing: a caller who may not ask learns nothing, not even
                    # whether the subject exists.
                    decide(
                        principal,
                        Action.CHECKS_ASK,
                        subject=subject_id,
                        agency=found.implemented_by if found is not None else None,
                    )
                    data = outputs.check(checks.check(conn, subject_id, measure, day, known, versions))
                self.answers.put(key, tag, data)
            scope = decide(principal, Action.CHECKS_ASK, subject=subject_id, agency=data["implemented_by"])
        except XinyongError as exc:
            self._log_failure(act, now, exc)
            raise
        act.detail["applies"] = data["applies"]
        entry = act.entry(now, "done")
        if defer is not None:
            defer.append(entry)
        else:
            self.log([entry])
        return {k: data[k] for k in ENFORCER_FIELDS} if scope is Scope.OWN_AGENCY else dict(data)

    def report(
        self,
        principal: Principal,
        subject_id: str,
        *,
        as_of: dt.date | None = None,
        known_at: dt.datetime | None = None,
        purpose: str | None = None,
        action: Action = Action.REPORTS_READ,
    ) -> dict[str, Any]:
        day, known = self._day(as_of), self._known(known_at)
        with self._reading(principal, action, purpose) as (conn, act):
            act.subject = subject_id
            scope = self._subject_scope(conn, principal, action, subject_id)
            act.audited = scope is not Scope.PUBLIC
            audience: reports.Audience = "public" if scope is Scope.PUBLIC else "subject"
            return reports.build_report(conn, subject_id, as_of=day, known_at=known, audience=audience)

    def list_members(
        self,
        principal: Principal,
        scheme_id: str,
        list_id: str,
        *,
        as_of: dt.date | None = None,
    ) -> dict[str, Any]:
        """Who is on a list: public lists (every behaviour behind them public-class) with persons masked
        for everyone; any list, unmasked, for the office."""
        day, known = self._day(as_of), self.clock.now()
        scope = decide(principal, Action.LISTS_READ)
        with self._reading(principal, Action.LISTS_READ, None) as (conn, act):
            act.audited = scope is not Scope.PUBLIC
            act.detail.update(scheme=scheme_id, list=list_id, as_of=day.isoformat())
            version = version_in_force(registry.scheme_versions(conn, scheme_id), day, known)
            if version is None:
                raise NotFound(f"scheme {scheme_id} is not loaded or not in force on {day}")
            item = version.scheme.list_by_id.get(list_id)
            if item is None:
                raise NotFound(f"scheme {scheme_id} has no list {list_id}")
            if scope is Scope.PUBLIC and not reports._public_list(version.scheme, list_id):
                raise refusal(principal, f"list {scheme_id}/{list_id} draws on non-public records; it is not published")
            members = []
            for reader in population(conn, day, known):
                result = reader.state(scheme_id, day)
                if isinstance(result, State) and list_id in result.lists:
                    subject = reader.subject
                    shown = mask(subject.id, subject.kind) if scope is Scope.PUBLIC else subject.id
                    members.append({"subject": shown, "kind": subject.kind, "name": _public_name(subject, scope)})
            return {
                "scheme": scheme_id,
                "scheme_version": version.version,
                "list": list_id,
                "kind": item.kind,
                "title": item.title,
                "as_of": day.isoformat(),
                "members": members,
            }

    def aggregates(
        self,
        principal: Principal,
        scheme_id: str,
        *,
        as_of: dt.date | None = None,
        by: str | None = None,
    ) -> dict[str, Any]:
        """Subjects per grade (optionally per division too) and per list; cells under MIN_CELL suppressed."""
        if by not in (None, "division", "kind"):
            raise BadInput("by: use division or kind")
        day, known = self._day(as_of), self.clock.now()
        decide(principal, Action.AGGREGATES_READ)
        with self._reading(principal, Action.AGGREGATES_READ, None) as (conn, act):
            act.audited = False
            if not registry.scheme_versions(conn, scheme_id):
                raise NotFound(f"scheme {scheme_id} is not loaded")
            grades: Counter[tuple[str, str]] = Counter()
            lists: Counter[str] = Counter()
            for reader in population(conn, day, known):
                result = reader.state(scheme_id, day)
                if not isinstance(result, State):
                    continue
                group = getattr(reader.subject, by) or "" if by else ""
                grades[(group, result.grade or "")] += 1
                lists.update(result.lists)

        def cell(n: int) -> int | None:
            return n if n >= MIN_CELL else None

        return {
            "scheme": scheme_id,
            "as_of": day.isoformat(),
            "by": by,
            "min_cell": MIN_CELL,
            "grades": [
                {"group": group if by else None, "grade": grade or None, "subjects": cell(n)}
                for (group, grade), n in sorted(grades.items())
            ],
            "lists": [{"list": name, "subjects": cell(n)} for name, n in sorted(lists.items())],
        }

    # --- due process -------------------------------------------------------------------------------

    def file_objection(
        self, principal: Principal, ref: str, *, reason: str, filed_as: str | None = None
    ) -> ObjectionStatus:
        """File an objection; `filed_as` is "subject" or "officer" (an officer filing on the
        subject's behalf), by default what the caller's role is."""
        gate(principal, Action.OBJECTIONS_FILE)
        with self._writing(principal, Action.OBJECTIONS_FILE, None) as (conn, act):
            found = _history(conn, ref)
            act.subject = found.record.subject_id
            act.detail.update(record=found.record.id)
            decide(principal, Action.OBJECTIONS_FILE, subject=found.record.subject_id)
            if filed_as is None:
                filed_as = "subject" if principal.role is Role.SUBJECT else "officer"
            status = objections.file(
                conn, ref, reason=reason, now=self.clock.now(), actor=principal.name, filed_as=filed_as
            )
            act.detail.update(objection=status.id)
            return status

    def decide_objection(
        self,
        principal: Principal,
        objection_id: int,
        *,
        outcome: str,
        reason: str,
        behaviour: str | None = None,
        occurred_on: dt.date | None = None,
        amount: Decimal | None = None,
    ) -> ObjectionStatus:
        gate(principal, Action.OBJECTIONS_DECIDE)
        with self._writing(principal, Action.OBJECTIONS_DECIDE, None) as (conn, act):
            decide(principal, Action.OBJECTIONS_DECIDE)
            status = objections.get(conn, objection_id)
            act.subject = status.subject_id
            act.detail.update(objection=objection_id, outcome=outcome)
            return objections.decide(
                conn,
                objection_id,
                outcome=outcome,
                reason=reason,
                now=self.clock.now(),
                actor=principal.name,
                behaviour=behaviour,
                occurred_on=occurred_on,
                amount=amount,
            )

    def objections(
        self, principal: Principal, *, subject_id: str | None = None, undecided: bool = False
    ) -> list[ObjectionStatus]:
        if subject_id is None and principal.role is Role.SUBJECT:
            subject_id = principal.subject  # a subject's list is its own
        with self._reading(principal, Action.OBJECTIONS_READ, None) as (conn, act):
            act.subject = subject_id
            decide(principal, Action.OBJECTIONS_READ, subject=subject_id)
            return objections.listing(conn, subject_id=subject_id, undecided_only=undecided)

    def objection(self, principal: Principal, objection_id: int) -> ObjectionStatus:
        gate(principal, Action.OBJECTIONS_READ)
        with self._reading(principal, Action.OBJECTIONS_READ, None) as (conn, act):
            status = objections.get(conn, objection_id)
            act.subject = status.subject_id
            decide(principal, Action.OBJECTIONS_READ, subject=status.subject_id)
            return status

    def overdue(self, principal: Principal) -> list[ObjectionStatus]:
        with self._reading(principal, Action.OBJECTIONS_READ, None) as (conn, act):
            act.audited = False
            decide(principal, Action.OBJECTIONS_READ)
            return objections.overdue(conn, local_day(self.clock.now()))

    # --- tokens and the audit log ----------------------------------------------------------------

    def create_token(
        self,
        principal: Principal,
        role: Role,
        *,
        agency: str | None = None,
        subject: str | None = None,
        label: str | None = None,
        expires_at: dt.datetime | None = None,
    ) -> tuple[str, tokens.TokenInfo]:
        with self._writing(principal, Action.TOKENS_MANAGE, None) as (conn, act):
            decide(principal, Action.TOKENS_MANAGE)
            bearer, info = tokens.create(
                conn,
                role,
                now=self.clock.now(),
                actor=principal.audit_actor,
                agency=agency,
                subject=subject,
                label=label,
                expires_at=expires_at,
            )
            act.detail.update(token=info.id, role=role.value, agency=agency, subject=subject, op="create")
            return bearer, info

    def revoke_token(self, principal: Principal, token_id: str) -> tokens.TokenInfo:
        with self._writing(principal, Action.TOKENS_MANAGE, None) as (conn, act):
            decide(principal, Action.TOKENS_MANAGE)
            act.detail.update(token=token_id, op="revoke")
            return tokens.revoke(conn, token_id, now=self.clock.now())

    def tokens(self, principal: Principal) -> list[tokens.TokenInfo]:
        decide(principal, Action.TOKENS_MANAGE)
        with self.store.read() as conn:
            return tokens.listing(conn)

    def authenticate(self, bearer: str) -> Principal:
        with self.store.read() as conn:
            return tokens.authenticate(conn, bearer, self.clock.now()).principal()

    def verify_audit(self, principal: Principal) -> audit.Verification:
        decide(principal, Action.AUDIT_READ)
        with self.store.read() as conn:
            return audit.verify(conn)

    def compact_audit(self, principal: Principal) -> audit.Compaction:
        """Merge the who-looked index's newest runs (`audit.compact`); the act is logged like any write."""
        with self._writing(principal, Action.AUDIT_COMPACT, None) as (conn, act):
            decide(principal, Action.AUDIT_COMPACT)
            result = audit.compact(conn)
            act.detail.update(op="compact", runs_before=result.runs_before, runs_after=result.runs_after)
            return result

    def export_audit(
        self, principal: Principal, out: Any, *, first: dt.date | None = None, last: dt.date | None = None
    ) -> int:
        with self._reading(principal, Action.AUDIT_READ, "audit export") as (conn, act):
            decide(principal, Action.AUDIT_READ)
            count = audit.export_csv(conn, out, first=first, last=last)
            act.detail.update(op="export", first=str(first), last=str(last), entries=count)
            return count

    def who_looked(self, principal: Principal, subject_id: str) -> list[dict[str, Any]]:
        with self._reading(principal, Action.AUDIT_WHO_LOOKED, "who looked") as (conn, act):
            act.subject = subject_id
            decide(principal, Action.AUDIT_WHO_LOOKED, subject=subject_id)
            return audit.who_looked(conn, subject_id)

    def ready(self) -> dict[str, Any]:
        """Readiness: the store answers and is migrated to the newest revision."""
        from alembic.config import Config
        from alembic.runtime.migration import MigrationContext
        from alembic.script import ScriptDirectory

        from xinyong.storage.store import MIGRATIONS

        config = Config()
        config.set_main_option("script_location", str(MIGRATIONS))
        heads = set(ScriptDirectory.from_config(config).get_heads())
        with self.store.engine.connect() as conn:
            current = set(MigrationContext.configure(conn).get_current_heads())
            subjects = conn.execute(select(func.count()).select_from(t.subjects)).scalar_one()
        return {
            "migrated": current == heads,
            "revision": sorted(current),
            "expected": sorted(heads),
            "subjects": subjects,
        }

    # --- the web pages (issue 5): inbox, repairs, passwords, dashboards --------------------------

    def notices_inbox(self, principal: Principal, subject_id: str, *, lang: str | None = None) -> list[dict[str, Any]]:
        """A subject's notices, newest first, with their text in `lang`: the subject's own or the office's."""
        gate(principal, Action.RECORDS_READ)
        with self._reading(principal, Action.RECORDS_READ, "notices inbox") as (conn, act):
            act.subject = subject_id
            scope = decide(principal, Action.RECORDS_READ, subject=subject_id)
            if scope is Scope.PUBLIC:  # pragma: no cover - no public rule reads records
                raise refusal(principal, "notices are the subject's own")
            found = notices.inbox(conn, subject_id)
            act.detail.update(notices=len(found))
            return [notices.to_dict(n, lang or "zh_Hans") for n in found]

    def mark_notices_read(self, principal: Principal, subject_id: str) -> int:
        """The subject has read its notices in the portal (each notice keeps its first reading)."""
        gate(principal, Action.RECORDS_READ)
        with self._writing(principal, Action.RECORDS_READ, "notices read") as (conn, act):
            act.subject = subject_id
            decide(principal, Action.RECORDS_READ, subject=subject_id)
            unread = notices.inbox(conn, subject_id, unread_only=True)
            for notice in unread:
                notices.mark_read(conn, notice.id, self.clock.now())
            act.detail.update(op="notices read", notices=len(unread))
            return len(unread)

    def apply_repair(self, principal: Principal, ref: str, *, evidence: str) -> RepairStatus:
        """Apply to end a record's effect early; a subject for itself, an officer on its behalf."""
        gate(principal, Action.OBJECTIONS_FILE)
        with self._writing(principal, Action.OBJECTIONS_FILE, "repair application") as (conn, act):
            found = _history(conn, ref)
            act.subject = found.record.subject_id
            act.detail.update(record=found.record.id, op="repair")
            decide(principal, Action.OBJECTIONS_FILE, subject=found.record.subject_id)
            status = repairs.apply(
                conn,
                ref,
                evidence=evidence,
                now=self.clock.now(),
                actor=principal.name,
                filed_as="subject" if principal.role is Role.SUBJECT else "officer",
            )
            act.detail.update(repair=status.id)
            return status

    def decide_repair(self, principal: Principal, repair_id: int, *, outcome: str, reason: str) -> RepairStatus:
        gate(principal, Action.OBJECTIONS_DECIDE)
        with self._writing(principal, Action.OBJECTIONS_DECIDE, "repair decision") as (conn, act):
            decide(principal, Action.OBJECTIONS_DECIDE)
            status = repairs.get(conn, repair_id)
            act.subject = status.subject_id
            act.detail.update(repair=repair_id, outcome=outcome, op="repair")
            return repairs.decide(
                conn, repair_id, outcome=outcome, reason=reason, now=self.clock.now(), actor=principal.name
            )

    def repair_applications(
        self, principal: Principal, *, subject_id: str | None = None, undecided: bool = False
    ) -> list[RepairStatus]:
        if subject_id is None and principal.role is Role.SUBJECT:
            subject_id = principal.subject
        with self._reading(principal, Action.OBJECTIONS_READ, "repairs") as (conn, act):
            act.subject = subject_id
            decide(principal, Action.OBJECTIONS_READ, subject=subject_id)
            return repairs.listing(conn, subject_id=subject_id, undecided_only=undecided)

    def import_jobs(self, principal: Principal, *, limit: int = 50) -> list[dict[str, Any]]:
        """The newest import jobs with their outcome (the office's view of every source's imports)."""
        gate(principal, Action.IMPORTS_READ)
        if scope_for(principal, Action.IMPORTS_READ) is not Scope.ANY:
            raise refusal(principal, "only the credit office lists every import")
        with self.store.read() as conn:
            ids = conn.execute(select(t.import_jobs.c.id).order_by(t.import_jobs.c.id.desc()).limit(limit)).scalars()
            wanted = list(ids)
        return [self.import_job(principal, int(job)) for job in wanted]

    def records_per_source(self, principal: Principal) -> list[dict[str, Any]]:
        """Records per source and month of recording (counts only; cells under MIN_CELL suppressed
        for an analyst)."""
        scope = decide(principal, Action.AGGREGATES_READ)
        with self.store.read() as conn:
            month = func.substr(func.cast(t.records.c.recorded_at, String), 1, 7)
            rows = conn.execute(
                select(t.records.c.source_id, month.label("month"), func.count())
                .group_by(t.records.c.source_id, month)
                .order_by(month, t.records.c.source_id)
            ).all()
        return [
            {"source": row[0], "month": row[1], "records": row[2] if scope is Scope.ANY or row[2] >= MIN_CELL else None}
            for row in rows
        ]

    def population_counts(self, principal: Principal, days: Sequence[dt.date]) -> dict[str, Any]:
        """Subjects per grade per scheme on the last of `days`, and every list's size on each day, as
        known now: one pass over the population per day, for all schemes at once.

        A pass costs about half a millisecond per subject, so the answer is kept against the
        ledger's fingerprint (as check answers are) and computed again only after a change.
        """
        scope = decide(principal, Action.AGGREGATES_READ)
        ordered = sorted(set(days))
        tag = self.answers.tag() if self.answers.enabled else None
        key = ("", "population_counts", ordered[-1])
        cached = self.answers.get(key, tag)
        if cached is None or cached.get("days") != [d.isoformat() for d in ordered]:
            known = self.clock.now()
            grades: Counter[tuple[str, str]] = Counter()
            sizes: list[dict[str, Any]] = []
            with self.store.read() as conn:
                scheme_ids = registry.scheme_ids(conn)
                for day in ordered:
                    counted: Counter[tuple[str, str]] = Counter()
                    for reader in population(conn, day, known):
                        for scheme_id in scheme_ids:
                            result = reader.state(scheme_id, day)
                            if not isinstance(result, State):
                                continue
                            counted.update((scheme_id, x) for x in result.lists)
                            if day == ordered[-1]:
                                grades[(scheme_id, result.grade or "")] += 1
                    sizes.extend(
                        {"day": day.isoformat(), "scheme": k[0], "list": k[1], "subjects": n}
                        for k, n in sorted(counted.items())
                    )
            cached = {
                "days": [d.isoformat() for d in ordered],
                "grades": [{"scheme": k[0], "grade": k[1] or None, "subjects": n} for k, n in sorted(grades.items())],
                "lists": sizes,
            }
            self.answers.put(key, tag, cached)
        if scope is Scope.ANY:
            return cached
        small = {"subjects": None}
        return {
            **cached,
            "grades": [g if g["subjects"] >= MIN_CELL else {**g, **small} for g in cached["grades"]],
            "lists": [x if x["subjects"] >= MIN_CELL else {**x, **small} for x in cached["lists"]],
        }

    def set_password(
        self,
        principal: Principal,
        login: str,
        password: str,
        role: Role,
        *,
        agency: str | None = None,
        subject: str | None = None,
        label: str | None = None,
    ) -> TokenInfo:
        """Give a log-in a password for the web pages (a credential beside the tokens: see passwords.py)."""
        with self._writing(principal, Action.TOKENS_MANAGE, None) as (_conn, act):
            decide(principal, Action.TOKENS_MANAGE)
            info = passwords.set_password(
                _conn,
                login,
                password,
                role,
                now=self.clock.now(),
                actor=principal.audit_actor,
                agency=agency,
                subject=subject,
                label=label,
            )
            act.detail.update(token=info.id, role=role.value, agency=agency, subject=subject, op="password")
            return info

    def log_in(self, login: str, password: str) -> TokenInfo:
        """The credential a log-in name and password stand for (Unauthenticated otherwise)."""
        with self.store.read() as conn:
            return passwords.authenticate(conn, login, password, self.clock.now())

    def credential(self, token_id: str) -> TokenInfo:
        """A token or password by id, if still active (a web session holds only the id)."""
        with self.store.read() as conn:
            try:
                info = tokens.get(conn, token_id)
            except NotFound:
                raise Unauthenticated("the session's credential no longer exists") from None
        status = info.status(self.clock.now())
        if status != "active":
            raise Unauthenticated(f"the session's credential is {status}")
        return info


def _history(conn: Connection, ref: str) -> History:
    """A record by id or SOURCE:DOCUMENT_REF; an id too long for any store is simply not found."""
    text = str(ref).strip()
    if text.isdigit() and len(text) > 18:
        raise NotFound(f"record {text[:24]}… does not exist")
    return ledger.history(conn, text)


def _public_name(subject: Subject, scope: Scope) -> str | None:
    # Persons' names stay out of public lists; organisations' names are public registry data.
    return subject.name if scope is not Scope.PUBLIC or subject.kind == "organisation" else None


def outputs_json_line(values: dict[str, str]) -> bytes:
    return orjson.dumps(values) + b"\n"


def outputs_problems(problems: list[Problem]) -> str | None:
    if not problems:
        return None
    return orjson.dumps(
        [{"where": p.where, "why": p.why, "line": p.line, "column": p.column} for p in problems]
    ).decode()
