"""Imports of subjects and records from CSV or JSON Lines: the whole file or nothing.

A file is read and checked completely before anything is written, and every bad line is
reported (line, column, reason) in one go: a source agency fixing a file should not have to send
it ten times to learn of ten mistakes. Re-sending a file adds nothing, because a record is known by
its source and document reference.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, ParamSpec, TypeVar

from sqlalchemy import Connection, select

from xinyong.errors import BadInput, Problem
from xinyong.ledger import records as ledger
from xinyong.ledger.appended import AfterAppend
from xinyong.ledger.files import (
    RECORD_COLUMNS,
    RECORD_OPTIONAL,
    SUBJECT_COLUMNS,
    SUBJECT_OPTIONAL,
    LineChecker,
    raise_problems,
    read_rows,
)
from xinyong.ledger.registry import existing_subjects, mark_changed, require_source, scheme_versions
from xinyong.rules import identifiers, values
from xinyong.rules.clock import local_day, to_storage
from xinyong.rules.records import Record
from xinyong.storage import tables as t
from xinyong.storage.backend import backend_of

Progress = Callable[[int, int], None]


@dataclass(frozen=True)
class ImportResult:
    imported: int
    already_present: int
    lines: int


_P = ParamSpec("_P")
_T = TypeVar("_T")


def _checked(check: LineChecker, read: Callable[_P, _T], *args: _P.args, **kwargs: _P.kwargs) -> _T | None:
    """A value read by its one rule (`rules.values`), or None with the refusal kept among the
    file's problems, so that every bad field of every line is reported at once."""
    try:
        return read(*args, **kwargs)
    except BadInput as exc:
        check.problems.extend(exc.problems)
        return None


def _parse_day(value: str, check: LineChecker, column: str, today: dt.date) -> dt.date | None:
    """The day a fact occurred: a date (`values.day`) and not in the future."""
    return _checked(check, values.day, value, where=column, line=check.line, not_after=today)


def _parse_amount(value: str, check: LineChecker) -> Decimal | None:
    """An optional amount (`values.amount`): finite, 0 ≤ x < 10^16, at most two decimals."""
    return _checked(check, values.amount, value, where="amount", line=check.line)


def _log(
    conn: Connection,
    kind: str,
    source: str | None,
    name: str,
    data: bytes,
    lines: int,
    added: int,
    now: dt.datetime,
    actor: str,
) -> None:
    conn.execute(
        t.imports.insert().values(
            kind=kind,
            source_id=source,
            file_name=name,
            file_sha256=hashlib.sha256(data).hexdigest(),
            imported_at=to_storage(now),
            actor=actor,
            lines=lines,
            added=added,
        )
    )


def import_subjects(
    conn: Connection, name: str, data: bytes, *, now: dt.datetime, actor: str, after: AfterAppend
) -> ImportResult:
    rows, problems = read_rows(name, data, SUBJECT_COLUMNS, SUBJECT_OPTIONAL)
    clean: dict[str, dict[str, Any]] = {}
    first_line: dict[str, int] = {}
    for row in rows:
        check = LineChecker(problems, row.line)
        fields = row.values
        kind = fields["kind"].lower()
        if kind not in identifiers.SUBJECT_KINDS:
            check.fail("kind", f"{fields['kind']!r} is not person or organisation")
            continue
        subject_id = _checked(
            check, values.subject_id, fields["subject_id"], kind=kind, where="subject_id", line=row.line
        )
        if subject_id is None:
            continue
        if not fields["name"]:
            check.fail("name", "a name is required")
        division = fields.get("division") or None
        if division and not (division.isdigit() and len(division) == 6):
            check.fail("division", f"{division!r} is not a 6-digit administrative division code")
        if subject_id in first_line:
            check.fail("subject_id", f"{subject_id} already appears on line {first_line[subject_id]}")
            continue
        first_line[subject_id] = row.line
        clean[subject_id] = {
            "id": subject_id,
            "kind": kind,
            "name": fields["name"],
            "legal_representative": fields.get("legal_representative") or None,
            "division": division,
        }
    existing = existing_subjects(conn, clean)
    present = 0
    for subject_id, new in list(clean.items()):
        if subject_id not in existing:
            continue
        have = existing[subject_id]
        if (have.kind, have.name, have.legal_representative, have.division) != (
            new["kind"],
            new["name"],
            new["legal_representative"],
            new["division"],
        ):
            line = first_line[subject_id]
            problems.append(
                Problem(
                    f"line {line}, column subject_id",
                    f"{subject_id} is already registered with different details",
                    line=line,
                    column="subject_id",
                )
            )
        present += 1
        del clean[subject_id]
    if problems:
        raise_problems(name, problems)
    if clean:
        stamp = to_storage(now)
        conn.execute(t.subjects.insert(), [{**v, "registered_at": stamp} for v in clean.values()])
        after.subjects_registered(conn, list(clean.values()))
    _log(conn, "subjects", None, name, data, len(rows), len(clean), now, actor)
    return ImportResult(len(clean), present, len(rows))


def source_turn(conn: Connection, source: str) -> None:
    """Imports of one source take turns, whichever path they take; imports of other sources do not
    wait. Each decides what is new by reading what its source already sent, so two at once could
    both find a reference new. The turn is held until this transaction ends (`Backend.take_turn`:
    an advisory lock on PostgreSQL; nothing to take where a writer is the only one anyway)."""
    backend_of(conn).take_turn(conn, f"xinyong:records:{source}")


def import_records(
    conn: Connection,
    name: str,
    data: bytes,
    *,
    source: str,
    now: dt.datetime,
    actor: str,
    after: AfterAppend,
    progress: Progress | None = None,
) -> ImportResult:
    """Check every line, then insert the new records; the after-append step derives their effects
    and writes their notices, all in one transaction."""
    authorised = require_source(conn, source)
    source_turn(conn, source)
    known = ledger.known_behaviours(conn)
    rows, problems = read_rows(name, data, RECORD_COLUMNS, RECORD_OPTIONAL)
    subjects = existing_subjects(conn, (identifiers.normalise(r.values["subject_id"]) for r in rows))
    today = local_day(now)
    clean: dict[str, dict[str, Any]] = {}
    first_line: dict[str, int] = {}
    for row in rows:
        check = LineChecker(problems, row.line)
        fields = row.values
        subject_id = _checked(check, values.subject_id, fields["subject_id"], where="subject_id", line=row.line)
        if subject_id is not None and subject_id not in subjects:
            check.fail("subject_id", f"subject {subject_id} is not registered: import it in a subjects file first")
        behaviour = fields["behaviour"]
        if behaviour not in known:
            check.fail(
                "behaviour",
                f"unknown behaviour {behaviour!r}: it is in no loaded scheme's catalogue",
            )
        elif behaviour not in authorised:
            check.fail("behaviour", f"source {source} is not authorised to submit {behaviour}")
        occurred_on = _parse_day(fields["occurred_on"], check, "occurred_on", today)
        amount = _parse_amount(fields.get("amount", ""), check)
        document_ref = _checked(check, values.document_ref, fields["document_ref"], where="document_ref", line=row.line)
        if document_ref is None:
            pass
        elif document_ref in first_line:
            check.fail("document_ref", f"{document_ref} already appears on line {first_line[document_ref]}")
        else:
            first_line[document_ref] = row.line
            clean[document_ref] = {
                "source_id": source,
                "document_ref": document_ref,
                "subject_id": subject_id,
                "behaviour": behaviour,
                "occurred_on": occurred_on,
                "amount": amount,
                "note": fields.get("note") or None,
            }
    present = _drop_already_present(conn, source, clean, first_line, problems)
    if problems:
        raise_problems(name, problems)
    new_rows = list(clean.values())
    _insert_records(conn, new_rows, now, actor, after, progress)
    _log(conn, "records", source, name, data, len(rows), len(new_rows), now, actor)
    return ImportResult(len(new_rows), present, len(rows))


def _drop_already_present(
    conn: Connection,
    source: str,
    clean: dict[str, dict[str, Any]],
    first_line: dict[str, int],
    problems: list[Problem],
) -> int:
    """Remove records this source already submitted; the same reference with other facts is an error."""
    present = 0
    refs = list(clean)
    for start in range(0, len(refs), 500):
        query = select(t.records).where(
            t.records.c.source_id == source, t.records.c.document_ref.in_(refs[start : start + 500])
        )
        for row in conn.execute(query):
            values = clean.pop(row.document_ref)
            same = (row.subject_id, row.behaviour, row.occurred_on, row.amount, row.note) == (
                values["subject_id"],
                values["behaviour"],
                values["occurred_on"],
                values["amount"],
                values["note"],
            )
            if not same:
                line = first_line[row.document_ref]
                problems.append(
                    Problem(
                        f"line {line}, column document_ref",
                        f"{row.document_ref} is already record {row.id} with different facts; "
                        "change a record with `records correct`, not by sending it again",
                        line=line,
                        column="document_ref",
                    )
                )
            present += 1
    return present


def _chunks(rows: list[dict[str, Any]], size: int) -> Iterator[list[dict[str, Any]]]:
    for start in range(0, len(rows), size):
        yield rows[start : start + size]


def _insert_records(
    conn: Connection,
    rows: list[dict[str, Any]],
    now: dt.datetime,
    actor: str,
    after: AfterAppend,
    progress: Progress | None,
) -> None:
    versions = scheme_versions(conn)
    stamp = to_storage(now)
    done = 0
    for chunk in _chunks(rows, 2000):
        inserted = conn.execute(
            t.records.insert().returning(t.records.c.id, sort_by_parameter_order=True),
            [{**row, "recorded_at": stamp, "recorded_by": actor} for row in chunk],
        )
        # The rows just written are known in full: the after-append step need not read them back.
        fresh = [
            Record(id=row.id, recorded_at=now, recorded_by=actor, **values)
            for row, values in zip(inserted, chunk, strict=True)
        ]
        mark_changed(conn, (r.subject_id for r in fresh), now)
        after.records_appended(conn, fresh, now, versions)
        done += len(chunk)
        if progress is not None:
            progress(done, len(rows))
