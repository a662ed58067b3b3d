"""The `xinyong` command line, driven as a user would: real files, XINYONG_DB and XINYONG_NOW.

Exit status and error output are checked on real subprocesses (`python -m xinyong.interfaces.cli`). Each
subprocess costs about a second of imports, so the many commands that only need their JSON checked
run in-process through the same entry point, `xinyong.interfaces.cli.main`, with the same environment
variables, argv and captured standard streams.

One store is built per module (the `city` fixture). Tests that change records each use their own
record, so they do not depend on one another's order; every change is made at an XINYONG_NOW after
the records were imported.
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import os
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from helpers import org_id, person_id
from xinyong.interfaces import cli
from xinyong.rules.identifiers import mask

SCHEMES = Path(__file__).resolve().parents[1] / "schemes"

IMPORTED = "2026-03-02T10:00:00+08:00"  # the day the records are recorded
# COURT.DEFAULT: city-points gives no notice of its own, so its default_notice P10D applies;
# court-defaulters says notice: P10D. Either way start = max(occurred_on, 2026-03-02 + P10D).
EFFECT_DAY = "2026-03-12"
LATER = "2026-03-20T12:00:00+08:00"

P1, P2, P3, P4, P5 = (person_id(n) for n in range(1, 6))
O1 = org_id(1)


@dataclass
class Result:
    code: int
    out: str
    err: str

    def json(self) -> dict[str, Any]:
        assert self.code == 0, self.err
        value = json.loads(self.out)
        assert isinstance(value, dict)
        return value

    def error(self) -> dict[str, Any]:
        """The one JSON object a command given `--json` prints on standard output when it fails
        (DESIGN.md, "Errors under --json"), and nothing on standard error."""
        assert self.code != 0
        assert self.err == ""
        value = json.loads(self.out)
        assert list(value) == ["error"]
        assert list(value["error"]) == ["code", "message", "problems"]
        assert isinstance(value["error"], dict)
        return value["error"]

    @property
    def flat_err(self) -> str:
        """Standard error with line wrapping undone, for checks on wording."""
        return " ".join(self.err.split())


@dataclass
class City:
    folder: Path
    db: str
    outputs: dict[str, Result] = field(default_factory=dict)

    def env(self, now: str) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("XINYONG_")}
        return {**env, "XINYONG_DB": self.db, "XINYONG_NOW": now}

    def sub(self, *args: str, now: str = IMPORTED) -> Result:
        """Run the console script in a subprocess."""
        proc = subprocess.run(
            [sys.executable, "-m", "xinyong.interfaces.cli", *args],
            cwd=self.folder,
            env=self.env(now),
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        return Result(proc.returncode, proc.stdout, proc.stderr)

    def run(self, *args: str, now: str = IMPORTED) -> Result:
        """Run the same entry point in this process, with the same environment and argv."""
        out, err = io.StringIO(), io.StringIO()
        with pytest.MonkeyPatch.context() as mp:
            for name in [k for k in os.environ if k.startswith("XINYONG_")]:
                mp.delenv(name)
            mp.setenv("XINYONG_DB", self.db)
            mp.setenv("XINYONG_NOW", now)
            mp.setattr(sys, "argv", ["xinyong", *args])
            mp.chdir(self.folder)
            code = 0
            with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
                try:
                    cli.main()
                except SystemExit as exc:
                    code = exc.code if isinstance(exc.code, int) else 1
        return Result(code, out.getvalue(), err.getvalue())

    def ok(self, *args: str, now: str = IMPORTED) -> dict[str, Any]:
        result = self.run(*args, "--json", now=now)
        assert result.code == 0, result.err
        return result.json()

    def write(self, name: str, text: str) -> Path:
        path = self.folder / name
        path.write_text(text, encoding="utf-8")
        return path


def court_file() -> str:
    return (
        "subject_id,behaviour,occurred_on,document_ref\n"
        f"{P1},COURT.DEFAULT,2026-02-20,C-001\n"  # the replay subject
        f"{P3},COURT.DEFAULT,2026-02-21,C-002\n"  # objected to
        f"{O1},COURT.DEFAULT,2026-02-22,C-003\n"  # corrected
        f"{P4},COURT.DEFAULT,2026-02-23,C-004\n"  # revoked
        f"{P5},COURT.DEFAULT,2026-02-24,C-005\n"  # ended
    )


@pytest.fixture(scope="module")
def city(tmp_path_factory: pytest.TempPathFactory) -> City:
    folder = tmp_path_factory.mktemp("cli")
    c = City(folder, f"sqlite:///{folder / 'x.db'}")
    c.outputs["init"] = c.sub("init")
    assert c.outputs["init"].code == 0, c.outputs["init"].err
    c.outputs["load"] = c.sub("scheme", "load", str(SCHEMES / "city-points.yaml"), "--json")
    for name in ("court-defaulters", "tax-credit"):
        c.ok("scheme", "load", str(SCHEMES / f"{name}.yaml"))
    c.outputs["sources"] = c.run(
        "sources", "add", "court", "--behaviours", "COURT.DEFAULT,COURT.OBSTRUCT_ENFORCEMENT", "--json"
    )
    c.ok("sources", "add", "tax", "--behaviours", "TAX.EVASION,TAX.ARREARS")
    c.ok("sources", "add", "civil-affairs", "--behaviours", "CIVIL.BLOOD_DONATION")
    subjects = c.write(
        "subjects.csv",
        "subject_id,kind,name,legal_representative\n"
        + "".join(f"{p},person,测试{n},\n" for n, p in enumerate((P1, P2, P3, P4, P5), 1))
        + f"{O1},organisation,测试有限公司,张三\n",
    )
    c.outputs["subjects"] = c.run("subjects", "import", str(subjects), "--json")
    c.write("court.csv", court_file())
    c.outputs["records"] = c.sub("records", "import", "court.csv", "--source", "court", "--json")
    c.write(
        "tax.jsonl",
        json.dumps({"subject_id": O1, "behaviour": "TAX.EVASION", "occurred_on": "2026-02-01", "document_ref": "T-1"})
        + "\n"
        + json.dumps(
            {
                "subject_id": O1,
                "behaviour": "TAX.ARREARS",
                "occurred_on": "2026-02-02",
                "document_ref": "T-2",
                "amount": "52000.00",
            }
        )
        + "\n",
    )
    c.ok("records", "import", "tax.jsonl", "--source", "tax")
    c.write(
        "civil.csv",
        "subject_id,behaviour,occurred_on,document_ref\n"
        + "".join(f"{P2},CIVIL.BLOOD_DONATION,2026-02-0{n},B-{n}\n" for n in range(1, 6)),
    )
    c.ok("records", "import", "civil.csv", "--source", "civil-affairs")
    for person in (P1, P2):
        c.ok("consent", "grant", person, "--scheme", "city-points")
    return c


# --- set-up commands ----------------------------------------------------------------------------


def test_init_and_scheme_load(city: City) -> None:
    assert "store ready" in city.outputs["init"].out
    loaded = city.outputs["load"].json()
    assert loaded["scheme"] == "city-points"
    assert loaded["version"] == "2026.1"
    assert loaded["loaded"] is True
    assert loaded["behaviours"] == 16
    again = city.ok("scheme", "load", str(SCHEMES / "city-points.yaml"))
    assert again["loaded"] is False
    assert again["digest"] == loaded["digest"]
    assert city.run("init").code == 0  # init on an initialised store upgrades nothing and succeeds


def test_scheme_list(city: City) -> None:
    listed = city.ok("scheme", "list")
    found = {(s["scheme"], s["version"]) for s in listed["schemes"]}
    assert found == {("city-points", "2026.1"), ("court-defaulters", "2026.1"), ("tax-credit", "2026.1")}
    tax = next(s for s in listed["schemes"] if s["scheme"] == "tax-credit")
    assert tax["applies_to"] == ["organisation"]


def test_sources_add(city: City) -> None:
    added = city.outputs["sources"].json()
    assert added["source"] == "court"
    assert added["behaviours"] == ["COURT.DEFAULT", "COURT.OBSTRUCT_ENFORCEMENT"]
    unknown = city.run("sources", "add", "court", "--behaviours", "COURT.NOPE")
    assert unknown.code == 2
    assert "COURT.NOPE" in unknown.flat_err


def test_subjects_import(city: City) -> None:
    assert city.outputs["subjects"].json() == {"imported": 6, "already_present": 0}
    again = city.ok("subjects", "import", str(city.folder / "subjects.csv"))
    assert again == {"imported": 0, "already_present": 6}


def test_records_import_prints_counts(city: City) -> None:
    first = city.outputs["records"].json()
    assert first["imported"] == 5
    assert first["already_present"] == 0


def test_records_import_again_imports_nothing(city: City) -> None:
    again = city.sub("records", "import", "court.csv", "--source", "court", "--json")
    assert again.code == 0, again.err
    assert again.json()["imported"] == 0
    assert again.json()["already_present"] == 5


def test_a_bad_records_file_exits_2_naming_every_bad_line(city: City) -> None:
    lines = []
    for n in range(1, 11):  # physical lines 2..11; line 7 and line 9 are bad
        line = n + 1
        subject = P1[:-1] + ("0" if P1[-1] != "0" else "1") if line == 7 else P2
        behaviour = "COURT.NO_SUCH_THING" if line == 9 else "COURT.DEFAULT"
        lines.append(f"{subject},{behaviour},2026-01-{n:02d},BAD-{n}\n")
    city.write("bad.csv", "subject_id,behaviour,occurred_on,document_ref\n" + "".join(lines))
    before = city.ok("records", "show", "court:C-001")
    result = city.sub("records", "import", "bad.csv", "--source", "court", "--json")
    assert result.code == 2
    error = result.error()
    assert error["code"] == "invalid"
    assert "nothing was imported" in error["message"]
    found = {(p["line"], p["column"]): p["reason"] for p in error["problems"]}
    assert set(found) == {(7, "subject_id"), (9, "behaviour")}
    assert "check character" in found[7, "subject_id"]
    assert "unknown behaviour" in found[9, "behaviour"]
    human = city.run("records", "import", "bad.csv", "--source", "court")
    assert (human.code, human.out) == (2, "")
    assert "line 7, column subject_id" in human.flat_err
    assert "line 9, column behaviour" in human.flat_err
    missing = city.run("records", "show", "court:BAD-1")
    assert missing.code == 2
    assert city.ok("records", "show", "court:C-001") == before


# --- safeguards at load time --------------------------------------------------------------------


PROTECTED = """\
scheme: order-city
version: "1"
title: Order city
jurisdiction: "371082"
applies_to: [person]
initial: 1000
grades: [{grade: A, min: 0}]
behaviours:
  - {code: TRAFFIC.MINOR, title: Minor traffic violation, points: -5, validity: P1Y,
     severity: minor, data_class: market, legal_basis: "Road Traffic Safety Law art. 90"}
  - {code: ORDER.VISITS, title: "Abnormal petitioning (非正常上访)", points: -50, validity: P1Y,
     severity: serious, data_class: market, legal_basis: "City rules art. 3"}
"""


@pytest.fixture(scope="module")
def protected(city: City) -> Result:
    path = city.write("order-city.yaml", PROTECTED)
    return city.sub("scheme", "load", str(path))


def test_a_scheme_scoring_petitioning_is_refused(city: City, protected: Result) -> None:
    assert protected.code == 2
    assert "Traceback" not in protected.err
    error = city.run("scheme", "load", str(city.folder / "order-city.yaml"), "--json").error()
    assert error["code"] == "refused"
    assert any("ORDER.VISITS" in p["where"] for p in error["problems"])
    assert "ORDER.VISITS" in protected.flat_err
    assert "Abnormal petitioning (非正常上访)" in protected.flat_err
    assert "petitioning" in protected.flat_err
    listed = city.ok("scheme", "list")
    assert "order-city" not in {s["scheme"] for s in listed["schemes"]}


def test_error_messages_are_not_hard_wrapped(protected: Result) -> None:
    assert "'Abnormal petitioning (非正常上访)'" in protected.err


# --- questions ----------------------------------------------------------------------------------


SCORE_KEYS = {
    "subject",
    "scheme",
    "scheme_version",
    "as_of",
    "known_at",
    "score",
    "grade",
    "contributions",
    "lists",
    "measures",
}


def assert_explained(state: dict[str, Any]) -> None:
    assert set(state) >= SCORE_KEYS
    if state["kind"] == "list":
        assert state["score"] is None
        assert state["grade"] is None
        assert "no_state_reason" not in state
        return
    for line in state["contributions"]:
        assert {"record", "behaviour", "points", "start", "until", "kind"} <= set(line)
        if line["kind"] in {"cap", "clamp"}:
            assert line["record"] is None
        else:
            assert line["kind"] == "record"
            assert isinstance(line["record"], int)
    assert sum(line["points"] for line in state["contributions"]) == state["score"] - state["initial"]


def test_score_json_with_a_clamp(city: City) -> None:
    result = city.sub("score", O1, "--scheme", "tax-credit", "--json", now=LATER)
    assert result.code == 0, result.err
    state = result.json()
    assert_explained(state)
    assert state["subject"] == O1
    assert state["scheme"] == "tax-credit"
    assert state["scheme_version"] == "2026.1"
    assert state["as_of"] == "2026-03-20"
    assert state["known_at"].startswith("2026-03-20T04:00:00")
    assert (state["score"], state["grade"], state["initial"]) == (0, "D", 100)
    by_kind = {line["kind"]: line for line in state["contributions"] if line["kind"] != "record"}
    assert by_kind["clamp"]["points"] == 30
    records = sorted(
        (line["behaviour"], line["points"], line["start"], line["until"])
        for line in state["contributions"]
        if line["kind"] == "record"
    )
    assert records == [("TAX.ARREARS", -30, EFFECT_DAY, "2028-02-02"), ("TAX.EVASION", -100, EFFECT_DAY, "2029-02-01")]
    assert "major-violators" in state["lists"]
    assert {"no-procurement", "strict-invoicing"} <= set(state["measures"])


def test_score_json_with_a_cap(city: City) -> None:
    state = city.ok("score", P2, "--scheme", "city-points", now=LATER)
    assert_explained(state)
    assert state["score"] == 1020
    caps = [line for line in state["contributions"] if line["kind"] == "cap"]
    assert len(caps) == 1
    assert caps[0]["points"] == -5
    assert caps[0]["behaviour"] == "CIVIL.BLOOD_DONATION"
    assert sum(1 for line in state["contributions"] if line["kind"] == "record") == 5


def test_score_of_every_scheme(city: City) -> None:
    data = city.ok("score", O1, now=LATER)
    assert data["subject"] == O1
    assert {s["scheme"] for s in data["states"]} == {"city-points", "court-defaulters", "tax-credit"}
    for state in data["states"]:
        assert_explained(state)


def test_a_list_scheme_has_no_score_or_grade(city: City) -> None:
    """DESIGN.md "List schemes": court-defaulters has no grades and 0-point behaviours, so its state
    says on / not on each list; a points scheme keeps its score."""
    listed = city.ok("score", P1, "--scheme", "court-defaulters", now=LATER)
    assert (listed["kind"], listed["score"], listed["grade"]) == ("list", None, None)
    assert listed["lists"] == ["defaulters"]
    assert "no_state_reason" not in listed
    points = city.ok("score", P1, "--scheme", "city-points", now=LATER)
    assert points["kind"] == "points"
    assert isinstance(points["score"], int)
    human = city.run("score", P1, "--scheme", "court-defaulters", now=LATER)
    assert "a list scheme" in human.out
    assert "score" not in human.out


def test_check_json(city: City) -> None:
    result = city.sub("check", P1, "court-defaulters/no-flights", "--json", now=LATER)
    assert result.code == 0, result.err
    answer = result.json()
    assert {"subject", "measure", "as_of", "applies", "basis", "legal_basis", "contest"} <= set(answer)
    assert answer["subject"] == mask(P1, "person")
    assert answer["measure"] == "court-defaulters/no-flights"
    assert answer["as_of"] == "2026-03-20"
    assert answer["applies"] is True
    assert answer["basis"]["lists"] == ["defaulters"]
    record_id = city.ok("records", "show", "court:C-001")["id"]
    assert answer["basis"]["records"] == [record_id]
    assert "法释〔2015〕17号" in answer["legal_basis"]
    assert "objection" in answer["contest"]


def test_check_a_file_of_subjects(city: City) -> None:
    """`check --file IDS.csv SCHEME/MEASURE --json`: answers in the file's order, ids as sent, an
    unknown id its own error; a file without the column, or over 1,000 subjects, is refused (exit 2)."""
    ids = city.write("ids.csv", f"name,subject_id\nA,{P1}\nB,110105199001019999\nC,{P2}\n")
    data = city.ok("check", "--file", str(ids), "court-defaulters/no-flights", now=LATER)
    assert data["measure"] == "court-defaulters/no-flights"
    assert [a["subject"] for a in data["answers"]] == [P1, "110105199001019999", P2]
    single = city.ok("check", P1, "court-defaulters/no-flights", now=LATER)
    assert data["answers"][0] == {**single, "subject": P1}
    assert "error" in data["answers"][1]
    assert "applies" not in data["answers"][1]
    human = city.run("check", "--file", str(ids), "court-defaulters/no-flights", now=LATER)
    assert human.code == 0
    assert P2 in human.out
    for name, text, why in (
        ("none.csv", f"id\n{P1}\n", "subject_id column"),
        ("many.csv", "subject_id\n" + f"{P1}\n" * 1001, "1,000 at most"),
    ):
        refused = city.run("check", "--file", str(city.write(name, text)), "court-defaulters/no-flights")
        assert refused.code == 2, refused.err
        assert why in refused.err
    both = city.run("check", "--file", str(ids), P1, "court-defaulters/no-flights")
    assert both.code == 2


def test_replay_notice_before_effect(city: City) -> None:
    """Recorded on 2 March with ten days' notice: nothing on 11 March, full effect on 12 March."""
    before = city.run("score", P1, "--scheme", "city-points", "--json", now="2026-03-11T23:59:00+08:00").json()
    after = city.sub("score", P1, "--scheme", "city-points", "--json", now="2026-03-12T00:01:00+08:00").json()
    assert (before["as_of"], before["score"], before["contributions"]) == ("2026-03-11", 1000, [])
    assert before["lists"] == []
    assert after["as_of"] == EFFECT_DAY
    assert after["score"] == 900
    [line] = after["contributions"]
    assert (line["behaviour"], line["points"], line["start"], line["until"]) == (
        "COURT.DEFAULT",
        -100,
        EFFECT_DAY,
        "2028-02-20",
    )
    assert "serious-dishonesty" in after["lists"]
    assert "enhanced-inspection" in after["measures"]
    no = city.ok("check", P1, "court-defaulters/no-flights", now="2026-03-11T23:59:00+08:00")
    yes = city.ok("check", P1, "court-defaulters/no-flights", now="2026-03-12T00:01:00+08:00")
    assert (no["applies"], yes["applies"]) == (False, True)
    # --as-of asks about another day without moving the clock.
    past = city.ok("score", P1, "--scheme", "city-points", "--as-of", "2026-03-11", now=LATER)
    assert past["score"] == 1000


# --- record events ------------------------------------------------------------------------------


def test_records_show(city: City) -> None:
    shown = city.ok("records", "show", "court:C-001")
    assert shown["ref"] == "court:C-001"
    assert (shown["subject"], shown["behaviour"], shown["occurred_on"]) == (P1, "COURT.DEFAULT", "2026-02-20")
    assert shown["status"] == "recorded"
    assert [e["kind"] for e in shown["events"]] == ["recorded"]
    by_id = city.ok("records", "show", str(shown["id"]))
    assert by_id["ref"] == "court:C-001"


def test_records_correct(city: City) -> None:
    done = city.ok(
        "records",
        "correct",
        "court:C-003",
        "--occurred-on",
        "2026-02-10",
        "--reason",
        "typo",
        now="2026-03-05T09:00:00+08:00",
    )
    assert done["kind"] == "corrected"
    assert isinstance(done["event"], int)
    shown = city.ok("records", "show", "court:C-003", now="2026-03-05T10:00:00+08:00")
    assert shown["occurred_on"] == "2026-02-10"
    assert [e["kind"] for e in shown["events"]] == ["recorded", "corrected"]
    as_known_before = city.ok("records", "show", "court:C-003", "--known-at", "2026-03-04")
    assert as_known_before["occurred_on"] == "2026-02-22"
    no_reason = city.run("records", "correct", "court:C-003", "--occurred-on", "2026-02-11", "--reason", " ")
    assert no_reason.code == 2


def test_records_revoke(city: City) -> None:
    done = city.ok("records", "revoke", "court:C-004", "--reason", "wrong person", now="2026-03-05T09:00:00+08:00")
    assert done["kind"] == "revoked"
    assert city.ok("records", "show", "court:C-004", now=LATER)["status"] == "revoked"
    assert city.ok("check", P4, "court-defaulters/no-flights", now=LATER)["applies"] is False
    # As known before the revocation, the record was in effect on 15 March.
    as_known = city.ok(
        "check", P4, "court-defaulters/no-flights", "--as-of", "2026-03-15", "--known-at", "2026-03-04", now=LATER
    )
    assert as_known["applies"] is True
    again = city.run("records", "revoke", "court:C-004", "--reason", "again", now=LATER)
    assert again.code == 2
    assert "already revoked" in again.flat_err


def test_records_end(city: City) -> None:
    done = city.ok(
        "records", "end", "court:C-005", "--on", "2026-03-15", "--reason", "fulfilled", now="2026-03-15T09:00:00+08:00"
    )
    assert done["kind"] == "ended"
    assert city.ok("records", "show", "court:C-005", now=LATER)["ended_on"] == "2026-03-15"
    measure = "court-defaulters/no-flights"
    assert city.ok("check", P5, measure, "--as-of", "2026-03-14", now=LATER)["applies"] is True
    assert city.ok("check", P5, measure, "--as-of", "2026-03-15", now=LATER)["applies"] is False
    bad_reason = city.run("records", "end", "court:C-005", "--on", "2026-03-16", "--reason", "paid", now=LATER)
    assert bad_reason.code == 2


def test_objections_file_decide_and_overdue(city: City) -> None:
    filed = city.ok(
        "objections", "file", "court:C-002", "--reason", "already paid", now="2026-03-03T09:00:00+08:00"
    )  # a Tuesday
    assert isinstance(filed["id"], int)
    # The shortest deadline of the schemes that know COURT.DEFAULT: city-points, 5 working days.
    assert filed["deadline"] == "2026-03-10"
    assert city.ok("records", "show", "court:C-002", now="2026-03-03T10:00:00+08:00")["status"] == "disputed"
    twice = city.run("objections", "file", "court:C-002", "--reason", "again", now="2026-03-04T09:00:00+08:00")
    assert twice.code == 2

    def overdue_ids(now: str) -> list[int]:
        return [o["id"] for o in city.ok("objections", "overdue", now=now)["overdue"]]

    assert filed["id"] not in overdue_ids("2026-03-10T18:00:00+08:00")
    assert filed["id"] in overdue_ids("2026-03-11T08:00:00+08:00")
    decided = city.ok(
        "objections",
        "decide",
        str(filed["id"]),
        "--outcome",
        "upheld",
        "--reason",
        "checked",
        now="2026-03-11T09:00:00+08:00",
    )
    assert decided["outcome"] == "upheld"
    assert decided["id"] == filed["id"]
    assert filed["id"] not in overdue_ids("2026-03-12T08:00:00+08:00")
    # Held while undecided, in effect from the later of its start and the decision.
    assert city.ok("check", P3, "court-defaulters/no-flights", "--as-of", EFFECT_DAY, now=LATER)["applies"] is True
    again = city.run("objections", "decide", str(filed["id"]), "--outcome", "revoked", "--reason", "x", now=LATER)
    assert again.code == 2


def test_consent_grant_and_withdraw(city: City) -> None:
    granted = city.ok("consent", "grant", P5, "--scheme", "city-points", now="2026-03-06T09:00:00+08:00")
    assert (granted["consent"], granted["changed"]) == ("granted", True)
    again = city.ok("consent", "grant", P5, "--scheme", "city-points", now="2026-03-06T09:30:00+08:00")
    assert again["changed"] is False
    scored = city.ok("score", P5, "--scheme", "city-points", now="2026-03-06T10:00:00+08:00")
    assert scored["score"] == 1000
    withdrawn = city.ok("consent", "withdraw", P5, "--scheme", "city-points", now="2026-03-07T09:00:00+08:00")
    assert (withdrawn["consent"], withdrawn["changed"]) == ("withdrawn", True)
    unscored = city.ok("score", P5, "--scheme", "city-points", now="2026-03-07T10:00:00+08:00")
    assert unscored["score"] is None
    assert unscored["grade"] is None
    organisation = city.run("consent", "grant", O1, "--scheme", "city-points", now=LATER)
    assert organisation.code == 2


def test_rebuild_changes_no_answer(city: City) -> None:
    before = [city.ok("score", s, now=LATER) for s in (P1, P2, O1)]
    rebuilt = city.ok("rebuild", now=LATER)
    assert rebuilt["effects"] > 0
    assert [city.ok("score", s, now=LATER) for s in (P1, P2, O1)] == before


# --- exit status 2 for bad input, on real subprocesses --------------------------------------------


def test_unknown_subject_exits_2(city: City) -> None:
    result = city.sub("score", person_id(999), "--scheme", "city-points", "--json")
    assert result.code == 2
    assert result.error() == {
        "code": "not_found",
        "message": f"subject {person_id(999)} is not registered",
        "problems": [],
    }


def test_bad_as_of_exits_2(city: City) -> None:
    result = city.sub("score", P1, "--scheme", "city-points", "--as-of", "2026-02-30", "--json")
    assert result.code == 2
    message = result.error()["message"]
    assert "--as-of" in message
    assert "2026-02-30" in message


def test_missing_file_exits_2(city: City) -> None:
    result = city.sub("records", "import", "no-such-file.csv", "--source", "court", "--json")
    assert result.code == 2
    assert "no-such-file.csv" in result.error()["message"]


def test_uninitialised_store_exits_2(tmp_path: Path) -> None:
    empty = City(tmp_path, f"sqlite:///{tmp_path / 'empty.db'}")
    result = empty.sub("scheme", "list")
    assert result.code == 2
    assert "run `xinyong init`" in result.flat_err
    assert "Traceback" not in result.err
    assert "run `xinyong init`" in empty.sub("scheme", "list", "--json").error()["message"]


def test_bad_xinyong_now_exits_2(city: City) -> None:
    result = city.run("scheme", "list", "--json", now="tomorrow")
    assert result.code == 2
    assert "XINYONG_NOW" in result.error()["message"]


def test_usage_errors_exit_2_without_a_traceback(city: City) -> None:
    result = city.sub("score")  # SUBJECT is missing
    assert "Traceback" not in result.err
    assert result.code == 2
    assert "subject" in result.flat_err.lower()
    unknown = city.run("no-such-command")
    assert unknown.code == 2
    assert "Traceback" not in unknown.err


def test_imports_yield_the_cpu_to_a_servers_checks(city: City, monkeypatch: pytest.MonkeyPatch) -> None:
    """`records import` and `subjects import` lower their own priority by XINYONG_IMPORT_NICE (10
    unless set; 0 leaves it), before they read anything; other commands keep theirs."""
    import os

    asked: list[int] = []
    monkeypatch.setattr(os, "nice", lambda step: asked.append(step) or step)
    city.run("records", "import", "court.csv", "--source", "court", "--json")
    city.run("subjects", "import", str(city.folder / "subjects.csv"), "--json")
    city.run("records", "show", "court:C-001", "--json")
    assert asked == [10, 10]
    # In a process of its own, for real: the priority the kernel reports afterwards.
    env = {**city.env(IMPORTED), "XINYONG_IMPORT_NICE": "7"}
    script = (
        "import os; from xinyong.interfaces.cli.context import yield_to_checks as y; "
        "b = os.nice(0); y(); print(os.nice(0) - b)"
    )
    lowered = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, check=True)
    assert lowered.stdout.strip() == "7", lowered
    env["XINYONG_IMPORT_NICE"] = "0"
    kept = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, check=True)
    assert kept.stdout.strip() == "0"


def test_the_command_alone_helps_and_parses_as_the_whole_app_does() -> None:
    """`main` builds only the command the arguments name (`for_command`): for every command and
    group its help is word for word the whole app's, root options before it included, and
    anything else (no command, `--help`, a mistyped name) gets the whole app."""
    from typer.main import get_command
    from typer.testing import CliRunner

    from xinyong.interfaces.cli import app, for_command

    names = list(get_command(app).commands)  # type: ignore[attr-defined]
    assert len(names) >= 19
    runner = CliRunner()
    for name in names:
        for argv in ([name, "--help"], ["--db", "sqlite://", name, "--help"]):
            alone = for_command(argv)
            assert alone is not app, argv
            assert list(get_command(alone).commands) == [name]  # type: ignore[attr-defined]
            assert runner.invoke(alone, argv).output == runner.invoke(app, argv).output, argv
    for argv in ([], ["--help"], ["--db", "check"], ["chek", "x"], ["--token=t"]):
        assert for_command(argv) is app, argv


# --- errors -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "args",
    [
        ("score", "{wrong}", "--scheme", "city-points"),
        ("check", "{wrong}", "court-defaulters/no-flights"),
        ("consent", "grant", "{wrong}", "--scheme", "city-points"),
    ],
)
def test_a_wrong_check_character_is_named_as_such(city: City, args: tuple[str, ...]) -> None:
    wrong = P1[:-1] + ("0" if P1[-1] != "0" else "1")
    argv = [a.replace("{wrong}", wrong) for a in args]
    error = city.run(*argv, "--json").error()
    assert error["code"] == "invalid"
    assert "wrong check character" in error["message"]
    assert "not registered" not in error["message"]
    human = city.run(*argv)
    assert human.code == 2
    assert "wrong check character" in human.flat_err
    report = city.run("report", wrong)
    assert report.code == 2
    assert "wrong check character" in report.flat_err


def test_usage_errors_under_json_are_one_object_too(city: City) -> None:
    result = city.run("score", "--json")
    assert result.code == 2
    error = result.error()
    assert error["code"] == "usage"
    assert "subject" in error["message"].lower()


@pytest.mark.parametrize(
    ("args", "suggested"),
    [
        (("score", P1, "--scheme", "city-pionts"), "did you mean city-points?"),
        (("check", P1, "court-defaulters/no-fligts"), "did you mean no-flights?"),
        (("check", P1, "court-defalters/no-flights"), "did you mean court-defaulters?"),
        (("consent", "grant", P1, "--scheme", "citypoints"), "did you mean city-points?"),
    ],
)
def test_a_wrong_scheme_or_measure_name_suggests_the_closest(city: City, args: tuple[str, ...], suggested: str) -> None:
    error = city.run(*args, "--json").error()
    assert error["message"].endswith(suggested)


def test_a_far_off_measure_name_lists_the_measures(city: City) -> None:
    message = city.run("check", P1, "court-defaulters/zzz", "--json").error()["message"]
    assert "(known: " in message
    assert "no-flights" in message


def test_at_most_50_problems_are_printed_then_a_count_and_the_full_list(city: City) -> None:
    lines = "".join(f"{P2},COURT.NO_SUCH_THING,2026-01-01,MANY-{n}\n" for n in range(720))
    city.write("many.csv", "subject_id,behaviour,occurred_on,document_ref\n" + lines)
    human = city.run("records", "import", "many.csv", "--source", "court")
    assert human.code == 2
    shown = [line for line in human.err.splitlines() if line.startswith("  line ")]
    assert len(shown) == 50
    assert shown[0].startswith("  line 2, column behaviour")
    last = human.err.splitlines()[-1]
    assert "670 more" in last
    assert "all 720" in last
    listed = Path(last.rsplit(" ", 1)[-1])
    try:
        assert oct(listed.stat().st_mode & 0o777) == "0o600"
        with listed.open(encoding="utf-8") as handle:
            rows = list(csv.DictReader(handle))
        assert len(rows) == 720
        assert rows[-1]["line"] == "721"
        assert rows[-1]["column"] == "behaviour"
    finally:
        listed.unlink()
    error = city.run("records", "import", "many.csv", "--source", "court", "--json").error()
    assert len(error["problems"]) == 720  # a program reads every one
