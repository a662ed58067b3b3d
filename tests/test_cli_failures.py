"""How the command line reports a failure (`interfaces.cli.failures`) and the name suggestions
(`errors.did_you_mean`) every "no such name" message ends with."""

from __future__ import annotations

import contextlib
import io
import json
from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

from xinyong.errors import BadInput, Problem, did_you_mean
from xinyong.interfaces.cli import failures


def test_the_closest_name_is_suggested() -> None:
    assert did_you_mean("city-pionts", ["court-defaulters", "city-points"]) == "; did you mean city-points?"


def test_with_nothing_close_the_few_known_names_are_listed() -> None:
    assert did_you_mean("zzz", ["b", "a"]) == " (known: a, b)"
    assert did_you_mean("zzz", []) == ""
    assert did_you_mean("zzz", [f"scheme-{n}" for n in range(20)]) == ""


@given(st.lists(st.from_regex(r"[a-z][a-z0-9-]{2,15}", fullmatch=True), min_size=1, max_size=8))
def test_a_known_name_suggests_itself(names: list[str]) -> None:
    assert did_you_mean(names[0], names) == f"; did you mean {names[0]}?"


def test_a_refused_value_is_printed_once() -> None:
    error = BadInput("--as-of: '2026-02-30' is not a day", [Problem("--as-of", "'2026-02-30' is not a day")])
    assert failures.rendered(error) == "--as-of: '2026-02-30' is not a day"


def test_a_short_list_is_printed_whole_and_writes_no_file() -> None:
    problems = [Problem(f"line {n}", "bad", line=n) for n in range(2, 52)]
    text = failures.rendered(BadInput("f.csv: 50 problem(s)", problems))
    assert text.splitlines()[1:] == [f"  line {n}: bad" for n in range(2, 52)]


def test_json_errors_carry_every_problem_with_its_place() -> None:
    out = io.StringIO()
    problems = [Problem("line 3, column kind", "'x' is not person or organisation", line=3, column="kind")]
    with contextlib.redirect_stdout(out):
        failures.report(BadInput("s.csv: 1 problem(s)", problems), as_json=True)
    assert json.loads(out.getvalue()) == {
        "error": {
            "code": "invalid",
            "message": "s.csv: 1 problem(s)",
            "problems": [
                {
                    "line": 3,
                    "column": "kind",
                    "reason": "'x' is not person or organisation",
                    "where": "line 3, column kind",
                }
            ],
        }
    }


def test_the_full_list_file_is_csv_of_every_problem() -> None:
    problems = [Problem("", "why, with a comma", line=n, column="c") for n in range(1, 61)]
    path = Path(failures.written(problems))
    try:
        assert path.read_text(encoding="utf-8").splitlines()[:2] == ["line,column,reason", '1,c,"why, with a comma"']
        assert len(path.read_text(encoding="utf-8").splitlines()) == 61
    finally:
        path.unlink()
