"""The command line acts only through the service's one door: every command that reads personal data
beyond the public view, or writes, leaves its audit entry (action, subject, principal).

One small SQLite store is built through the command line itself (`city`); each case then runs one
command in-process through `xinyong.interfaces.cli.main` and reads the entries it added to
`audit_log`. Cases that change a record each use a record of their own, so their order does not
matter. Preparing a case (filing the objection a decision needs, finding a notice's id) runs
commands too; only the entries of the command under test are checked.
"""

from __future__ import annotations

import ast
import csv
import getpass
import json
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text

from helpers import DEMO_CITY, org_id, person_id, run_cli
from xinyong.interfaces import cli
from xinyong.interfaces.cli.context import operator_name
from xinyong.storage.store import Store

IMPORTED = "2026-03-02T10:00:00+08:00"
NOW = "2026-03-20T12:00:00+08:00"
P1, P2 = person_id(1), person_id(2)
O1 = org_id(1)
CLI_PACKAGE = Path(cli.__file__).parent

# One record per case that changes one; all of P1's, so every entry names P1.
COURT_REFS = (
    "SHOW",
    "CORRECT",
    "REVOKE",
    "END",
    "OBJECT",
    "DECIDE",
    "REPAIR",
    "REPAIR-DECIDE",
    "SPARE-1",
    "SPARE-2",
    "PDF",
    "NAN",
)


@dataclass
class Run:
    code: int
    out: str
    err: str

    def json(self) -> Any:
        assert self.code == 0, self.err
        return json.loads(self.out)


@dataclass
class City:
    folder: Path
    db: str

    def run(self, *args: str, env: dict[str, str] | None = None) -> Run:
        """`xinyong ARGS` in this process, with the environment a user would have."""
        return Run(*run_cli(self.db, *args, now=NOW, env=env, cwd=self.folder))

    def ok(self, *args: str, env: dict[str, str] | None = None) -> Any:
        return self.run(*args, "--json", env=env).json()

    def write(self, name: str, body: str) -> str:
        (self.folder / name).write_text(body, encoding="utf-8")
        return name

    def head(self) -> int:
        return int(self.query("SELECT coalesce(max(seq), 0) AS seq FROM audit_log")[0]["seq"])

    def entries_after(self, seq: int) -> list[dict[str, Any]]:
        return self.query(
            "SELECT seq, actor, role, action, subject_id, purpose, outcome, detail FROM audit_log "
            "WHERE seq > :seq ORDER BY seq",
            seq=seq,
        )

    def query(self, sql: str, **params: Any) -> list[dict[str, Any]]:
        """A query of the audit log (its own file on SQLite)."""
        store = Store(self.db)
        try:
            with store.audit_read() as conn:
                return [dict(row._mapping) for row in conn.execute(text(sql), params)]
        finally:
            store.dispose()


@pytest.fixture(scope="module")
def city(tmp_path_factory: pytest.TempPathFactory) -> City:
    folder = tmp_path_factory.mktemp("cli-audit")
    c = City(folder, f"sqlite:///{folder / 'x.db'}")
    assert c.run("init").code == 0
    c.ok("scheme", "load", c.write("demo-city.yaml", DEMO_CITY))
    c.ok("sources", "add", "court", "--behaviours", "COURT.DEFAULT")
    c.ok("sources", "add", "civil-affairs", "--behaviours", "CHARITY.BLOOD")
    c.ok(
        "subjects",
        "import",
        c.write(
            "subjects.csv",
            f"subject_id,kind,name\n{P1},person,测试一\n{P2},person,测试二\n{O1},organisation,测试有限公司\n",
        ),
    )
    c.ok("consent", "grant", P1, "--scheme", "demo-city")
    header = "subject_id,behaviour,occurred_on,document_ref\n"
    court = header + "".join(f"{P1},COURT.DEFAULT,2026-02-20,{ref}\n" for ref in COURT_REFS)
    court += f"{O1},COURT.DEFAULT,2026-02-20,ORG-1\n"
    imported = {"XINYONG_NOW": IMPORTED}
    assert c.ok("records", "import", c.write("court.csv", court), "--source", "court", env=imported)["imported"] == 13
    blood = header + f"{P1},CHARITY.BLOOD,2026-02-01,B-1\n"
    c.ok("records", "import", c.write("blood.csv", blood), "--source", "civil-affairs", env=imported)
    return c


# --- every command that reads personal data or writes -------------------------------------------


def _id(run: Run, key: str = "id") -> str:
    return str(run.json()[key])


def fixed(*args: str) -> Callable[[City], list[str]]:
    return lambda _city: list(args)


def objection_to_decide(c: City) -> list[str]:
    filed = c.ok("objections", "file", "court:DECIDE", "--reason", "already paid")
    return ["objections", "decide", str(filed["id"]), "--outcome", "upheld", "--reason", "checked"]


def repair_to_decide(c: City) -> list[str]:
    applied = c.ok("repairs", "apply", "court:REPAIR-DECIDE", "--evidence", "paid in full")
    return ["repairs", "decide", str(applied["id"]), "--outcome", "approved", "--reason", "verified"]


def a_notice(c: City) -> int:
    return int(c.ok("notices", "list", P1)["notices"][0]["id"])


def a_token(c: City) -> list[str]:
    made = c.ok("tokens", "create", "--role", "enforcer:civil-aviation", "--label", "to-revoke")
    return ["tokens", "revoke", made["id"]]


def new_records(kind: str) -> Callable[[City], list[str]]:
    def prepare(c: City) -> list[str]:
        name = c.write(
            f"more-{kind}.csv",
            f"subject_id,behaviour,occurred_on,document_ref\n{P2},COURT.DEFAULT,2026-03-01,{kind}-1\n",
        )
        return ["records", "import", name, "--source", "court", "--bulk" if kind == "bulk" else "--no-bulk"]

    return prepare


def new_subjects(c: City) -> list[str]:
    return ["subjects", "import", c.write("more-subjects.csv", f"subject_id,kind,name\n{person_id(3)},person,测试三\n")]


def new_scheme(c: City) -> list[str]:
    return ["scheme", "load", c.write("other-city.yaml", DEMO_CITY.replace("scheme: demo-city", "scheme: other-city"))]


def with_feed(*args: str) -> Callable[[City], list[str]]:
    """A feeds command, once civil-aviation has a feed key."""

    def prepare(c: City) -> list[str]:
        if c.run("feeds", "show", "civil-aviation").code != 0:
            c.ok("feeds", "key", "civil-aviation")
        return ["feeds", *args]

    return prepare


def a_version_to_acknowledge(c: City) -> list[str]:
    with_feed()(c)
    c.ok("feeds", "publish")
    return ["feeds", "ack", "civil-aviation", str(c.ok("feeds", "show", "civil-aviation")["versions"][-1]["version"])]


# (command, how to get its arguments, the entries it must add: action and subject)
def a_draft(c: City) -> list[str]:
    return ["simulate", c.write("draft.yaml", DEMO_CITY.replace('"2026.1"', '"2026.2"'))]


CASES: list[tuple[str, Callable[[City], list[str]], list[tuple[str, str | None]]]] = [
    ("score", fixed("score", P1), [("state.read", P1)]),
    ("score --scheme", fixed("score", P1, "--scheme", "demo-city"), [("state.read", P1)]),
    ("check", fixed("check", P1, "demo-city/no-flights"), [("checks.ask", P1)]),
    ("report --format json", fixed("report", P1, "--format", "json"), [("reports.read", P1)]),
    ("report --format html", fixed("report", P1, "--format", "html", "--out", "r.html"), [("reports.read", P1)]),
    ("report --format pdf", fixed("report", P1, "--format", "pdf", "--out", "r.pdf"), [("reports.read", P1)]),
    ("records show", fixed("records", "show", "court:SHOW"), [("records.read", P1)]),
    (
        "records correct",
        fixed("records", "correct", "court:CORRECT", "--amount", "12.50", "--reason", "typo"),
        [("records.correct", P1)],
    ),
    (
        "records revoke",
        fixed("records", "revoke", "court:REVOKE", "--reason", "wrong person"),
        [("records.revoke", P1)],
    ),
    (
        "records end",
        fixed("records", "end", "court:END", "--on", "2026-03-19", "--reason", "fulfilled"),
        [("records.end", P1)],
    ),
    ("records decline", fixed("records", "decline", "civil-affairs:B-1"), [("consent.change", P1)]),
    ("records import", new_records("rows"), [("records.submit", None)]),
    ("records import --bulk", new_records("bulk"), [("records.submit", None)]),
    ("subjects import", new_subjects, [("subjects.import", None)]),
    ("scheme load", new_scheme, [("schemes.load", None)]),
    ("sources add", fixed("sources", "add", "transport", "--behaviours", "TRAFFIC.MINOR"), [("sources.manage", None)]),
    (
        "objections file",
        fixed("objections", "file", "court:OBJECT", "--reason", "already paid"),
        [("objections.file", P1)],
    ),
    ("objections decide", objection_to_decide, [("objections.decide", P1)]),
    ("objections list", fixed("objections", "list"), [("objections.read", None)]),
    ("objections list --subject", fixed("objections", "list", "--subject", P1), [("objections.read", P1)]),
    ("objections overdue", fixed("objections", "overdue"), [("objections.read", None)]),
    ("repairs apply", fixed("repairs", "apply", "court:REPAIR", "--evidence", "paid"), [("objections.file", P1)]),
    ("repairs decide", repair_to_decide, [("objections.decide", P1)]),
    ("repairs list", fixed("repairs", "list"), [("objections.read", None)]),
    ("repairs overdue", fixed("repairs", "overdue"), [("objections.read", None)]),
    ("notices list", fixed("notices", "list", P1), [("records.read", P1)]),
    ("notices show", lambda c: ["notices", "show", str(a_notice(c))], [("records.read", P1)]),
    ("notices read", lambda c: ["notices", "read", str(a_notice(c))], [("records.read", P1)]),
    ("notices contact", fixed("notices", "contact", P1, "--email", "p1@example.org"), [("contacts.change", P1)]),
    ("notices deliver", fixed("notices", "deliver"), [("notices.deliver", None)]),
    ("notices outbox", fixed("notices", "outbox"), [("notices.deliver", None)]),
    ("consent grant", fixed("consent", "grant", P2, "--scheme", "demo-city"), [("consent.change", P2)]),
    ("consent withdraw", fixed("consent", "withdraw", P2, "--scheme", "demo-city"), [("consent.change", P2)]),
    ("tokens create", fixed("tokens", "create", "--role", "officer", "--label", "desk-2"), [("tokens.manage", None)]),
    ("tokens revoke", a_token, [("tokens.manage", None)]),
    ("audit export", fixed("audit", "export", "--out", "audit.csv"), [("audit.read", None)]),
    ("audit who-looked", fixed("audit", "who-looked", P1), [("audit.who_looked", P1)]),
    ("audit compact", fixed("audit", "compact"), [("audit.compact", None)]),
    ("audit checkpoint", fixed("audit", "checkpoint"), [("audit.checkpoint", None)]),
    ("rebuild", fixed("rebuild"), [("effects.rebuild", None)]),
    ("search rebuild", fixed("search", "rebuild"), [("search.rebuild", None)]),
    ("subjects search --as-office", fixed("subjects", "search", "测试", "--as-office"), [("subjects.search", None)]),
    ("state", fixed("state", "--out", "state.parquet"), [("state.batch", None)]),
    ("simulate", a_draft, [("lab.aggregates", None)]),
    ("simulate --out", lambda c: [*a_draft(c), "--out", "lab"], [("lab.aggregates", None)]),
    ("fairness", fixed("fairness", "--scheme", "demo-city", "--by", "sex"), [("lab.aggregates", None)]),
    ("feeds key", fixed("feeds", "key", "civil-aviation"), [("feeds.key", None)]),
    (
        "feeds webhook",
        with_feed("webhook", "civil-aviation", "https://airline.example/hook"),
        [("feeds.webhook", None)],
    ),
    ("feeds publish", with_feed("publish"), [("feeds.publish", None)]),
    ("feeds show", with_feed("show", "civil-aviation"), [("feeds.read", None)]),
    ("feeds ack", a_version_to_acknowledge, [("feeds.ack", None)]),
    ("keys rotate", fixed("keys", "rotate"), [("keys.rotate", None)]),
]


@pytest.mark.parametrize(("command", "prepare", "expected"), CASES, ids=[case[0] for case in CASES])
def test_every_command_about_a_person_or_a_write_is_audited(
    city: City,
    command: str,
    prepare: Callable[[City], list[str]],
    expected: list[tuple[str, str | None]],
) -> None:
    args = prepare(city)
    before = city.head()
    result = city.run(*args)
    assert result.code == 0, f"{command}: {result.err}"
    added = city.entries_after(before)
    assert [(e["action"], e["subject_id"]) for e in added] == expected
    for entry in added:
        assert entry["actor"] == f"cli:{operator_name()}"
        assert entry["role"] == "admin"
        assert entry["outcome"] == "done"


def test_the_operator_is_the_login_unless_xinyong_actor_names_one(city: City) -> None:
    assert operator_name() == getpass.getuser()
    before = city.head()
    city.ok("score", P1, env={"XINYONG_ACTOR": "office:wang"})
    [entry] = city.entries_after(before)
    assert (entry["actor"], entry["role"]) == ("cli:office:wang", "admin")


def test_the_public_view_is_logged_only_as_the_report_it_issues(city: City) -> None:
    """Reading as the public leaves no trace, but a report issued to the public is a write (its
    number, question and digest are kept, to verify it later), and every write is logged."""
    before = city.head()
    public = city.run("report", O1, "--public").json()
    assert public["audience"] == "public"
    [entry] = city.entries_after(before)
    assert (entry["role"], entry["action"], entry["subject_id"]) == ("public", "reports.read", O1)
    assert json.loads(entry["detail"])["report"] == public["report_id"]
    # A person has no public report; the answer does not say whether the person exists.
    assert city.run("report", P1, "--public").code == 2


def test_verifying_a_report_and_showing_the_keys_are_public_and_not_logged(city: City) -> None:
    assert city.run("report", O1, "--public", "--format", "html", "--out", "public.html").code == 0
    before = city.head()
    assert city.ok("report", "verify", "public.html")["status"] == "valid"
    assert city.ok("keys", "show")["current"]
    assert city.entries_after(before) == []


def test_subjects_search_is_the_publics_unless_as_office(city: City) -> None:
    """`subjects search` finds organisations only and is not logged; `--as-office` finds persons
    too, under the operator's name, logged with the query."""
    before = city.head()
    public = city.ok("subjects", "search", "ceshi")
    assert public == {
        "query": "ceshi",
        "results": [
            {"id": O1, "kind": "organisation", "name": "测试有限公司", "legal_representative": None, "division": None}
        ],
    }
    assert city.entries_after(before) == []
    office = city.ok("subjects", "search", "ceshi", "--as-office", "--limit", "2")
    assert [r["id"] for r in office["results"]] == [O1, P1]
    [entry] = city.entries_after(before)
    assert json.loads(entry["detail"]) == {"q": "ceshi", "found": 2}
    bad = city.run("subjects", "search", "  ", "--json")
    assert bad.code == 2
    assert "give a name, a code or a legal representative" in bad.out


def test_a_token_acts_under_its_own_rights(city: City) -> None:
    clerk = city.ok("tokens", "create", "--role", "source:court", "--label", "court-clerk")["token"]
    name = city.write(
        "clerk.csv", f"subject_id,behaviour,occurred_on,document_ref\n{P2},COURT.DEFAULT,2026-03-02,CLERK-1\n"
    )
    before = city.head()
    assert city.ok("--token", clerk, "records", "import", name, "--source", "court")["imported"] == 1
    [entry] = city.entries_after(before)
    assert (entry["actor"], entry["role"], entry["action"]) == ("cli:court-clerk", "source:court", "records.submit")
    # A source submits; it does not read scores. The refusal is logged too.
    before = city.head()
    refused = city.run("--token", clerk, "score", P1, "--json")
    assert refused.code == 1
    assert json.loads(refused.out)["error"] == {
        "code": "denied",
        "message": "role source may not state.read",
        "problems": [],
    }
    [entry] = city.entries_after(before)
    assert (entry["action"], entry["subject_id"], entry["outcome"]) == ("state.read", P1, "denied")
    assert city.run("--token", "xy_nope_nope", "score", P1).code == 1


def test_audit_export_shows_score_pdf_record_and_repair(city: City) -> None:
    """The issue's acceptance check: after these four commands, `audit export` has an entry for each."""
    target = city.folder / "acceptance.pdf"
    city.ok("score", P1, "--scheme", "demo-city")
    assert city.run("report", P1, "--format", "pdf", "--out", str(target)).code == 0
    shown = city.ok("records", "show", "court:SPARE-1")
    applied = city.ok("repairs", "apply", "court:SPARE-2", "--evidence", "paid")
    exported = city.ok("audit", "export", "--out", "acceptance.csv")
    with (city.folder / "acceptance.csv").open(encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert exported["entries"] == len(rows)
    newest = rows[-4:]
    assert [(r["action"], r["subject_id"], r["actor"]) for r in newest] == [
        ("state.read", P1, f"cli:{operator_name()}"),
        ("reports.read", P1, f"cli:{operator_name()}"),
        ("records.read", P1, f"cli:{operator_name()}"),
        ("objections.file", P1, f"cli:{operator_name()}"),
    ]
    assert json.loads(newest[2]["detail"])["record"] == shown["id"]
    assert json.loads(newest[3]["detail"])["repair"] == applied["id"]


# --- amounts go through one function --------------------------------------------------------------


@pytest.mark.parametrize("amount", ["NaN", "-5", "1.005"])
def test_a_bad_amount_exits_2(city: City, amount: str) -> None:
    """`records correct REF --amount NaN` exits 2 with the reason the file import gives for the
    same amount, and the record stays as it was."""
    result = city.run("records", "correct", "court:NAN", f"--amount={amount}", "--reason", "typo")
    assert result.code == 2, result.err
    bad = city.write(
        "bad-amount.csv",
        f"subject_id,behaviour,occurred_on,document_ref,amount\n{P1},COURT.DEFAULT,2026-02-20,NAN-2,{amount}\n",
    )
    imported = city.run("records", "import", bad, "--source", "court")
    assert imported.code == 2
    reason = next(line for line in imported.err.splitlines() if "column amount: " in line).split("column amount: ")[1]
    assert result.err.strip() == f"--amount: {reason}"
    assert [e["kind"] for e in city.ok("records", "show", "court:NAN")["events"]] == ["recorded"]


# --- the command line reaches nothing but the service ------------------------------------------

FORBIDDEN = (
    "xinyong.ledger",
    "xinyong.derived",
    "xinyong.due_process",
    "xinyong.storage",
    "xinyong.security.audit",
    "xinyong.security.tokens",
    "xinyong.security.passwords",
    "xinyong.interfaces.api",
    "xinyong.interfaces.web",
    "xinyong.interfaces.site",
)
ALLOWED = {"xinyong.storage.store"}  # to open the store, and for `init` to migrate it


def imported_modules(path: Path) -> Iterator[str]:
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            yield node.module
            yield from (f"{node.module}.{alias.name}" for alias in node.names)


def test_the_command_line_imports_no_domain_module() -> None:
    modules = sorted(CLI_PACKAGE.glob("*.py"))
    assert len(modules) >= 10
    reached = {
        (path.name, name)
        for path in modules
        for name in imported_modules(path)
        if name.startswith(FORBIDDEN) and not any(name == a or name.startswith(f"{a}.") for a in ALLOWED)
    }
    # `from xinyong.storage.store import Store` also yields the module's own name; nothing else may.
    assert reached == set()
    for path in modules:
        assert len(path.read_text(encoding="utf-8").splitlines()) < 500, path.name


def test_starting_the_command_line_imports_only_what_it_needs() -> None:
    probe = (
        "import sys, xinyong.interfaces.cli\n"
        "heavy = ('sqlalchemy', 'rich', 'pyarrow', 'numpy', 'pydantic', 'babel', 'jinja2', 'xinyong.service')\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in heavy or m.startswith(heavy)))\n"
    )
    found = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=60)
    assert found.stdout.strip() == "[]"
