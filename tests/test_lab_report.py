"""The simulation's HTML report: four Vega-Lite charts whose data are the report's figures, the same
figures in tables, in English and in Chinese, and the vendored scripts beside it."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from xinyong.i18n import Text
from xinyong.presentation import lab

REPORT: dict[str, Any] = {
    "scheme": "demo-city",
    "baseline_version": "2026.1",
    "draft_version": "2026.2",
    "as_of": "2026-06-01",
    "known_at": "2026-06-01T04:00:00+00:00",
    "engine": "duckdb",
    "by": ["sex"],
    "subjects": 5,
    "changed": 4,
    "grades": {"A→AA": 3, "B→—": 1},
    "lists": {"defaulters": {"before": 1, "after": 0, "enter": 0, "leave": 1}},
    "measures": {"fast-track": {"before": 0, "after": 3, "enter": 3, "leave": 0}},
    "score": {"mean_before": 984.0, "mean_after": 1004.0},
    "groups": {
        "male": {"changed": 3, "subjects": 3, "grades": {"A→AA": 2}},
        "female": {"changed": 1, "subjects": 2, "grades": {}},
    },
}
HISTOGRAM = [
    {"side": "before", "from": 900, "until": 950, "subjects": 1},
    {"side": "after", "from": 1000, "until": 1050, "subjects": 3},
]


def specs(page: str) -> dict[str, Any]:
    found = re.findall(r'<script type="application/json" id="([a-z-]+)">(.*?)</script>', page, re.S)
    return {name: json.loads(body) for name, body in found}


def test_the_charts_carry_the_report_s_figures() -> None:
    charts = specs(lab.simulation_html(REPORT, HISTOGRAM, "en"))
    assert set(charts) == {"chart-grades", "chart-moves", "chart-scores", "chart-groups"}
    assert charts["chart-grades"]["data"]["values"] == [{"move": "A→AA", "subjects": 3}, {"move": "B→—", "subjects": 1}]
    moves = {(v["item"], v["movement"]): v["subjects"] for v in charts["chart-moves"]["data"]["values"]}
    assert moves == {
        ("defaulters", "enter"): 0,
        ("defaulters", "leave"): 1,
        ("fast-track", "enter"): 3,
        ("fast-track", "leave"): 0,
    }
    assert [v["side"] for v in charts["chart-scores"]["data"]["values"]] == ["before", "after"]
    assert charts["chart-groups"]["data"]["values"] == [
        {"group": "male", "changed": 3},
        {"group": "female", "changed": 1},
    ]
    for spec in charts.values():
        assert spec["$schema"].endswith("vega-lite/v5.json")


def test_chinese_labels_and_tables() -> None:
    page = lab.simulation_html(REPORT, HISTOGRAM, "zh_Hans")
    assert '<html lang="zh-Hans">' in page
    assert "等级变化" in page
    assert "变化前后的分数分布" in page
    charts = specs(page)
    assert {v["movement"] for v in charts["chart-moves"]["data"]["values"]} == {"进入", "退出"}
    assert charts["chart-grades"]["encoding"]["x"]["title"] == Text("zh_Hans")("Subjects")
    assert "<td>900–949</td>" in page


def test_a_scheme_id_cannot_end_the_script_element() -> None:
    hostile = {**REPORT, "lists": {"</script><b>x": {"before": 1, "after": 1, "enter": 0, "leave": 0}}}
    page = lab.simulation_html(hostile, [], "en")
    assert "</script><b>" not in page
    assert specs(page)["chart-moves"]["data"]["values"][0]["item"] == "</script><b>x"


def test_written_beside_its_scripts(tmp_path: Path) -> None:
    path = lab.write_report(tmp_path / "out", "<html></html>")
    assert path == tmp_path / "out" / "report.html"
    for name in lab.SCRIPTS:
        assert (tmp_path / "out" / "vendor" / name).read_bytes() == (lab.VENDOR / name).read_bytes()
