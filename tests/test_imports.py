"""Imports of records and subjects: every bad line reported (line, column, reason), whole or nothing,
idempotent by document_ref. Each test runs on SQLite and on PostgreSQL (the `store` fixture).

"line" is the physical line of the file: the header of a CSV file is line 1.
"""

from __future__ import annotations

import json
from decimal import Decimal

import pytest

from helpers import World, at, org_id, person_id
from xinyong.derived import derivation
from xinyong.due_process.after_append import AFTER_APPEND
from xinyong.errors import BadInput, NotFound
from xinyong.ledger import imports
from xinyong.ledger import records as ledger
from xinyong.ledger.imports import ImportResult
from xinyong.storage.store import Store

NOW = at("2026-03-02")
HEADER = "subject_id,behaviour,occurred_on,document_ref"


def wrong_check(identifier: str) -> str:
    """The same identifier with another (wrong) check character."""
    return identifier[:-1] + ("0" if identifier[-1] != "0" else "1")


def csv_body(lines: list[str], header: str = HEADER) -> bytes:
    return ("\n".join([header, *lines]) + "\n").encode()


def jsonl_body(objects: list[object]) -> bytes:
    return "".join(json.dumps(o, ensure_ascii=False) + "\n" for o in objects).encode()


def record(
    subject: str, ref: str, behaviour: str = "COURT.DEFAULT", day: str = "2026-01-15", **more: str
) -> dict[str, str]:
    return {"subject_id": subject, "behaviour": behaviour, "occurred_on": day, "document_ref": ref, **more}


def import_records(store: Store, name: str, data: bytes, source: str = "court") -> ImportResult:
    with store.write() as conn:
        return imports.import_records(conn, name, data, source=source, now=NOW, actor="test", after=AFTER_APPEND)


def import_subjects(store: Store, name: str, data: bytes) -> ImportResult:
    with store.write() as conn:
        return imports.import_subjects(conn, name, data, now=NOW, actor="test", after=AFTER_APPEND)


def refused(store: Store, name: str, data: bytes, source: str = "court") -> BadInput:
    before = counts(store)
    with pytest.raises(BadInput) as caught:
        import_records(store, name, data, source)
    assert counts(store) == before, "a refused file must change nothing"
    return caught.value


def counts(store: Store) -> tuple[int, int]:
    with store.read() as conn:
        return ledger.record_count(conn), len(derivation.all_effects(conn))


def located(error: BadInput) -> set[tuple[int | None, str | None]]:
    return {(p.line, p.column) for p in error.problems}


def problem_at(error: BadInput, line: int | None, column: str | None = None) -> str:
    found = [p for p in error.problems if p.line == line and p.column == column]
    assert found, f"no problem at line {line}, column {column}: {error.render()}"
    return " ".join(p.why for p in found)


@pytest.fixture
def people(world: World) -> list[str]:
    """DESIGN.md's example scheme and sources, and ten registered persons (person_id(1..10))."""
    world.standard()
    ids = [person_id(n) for n in range(1, 11)]
    world.subjects([(pid, "person", f"测试{n}") for n, pid in enumerate(ids[1:], start=2)])
    return ids


# --- the acceptance case ------------------------------------------------------------------------


def test_bad_lines_are_all_reported_and_nothing_is_imported(store: Store, people: list[str]) -> None:
    import_records(store, "first.csv", csv_body([f"{people[0]},COURT.DEFAULT,2026-01-02,FIRST"]))
    lines = []
    for n in range(1, 11):  # data lines are physical lines 2..11
        line = n + 1
        subject = wrong_check(people[n - 1]) if line == 7 else people[n - 1]
        behaviour = "COURT.NO_SUCH_THING" if line == 9 else "COURT.DEFAULT"
        lines.append(f"{subject},{behaviour},2026-01-{n:02d},J-{n}")
    error = refused(store, "batch.csv", csv_body(lines))
    assert located(error) == {(7, "subject_id"), (9, "behaviour")}
    assert "check character" in problem_at(error, 7, "subject_id")
    assert "unknown behaviour" in problem_at(error, 9, "behaviour")
    assert "COURT.NO_SUCH_THING" in problem_at(error, 9, "behaviour")
    assert "nothing was imported" in error.message
    rendered = error.render()
    assert "line 7, column subject_id" in rendered
    assert "line 9, column behaviour" in rendered
    with store.read() as conn:
        assert ledger.record_count(conn) == 1


def test_a_good_file_imports_every_line(store: Store, people: list[str]) -> None:
    data = csv_body([f"{pid},COURT.DEFAULT,2026-01-{n:02d},G-{n}" for n, pid in enumerate(people, 1)])
    result = import_records(store, "good.csv", data)
    assert (result.imported, result.already_present, result.lines) == (10, 0, 10)
    with store.read() as conn:
        assert ledger.record_count(conn) == 10
        assert ledger.resolve_record_id(conn, "court:G-3") > 0


def test_whole_or_nothing_one_bad_line_in_fifty(store: Store, world: World) -> None:
    person, org = world.standard()
    import_records(store, "one.csv", csv_body([f"{person},COURT.DEFAULT,2026-01-02,KEEP"]))
    records_before, effects_before = counts(store)
    assert (records_before, effects_before) == (1, 1)
    lines = [f"{org if n % 2 else person},COURT.DEFAULT,2026-01-{n % 28 + 1:02d},W-{n}" for n in range(50)]
    lines[30] = f"{person},COURT.DEFAULT,2026-02-30,W-30"  # physical line 32
    error = refused(store, "fifty.csv", csv_body(lines))
    assert located(error) == {(32, "occurred_on")}
    assert counts(store) == (1, 1)
    with store.read() as conn, pytest.raises(NotFound):
        ledger.resolve_record_id(conn, "court:W-0")


# --- idempotence and document references --------------------------------------------------------


def test_importing_the_same_file_again_adds_nothing(store: Store, people: list[str]) -> None:
    data = csv_body(
        [f"{pid},COURT.DEFAULT,2026-01-{n:02d},R-{n}" for n, pid in enumerate(people[:5], 1)],
    )
    first = import_records(store, "again.csv", data)
    after_first = counts(store)
    second = import_records(store, "again.csv", data)
    assert (first.imported, first.already_present) == (5, 0)
    assert (second.imported, second.already_present) == (0, 5)
    assert counts(store) == after_first


def test_a_file_with_old_and_new_lines_imports_only_the_new(store: Store, people: list[str]) -> None:
    import_records(store, "a.csv", csv_body([f"{people[0]},COURT.DEFAULT,2026-01-01,A-1"]))
    both = csv_body([f"{people[0]},COURT.DEFAULT,2026-01-01,A-1", f"{people[1]},COURT.DEFAULT,2026-01-02,A-2"])
    result = import_records(store, "b.csv", both)
    assert (result.imported, result.already_present) == (1, 1)


def test_amounts_and_notes_take_part_in_the_comparison(store: Store, people: list[str]) -> None:
    header = HEADER + ",amount,note"
    data = csv_body([f"{people[0]},COURT.DEFAULT,2026-01-01,M-1,1234.50,judgment 2026-1"], header)
    assert import_records(store, "m.csv", data).imported == 1
    assert import_records(store, "m.csv", data).already_present == 1
    other_amount = csv_body([f"{people[0]},COURT.DEFAULT,2026-01-01,M-1,1234.51,judgment 2026-1"], header)
    error = refused(store, "m2.csv", other_amount)
    assert located(error) == {(2, "document_ref")}


def test_same_document_ref_with_different_facts_is_an_error(store: Store, people: list[str]) -> None:
    import_records(store, "one.csv", csv_body([f"{people[0]},COURT.DEFAULT,2026-01-01,D-1"]))
    changed = csv_body(
        [
            f"{people[1]},COURT.DEFAULT,2026-01-03,D-2",
            f"{people[0]},COURT.DEFAULT,2026-01-02,D-1",  # line 3: another date
        ]
    )
    error = refused(store, "changed.csv", changed)
    assert located(error) == {(3, "document_ref")}
    why = problem_at(error, 3, "document_ref")
    assert "D-1" in why
    assert "different facts" in why
    assert "records correct" in why


def test_a_document_ref_twice_in_one_file_names_both_lines(store: Store, people: list[str]) -> None:
    lines = [
        f"{people[0]},COURT.DEFAULT,2026-01-01,DUP",
        f"{people[1]},COURT.DEFAULT,2026-01-02,OTHER",
        f"{people[2]},COURT.DEFAULT,2026-01-03,DUP",  # line 4
    ]
    error = refused(store, "dup.csv", csv_body(lines))
    assert located(error) == {(4, "document_ref")}
    assert "line 2" in problem_at(error, 4, "document_ref")
    assert "line 4" in error.render()


def test_document_refs_are_unique_per_source_not_globally(store: Store, people: list[str]) -> None:
    import_records(store, "c.csv", csv_body([f"{people[0]},COURT.DEFAULT,2026-01-01,SAME"]))
    result = import_records(store, "t.csv", csv_body([f"{people[0]},TRAFFIC.MINOR,2026-01-01,SAME"]), "transport")
    assert result.imported == 1


# --- sources ------------------------------------------------------------------------------------


def test_a_source_may_submit_only_the_behaviours_it_is_authorised_for(store: Store, people: list[str]) -> None:
    lines = [f"{people[0]},COURT.DEFAULT,2026-01-01,S-1", f"{people[1]},TRAFFIC.MINOR,2026-01-01,S-2"]
    error = refused(store, "s.csv", csv_body(lines))
    assert located(error) == {(3, "behaviour")}
    why = problem_at(error, 3, "behaviour")
    assert "court" in why
    assert "TRAFFIC.MINOR" in why
    assert "authorised" in why


def test_an_unknown_source_is_not_found(store: Store, people: list[str]) -> None:
    before = counts(store)
    with pytest.raises(NotFound, match="no-such-agency"):
        import_records(store, "s.csv", csv_body([f"{people[0]},COURT.DEFAULT,2026-01-01,U-1"]), "no-such-agency")
    assert counts(store) == before


# --- form, columns and values (CSV) -------------------------------------------------------------


CSV_CASES = {
    "unknown column": (
        "subject_id,behaviour,occurred_on,document_ref,colour\n{p},COURT.DEFAULT,2026-01-01,X-1,red\n",
        (1, "colour"),
        "unknown column",
    ),
    "missing column": ("subject_id,behaviour,document_ref\n{p},COURT.DEFAULT,X-1\n", (1, "occurred_on"), "missing"),
    "column twice": (
        "subject_id,behaviour,occurred_on,document_ref,note,note\n{p},COURT.DEFAULT,2026-01-01,X-1,a,b\n",
        (1, "note"),
        "twice",
    ),
    "future occurred_on": (HEADER + "\n{p},COURT.DEFAULT,2026-03-03,X-1\n", (2, "occurred_on"), "future"),
    "not a date": (HEADER + "\n{p},COURT.DEFAULT,15/01/2026,X-1\n", (2, "occurred_on"), "not a date"),
    "no such day": (HEADER + "\n{p},COURT.DEFAULT,2025-02-29,X-1\n", (2, "occurred_on"), "not a date"),
    "negative amount": (HEADER + ",amount\n{p},COURT.DEFAULT,2026-01-01,X-1,-5\n", (2, "amount"), "non-negative"),
    "amount not a number": (HEADER + ",amount\n{p},COURT.DEFAULT,2026-01-01,X-1,lots\n", (2, "amount"), "not a number"),
    "amount not finite": (HEADER + ",amount\n{p},COURT.DEFAULT,2026-01-01,X-1,NaN\n", (2, "amount"), "not a number"),
    "amount too large": (HEADER + ",amount\n{p},COURT.DEFAULT,2026-01-01,X-1,1e16\n", (2, "amount"), "below"),
    "too few fields": (HEADER + "\n{p},COURT.DEFAULT,2026-01-01\n", (2, None), "3 fields"),
    "too many fields": (HEADER + "\n{p},COURT.DEFAULT,2026-01-01,X-1,extra\n", (2, None), "5 fields"),
    "empty document_ref": (HEADER + "\n{p},COURT.DEFAULT,2026-01-01,\n", (2, "document_ref"), "document reference"),
    "document_ref too long": (
        HEADER + "\n{p},COURT.DEFAULT,2026-01-01," + "R" * 129 + "\n",
        (2, "document_ref"),
        "128",
    ),
    "unregistered subject": (
        HEADER + "\n" + person_id(999) + ",COURT.DEFAULT,2026-01-01,X-1\n",
        (2, "subject_id"),
        "not registered",
    ),
    "id of the wrong length": (
        HEADER + "\n11010519900101,COURT.DEFAULT,2026-01-01,X-1\n",
        (2, "subject_id"),
        "18 characters",
    ),
    "empty file": ("", (1, None), "empty"),
}


@pytest.mark.parametrize("case", list(CSV_CASES))
def test_csv_problems_are_located(store: Store, people: list[str], case: str) -> None:
    template, where, reason = CSV_CASES[case]
    error = refused(store, "bad.csv", template.replace("{p}", people[0]).encode())
    assert where in located(error), error.render()
    assert reason in problem_at(error, *where)


def test_every_problem_is_reported_not_just_the_first(store: Store, people: list[str]) -> None:
    header = HEADER + ",amount"
    lines = [
        f"{people[0]},COURT.DEFAULT,2026-01-01,P-1,5",
        f"{wrong_check(people[1])},COURT.DEFAULT,2099-01-01,P-2,-1",  # line 3: three problems
        f"{people[2]},COURT.DEFAULT",  # line 4: too few fields
        f"{people[3]},TRAFFIC.MINOR,not-a-date,P-1,",  # line 5: three more
    ]
    error = refused(store, "many.csv", csv_body(lines, header))
    assert located(error) == {
        (3, "subject_id"),
        (3, "occurred_on"),
        (3, "amount"),
        (4, None),
        (5, "behaviour"),
        (5, "occurred_on"),
        (5, "document_ref"),
    }
    assert [p.line for p in error.problems] == sorted(p.line or 0 for p in error.problems)


def test_physical_line_numbers_count_blank_lines_and_quoted_newlines(store: Store, people: list[str]) -> None:
    body = (
        HEADER + ",note\n"
        f'{people[0]},COURT.DEFAULT,2026-01-01,Q-1,"two\nlines"\n'  # lines 2-3
        "\n"  # line 4, blank: skipped
        f"{people[1]},COURT.DEFAULT,2026-13-01,Q-2,\n"  # line 5
    )
    error = refused(store, "q.csv", body.encode())
    assert located(error) == {(5, "occurred_on")}


def test_header_and_values_tolerate_a_bom_and_spaces(store: Store, people: list[str]) -> None:
    body = (
        "\ufeffsubject_id, behaviour ,occurred_on,document_ref\n" + f" {people[0]} ,COURT.DEFAULT, 2026-01-01 , B-1 \n"
    )
    assert import_records(store, "bom.csv", body.encode()).imported == 1
    with store.read() as conn:
        assert ledger.history(conn, "court:B-1").record.subject_id == people[0]


def test_a_header_only_file_imports_nothing(store: Store, people: list[str]) -> None:
    result = import_records(store, "none.csv", csv_body([]))
    assert (result.imported, result.already_present) == (0, 0)


def test_a_file_that_is_not_utf8_is_refused(store: Store, people: list[str]) -> None:
    body = (HEADER + ",note\n" + f"{people[0]},COURT.DEFAULT,2026-01-01,G-1,张三\n").encode("gb18030")
    error = refused(store, "gbk.csv", body)
    assert located(error) == {(2, None)}  # the line of the first byte that is not UTF-8
    assert "UTF-8" in error.render()
    assert "gbk.csv" in error.render()


@pytest.mark.parametrize("suffix", [".csv", ".jsonl"])
def test_a_gb18030_file_is_named_as_such(store: Store, people: list[str], suffix: str) -> None:
    """Excel and WPS on a Chinese Windows save GB 18030: the sender is told which encoding they have."""
    values = {"subject_id": people[0], "behaviour": "COURT.DEFAULT", "occurred_on": "2026-01-01"}
    values |= {"document_ref": "（2026）鲁1082执12号", "note": "张三，已履行"}
    if suffix == ".csv":
        text = HEADER + ",note\n" + ",".join(values.values()) + "\n"
    else:
        text = json.dumps(values, ensure_ascii=False) + "\n"
    error = refused(store, "gbk" + suffix, text.encode("gb18030"))
    (problem,) = error.problems
    assert "not UTF-8 but GB 18030 (GBK) text" in problem.why
    assert "save the file as UTF-8" in problem.why


def test_a_latin1_file_is_not_called_gb18030(store: Store, people: list[str]) -> None:
    body = (HEADER + ",note\n" + f"{people[0]},COURT.DEFAULT,2026-01-01,L-1,café crème\n").encode("latin-1")
    (problem,) = refused(store, "latin.csv", body).problems
    assert problem.why.startswith("not UTF-8 text")
    assert "GB 18030 (GBK) text" not in problem.why


def test_subjects_are_imported_from_parquet(store: Store) -> None:
    """`xinyong synth` writes subjects.parquet; the README's "At scale" imports it as it is."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    ids = [person_id(n) for n in range(1, 4)] + [org_id(1)]
    table = pa.table(
        {
            "subject_id": ids,
            "kind": ["person"] * 3 + ["organisation"],
            "name": ["张三", "李四", " 王五 ", "长城建材有限公司"],
            "division": ["371082", None, None, "371082"],
        }
    )
    sink = pa.BufferOutputStream()
    pq.write_table(table, sink)
    data = sink.getvalue().to_pybytes()
    assert import_subjects(store, "subjects.parquet", data).imported == 4
    assert import_subjects(store, "subjects.parquet", data).already_present == 4
    bad = pa.table({"subject_id": [ids[0][:-1]], "kind": ["person"], "nom": ["x"]})
    sink = pa.BufferOutputStream()
    pq.write_table(bad, sink)
    with pytest.raises(BadInput) as caught:
        import_subjects(store, "bad.parquet", sink.getvalue().to_pybytes())
    assert {(p.where, p.why.split(" (")[0]) for p in caught.value.problems} == {
        ("columns, column nom", "unknown column"),
        ("columns, column name", "required column is missing"),
    }
    with pytest.raises(BadInput) as caught:
        import_subjects(store, "fake.parquet", b"subject_id,kind,name\n")
    assert "not a readable Parquet file" in caught.value.problems[0].why


@pytest.mark.parametrize("name", ["records.txt", "records.xlsx", "records"])
def test_a_file_must_be_csv_or_jsonl(store: Store, people: list[str], name: str) -> None:
    error = refused(store, name, csv_body([f"{people[0]},COURT.DEFAULT,2026-01-01,E-1"]))
    assert ".csv" in error.render()
    assert ".jsonl" in error.render()


def test_the_suffix_is_case_insensitive(store: Store, people: list[str]) -> None:
    assert import_records(store, "UPPER.CSV", csv_body([f"{people[0]},COURT.DEFAULT,2026-01-01,C-1"])).imported == 1


def test_an_organisation_id_with_a_wrong_check_character(store: Store, world: World) -> None:
    _, org = world.standard()
    error = refused(store, "o.csv", csv_body([f"{wrong_check(org)},COURT.DEFAULT,2026-01-01,O-1"]))
    assert located(error) == {(2, "subject_id")}
    assert "check character" in problem_at(error, 2, "subject_id")


def test_a_bad_organisation_code_is_explained_as_an_organisation_code(store: Store, world: World) -> None:
    # Most unified codes are all digits, so the kind cannot be told from the shape: both verdicts
    # are given, and the organisation's says what is wrong with it.
    _, org = world.standard()
    error = refused(store, "o.csv", csv_body([f"{wrong_check(org)},COURT.DEFAULT,2026-01-01,O-1"]))
    why = problem_at(error, 2, "subject_id")
    assert "unified social credit code (wrong check character)" in why


def test_records_accept_an_id_as_subjects_files_do(store: Store, world: World) -> None:
    world.standard()
    upper = person_id(7)
    assert upper.endswith("X")
    import_subjects(store, "s.csv", f"subject_id,kind,name\n{upper.lower()},person,李四\n".encode())
    result = import_records(store, "r.csv", csv_body([f"{upper.lower()},COURT.DEFAULT,2026-01-01,L-1"]))
    assert result.imported == 1


def test_a_very_long_field_is_reported_on_its_line(store: Store, people: list[str]) -> None:
    body = csv_body([f"{people[0]},COURT.DEFAULT,2026-01-01,LONG,{'x' * 200_000}"], HEADER + ",note")
    error = refused(store, "long.csv", body)
    assert 2 in {p.line for p in error.problems}


def test_a_nul_character_is_reported_on_its_line(store: Store, people: list[str]) -> None:
    body = csv_body([f"{people[0]},COURT.DEFAULT,2026-01-01,NUL-1", f"{people[1]},COURT.DEFAULT,2026-01-01,N\x00L"])
    error = refused(store, "nul.csv", body)
    assert 3 in {p.line for p in error.problems}


def test_large_amounts_are_kept_exactly(store: Store, people: list[str], request: pytest.FixtureRequest) -> None:
    data = csv_body([f"{people[0]},COURT.DEFAULT,2026-01-01,BIG,9999999999999999.99"], HEADER + ",amount")
    assert import_records(store, "big.csv", data).imported == 1
    with store.read() as conn:
        assert ledger.history(conn, "court:BIG").record.amount == Decimal("9999999999999999.99")
    assert import_records(store, "big.csv", data).already_present == 1


# --- JSON Lines ---------------------------------------------------------------------------------


def test_a_good_jsonl_file_imports_and_reimports_as_already_present(store: Store, people: list[str]) -> None:
    data = jsonl_body(
        [
            record(people[0], "JL-1"),
            record(people[1], "JL-2", amount="120.5", note="判决书 (2026) 鲁1082执1号"),
            {**record(people[2], "JL-3"), "amount": 99.95, "note": None},
        ]
    )
    first = import_records(store, "r.jsonl", data)
    assert (first.imported, first.already_present) == (3, 0)
    second = import_records(store, "r.ndjson", data)
    assert (second.imported, second.already_present) == (0, 3)
    with store.read() as conn:
        assert ledger.history(conn, "court:JL-2").record.amount == Decimal("120.50")
        assert ledger.history(conn, "court:JL-3").record.amount == Decimal("99.95")


JSONL_CASES = {
    "not JSON": ('{"subject_id": "{p}", "behaviour": ', (2, None), "not JSON"),
    "not an object": ('["{p}", "COURT.DEFAULT", "2026-01-01", "X-1"]', (2, None), "JSON object"),
    "a bare string": ('"hello"', (2, None), "JSON object"),
    "unknown key": (
        '{"subject_id": "{p}", "behaviour": "COURT.DEFAULT", "occurred_on": "2026-01-01", '
        '"document_ref": "X-1", "colour": "red"}',
        (2, "colour"),
        "unknown column",
    ),
    "missing key": (
        '{"subject_id": "{p}", "behaviour": "COURT.DEFAULT", "document_ref": "X-1"}',
        (2, "occurred_on"),
        "missing",
    ),
    "wrong check character": (
        '{"subject_id": "{bad}", "behaviour": "COURT.DEFAULT", "occurred_on": "2026-01-01", "document_ref": "X-1"}',
        (2, "subject_id"),
        "check character",
    ),
    "unknown behaviour": (
        '{"subject_id": "{p}", "behaviour": "NOPE", "occurred_on": "2026-01-01", "document_ref": "X-1"}',
        (2, "behaviour"),
        "unknown behaviour",
    ),
    "not authorised": (
        '{"subject_id": "{p}", "behaviour": "CHARITY.BLOOD", "occurred_on": "2026-01-01", "document_ref": "X-1"}',
        (2, "behaviour"),
        "not authorised",
    ),
    "future occurred_on": (
        '{"subject_id": "{p}", "behaviour": "COURT.DEFAULT", "occurred_on": "2027-01-01", "document_ref": "X-1"}',
        (2, "occurred_on"),
        "future",
    ),
    "bad date": (
        '{"subject_id": "{p}", "behaviour": "COURT.DEFAULT", "occurred_on": "yesterday", "document_ref": "X-1"}',
        (2, "occurred_on"),
        "not a date",
    ),
    "negative amount": (
        '{"subject_id": "{p}", "behaviour": "COURT.DEFAULT", "occurred_on": "2026-01-01", "document_ref": "X-1", '
        '"amount": -3}',
        (2, "amount"),
        "non-negative",
    ),
    "duplicate document_ref": (
        '{"subject_id": "{p}", "behaviour": "COURT.DEFAULT", "occurred_on": "2026-01-01", "document_ref": "OK-1"}',
        (2, "document_ref"),
        "line 1",
    ),
}


@pytest.mark.parametrize("case", list(JSONL_CASES))
def test_jsonl_problems_are_located(store: Store, people: list[str], case: str) -> None:
    template, where, reason = JSONL_CASES[case]
    good = json.dumps(record(people[1], "OK-1"))
    bad = template.replace("{p}", people[0]).replace("{bad}", wrong_check(people[0]))
    body = f"{good}\n{bad}\n"
    error = refused(store, "bad.jsonl", body.encode())
    assert where in located(error), error.render()
    assert reason in problem_at(error, *where)


def test_jsonl_line_numbers_count_blank_lines(store: Store, people: list[str]) -> None:
    body = (
        json.dumps(record(people[0], "B-1")) + "\n\n\n" + json.dumps(record(people[1], "B-2", day="2026-02-31")) + "\n"
    )
    error = refused(store, "blank.jsonl", body.encode())
    assert located(error) == {(4, "occurred_on")}


def test_jsonl_not_utf8_is_refused(store: Store, people: list[str]) -> None:
    body = json.dumps(record(people[0], "G-1", note="张三"), ensure_ascii=False).encode("gb18030")
    error = refused(store, "gbk.jsonl", body)
    assert "UTF-8" in error.render()


def test_an_empty_jsonl_file_adds_nothing(store: Store, people: list[str]) -> None:
    before = counts(store)
    try:
        result = import_records(store, "empty.jsonl", b"")
    except BadInput:
        pass
    else:
        assert (result.imported, result.already_present) == (0, 0)
    assert counts(store) == before


def test_jsonl_lines_are_split_only_at_newlines(store: Store, people: list[str]) -> None:
    body = jsonl_body([record(people[0], "U-1", note="first\u2028second"), record(people[1], "U-2")])
    result = import_records(store, "sep.jsonl", body)
    assert result.imported == 2


# --- subjects -----------------------------------------------------------------------------------


SUBJECT_HEADER = "subject_id,kind,name"


def subjects_body(lines: list[str], header: str = SUBJECT_HEADER) -> bytes:
    return ("\n".join([header, *lines]) + "\n").encode()


def subjects_refused(store: Store, name: str, data: bytes) -> BadInput:
    before = subject_count(store)
    with pytest.raises(BadInput) as caught:
        import_subjects(store, name, data)
    assert subject_count(store) == before
    return caught.value


def subject_count(store: Store) -> int:
    from sqlalchemy import func, select

    from xinyong.storage import tables

    with store.read() as conn:
        return int(conn.execute(select(func.count()).select_from(tables.subjects)).scalar_one())


def test_subjects_import_and_reimport(store: Store) -> None:
    header = SUBJECT_HEADER + ",legal_representative,division"
    lines = [
        f"{person_id(1)},person,张三,,110105",
        f"{org_id(1)},organisation,测试有限公司,李四,371082",
        f"{org_id(2)},Organisation,第二测试有限公司,,",
    ]
    first = import_subjects(store, "s.csv", subjects_body(lines, header))
    assert (first.imported, first.already_present) == (3, 0)
    second = import_subjects(store, "s.csv", subjects_body(lines, header))
    assert (second.imported, second.already_present) == (0, 3)
    assert subject_count(store) == 3


def test_subjects_jsonl(store: Store) -> None:
    data = jsonl_body(
        [
            {"subject_id": person_id(2), "kind": "person", "name": "王五"},
            {"subject_id": org_id(3), "kind": "organisation", "name": "某某公司", "legal_representative": "赵六"},
        ]
    )
    assert import_subjects(store, "s.jsonl", data).imported == 2
    assert import_subjects(store, "s.jsonl", data).already_present == 2


SUBJECT_CASES = {  # the bad line is line 3, after a good one
    "invalid kind": ("{p},citizen,张三", "kind", "person or organisation"),
    "wrong check character": ("{badp},person,张三", "subject_id", "check character"),
    "organisation code given as a person": ("{o},person,张三", "subject_id", "resident identity number"),
    "wrong organisation check character": ("{bado},organisation,某公司", "subject_id", "check character"),
    "no name": ("{p},person,", "name", "name"),
    "too few fields": ("{p},person", None, "2 fields"),
}


@pytest.mark.parametrize("case", list(SUBJECT_CASES))
def test_subject_problems_are_located(store: Store, case: str) -> None:
    template, column, reason = SUBJECT_CASES[case]
    line = (
        template.replace("{badp}", wrong_check(person_id(1)))
        .replace("{bado}", wrong_check(org_id(1)))
        .replace("{p}", person_id(1))
        .replace("{o}", org_id(1))
    )
    error = subjects_refused(store, "s.csv", subjects_body([f"{person_id(2)},person,好人", line]))
    assert located(error) == {(3, column)}, error.render()
    assert reason in problem_at(error, 3, column)


def test_a_bad_division_code(store: Store) -> None:
    header = SUBJECT_HEADER + ",division"
    error = subjects_refused(store, "s.csv", subjects_body([f"{person_id(1)},person,张三,3710"], header))
    assert located(error) == {(2, "division")}


def test_subject_with_different_details_is_an_error(store: Store) -> None:
    import_subjects(store, "s.csv", subjects_body([f"{person_id(1)},person,张三"]))
    error = subjects_refused(
        store, "s2.csv", subjects_body([f"{person_id(2)},person,李四", f"{person_id(1)},person,张叁"])
    )
    assert located(error) == {(3, "subject_id")}
    assert "different details" in problem_at(error, 3, "subject_id")


def test_a_subject_twice_in_one_file_names_both_lines(store: Store) -> None:
    lines = [f"{person_id(1)},person,张三", f"{org_id(1)},organisation,某公司", f"{person_id(1)},person,张三"]
    error = subjects_refused(store, "dup.csv", subjects_body(lines))
    assert located(error) == {(4, "subject_id")}
    assert "line 2" in problem_at(error, 4, "subject_id")


def test_subjects_whole_or_nothing(store: Store) -> None:
    lines = [f"{person_id(n)},person,人{n}" for n in range(1, 30)] + [f"{org_id(1)},company,某公司"]
    error = subjects_refused(store, "s.csv", subjects_body(lines))
    assert located(error) == {(31, "kind")}
    assert subject_count(store) == 0


@pytest.mark.parametrize(
    ("name", "data", "reason"),
    [
        ("s.csv", b"", "empty"),
        ("s.csv", b"subject_id,name\n", "missing"),
        ("s.tsv", b"subject_id\tkind\tname\n", ".csv"),
        ("s.csv", "subject_id,kind,name\n1,person,张\n".encode("utf-16"), "UTF-8"),
        ("s.jsonl", b"[1, 2]\n", "JSON object"),
        ("s.jsonl", b"{not json}\n", "not JSON"),
    ],
)
def test_subject_file_problems(store: Store, name: str, data: bytes, reason: str) -> None:
    error = subjects_refused(store, name, data)
    assert reason in error.render()
