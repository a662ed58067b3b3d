"""Checks: an enforcer's one question — does measure M apply to subject S on day D? — answered
with yes or no, since when, the legal basis and how to contest, and nothing more than that.

Most answers are "no", and a fresh serving-state row (see `serving`) says so without computing
the subject's state; a "yes" needs since when and the basis, so it is always computed online.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from sqlalchemy import Connection

from xinyong.derived.serving import served_many
from xinyong.derived.state import StateReader
from xinyong.errors import BadInput, NotFound, XinyongError, did_you_mean
from xinyong.ledger.registry import scheme_ids, scheme_versions, unregistered
from xinyong.rules.clock import local_day
from xinyong.rules.engine import State, change_days
from xinyong.rules.identifiers import mask, normalise
from xinyong.rules.lists import Verdict
from xinyong.rules.schemes import SchemeVersion, how_to_contest, version_in_force


@dataclass(frozen=True)
class CheckAnswer:
    subject: str  # masked for persons: an enforcer does not need the full number back
    measure: str
    title: str
    implemented_by: str
    as_of: dt.date
    known_at: dt.datetime
    applies: bool
    since: dt.date | None
    lists: tuple[str, ...]
    grade: str | None
    records: tuple[int, ...]
    legal_basis: str
    contest: str


def parse_measure(name: str) -> tuple[str, str]:
    if name.count("/") != 1 or not all(name.split("/")):
        raise BadInput(f"measure {name!r}: write it as SCHEME/MEASURE, e.g. court-defaulters/no-flights")
    scheme, measure = name.split("/")
    return scheme, measure


def check(
    conn: Connection,
    subject_id: str,
    measure_name: str,
    as_of: dt.date,
    known_at: dt.datetime,
    versions: list[SchemeVersion] | None = None,
) -> CheckAnswer:
    """The answer to a check; `versions`, the scheme's versions if the caller has read them in `conn`."""
    answer = check_many(conn, [subject_id], measure_name, as_of, known_at, versions)[0]
    if isinstance(answer, XinyongError):
        raise answer
    return answer


def check_many(
    conn: Connection,
    subject_ids: Sequence[str],
    measure_name: str,
    as_of: dt.date,
    known_at: dt.datetime,
    versions: list[SchemeVersion] | None = None,
) -> list[CheckAnswer | XinyongError]:
    """The answers about many subjects to one question, in their order: a flight manifest's, or the
    checks a server received at the same moment. The subjects and their served rows are read with
    one query; a subject's own error (an id that is not registered) is its answer, while an error
    of the question itself (no such measure) is raised.
    """
    scheme_id, measure_id = parse_measure(measure_name)
    if versions is None:
        versions = scheme_versions(conn, scheme_id)
    if not versions:
        raise NotFound(f"scheme {scheme_id} is not loaded{did_you_mean(scheme_id, scheme_ids(conn))}")
    version = version_in_force(versions, as_of, known_at)
    if version is None:
        raise NotFound(f"no version of scheme {scheme_id} was in force on {as_of}")
    measure = version.scheme.measure_by_id.get(measure_id)
    if measure is None:
        known = version.scheme.measure_by_id
        raise NotFound(
            f"scheme {scheme_id} version {version.version} has no measure {measure_id}{did_you_mean(measure_id, known)}"
        )
    wanted = [normalise(s) for s in subject_ids]
    found = served_many(conn, set(wanted), scheme_id, as_of, known_at)
    answers: list[CheckAnswer | XinyongError] = []
    for subject_id in wanted:
        served = found.get(subject_id)
        if served is None:
            answers.append(unregistered(subject_id))
            continue
        if served.version == version.version and measure_id not in served.measures:
            basis = None  # a fresh served "no": nothing to compute
        else:
            # A "yes" needs since when and its basis, and a missing or stale row the exact answer:
            # the online path, for this subject alone.
            reader = StateReader(conn, served.subject, known_at, {scheme_id: versions})
            basis = _applies_since(reader, scheme_id, measure_id, as_of)
        answers.append(
            CheckAnswer(
                subject=mask(served.subject.id, served.subject.kind),
                measure=measure_name,
                title=measure.title,
                implemented_by=measure.implemented_by,
                as_of=as_of,
                known_at=known_at,
                applies=basis is not None,
                since=basis[0] if basis else None,
                lists=basis[1].lists if basis else (),
                grade=basis[1].grade if basis else None,
                records=tuple(sorted(basis[1].records)) if basis else (),
                legal_basis=measure.legal_basis,
                contest=how_to_contest(version.scheme, tuple(sorted(basis[1].records)) if basis else ()),
            )
        )
    return answers


def _applies_since(
    reader: StateReader, scheme_id: str, measure_id: str, as_of: dt.date
) -> tuple[dt.date | None, Verdict] | None:
    """Since when the measure applies and on what basis, computed online; None if it does not."""

    def applies(day: dt.date) -> State | None:
        state = reader.state(scheme_id, day)
        return state if isinstance(state, State) and measure_id in state.measures else None

    state = applies(as_of)
    if state is None:
        return None
    return _since(reader, scheme_id, as_of, applies), state.measure_basis[measure_id]


def _since(
    reader: StateReader, scheme_id: str, as_of: dt.date, applies: Callable[[dt.date], State | None]
) -> dt.date | None:
    """The first day of the unbroken run of days, ending on `as_of`, on which the measure applied.

    State only changes on a window edge, a count-rule edge, a version's effective day or a consent
    day, so we step back from one such day to the previous one rather than day by day.
    """
    days: set[dt.date] = set()
    for version in reader.versions(scheme_id):
        days |= change_days(reader.effects(), version.scheme)
        if version.scheme.effective_from:
            days.add(version.scheme.effective_from)
        # A consent counts from its day on the scheme's calendar, as the state reads it.
        days |= {local_day(event.recorded_at, version.scheme.timezone) for event in reader.consent()}
    days |= {e.valid_from for e in reader.effects()} | {e.valid_until for e in reader.effects()}
    since: dt.date | None = None
    for day in sorted((d for d in days if d <= as_of), reverse=True):
        since = day
        if applies(day - dt.timedelta(days=1)) is None:
            return since
    return since
