"""The web pages, called in-process: public portal, subject portal, staff console, log-in and CSRF.

One small world per module (DESIGN.md's example scheme): a person who logs in with a password, an
organisation with a public record, an officer, and subjects whose names carry markup. The pages go
through the service, so the tests also check that they write the same audit entries as the API.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from helpers import World, at, org_id, person_id
from test_search import register
from xinyong.interfaces.site import create_app
from xinyong.rules.clock import FixedClock
from xinyong.security import audit
from xinyong.security.access import Principal, Role
from xinyong.service import Service
from xinyong.storage.store import Store

NOW = at("2026-03-01")
P1, P2, P3 = person_id(1), person_id(2), person_id(3)
O1, O2 = org_id(1), org_id(2)
ADMIN = Principal(Role.ADMIN, "setup", channel="test")
MARKUP_ORG = '<script>alert("org")</script>远洋渔业有限公司'
MARKUP_REP = "<b onmouseover=alert(1)>王五</b>"
MARKUP_PERSON = "<img src=x onerror=alert(2)>赵六"
PASSWORD = "correct horse battery"


@dataclass
class Site:
    store: Store
    client: TestClient
    records: dict[str, int]
    officer_token: str

    def csrf(self, path: str = "/login") -> str:
        found = re.search(r'name="csrf" value="([^"]+)"', self.client.get(path).text)
        assert found, path
        return found.group(1)

    def log_in(self, login: str, password: str = PASSWORD, lang: str = "en") -> None:
        self.client.cookies.clear()
        answer = self.client.post(
            "/login", data={"csrf": self.csrf(), "login": login, "password": password}, follow_redirects=False
        )
        assert answer.status_code == 303, answer.text
        self.client.get(f"/lang/{lang}")

    def log_out(self) -> None:
        self.client.cookies.clear()


def build_world(store: Store) -> dict[str, int]:
    world = World(store)
    world.standard()  # P1 张三 (consent), O1 测试有限公司
    world.subjects([(P2, "person", "李四"), (P3, "person", MARKUP_PERSON)])
    # Through the import, so that the look-up's index has the representative too.
    register(store, [(O2, "organisation", MARKUP_ORG, MARKUP_REP)])
    world.consent(P3, True, "2020-01-02")
    return {
        "court": world.record(P1, "COURT.DEFAULT", "2026-01-05", at("2026-01-06")),
        "traffic": world.record(P1, "TRAFFIC.MINOR", "2026-01-05", at("2026-01-06")),
        "org": world.record(O1, "COURT.DEFAULT", "2026-01-05", at("2026-01-06")),
        "markup_org": world.record(O2, "COURT.DEFAULT", "2026-01-05", at("2026-01-06")),
        "markup_person": world.record(P3, "COURT.DEFAULT", "2026-01-05", at("2026-01-06")),
        "p2": world.record(P2, "TRAFFIC.MINOR", "2026-01-05", at("2026-01-06")),
        "p2_day": world.record(P2, "TRAFFIC.MINOR", "2026-01-06", at("2026-01-07")),
    }


def make_site(tmp: pytest.TempPathFactory, name: str) -> Iterator[Site]:
    folder = tmp.mktemp(name)
    store = Store(f"sqlite:///{folder / 'web.db'}")
    store.migrate()
    records = build_world(store)
    service = Service(store, FixedClock(at("2026-02-01")))
    for login, subject in ((P1, P1), (P3, P3), (P2, P2)):
        service.credentials.set_password(ADMIN, login, PASSWORD, Role.SUBJECT, subject=subject)
    service.credentials.set_password(ADMIN, "officer", PASSWORD, Role.OFFICER)
    service.credentials.set_password(ADMIN, "admin", PASSWORD, Role.ADMIN)
    officer_token, _ = service.credentials.create_token(ADMIN, Role.OFFICER, label="officer-token")
    app = create_app(store, clock=FixedClock(NOW), token_cache_seconds=0)
    with TestClient(app, raise_server_exceptions=True) as client:
        yield Site(store, client, records, officer_token)
    store.dispose()


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    yield from make_site(tmp_path_factory, "web")


class Text(HTMLParser):
    """The visible text of a page (scripts and styles left out)."""

    def __init__(self) -> None:
        super().__init__()
        self.parts: list[str] = []
        self._skip = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in {"script", "style"}:
            self._skip += 1

    def handle_endtag(self, tag: str) -> None:
        if tag in {"script", "style"}:
            self._skip -= 1

    def handle_data(self, data: str) -> None:
        if not self._skip and data.strip():
            self.parts.append(data.strip())


def visible(html: str) -> list[str]:
    parser = Text()
    parser.feed(html)
    return parser.parts


# --- the public portal ------------------------------------------------------------------------------


def test_the_public_finds_an_organisation_by_part_of_its_name_and_by_pinyin(site: Site) -> None:
    site.log_out()
    for query in ("测试", "ceshi", "csyx", O1):
        page = site.client.get("/search", params={"q": query, "lang": "en"})
        assert page.status_code == 200
        assert f'href="/subjects/{O1}"' in page.text, query
    # Persons are not in the public look-up, by name or by id.
    for query in ("张三", P1, "zhangsan"):
        page = site.client.get("/search", params={"q": query})
        assert "/subjects/" not in page.text, query


def test_the_public_profile_shows_public_records_with_their_expiry(site: Site) -> None:
    site.log_out()
    page = site.client.get(f"/subjects/{O1}", params={"lang": "en"})
    assert page.status_code == 200
    assert "court:DOC-3" in page.text
    assert "5 January 2028" in page.text  # 2026-01-05 + P2Y: the day it stops counting
    assert "Dishonest judgment defaulters" in page.text
    # A person has no public profile: the same answer as for an unknown id.
    assert site.client.get(f"/subjects/{P1}").status_code == 404
    assert site.client.get("/subjects/91110000000000000X").status_code == 404


def test_every_scheme_is_published_in_full_with_its_versions(site: Site) -> None:
    page = site.client.get("/schemes/demo-city", params={"lang": "en"})
    assert page.status_code == 200
    for text in (
        "TRAFFIC.MINOR",
        "Road Traffic Safety Law art. 90",
        "2 years",
        "-100",
        "No air tickets",
        "AAA",
        "2026.1",
    ):
        assert text in page.text, text
    # Periods and rules in words, not ISO 8601 or JSON.
    assert "P2Y" not in page.text
    assert "grade_in" not in page.text
    assert "an active record of Failure to perform an effective judgment" in page.text
    zh = site.client.get("/schemes/demo-city", params={"lang": "zh_Hans"}).text
    assert "2 年" in zh
    assert "方案编号" in zh
    assert "/lists/demo-city/defaulters" in page.text  # a public list (public-class behaviour only)
    assert "/lists/demo-city/repeat-traffic" not in page.text
    listing = site.client.get("/lists/demo-city/defaulters", params={"lang": "en"})
    assert listing.status_code == 200
    assert P1 not in listing.text
    assert P1[:6] + "********" + P1[-4:] in listing.text
    assert "张三" not in listing.text  # persons' names withheld
    assert O1 in listing.text


# --- logging in -----------------------------------------------------------------------------------


def test_log_in_with_a_password_or_a_token_and_refusals(site: Site) -> None:
    site.log_out()
    assert site.client.get("/me", follow_redirects=False).headers["location"] == "/login?next=%2Fme"
    wrong = site.client.post("/login", data={"csrf": site.csrf(), "login": P1, "password": "nope"})
    assert wrong.status_code == 401
    # A form without the session's CSRF token is refused and logs nobody in.
    forged = site.client.post("/login", data={"csrf": "forged", "login": P1, "password": PASSWORD})
    assert forged.status_code == 401
    assert site.client.get("/me", follow_redirects=False).status_code == 303
    site.log_in(P1)
    assert site.client.get("/me").status_code == 200
    # The session cookie is signed, HttpOnly and SameSite=Strict, and holds no secret.
    site.log_out()
    answer = site.client.post(
        "/login", data={"csrf": site.csrf(), "bearer": site.officer_token}, follow_redirects=False
    )
    assert answer.headers["location"] == "/staff"
    cookie = answer.headers["set-cookie"]
    assert "HttpOnly" in cookie
    assert "SameSite=strict" in cookie.replace("Strict", "strict")
    assert site.officer_token.split("_", 2)[2] not in cookie
    assert site.client.get("/staff").status_code == 200


def test_a_subject_logs_in_with_its_token_and_a_revoked_token_ends_the_session(site: Site) -> None:
    service = Service(site.store, FixedClock(NOW))
    bearer, info = service.credentials.create_token(ADMIN, Role.SUBJECT, subject=P1, label="subject-token")
    site.log_out()
    answer = site.client.post("/login", data={"csrf": site.csrf(), "bearer": bearer}, follow_redirects=False)
    assert answer.headers["location"] == "/me"
    assert site.client.get("/me").status_code == 200
    service.credentials.revoke_token(ADMIN, info.id)
    assert site.client.get("/me", follow_redirects=False).status_code == 303  # back to the log-in page


def test_a_password_is_no_bearer_token_and_roles_keep_their_pages(site: Site) -> None:
    site.log_in(P1)
    assert site.client.get("/staff").status_code == 403  # a subject is not staff
    site.log_in("officer")
    assert site.client.get("/me").status_code == 403
    # The password's row cannot be used as an API token.
    answer = site.client.get("/v1/objections", headers={"Authorization": f"Bearer xy_PW-OFFICER_{PASSWORD}"})
    assert answer.status_code == 401


def test_a_post_from_the_session_needs_its_csrf_token(site: Site) -> None:
    site.log_in(P1)
    answer = site.client.post("/me/objections", data={"csrf": "x", "record": site.records["traffic"], "reason": "no"})
    assert answer.status_code == 401
    answer = site.client.post("/me/objections", data={"record": site.records["traffic"], "reason": "no"})
    assert answer.status_code == 400


# --- the subject portal -----------------------------------------------------------------------------


def test_my_report_explains_the_score_with_a_timeline(site: Site) -> None:
    site.log_in(P1)
    page = site.client.get("/me", params={"lang": "en"})
    assert page.status_code == 200
    assert 'data-testid="score-demo-city">895<' in page.text  # 1000 - 100 - 5
    assert "Failure to perform an effective judgment" in page.text
    assert 'data-chart="timeline-demo-city-spec"' in page.text
    assert '"$schema": "https://vega.github.io/schema/vega-lite/v6.json"' in page.text
    assert "/static/vendor/vega-embed.min.js" in page.text
    # The score's recovery as records expire, as a table that reads without JavaScript.
    assert "How the score recovers as records expire (if nothing new is recorded)" in page.text
    assert re.search(r"5 January 2027</td><td class=\"num\">900<", page.text)  # the traffic record expires first


def test_a_subject_files_an_objection_applies_for_repair_and_reads_its_inbox(site: Site) -> None:
    site.log_in(P1)
    token = site.csrf("/me")
    before = len(site.client.get("/me/notices").text.split("<article")) - 1
    answer = site.client.post(
        "/me/objections",
        data={"csrf": token, "record": str(site.records["traffic"]), "reason": "I was not driving"},
        follow_redirects=False,
    )
    assert answer.status_code == 303
    assert answer.headers["location"].startswith("/me?done=objection")
    page = site.client.get("/me?done=objection")
    assert "Your objection was filed" in page.text
    assert "disputed" in page.text
    answer = site.client.post(
        "/me/repairs",
        data={"csrf": token, "record": str(site.records["court"]), "evidence": "paid in full"},
        follow_redirects=False,
    )
    assert answer.status_code == 303
    after = len(site.client.get("/me/notices").text.split("<article")) - 1
    assert after == before + 2  # objection received, repair application received
    # The same actions through the web are audited as the API's are, with the web as channel.
    with site.store.audit_read() as conn:
        entries = audit.who_looked(conn, P1)
    filed = [e for e in entries if e["action"] == "objections.file" and e["outcome"] == "done"]
    assert filed
    assert filed[0]["actor"] == f"web:{P1}"
    assert filed[0]["role"] == f"subject:{P1}"
    who = site.client.get("/me/who-looked", params={"lang": "en"})
    assert "filed an objection" in who.text
    assert "you looked at your own data" in who.text  # the day's own visits, gathered in one row
    assert who.text.count("you looked at your own data") == 1
    assert "objections.file" not in who.text
    assert "reports.read" not in who.text


def test_notices_can_be_marked_read(site: Site) -> None:
    site.log_in(P3)
    assert "Mark all as read" in site.client.get("/me/notices").text
    answer = site.client.post("/me/notices/read", data={"csrf": site.csrf("/me/notices")})
    assert answer.status_code == 200
    assert 'class="notice unread"' not in answer.text
    assert "Mark all as read" not in answer.text


def test_consent_can_be_withdrawn_and_granted_again(site: Site) -> None:
    site.log_in(P2)
    page = site.client.get("/me/consent", params={"lang": "en"})
    assert "not granted" in page.text
    token = site.csrf("/me/consent")
    answer = site.client.post("/me/consent", data={"csrf": token, "scheme": "demo-city", "grant": "yes"})
    assert answer.status_code == 200
    assert "Withdraw consent" in answer.text
    answer = site.client.post("/me/consent", data={"csrf": token, "scheme": "demo-city", "grant": "no"})
    assert "Grant consent" in answer.text


def test_the_pdf_report_downloads(site: Site) -> None:
    site.log_in(P1)
    answer = site.client.get("/me/report.pdf")
    assert answer.status_code == 200
    assert answer.headers["content-type"] == "application/pdf"
    assert answer.content.startswith(b"%PDF")


# --- the staff console ------------------------------------------------------------------------------


def test_the_officer_decides_an_objection_from_the_queue(site: Site) -> None:
    site.log_in(P2)
    token = site.csrf("/me")
    site.client.post("/me/objections", data={"csrf": token, "record": str(site.records["p2"]), "reason": "not me"})
    filed = Service(site.store, FixedClock(NOW)).objections.listing(ADMIN, subject_id=P2, undecided=True)[0]
    site.log_in("officer")
    queue = site.client.get("/staff/objections", params={"lang": "en"})
    assert queue.status_code == 200
    row = queue.text.split(f'id="objection-{filed.id}"')[1].split("</tr>")[0]
    assert "transport:DOC-6" in row
    assert "not me" in row
    # Filed on Sunday 1 March 2026: five working days, the day of filing not counted.
    assert filed.due_on.isoformat() == "2026-03-06"
    assert "6 March 2026" in row
    assert "5 working days left" in row
    answer = site.client.post(
        f"/staff/objections/{filed.id}",
        data={"csrf": site.csrf("/staff/objections"), "outcome": "revoked", "reason": "wrong plate"},
        follow_redirects=False,
    )
    assert answer.status_code == 303
    assert f'id="objection-{filed.id}"' not in site.client.get("/staff/objections").text
    site.log_in(P2)
    page = site.client.get("/me", params={"lang": "en"})
    assert "revoked" in page.text
    assert "Your objection was decided" in site.client.get("/me/notices", params={"lang": "en"}).text


def test_the_staff_form_offers_every_outcome_and_corrects_a_record(site: Site) -> None:
    """Upheld, corrected and revoked, as the command line has them, labelled as actions; a
    correction's date goes through the one validator, and a bad one changes nothing."""
    site.log_in(P2)
    site.client.post(
        "/me/objections", data={"csrf": site.csrf("/me"), "record": str(site.records["p2_day"]), "reason": "wrong day"}
    )
    filed = Service(site.store, FixedClock(NOW)).objections.listing(ADMIN, subject_id=P2, undecided=True)[0]
    site.log_in("officer")
    for lang, labels in (("en", ("Uphold", "Correct", "Revoke")), ("zh_Hans", ("维持", "更正", "撤销"))):
        row = site.client.get("/staff/objections", params={"lang": lang}).text.split(f'id="objection-{filed.id}"')[1]
        row = row.split("</tr>")[0]
        assert [f'value="{v}"' in row for v in ("upheld", "corrected", "revoked")] == [True] * 3
        assert all(label in row for label in labels), lang
        assert "已撤销" not in row
    bad = site.client.post(
        f"/staff/objections/{filed.id}",
        data={
            "csrf": site.csrf("/staff/objections"),
            "outcome": "corrected",
            "reason": "x",
            "occurred_on": "2026-13-01",
        },
    )
    assert bad.status_code == 400
    assert "occurred_on" in bad.text
    assert Service(site.store, FixedClock(NOW)).objections.listing(ADMIN, subject_id=P2, undecided=True)
    done = site.client.post(
        f"/staff/objections/{filed.id}",
        data={
            "csrf": site.csrf("/staff/objections"),
            "outcome": "corrected",
            "reason": "date was wrong",
            "occurred_on": "2026-01-04",
        },
        follow_redirects=False,
    )
    assert done.status_code == 303
    shown = Service(site.store, FixedClock(NOW)).records.show(ADMIN, str(site.records["p2_day"])).view()
    assert shown.occurred_on.isoformat() == "2026-01-04"


def test_the_officer_approves_a_repair_from_the_queue(site: Site) -> None:
    site.log_in(P3)
    record = site.records["markup_person"]
    answer = site.client.post(
        "/me/repairs",
        data={"csrf": site.csrf("/me"), "record": str(record), "evidence": "judgment performed in full"},
        follow_redirects=False,
    )
    assert answer.status_code == 303
    site.log_in("officer")
    queue = site.client.get("/staff/repairs")
    found = re.search(r'<tr id="repair-(\d+)">(.*?)</tr>', queue.text, re.S)
    assert found is not None
    assert "judgment performed in full" in found.group(2)
    answer = site.client.post(
        f"/staff/repairs/{found.group(1)}",
        data={"csrf": site.csrf("/staff/repairs"), "outcome": "approved", "reason": "receipt verified"},
        follow_redirects=False,
    )
    assert answer.status_code == 303
    site.log_in(P3)
    row = site.client.get("/me").text.split(f'id="record-{record}"')[1].split("</tr>")[0]
    assert "ended" in row
    assert "Your repair application was decided" in site.client.get("/me/notices").text


def test_an_overdue_objection_is_flagged(tmp_path_factory: pytest.TempPathFactory) -> None:
    folder = tmp_path_factory.mktemp("overdue")
    store = Store(f"sqlite:///{folder / 'web.db'}")
    store.migrate()
    records = build_world(store)
    Service(store, FixedClock(at("2026-02-02"))).objections.file(ADMIN, str(records["traffic"]), reason="late")
    service = Service(store, FixedClock(NOW))
    service.credentials.set_password(ADMIN, "officer", PASSWORD, Role.OFFICER)
    with TestClient(create_app(store, clock=FixedClock(NOW), token_cache_seconds=0)) as client:
        site = Site(store, client, records, "")
        site.log_in("officer")
        queue = client.get("/staff/objections", params={"lang": "en"})
        assert 'class="overdue"' in queue.text
        assert "overdue by" in queue.text
        assert "overdue" in client.get("/staff", params={"lang": "en"}).text
    store.dispose()


def test_imports_show_line_level_errors_and_change_nothing(site: Site) -> None:
    site.log_in("officer")
    assert 'action="/staff/imports"' not in site.client.get("/staff/imports").text  # officers may not submit
    site.log_in("admin")
    token = site.csrf("/staff/imports")
    bad = (
        f"subject_id,behaviour,occurred_on,document_ref\n{P1},TRAFFIC.MINOR,2026-13-01,X-1\n{P1},NOPE,2026-01-01,X-2\n"
    )
    answer = site.client.post(
        "/staff/imports",
        data={"csrf": token, "kind": "records", "source": "transport"},
        files={"file": ("bad.csv", bad.encode(), "text/csv")},
        follow_redirects=False,
    )
    assert answer.status_code == 303
    page = site.client.get(answer.headers["location"], params={"lang": "en"})
    assert "failed" in page.text
    assert "bad.csv" in page.text
    assert re.search(r'<td class="num">2</td>', page.text)
    assert re.search(r'<td class="num">3</td>', page.text)
    good = f"subject_id,behaviour,occurred_on,document_ref\n{P2},TRAFFIC.MINOR,2026-02-01,X-3\n"
    answer = site.client.post(
        "/staff/imports",
        data={"csrf": token, "kind": "records", "source": "transport"},
        files={"file": ("good.csv", good.encode(), "text/csv")},
    )
    assert "1 imported, 0 already present" in site.client.get(str(answer.url), params={"lang": "en"}).text


def test_the_dashboard_and_list_changes(site: Site) -> None:
    site.log_in("officer")
    page = site.client.get("/staff", params={"lang": "en"})
    assert page.status_code == 200
    for chart in ("chart-grades", "chart-sources", "chart-lists"):
        assert f'data-chart="{chart}-spec"' in page.text
    assert "Records per source over time" in page.text
    changes = site.client.get("/staff/lists", params={"which": "demo-city/defaulters", "since": "2026-01-01"})
    assert changes.status_code == 200
    assert P1 in changes.text  # the office sees ids unmasked; P1 joined after its notice period


def test_the_staff_pages_refuse_the_public_and_subjects(site: Site) -> None:
    site.log_out()
    for path in ("/staff", "/staff/objections", "/staff/repairs", "/staff/imports", "/staff/lists"):
        assert site.client.get(path, follow_redirects=False).status_code == 303  # to the log-in page
    site.log_in(P1)
    for path in ("/staff", "/staff/objections", "/staff/imports"):
        assert site.client.get(path).status_code == 403


# --- names with markup are text everywhere ----------------------------------------------------------


def pages_showing_markup(site: Site) -> list[tuple[str, str]]:
    shown = []
    site.log_out()
    for path in (
        "/search?q=远洋",
        "/search?q=yuanyang",
        "/search?q=王五",
        f"/subjects/{O2}",
        "/lists/demo-city/defaulters",
    ):
        shown.append((path, site.client.get(path).text))
    site.log_in(P3)
    for path in ("/me", "/me/notices"):
        shown.append((path, site.client.get(path).text))
    site.log_in("officer")
    for path in ("/staff/lists?which=demo-city/defaulters&since=2026-01-01", f"/subjects/{O2}", f"/subjects/{P3}"):
        shown.append((path, site.client.get(path).text))
    return shown


def test_names_with_markup_are_shown_as_text_everywhere(site: Site) -> None:
    pages = pages_showing_markup(site)
    for path, html in pages:
        for raw in ("<script>alert", "<b onmouseover", "<img src=x"):
            assert raw not in html, (path, raw)
    text = {path: " ".join(visible(html)) for path, html in pages}
    assert MARKUP_ORG in text["/search?q=远洋"]
    assert MARKUP_ORG in text[f"/subjects/{O2}"]
    assert MARKUP_REP in text["/search?q=王五"]
    assert MARKUP_PERSON in text["/me"]
    assert "&lt;script&gt;" in dict(pages)["/search?q=yuanyang"]


# --- closed network -----------------------------------------------------------------------------------


def test_pages_load_nothing_from_elsewhere_and_vendored_files_are_listed(site: Site) -> None:
    import hashlib
    from pathlib import Path

    static = Path(__file__).parents[1] / "src" / "xinyong" / "interfaces" / "web" / "static"
    listed = (static / "VENDORED.md").read_text(encoding="utf-8")
    for path in sorted((static / "vendor").glob("*.js")):
        assert f"`vendor/{path.name}`" in listed, path.name
        assert hashlib.sha256(path.read_bytes()).hexdigest() in listed, path.name
        assert site.client.get(f"/static/vendor/{path.name}").status_code == 200
    site.log_in(P1)
    for path in ("/", "/me", "/schemes/demo-city"):
        html = site.client.get(path).text
        assert not re.search(r'(?:src|href)="(?:https?:)?//', html), path


# --- the demo's log-ins -----------------------------------------------------------------------------


def test_the_demo_prints_log_ins_that_work(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import contextlib
    import io
    import json
    import sys

    from xinyong.interfaces import cli

    db = f"sqlite:///{tmp_path / 'xinyong-demo.db'}"
    monkeypatch.setenv("XINYONG_DB", db)
    monkeypatch.setattr(
        sys, "argv", ["xinyong", "demo", "--persons", "120", "--organisations", "20", "--no-serve", "--json"]
    )
    out = io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.suppress(SystemExit):
        cli.main()
    summary = json.loads(out.getvalue())
    assert "url" not in summary  # --no-serve: nothing is served, so no address is given
    found = summary["logins"]
    assert set(found) == {"subject", "officer", "enforcer"}
    store = Store(db)
    service = Service(store)
    assert service.credentials.log_in(found["subject"]["login"], found["subject"]["password"]).role is Role.SUBJECT
    assert service.credentials.log_in("officer", found["officer"]["password"]).role is Role.OFFICER
    assert service.credentials.authenticate(found["enforcer"]["token"]).agency == "civil-aviation"
    # The subject has a counting record it can still object to.
    report = service.questions.report(ADMIN, found["subject"]["login"])
    assert any(r["status"] == "recorded" and not r["expired"] for r in report["records"])
    store.dispose()


def test_a_store_that_cannot_answer_is_a_503_page_without_its_details(
    site: Site, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """The platform's state, not the visitor's input: 503 (it was a 400 "could not be carried
    out"), a plain line in the visitor's language, and the store's own words only in the log."""
    from xinyong.errors import Unavailable
    from xinyong.service.questions import Questions

    def busy(*_args: object, **_kwargs: object) -> None:
        raise Unavailable("the store cannot answer now: (sqlite3.OperationalError) database is locked")

    monkeypatch.setattr(Questions, "report", busy)
    site.log_out()
    site.client.get("/lang/zh_Hans")
    page = site.client.get(f"/subjects/{O1}")
    assert page.status_code == 503
    assert "系统繁忙，请稍后再试" in page.text
    assert "未作任何更改" in page.text
    assert "sqlite3" not in page.text
    assert "database is locked" in caplog.text
    site.client.get("/lang/en")
