"""How the bulk import reads a file: Parquet, CSV or JSON Lines into one Arrow table of text
columns, each row numbered with its line in the file (or its row in a Parquet file), so that the
checks report problems where an agency looks for them — at the lines the row-wise import names.
"""

from __future__ import annotations

import csv
import functools
import io
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from xinyong.errors import BadInput, Problem
from xinyong.ledger.files import MAX_PROBLEMS, RECORD_COLUMNS, RECORD_OPTIONAL

LINE = "__line__"  # every reader numbers its rows here, as the file's own lines (Parquet: rows)


def read_table(path: Path) -> tuple[pa.Table, str]:
    """The file as a table of strings with each row's line (`LINE`), and how rows are named."""
    suffix = path.suffix.lower()
    try:
        if suffix == ".parquet":
            # ParquetFile, not read_table: the dataset layer behind the latter imports pandas (1 s).
            table = pq.ParquetFile(path).read()
            label = "row"
            lines = pa.array(np.arange(1, table.num_rows + 1, dtype=np.int64))
        elif suffix == ".csv":
            table, lines = _read_csv(path)
            label = "line"
        elif suffix in {".jsonl", ".ndjson"}:
            return _read_jsonl(path), "line"
        else:
            raise BadInput(f"{path.name}: use a .parquet, .csv or .jsonl file")
    except pa.ArrowInvalid as exc:
        raise BadInput(f"{path.name}: cannot be read: {exc}") from None
    except OSError as exc:
        raise BadInput(f"cannot read {path}: {exc}") from None
    columns = {}
    for name in table.column_names:
        column = table.column(name)
        columns[name.strip()] = column if column.type == pa.string() else pc.cast(column, pa.string())
    columns[LINE] = lines
    return pa.table(columns), label


# A line ends at \r\n, \r or \n, as for the csv module that the row-wise import reads with.
_LINE_BREAK = "\r\n|\r|\n"


def _read_csv(path: Path) -> tuple[pa.Table, pa.Array]:
    """Rows and the physical line each starts on: a quoted field may hold line breaks, and blank
    lines are skipped as by the row-wise import (rows whose fields are all blank, counted as lines).
    A row with more or fewer fields than the header is reported with its line, as row-wise."""
    header = pacsv.open_csv(path, parse_options=_csv_parsing(lambda _row: "skip")).schema.names
    set_aside: list[Any] = []  # pyarrow.csv.InvalidRow: rows Arrow could not split into the header's fields

    def keep_aside(row: Any) -> str:
        set_aside.append(row)
        return "skip"

    table = _parse_csv(path, header, keep_aside, use_threads=True)
    if set_aside:
        # The parallel reader cannot number the rows it sets aside (a block does not know how many
        # rows came before it); the serial one can. Only such files are read a second time.
        set_aside.clear()
        table = _parse_csv(path, header, keep_aside, use_threads=False)
    rows = table.num_rows + len(set_aside)
    aside = np.array([row.number - 2 for row in set_aside], dtype=np.int64)  # Arrow's row 1 is the header
    parsed = np.ones(rows, dtype=bool)
    parsed[aside] = False
    breaks = np.zeros(rows, dtype=np.int64)
    breaks[aside] = [len(re.findall(_LINE_BREAK, row.text)) for row in set_aside]
    for column in table.columns:
        if pc.any(pc.match_substring_regex(column, "[\r\n]")).as_py():
            counted = pc.count_substring_regex(column, _LINE_BREAK).to_numpy(zero_copy_only=False)
            breaks[parsed] += counted
    first = 2 + sum(len(re.findall(_LINE_BREAK, name)) for name in header)
    starts = np.cumsum(breaks) - breaks + np.arange(first, first + rows)
    problems = [
        Problem(f"line {line}", f"{row.actual_columns} fields, the header has {row.expected_columns}", line=line)
        for row, line in zip(set_aside, starts[aside].tolist(), strict=True)
        if not _blank_row(row.text)
    ]
    if problems:
        more = f" (showing the first {MAX_PROBLEMS})" if len(problems) > MAX_PROBLEMS else ""
        message = f"{path.name}: {len(problems)} problem(s){more}; nothing was imported"
        raise BadInput(message, problems[:MAX_PROBLEMS])
    blank = functools.reduce(pc.and_, (pc.equal(pc.utf8_trim_whitespace(c), "") for c in table.columns))
    keep = pc.invert(blank)
    return table.filter(keep), pa.array(starts[parsed]).filter(keep)


def _parse_csv(path: Path, header: list[str], invalid_row: Callable[[Any], str], *, use_threads: bool) -> pa.Table:
    return pacsv.read_csv(
        path,
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


def _read_jsonl(path: Path) -> pa.Table:
    """JSON Lines read as the row-wise import reads them (values as text, physical line numbers);
    Arrow's JSON reader would guess dates and numbers, and drop the line numbers."""
    import orjson

    columns: dict[str, list[str | None]] = {name: [] for name in RECORD_COLUMNS + RECORD_OPTIONAL}
    lines: list[int] = []
    problems: list[Problem] = []
    with path.open("rb") as fh:
        for number, raw in enumerate(fh, start=1):
            if not raw.strip():
                continue
            try:
                value = orjson.loads(raw)
            except orjson.JSONDecodeError as exc:
                problems.append(Problem(f"line {number}", f"not JSON: {exc}", line=number))
                continue
            if not isinstance(value, dict):
                problems.append(Problem(f"line {number}", "each line must be a JSON object", line=number))
                continue
            for key in sorted(set(value) - set(columns)):
                problems.append(Problem(f"line {number}, column {key}", "unknown column", line=number, column=key))
            for key in RECORD_COLUMNS:
                if key not in value:
                    problems.append(Problem(f"line {number}, column {key}", "missing", line=number, column=key))
            lines.append(number)
            for key, values in columns.items():
                item = value.get(key)
                values.append(None if item is None else str(item).strip())
    if problems:
        raise BadInput(f"{path.name}: {len(problems)} problem(s); nothing was imported", problems[:MAX_PROBLEMS])
    table = pa.table({k: pa.array(v, pa.string()) for k, v in columns.items()})
    return table.append_column(LINE, pa.array(lines, pa.int64()))
