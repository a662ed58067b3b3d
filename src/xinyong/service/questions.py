"""Questions about one subject or one list: state, an enforcer's check, the report, a list's members."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

from sqlalchemy import Connection

from xinyong.derived import checks
from xinyong.derived.state import NoState, StateReader, population
from xinyong.errors import NotFound, Unavailable, XinyongError, did_you_mean
from xinyong.ledger import registry
from xinyong.ledger.registry import Subject
from xinyong.presentation import outputs
from xinyong.rules.clock import local_day
from xinyong.rules.engine import State
from xinyong.rules.identifiers import mask
from xinyong.rules.schemes import version_in_force
from xinyong.security import audit
from xinyong.security.access import (
    Action,
    Forbidden,
    Principal,
    Role,
    Scope,
    Unauthenticated,
    decide,
    gate,
    refusal,
)
from xinyong.service.answers import AnswerCache
from xinyong.service.door import Act, Area, Door

# What an enforcer learns from a check, and nothing else (DESIGN.md safeguard 6).
ENFORCER_FIELDS = ("subject", "measure", "as_of", "applies", "since", "legal_basis", "contest", "contest_link")


class Questions(Area):
    def __init__(self, door: Door, answers: AnswerCache) -> None:
        super().__init__(door)
        self.answers = answers

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
        day, known = self.door.day(as_of), self.door.known(known_at)
        with self.door.reading(principal, Action.STATE_READ, purpose) as (conn, act):
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
        key = (subject_id, measure, day)
        tag = self.answers.tag() if known_at is None and self.answers.enabled else None
        data = self.answers.get(key, tag)
        if data is None:
            [(found, scope)] = self._checks(principal, [subject_id], measure, day, known_at, purpose, defer, now)
            if isinstance(found, XinyongError):
                raise found
            self.answers.put(key, tag, found)
            return _shown(found, scope)
        act = Act(principal, Action.CHECKS_ASK, purpose, subject_id, {"measure": measure, "as_of": day.isoformat()})
        try:
            scope = decide(principal, Action.CHECKS_ASK, subject=subject_id, agency=data["implemented_by"])
        except XinyongError as exc:
            self.door.log_failure(act, now, exc)
            raise
        act.detail["applies"] = data["applies"]
        self._log([act.entry(now, "done")], defer)
        return _shown(data, scope)

    def check_many(
        self,
        principal: Principal,
        subject_ids: Sequence[str],
        measure: str,
        *,
        as_of: dt.date | None = None,
        known_at: dt.datetime | None = None,
        purpose: str | None = None,
        defer: list[audit.Entry] | None = None,
    ) -> list[dict[str, Any] | XinyongError]:
        """One measure asked about many subjects at once (a flight manifest): each answer as a single
        check would give it — authorised, logged with its own entry — in the order asked; a refusal
        or an unknown id is that subject's answer, an error of the question itself is raised, and so
        is a refusal of every subject (another agency's measure: the caller may not ask it at all)."""
        gate(principal, Action.CHECKS_ASK)
        now = self.clock.now()
        day = as_of or local_day(now)
        answered = self._checks(principal, subject_ids, measure, day, known_at, purpose, defer, now)
        refusals = [data for data, _ in answered if isinstance(data, Forbidden | Unauthenticated)]
        if answered and len(refusals) == len(answered):
            raise refusals[0]  # the caller may not ask this at all (each refusal is logged)
        return [data if isinstance(data, XinyongError) else _shown(data, scope) for data, scope in answered]

    def _checks(
        self,
        principal: Principal,
        subject_ids: Sequence[str],
        measure: str,
        day: dt.date,
        known_at: dt.datetime | None,
        purpose: str | None,
        defer: list[audit.Entry] | None,
        now: dt.datetime,
    ) -> list[tuple[dict[str, Any] | XinyongError, Scope]]:
        """The answers in full with the scope each was authorised under, one read for all, each
        subject's entry logged (or deferred)."""
        known = known_at or now
        detail = {"measure": measure, "as_of": day.isoformat()}
        acts = [Act(principal, Action.CHECKS_ASK, purpose, s, dict(detail)) for s in subject_ids]
        results: list[Scope | XinyongError] = []
        try:
            scheme_id, measure_id = checks.parse_measure(measure)
            with self.store.read() as conn:
                versions = registry.scheme_versions(conn, scheme_id)
                version = version_in_force(versions, day, known)
                found = version.scheme.measure_by_id.get(measure_id) if version is not None else None
                agency = found.implemented_by if found is not None else None
                # Authorise before computing: a caller who may not ask learns nothing, not even
                # whether the subject exists.
                for subject_id in subject_ids:
                    try:
                        results.append(decide(principal, Action.CHECKS_ASK, subject=subject_id, agency=agency))
                    except XinyongError as exc:
                        results.append(exc)
                allowed = [s for s, r in zip(subject_ids, results, strict=True) if not isinstance(r, XinyongError)]
                computed = iter(checks.check_many(conn, allowed, measure, day, known, versions) if allowed else [])
        except XinyongError as exc:
            if principal.role is not Role.PUBLIC and not isinstance(exc, Unavailable):
                self._log([act.entry(now, exc.code, exc.message) for act in acts], None)
            raise
        entries, refused = [], []
        answered: list[tuple[dict[str, Any] | XinyongError, Scope]] = []
        for act, authorised in zip(acts, results, strict=True):
            result: dict[str, Any] | XinyongError
            if isinstance(authorised, XinyongError):
                scope, result = Scope.ANY, authorised  # the scope of a refusal is never read
            else:
                scope, answer = authorised, next(computed)
                result = answer if isinstance(answer, XinyongError) else outputs.check(answer)
            if isinstance(result, XinyongError):
                if principal.role is not Role.PUBLIC:
                    refused.append(act.entry(now, result.code, result.message))
            else:
                act.detail["applies"] = result["applies"]
                entries.append(act.entry(now, "done"))
            answered.append((result, scope))
        # A refusal's entry is written now, whatever the caller defers: a caller that raises it
        # never gets to append what it deferred.
        self._log(refused, None)
        self._log(entries, defer)
        return answered

    def _log(self, entries: list[audit.Entry], defer: list[audit.Entry] | None) -> None:
        if defer is not None:
            defer.extend(entries)
        elif entries:
            self.door.log(entries)

    def population(
        self, principal: Principal, *, as_of: dt.date | None = None, known_at: dt.datetime | None = None
    ) -> list[tuple[Subject, dict[str, State | NoState]]]:
        """Every subject with its state under every scheme, for the office: the online path over a
        city, read as one audited act (the batch engines answer the same question for a country)."""
        day, known = self.door.day(as_of), self.door.known(known_at)
        decide(principal, Action.STATE_BATCH)
        with self.door.reading(principal, Action.STATE_BATCH, "population") as (conn, act):
            scheme_ids = registry.scheme_ids(conn)
            found = [
                (reader.subject, {s: reader.state(s, day) for s in scheme_ids})
                for reader in population(conn, day, known)
            ]
            act.detail.update(as_of=day.isoformat(), subjects=len(found))
            return found

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
        """The subject's credit report as data: in full for the subject and the office, the public
        view (organisations only) for everyone else."""
        day, known = self.door.day(as_of), self.door.known(known_at)
        with self.door.reading(principal, action, purpose) as (conn, act):
            act.subject = subject_id
            scope = subject_scope(conn, principal, action, subject_id)
            act.audited = scope is not Scope.PUBLIC
            from xinyong.presentation import reports  # the report's parts: due process, repairs, …

            audience: reports.Audience = "public" if scope is Scope.PUBLIC else "subject"
            return reports.build_report(conn, subject_id, as_of=day, known_at=known, audience=audience)

    def profile(
        self, principal: Principal, subject_id: str, *, as_of: dt.date | None = None, purpose: str | None = None
    ) -> dict[str, Any]:
        """Who the subject is and where it stands: the public view for the public, in full otherwise."""
        data = self.report(principal, subject_id, as_of=as_of, purpose=purpose, action=Action.SUBJECTS_READ)
        return {
            k: data[k]
            for k in ("audience", "subject", "as_of", "schemes", "how_to_contest", "contest_link")
            if k in data
        }

    def list_members(
        self, principal: Principal, scheme_id: str, list_id: str, *, as_of: dt.date | None = None
    ) -> dict[str, Any]:
        """Who is on a list: public lists (every behaviour behind them public-class) with persons masked
        for everyone; any list, unmasked, for the office."""
        day, known = self.door.day(as_of), self.clock.now()
        scope = decide(principal, Action.LISTS_READ)
        with self.door.reading(principal, Action.LISTS_READ) as (conn, act):
            act.audited = scope is not Scope.PUBLIC
            act.detail.update(scheme=scheme_id, list=list_id, as_of=day.isoformat())
            version = version_in_force(registry.scheme_versions(conn, scheme_id), day, known)
            if version is None:
                names = registry.scheme_ids(conn)
                raise NotFound(
                    f"scheme {scheme_id} is not loaded or not in force on {day}{did_you_mean(scheme_id, names)}"
                )
            item = version.scheme.list_by_id.get(list_id)
            if item is None:
                names = list(version.scheme.list_by_id)
                raise NotFound(f"scheme {scheme_id} has no list {list_id}{did_you_mean(list_id, names)}")
            if scope is Scope.PUBLIC and not version.scheme.list_is_public(list_id):
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
                "title_zh": item.title_zh,
                "scheme_title": version.scheme.title,
                "scheme_title_zh": version.scheme.title_zh,
                "as_of": day.isoformat(),
                "members": members,
            }


def subject_scope(conn: Connection, principal: Principal, action: Action, subject_id: str) -> Scope:
    """The scope for an act on a subject; under the public scope only organisations exist."""
    scope = decide(principal, action, subject=subject_id)
    if scope is Scope.PUBLIC:
        found = registry.existing_subjects(conn, [subject_id]).get(subject_id)
        if found is None or found.kind != "organisation":
            # The same answer for an unknown id and a person's: the public learns nothing about persons.
            raise NotFound(f"there is no public profile for {mask(subject_id, 'person')}")
    return scope


def _public_name(subject: Subject, scope: Scope) -> str | None:
    # Persons' names stay out of public lists; organisations' names are public registry data.
    return subject.name if scope is not Scope.PUBLIC or subject.kind == "organisation" else None


def _shown(data: dict[str, Any], scope: Scope) -> dict[str, Any]:
    """What the caller may hear of an answer, under the scope it was authorised with: an enforcer,
    only the fields it needs."""
    return {k: data[k] for k in ENFORCER_FIELDS} if scope is Scope.OWN_AGENCY else dict(data)
