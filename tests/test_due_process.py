"""Due process end to end: the issue's scenarios, replayed through the command line with XINYONG_NOW.

Day 0 is Monday 2 March 2026, when the court's records are recorded; each occurred the day before.
COURT.DEFAULT has a 10-day notice, so it takes effect on day 10 (12 March) and puts its subject on
the defaulters list, which brings the no-flights measure. Each scenario has its own subject.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import chinese_calendar
import pytest

from helpers import DEMO_CITY, person_id, run_cli

DAY0 = dt.date(2026, 3, 2)
SCHEME = DEMO_CITY.replace(
    "  - {code: CHARITY.BLOOD,",
    "  - {code: MARKET.FAKE, title: Counterfeit goods, points: -30, validity: P3Y, severity: general,\n"
    "     data_class: public, legal_basis: 'Product Quality Law art. 50'}\n"
    "  - {code: CHARITY.BLOOD,",
)
SUBJECTS = {
    name: person_id(n)
    for n, name in enumerate(
        ("notice", "upheld", "revoked", "corrected", "holiday", "consent", "decline", "repair", "officer"), start=1
    )
}


def day(n: int) -> str:
    return (DAY0 + dt.timedelta(days=n)).isoformat()


def noon(n: int | str) -> str:
    return f"{day(n) if isinstance(n, int) else n}T12:00:00+08:00"


@dataclass
class Cli:
    folder: Path
    db: str

    def run(self, *args: str, now: str) -> tuple[int, str, str]:
        actor = "office:wang" if "decide" in args or "--on-behalf" in args else "subject"
        return run_cli(self.db, *args, now=now, env={"XINYONG_ACTOR": actor}, cwd=self.folder)

    def ok(self, *args: str, now: str) -> Any:
        code, out, err = self.run(*args, "--json", now=now)
        assert code == 0, err
        return json.loads(out)

    def score(self, subject: str, on: int, now: str | None = None) -> int | None:
        """The score on day `on`, as known at `now` (default: the end of that same day)."""
        result = self.ok("score", subject, "--scheme", "demo-city", "--as-of", day(on), now=now or f"{day(on)}T23:00")
        return result["score"]  # type: ignore[no-any-return]

    def flights(self, subject: str, on: int, now: str | None = None) -> bool:
        result = self.ok("check", subject, "demo-city/no-flights", "--as-of", day(on), now=now or f"{day(on)}T23:00")
        return result["applies"]  # type: ignore[no-any-return]


@pytest.fixture(scope="module")
def city(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cli]:
    folder = tmp_path_factory.mktemp("due")
    c = Cli(folder, f"sqlite:///{folder / 'due.db'}")
    setup = noon("2026-01-05")
    assert c.run("init", now=setup)[0] == 0
    (folder / "scheme.yaml").write_text(SCHEME, encoding="utf-8")
    c.ok("scheme", "load", "scheme.yaml", now=setup)
    c.ok("sources", "add", "court", "--behaviours", "COURT.DEFAULT", now=setup)
    c.ok("sources", "add", "market", "--behaviours", "MARKET.FAKE", now=setup)
    c.ok("sources", "add", "civil-affairs", "--behaviours", "CHARITY.BLOOD", now=setup)
    (folder / "subjects.csv").write_text(
        "subject_id,kind,name\n" + "".join(f"{s},person,{n}\n" for n, s in SUBJECTS.items()), encoding="utf-8"
    )
    c.ok("subjects", "import", "subjects.csv", now=setup)
    for name, subject in SUBJECTS.items():
        if name != "consent":
            c.ok("consent", "grant", subject, "--scheme", "demo-city", now=setup)
    (folder / "court.csv").write_text(
        "subject_id,behaviour,occurred_on,document_ref\n"
        + "".join(f"{s},COURT.DEFAULT,{day(-1)},C-{n}\n" for n, s in SUBJECTS.items()),
        encoding="utf-8",
    )
    assert c.ok("records", "import", "court.csv", "--source", "court", now=noon(0))["imported"] == len(SUBJECTS)
    return c


def ref(name: str) -> str:
    return f"court:C-{name}"


def test_day_9_no_effect_day_10_full_effect_and_the_subject_was_told(city: Cli) -> None:
    subject = SUBJECTS["notice"]
    assert city.score(subject, 9) == 1000
    assert city.flights(subject, 9) is False
    assert city.score(subject, 10) == 900
    assert city.flights(subject, 10) is True
    assert city.ok("score", subject, "--scheme", "demo-city", "--as-of", day(10), now=noon(10))["lists"] == [
        "defaulters"
    ]
    inbox = city.ok("notices", "list", subject, "--language", "en", now=noon(1))["notices"]
    [notice] = inbox
    assert notice["kind"] == "recorded"
    assert notice["takes_effect_on"] == day(10)
    assert notice["object_by"] == day(9)
    assert "It takes effect on 12 March 2026" in notice["text"]
    assert "Legal basis: SPC provisions 2017 art. 1" in notice["text"]
    assert notice["facts"]["record"]["source"] == "court"


def test_objection_on_day_3_holds_until_upheld_on_day_20_then_effective_from_day_20(city: Cli) -> None:
    subject = SUBJECTS["upheld"]
    filed = city.ok("objections", "file", ref("upheld"), "--reason", "paid before the judgment", now=noon(3))
    assert filed["deadline"] == "2026-03-12"  # 5 working days after Thursday 5 March
    shown = city.ok("records", "show", ref("upheld"), now=noon(4))
    assert shown["status"] == "disputed"
    for on in (10, 15, 19):  # held: undecided (the deadline passed on day 10; it shows as overdue)
        assert city.score(subject, on) == 1000
        assert city.flights(subject, on) is False
    overdue = city.ok("objections", "overdue", now=noon(11))["overdue"]
    assert filed["id"] in [o["id"] for o in overdue]
    decided = city.ok(
        "objections", "decide", str(filed["id"]), "--outcome", "upheld", "--reason", "no payment on file", now=noon(20)
    )
    assert (decided["outcome"], decided["decided_by"]) == ("upheld", "office:wang")
    assert city.score(subject, 19, now=noon(30)) == 1000
    assert city.score(subject, 20) == 900
    assert city.flights(subject, 20) is True
    assert city.score(subject, 25, now=noon(19)) == 1000  # as known before the decision: still held
    kinds = [n["kind"] for n in city.ok("notices", "list", subject, now=noon(21))["notices"]]
    assert kinds == ["decided", "disputed", "recorded"]  # the subject is notified of the decision


def test_revoked_never_had_an_effect(city: Cli) -> None:
    subject = SUBJECTS["revoked"]
    filed = city.ok("objections", "file", ref("revoked"), "--reason", "wrong person", now=noon(3))
    city.ok("objections", "decide", str(filed["id"]), "--outcome", "revoked", "--reason", "wrong id", now=noon(20))
    for on in (9, 10, 20, 100, 700):
        assert city.score(subject, on, now=noon(800)) == 1000
        assert city.flights(subject, on, now=noon(800)) is False
    assert city.ok("records", "show", ref("revoked"), now=noon(21))["status"] == "revoked"


def test_corrected_is_recomputed_as_the_corrected_record(city: Cli) -> None:
    subject = SUBJECTS["corrected"]
    filed = city.ok("objections", "file", ref("corrected"), "--reason", "it was a traffic matter", now=noon(3))
    # The court may not submit TRAFFIC.MINOR, so a decision correcting the behaviour to it is refused.
    refused = city.run(
        "objections",
        "decide",
        str(filed["id"]),
        "--outcome",
        "corrected",
        "--reason",
        "r",
        "--behaviour",
        "TRAFFIC.MINOR",
        now=noon(20),
    )
    assert refused[0] == 2
    assert "not authorised" in refused[2]
    city.ok(
        "objections",
        "decide",
        str(filed["id"]),
        "--outcome",
        "corrected",
        "--reason",
        "the judgment was served in 2024",
        "--occurred-on",
        "2024-06-01",
        now=noon(20),
    )
    # Recomputed as the corrected record: occurred 2024-06-01, valid P2Y, so it counts from the
    # decision (day 20) until 2026-06-01 instead of until 2028-03-01.
    assert city.score(subject, 19, now=noon(30)) == 1000
    assert city.score(subject, 20) == 900
    assert city.ok("score", subject, "--scheme", "demo-city", "--as-of", "2026-05-31", now=noon(30))["score"] == 900
    assert city.ok("score", subject, "--scheme", "demo-city", "--as-of", "2026-06-01", now=noon(30))["score"] == 1000
    # As known before the objection, the original record would have counted on 2026-06-01.
    assert city.ok("score", subject, "--scheme", "demo-city", "--as-of", "2026-06-01", now=noon(2))["score"] == 900
    text = city.ok("notices", "list", subject, "--language", "en", now=noon(21))["notices"][0]["text"]
    assert "Corrected to: occurred on 1 June 2024." in text


@pytest.mark.parametrize("year", [2025, 2026])
def test_an_objection_filed_on_the_last_working_day_before_national_day_is_due_after_the_holiday(
    city: Cli, year: int
) -> None:
    national_day = dt.date(year, 10, 1)
    assert chinese_calendar.get_holiday_detail(national_day)[0]
    last = national_day - dt.timedelta(days=1)
    while not chinese_calendar.is_workday(last):
        last -= dt.timedelta(days=1)
    holiday_end = national_day
    while chinese_calendar.is_holiday(holiday_end + dt.timedelta(days=1)):
        holiday_end += dt.timedelta(days=1)
    expected, counted = last, 0
    while counted < 5:  # the day of filing is not counted
        expected += dt.timedelta(days=1)
        counted += chinese_calendar.is_workday(expected)
    assert expected > holiday_end

    subject = SUBJECTS["holiday"]
    document = f"NDAY-{year}"
    (city.folder / f"{document}.csv").write_text(
        f"subject_id,behaviour,occurred_on,document_ref\n{subject},COURT.DEFAULT,{last - dt.timedelta(days=3)},"
        f"{document}\n",
        encoding="utf-8",
    )
    city.ok("records", "import", f"{document}.csv", "--source", "court", now=noon(str(last - dt.timedelta(days=2))))
    filed = city.ok("objections", "file", f"court:{document}", "--reason", "paid", now=noon(last.isoformat()))
    assert filed["deadline"] == expected.isoformat()
    on_time = city.ok("objections", "overdue", now=noon(expected.isoformat()))["overdue"]
    assert filed["id"] not in [o["id"] for o in on_time]
    late = city.ok("objections", "overdue", now=noon((expected + dt.timedelta(days=1)).isoformat()))["overdue"]
    assert filed["id"] in [o["id"] for o in late]


def test_an_officer_files_on_the_subjects_behalf_and_is_recorded(city: Cli) -> None:
    filed = city.ok("objections", "file", ref("officer"), "--reason", "letter of 3 March", "--on-behalf", now=noon(3))
    assert (filed["filed_by"], filed["filed_as"]) == ("office:wang", "officer")
    listed = city.ok("objections", "list", "--subject", SUBJECTS["officer"], now=noon(4))["objections"]
    assert listed[0]["filed_as"] == "officer"


def test_consent_grant_and_withdraw(city: Cli) -> None:
    subject = SUBJECTS["consent"]
    assert city.score(subject, 30) is None  # no consent on record: the scheme does not score them
    city.ok("consent", "grant", subject, "--scheme", "demo-city", now=noon(31))
    assert city.score(subject, 31) == 900
    city.ok("consent", "withdraw", subject, "--scheme", "demo-city", now=noon(40))
    assert city.score(subject, 40) is None
    assert city.score(subject, 35, now=noon(41)) == 900  # the past as it was


def test_a_declined_positive_record_has_no_effect(city: Cli) -> None:
    subject = SUBJECTS["decline"]
    (city.folder / "blood.csv").write_text(
        f"subject_id,behaviour,occurred_on,document_ref\n{subject},CHARITY.BLOOD,{day(-1)},B-1\n", encoding="utf-8"
    )
    city.ok("records", "import", "blood.csv", "--source", "civil-affairs", now=noon(0))
    assert city.score(subject, 10) == 905
    city.ok("records", "decline", "civil-affairs:B-1", now=noon(12))
    assert city.score(subject, 12) == 900
    assert city.run("records", "decline", ref("decline"), now=noon(12))[0] == 2  # not a positive record


def test_repair_is_refused_before_its_day_and_approved_after(city: Cli) -> None:
    subject = SUBJECTS["repair"]
    (city.folder / "market.csv").write_text(
        f"subject_id,behaviour,occurred_on,document_ref\n{subject},MARKET.FAKE,{day(-1)},M-1\n", encoding="utf-8"
    )
    city.ok("records", "import", "market.csv", "--source", "market", now=noon(0))
    code, _, err = city.run("repairs", "apply", "market:M-1", "--evidence", "recalled the goods", now=noon(30))
    assert code == 2
    assert "possible from 2026-06-01" in err  # general severity: P3M after 1 March
    applied = city.ok("repairs", "apply", "market:M-1", "--evidence", "recalled the goods", now=noon("2026-06-01"))
    assert city.score(subject, 95) == 1000 - 100 - 30
    decided = city.ok(
        "repairs",
        "decide",
        str(applied["id"]),
        "--outcome",
        "approved",
        "--reason",
        "recall verified",
        now=noon("2026-06-03"),
    )
    assert decided["ended_on"] == "2026-06-03"
    assert (
        city.ok("score", subject, "--scheme", "demo-city", "--as-of", "2026-06-03", now=noon("2026-06-03"))["score"]
        == 900
    )
    shown = city.ok("records", "show", "market:M-1", now=noon("2026-06-04"))
    assert shown["ended_on"] == "2026-06-03"
    assert [r["outcome"] for r in city.ok("repairs", "list", "--subject", subject, now=noon(100))["repairs"]] == [
        "approved"
    ]
    code, out, _ = city.run("report", subject, now=noon("2026-06-04"))
    assert code == 0
    assert [r["outcome"] for r in json.loads(out)["repairs"]] == ["approved"]
