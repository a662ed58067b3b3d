"""End to end in a real headless Chromium: the public, a data subject and an officer click through.

One small demo city (the demo's own builder, a few hundred subjects) is served by uvicorn on
127.0.0.1 in a thread, with the system clock, as `xinyong demo` serves it. Debian's chromium
(`/usr/bin/chromium`, installed by `run.sh test`) is driven by Playwright for Python; Playwright's
own browser downloads are not used. The whole story is one test so that pytest-xdist keeps it on
one worker with one server and one browser.

Screenshots go to test-artifacts/ and, for the README, to docs/screenshots/.
"""

from __future__ import annotations

import csv
import io
import json
import re
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from browsing import ARTIFACTS, chromium, needs_chromium, served_in_thread

from helpers import org_id
from xinyong.demo import city as demo
from xinyong.demo import logins
from xinyong.derived.search_terms import read
from xinyong.due_process.after_append import AFTER_APPEND
from xinyong.ledger import imports
from xinyong.rules.clock import Clock
from xinyong.rules.engine import State
from xinyong.security.access import PUBLIC, Action, Principal, Role
from xinyong.service import Service
from xinyong.storage import tables as t
from xinyong.storage.store import Store

ROOT = Path(__file__).resolve().parents[2]
SCREENSHOTS = ROOT / "docs" / "screenshots"
MARKUP_NAME = '<script>alert("xss")</script>鲸鲨<img src=x onerror=alert(1)>科技有限公司'
ADMIN = Principal(Role.ADMIN, "e2e", channel="test")

pytestmark = needs_chromium


@dataclass
class Served:
    url: str
    store: Store
    logins: dict[str, Any]
    organisation: dict[str, str]
    record: int  # a record of the subject that counts today, to object to
    points: int


def _csv(rows: list[list[str]]) -> bytes:
    buffer = io.StringIO()
    csv.writer(buffer).writerows(rows)
    return buffer.getvalue().encode()


def _pick(store: Store, subject: str) -> tuple[int, int]:
    """The subject's counting negative record with the largest effect, and its points."""
    service = Service(store, Clock())
    states = service.questions.states(ADMIN, subject, scheme=logins.POINTS_SCHEME)
    state = states[0]
    assert isinstance(state, State)
    disputed = {o.record_id for o in service.objections.listing(ADMIN, subject_id=subject)}
    lines = [c for c in state.contributions if c.kind == "record" and c.points < 0 and c.record not in disputed]
    worst = min(lines, key=lambda c: c.points)
    assert worst.record is not None
    return worst.record, worst.points


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:

    from xinyong.interfaces.site import create_app

    folder = tmp_path_factory.mktemp("e2e")
    url = f"sqlite:///{folder / 'xinyong-demo.db'}"
    clock = Clock()
    demo.run(url, clock, persons=240, organisations=40, seed=11, console=None)
    store = Store(url)
    with store.write() as conn:
        organisations = list(
            conn.execute(t.subjects.select().where(t.subjects.c.kind == "organisation").order_by(t.subjects.c.id))
        )
        assert organisations
        imports.import_subjects(
            conn,
            "markup.csv",
            _csv([["subject_id", "kind", "name"], [org_id(9999), "organisation", MARKUP_NAME]]),
            now=clock.now(),
            actor="e2e",
            after=AFTER_APPEND,
        )
    # An organisation whose public profile shows records, for the screenshot.
    public = Service(store, clock)
    org = next(
        (o for o in organisations if public.questions.report(PUBLIC, o.id, action=Action.SUBJECTS_READ)["records"]),
        organisations[0],
    )
    made = logins.create(store, clock)
    record, points = _pick(store, made["subject"]["login"])
    with served_in_thread(create_app(store)) as base:
        yield Served(base, store, made, {"id": org.id, "name": org.name}, record, points)
    store.dispose()


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    with chromium(tmp_path_factory.mktemp("chromium-profile")) as context:
        yield context


def shot(page: Any, name: str, *, readme: bool = False) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=False)
    if readme:
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, SCREENSHOTS / f"{name}.png")


def log_in(page: Any, base: str, login: str, password: str) -> None:
    page.context.clear_cookies()
    page.goto(f"{base}/lang/en?next=/login")
    page.fill("#login", login)
    page.fill("#password", password)
    page.locator("form:has(#password) button[type=submit]").click()
    page.wait_for_load_state()


def score_of(page: Any) -> int:
    return int(page.inner_text(f"[data-testid=score-{logins.POINTS_SCHEME}]"))


def notice_count(page: Any, base: str) -> int:
    page.goto(f"{base}/me/notices")
    return int(page.locator("article.notice").count())


def test_public_subject_and_officer_click_through(served: Served, browser: Any) -> None:
    base = served.url
    page = browser.new_page()
    dialogs: list[str] = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    # Every page works under the site's Content-Security-Policy: the browser reports no violation
    # (an inline script or style, a string evaluated as code), and nothing is fetched from elsewhere.
    refused: list[str] = []
    page.on(
        "console", lambda message: refused.append(message.text) if "Content Security Policy" in message.text else None
    )
    elsewhere: list[str] = []
    page.on("request", lambda request: None if request.url.startswith(base) else elsewhere.append(request.url))

    # The public searches a company by part of its name, then by its pinyin, and opens its profile.
    name, org = served.organisation["name"], served.organisation["id"]
    page.goto(f"{base}/lang/en?next=/")
    page.fill("#q", name[2:6])
    page.press("#q", "Enter")
    page.wait_for_selector(f'a[href="/subjects/{org}"]')
    page.goto(f"{base}/")
    # Three whole syllables from inside the name, as typed: htmx answers without a page load.
    page.type("#q", "".join(read(name).syllables[1:4]), delay=20)
    page.wait_for_selector(f'#results a[href="/subjects/{org}"]')
    shot(page, "public-search")
    page.click(f'#results a[href="/subjects/{org}"]')
    page.wait_for_selector("h1")
    assert page.inner_text("h1") == name
    assert "Grades and lists" in page.content()
    shot(page, "public", readme=True)

    # A name with markup is shown as text: no script runs, the characters are on the page.
    page.goto(f"{base}/search?q=鲸鲨")
    assert page.locator("#results a").first.inner_text() == MARKUP_NAME
    page.click("#results a")
    assert page.inner_text("h1") == MARKUP_NAME

    # The subject logs in, reads the explanation and files an objection.
    subject = served.logins["subject"]
    log_in(page, base, subject["login"], subject["password"])
    assert page.url.endswith("/me")
    assert "Why: the explanation" in page.content()
    before = score_of(page)
    page.wait_for_selector(f"#timeline-{logins.POINTS_SCHEME}[data-drawn=true]")
    shot(page, "subject", readme=True)
    notices_before = notice_count(page, base)
    page.goto(f"{base}/me")
    row = page.locator(f"#record-{served.record}")
    row.locator("summary", has_text="Object").click()
    row.locator("textarea[name=reason]").fill("This is not my record: the document names someone else.")
    row.locator("button", has_text="File the objection").click()
    page.wait_for_selector(".flash")
    assert "disputed" in page.inner_text(f"#record-{served.record}")

    # The officer sees it in the queue with its deadline in working days, and revokes the record.
    officer = served.logins["officer"]
    log_in(page, base, officer["login"], officer["password"])
    page.goto(f"{base}/staff/objections")
    queued = page.locator("tr", has_text=subject["login"]).first
    deadline = queued.locator("td.deadline").inner_text()
    assert re.search(r"\d+ working days left", deadline), deadline
    shot(page, "staff", readme=True)
    queued.locator("input[value=revoked]").check()
    queued.locator("textarea").fill("The court confirmed the judgment names another person.")
    queued.locator("button", has_text="Decide").click()
    page.wait_for_selector(".flash")
    assert subject["login"] not in page.inner_text("main")
    page.goto(f"{base}/staff")
    page.wait_for_selector("#chart-grades[data-drawn=true]")
    shot(page, "staff-dashboard", readme=True)

    # The subject's score and inbox have changed accordingly.
    log_in(page, base, subject["login"], subject["password"])
    after = score_of(page)
    assert after > before, (before, after, served.points)
    assert after - before <= -served.points
    assert "revoked" in page.inner_text(f"#record-{served.record}")
    assert notice_count(page, base) >= notices_before + 2  # objection received, then decided
    assert "Your objection was decided" in page.inner_text("main")

    # The same pages in Chinese.
    page.goto(f"{base}/lang/zh_Hans?next=/me")
    assert "我的信用报告" in page.inner_text("h1")
    page.wait_for_selector(f"#timeline-{logins.POINTS_SCHEME}[data-drawn=true]")
    axis = page.inner_text(f"#timeline-{logins.POINTS_SCHEME}")
    assert "月" in axis
    assert not re.search(r"January|February|March|April|June|July|August|September|October|November|December", axis)
    assert page.locator("[data-error]").count() == 0
    shot(page, "subject-zh")

    # The API's documentation: swagger-ui, vendored, draws every operation under its own policy.
    page.goto(f"{base}/docs")
    page.wait_for_selector(".opblock")
    assert page.locator(".opblock").count() >= 20
    assert page.locator(".opblock-summary-path", has_text="/v1/checks/").count() == 2  # one subject, a manifest
    shot(page, "api-docs")

    assert not dialogs, dialogs
    assert not errors, errors
    assert not refused, refused
    assert not elsewhere, elsewhere


def test_log_in_locks_after_failures_and_log_out_ends_the_session(served: Served, browser: Any) -> None:
    """As a person at a browser meets them: the fifth wrong password in a row for a name locks it,
    and the page says for how many minutes, and a session cookie kept from before log-out no longer opens the pages."""
    base = served.url
    page = browser.new_page()
    page.context.clear_cookies()
    for _ in range(4):
        page.goto(f"{base}/lang/en?next=/login")
        page.fill("#login", "someone-guessing")
        page.fill("#password", "not the password")
        page.locator("form:has(#password) button[type=submit]").click()
        page.wait_for_selector(".error")
        assert "Too many" not in page.inner_text(".error")
    page.fill("#password", "still not the password")
    with page.expect_response(lambda answer: answer.url.endswith("/login")) as answered:
        page.locator("form:has(#password) button[type=submit]").click()
    assert answered.value.status == 429
    assert int(answered.value.headers["retry-after"]) > 0
    assert re.search(r"Try again in \d+ min", page.inner_text(".error"))
    shot(page, "login-locked")

    subject = served.logins["subject"]
    log_in(page, base, subject["login"], subject["password"])
    assert page.url.endswith("/me")
    kept = page.context.cookies()
    page.locator("header form button", has_text="Log out").click()
    page.wait_for_selector(".flash")
    page.context.add_cookies(kept)  # the cookie as it was before log-out, replayed
    page.goto(f"{base}/me")
    assert "/login" in page.url, page.url
    page.close()


def test_the_audit_seals_read_on_a_phone_and_a_desktop_in_both_languages(served: Served, browser: Any) -> None:
    """The demo seals its audit log once; the public page shows the seal and its key, in plain
    words, without a line wider than a phone (390 px) and without a command or an API path."""
    base = served.url
    page = browser.new_page()
    for lang, heading, zone in (
        ("en", "The audit log and its seals", "China Standard Time"),
        ("zh_Hans", "审计日志及其签封", "中国标准时间"),
    ):
        for width, name in ((1280, "desktop"), (390, "phone")):
            page.set_viewport_size({"width": width, "height": 860})
            page.goto(f"{base}/lang/{lang}?next=/audit")
            assert page.inner_text("h1") == heading
            main = page.inner_text("main")
            assert zone in main
            assert "/v1/" not in main
            assert "xinyong " not in main
            assert page.locator("tbody tr td.mono").count() >= 2  # a seal's fingerprint and its key
            overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
            assert overflow <= 0, (lang, width, overflow)
            shot(page, f"audit-{lang}-{name}")
    with page.expect_download() as downloading:
        page.click("a[download]")
    saved = json.loads(Path(downloading.value.path()).read_text(encoding="utf-8"))
    assert saved["checkpoints"]
    assert set(saved["keys"]) == {c["key"] for c in saved["checkpoints"]}
    page.close()


READERS_PAGES = {
    # name: (path, who is logged in, a phrase of its main content in English and in Chinese)
    "portal": ("/", None, ("Search", "查询")),
    "profile": ("/subjects/{org}", None, ("Grades and lists", "等级与名单")),
    "scheme": ("/schemes/court-defaulters", None, ("an active record of", "有一条有效的以下行为记录")),
    "list": ("/lists/court-defaulters/defaulters", None, ("members", "失信被执行人")),
    "me": ("/me", "subject", ("How to object", "如何提出异议")),
    "notices": ("/me/notices", "subject", ("credit office", "信用办")),
    "objections": ("/staff/objections?all=1", "officer", ("Objections queue", "异议待办")),
}


def test_what_people_read_on_a_phone_and_a_desktop_in_both_languages(served: Served, browser: Any) -> None:
    """The pages citizens and officers read, at 390 px and 1280 px in Chinese and English, saved
    under docs/screenshots/ (NAME-LANG-WIDTH.png). None names a command or an API path, the list
    scheme shows no score, and every scheme page reads its periods in words."""
    base = served.url
    page = browser.new_page()
    for name, (path, who, phrases) in READERS_PAGES.items():
        if who is None:
            page.context.clear_cookies()
        else:
            log_in(page, base, served.logins[who]["login"], served.logins[who]["password"])
        for lang, phrase in zip(("en", "zh_Hans"), phrases, strict=True):
            for width in (1280, 390):
                page.set_viewport_size({"width": width, "height": 900 if width > 400 else 844})
                page.goto(f"{base}/lang/{lang}?next={path.format(org=served.organisation['id'])}")
                page.wait_for_load_state()
                main = page.inner_text("main")
                assert phrase in main, (name, lang, width)
                assert "/v1/" not in main, (name, lang)
                assert not re.search(r"\bxinyong (objections|repairs|records)\b| --reason", main), (name, lang)
                assert not re.search(r"\bP\d+[DMY]\b", main), (name, lang)  # periods in words
                shot(page, f"{name}-{lang}-{width}", readme=True)
    log_in(page, base, served.logins["subject"]["login"], served.logins["subject"]["password"])
    main = page.inner_text("main")
    assert "This scheme is a list" in main
    assert page.locator("[data-testid=score-court-defaulters]").count() == 0
    page.close()
