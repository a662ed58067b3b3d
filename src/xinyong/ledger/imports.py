"""Imports of subjects and records from CSV or JSON Lines: the whole file or nothing.

A file is read and checked completely before anything is written, and every bad line is
reported (line, column, reason) in one go: a source agency fixing a file should not have to send
it ten times to learn of ten mistakes. Re-sending a file adds nothing, because a record is known by
its source and document reference.
"""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import io
import json
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, select

from xinyong.derived import derivation
from xinyong.due_process import notices
from xinyong.errors import BadInput, Problem
from xinyong.ledger import records as ledger
from xinyong.ledger.registry import existing_subjects, require_source, scheme_versions
from xinyong.rules import identifiers
from xinyong.rules.clock import local_day, to_storage
from xinyong.rules.effects import Record, RecordEvent
from xinyong.storage import store as t

RECORD_COLUMNS = ("subject_id", "behaviour", "occurred_on", "document_ref")
RECORD_OPTIONAL = ("amount", "note")
SUBJECT_COLUMNS = ("subject_id", "kind", "name")
SUBJECT_OPTIONAL = ("legal_representative", "division")
MAX_PROBLEMS = 1000
_ISO_DAY = re.compile(r"^\d{4}-\d{2}-\d{2}$")

Progress = Callable[[int, int], None]


@dataclass(frozen=True)
class ImportResult:
    imported: int
    already_present: int
    lines: int


@dataclass(frozen=True)
class Row:
    line: int
    values: dict[str, str]


def read_rows(
    name: str, data: bytes, required: tuple[str, ...], optional: tuple[str, ...]
) -> tuple[list[Row], list[Problem]]:
    """Rows of a CSV or JSON Lines file, by its name's suffix, with problems of form and columns."""
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        return [], [Problem(name, f"the file is not UTF-8 (byte {exc.start})")]
    suffix = Path(name).suffix.lower()
    if suffix == ".csv":
        return _csv_rows(text, required, optional)
    if suffix in {".jsonl", ".ndjson"}:
        return _jsonl_rows(text, required, optional)
    return [], [Problem(name, "use a .csv or .jsonl file")]


def _csv_rows(text: str, required: tuple[str, ...], optional: tuple[str, ...]) -> tuple[list[Row], list[Problem]]:
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = [h.strip() for h in next(reader)]
    except StopIteration:
        return [], [Problem("line 1", "the file is empty; expected a header line", line=1)]
    problems = _header_problems(header, required, optional)
    if problems:
        return [], problems
    rows = []
    line = reader.line_num
    while True:
        try:
            fields = next(reader)
        except StopIteration:
            break
        except csv.Error as exc:
            # An unterminated quote or an oversized field: nothing after it can be trusted.
            problems.append(Problem(f"line {line + 1}", f"unreadable CSV: {exc}", line=line + 1))
            break
        start, line = line + 1, reader.line_num
        if not any(f.strip() for f in fields):
            continue
        if len(fields) != len(header):
            problems.append(
                Problem(
                    f"line {start}",
                    f"{len(fields)} fields, the header has {len(header)}",
                    line=start,
                )
            )
            continue
        rows.append(Row(start, {k: v.strip() for k, v in zip(header, fields, strict=True)}))
    return _without_nul(rows, problems)


def _without_nul(rows: list[Row], problems: list[Problem]) -> tuple[list[Row], list[Problem]]:
    """NUL characters are refused: PostgreSQL cannot store them and no real document needs them."""
    clean = []
    for row in rows:
        bad = [k for k, v in row.values.items() if "\x00" in v]
        problems.extend(
            Problem(f"line {row.line}, column {k}", "contains a NUL character", line=row.line, column=k) for k in bad
        )
        if not bad:
            clean.append(row)
    return clean, problems
    return rows, problems


def _jsonl_rows(text: str, required: tuple[str, ...], optional: tuple[str, ...]) -> tuple[list[Row], list[Problem]]:
    rows, problems = [], []
    # Split on newlines only: JSON allows U+2028 and other separators that str.splitlines breaks on.
    for number, raw in enumerate(text.split("\n"), start=1):
        if not raw.strip():
            continue
        try:
            value = json.loads(raw)
        except json.JSONDecodeError as exc:
            problems.append(Problem(f"line {number}", f"not JSON: {exc.msg} at column {exc.colno}", line=number))
            continue
        if not isinstance(value, dict):
            problems.append(Problem(f"line {number}", "each line must be a JSON object", line=number))
            continue
        unknown = sorted(set(value) - set(required) - set(optional))
        for key in unknown:
            problems.append(Problem(f"line {number}, column {key}", "unknown column", line=number, column=key))
        missing = [key for key in required if key not in value]
        for key in missing:
            problems.append(Problem(f"line {number}, column {key}", "missing", line=number, column=key))
        if not unknown and not missing:
            rows.append(Row(number, {k: "" if v is None else str(v).strip() for k, v in value.items()}))
    return _without_nul(rows, problems)


def _header_problems(header: list[str], required: tuple[str, ...], optional: tuple[str, ...]) -> list[Problem]:
    problems = [
        Problem(
            f"line 1, column {name}",
            f"unknown column (expected {', '.join(required + optional)})",
            line=1,
            column=name,
        )
        for name in header
        if name not in required + optional
    ]
    problems += [
        Problem(f"line 1, column {name}", "required column is missing", line=1, column=name)
        for name in required
        if name not in header
    ]
    problems += [
        Problem(f"line 1, column {name}", "column appears twice", line=1, column=name)
        for name in dict.fromkeys(n for n in header if header.count(n) > 1)
    ]
    return problems


class _Checker:
    """Collects problems for one line, so each check is a one-liner at its call site."""

    def __init__(self, problems: list[Problem], line: int) -> None:
        self.problems, self.line = problems, line

    def fail(self, column: str, why: str) -> None:
        self.problems.append(Problem(f"line {self.line}, column {column}", why, line=self.line, column=column))


def _parse_day(value: str, check: _Checker, column: str, today: dt.date) -> dt.date | None:
    try:
        if not _ISO_DAY.match(value):
            raise ValueError(value)
        day = dt.date.fromisoformat(value)
    except ValueError:
        check.fail(column, f"{value!r} is not a date (YYYY-MM-DD)")
        return None
    if day > today:
        check.fail(column, f"{day} is in the future")
        return None
    return day


def _parse_amount(value: str, check: _Checker) -> Decimal | None:
    if not value:
        return None
    try:
        amount = Decimal(value)
    except InvalidOperation:
        check.fail("amount", f"{value!r} is not a number")
        return None
    if not amount.is_finite() or amount < 0 or amount >= Decimal("1e16"):
        check.fail("amount", f"{value} is not a non-negative amount below 10^16")
        return None
    return amount.quantize(Decimal("0.01"))


def _raise(name: str, problems: list[Problem]) -> None:
    shown = sorted(problems, key=lambda p: (p.line or 0, p.column or ""))[:MAX_PROBLEMS]
    more = f" (showing the first {MAX_PROBLEMS})" if len(problems) > MAX_PROBLEMS else ""
    raise BadInput(f"{name}: {len(problems)} problem(s){more}; nothing was imported", shown)


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


def import_subjects(conn: Connection, name: str, data: bytes, *, now: dt.datetime, actor: str) -> ImportResult:
    rows, problems = read_rows(name, data, SUBJECT_COLUMNS, SUBJECT_OPTIONAL)
    clean: dict[str, dict[str, Any]] = {}
    first_line: dict[str, int] = {}
    for row in rows:
        check = _Checker(problems, row.line)
        values = row.values
        kind = values["kind"].lower()
        if kind not in identifiers.SUBJECT_KINDS:
            check.fail("kind", f"{values['kind']!r} is not person or organisation")
            continue
        try:
            subject_id = identifiers.validate(values["subject_id"], kind)
        except ValueError as exc:
            check.fail("subject_id", str(exc))
            continue
        if not values["name"]:
            check.fail("name", "a name is required")
        division = values.get("division") or None
        if division and not (division.isdigit() and len(division) == 6):
            check.fail("division", f"{division!r} is not a 6-digit administrative division code")
        if subject_id in first_line:
            check.fail("subject_id", f"{subject_id} already appears on line {first_line[subject_id]}")
            continue
        first_line[subject_id] = row.line
        clean[subject_id] = {
            "id": subject_id,
            "kind": kind,
            "name": values["name"],
            "legal_representative": values.get("legal_representative") or None,
            "division": division,
        }
    existing = existing_subjects(conn, clean)
    present = 0
    for subject_id, values in list(clean.items()):
        if subject_id not in existing:
            continue
        have = existing[subject_id]
        if (have.kind, have.name, have.legal_representative, have.division) != (
            values["kind"],
            values["name"],
            values["legal_representative"],
            values["division"],
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
        _raise(name, problems)
    if clean:
        stamp = to_storage(now)
        conn.execute(t.subjects.insert(), [{**v, "registered_at": stamp} for v in clean.values()])
    _log(conn, "subjects", None, name, data, len(rows), len(clean), now, actor)
    return ImportResult(len(clean), present, len(rows))


def source_turn(conn: Connection, source: str) -> None:
    """Imports of one source take turns, whichever path they take; imports of other sources do not
    wait. Each decides what is new by reading what its source already sent, so two at once could
    both find a reference new. PostgreSQL: an advisory lock held until this transaction ends, its
    key a 64-bit hash of the source's id (a collision only makes two sources take turns). SQLite has
    one writer at a time anyway."""
    if conn.dialect.name == "postgresql":
        key = f"xinyong:records:{source}"
        conn.exec_driver_sql("SELECT pg_advisory_xact_lock(hashtextextended(%(key)s, 0))", {"key": key})


def import_records(
    conn: Connection,
    name: str,
    data: bytes,
    *,
    source: str,
    now: dt.datetime,
    actor: str,
    progress: Progress | None = None,
) -> ImportResult:
    """Check every line, then insert the new records and derive their effects, in one transaction."""
    authorised = require_source(conn, source)
    source_turn(conn, source)
    known = ledger.known_behaviours(conn)
    rows, problems = read_rows(name, data, RECORD_COLUMNS, RECORD_OPTIONAL)
    subjects = existing_subjects(conn, (identifiers.normalise(r.values["subject_id"]) for r in rows))
    today = local_day(now)
    clean: dict[str, dict[str, Any]] = {}
    first_line: dict[str, int] = {}
    for row in rows:
        check = _Checker(problems, row.line)
        values = row.values
        subject_id = identifiers.normalise(values["subject_id"])
        if subject_id not in subjects:
            reason = identifiers.invalid_reason(subject_id)
            check.fail(
                "subject_id", reason or f"subject {subject_id} is not registered: import it in a subjects file first"
            )
        behaviour = values["behaviour"]
        if behaviour not in known:
            check.fail(
                "behaviour",
                f"unknown behaviour {behaviour!r}: it is in no loaded scheme's catalogue",
            )
        elif behaviour not in authorised:
            check.fail("behaviour", f"source {source} is not authorised to submit {behaviour}")
        occurred_on = _parse_day(values["occurred_on"], check, "occurred_on", today)
        amount = _parse_amount(values.get("amount", ""), check)
        document_ref = values["document_ref"]
        if not document_ref or len(document_ref) > 128:
            check.fail("document_ref", "a document reference of 1 to 128 characters is required")
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
                "note": values.get("note") or None,
            }
    present = _drop_already_present(conn, source, clean, first_line, problems)
    if problems:
        _raise(name, problems)
    new_rows = list(clean.values())
    _insert_records(conn, new_rows, now, actor, progress)
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
        # The rows just written are known in full, so their effects are derived without reading back.
        fresh: dict[int, tuple[Record, list[RecordEvent]]] = {
            row.id: (Record(id=row.id, recorded_at=now, recorded_by=actor, **values), [])
            for row, values in zip(inserted, chunk, strict=True)
        }
        derivation.insert_effects(conn, derivation.derive_for(fresh, versions))
        notices.for_new_records(conn, [record for record, _ in fresh.values()], now, versions)
        done += len(chunk)
        if progress is not None:
            progress(done, len(rows))
