"""Reading a subjects or records file (CSV or JSON Lines) into rows, with every problem of form.

A file is read completely before anything is checked or written, and every problem is kept with
its line and column, so that an agency fixing a file learns of all its mistakes at once. The
column-wise path (`ledger.bulk`) reads large files with Arrow to the same rules.
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass
from pathlib import Path

from xinyong.errors import BadInput, Problem

RECORD_COLUMNS = ("subject_id", "behaviour", "occurred_on", "document_ref")
RECORD_OPTIONAL = ("amount", "note")
SUBJECT_COLUMNS = ("subject_id", "kind", "name")
SUBJECT_OPTIONAL = ("legal_representative", "division")
MAX_PROBLEMS = 1000


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


class LineChecker:
    """Collects problems for one line, so each check is a one-liner at its call site."""

    def __init__(self, problems: list[Problem], line: int) -> None:
        self.problems, self.line = problems, line

    def fail(self, column: str, why: str) -> None:
        self.problems.append(Problem(f"line {self.line}, column {column}", why, line=self.line, column=column))


def raise_problems(name: str, problems: list[Problem]) -> None:
    """Refuse a file with its problems in line order (the first MAX_PROBLEMS of them)."""
    shown = sorted(problems, key=lambda p: (p.line or 0, p.column or ""))[:MAX_PROBLEMS]
    more = f" (showing the first {MAX_PROBLEMS})" if len(problems) > MAX_PROBLEMS else ""
    raise BadInput(f"{name}: {len(problems)} problem(s){more}; nothing was imported", shown)


# The files the column-wise path (`ledger.bulk`) reads.
BULK_SUFFIXES = (".parquet", ".csv", ".jsonl", ".ndjson")


def wants_bulk(path: Path, threshold_bytes: int | None = None) -> bool:
    """Parquet always goes the bulk way; CSV and JSON Lines do when the file is large."""
    if threshold_bytes is None:
        from xinyong import settings

        threshold_bytes = settings.current().bulk_bytes
    if path.suffix.lower() == ".parquet":
        return True
    try:
        return path.suffix.lower() in BULK_SUFFIXES and path.stat().st_size >= threshold_bytes
    except OSError:
        return False
