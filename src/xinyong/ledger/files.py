"""Reading a subjects or records file (CSV or JSON Lines) into rows, with every problem of form.

A file is read completely before anything is checked or written, and every problem is kept with
its line and column, so that an agency fixing a file learns of all its mistakes at once. The
column-wise path (`ledger.bulk`, reading with `ledger.bulk_files`) reads large files with Arrow to
the same rules, which are defined here once (DESIGN.md, "One reading of every file"):

- **Text** is UTF-8, with or without a byte order mark at the start; anything else (GB 18030,
  UTF-16, Latin-1) is refused as a whole, naming the line and the byte (from 0) of the first byte
  that is not UTF-8 (`not_utf8`).
- **Fields** hold at most `FIELD_MAX` characters (Python's csv limit, now the rule for every
  field of every format, column names included) and no NUL character (`field_problem`). Values
  are read without the whitespace around them (`str.strip`, which Arrow's `utf8_trim_whitespace`
  matches character for character).
- **CSV**: line 1 is the header: the columns named once each, none unknown, every required one
  present; a 0-byte file (or only a byte order mark) has no header and is refused, a header alone
  is a file of no records. Lines end at `\\n`, `\\r\\n` or `\\r` alike and are the file's own: a
  quoted field may span lines (it is CSV), and blank lines (every field blank) are skipped but
  counted. A row with more or fewer fields than the header is refused by its line. A quote that
  is never closed would swallow the rest of the file into one field: it is refused, naming the
  line (and column) where it opened (`csv_records`).
- **JSON Lines**: one JSON object a line (lines end at `\\n`; blank lines are skipped but
  counted); keys are the columns, each once; values are JSON strings or null (an empty field);
  `amount` may also be a JSON number, read as the digits written (`1.10` is "1.10", never a binary
  float); objects, arrays, true and false are refused by line and column. A file of no lines is a
  file of no records, as a CSV header alone is.

A line with a problem of form is reported and not read further, so its values raise no second
problem; every other line is checked in full.
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn

from xinyong.errors import BadInput, Problem

RECORD_COLUMNS = ("subject_id", "behaviour", "occurred_on", "document_ref")
RECORD_OPTIONAL = ("amount", "note")
SUBJECT_COLUMNS = ("subject_id", "kind", "name")
SUBJECT_OPTIONAL = ("legal_representative", "division")
MAX_PROBLEMS = 1000

# The longest field, in characters, of any format: Python's csv field limit, which CSV files met
# first, made the rule for JSON Lines and Parquet too (a 10 MB note is no note).
FIELD_MAX = 131_072
TOO_LONG = f"longer than {FIELD_MAX:,} characters"
HAS_NUL = "contains a NUL character"
# JSON Lines columns that may hold a JSON number as well as a string.
NUMBER_COLUMNS = frozenset({"amount"})
UTF8_BOM = b"\xef\xbb\xbf"
# A line ends at \r\n, \r or \n, for the csv module and for Arrow's CSV reader alike.
LINE_BREAK = re.compile("\r\n|\r|\n")
_BYTE_LINE_BREAK = re.compile(b"\r\n|\r|\n")

# The csv module refuses a field over its limit (131,072) and cannot go on reading after it; this
# module enforces `FIELD_MAX` itself, after reading, so that the over-long field is named with its
# line and column and the rest of the file is still read. (The limit is the process's; raising it
# only lets other readers read more.)
csv.field_size_limit(max(csv.field_size_limit(), 2**31 - 1))


@dataclass(frozen=True)
class Row:
    line: int
    values: dict[str, str]


def field_problem(value: str) -> str | None:
    """Why a field, as written (before its surrounding whitespace is dropped), cannot be read."""
    if len(value) > FIELD_MAX:
        return TOO_LONG
    if "\x00" in value:
        return HAS_NUL
    return None


def not_utf8(line: int, byte: int, text: bytes = b"") -> Problem:
    """The one problem of a file that is not UTF-8: the line and the byte (from the file's first,
    0) where it stops being UTF-8, and, when `text` (that line) reads as Chinese in GB 18030 —
    what Excel and WPS save on a Chinese Windows — that it is GB 18030, so the sender knows what
    to change."""
    found = "not UTF-8 but GB 18030 (GBK) text" if looks_gb18030(text) else "not UTF-8 text"
    why = f"{found} (byte {byte}): save the file as UTF-8; GB 18030 and other encodings are not read"
    return Problem(f"line {line}", why, line=line)


def looks_gb18030(text: bytes) -> bool:
    """Whether `text` decodes as GB 18030 into Chinese: every character beyond ASCII a CJK
    ideograph or full-width punctuation, and at least one of them. (GB 18030 decodes most byte
    strings into something, Latin-1 accents included, so decoding alone proves little.)"""
    try:
        decoded = text.decode("gb18030")
    except UnicodeDecodeError:
        return False
    beyond = [c for c in decoded if ord(c) > 0x7F]
    return bool(beyond) and all(_chinese(c) for c in beyond)


def _chinese(char: str) -> bool:
    point = ord(char)
    return (
        0x4E00 <= point <= 0x9FFF  # CJK unified ideographs
        or 0x3400 <= point <= 0x4DBF  # extension A
        or 0x3000 <= point <= 0x303F  # CJK punctuation: 、。《》「」
        or 0xFF00 <= point <= 0xFFEF  # full-width forms: ，：（）
        or point in (0x2014, 0x2018, 0x2019, 0x201C, 0x201D, 0x2026, 0x00B7)  # —‘’“”…·
    )


def csv_not_utf8(data: bytes, byte: int) -> Problem:
    """`not_utf8` for a CSV file, whose lines end at \\r\\n, \\r or \\n."""
    start = max(data.rfind(b"\n", 0, byte), data.rfind(b"\r", 0, byte)) + 1
    ends = [found for found in (data.find(b"\n", byte), data.find(b"\r", byte)) if found >= 0]
    line = data[start : min(ends, default=len(data))]
    return not_utf8(1 + len(_BYTE_LINE_BREAK.findall(data[:byte])), byte, line)


def read_rows(
    name: str, data: bytes, required: tuple[str, ...], optional: tuple[str, ...]
) -> tuple[list[Row], list[Problem]]:
    """Rows of a CSV or JSON Lines file, by its name's suffix, with problems of form and columns."""
    suffix = Path(name).suffix.lower()
    if suffix == ".csv":
        return csv_rows(data, required, optional)
    if suffix in {".jsonl", ".ndjson"}:
        problems: list[Problem] = []
        try:
            rows = [
                Row(line, {k: "" if v is None else v.strip() for k, v in values.items()})
                for line, values in jsonl_rows(io.BytesIO(data), required, optional, problems)
            ]
        except Unreadable as exc:
            return [], [exc.problem]
        return rows, problems
    if suffix == ".parquet":
        return parquet_rows(data, required, optional)
    return [], [Problem(name, "use a .csv, .jsonl or .parquet file")]


def parquet_rows(data: bytes, required: tuple[str, ...], optional: tuple[str, ...]) -> tuple[list[Row], list[Problem]]:
    """Rows of a Parquet file (`xinyong synth` writes subjects.parquet), numbered from 1 as its
    rows, every column read as text, each field under the same rules as a CSV field. A Parquet
    file is binary: it is never asked to be UTF-8 as a whole (its text columns are by format)."""
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    try:
        # ParquetFile, not read_table: the dataset layer behind the latter imports pandas (1 s).
        table = pq.ParquetFile(pa.BufferReader(data)).read()
    except (pa.ArrowException, OSError) as exc:
        return [], [Problem("file", f"not a readable Parquet file: {exc}")]
    problems = header_problems(table.column_names, required, optional, where="columns")
    if problems:
        return [], problems
    names = [name.strip() for name in table.column_names]
    columns = [pc.cast(column, pa.string()).to_pylist() for column in table.columns]
    rows = []
    for index, fields in enumerate(zip(*columns, strict=True)):
        line = index + 1
        values = dict(zip(names, ("" if v is None else v for v in fields), strict=True))
        unreadable = [(k, w) for k, v in values.items() if (w := field_problem(v))]
        problems.extend(Problem(f"line {line}, column {k}", w, line=line, column=k) for k, w in unreadable)
        if not unreadable:
            rows.append(Row(line, {k: v.strip() for k, v in values.items()}))
    return rows, problems


class Unreadable(Exception):
    """A file that cannot be read at all (not UTF-8, or a quote never closed): its one problem."""

    def __init__(self, problem: Problem) -> None:
        super().__init__(str(problem))
        self.problem = problem


# --- CSV ----------------------------------------------------------------------------------------------

# Appended as a last record to the text the csv module reads: if the file ends inside a quoted
# field, the quote swallows it, which is how a quote never closed is told from one closed.
END_OF_FILE = "\x00xinyong: end of file\x00"


def unclosed_quote(line: int, column: str | None) -> Problem:
    where = f"line {line}, column {column}" if column else f"line {line}"
    why = 'a quoted field opens here and is never closed: a closing quote (") is missing'
    return Problem(where, why, line=line, column=column)


def quote_line(start: int, fields: list[str]) -> int:
    """The line where a record's last field opens, the record starting on line `start`."""
    return start + sum(len(LINE_BREAK.findall(field)) for field in fields[:-1])


def csv_records(text: str) -> Iterator[tuple[int, list[str]]]:
    """Every record of a CSV text with the line it starts on (blank lines are records of no or
    blank fields). Raises `Unclosed` after the last good record when the text ends inside a
    quoted field."""
    end = "" if text.endswith(("\n", "\r")) else "\n"
    reader = csv.reader(io.StringIO(f"{text}{end}{END_OF_FILE}\n", newline=""))
    held: tuple[int, list[str]] | None = None
    line = 0
    for fields in reader:
        if held is not None:
            yield held
        held = (line + 1, fields)
        line = reader.line_num
    if held is None or held[1] != [END_OF_FILE]:
        start, fields = held or (1, [""])
        raise Unclosed(quote_line(start, fields), len(fields) - 1)


class Unclosed(Exception):
    """The text ends inside a quoted field opened on `line`, the record's field number `index`."""

    def __init__(self, line: int, index: int) -> None:
        super().__init__(f"line {line}")
        self.line, self.index = line, index

    def problem(self, header: list[str] | None) -> Problem:
        column = header[self.index] if header is not None and self.index < len(header) else None
        return unclosed_quote(self.line, column)


def csv_rows(data: bytes, required: tuple[str, ...], optional: tuple[str, ...]) -> tuple[list[Row], list[Problem]]:
    bom = len(UTF8_BOM) if data.startswith(UTF8_BOM) else 0
    try:
        text = data[bom:].decode("utf-8")
    except UnicodeDecodeError as exc:
        return [], [csv_not_utf8(data, bom + exc.start)]
    if not text:
        return [], [Problem("line 1", "the file is empty; expected a header line", line=1)]
    records = csv_records(text)
    try:
        _start, fields = next(records)
    except Unclosed as exc:
        return [], [exc.problem(None)]
    header = [h.strip() for h in fields]
    problems = header_problems(fields, required, optional)
    if problems:
        return [], problems
    rows = []
    try:
        for start, fields in records:
            if not any(f.strip() for f in fields):
                continue
            if len(fields) != len(header):
                why = f"{len(fields)} fields, the header has {len(header)}"
                problems.append(Problem(f"line {start}", why, line=start))
                continue
            unreadable = [(k, w) for k, v in zip(header, fields, strict=True) if (w := field_problem(v))]
            problems.extend(Problem(f"line {start}, column {k}", w, line=start, column=k) for k, w in unreadable)
            if not unreadable:
                rows.append(Row(start, {k: v.strip() for k, v in zip(header, fields, strict=True)}))
    except Unclosed as exc:
        problems.append(exc.problem(header))
    return rows, problems


def header_problems(
    names: list[str], required: tuple[str, ...], optional: tuple[str, ...], where: str = "line 1"
) -> list[Problem]:
    """What is wrong with a header (the column names as written): every column known, named once,
    every required one present; a name is a field like any other (no NUL, not over-long)."""
    expected = ", ".join(required + optional)
    unreadable = sorted({why for name in names if (why := field_problem(name))})
    if unreadable:
        return [Problem(where, f"a column name {why}", line=1) for why in unreadable]
    header = [name.strip() for name in names]
    if not any(header):
        return [Problem(where, f"the first line must be the header ({expected}); it is blank", line=1)]
    problems = [
        Problem(f"{where}, column {name}", f"unknown column (expected {expected})", line=1, column=name)
        for name in header
        if name not in required + optional
    ]
    problems += [
        Problem(f"{where}, column {name}", "required column is missing", line=1, column=name)
        for name in required
        if name not in header
    ]
    problems += [
        Problem(f"{where}, column {name}", "column appears twice", line=1, column=name)
        for name in dict.fromkeys(n for n in header if header.count(n) > 1)
    ]
    return problems


# --- JSON Lines ---------------------------------------------------------------------------------------

_JSON_BLANK = b" \t\r\n"
_TEXT = frozenset({str, type(None)})


class _Number(str):
    """A JSON number as the text it is written with (the slow reading, `_exactly`)."""


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _exactly(raw: bytes) -> tuple[dict[str, Any], set[str]]:
    """A line read by the json module: numbers kept as written, and the keys named twice (orjson,
    which reads every line first, keeps the last value of a repeated key and says nothing)."""
    objects: list[list[tuple[str, Any]]] = []

    def pairs(found: list[tuple[str, Any]]) -> dict[str, Any]:
        objects.append(found)
        return dict(found)

    value = json.loads(
        raw.decode("utf-8"),
        parse_float=_Number,
        parse_int=_Number,
        parse_constant=_reject_constant,
        object_pairs_hook=pairs,
    )
    keys = [key for key, _ in objects[-1]]  # the line's own object is the last one closed
    return value, {key for key in keys if keys.count(key) > 1}


def _may_name_twice(raw: bytes, value: dict[str, Any]) -> bool:
    """Whether a line that has more colons than its object (as orjson read it) has keys may name
    a key twice, which orjson does not say: every key is followed by a colon, so the colons in keys
    and string values are counted back; an escaped colon (\\u003a) sends the line the slow way."""
    inside = sum(key.count(":") + (item.count(":") if isinstance(item, str) else 0) for key, item in value.items())
    return raw.count(b":") != len(value) + inside or b"\\u003" in raw


def _kind(value: Any) -> str:
    if isinstance(value, bool):
        return "true or false"
    if isinstance(value, dict):
        return "an object"
    if isinstance(value, list):
        return "an array"
    return "a number"


def jsonl_rows(
    lines: Iterable[bytes], required: tuple[str, ...], optional: tuple[str, ...], problems: list[Problem]
) -> Iterator[tuple[int, dict[str, str | None]]]:
    """The good lines of a JSON Lines file (its lines as read from a binary file, each with its
    \\n), numbered, with their values as written (text, a number of `NUMBER_COLUMNS` as its digits,
    or None for null); the problems of the others are added to `problems`. Raises `Unreadable` if
    the file is not UTF-8."""
    import orjson

    known = set(required) | set(optional)
    required_set = set(required)
    numbers = tuple(NUMBER_COLUMNS & known)
    loads, not_json = orjson.loads, orjson.JSONDecodeError
    offset = 0
    for number, raw in enumerate(lines, start=1):
        start = offset
        offset += len(raw)
        if number == 1 and raw.startswith(UTF8_BOM):
            raw, start = raw[len(UTF8_BOM) :], start + len(UTF8_BOM)
        try:
            value = loads(raw)
        except not_json as exc:
            if not raw.strip(_JSON_BLANK):
                continue  # a blank line
            try:
                raw.decode("utf-8")
            except UnicodeDecodeError as wrong:
                raise Unreadable(not_utf8(number, start + wrong.start, raw)) from None
            problems.append(Problem(f"line {number}", f"not JSON: {exc.msg} at column {exc.colno}", line=number))
            continue
        if type(value) is not dict:
            problems.append(Problem(f"line {number}", "each line must be a JSON object", line=number))
            continue
        twice: set[str] = set()
        # The json module's slower reading when orjson's may have lost something: a key named
        # twice (a line with no more colons than keys names none twice), or the digits of a number
        # with a fraction or an exponent in a column that takes numbers.
        if (raw.count(b":") != len(value) and _may_name_twice(raw, value)) or any(
            type(value.get(key)) is float for key in numbers
        ):
            value, twice = _exactly(raw)
        elif (
            # Most lines: every key known, every required one there, every value text (or null).
            value.keys() <= known
            and required_set <= value.keys()
            and len(raw) <= FIELD_MAX  # no value is longer than the line it is written on
            and b"\\u0000" not in raw  # in JSON a NUL can only be written so
            and set(map(type, value.values())) <= _TEXT
        ):
            yield number, value
            continue
        before = len(problems)
        for key in sorted(twice):
            problems.append(Problem(f"line {number}, column {key}", "column appears twice", line=number, column=key))
        for key in sorted(value.keys() - known):
            problems.append(Problem(f"line {number}, column {key}", "unknown column", line=number, column=key))
        for key in required:
            if key not in value:
                problems.append(Problem(f"line {number}, column {key}", "missing", line=number, column=key))
        texts: dict[str, str | None] = {}
        for key, item in value.items():
            if key not in known:
                continue
            if item is None:
                texts[key] = None
                continue
            if isinstance(item, str) and (key in NUMBER_COLUMNS or not isinstance(item, _Number)):
                why = field_problem(item)
                if why is None:
                    texts[key] = str(item)
                    continue
            elif isinstance(item, int) and not isinstance(item, bool) and key in NUMBER_COLUMNS:
                texts[key] = str(item)
                continue
            else:
                allowed = "a JSON string or number" if key in NUMBER_COLUMNS else "a JSON string"
                why = f"must be {allowed}, not {_kind(item)}"
            problems.append(Problem(f"line {number}, column {key}", why, line=number, column=key))
        if len(problems) == before:
            yield number, texts


class LineChecker:
    """Collects problems for one line, so each check is a one-liner at its call site."""

    def __init__(self, problems: list[Problem], line: int) -> None:
        self.problems, self.line = problems, line

    def fail(self, column: str, why: str) -> None:
        self.problems.append(Problem(f"line {self.line}, column {column}", why, line=self.line, column=column))


def raise_problems(name: str, problems: list[Problem], count: int | None = None) -> NoReturn:
    """Refuse a file with its problems in line order (the first MAX_PROBLEMS of them); `count`,
    when given, is how many there are in all (a caller may pass only those that can be shown)."""
    count = len(problems) if count is None else count
    shown = sorted(problems, key=lambda p: (p.line or 0, p.column or ""))[:MAX_PROBLEMS]
    more = f" (showing the first {MAX_PROBLEMS})" if count > MAX_PROBLEMS else ""
    raise BadInput(f"{name}: {count} problem(s){more}; nothing was imported", shown)


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
