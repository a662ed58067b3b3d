"""Vega-Lite specifications for the pages' charts, as plain dicts built from service answers.

Each chart is also shown as a table under it, so that the numbers can be read without JavaScript
and by a screen reader; the chart is the same data drawn by the vendored vega-embed. Labels are
passed in already translated.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

SCHEMA = "https://vega.github.io/schema/vega-lite/v6.json"
WIDTH = "container"


def _base(title: str, values: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "$schema": SCHEMA,
        "title": title,
        "width": WIDTH,
        "height": 220,
        "data": {"values": values},
        "config": {"font": "system-ui, 'Noto Sans CJK SC', sans-serif"},
    }


def expiry_timeline(
    records: list[dict[str, Any]], labels: dict[str, str], title: str, today: dt.date
) -> dict[str, Any]:
    """One bar per record from when it counts to when it expires, coloured by its points."""
    values = [
        {
            labels["record"]: r["label"],
            labels["from"]: r["start"],
            labels["until"]: r["until"],
            labels["points"]: r["points"],
        }
        for r in records
    ]
    spec = _base(title, values)
    spec["height"] = max(60, 26 * len(values))
    spec["layer"] = [
        {
            "mark": {"type": "bar", "cornerRadius": 2},
            "encoding": {
                "y": {"field": labels["record"], "type": "nominal", "title": None, "sort": None},
                "x": {"field": labels["from"], "type": "temporal", "title": None},
                "x2": {"field": labels["until"]},
                # Red for records that take points away, blue for those that add: readable whatever
                # the sizes (a diverging scale would wash small values out to white).
                "color": {
                    "condition": {"test": f"datum[{json.dumps(labels['points'])}] < 0", "value": "#b2182b"},
                    "value": "#2166ac",
                },
                "tooltip": [
                    {"field": labels["record"]},
                    {"field": labels["points"]},
                    {"field": labels["from"], "type": "temporal"},
                    {"field": labels["until"], "type": "temporal"},
                ],
            },
        },
        {
            "mark": {"type": "rule", "color": "#111", "strokeDash": [4, 3]},
            "data": {"values": [{"today": today.isoformat()}]},
            "encoding": {"x": {"field": "today", "type": "temporal"}},
        },
    ]
    return spec


def score_recovery(points: list[dict[str, Any]], labels: dict[str, str], title: str) -> dict[str, Any]:
    """The score stepping back up as records expire (if nothing new is recorded)."""
    values = [{labels["day"]: p["day"], labels["score"]: p["score"]} for p in points]
    spec = _base(title, values)
    spec["mark"] = {"type": "line", "interpolate": "step-after", "point": True}
    spec["encoding"] = {
        "x": {"field": labels["day"], "type": "temporal", "title": None},
        "y": {"field": labels["score"], "type": "quantitative", "scale": {"zero": False}},
        "tooltip": [{"field": labels["day"], "type": "temporal"}, {"field": labels["score"]}],
    }
    return spec


def grouped_bars(
    values: list[dict[str, Any]], x: str, y: str, colour: str, title: str, *, facet: str | None = None
) -> dict[str, Any]:
    spec = _base(title, values)
    spec["mark"] = {"type": "bar", "tooltip": True}
    spec["encoding"] = {
        "x": {"field": x, "type": "nominal", "sort": None},
        "y": {"field": y, "type": "quantitative"},
        "color": {"field": colour, "type": "nominal"},
    }
    if facet:
        spec["encoding"]["column"] = {"field": facet, "type": "nominal"}
        spec["width"] = 160
    return spec


def lines(values: list[dict[str, Any]], x: str, y: str, colour: str, title: str) -> dict[str, Any]:
    spec = _base(title, values)
    spec["mark"] = {"type": "line", "point": True, "tooltip": True}
    spec["encoding"] = {
        "x": {"field": x, "type": "temporal", "title": None},
        "y": {"field": y, "type": "quantitative"},
        "color": {"field": colour, "type": "nominal"},
    }
    return spec


def recovery_points(score: int, contributions: list[dict[str, Any]], today: dt.date) -> list[dict[str, Any]]:
    """Today's score, then the score after each later expiry day, assuming nothing new is recorded.

    The step down by a record's points is exact for records without a cap or a clamp involved;
    when the scheme caps or clamps, the report's "next grade by expiry" line is the exact figure.
    """
    by_day: dict[str, int] = {}
    for line in contributions:
        until = line.get("until")
        if line.get("kind") != "record" or not until or until <= today.isoformat():
            continue
        by_day[until] = by_day.get(until, 0) - int(line["points"])
    points = [{"day": today.isoformat(), "score": score}]
    running = score
    for day in sorted(by_day):
        running += by_day[day]
        points.append({"day": day, "score": running})
    return points
