"""The README's walkthrough runs as written: every command of its sections from "Using it" on, in
order, in one shell, from a folder that holds what a clone holds (`schemes/`, `examples/`), on a
fresh store, with the venv's `xinyong` on PATH — and answers what the README says it answers.

Three kinds of line are not run, each for a reason the README gives: `bash run.sh …` (this test
runs inside it), `xinyong serve` (serves until stopped; `tests/test_api.py` and
`tests/test_api_client.py` serve for real) and the `curl` that needs that server."""

from __future__ import annotations

import inspect
import json
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
FIRST_SECTION = "## Using it"
NOT_RUN = (re.compile(r"^bash run\.sh "), re.compile(r"^xinyong serve\b"), re.compile(r"^curl "))
BLOCK = re.compile(r"^```bash\n(.*?)^```", re.M | re.S)


def commands(text: str) -> list[str]:
    """The command lines of the bash blocks from `FIRST_SECTION` on: continuations joined,
    comments and blank lines dropped."""
    start = text.index(FIRST_SECTION)
    found = []
    for block in BLOCK.findall(text[start:]):
        for line in block.replace("\\\n", " ").splitlines():
            line = line.strip()
            if line and not line.startswith("#"):
                found.append(line)
    return found


def runnable(line: str) -> bool:
    return not any(pattern.search(line) for pattern in NOT_RUN)


def test_the_walkthrough_is_found_whole() -> None:
    found = commands(README.read_text(encoding="utf-8"))
    assert found[0].startswith("export XINYONG_DB=sqlite:///city.db ")
    skipped = [line for line in found if not runnable(line)]
    assert [line.split()[0:2] for line in skipped] == [["bash", "run.sh"], ["xinyong", "serve"], ["curl", "-H"]]
    assert len(found) - len(skipped) >= 25


@pytest.fixture(scope="module")
def walked(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[str]]:
    """A folder where the README's commands ran, each one's standard output in out/N.txt."""
    folder = tmp_path_factory.mktemp("readme")
    for name in ("schemes", "examples"):
        (folder / name).symlink_to(ROOT / name)
    (folder / "out").mkdir()
    lines = [line for line in commands(README.read_text(encoding="utf-8")) if runnable(line)]
    script = ["set -euo pipefail"]
    for number, line in enumerate(lines):
        script.append(f"echo {shlex.quote('$ ' + line)} >&2")
        script.append(f"{{ {line}\n}} > out/{number}.txt")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("XINYONG_", "VIRTUAL_ENV"))}
    env["PATH"] = f"{Path(sys.executable).parent}:{env.get('PATH', '/usr/bin:/bin')}"
    done = subprocess.run(
        ["bash", "-c", "\n".join(script)], cwd=folder, env=env, capture_output=True, text=True, timeout=900
    )
    ran = [line for line in done.stderr.splitlines() if line.startswith("$ ")]
    assert done.returncode == 0, f"the README's command failed: {ran[-1] if ran else '?'}\n{done.stderr[-3000:]}"
    assert len(ran) == len(lines)
    return folder, lines


def output(walked: tuple[Path, list[str]], starting: str) -> str:
    folder, lines = walked
    number = next(n for n, line in enumerate(lines) if line.startswith(starting))
    return (folder / "out" / f"{number}.txt").read_text(encoding="utf-8")


def answer(walked: tuple[Path, list[str]], starting: str) -> Any:
    return json.loads(output(walked, starting))


def test_the_walkthrough_answers_what_it_says(walked: tuple[Path, list[str]]) -> None:
    assert answer(walked, "xinyong records import examples/court.csv") == {"imported": 3, "already_present": 0}
    score = answer(walked, "xinyong score 371082197503150029")
    assert (score["score"], score["grade"]) == (900, "B")
    assert [c["behaviour"] for c in score["contributions"] if c["kind"] == "record"] == ["COURT.DEFAULT"]
    check = answer(walked, "xinyong check 371082197503150029")
    assert check["applies"] is True
    objection = answer(walked, "xinyong objections file")
    assert (objection["id"], objection["deadline"]) == (1, "2026-03-09")
    assert "371082" in output(walked, "XINYONG_NOW=2026-03-11T09:00:00+08:00 xinyong objections overdue")
    report = json.loads((walked[0] / "report.json").read_text(encoding="utf-8"))
    assert report["subject"]["id"] == "371082197503150029"


def test_the_due_process_steps_act_on_ids_that_exist(walked: tuple[Path, list[str]]) -> None:
    assert answer(walked, "xinyong repairs apply")["id"] == 2
    assert "approved" in output(walked, "XINYONG_ACTOR=office:wang xinyong repairs decide 2")
    assert (walked[0] / "report.pdf").read_bytes().startswith(b"%PDF")


def test_at_scale_imports_subjects_and_every_court_record(walked: tuple[Path, list[str]]) -> None:
    assert answer(walked, "xinyong subjects import pop/subjects.parquet")["imported"] == 11_000
    imported = answer(walked, "xinyong records import pop/records-court.parquet")
    assert imported["imported"] > 500  # every one: a code it may not submit would refuse the file
    state = answer(walked, "xinyong state")
    assert state["rows"] >= 11_000
    assert state["served"] == state["rows"]


def test_the_search_examples_find_enterprises_of_the_demo_city(tmp_path: Path) -> None:
    """The README's look-ups (`远洋`, `yuanyang`, initials `whyy`, mistyped `weihaiyuanyan`) find
    enterprises of the city `xinyong demo` builds by default (its subjects: the replay adds none)."""
    import datetime as dt

    from xinyong.demo.synth import generate_city
    from xinyong.interfaces.cli.operations import demo
    from xinyong.ledger.files import SUBJECT_COLUMNS
    from xinyong.rules.clock import FixedClock
    from xinyong.security.access import PUBLIC, Principal, Role
    from xinyong.service import Service
    from xinyong.storage.store import Store

    defaults = {name: p.default for name, p in inspect.signature(demo).parameters.items()}
    city = generate_city(
        persons=defaults["persons"],
        organisations=defaults["organisations"],
        today=dt.date(2026, 12, 8),
        seed=defaults["seed"],
    )
    rows = [",".join((s.subject_id, s.kind, s.name)) for s in city.subjects if s.kind == "organisation"]
    store = Store(f"sqlite:///{tmp_path / 'search.db'}")
    store.migrate()
    service = Service(store, FixedClock(dt.datetime(2026, 12, 8, tzinfo=dt.UTC)))
    csv_text = ",".join(SUBJECT_COLUMNS) + "\n" + "\n".join(rows) + "\n"
    service.subjects.import_file(Principal(Role.ADMIN, "test"), "orgs.csv", csv_text.encode())
    text = README.read_text(encoding="utf-8")
    assert "`远洋` or `yuanyang`, initials `whyy`" in text
    assert "`weihaiyuanyan` forgiven" in text
    examples = (("远洋", "远洋"), ("yuanyang", "远洋"), ("whyy", "威海远洋"), ("weihaiyuanyan", "威海远洋"))
    for query, contains in examples:
        found = service.subjects.search(PUBLIC, query)
        assert found, query
        assert contains in found[0]["name"], (query, found[0])
    store.dispose()
