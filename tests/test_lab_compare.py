"""`compare`: two schemes rule by rule and population by population, on a small city worked by hand.

demo-city (A; consent not required here) and other-city (B: persons only, a minor traffic violation
-20 for two years, a court default -50, no blood donation, grades GOOD ≥ 1000, FAIR ≥ 950, POOR; a
black list of subjects with two court defaults):

| subject | records             | under A        | under B    | on a list                        |
| ------- | ------------------- | -------------- | ---------- | -------------------------------- |
| P1      | none                | 1000 A         | 1000 GOOD  |                                  |
| P2      | one minor violation | 995 A          | 980 FAIR   |                                  |
| P3      | one court default   | 900 B          | 950 FAIR   | A's defaulters, no black list of B |
| P4      | one blood donation  | 1005 A         | 1000 GOOD  |                                  |
| O1      | one court default   | 900 B          | (no state) | not compared: B is for persons   |
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from helpers import DEMO_CITY, World, at, d, org_id, person_id
from xinyong.demo import city as demo
from xinyong.errors import BadInput
from xinyong.rules.clock import FixedClock
from xinyong.rules.schemes import load_scheme_file
from xinyong.security.access import Principal, Role
from xinyong.service import Service

A = DEMO_CITY.replace("consent: required\n", "")
B = """\
scheme: other-city
version: "2026.1"
title: Other City credit points
jurisdiction: "321300"
applies_to: [person]
initial: 1000
floor: 0
grades: [{grade: GOOD, min: 1000}, {grade: FAIR, min: 950}, {grade: POOR, min: 0}]
behaviours:
  - {code: TRAFFIC.MINOR, title: Minor traffic violation, points: -20, validity: P2Y,
     severity: minor, data_class: market, legal_basis: "Road Traffic Safety Law art. 90"}
  - {code: COURT.DEFAULT, title: Failure to perform an effective judgment, points: -50,
     validity: P2Y, severity: serious, data_class: public, legal_basis: "SPC provisions 2017 art. 1"}
lists:
  - {id: repeat-defaulters, kind: black, title: Repeat defaulters,
     rule: {count: {codes: [COURT.DEFAULT], at_least: 2, within: P2Y}}}
"""
DAY, KNOWN = d("2026-06-01"), at("2026-06-01")
ADMIN = Principal(Role.ADMIN, "tester", channel="test")
ANALYST = Principal(Role.ANALYST, "analyst", channel="test")
P = [person_id(n) for n in range(1, 5)]


@pytest.fixture
def two(world: World) -> World:
    world.load(A)
    world.load(B)
    world.source("court", ["COURT.DEFAULT"])
    world.source("transport", ["TRAFFIC.MINOR"])
    world.source("civil-affairs", ["CHARITY.BLOOD"])
    world.subjects([*((p, "person", "测试") for p in P), (org_id(1), "organisation", "测试有限公司")])
    world.record(P[1], "TRAFFIC.MINOR", "2026-03-01", at("2026-03-01"))
    world.record(P[2], "COURT.DEFAULT", "2026-03-01", at("2026-03-01"))
    world.record(P[3], "CHARITY.BLOOD", "2026-03-01", at("2026-03-01"))
    world.record(org_id(1), "COURT.DEFAULT", "2026-03-01", at("2026-03-01"))
    return world


def compare(world: World, principal: Principal = ADMIN, a: str = "demo-city", b: str = "other-city") -> dict[str, Any]:
    return Service(world.store, FixedClock(KNOWN)).lab.compare(principal, a, b, as_of=DAY, known_at=KNOWN)


def test_the_cross_tabulation_worked_by_hand(two: World) -> None:
    report = compare(two)
    assert (report["a"], report["b"]) == (
        {"scheme": "demo-city", "version": "2026.1"},
        {"scheme": "other-city", "version": "2026.1"},
    )
    assert report["subjects"] == 4
    assert report["grades"] == {"A→FAIR": 1, "A→GOOD": 2, "B→FAIR": 1}
    assert report["lists"]["a"] == {
        "defaulters": {"kind": "black", "subjects": 1, "not_under_other": 1},
        "repeat-traffic": {"kind": "watch", "subjects": 0, "not_under_other": 0},
        "model": {"kind": "red", "subjects": 0, "not_under_other": 0},
    }
    assert report["lists"]["b"] == {"repeat-defaulters": {"kind": "black", "subjects": 0, "not_under_other": 0}}


def test_rule_by_rule(two: World) -> None:
    rules = compare(two)["rules"]
    assert list(rules) == ["TRAFFIC.MINOR", "COURT.DEFAULT", "CHARITY.BLOOD"]
    minor = rules["TRAFFIC.MINOR"]
    assert minor["differs"] == ["points", "validity", "list_kinds"]
    assert (minor["a"]["points"], minor["b"]["points"], minor["a"]["validity"], minor["b"]["validity"]) == (
        -5,
        -20,
        "P1Y",
        "P2Y",
    )
    assert (minor["a"]["lists"], minor["b"]["lists"]) == (["repeat-traffic"], [])
    assert minor["a"]["notice"] == minor["b"]["notice"] == "P10D"
    # Both put a defaulter on a black list, though on different rules and lists.
    assert rules["COURT.DEFAULT"]["differs"] == ["points"]
    assert (rules["COURT.DEFAULT"]["a"]["lists"], rules["COURT.DEFAULT"]["b"]["list_kinds"]) == (
        ["defaulters"],
        ["black"],
    )
    assert (rules["CHARITY.BLOOD"]["only_in"], rules["CHARITY.BLOOD"]["b"], rules["CHARITY.BLOOD"]["differs"]) == (
        "a",
        None,
        [],
    )
    assert rules["TRAFFIC.MINOR"]["only_in"] is None


def test_an_analyst_sees_no_small_cell_and_bad_pairs_are_refused(two: World) -> None:
    shown = compare(two, ANALYST)
    assert (shown["subjects"], shown["grades"]["A→GOOD"], shown["min_cell"]) == (None, None, 10)
    assert shown["rules"]["TRAFFIC.MINOR"]["b"]["points"] == -20  # published rules are never withheld
    with pytest.raises(BadInput, match="two different schemes"):
        compare(two, a="demo-city", b="demo-city")
    with pytest.raises(BadInput, match="not loaded"):
        compare(two, b="nowhere")


def test_the_shipped_second_city_differs_from_city_points_for_the_same_conduct() -> None:
    folder = Path(demo.schemes_dir())
    suqian, city = load_scheme_file(folder / "suqian-points.yaml"), load_scheme_file(folder / "city-points.yaml")
    assert len(suqian.grades) == 8
    assert suqian.initial == 1000
    shared = set(suqian.behaviour_by_code) & set(city.behaviour_by_code)
    assert len(shared) >= 10
    differing = [c for c in shared if suqian.behaviour_by_code[c].points != city.behaviour_by_code[c].points]
    assert len(differing) == len(shared)
    text = (folder / "suqian-points.yaml").read_text(encoding="utf-8")
    assert "What is simplified" in text
    assert "monthly" in text


def test_the_command_and_the_route_answer_the_same(two: World) -> None:
    import json

    from fastapi.testclient import TestClient

    from helpers import run_cli
    from xinyong.interfaces.site import create_app

    code, out, err = run_cli(
        two.store.url, "compare", "demo-city", "other-city", "--json", now="2026-06-01T12:00:00+08:00"
    )
    assert code == 0, err
    assert json.loads(out)["grades"] == {"A→FAIR": 1, "A→GOOD": 2, "B→FAIR": 1}
    token, _info = Service(two.store, FixedClock(KNOWN)).credentials.create_token(ADMIN, Role.ANALYST)
    with TestClient(create_app(two.store, clock=FixedClock(KNOWN)), raise_server_exceptions=False) as client:
        answer = client.get(
            "/v1/lab/comparisons/demo-city/other-city?as_of=2026-06-01", headers={"Authorization": f"Bearer {token}"}
        )
        assert answer.status_code == 200, answer.text
        assert answer.json()["grades"] == {"A→FAIR": None, "A→GOOD": None, "B→FAIR": None}
        assert answer.json()["rules"]["COURT.DEFAULT"]["b"]["points"] == -50
        assert client.get("/v1/lab/comparisons/demo-city/other-city").status_code == 401
