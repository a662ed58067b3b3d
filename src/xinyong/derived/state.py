"""State as a question: a subject's standing under a scheme on day D as known at time K.

This is the online, per-subject path: it picks the scheme version in force on D, honours consent
and the scheme's subject kinds, resolves cross-scheme lists, reads the subject's effects from the
store and hands them to the engine.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass, field, replace

from sqlalchemy import Connection, select

from xinyong.derived.derivation import all_effects, by_subject, effects_for_subject
from xinyong.errors import BadInput, did_you_mean
from xinyong.ledger.consent import ConsentEvent, consent_events, has_consent
from xinyong.ledger.registry import Subject, get_subject, scheme_ids, scheme_versions
from xinyong.rules.clock import from_storage
from xinyong.rules.effects import Effect
from xinyong.rules.engine import State, evaluate_state
from xinyong.rules.lists import FALSE, Verdict
from xinyong.rules.schemes import SchemeVersion, version_in_force
from xinyong.storage import tables as t


@dataclass(frozen=True)
class NoState:
    """Why a subject has no state under a scheme: the explanation is owed even when there is none."""

    subject: str
    scheme: str
    scheme_version: str | None
    as_of: dt.date
    known_at: dt.datetime
    reason: str


@dataclass
class StateReader:
    """Answers state questions for one subject within one read transaction, caching what it loads."""

    conn: Connection
    subject: Subject
    known_at: dt.datetime
    _versions: dict[str, list[SchemeVersion]] = field(default_factory=dict)
    _effects: list[Effect] | None = None
    _consent: list[ConsentEvent] | None = None

    @classmethod
    def open(
        cls,
        conn: Connection,
        subject_id: str,
        known_at: dt.datetime,
        versions: dict[str, list[SchemeVersion]] | None = None,
    ) -> StateReader:
        """A reader for a subject; `versions`, schemes' versions the caller has read already in `conn`."""
        return cls(conn, get_subject(conn, subject_id), known_at, dict(versions or {}))

    def versions(self, scheme_id: str) -> list[SchemeVersion]:
        if scheme_id not in self._versions:
            self._versions[scheme_id] = scheme_versions(self.conn, scheme_id)
        return self._versions[scheme_id]

    def effects(self) -> list[Effect]:
        if self._effects is None:
            self._effects = [e for e in effects_for_subject(self.conn, self.subject.id) if e.known_at(self.known_at)]
        return self._effects

    def consent(self) -> list[ConsentEvent]:
        if self._consent is None:
            self._consent = consent_events(self.conn, self.subject.id)
        return self._consent

    def state(self, scheme_id: str, as_of: dt.date, _depth: int = 0) -> State | NoState:
        versions = self.versions(scheme_id)
        if not versions:
            known = scheme_ids(self.conn)
            raise BadInput(f"--scheme: scheme {scheme_id} is not loaded{did_you_mean(scheme_id, known)}")
        version = version_in_force(versions, as_of, self.known_at)
        if version is None:
            return NoState(
                self.subject.id,
                scheme_id,
                None,
                as_of,
                self.known_at,
                "no version of the scheme was in force on that day as known then",
            )
        scheme = version.scheme
        no_state = NoState(self.subject.id, scheme_id, scheme.version, as_of, self.known_at, "")
        if not scheme.applies_to_kind(self.subject.kind):
            return replace(no_state, reason=f"the scheme applies to {', '.join(scheme.applies_to)} only")
        if (
            scheme.consent == "required"
            and self.subject.kind == "person"
            and not has_consent(self.consent(), scheme_id, as_of, self.known_at, scheme.timezone)
        ):
            return replace(
                no_state,
                reason="the scheme scores persons only with their consent, and none is on record",
            )

        def other_list(other: str, list_id: str) -> Verdict:
            # Cross-scheme lists are evaluated under the other scheme's own version and rules; the
            # depth bound stops a pair of schemes that name each other from looping.
            if _depth > 3 or not self.versions(other):
                return FALSE
            other_state = self.state(other, as_of, _depth + 1)
            if isinstance(other_state, NoState):
                return FALSE
            return other_state.list_basis.get(list_id, FALSE)

        rows = [e for e in self.effects() if e.scheme == scheme_id and e.version == scheme.version]
        return evaluate_state(scheme, self.subject.id, rows, as_of, self.known_at, other_list)


def subject_state(
    conn: Connection, subject_id: str, scheme_id: str, as_of: dt.date, known_at: dt.datetime
) -> State | NoState:
    return StateReader.open(conn, subject_id, known_at).state(scheme_id, as_of)


def population(
    conn: Connection, as_of: dt.date, known_at: dt.datetime, subject_ids: list[str] | None = None
) -> Iterator[StateReader]:
    """One reader per subject with its effects and consent preloaded in bulk, for whole-population
    summaries on the online path (the batch engines answer the same question at scale)."""
    versions: dict[str, list[SchemeVersion]] = {}
    for version in scheme_versions(conn):
        versions.setdefault(version.id, []).append(version)
    effects = by_subject(e for e in all_effects(conn) if e.known_at(known_at))
    consents: dict[str, list[ConsentEvent]] = {}
    for row in conn.execute(select(t.subject_events).order_by(t.subject_events.c.recorded_at, t.subject_events.c.id)):
        consents.setdefault(row.subject_id, []).append(
            ConsentEvent(row.scheme, row.kind, from_storage(row.recorded_at))
        )
    query = select(t.subjects).order_by(t.subjects.c.id)
    for row in conn.execute(query):
        if subject_ids is not None and row.id not in subject_ids:
            continue
        subject = Subject(row.id, row.kind, row.name, row.legal_representative, row.division)
        yield StateReader(conn, subject, known_at, versions, effects.get(row.id, []), consents.get(row.id, []))
