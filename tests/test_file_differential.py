"""One reading of every file: the row-wise import (`ledger.files` → `ledger.imports`) and the bulk
import (`ledger.bulk_files` → `ledger.bulk`) given the same bad and odd files.

Each case of the corpus is written into a temporary folder and imported both ways into two stores
set up alike: both accept it, storing the same rows, or both refuse it with the same problems —
(line, column, reason), word for word — and the same message. Each case also says what the answer
must be, so that the two paths cannot agree on a wrong one. Parquet files, which only the bulk path
reads, are compared with the same values written as JSON Lines; subjects files, which only the
row-wise path reads, are held to the same reading rules.

A comment "REGRESSION" names each case that failed before "one reading of every file" (issue 16,
item 3), and how: silently merged or stored, refused by one path only, or refused otherwise.
"""

from __future__ import annotations

import datetime
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from sqlalchemy import select

from helpers import World, at, bulk_import, org_id, person_id
from xinyong.due_process.after_append import AFTER_APPEND
from xinyong.errors import BadInput
from xinyong.ledger import imports
from xinyong.ledger.files import FIELD_MAX
from xinyong.storage import tables as t
from xinyong.storage.store import Store

NOW = at("2026-03-02")
P = person_id(1)  # registered by `World.standard`
X = person_id(7)  # registered below; its check character is X
H = "subject_id,behaviour,occurred_on,document_ref,amount,note"
LONG = FIELD_MAX + 1

# What a case must come to: the number of records imported, or the problems, each (line, column,
# words of the reason), all of them.
Expected = int | list[tuple[int | None, str | None, str]]


def row(ref: str, day: str = "2026-01-15", amount: str = "", note: str = "", *, subject: str = P) -> str:
    return f"{subject},COURT.DEFAULT,{day},{ref},{amount},{note}"


def csv(*lines: str, end: str = "\n") -> bytes:
    return (end.join(lines) + end).encode()


def record(ref: Any, **more: Any) -> dict[str, Any]:
    return {"subject_id": P, "behaviour": "COURT.DEFAULT", "occurred_on": "2026-01-15", "document_ref": ref, **more}


def written(ref: str, more: str) -> str:
    """A line of JSON Lines as written by hand: a record with `more` members (JSON text)."""
    return (
        f'{{"subject_id": "{P}", "behaviour": "COURT.DEFAULT", "occurred_on": "2026-01-15", '
        f'"document_ref": "{ref}", {more}}}'
    )


def jsonl(*lines: dict[str, Any] | str) -> bytes:
    return "".join(
        (line if isinstance(line, str) else json.dumps(line, ensure_ascii=False)) + "\n" for line in lines
    ).encode()


@dataclass(frozen=True)
class Case:
    file: str  # the file's name: its suffix chooses the reader
    body: Callable[[str], bytes]  # the file's bytes, given the case's reference prefix
    expected: Expected
    stored: dict[str, tuple[str | None, str | None]] | None = None  # reference → (amount, note), when accepted


NUL = "\x00"
NOTE_LINES = '"two\nlines"'

CASES: dict[str, Case] = {
    # --- quotes ---------------------------------------------------------------------------------
    # REGRESSION: both paths merged the next line into the note and imported "1 record", exit 0.
    "csv-unclosed-quote-at-the-end": Case(
        "r.csv", lambda r: csv(H, row(f"{r}1"), row(f"{r}2", note='"abc'), row(f"{r}3")), [(3, "note", "never closed")]
    ),
    # REGRESSION: as above, the quote opening in the middle of the file and swallowing the rest.
    "csv-unclosed-quote-mid-file": Case(
        "r.csv",
        lambda r: csv(H, row(f"{r}1"), row(f"{r}2", day="2026-13-01"), row(f"{r}3", note='"a'), row(f"{r}4"), ""),
        [(3, "occurred_on", "not a date"), (4, "note", "never closed")],
    ),
    # REGRESSION: the quote opens on the record's second line, after a quoted line break.
    "csv-unclosed-quote-after-a-quoted-line-break": Case(
        "r.csv", lambda r: csv(H, f'{P},COURT.DEFAULT,2026-01-15,"{r}\n1",,"x'), [(3, "note", "never closed")]
    ),
    # REGRESSION: a lone quote on a line swallowed the lines after it.
    "csv-lone-quote": Case(
        "r.csv", lambda r: csv(H, row(f"{r}1"), '"', row(f"{r}2")), [(3, "subject_id", "never closed")]
    ),
    # REGRESSION: a quote never closed in the header; the bulk path named the header's columns.
    "csv-unclosed-quote-in-the-header": Case(
        "r.csv",
        lambda r: csv('subject_id,behaviour,occurred_on,"document_ref', row(f"{r}1")),
        [(1, None, "never closed")],
    ),
    "csv-quoted-line-breaks": Case(
        "r.csv",
        lambda r: csv(
            H,
            row(f"{r}1", note=NOTE_LINES),
            row(f"{r}2", note='"a\r\nb\rc"', day="2026-02-30"),
            row(f"{r}3", note='"say ""hi"""'),
        ),
        [(4, "occurred_on", "not a date")],
    ),
    "csv-quoted-line-breaks-accepted": Case(
        "r.csv",
        lambda r: csv(H, row(f"{r}1", note='"a\r\nb"'), row(f"{r}2", note='"say ""hi"""')),
        2,
        stored={"1": (None, "a\r\nb"), "2": (None, 'say "hi"')},
    ),
    "csv-quote-inside-an-unquoted-field": Case(
        "r.csv", lambda r: csv(H, row(f"{r}1", note='5" disk')), 1, {"1": (None, '5" disk')}
    ),
    "csv-text-after-a-closing-quote": Case(
        "r.csv", lambda r: csv(H, row(f"{r}1", note='"ab"c')), 1, {"1": (None, "abc")}
    ),
    # --- line endings, blank lines, whitespace ----------------------------------------------------
    "csv-crlf": Case(
        "r.csv",
        lambda r: csv(H, row(f"{r}1"), row(f"{r}2", day="2026-13-01"), end="\r\n"),
        [(3, "occurred_on", "not a date")],
    ),
    "csv-cr-only": Case(
        "r.csv", lambda r: csv(H, row(f"{r}1"), "", row(f"{r}2", amount="x"), end="\r"), [(4, "amount", "not a number")]
    ),
    "csv-no-line-break-at-the-end": Case("r.csv", lambda r: csv(H, row(f"{r}1"), row(f"{r}2"), end="\n")[:-1], 2),
    "csv-blank-lines-and-lines-of-spaces": Case(
        "r.csv",
        lambda r: csv(H, "", row(f"{r}1"), "   ", " , ,,,,", "\t", ",,", row(f"{r}2", day="x")),
        [(8, "occurred_on", "not a date")],
    ),
    # REGRESSION: the bulk path trimmed spaces only (DuckDB's trim): a tab after the behaviour made
    # it unknown, and a note ending in an ideographic space was stored with it.
    "csv-whitespace-around-values": Case(
        "r.csv",
        lambda r: csv(H, f" {P} ,COURT.DEFAULT\t, 2026-01-15 ,\t{r}1 , 12.5 ,\u3000备注\u3000"),
        1,
        stored={"1": ("12.50", "备注")},
    ),
    # REGRESSION: the paths disagreed (row-wise: four required columns missing; bulk: a column
    # named '' and rows of the wrong number of fields).
    "csv-blank-first-line": Case(
        "r.csv", lambda r: csv("", H, row(f"{r}1")), [(1, None, "first line must be the header")]
    ),
    # --- encodings and BOMs -----------------------------------------------------------------------
    # REGRESSION: refused without a line by both (the bulk path: Arrow's "invalid UTF8 data").
    "csv-gb18030": Case(
        "r.csv",
        lambda r: (H + "\n" + row(f"{r}1") + "\n" + row(f"{r}2", note="张三") + "\n").encode("gb18030"),
        [(3, None, "not UTF-8")],
    ),
    # REGRESSION: the bulk path crashed (UnicodeDecodeError, exit 1).
    "csv-gb18030-in-the-header": Case("r.csv", lambda r: ("备注," + H + "\n").encode("gb18030"), [(1, None, "byte 0")]),
    # REGRESSION: the bulk path said "cannot be read: … invalid UTF8 data", naming no line.
    "csv-latin-1-after-a-quoted-line-break": Case(
        "r.csv",
        lambda r: (H + "\n" + row(f"{r}1", note=NOTE_LINES) + "\n" + row(f"{r}2", note="café") + "\n").encode(
            "latin-1"
        ),
        [(4, None, "not UTF-8")],
    ),
    # REGRESSION: the bulk path crashed (UnicodeDecodeError, exit 1).
    "csv-utf-16": Case("r.csv", lambda r: (H + "\n" + row(f"{r}1") + "\n").encode("utf-16"), [(1, None, "byte 0")]),
    "csv-bom": Case("r.csv", lambda r: b"\xef\xbb\xbf" + csv(H, row(f"{r}1")), 1),
    "csv-two-boms": Case(
        "r.csv",
        lambda r: b"\xef\xbb\xbf\xef\xbb\xbf" + csv(H, row(f"{r}1")),
        [(1, "\ufeffsubject_id", "unknown column"), (1, "subject_id", "required column is missing")],
    ),
    # REGRESSION: the bulk path said "cannot be read: Empty CSV file", with no problem.
    "csv-a-bom-alone": Case("r.csv", lambda r: b"\xef\xbb\xbf", [(1, None, "empty")]),
    # --- empty files, headers ---------------------------------------------------------------------
    # REGRESSION: as above.
    "csv-0-bytes": Case("r.csv", lambda r: b"", [(1, None, "empty")]),
    "csv-header-only": Case("r.csv", lambda r: csv(H), 0),
    # REGRESSION: the bulk path refused a header without a line break ("Empty CSV file or block").
    "csv-header-only-without-a-line-break": Case("r.csv", lambda r: H.encode(), 0),
    # REGRESSION: the bulk path kept the last of two columns of one name and imported the file.
    "csv-duplicated-header": Case("r.csv", lambda r: csv(H + ",note", row(f"{r}1") + ",x"), [(1, "note", "twice")]),
    # REGRESSION: the bulk path imported the file.
    "csv-duplicated-header-after-trimming": Case(
        "r.csv", lambda r: csv(H + ", note ", row(f"{r}1") + ",x"), [(1, "note", "twice")]
    ),
    "csv-unknown-and-missing-columns": Case(
        "r.csv",
        lambda r: csv("subject_id,behaviour,document_ref,colour", f"{P},COURT.DEFAULT,{r}1,red"),
        [(1, "colour", "unknown column"), (1, "occurred_on", "required column is missing")],
    ),
    # REGRESSION: the bulk path reported the NUL's column as unknown and another as missing.
    "csv-nul-in-the-header": Case(
        "r.csv", lambda r: csv(H.replace("note", f"no{NUL}te"), row(f"{r}1")), [(1, None, "NUL")]
    ),
    # --- NUL, sizes -------------------------------------------------------------------------------
    # REGRESSION: the bulk path stored the NUL on SQLite (the row-wise path refused it).
    "csv-nul-in-a-note": Case(
        "r.csv", lambda r: csv(H, row(f"{r}1"), row(f"{r}2", note=f"a{NUL}b")), [(3, "note", "NUL")]
    ),
    # REGRESSION: the bulk path called the behaviour unknown rather than the NUL unreadable.
    "csv-nul-in-a-behaviour": Case(
        "r.csv", lambda r: csv(H, f"{P},COURT.DEFAULT{NUL},2026-01-15,{r}1,,"), [(2, "behaviour", "NUL")]
    ),
    # A line with a problem of form is left out: its reference is not a first appearance.
    # REGRESSION: the bulk path took the NUL, then refused the day and the repeated reference.
    "csv-an-unreadable-line-is-not-read-further": Case(
        "r.csv",
        lambda r: csv(H, row(f"{r}1", note=NUL, day="x"), row(f"{r}1", amount="-1")),
        [(2, "note", "NUL"), (3, "amount", "non-negative")],
    ),
    "csv-field-at-the-limit": Case("r.csv", lambda r: csv(H, row(f"{r}1", note="x" * FIELD_MAX)), 1),
    # REGRESSION: the row-wise path stopped reading at the field ("unreadable CSV: field larger
    # than field limit", no column); the bulk path stored it.
    "csv-field-over-the-limit": Case(
        "r.csv",
        lambda r: csv(H, row(f"{r}1", note="x" * LONG), row(f"{r}2", day="x")),
        [(2, "note", "longer than 131,072"), (3, "occurred_on", "not a date")],
    ),
    "csv-the-limit-counts-characters-not-bytes": Case(
        "r.csv", lambda r: csv(H, row(f"{r}1", note="信" * FIELD_MAX)), 1
    ),
    # REGRESSION: a quoted over-long field that spans lines; the row-wise path lost the lines after it.
    "csv-huge-quoted-field-across-lines": Case(
        "r.csv",
        lambda r: csv(H, row(f"{r}1", note='"' + "y\n" * (LONG // 2 + 1) + '"'), row(f"{r}2", day="x")),
        [(2, "note", "longer than"), (LONG // 2 + 4, "occurred_on", "not a date")],
    ),
    "csv-very-long-line-of-many-fields": Case(
        "r.csv", lambda r: csv(H, row(f"{r}1") + "," * 200_000), [(2, None, "200006 fields, the header has 6")]
    ),
    # REGRESSION: row-wise "unreadable CSV: field larger than field limit" with no column; bulk:
    # "a document reference of 1 to 128 characters is required".
    "csv-very-long-document-reference": Case(
        "r.csv", lambda r: csv(H, row("R" * 300_000)), [(2, "document_ref", "longer than")]
    ),
    "csv-empty-fields": Case(
        "r.csv",
        lambda r: csv(H, ",,,,,", f"{P},,,,,"),
        [(3, "behaviour", "unknown behaviour"), (3, "occurred_on", "not a date"), (3, "document_ref", "1 to 128")],
    ),
    # REGRESSION: the bulk path reported only the rows with a wrong number of fields, not the bad
    # values of the other lines.
    "csv-wrong-number-of-fields-and-bad-values": Case(
        "r.csv",
        lambda r: csv(
            H,
            row(f"{r}1", day="2026-02-30"),
            row(f"{r}2") + ",extra",
            f"{P},COURT.DEFAULT",
            row(f"{r}3", amount="1.005"),
        ),
        [(2, "occurred_on", "not a date"), (3, None, "7 fields"), (4, None, "2 fields"), (5, "amount", "two decimals")],
    ),
    "csv-lower-case-x-in-an-id": Case("r.csv", lambda r: csv(H, row(f"{r}1", subject=X.lower())), 1),
    # --- JSON Lines -------------------------------------------------------------------------------
    # REGRESSION: both paths stored a 10 MB note.
    "jsonl-huge-note": Case(
        "r.jsonl", lambda r: jsonl(record(f"{r}1", note="x" * 10_000_000)), [(1, "note", "longer than")]
    ),
    # REGRESSION: both stored "{'x': [1, 2]}" and "True" as notes.
    "jsonl-object-and-boolean": Case(
        "r.jsonl",
        lambda r: jsonl(record(f"{r}1", note={"x": [1, 2]}), record(f"{r}2", note=True), record(f"{r}3", note=[1])),
        [(1, "note", "not an object"), (2, "note", "not true or false"), (3, "note", "not an array")],
    ),
    # REGRESSION: a number where text is meant was stored as its Python text ("123", "1.5").
    "jsonl-numbers-outside-amount": Case(
        "r.jsonl",
        lambda r: jsonl(record(123), record(f"{r}2", note=1.5), record(f"{r}3", subject_id=110105199001010010)),
        [(1, "document_ref", "not a number"), (2, "note", "not a number"), (3, "subject_id", "not a number")],
    ),
    # REGRESSION: 1234567890123456.78 was read as a binary float and stored as ….80.
    "jsonl-numbers-for-amount-as-written": Case(
        "r.jsonl",
        lambda r: jsonl(
            record(f"{r}1", amount=12),
            written(f"{r}2", '"amount": 1234567890123456.78'),
            written(f"{r}3", '"amount": 1.10e1'),
            record(f"{r}4", amount="7.5"),
        ),
        4,
        stored={"1": ("12.00", None), "2": ("1234567890123456.78", None), "3": ("11.00", None), "4": ("7.50", None)},
    ),
    # REGRESSION: orjson (bulk) read 10^20 as the float 1e+20, json (row-wise) as an integer: the
    # two paths gave the refusal in other words.
    "jsonl-amounts-out-of-range": Case(
        "r.jsonl",
        lambda r: jsonl(
            record(f"{r}1", amount=100000000000000000000), record(f"{r}2", amount=-3), record(f"{r}3", amount=0.001)
        ),
        [(1, "amount", "100000000000000000000 is not"), (2, "amount", "-3 is not"), (3, "amount", "two decimals")],
    ),
    # REGRESSION: read as the text "True" ("'True' is not a number").
    "jsonl-boolean-amount": Case(
        "r.jsonl", lambda r: jsonl(record(f"{r}1", amount=True)), [(1, "amount", "string or number, not true")]
    ),
    # REGRESSION: the row-wise path read NaN (json accepts it) and refused it as an amount; the
    # bulk path (orjson) refused it as JSON.
    "jsonl-nan-amount": Case(
        "r.jsonl",
        lambda r: jsonl(written(f"{r}1", '"amount": NaN')),
        [(1, None, "not JSON")],
    ),
    "jsonl-nulls": Case(
        "r.jsonl",
        lambda r: jsonl(record(f"{r}1", note=None, amount=None), record(None)),
        [(2, "document_ref", "1 to 128")],
    ),
    # REGRESSION: the bulk path refused a BOM ("not JSON") that the row-wise path skipped.
    "jsonl-bom": Case("r.jsonl", lambda r: b"\xef\xbb\xbf" + jsonl(record(f"{r}1"), record(f"{r}2")), 2),
    # REGRESSION: refused by both in other words (json's and orjson's messages).
    "jsonl-bom-not-at-the-start": Case(
        "r.jsonl", lambda r: jsonl(record(f"{r}1")) + b"\xef\xbb\xbf" + jsonl(record(f"{r}2")), [(2, None, "not JSON")]
    ),
    # The issue found the paths disagreeing on an empty JSON Lines file: no lines, no records.
    "jsonl-0-bytes": Case("r.jsonl", lambda r: b"", 0),
    "jsonl-blank-lines-only": Case("r.jsonl", lambda r: b"\n \r\n\t\n", 0),
    "jsonl-crlf-and-blank-lines": Case(
        "r.jsonl",
        lambda r: jsonl(record(f"{r}1")).replace(b"\n", b"\r\n") + b"\r\n \n" + jsonl(record(f"{r}2", occurred_on="x")),
        [(4, "occurred_on", "not a date")],
    ),
    # REGRESSION: the row-wise path skipped a line of ideographic spaces as blank; the bulk path
    # refused it as JSON.
    "jsonl-a-line-of-unicode-spaces": Case(
        "r.jsonl", lambda r: jsonl(record(f"{r}1"), "\u3000"), [(2, None, "not JSON")]
    ),
    # REGRESSION: refused without a line (row-wise) or as "not JSON" (bulk).
    "jsonl-gb18030": Case(
        "r.jsonl",
        lambda r: (
            jsonl(record(f"{r}1")) + json.dumps(record(f"{r}2", note="张三"), ensure_ascii=False).encode("gb18030")
        ),
        [(2, None, "not UTF-8")],
    ),
    # REGRESSION: both kept the last value of a key named twice, silently.
    "jsonl-duplicated-key": Case(
        "r.jsonl",
        lambda r: jsonl(
            written(f"{r}1", '"note": "a", "note": "b"'),
            written(f"{r}2", '"note": ":", "\\u006eote": ":"'),  # n escaped
        ),
        [(1, "note", "twice"), (2, "note", "twice")],
    ),
    # REGRESSION: the bulk path stored the NUL (SQLite).
    "jsonl-escaped-nul": Case("r.jsonl", lambda r: jsonl(record(f"{r}1", note="a\x00b")), [(1, "note", "NUL")]),
    # REGRESSION: json (row-wise) read a lone surrogate that no store can hold; orjson refused it.
    "jsonl-lone-surrogate": Case(
        "r.jsonl",
        lambda r: jsonl(written(f"{r}1", '"note": "\\ud800"')),
        [(1, None, "not JSON")],
    ),
    # REGRESSION: refused by both in other words.
    "jsonl-raw-control-character": Case(
        "r.jsonl", lambda r: jsonl(record(f"{r}1")).replace(b'"COURT', b'"\x01COURT'), [(1, None, "not JSON")]
    ),
    # REGRESSION: "not JSON" in other words on each path.
    "jsonl-not-objects-and-not-json": Case(
        "r.jsonl",
        lambda r: jsonl(
            record(f"{r}1"), "[1, 2]", '"text"', "{not json", record(f"{r}2", colour="red"), {"document_ref": f"{r}3"}
        ),
        [
            (2, None, "JSON object"),
            (3, None, "JSON object"),
            (4, None, "not JSON"),
            (5, "colour", "unknown column"),
            (6, "subject_id", "missing"),
            (6, "behaviour", "missing"),
            (6, "occurred_on", "missing"),
        ],
    ),
    "jsonl-whitespace-around-values": Case(
        "r.jsonl",
        lambda r: jsonl(
            record(f" {r}1\t", subject_id=f" {P}", behaviour="COURT.DEFAULT\u3000", amount=" 5 ", note=" 备注\n")
        ),
        1,
        stored={"1": ("5.00", "备注")},
    ),
    "jsonl-line-separators-inside-strings": Case(
        "r.jsonl", lambda r: jsonl(record(f"{r}1", note="a\u2028b\u0085c\rd")), 1, {"1": (None, "a\u2028b\u0085c\rd")}
    ),
}


@pytest.fixture(scope="module")
def stores(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Store]]:
    """Two stores set up alike, one for each path."""
    made = {}
    for way in ("rows", "bulk"):
        store = Store(f"sqlite:///{tmp_path_factory.mktemp(way) / 'store.db'}")
        store.migrate()
        world = World(store)
        world.standard()
        world.subjects([(X, "person", "李四")])
        made[way] = store
    yield made
    for store in made.values():
        store.dispose()


Outcome = tuple[Any, ...]


def import_rows(store: Store, path: Path, source: str = "court") -> Outcome:
    try:
        with store.write() as conn:
            result = imports.import_records(
                conn, path.name, path.read_bytes(), source=source, now=NOW, actor="test", after=AFTER_APPEND
            )
    except BadInput as exc:
        return refusal(exc)
    return ("imported", result.imported, result.already_present, result.lines)


def import_bulk(store: Store, path: Path, source: str = "court") -> Outcome:
    try:
        result = bulk_import(store, path, source=source, now=NOW, actor="test")
    except BadInput as exc:
        return refusal(exc)
    return ("imported", result.imported, result.already_present, result.lines)


def refusal(exc: BadInput) -> Outcome:
    problems = sorted((p.line or 0, p.column or "", p.why) for p in exc.problems)
    return ("refused", exc.message, problems)


def stored(store: Store, prefix: str) -> list[tuple[Any, ...]]:
    query = select(t.records).where(t.records.c.document_ref.startswith(prefix, autoescape=True))
    with store.read() as conn:
        return sorted(
            (r.document_ref, r.subject_id, r.behaviour, r.occurred_on, r.amount, r.note) for r in conn.execute(query)
        )


def assert_expected(outcome: Outcome, expected: Expected) -> None:
    if isinstance(expected, int):
        assert outcome[0] == "imported", outcome
        assert outcome[1] == expected, outcome
        return
    assert outcome[0] == "refused", outcome
    problems = outcome[2]
    assert len(problems) == len(expected), problems
    for line, column, words in expected:
        found = [why for at_line, at_column, why in problems if (at_line, at_column) == (line or 0, column or "")]
        assert any(words in why for why in found), f"no problem at {line}, {column} with {words!r}: {problems}"


@pytest.mark.parametrize("case", list(CASES))
def test_both_paths_read_every_file_alike(stores: dict[str, Store], tmp_path: Path, case: str) -> None:
    """Both accept and store the same rows, or both refuse with the same (line, column, reason)."""
    spec = CASES[case]
    prefix = f"{case}:"
    outcomes = {}
    for way, read in (("rows", import_rows), ("bulk", import_bulk)):
        folder = tmp_path / way
        folder.mkdir()
        path = folder / spec.file
        path.write_bytes(spec.body(prefix))
        outcomes[way] = read(stores[way], path)
    assert outcomes["rows"] == outcomes["bulk"]
    assert_expected(outcomes["rows"], spec.expected)
    assert stored(stores["rows"], prefix) == stored(stores["bulk"], prefix)
    if isinstance(spec.expected, int):
        assert len(stored(stores["rows"], prefix)) == spec.expected
    for suffix, (amount, note) in (spec.stored or {}).items():
        [kept] = [r for r in stored(stores["rows"], prefix) if r[0] == prefix + suffix]
        assert (None if kept[4] is None else str(kept[4]), kept[5]) == (amount, note)


def test_the_corpus_is_large_enough() -> None:
    assert len(CASES) + len(PARQUET_CASES) + len(SUBJECT_CASES) >= 40


# --- Parquet: the bulk path only, held to the same values written as JSON Lines -------------------


@dataclass(frozen=True)
class ParquetCase:
    table: Callable[[str], pa.Table]  # given the reference prefix
    expected: Expected
    twin: Callable[[str], bytes] | None = None  # the same values as JSON Lines, read row-wise alike


def _refs(prefix: str, n: int = 2) -> pa.Array:
    return pa.array([f"{prefix}{i}" for i in range(1, n + 1)])


def _base(prefix: str, n: int = 2, **columns: Any) -> pa.Table:
    data = {
        "subject_id": pa.array([P] * n),
        "behaviour": pa.array(["COURT.DEFAULT"] * n),
        "occurred_on": pa.array(["2026-01-15"] * n),
        "document_ref": _refs(prefix, n),
    }
    return pa.table({**data, **columns})


PARQUET_CASES: dict[str, ParquetCase] = {
    "parquet-integers-decimals-and-dates": ParquetCase(
        lambda r: _base(
            r,
            3,
            occurred_on=pa.array([datetime.date(2026, 1, 15)] * 3, pa.date32()),
            amount=pa.array([Decimal("12.50"), Decimal("0.00"), None], pa.decimal128(18, 2)),
        ),
        3,
        lambda r: jsonl(record(f"{r}1", amount="12.50"), record(f"{r}2", amount="0.00"), record(f"{r}3")),
    ),
    "parquet-integer-amounts": ParquetCase(
        lambda r: _base(r, amount=pa.array([5, -1], pa.int64())),
        [(2, "amount", "-1 is not")],
        lambda r: jsonl(record(f"{r}1", amount=5), record(f"{r}2", amount=-1)),
    ),
    # REGRESSION: a boolean note was stored as "true".
    "parquet-boolean-note": ParquetCase(lambda r: _base(r, note=pa.array([True, False])), [(1, "note", "not bool")]),
    # REGRESSION: a binary float amount was read as its shortest decimal.
    "parquet-float-amount": ParquetCase(lambda r: _base(r, amount=pa.array([0.1, 2.5])), [(1, "amount", "not double")]),
    # Refused before on every row ("'2026-01-15 00:00:00.000' is not a date"); now once, by its column.
    "parquet-timestamp-day": ParquetCase(
        lambda r: _base(r, occurred_on=pa.array([datetime.datetime(2026, 1, 15)] * 2, pa.timestamp("s"))),
        [(1, "occurred_on", "not timestamp")],
    ),
    # REGRESSION: the bulk path crashed (ArrowNotImplementedError, exit 1).
    "parquet-list-subject": ParquetCase(
        lambda r: _base(r, subject_id=pa.array([[P], [P]])), [(1, "subject_id", "not list")]
    ),
    # REGRESSION: a NUL was stored on SQLite.
    "parquet-nul": ParquetCase(
        lambda r: _base(r, note=pa.array(["ok", f"a{NUL}b"])),
        [(2, "note", "NUL")],
        lambda r: jsonl(record(f"{r}1", note="ok"), record(f"{r}2", note=f"a{NUL}b")),
    ),
    # REGRESSION: a note of any size was stored.
    "parquet-huge-note": ParquetCase(
        lambda r: _base(r, note=pa.array(["x" * LONG, "x" * FIELD_MAX])),
        [(1, "note", "longer than")],
        lambda r: jsonl(record(f"{r}1", note="x" * LONG), record(f"{r}2", note="x" * FIELD_MAX)),
    ),
    # REGRESSION: the tab after a behaviour made it unknown (DuckDB's trim drops spaces only).
    "parquet-whitespace-around-values": ParquetCase(
        lambda r: _base(
            r, behaviour=pa.array(["COURT.DEFAULT\t", " COURT.DEFAULT"]), note=pa.array(["\u3000a ", None])
        ),
        2,
        lambda r: jsonl(
            record(f"{r}1", behaviour="COURT.DEFAULT\t", note="\u3000a "), record(f"{r}2", behaviour=" COURT.DEFAULT")
        ),
    ),
    # REGRESSION: the bulk path kept one of two columns of one name.
    "parquet-duplicated-column": ParquetCase(
        lambda r: pa.Table.from_arrays(
            [*_base(r).columns, pa.array(["a", "b"]), pa.array(["c", "d"])],
            names=[*_base(r).column_names, "note", "note"],
        ),
        [(1, "note", "twice")],
    ),
    "parquet-unknown-and-missing-columns": ParquetCase(
        lambda r: _base(r).drop_columns(["occurred_on"]).append_column("colour", pa.array(["red", "blue"])),
        [(1, "colour", "unknown column"), (1, "occurred_on", "required column is missing")],
    ),
}


@pytest.mark.parametrize("case", list(PARQUET_CASES))
def test_parquet_is_read_as_its_json_lines_twin(stores: dict[str, Store], tmp_path: Path, case: str) -> None:
    """A Parquet file's rows are its lines: the same problems, at the same rows and columns, or
    the same stored rows as the same values written as JSON Lines and imported row by row."""
    spec = PARQUET_CASES[case]
    prefix = f"{case}:"
    path = tmp_path / "r.parquet"
    pq.write_table(spec.table(prefix), path)
    bulk = import_bulk(stores["bulk"], path)
    assert_expected(bulk, spec.expected)
    if spec.twin is None:
        return
    twin = tmp_path / "r.jsonl"
    twin.write_bytes(spec.twin(prefix))
    rows = import_rows(stores["rows"], twin)
    if bulk[0] == "refused":
        assert (rows[0], rows[2]) == (bulk[0], bulk[2])  # the messages name the files
    else:
        assert rows == bulk
    assert stored(stores["rows"], prefix) == stored(stores["bulk"], prefix)


# --- subjects files: the row-wise path, the same reading rules ----------------------------------------

S = "subject_id,kind,name"


@dataclass(frozen=True)
class SubjectCase:
    file: str
    body: bytes
    expected: Expected


SUBJECT_CASES: dict[str, SubjectCase] = {
    "subjects-nul-in-a-name": SubjectCase("s.csv", csv(S, f"{person_id(101)},person,张{NUL}三"), [(2, "name", "NUL")]),
    "subjects-bom": SubjectCase("s.csv", b"\xef\xbb\xbf" + csv(S, f"{person_id(102)},person,张三"), 1),
    # REGRESSION: a 5 MB name was registered.
    "subjects-jsonl-huge-name": SubjectCase(
        "s.jsonl",
        jsonl({"subject_id": person_id(103), "kind": "person", "name": "名" * 5_000_000}),
        [(1, "name", "longer than")],
    ),
    "subjects-name-at-the-limit": SubjectCase("s.csv", csv(S, f"{person_id(104)},person,{'名' * FIELD_MAX}"), 1),
    # REGRESSION: "unreadable CSV: field larger than field limit", no column, nothing after it read.
    "subjects-name-over-the-limit": SubjectCase(
        "s.csv", csv(S, f"{person_id(105)},person,{'名' * LONG}"), [(2, "name", "longer than")]
    ),
    # REGRESSION: the next line was merged into the name and one subject registered.
    "subjects-unclosed-quote": SubjectCase(
        "s.csv",
        csv(S, f'{person_id(106)},person,"张三', f"{person_id(107)},person,李四"),
        [(2, "name", "never closed")],
    ),
    # REGRESSION: registered with the name "{'x': 1}" and the division "371082" from a number.
    "subjects-jsonl-non-string-values": SubjectCase(
        "s.jsonl",
        jsonl(
            {"subject_id": person_id(108), "kind": "person", "name": {"x": 1}},
            {"subject_id": org_id(109), "kind": "organisation", "name": "某公司", "division": 371082},
        ),
        [(1, "name", "not an object"), (2, "division", "not a number")],
    ),
    "subjects-duplicated-header": SubjectCase(
        "s.csv", csv(S + ",name", f"{person_id(110)},person,张三,李四"), [(1, "name", "twice")]
    ),
    # REGRESSION: refused without a line.
    "subjects-gb18030": SubjectCase(
        "s.csv", (S + "\n" + f"{person_id(111)},person,张三\n").encode("gb18030"), [(2, None, "not UTF-8")]
    ),
    "subjects-jsonl-bom-and-crlf": SubjectCase(
        "s.jsonl",
        b"\xef\xbb\xbf"
        + jsonl({"subject_id": person_id(112), "kind": "person", "name": "王五"}).replace(b"\n", b"\r\n"),
        1,
    ),
}


@pytest.mark.parametrize("case", list(SUBJECT_CASES))
def test_subjects_files_follow_the_same_reading_rules(stores: dict[str, Store], case: str) -> None:
    spec = SUBJECT_CASES[case]
    try:
        with stores["rows"].write() as conn:
            result = imports.import_subjects(conn, spec.file, spec.body, now=NOW, actor="test", after=AFTER_APPEND)
        outcome: Outcome = ("imported", result.imported, result.already_present, result.lines)
    except BadInput as exc:
        outcome = refusal(exc)
    assert_expected(outcome, spec.expected)
