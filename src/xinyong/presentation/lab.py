"""The policy lab's HTML report: what a draft changes, as Vega-Lite charts with their numbers.

The page is written beside the per-subject file (`simulate --out DIR`) and opened from disk, so it
loads the vendored Vega, Vega-Lite and vega-embed (the web pages' one copy, `VENDOR`) from a
`vendor/` folder written beside it: nothing comes from outside, and every chart has a table of its
numbers under it for a reader without JavaScript.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from markupsafe import Markup

from xinyong.i18n import N_, Text, language
from xinyong.presentation.rendering import environment

# The web pages' vendored scripts: one copy in the repository, copied beside each report.
VENDOR = Path(__file__).resolve().parent.parent / "interfaces" / "web" / "static" / "vendor"
SCRIPTS = ("vega.min.js", "vega-lite.min.js", "vega-embed.min.js")
SCHEMA = "https://vega.github.io/schema/vega-lite/v5.json"
# The words the report's data carries, translated where they are shown.
WORDS = {"enter": N_("enter"), "leave": N_("leave"), "before": N_("before"), "after": N_("after")}


def _bar(values: list[dict[str, Any]], x: dict[str, Any], y: dict[str, Any], **encoding: Any) -> dict[str, Any]:
    return {
        "$schema": SCHEMA,
        "data": {"values": values},
        "mark": {"type": "bar", "tooltip": True},
        "encoding": {"x": x, "y": y, **encoding},
        "width": "container",
    }


def charts(report: dict[str, Any], histogram: list[dict[str, Any]], t: Text) -> dict[str, dict[str, Any]]:
    """The report's four charts as Vega-Lite specifications, titled in the reader's language."""
    subjects, said = t("Subjects"), {k: t(v) for k, v in WORDS.items()}
    whole = {"tickMinStep": 1, "format": "d"}  # counts of subjects: no 0.5 ticks
    transitions = [{"move": k, "subjects": n} for k, n in report["grades"].items()]
    moves = [
        {"item": item, "movement": said[movement], "subjects": counts[movement]}
        for kind in ("lists", "measures")
        for item, counts in report[kind].items()
        for movement in ("enter", "leave")
    ]
    sides = [{**row, "side": said[row["side"]]} for row in histogram]
    groups = [{"group": g, "changed": c["changed"]} for g, c in report.get("groups", {}).items()]
    return {
        "chart-grades": _bar(
            transitions,
            {"field": "subjects", "type": "quantitative", "title": subjects, "axis": whole},
            {"field": "move", "type": "nominal", "title": t("Grade before → after"), "sort": "-x"},
        ),
        "chart-moves": _bar(
            moves,
            {"field": "item", "type": "nominal", "title": t("List or measure")},
            {"field": "subjects", "type": "quantitative", "title": subjects, "axis": whole},
            xOffset={"field": "movement"},
            color={"field": "movement", "type": "nominal", "title": t("Movement")},
        ),
        "chart-scores": {
            **_bar(
                sides,
                {"field": "from", "type": "quantitative", "title": t("Score"), "bin": {"binned": True}},
                {"field": "subjects", "type": "quantitative", "title": subjects, "stack": None, "axis": whole},
                x2={"field": "until"},
                color={"field": "side", "type": "nominal", "title": t("Scheme version")},
                opacity={"value": 0.6},
            ),
        },
        "chart-groups": _bar(
            groups,
            {"field": "group", "type": "nominal", "title": t("Group")},
            {"field": "changed", "type": "quantitative", "title": t("Subjects whose state changes"), "axis": whole},
        ),
    }


def simulation_html(report: dict[str, Any], histogram: list[dict[str, Any]], lang: str | None = None) -> str:
    """The simulation report as one HTML page that expects `vendor/` beside it."""
    chosen = language(lang)
    t = Text(chosen)
    specs = {
        name: Markup(json.dumps(spec, ensure_ascii=False).replace("</", "<\\/"))
        for name, spec in charts(report, histogram, t).items()
    }
    return (
        environment(chosen)
        .get_template("lab.html")
        .render(
            report=report,
            histogram=histogram,
            specs=specs,
            lang=chosen,
            words={k: t(v) for k, v in WORDS.items()},
            scripts=SCRIPTS,
        )
    )


def write_report(folder: Path, page: str) -> Path:
    """The page as `report.html` in `folder`, with the scripts it loads in `folder/vendor`."""
    vendor = folder / "vendor"
    vendor.mkdir(parents=True, exist_ok=True)
    for name in SCRIPTS:
        (vendor / name).write_bytes((VENDOR / name).read_bytes())
    path = folder / "report.html"
    path.write_text(page, encoding="utf-8")
    return path
