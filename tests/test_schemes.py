"""Scheme files: the shipped schemes, DESIGN.md's example, and errors that say where they are."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from xinyong.errors import BadInput, Problem, Refused
from xinyong.rules.periods import Period
from xinyong.rules.schemes import Scheme, load_scheme_file, parse_scheme

ROOT = Path(__file__).resolve().parent.parent
SCHEMES = ROOT / "schemes"
CATALOGUE = ROOT / "docs" / "catalogue.md"

# Copied from DESIGN.md, "Stable interfaces".
DESIGN_EXAMPLE = """\
scheme: demo-city            # id, [a-z0-9-]
version: "2026.1"
title: Demo City citizen credit scheme
jurisdiction: "371082"       # administrative division code
applies_to: [person, organisation]
initial: 1000
floor: 0
default_notice: P10D
objection_deadline: 5          # working days
consent: required              # persons are scored only with consent
grades: [{grade: AAA, min: 1050}, {grade: AA, min: 1030}, {grade: A, min: 960},
         {grade: B, min: 850}, {grade: C, min: 600}, {grade: D, min: 0}]
behaviours:
  - {code: TRAFFIC.MINOR, title: Minor traffic violation, points: -5, validity: P1Y,
     severity: minor, data_class: market, legal_basis: "Road Traffic Safety Law art. 90"}
  - {code: COURT.DEFAULT, title: Failure to perform an effective judgment, points: -100,
     validity: P2Y, notice: P10D, severity: serious, repair_after: P0D, data_class: public,
     legal_basis: "SPC provisions 2017 art. 1"}
  - {code: CHARITY.BLOOD, title: Voluntary blood donation, points: 5, cap: 20, validity: P1Y,
     data_class: restricted, legal_basis: "Blood Donation Law art. 16"}
lists:
  - {id: defaulters, kind: black, title: Dishonest judgment defaulters, rule: {any_of: [COURT.DEFAULT]}}
measures:
  - {id: no-flights, kind: punishment, title: No air tickets, implemented_by: civil-aviation,
     applies_when: {on_list: defaulters}, legal_basis: "Joint punishment memorandum 2016 item 1"}
"""

# A small valid scheme in block style, so that each error case changes one line and knows where.
BASE = """\
scheme: demo
version: "1"
title: Demo
jurisdiction: "371082"
applies_to: [person]
grades:
  - {grade: A, min: 10}
  - {grade: B, min: 0}
behaviours:
  - code: TAX.LATE_FILING
    title: Late filing
    points: -5
    validity: P1Y
    legal_basis: "Tax Collection and Administration Law art. 62"
lists:
  - id: late
    kind: watch
    title: Late filers
    rule: {any_of: [TAX.LATE_FILING]}
measures:
  - id: letter
    kind: punishment
    title: Reminder letter
    implemented_by: tax
    applies_when: {on_list: late}
    legal_basis: "Tax Credit Management Measures ch. 5"
"""


def line_of(text: str, fragment: str) -> int:
    """The 1-based line of the only line containing `fragment`."""
    lines = [n for n, line in enumerate(text.splitlines(), 1) if fragment in line]
    assert len(lines) == 1, (fragment, lines)
    return lines[0]


def variant(old: str, new: str, text: str = BASE) -> str:
    assert text.count(old) == 1, old
    return text.replace(old, new)


def problems_of(text: str) -> tuple[Problem, ...]:
    with pytest.raises(BadInput) as caught:
        parse_scheme(text)
    assert caught.value.problems, caught.value.message
    return caught.value.problems


def only_problem(text: str) -> Problem:
    problems = problems_of(text)
    assert len(problems) == 1, problems
    return problems[0]


# --- the shipped schemes --------------------------------------------------------------------------


def catalogue() -> tuple[dict[str, set[str]], dict[str, list[str]]]:
    """(codes by source, code patterns by scheme) as docs/catalogue.md states them."""
    by_source: dict[str, set[str]] = {}
    by_scheme: dict[str, list[str]] = {}
    for line in CATALOGUE.read_text(encoding="utf-8").splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) != 3 and len(cells) != 2:
            continue
        codes = re.findall(r"[A-Z]+(?:\.[A-Z_*]+)", cells[-1])
        if len(cells) == 2 and codes:
            by_source[cells[0]] = set(codes)
        elif len(cells) == 3 and codes:
            by_scheme[cells[0].split()[0]] = codes
    return by_source, by_scheme


def all_catalogue_codes() -> set[str]:
    return set().union(*catalogue()[0].values())


def codes_for(scheme_id: str) -> set[str]:
    patterns = catalogue()[1][scheme_id]
    codes = all_catalogue_codes()
    found = set()
    for pattern in patterns:
        if pattern.endswith(".*"):
            found |= {c for c in codes if c.startswith(pattern[:-1])}
        else:
            found.add(pattern)
    return found


def shipped(scheme_id: str) -> Scheme:
    return load_scheme_file(SCHEMES / f"{scheme_id}.yaml")


def test_catalogue_is_read_as_written() -> None:
    by_source, by_scheme = catalogue()
    assert set(by_source) == {"court", "tax", "market", "transport", "environment", "civil-affairs"}
    assert len(all_catalogue_codes()) == 26
    assert set(by_scheme) == {"city-points", "court-defaulters", "tax-credit", "suqian-points"}


@pytest.mark.parametrize("scheme_id", ["city-points", "court-defaulters", "tax-credit", "suqian-points"])
def test_shipped_scheme_loads_with_exactly_its_catalogue_codes(scheme_id: str) -> None:
    scheme = shipped(scheme_id)
    assert scheme.scheme == scheme_id
    assert scheme.version == "2026.1"
    assert scheme.effective_from is None
    assert {b.code for b in scheme.behaviours} == codes_for(scheme_id)
    for behaviour in scheme.behaviours:
        assert behaviour.legal_basis.strip()
        assert behaviour.title_zh
    for measure in scheme.measures:
        assert measure.legal_basis.strip()


@pytest.mark.parametrize("scheme_id", ["city-points", "court-defaulters", "tax-credit", "suqian-points"])
def test_shipped_scheme_starts_with_a_comment_block(scheme_id: str) -> None:
    text = (SCHEMES / f"{scheme_id}.yaml").read_text(encoding="utf-8")
    head = text.splitlines()[:5]
    assert all(line.startswith("#") for line in head)
    assert "simplified" in text.split("\nscheme:")[0]


def test_every_catalogue_code_is_used_by_some_scheme() -> None:
    used = set()
    for scheme_id in ("city-points", "court-defaulters", "tax-credit"):
        used |= {b.code for b in shipped(scheme_id).behaviours}
    assert used == all_catalogue_codes()


def test_shared_codes_have_the_same_titles_where_the_fact_is_the_same() -> None:
    city, tax = shipped("city-points"), shipped("tax-credit")
    for code in ("TAX.ARREARS", "TAX.EVASION"):
        assert city.behaviour_by_code[code].title == tax.behaviour_by_code[code].title


def test_city_points() -> None:
    scheme = shipped("city-points")
    assert (scheme.initial, scheme.floor, scheme.consent) == (1000, 0, "required")
    assert scheme.jurisdiction == "371082"
    assert scheme.applies_to == ["person", "organisation"]
    assert [(g.grade, g.min) for g in scheme.grades] == [
        ("AAA", 1050),
        ("AA", 1030),
        ("A", 960),
        ("B", 850),
        ("C", 600),
        ("D", 0),
    ]
    assert scheme.default_notice == Period(days=10)
    assert scheme.objection_deadline == 5
    b = scheme.behaviour_by_code
    assert (b["TRAFFIC.MINOR"].points, b["TRAFFIC.MINOR"].severity) == (-5, "minor")
    assert b["TRAFFIC.DRUNK_DRIVING"].points == -50
    assert b["COURT.DEFAULT"].points == -100
    assert b["COURT.DEFAULT"].effective_repair_after == Period()
    assert b["TAX.EVASION"].points == -100
    assert b["CIVIL.BLOOD_DONATION"].data_class == "restricted"
    assert (b["CIVIL.BLOOD_DONATION"].points, b["CIVIL.BLOOD_DONATION"].cap) == (5, 20)
    assert (b["CIVIL.VOLUNTEER"].points, b["CIVIL.VOLUNTEER"].cap) == (5, 30)
    assert (b["CIVIL.CHARITY_DONATION"].points, b["CIVIL.CHARITY_DONATION"].cap) == (10, 30)
    assert (b["CIVIL.HONOUR"].points, b["CIVIL.HONOUR"].cap) == (30, 60)
    for code in ("COURT.DEFAULT", "TAX.EVASION", "MARKET.FOOD_SAFETY", "ENV.POLLUTION"):
        assert b[code].data_class == "public", code
    for behaviour in scheme.behaviours:
        assert behaviour.validity in {Period(years=1), Period(years=2), Period(years=3)}, behaviour.code
        assert behaviour.cap is not None or behaviour.negative, behaviour.code
    lists = scheme.list_by_id
    assert lists["model-citizens"].kind == "red"
    assert lists["model-citizens"].rule.grade_in == ["AAA"]
    black = lists["serious-dishonesty"]
    assert black.kind == "black"
    assert set(black.rule.any_of or []) == {x.code for x in scheme.behaviours if x.negative and x.severity == "serious"}
    count = lists["repeat-traffic"].rule.count
    assert count is not None
    assert (count.codes, count.at_least, count.within) == (["TRAFFIC.MINOR"], 3, Period(years=1))
    measures = scheme.measure_by_id
    assert measures["fast-track-approvals"].implemented_by == "city-services"
    assert measures["fast-track-approvals"].applies_when.grade_in == ["AAA", "AA"]
    assert measures["library-deposit-waiver"].applies_when.grade_in == ["AAA", "AA", "A"]
    assert measures["enhanced-inspection"].applies_when.on_list == "serious-dishonesty"
    assert measures["no-public-honours"].applies_when.grade_in == ["C", "D"]
    assert {m.kind for m in scheme.measures} == {"reward", "punishment"}


def test_court_defaulters() -> None:
    scheme = shipped("court-defaulters")
    assert (scheme.initial, scheme.grades) == (0, [])
    assert scheme.applies_to == ["person", "organisation"]
    assert scheme.consent == "not_required"
    for behaviour in scheme.behaviours:
        assert (behaviour.points, behaviour.polarity) == (0, "negative")
        assert behaviour.severity == "serious"
        assert behaviour.data_class == "public"
        assert behaviour.effective_repair_after == Period()
        assert behaviour.notice_in(scheme) == Period(days=10)
        assert "art. 1" in behaviour.legal_basis
        expected = Period(years=3 if behaviour.code == "COURT.OBSTRUCT_ENFORCEMENT" else 2)
        assert behaviour.validity == expected, behaviour.code
    (defaulters,) = scheme.lists
    assert (defaulters.id, defaulters.kind) == ("defaulters", "black")
    assert set(defaulters.rule.any_of or []) == codes_for("court-defaulters")
    implementers = {m.id: m.implemented_by for m in scheme.measures}
    assert implementers == {
        "no-flights": "civil-aviation",
        "no-high-speed-rail": "railway",
        "no-star-hotels": "culture-tourism",
        "no-procurement": "finance",
        "no-civil-service": "human-resources",
    }
    for measure in scheme.measures:
        assert measure.kind == "punishment"
        assert measure.applies_when.on_list == "defaulters"


def test_tax_credit() -> None:
    scheme = shipped("tax-credit")
    assert scheme.applies_to == ["organisation"]
    assert (scheme.initial, scheme.floor, scheme.ceiling) == (100, 0, 100)
    assert [(g.grade, g.min) for g in scheme.grades] == [
        ("A", 90),
        ("B", 70),
        ("M", 60),
        ("C", 40),
        ("D", 0),
    ]
    assert scheme.description
    assert "M" in scheme.description
    assert [scheme.grade_for(s) for s in (100, 90, 89, 70, 69, 60, 59, 40, 39, 0)] == list("AABBMMCCDD")
    b = scheme.behaviour_by_code
    assert (b["TAX.LATE_FILING"].points, b["TAX.LATE_FILING"].cap) == (-5, 15)
    assert b["TAX.LATE_FILING"].severity == "minor"
    assert b["TAX.LATE_PAYMENT"].points == -10
    assert b["TAX.ARREARS"].points == -30
    assert b["TAX.INVOICE_MISUSE"].points == -20
    assert b["TAX.REFUSED_INSPECTION"].points == -30
    for code in ("TAX.EVASION", "TAX.FALSE_INVOICE"):
        assert (b[code].points, b[code].severity, b[code].data_class) == (-100, "serious", "public")
    assert all(x.negative for x in scheme.behaviours)
    lists = scheme.list_by_id
    assert lists["major-violators"].kind == "black"
    assert lists["major-violators"].rule.any_of == ["TAX.EVASION", "TAX.FALSE_INVOICE"]
    assert (lists["a-grade"].kind, lists["a-grade"].rule.grade_in) == ("red", ["A"])
    count = lists["repeat-late"].rule.count
    assert count is not None
    assert lists["repeat-late"].kind == "watch"
    assert (set(count.codes), count.at_least, count.within) == (
        {"TAX.LATE_FILING", "TAX.LATE_PAYMENT"},
        3,
        Period(years=1),
    )
    measures = scheme.measure_by_id
    assert (measures["green-channel"].kind, measures["green-channel"].implemented_by) == (
        "reward",
        "tax",
    )
    assert measures["strict-invoicing"].applies_when.grade_in == ["D"]
    procurement = measures["no-procurement"]
    assert procurement.implemented_by == "finance"
    assert [r.on_list for r in procurement.applies_when.any or []] == [
        "major-violators",
        "court-defaulters/defaulters",
    ]
    assert scheme.cross_scheme_lists() == {("court-defaulters", "defaulters")}


def test_cross_scheme_lists_name_lists_that_exist() -> None:
    for scheme_id in ("city-points", "court-defaulters", "tax-credit"):
        for other, list_id in shipped(scheme_id).cross_scheme_lists():
            assert list_id in shipped(other).list_by_id


# --- DESIGN.md's minimal example ----------------------------------------------------------------


def test_design_example_loads_with_defaults() -> None:
    scheme = parse_scheme(DESIGN_EXAMPLE)
    assert scheme.scheme == "demo-city"
    assert scheme.version == "2026.1"
    assert scheme.jurisdiction == "371082"
    assert scheme.timezone == "Asia/Shanghai"
    assert scheme.grade_for(1000) == "A"
    assert scheme.grade_for(1049) == "AA"
    assert scheme.grade_for(599) == "D"
    minor, court, blood = scheme.behaviours
    assert minor.polarity == "negative"
    assert minor.notice is None
    assert minor.notice_in(scheme) == Period(days=10)  # the scheme's default_notice
    assert minor.effective_repair_after == Period()  # minor: P0D
    assert court.notice_in(scheme) == Period(days=10)
    assert court.effective_repair_after == Period()  # stated explicitly
    assert blood.polarity == "positive"
    assert blood.notice_in(scheme) == Period()  # positive behaviours need no notice
    assert blood.severity == "general"
    assert blood.effective_repair_after == Period(months=3)
    assert (blood.cap, blood.data_class) == (20, "restricted")
    assert scheme.list_by_id["defaulters"].rule.any_of == ["COURT.DEFAULT"]
    assert scheme.measure_by_id["no-flights"].applies_when.on_list == "defaulters"


def test_design_example_round_trips_through_its_canonical_form() -> None:
    scheme = parse_scheme(DESIGN_EXAMPLE)
    assert Scheme.model_validate_json(scheme.canonical_json()) == scheme
    assert parse_scheme(DESIGN_EXAMPLE).digest() == scheme.digest()
    changed = parse_scheme(DESIGN_EXAMPLE.replace("points: -5", "points: -6"))
    assert changed.digest() != scheme.digest()


@pytest.mark.parametrize(
    ("severity", "repair_after"),
    [("minor", Period()), ("general", Period(months=3)), ("serious", Period(years=1))],
)
def test_repair_after_defaults_by_severity(severity: str, repair_after: Period) -> None:
    text = variant("    validity: P1Y\n", f"    validity: P1Y\n    severity: {severity}\n")
    (behaviour,) = parse_scheme(text).behaviours
    assert behaviour.effective_repair_after == repair_after


def test_own_notice_wins_over_the_default() -> None:
    text = variant("    validity: P1Y\n", "    validity: P1Y\n    notice: P2W\n")
    scheme = parse_scheme(text)
    assert scheme.behaviours[0].notice_in(scheme) == Period(days=14)


def test_zero_points_need_a_polarity() -> None:
    problem = only_problem(variant("points: -5", "points: 0"))
    assert "polarity" in problem.why
    assert problem.line == line_of(BASE, "- code: TAX.LATE_FILING")
    ok = parse_scheme(variant("points: -5", "points: 0\n    polarity: negative"))
    assert ok.behaviours[0].negative


def test_polarity_contradicting_points_is_refused() -> None:
    problem = only_problem(variant("points: -5", "points: -5\n    polarity: positive"))
    assert "contradicts" in problem.why


# --- errors with field path and line ------------------------------------------------------------


def test_unknown_key_is_named_with_its_line() -> None:
    text = variant("    validity: P1Y\n", "    validity: P1Y\n    validty: P2Y\n")
    problem = only_problem(text)
    assert "behaviours[0].validty" in problem.where
    assert "TAX.LATE_FILING" in problem.where
    assert problem.line == line_of(text, "validty")
    assert f"line {problem.line}" in problem.where


def test_unknown_top_level_key() -> None:
    text = BASE + "inital: 9\n"
    problem = only_problem(text)
    assert problem.where.startswith("inital")
    assert problem.line == line_of(text, "inital")


def test_missing_validity() -> None:
    text = variant("    validity: P1Y\n", "")
    problem = only_problem(text)
    assert "behaviours[0].validity" in problem.where
    assert "required" in problem.why.lower()
    assert problem.line == line_of(text, "- code: TAX.LATE_FILING")


def test_missing_legal_basis_and_blank_legal_basis() -> None:
    problem = only_problem(variant('    legal_basis: "Tax Collection and Administration Law art. 62"\n', ""))
    assert "behaviours[0].legal_basis" in problem.where
    text = variant(
        '"Tax Collection and Administration Law art. 62"',
        '"   "',
    )
    problem = only_problem(text)
    assert "legal basis" in problem.why
    assert problem.line == line_of(text, 'legal_basis: "   "')


@pytest.mark.parametrize("bad", ["10 days", "P", "PT10H", "10D", "P-1D", "P1.5Y"])
def test_bad_duration(bad: str) -> None:
    text = variant("    validity: P1Y\n", f"    validity: P1Y\n    notice: {bad}\n")
    problem = only_problem(text)
    assert "behaviours[0].notice" in problem.where
    assert bad in problem.why
    assert "ISO 8601" in problem.why
    assert problem.line == line_of(text, "notice:")


def test_grades_not_in_descending_order() -> None:
    text = variant("{grade: A, min: 10}", "{grade: A, min: -1}")
    problem = only_problem(text)
    assert "highest first" in problem.why
    assert problem.line is not None


def test_equal_grade_minimums_are_refused() -> None:
    problem = only_problem(variant("{grade: A, min: 10}", "{grade: A, min: 0}"))
    assert "strictly decreasing" in problem.why


def test_list_rule_referring_to_an_unknown_code() -> None:
    problem = only_problem(variant("any_of: [TAX.LATE_FILING]", "any_of: [TAX.LATE_FILLING]"))
    assert problem.where.startswith("lists[0].rule.any_of (late)")
    assert "TAX.LATE_FILLING" in problem.why
    assert "catalogue" in problem.why
    assert problem.line is not None


def test_rule_referring_to_an_unknown_grade_or_list() -> None:
    problems = problems_of(
        variant(
            "applies_when: {on_list: late}",
            "applies_when: {all: [{on_list: lately}, {grade_in: [Z]}]}",
        )
    )
    text = " ".join(p.why for p in problems)
    assert "list lately is not one of this scheme's lists" in text
    assert "grade Z is not one of this scheme's grades" in text


def test_a_rule_with_two_keys() -> None:
    text = variant("rule: {any_of: [TAX.LATE_FILING]}", "rule: {any_of: [TAX.LATE_FILING], grade_in: [A]}")
    problem = only_problem(text)
    assert "lists[0].rule" in problem.where
    assert "(late)" in problem.where
    assert "exactly one" in problem.why
    assert "any_of, grade_in" in problem.why
    assert problem.line == line_of(text, "rule:")


def test_an_empty_rule() -> None:
    problem = only_problem(variant("rule: {any_of: [TAX.LATE_FILING]}", "rule: {}"))
    assert "found none" in problem.why


def test_a_measure_may_not_use_any_of() -> None:
    problem = only_problem(variant("applies_when: {on_list: late}", "applies_when: {any_of: [TAX.LATE_FILING]}"))
    assert problem.where.startswith("measures[0].applies_when.any_of (letter)")
    assert "any_of is not allowed here" in problem.why
    assert problem.line is not None


def test_a_list_may_not_use_on_list() -> None:
    problem = only_problem(variant("rule: {any_of: [TAX.LATE_FILING]}", "rule: {on_list: late}"))
    assert problem.where.startswith("lists[0].rule.on_list (late)")
    assert "on_list is not allowed here" in problem.why


def test_a_cross_scheme_list_is_accepted_and_reported() -> None:
    scheme = parse_scheme(
        variant("applies_when: {on_list: late}", "applies_when: {on_list: court-defaulters/defaulters}")
    )
    assert scheme.cross_scheme_lists() == {("court-defaulters", "defaulters")}


def test_duplicate_codes_are_refused() -> None:
    duplicate = """\
  - code: TAX.LATE_FILING
    title: Late filing again
    points: -1
    validity: P1Y
    legal_basis: "x"
lists:"""
    problem = only_problem(variant("lists:", duplicate))
    assert "TAX.LATE_FILING appears twice" in problem.why


def test_unquoted_version_is_read_as_text() -> None:
    scheme = parse_scheme(variant('version: "1"', "version: 2026.1"))
    assert scheme.version == "2026.1"
    assert parse_scheme(variant('version: "1"', "version: 7")).version == "7"


def test_unquoted_version_keeps_a_trailing_zero() -> None:
    assert parse_scheme(variant('version: "1"', "version: 2026.10")).version == "2026.10"


def test_unknown_capitalised_key_is_named() -> None:
    problem = only_problem(variant("    validity: P1Y\n", "    validity: P1Y\n    Notice: P2D\n"))
    assert "Notice" in problem.where


def test_cross_field_errors_point_at_the_field() -> None:
    text = variant("any_of: [TAX.LATE_FILING]", "any_of: [TAX.LATE_FILLING]")
    problem = only_problem(text)
    assert problem.where.startswith("lists[0]")
    assert problem.line == line_of(text, "TAX.LATE_FILLING")


def test_all_mistakes_are_reported_at_once() -> None:
    text = variant("    validity: P1Y\n", "    notice: soon\n")
    text = variant("kind: watch", "kind: grey", text)
    problems = problems_of(text)
    wheres = " ".join(p.where for p in problems)
    assert "behaviours[0].validity" in wheres
    assert "behaviours[0].notice" in wheres
    assert "lists[0].kind" in wheres
    assert all(p.line is not None for p in problems)


def test_invalid_yaml_gives_the_line() -> None:
    text = variant("    points: -5\n", "    points: [-5\n")
    with pytest.raises(BadInput) as caught:
        parse_scheme(text, where="demo.yaml")
    assert not isinstance(caught.value, Refused)
    assert "demo.yaml" in caught.value.message
    assert "YAML" in caught.value.message
    (problem,) = caught.value.problems
    assert problem.line is not None
    assert line_of(text, "points: [-5") <= problem.line <= line_of(text, "points: [-5") + 1
    assert f"line {problem.line}" in problem.where


def test_bad_indentation_gives_its_line() -> None:
    text = variant("    title: Late filing\n", "   title: Late filing\n")
    (problem,) = problems_of(text)
    assert problem.line == line_of(text, "title: Late filing")


@pytest.mark.parametrize("text", ["", "- a\n- b\n", "just text\n"])
def test_a_scheme_must_be_a_mapping(text: str) -> None:
    with pytest.raises(BadInput, match="mapping"):
        parse_scheme(text)


def test_unknown_time_zone() -> None:
    problem = only_problem(variant("title: Demo\n", "title: Demo\ntimezone: Mars/Olympus\n"))
    assert problem.where.startswith("timezone")
    assert "Mars/Olympus" in problem.why


def test_load_scheme_file_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "broken.yaml"
    path.write_text(variant("    validity: P1Y\n", ""), encoding="utf-8")
    with pytest.raises(BadInput) as caught:
        load_scheme_file(path)
    assert str(path) in caught.value.message
    with pytest.raises(BadInput, match="cannot read"):
        load_scheme_file(tmp_path / "missing.yaml")


def test_a_list_scheme_is_one_with_no_grades_and_only_zero_points() -> None:
    """DESIGN.md "List schemes"; grade_rank orders grades as the scheme does, no grade last."""
    from helpers import DEMO_CITY

    points = parse_scheme(DEMO_CITY)
    assert not points.is_list
    assert [points.grade_rank(g) for g in ("AAA", "A", "D", None)] == [0, 2, 5, 6]
    shipped = {p.stem: load_scheme_file(p) for p in SCHEMES.glob("*.yaml")}
    assert {k for k, v in shipped.items() if v.is_list} == {"court-defaulters"}
