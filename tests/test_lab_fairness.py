"""`fairness`: rates per group against the most favoured group, the four-fifths flag, too-few groups.

The hand-worked city has four age bands of persons, every one with a record or not of a court
default (a black list, so the favourable side is *not* being on it):

| band  | persons | on the list | favourable share | ratio to 35–44      |
| ----- | ------- | ----------- | ---------------- | ------------------- |
| 25–34 | 40      | 10          | 30/40 = 0.75     | 0.75/0.95 = 0.7895 → flagged |
| 35–44 | 40      | 2           | 38/40 = 0.95     | 1 (the most favoured)       |
| 45–54 | 29      | 20          | 9/29             | 0.3267, too few: not flagged |
| 55–64 | 29      | 0           | 1                | 1.0526, too few: not the most favoured |
"""

from __future__ import annotations

from typing import Any

import pytest

from helpers import DEMO_CITY, World, at, d, person_id
from xinyong.rules.clock import FixedClock
from xinyong.security.access import Principal, Role
from xinyong.service import Service

NO_CONSENT = DEMO_CITY.replace("consent: required\n", "")
DAY, KNOWN = d("2026-06-01"), at("2026-06-01")
ADMIN = Principal(Role.ADMIN, "tester", channel="test")
ANALYST = Principal(Role.ANALYST, "analyst", channel="test")
BANDS = {
    "25–34": ("19950301", 40, 10),
    "35–44": ("19850301", 40, 2),
    "45–54": ("19750301", 29, 20),
    "55–64": ("19650301", 29, 0),
}


@pytest.fixture
def banded(world: World) -> World:
    world.load(NO_CONSENT)
    world.source("court", ["COURT.DEFAULT"])
    rows, listed = [], []
    for birth, size, on in BANDS.values():
        people = [person_id(n, birth) for n in range(size)]
        rows += [(p, "person", "测试") for p in people]
        listed += people[:on]
    world.subjects(rows)
    body = "subject_id,behaviour,occurred_on,document_ref\n" + "".join(
        f"{p},COURT.DEFAULT,2026-03-01,F-{i}\n" for i, p in enumerate(listed)
    )
    with world.store.write() as conn:
        from xinyong.due_process.after_append import AFTER_APPEND
        from xinyong.ledger import imports

        imports.import_records(
            conn, "f.csv", body.encode(), source="court", now=at("2026-03-01"), actor="t", after=AFTER_APPEND
        )
    return world


def audit(world: World, principal: Principal = ADMIN, by: str = "age_band") -> dict[str, Any]:
    service = Service(world.store, FixedClock(KNOWN))
    return service.lab.fairness(principal, "demo-city", by=by, as_of=DAY, known_at=KNOWN)


def test_flags_a_group_under_four_fifths_of_the_best_and_not_a_group_of_29(banded: World) -> None:
    report = audit(banded)
    found = report["groups"]
    assert set(found) == set(BANDS)
    assert {band: g["n"] for band, g in found.items()} == {band: size for band, (_, size, _) in BANDS.items()}
    assert {band: g["too_few"] for band, g in found.items()} == {
        "25–34": False,
        "35–44": False,
        "45–54": True,
        "55–64": True,
    }
    listed = {band: g["lists"]["defaulters"] for band, g in found.items()}
    assert [listed[b]["rate"] for b in BANDS] == [0.25, 0.05, round(20 / 29, 4), 0.0]
    assert listed["35–44"]["ratio"] == 1.0  # the most favoured, though 55–64 has nobody listed
    assert listed["25–34"]["ratio"] == round(0.75 / 0.95, 4)
    assert listed["45–54"]["ratio"] == round((9 / 29) / 0.95, 4)
    assert listed["55–64"]["ratio"] == round(1 / 0.95, 4)
    assert {b: e["flag"] for b, e in listed.items()} == {"25–34": True, "35–44": False, "45–54": False, "55–64": False}
    # The measure on the list follows it; the red list nobody is on gives no ratio to anyone.
    assert found["25–34"]["measures"]["no-flights"]["flag"] is True
    assert found["25–34"]["lists"]["model"] == {"rate": 0.0, "ratio": None, "ci": None, "flag": False}
    # Scores: 1000 off the list, 900 on it; grades A and B.
    assert found["25–34"]["mean_score"] == 975.0
    assert found["25–34"]["grades"]["B"] == 0.25
    assert found["25–34"]["grades"]["A"] == 0.75


def test_the_interval_holds_the_ratio_and_the_report_is_reproducible(banded: World) -> None:
    first, second = audit(banded), audit(banded)
    assert first == second
    assert (first["resamples"], first["flag_below"], first["too_few_below"]) == (1000, 0.8, 30)
    for group in first["groups"].values():
        entry = group["lists"]["defaulters"]
        low, high = entry["ci"]
        assert low <= entry["ratio"] <= high
    assert first["groups"]["35–44"]["lists"]["defaulters"]["ci"] == [1.0, 1.0]
    low, high = first["groups"]["25–34"]["lists"]["defaulters"]["ci"]
    assert 0.5 < low < 0.79 < high < 1.0


def test_an_analyst_sees_no_cell_under_the_minimum(banded: World) -> None:
    shown = audit(banded, ANALYST)
    assert shown["min_cell"] == 10
    found = shown["groups"]
    assert found["25–34"]["lists"]["defaulters"]["rate"] == 0.25  # 10 on it and 30 off it: both cells shown
    assert found["35–44"]["lists"]["defaulters"]["rate"] is None  # 2 on it
    assert found["35–44"]["lists"]["defaulters"]["ratio"] is None
    assert found["55–64"]["grades"]["B"] is None
    assert found["25–34"]["n"] == 40


def test_groups_by_sex_and_kind(banded: World) -> None:
    by_sex = audit(banded, by="sex")["groups"]
    assert sum(g["n"] for g in by_sex.values()) == 138
    assert set(by_sex) == {"male", "female"}
    assert set(audit(banded, by="kind")["groups"]) == {"person"}
