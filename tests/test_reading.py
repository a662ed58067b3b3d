"""What people read names no command and no API path (issue 20): the catalogues, every notice
after every kind of event, the credit report and the check answer's `contest`. Clients get the
link as data beside the words (`contest_link`), which this test does not scan."""

from __future__ import annotations

import re

import pytest
from babel.messages.pofile import read_po

from helpers import World, at, d
from xinyong.derived.checks import check
from xinyong.due_process import notices
from xinyong.i18n import LOCALE_DIR
from xinyong.presentation import rendering, reports

# A command line (`xinyong objections …`, an option), an HTTP method or an API path.
COMMANDS = (
    "init|rebuild|score|check|report|state|serve|demo|scheme|sources|subjects|records|objections|repairs"
    "|notices|consent|tokens|audit|feeds"
)
PROGRAMMERS = re.compile(rf"\bxinyong ({COMMANDS})\b|/v1/|\b(POST|GET|PUT|DELETE)\b|(^|\s)--[a-z]|`")
LANGUAGES = ("en", "zh_Hans")


def programmers_words(text: str) -> list[str]:
    return [m.group(0) for m in PROGRAMMERS.finditer(text)]


def test_the_scanner_finds_what_it_is_for() -> None:
    said = "file it with `xinyong objections file R --reason …` or POST /v1/objections"
    assert len(programmers_words(said)) >= 4
    assert programmers_words("在信用门户或信用办窗口提出异议；记录 court:(2026)鲁1082执12号") == []


@pytest.mark.parametrize("lang", LANGUAGES)
def test_no_message_of_the_catalogues_names_a_command(lang: str) -> None:
    with (LOCALE_DIR / lang / "LC_MESSAGES" / "xinyong.po").open("rb") as f:
        catalog = read_po(f, locale=lang)
    found = {m.id: programmers_words(f"{m.id}\n{m.string}") for m in catalog if m.id}
    assert {k: v for k, v in found.items() if v} == {}


@pytest.fixture
def told(world: World) -> tuple[World, str, list[int]]:
    """A person told of a record, an objection and its decision, a correction, a revocation, an
    end and a repair: every kind of notice."""
    person, _ = world.standard()
    first = world.record(person, "COURT.DEFAULT", "2026-03-01", at("2026-03-02"))
    second = world.record(person, "TRAFFIC.MINOR", "2026-03-01", at("2026-03-02"))
    objection = world.object(first, at("2026-03-05"))
    world.decide(objection, "upheld", at("2026-03-09"))
    world.correct(second, at("2026-03-06"), occurred_on=d("2026-02-27"))
    world.revoke(second, at("2026-03-07"))
    world.end(first, "2026-04-01", at("2026-04-01"))
    return world, person, [first, second]


def test_every_notice_in_both_languages_names_no_command(told: tuple[World, str, list[int]]) -> None:
    world, person, _ = told
    with world.store.read() as conn:
        found = notices.inbox(conn, person)
    assert {n.kind for n in found} >= {"recorded", "disputed", "decided", "corrected", "revoked", "ended"}
    for notice in found:
        for lang in LANGUAGES:
            text = notices.render(notice, lang)
            assert programmers_words(text.subject + "\n" + text.body) == [], (notice.kind, lang)


def test_the_report_and_the_check_answer_say_how_to_contest_in_words(told: tuple[World, str, list[int]]) -> None:
    world, person, _ = told
    with world.store.read() as conn:
        report = reports.build_report(conn, person, as_of=d("2026-03-20"), known_at=at("2026-03-20"))
        answer = check(conn, person, "demo-city/no-flights", d("2026-03-20"), at("2026-03-20"))
    for lang in LANGUAGES:
        page = rendering.html(report, lang)
        assert programmers_words(re.sub(r"<style>.*?</style>", "", page, flags=re.S)) == [], lang
    assert "credit portal or at the credit office" in answer.contest
    assert programmers_words(answer.contest) == []
    assert answer.applies
    assert all(str(r) in answer.contest for r in answer.records)
    assert programmers_words(report["how_to_contest"]) == []
    assert report["contest_link"]["href"] == "/v1/objections"
