"""How the command line reports a failure: one JSON object on standard output under `--json`
(DESIGN.md, "Errors under --json"), else a message on standard error that a person can read to
the end — at most `SHOWN` problems, then how many more and the file that holds them all."""

from __future__ import annotations

import csv
import json
import os
import sys
import tempfile
from collections.abc import Sequence

from xinyong.errors import Problem, XinyongError

# A file with 720 bad lines printed 720 lines: the first screenful is what a person reads.
SHOWN = 50


def wants_json(argv: Sequence[str]) -> bool:
    """Whether the command was asked for JSON: its answer and its failure take the same form."""
    return "--json" in argv


def report(exc: XinyongError, *, as_json: bool) -> None:
    """Print `exc` for whoever asked: a program (`--json`) or a person."""
    if as_json:
        print_json(exc.code, exc.message, exc.problems)
    else:
        sys.stderr.write(rendered(exc) + "\n")
        sys.stderr.flush()


def print_json(code: str, message: str, problems: Sequence[Problem] = ()) -> None:
    """`{"error": {"code", "message", "problems": [{"line", "column", "reason", "where"}]}}`:
    every problem the error carries (a program reads them all)."""
    listed = [{"line": p.line, "column": p.column, "reason": p.why, "where": p.where} for p in problems]
    error = {"error": {"code": code, "message": message, "problems": listed}}
    sys.stdout.write(json.dumps(error, ensure_ascii=False, indent=2) + "\n")
    sys.stdout.flush()


def rendered(exc: XinyongError) -> str:
    """The message and one line per problem, the first `SHOWN` of them; a refused value
    (`rules.values`) is one problem that its message already says in full, so it is printed once."""
    problems = exc.problems
    if len(problems) == 1 and str(problems[0]) == exc.message:
        return exc.message
    lines = [exc.message, *(f"  {problem}" for problem in problems[:SHOWN])]
    if len(problems) > SHOWN:
        lines.append(f"  … and {len(problems) - SHOWN} more; all {len(problems)} are listed in {written(problems)}")
    return "\n".join(lines)


def written(problems: Sequence[Problem]) -> str:
    """A CSV file (line, column, reason) of every problem, readable by its owner only (a problem
    may quote a person's id); its path."""
    handle, path = tempfile.mkstemp(prefix="xinyong-problems-", suffix=".csv")
    with os.fdopen(handle, "w", newline="", encoding="utf-8") as out:
        writer = csv.writer(out)
        writer.writerow(["line", "column", "reason"])
        for problem in problems:
            writer.writerow([problem.line or "", problem.column or "", problem.why])
    return path
