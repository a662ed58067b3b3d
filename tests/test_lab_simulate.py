"""`simulate`: a draft scheme evaluated beside the version in force, on the batch engine.

A hand-worked city (five persons, one behaviour's points raised) moves exactly the subjects worked
out below across a grade line, by group; the null reform changes nothing; and on a replayed demo
city the draft's "after" equals, subject by subject, the batch state of the same store once the
draft is actually loaded in force on D (and DuckDB and Spark agree on it).
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from helpers import DEMO_CITY, World, at, d, person_id
from xinyong.demo import city as demo
from xinyong.derived import batch
from xinyong.derived.lab import impact, populations
from xinyong.due_process.after_append import AFTER_APPEND
from xinyong.errors import BadInput, XinyongError
from xinyong.ledger import registry
from xinyong.rules.clock import FixedClock
from xinyong.rules.schemes import parse_scheme
from xinyong.security.access import Forbidden, Principal, Role
from xinyong.service import Service
from xinyong.storage.store import Store

NO_CONSENT = DEMO_CITY.replace("consent: required\n", "")
# Blood donation from 5 points (cap 20) to 30 points (cap 40): a donor at 1,000 + 5 = 1005 (grade A,
# from 960) reaches 1030 (AA, from 1030); a donor with a default, 1000 - 100 + 5 = 905 (B), reaches
# 930, still B.
RAISED = NO_CONSENT.replace('"2026.1"', '"2026.2"').replace("points: 5, cap: 20", "points: 30, cap: 40")
DAY, KNOWN = d("2026-06-01"), at("2026-06-01")
ADMIN = Principal(Role.ADMIN, "tester", channel="test")
ANALYST = Principal(Role.ANALYST, "analyst", channel="test")
# person_id(n): the 17th digit is n's last, so 1, 3 and 5 are men, 2 and 4 women.
P = [person_id(n) for n in range(1, 6)]


@pytest.fixture
def hand(world: World) -> World:
    """Donors 1, 2, 3 and 5; person 5 also a defaulter; person 4 with no record."""
    world.load(NO_CONSENT)
    world.source("court", ["COURT.DEFAULT"])
    world.source("civil-affairs", ["CHARITY.BLOOD"])
    world.subjects([(p, "person", f"测试{i}") for i, p in enumerate(P)])
    for p in (P[0], P[1], P[2], P[4]):
        world.record(p, "CHARITY.BLOOD", "2026-03-01", at("2026-03-01"))
    world.record(P[4], "COURT.DEFAULT", "2026-03-01", at("2026-03-01"))
    return world


def simulate(store: Store, text: str, principal: Principal = ADMIN, **options: Any) -> dict[str, Any]:
    service = Service(store, FixedClock(KNOWN))
    return service.lab.simulate(principal, text, as_of=DAY, known_at=KNOWN, **options)


def test_raising_a_behaviour_s_points_moves_the_donors_across_a_grade_line_by_group(hand: World) -> None:
    report = simulate(hand.store, RAISED, by=["sex"])
    assert (report["baseline_version"], report["draft_version"], report["subjects"]) == ("2026.1", "2026.2", 5)
    assert report["changed"] == 4  # every donor's score; person 4 has no record
    assert report["grades"] == {"A→AA": 3}
    assert report["measures"]["fast-track"] == {"before": 0, "after": 3, "enter": 3, "leave": 0}
    assert report["measures"]["no-flights"] == {"before": 1, "after": 1, "enter": 0, "leave": 0}
    assert report["lists"]["defaulters"] == {"before": 1, "after": 1, "enter": 0, "leave": 0}
    # (1005 * 3 + 1000 + 905) / 5 = 984 before; (1030 * 3 + 1000 + 930) / 5 = 1004 after.
    assert report["score"] == {"mean_before": 984.0, "mean_after": 1004.0}
    groups = report["groups"]
    assert set(groups) == {"male", "female"}
    assert (groups["male"]["subjects"], groups["male"]["changed"], groups["male"]["grades"]) == (3, 3, {"A→AA": 2})
    assert (groups["female"]["subjects"], groups["female"]["changed"], groups["female"]["grades"]) == (
        2,
        1,
        {"A→AA": 1},
    )
    assert groups["male"]["measures"]["fast-track"]["enter"] == 2


def test_a_draft_equal_to_the_baseline_but_its_version_changes_nothing(hand: World) -> None:
    report = simulate(hand.store, NO_CONSENT.replace('"2026.1"', '"2026.9"'), by=["sex", "age_band"])
    assert report["changed"] == 0
    assert report["grades"] == {}
    for kind in ("lists", "measures"):
        for moves in report[kind].values():
            assert moves["enter"] == moves["leave"] == 0
            assert moves["before"] == moves["after"]
    assert report["score"]["mean_before"] == report["score"]["mean_after"]
    assert set(report["groups"]) == {"male / 35–44", "female / 35–44"}


def test_a_bad_draft_is_refused_and_nothing_is_loaded(hand: World) -> None:
    def versions() -> list[str]:
        with hand.store.read() as conn:
            return [v.version for v in registry.scheme_versions(conn, "demo-city")]

    petition = RAISED.replace("CHARITY.BLOOD, title: Voluntary blood donation", "PETITION.VISIT, title: Petitioning")
    with pytest.raises(XinyongError, match="no scheme may score") as refused:
        simulate(hand.store, petition)
    assert "PETITION.VISIT" in refused.value.render()
    with pytest.raises(BadInput, match="already published"):
        simulate(hand.store, NO_CONSENT)
    with pytest.raises(BadInput, match="not loaded"):
        simulate(hand.store, RAISED.replace("scheme: demo-city", "scheme: other-city"))
    with pytest.raises(BadInput, match="--by: 'religion' is not a field"):
        simulate(hand.store, RAISED, by=["religion"])
    assert versions() == ["2026.1"]


def test_an_analyst_sees_small_cells_withheld_and_may_not_write_per_subject_files(hand: World, tmp_path: Path) -> None:
    shown = simulate(hand.store, RAISED, ANALYST)
    assert shown["min_cell"] == 10
    assert shown["subjects"] is None
    assert shown["changed"] is None
    assert shown["grades"] == {"A→AA": None}
    assert shown["score"] == {"mean_before": None, "mean_after": None}
    with pytest.raises(Forbidden):
        simulate(hand.store, RAISED, ANALYST, out=tmp_path / "lab")
    assert not (tmp_path / "lab").exists()


def test_out_writes_per_subject_before_after_and_a_report_with_charts(hand: World, tmp_path: Path) -> None:
    report = simulate(hand.store, RAISED, by=["sex"], out=tmp_path / "lab")
    rows = {r["subject_id"]: r for r in pq.read_table(tmp_path / "lab" / "subjects.parquet").to_pylist()}
    assert set(rows) == set(P)
    assert (rows[P[0]]["score_b"], rows[P[0]]["score_a"], rows[P[0]]["grade_a"]) == (1005, 1030, "AA")
    assert (rows[P[3]]["changed"], rows[P[4]]["score_a"], rows[P[4]]["lists_a"]) == (False, 930, ["defaulters"])
    page = (tmp_path / "lab" / "report.html").read_text(encoding="utf-8")
    for chart in ("chart-grades", "chart-moves", "chart-scores", "chart-groups"):
        assert f'data-chart="{chart}"' in page
    assert "A→AA" in page
    assert 'src="vendor/vega-lite.min.js"' in page
    assert (tmp_path / "lab" / "vendor" / "vega-embed.min.js").stat().st_size > 1000
    assert report["out"] == {
        "subjects": str(tmp_path / "lab" / "subjects.parquet"),
        "report": str(tmp_path / "lab" / "report.html"),
    }


# --- agreement with a store where the draft is loaded -------------------------------------------

NOW = dt.datetime(2026, 6, 30, 1, tzinfo=dt.UTC)
D = dt.date(2026, 6, 20)


def _draft() -> str:
    text = (demo.schemes_dir() / "city-points.yaml").read_text(encoding="utf-8")
    text = text.replace('version: "2026.1"', 'version: "2026.5"\neffective_from: 2026-06-01')
    # Deductions doubled and the A line raised: subjects move across several lines.
    text = text.replace("points: -5\n", "points: -15\n").replace("points: -30\n", "points: -60\n")
    return text.replace("min: 960}", "min: 990}").replace("cap: 30", "cap: 10")


@pytest.fixture(scope="module")
def replayed(tmp_path_factory: pytest.TempPathFactory) -> Store:
    folder = tmp_path_factory.mktemp("lab-city")
    url = f"sqlite:///{folder / 'city.db'}"
    demo.run(url, FixedClock(NOW), persons=200, organisations=30, seed=7, console=None)
    return Store(url)


def _by_subject(table: pa.Table) -> dict[str, tuple[object, ...]]:
    rows = table.to_pylist()
    return {
        r["subject_id"]: (r["version"], r["score"], r["grade"], sorted(r["lists"]), sorted(r["measures"])) for r in rows
    }


def test_after_equals_the_batch_of_a_store_where_the_draft_is_loaded(replayed: Store, tmp_path: Path) -> None:
    draft = parse_scheme(_draft())
    engine = batch.DuckDBEngine()
    population = populations.evaluate(replayed, engine, draft, as_of=D, known_at=NOW, where="draft")
    report = impact.impact(population)
    assert report["changed"] > 10
    assert report["grades"]
    # The Spark engine gives the same states and figures (one small run: a session is slow to start).
    quick = {"spark.sql.shuffle.partitions": "1", "spark.sql.adaptive.enabled": "false"}
    spark = batch.SparkEngine(batch.spark_session("local[1]", "xinyong-lab-tests", **quick))
    try:
        on_spark = populations.evaluate(replayed, spark, draft, as_of=D, known_at=NOW, where="draft")
    finally:
        spark.session.stop()
    assert _by_subject(on_spark.after) == _by_subject(population.after)
    assert _by_subject(on_spark.before) == _by_subject(population.before)
    assert impact.impact(on_spark) == report

    def state() -> dict[str, tuple[object, ...]]:
        out = tmp_path / "state.parquet"
        found = batch.run(
            replayed, engine, as_of=D, known_at=NOW, out=out, schemes=["city-points"], refresh_serving=False
        )
        return _by_subject(found.state)

    assert _by_subject(population.before) == state()
    with replayed.write() as conn:
        registry.publish_scheme(conn, draft, _draft(), NOW - dt.timedelta(days=1), after=AFTER_APPEND)
    loaded = state()
    assert {v for v, *_ in loaded.values()} == {"2026.5"}
    assert _by_subject(population.after) == loaded
