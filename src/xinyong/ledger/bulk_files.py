"""How the bulk import reads a file: Parquet, CSV or JSON Lines into one Arrow table of text
columns, each row numbered with its line in the file (or its row in a Parquet file), so that the
checks report problems where an agency looks for them — at the lines the row-wise import names.

The rules are the row-wise reader's (`ledger.files`, "One reading of every file"), and so are the
problems, word for word: a file that breaks a rule of the whole file (not UTF-8, no header or a bad
one, a quote never closed) is refused here with its problem; a line that breaks a rule of form (too
many or too few fields, a NUL, an over-long field) is reported with its line and column and left
out of the table, as the row-wise reader leaves it out of its rows, and the import adds the
problems of the other lines' values. A CSV file is read by Arrow, its rules checked column-wise
(no Python per line); only a file Arrow reads differently — a quote never closed, bytes that are
not UTF-8, a line longer than Arrow's block — is read again by the row-wise reader, which the
answer then comes from. JSON Lines are read line by line by the row-wise reader's own function.
"""

from __future__ import annotations

import csv
import functools
import io
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from xinyong.errors import BadInput, Problem
from xinyong.ledger.files import (
    END_OF_FILE,
    FIELD_MAX,
    HAS_NUL,
    LINE_BREAK,
    RECORD_COLUMNS,
    RECORD_OPTIONAL,
    TOO_LONG,
    Row,
    Unreadable,
    csv_rows,
    header_problems,
    jsonl_rows,
    raise_problems,
)

LINE = "__line__"  # every reader numbers its rows here, as the file's own lines (Parquet: rows)

# Values the checks read through `rules.values`, which drops their surrounding whitespace itself;
# the others are trimmed here as the row-wise reader trims every field.
_READ_BY_RULE = ("subject_id", "occurred_on", "amount")


def read_table(path: Path, name: str | None = None) -> tuple[pa.Table, str, list[Problem]]:
    """The file as a table of strings with each row's line (`LINE`), how rows are named ("line"
    or "row"), and the problems of the lines left out. A file that cannot be read at all is
    refused here (`BadInput`, named `name`)."""
    name = name or path.name
    suffix = path.suffix.lower()
    try:
        if suffix == ".parquet":
            table, lines, problems = _read_parquet(path)
            label = "row"
        elif suffix == ".csv":
            table, lines, problems = _read_csv(path)
            label = "line"
        elif suffix in {".jsonl", ".ndjson"}:
            table, lines, problems = _read_jsonl(path)
            label = "line"
        else:
            raise BadInput(f"{name}: use a .parquet, .csv or .jsonl file")
    except _Refused as exc:
        raise_problems(name, exc.problems)
    except pa.ArrowInvalid as exc:
        raise BadInput(f"{name}: cannot be read: {exc}") from None
    except OSError as exc:
        raise BadInput(f"cannot read {path}: {exc}") from None
    columns = {}
    for column_name in table.column_names:
        column = table.column(column_name)
        column = column if column.type == pa.string() else pc.cast(column, pa.string())
        key = column_name.strip()
        columns[key] = column if key in _READ_BY_RULE else pc.utf8_trim_whitespace(column)
    columns[LINE] = lines
    return pa.table(columns), label, problems


class _Refused(Exception):
    """The whole file is refused with these problems (its header, its encoding, its quotes)."""

    def __init__(self, problems: list[Problem]) -> None:
        super().__init__(f"{len(problems)} problem(s)")
        self.problems = problems


class _ReadAgain(Exception):
    """Arrow read the file otherwise than the csv module would: the row-wise reader decides."""


Read = tuple[pa.Table, pa.Array, list[Problem]]


# --- CSV ----------------------------------------------------------------------------------------------


def _read_csv(path: Path) -> Read:
    try:
        return _read_csv_arrow(path)
    except (_ReadAgain, pa.ArrowInvalid, UnicodeDecodeError):
        # Not UTF-8, a quote never closed, a line longer than a block, a header only and no line
        # break: rare, refused or tiny; read as the row-wise import reads it, whatever it costs.
        return _from_rows(*csv_rows(path.read_bytes(), RECORD_COLUMNS, RECORD_OPTIONAL))


def _from_rows(rows: list[Row], problems: list[Problem]) -> Read:
    """A table of the rows the row-wise reader read (their columns: a CSV file's header's)."""
    if problems and not rows:
        raise _Refused(problems)  # the same answer as the checks of no rows would add nothing to
    names = list(rows[0].values) if rows else list(RECORD_COLUMNS)
    table = pa.table({k: pa.array([row.values[k] for row in rows], pa.string()) for k in names})
    return table, pa.array([row.line for row in rows], pa.int64()), problems


class _WithEnd(io.RawIOBase):
    """A file followed by one more CSV row (`files.END_OF_FILE` in every field), read as one stream:
    if the file ends inside a quoted field the row is swallowed into it, which is how Arrow's
    reader, which closes such a field at the end silently, is seen to have met one. Notes whether
    the file holds a NUL byte on the way (a fast scan of each block, sparing the columns' check)."""

    def __init__(self, path: Path, fields: int) -> None:
        super().__init__()
        self._file = path.open("rb")
        self._file.seek(-1, io.SEEK_END)
        after = b"" if self._file.read(1) in (b"\n", b"\r") else b"\n"
        self._file.seek(0)
        self._end = after + ",".join([END_OF_FILE] * fields).encode() + b"\n"
        self.nul = False

    def readable(self) -> bool:
        return True

    def read(self, size: int | None = -1) -> bytes:
        data = self._file.read(size)
        if data:
            self.nul = self.nul or b"\x00" in data
            return data
        size = len(self._end) if size is None or size < 0 else size
        data, self._end = self._end[:size], self._end[size:]
        return data

    def readinto(self, buffer: Any) -> int:
        data = self.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)

    def close(self) -> None:
        self._file.close()
        super().close()


def _read_csv_arrow(path: Path) -> Read:
    """Rows and the physical line each starts on: a quoted field may hold line breaks, and blank
    lines are skipped as by the row-wise import (rows whose fields are all blank, counted as lines).
    A row with more or fewer fields than the header is reported with its line, as row-wise."""
    size = path.stat().st_size
    if size == 0:
        raise _ReadAgain
    header = pacsv.open_csv(path, parse_options=_csv_parsing(lambda _row: "skip")).schema.names
    problems = header_problems(header, RECORD_COLUMNS, RECORD_OPTIONAL)
    if problems:
        # A header that swallowed the file (its quote never closed) is the row-wise reader's to name.
        if size < 1 << 20 or any(LINE_BREAK.search(h) for h in header):
            raise _ReadAgain
        raise _Refused(problems)
    set_aside: list[Any] = []  # pyarrow.csv.InvalidRow: rows Arrow could not split into the header's fields

    def keep_aside(row: Any) -> str:
        set_aside.append(row)
        return "skip"

    with _WithEnd(path, len(header)) as stream:
        table = _parse_csv(stream, header, keep_aside, use_threads=True)
    if set_aside:
        # The parallel reader cannot number the rows it sets aside (a block does not know how many
        # rows came before it); the serial one can. Only such files are read a second time.
        set_aside.clear()
        with _WithEnd(path, len(header)) as stream:
            table = _parse_csv(stream, header, keep_aside, use_threads=False)
    last = table.slice(table.num_rows - 1).to_pylist() if table.num_rows else []
    if not last or any(value != END_OF_FILE for value in last[0].values()):
        raise _ReadAgain  # the file ends inside a quoted field, which swallowed the end row
    table = table.slice(0, table.num_rows - 1)
    rows = table.num_rows + len(set_aside)
    aside = np.array([row.number - 2 for row in set_aside], dtype=np.int64)  # Arrow's row 1 is the header
    parsed = np.ones(rows, dtype=bool)
    parsed[aside] = False
    breaks = np.zeros(rows, dtype=np.int64)
    breaks[aside] = [len(LINE_BREAK.findall(row.text)) for row in set_aside]
    for column in table.columns:
        if pc.any(pc.match_substring_regex(column, "[\r\n]")).as_py():
            counted = pc.count_substring_regex(column, LINE_BREAK.pattern).to_numpy(zero_copy_only=False)
            breaks[parsed] += counted
    first = 2 + sum(len(LINE_BREAK.findall(name)) for name in header)
    starts = np.cumsum(breaks) - breaks + np.arange(first, first + rows)
    problems = [
        Problem(f"line {line}", f"{row.actual_columns} fields, the header has {row.expected_columns}", line=line)
        for row, line in zip(set_aside, starts[aside].tolist(), strict=True)
        if not _blank_row(row.text)
    ]
    blank = functools.reduce(pc.and_, (pc.equal(pc.utf8_trim_whitespace(c), "") for c in table.columns))
    keep = pc.invert(blank)
    table, lines = table.filter(keep), pa.array(starts[parsed]).filter(keep)
    return _readable_rows(table, lines, "line", nul=stream.nul, long=size > FIELD_MAX, problems=problems)


def _parse_csv(source: Any, header: list[str], invalid_row: Callable[[Any], str], *, use_threads: bool) -> pa.Table:
    return pacsv.read_csv(
        source,
        read_options=pacsv.ReadOptions(encoding="utf8", block_size=64 << 20, use_threads=use_threads),
        parse_options=_csv_parsing(invalid_row),
        convert_options=pacsv.ConvertOptions(
            column_types={name: pa.string() for name in header},
            strings_can_be_null=False,
            quoted_strings_can_be_null=False,
        ),
    )


def _csv_parsing(invalid_row: Callable[[Any], str]) -> pacsv.ParseOptions:
    # Blank lines become rows of empty fields, so that they keep their place in the count.
    return pacsv.ParseOptions(newlines_in_values=True, ignore_empty_lines=False, invalid_row_handler=invalid_row)


def _blank_row(text: str) -> bool:
    """Whether a row's fields are all blank (the row-wise import skips such a row whatever its
    number of fields, e.g. a line of spaces)."""
    fields = next(csv.reader(io.StringIO(text, newline="")), [])
    return not any(field.strip() for field in fields)


def _readable_rows(
    table: pa.Table, lines: pa.Array, label: str, *, nul: bool, long: bool, problems: list[Problem]
) -> Read:
    """The rows without an unreadable field (`files.field_problem`: over-long, or holding a NUL),
    checked column-wise, and a problem for each such field, as the row-wise reader has them.
    `nul` and `long` say whether the file may hold either at all."""
    bad_rows = None
    for name in table.column_names if nul or long else ():
        column = table.column(name)
        # A field of no more bytes than FIELD_MAX has no more characters: most columns stop here.
        too_long = None
        if long and (pc.max(pc.binary_length(column)).as_py() or 0) > FIELD_MAX:
            too_long = pc.greater(pc.utf8_length(column), FIELD_MAX)
        has_nul = pc.match_substring(column, "\x00") if nul else None
        if has_nul is not None and too_long is not None:
            has_nul = pc.and_(has_nul, pc.invert(too_long))
        for mask, why in ((too_long, TOO_LONG), (has_nul, HAS_NUL)):
            if mask is None or not pc.any(mask).as_py():
                continue
            where = pc.filter(lines, mask).to_pylist()
            problems += [Problem(f"{label} {line}, column {name}", why, line=line, column=name) for line in where]
            bad_rows = mask if bad_rows is None else pc.or_(bad_rows, mask)
    if bad_rows is None:
        return table, lines, problems
    keep = pc.invert(bad_rows)
    return table.filter(keep), pc.filter(lines, keep), problems


# --- JSON Lines and Parquet ---------------------------------------------------------------------------


def _read_jsonl(path: Path) -> Read:
    """JSON Lines read by the row-wise reader's function (`files.jsonl_rows`): values as text,
    physical line numbers; Arrow's JSON reader would guess dates and numbers, drop the line
    numbers, and stop at an object longer than its block."""
    rows: list[dict[str, str | None]] = []
    lines: list[int] = []
    problems: list[Problem] = []
    try:
        with path.open("rb") as fh:
            for number, values in jsonl_rows(fh, RECORD_COLUMNS, RECORD_OPTIONAL, problems):
                lines.append(number)
                rows.append(values)
    except Unreadable as exc:
        raise _Refused([exc.problem]) from None
    if problems and not lines:
        raise _Refused(problems)
    table = pa.Table.from_pylist(rows, _JSONL_SCHEMA)
    return table, pa.array(lines, pa.int64()), problems


_JSONL_SCHEMA = pa.schema([(name, pa.string()) for name in RECORD_COLUMNS + RECORD_OPTIONAL])


def _text(kind: pa.DataType) -> bool:
    return bool(
        pa.types.is_string(kind)
        or pa.types.is_large_string(kind)
        or pa.types.is_string_view(kind)
        or pa.types.is_null(kind)
        or (pa.types.is_dictionary(kind) and _text(kind.value_type))
    )


# Besides text: amounts as integers or decimals (exact; a binary float is not the decimal the
# sender wrote, so it is refused, as the HTTP API refuses a JSON number), days as dates.
_ALSO: dict[str, tuple[Callable[[pa.DataType], bool], str]] = {
    "amount": (lambda t: pa.types.is_integer(t) or pa.types.is_decimal(t), "text, integers or decimals"),
    "occurred_on": (lambda t: pa.types.is_date(t), "text or dates"),
}


def _read_parquet(path: Path) -> Read:
    """A Parquet file's columns, named by the file's schema ("columns, column X"): text, and for
    `amount` and `occurred_on` the types that are what they say exactly (`_ALSO`)."""
    # ParquetFile, not read_table: the dataset layer behind the latter imports pandas (1 s).
    table = pq.ParquetFile(path).read()
    problems = header_problems(table.column_names, RECORD_COLUMNS, RECORD_OPTIONAL, where="columns")
    for name, column in zip(table.column_names, table.columns, strict=True):
        allowed, words = _ALSO.get(name.strip(), (lambda _t: False, "text"))
        if not (_text(column.type) or allowed(column.type)):
            why = f"a column of {words} is required, not {column.type}"
            problems.append(Problem(f"columns, column {name}", why, line=1, column=name))
    if problems:
        raise _Refused(problems)
    lines = pa.array(np.arange(1, table.num_rows + 1, dtype=np.int64))
    texts = pa.table(
        {
            name: column if pa.types.is_string(column.type) else pc.cast(column, pa.string())
            for name, column in zip(table.column_names, table.columns, strict=True)
        }
    )
    return _readable_rows(texts, lines, "row", nul=True, long=True, problems=[])
