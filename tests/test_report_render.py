"""The credit report as JSON, HTML and PDF: what it holds, for whom, and that the PDF renders and
carries the explanation lines, whose points sum to score − initial.

The PDF tests need poppler (pdftoppm, pdftotext) and a CJK font; `bash run.sh test` installs them
with apt when they are missing. Without them the tests are skipped locally and fail on CI.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

import helpers
from helpers import DEMO_CITY, World, at, d, org_id, person_id
from xinyong.due_process import objections, repairs
from xinyong.presentation import outputs, rendering, reports
from xinyong.storage.store import Store

SCHEME = DEMO_CITY.replace(
    "  - {code: CHARITY.BLOOD,",
    "  - {code: MARKET.FAKE, title: Counterfeit goods, title_zh: 销售假冒伪劣商品, points: -30, validity: P3Y,\n"
    "     severity: general, data_class: public, legal_basis: 'Product Quality Law art. 50'}\n"
    "  - {code: MARKET.FRAUD, title: Contract fraud, title_zh: 合同诈骗, points: -80, validity: P3Y,\n"
    "     severity: serious, data_class: market, legal_basis: 'Criminal Law art. 224'}\n"
    "  - {code: TAX.LATE, title: Late tax filing, title_zh: 逾期申报纳税, points: -10, validity: P1Y,\n"
    "     severity: minor, data_class: market, legal_basis: 'Tax Collection Law art. 62'}\n"
    "  - {code: CHARITY.BLOOD,",
).replace(
    "title: Demo City citizen credit scheme", "title: Demo City citizen credit scheme\ntitle_zh: 示范城市公民信用方案"
)

AS_OF = "2026-06-01"


def need(tool: str) -> str:
    found = shutil.which(tool)
    if found is None:
        if os.environ.get("CI"):
            pytest.fail(f"{tool} is missing: `bash run.sh test` installs poppler-utils")
        pytest.skip(f"{tool} is missing (bash run.sh test installs poppler-utils)")
    return found


@pytest.fixture
def city(sqlite_store: Store) -> tuple[World, str, str]:
    world = World(sqlite_store)
    world.load(SCHEME)
    world.source("court", ["COURT.DEFAULT"])
    world.source("transport", ["TRAFFIC.MINOR"])
    world.source("market", ["MARKET.FAKE", "MARKET.FRAUD", "TAX.LATE"])
    world.source("civil-affairs", ["CHARITY.BLOOD"])
    person, org = person_id(1), org_id(1)
    world.subjects([(person, "person", "张三"), (org, "organisation", "<script>alert(1)</script>测试有限公司")])
    world.consent(person, True, "2020-01-02")
    recorded = at("2026-03-02")
    court = world.record(person, "COURT.DEFAULT", "2026-03-01", recorded, source="court")
    world.record(person, "TRAFFIC.MINOR", "2026-02-01", recorded, source="transport")
    world.record(person, "MARKET.FAKE", "2026-02-01", recorded, source="market")
    fraud = world.record(person, "MARKET.FRAUD", "2026-02-01", recorded, source="market")
    world.record(person, "TAX.LATE", "2026-02-01", recorded, source="market")
    for n in range(5):  # +25, capped at +20: a cap line in the explanation
        world.record(person, "CHARITY.BLOOD", f"2026-02-0{n + 1}", recorded, source="civil-affairs")
    objection = world.object(fraud, at("2026-03-04"))
    world.decide(objection, "upheld", at("2026-03-10"))
    with world.store.write() as conn:
        applied = repairs.apply(conn, court, evidence="paid", now=at("2026-03-20"), actor=person)
        repairs.decide(conn, applied.id, outcome="refused", reason="not paid", now=at("2026-03-21"), actor="office")
    world.record(org, "MARKET.FAKE", "2026-02-01", recorded, source="market")
    world.record(org, "MARKET.FRAUD", "2026-02-01", recorded, source="market")
    return world, person, org


def build(world: World, subject: str, audience: reports.Audience = "subject") -> dict[str, Any]:
    with world.store.read() as conn:
        data = reports.build_report(conn, subject, as_of=d(AS_OF), known_at=at(AS_OF), audience=audience)
    result = outputs.plain(data)
    assert isinstance(result, dict)
    return result


def test_the_report_holds_everything_the_issue_asks_for(city: tuple[World, str, str]) -> None:
    world, person, _ = city
    report = build(world, person)
    [scheme] = report["schemes"]
    assert scheme["score"] == 1000 - 100 - 5 - 30 - 80 - 10 + 20
    lines = scheme["contributions"]
    assert sum(line["points"] for line in lines) == scheme["score"] - scheme["initial"]
    assert [f["behaviour"] for f in scheme["key_factors"]] == [
        "COURT.DEFAULT",
        "MARKET.FRAUD",
        "MARKET.FAKE",
        "TAX.LATE",
    ]  # four, the most lowering first; TRAFFIC.MINOR (-5) is the fifth
    restore = scheme["restore"]
    assert restore["grade"] == "B"
    assert restore["points_needed"] == 850 - scheme["score"]
    assert restore["by_expiry_on"] is not None
    assert {r["behaviour"] for r in restore["repairable"]} >= {"COURT.DEFAULT", "MARKET.FRAUD"}
    assert [x["id"] for x in scheme["list_details"]] == ["defaulters"]
    [measure] = scheme["measure_details"]
    assert (measure["id"], measure["lists"]) == ("no-flights", ["defaulters"])
    assert measure["legal_basis"]
    for record in report["records"]:
        for key in ("source", "legal_basis", "data_class", "windows", "status", "expires_on", "disputed"):
            assert key in record, key
    fraud = next(r for r in report["records"] if r["behaviour"] == "MARKET.FRAUD")
    assert fraud["repair_possible_from"] == "2027-02-01"  # serious: P1Y after it occurred
    assert [(o["outcome"], o["decision_reason"]) for o in report["objections"]] == [("upheld", "checked")]
    assert [(r["outcome"], r["decision_reason"]) for r in report["repairs"]] == [("refused", "not paid")]
    assert "objection" in report["how_to_contest"]


def test_the_public_report_of_an_organisation_shows_public_information_only(city: tuple[World, str, str]) -> None:
    world, _, org = city
    report = build(world, org, "public")
    assert [r["behaviour"] for r in report["records"]] == ["MARKET.FAKE"]  # MARKET.FRAUD is market-class
    assert "objections" not in report
    assert "repairs" not in report
    assert all("contributions" not in s and "score" not in s for s in report["schemes"])
    page = rendering.html(report, "en")
    assert "Counterfeit goods" in page
    assert "Contract fraud" not in page
    assert "How to object" in page
    assert "public information" in page


def test_html_is_escaped_and_in_both_languages(city: tuple[World, str, str]) -> None:
    world, person, org = city
    page = rendering.html(build(world, org, "public"), "zh_Hans")
    assert "<script>alert(1)</script>" not in page
    assert "&lt;script&gt;" in page
    english = rendering.html(build(world, person), "en")
    chinese = rendering.html(build(world, person), "zh_Hans")
    for text in (
        "Credit report",
        "Why: the explanation",
        "Key factors lowering the score",
        "What would restore grade B",
    ):
        assert text in english
    for text in (
        "信用报告",
        "原因：评分明细",
        "降低评分的主要因素",
        "如何恢复至 B 级",
        "示范城市公民信用方案",
        "合同诈骗",
    ):
        assert text in chinese
    assert "How to object" in english
    assert "如何提出异议" in chinese


EXPLANATION = {"en": ("Why: the explanation", "Score"), "zh_Hans": ("原因：评分明细", "评分")}
SIGNED = re.compile(r"(?<![\d-])([+-]\d+)(?![\d-])")


def explanation_points(text: str, lang: str) -> tuple[list[int], int]:
    """The points of the explanation lines as pdftotext -layout shows them, and the total row."""
    start, total = EXPLANATION[lang]
    lines = text[text.index(start) :].splitlines()
    points: list[int] = []
    for line in lines[1:]:
        cells = line.split()
        if cells and cells[0] == total:
            return points, int(cells[-1])
        found = SIGNED.findall(line)
        if found:
            points.append(int(found[0]))
    raise AssertionError("no total row after the explanation")


@pytest.mark.parametrize("lang", ["zh_Hans", "en"])
def test_the_pdf_renders_and_its_explanation_sums_to_score_minus_initial(
    city: tuple[World, str, str], tmp_path: Path, lang: str
) -> None:
    pdftoppm, pdftotext = need("pdftoppm"), need("pdftotext")
    world, person, _ = city
    report = build(world, person)
    pdf = tmp_path / "report.pdf"
    pdf.write_bytes(rendering.pdf(report, lang))
    assert pdf.read_bytes().startswith(b"%PDF-")
    subprocess.run([pdftoppm, "-png", "-r", "40", str(pdf), str(tmp_path / "page")], check=True)
    pages = sorted(tmp_path.glob("page-*.png"))
    assert pages
    assert all(p.stat().st_size > 1000 for p in pages)
    text = subprocess.run([pdftotext, "-layout", str(pdf), "-"], check=True, capture_output=True, text=True).stdout
    [scheme] = report["schemes"]
    points, total = explanation_points(text, lang)
    assert points == [line["points"] for line in scheme["contributions"]]
    assert sum(points) == scheme["score"] - scheme["initial"]
    assert total == scheme["score"]
    if lang == "zh_Hans":
        assert "示范城市公民信用方案" in text
        assert "如何提出异议" in text
        fonts = subprocess.run([need("pdffonts"), str(pdf)], check=True, capture_output=True, text=True).stdout
        assert re.search(r"CJK|WenQuanYi|Han Sans|Noto Sans SC", fonts), fonts
    else:
        assert "How to object" in text


def run_cli(store: Store, *args: str) -> tuple[int, str, str]:
    return helpers.run_cli(store.url, *args, now=f"{AS_OF}T12:00:00+08:00")


def test_the_command_line_writes_json_html_and_pdf(city: tuple[World, str, str], tmp_path: Path) -> None:
    world, person, org = city
    code, out, _ = run_cli(world.store, "report", person)
    assert code == 0
    assert json.loads(out)["schemes"][0]["key_factors"]
    code, out, _ = run_cli(world.store, "report", person, "--format", "html", "--language", "en")
    assert code == 0
    assert out.startswith("<!DOCTYPE html>")
    assert "Credit report" in out
    target = tmp_path / "r.pdf"
    code, _, err = run_cli(world.store, "report", org, "--public", "--format", "pdf", "--out", str(target))
    assert code == 0, err
    assert target.read_bytes().startswith(b"%PDF-")
    assert run_cli(world.store, "report", person, "--format", "pdf")[0] == 2  # a PDF needs --out
    assert run_cli(world.store, "report", person, "--format", "docx")[0] == 2
    assert run_cli(world.store, "report", person, "--format", "html", "--language", "fr")[0] == 2


def test_objections_show_overdue_in_the_report(city: tuple[World, str, str]) -> None:
    world, person, _ = city
    traffic = next(r["id"] for r in build(world, person)["records"] if r["behaviour"] == "TRAFFIC.MINOR")
    with world.store.write() as conn:
        filed = objections.file(conn, traffic, reason="not me", now=at("2026-05-20"), actor=person)
    report = build(world, person)
    [open_one] = [o for o in report["objections"] if o["id"] == filed.id]
    assert open_one["overdue"] is True  # due 5 working days after 05-20, before 06-01
    assert "overdue" in rendering.html(report, "en")
