"""Fairness of a scheme: per group, the rate of each list and measure against the most favoured
group's, with a bootstrap interval and the four-fifths flag.

The favourable side of a black or watch list, or of a punishment, is *not* being on it; of a red
list or a reward, being on it. A group's ratio is its favourable share over the most favoured
group's; a ratio under 0.8 is flagged (the four-fifths rule of adverse impact). Groups under 30
subjects are too few for a rate to mean anything: they are reported as such, never flagged and never
taken as the most favoured.

The interval resamples each group's subjects with replacement; a resample's count on a list is
then Binomial(n, rate), so it is drawn as one, 1,000 times with a fixed seed per list and group:
the same store gives the same report, and a group's interval does not move when another group is
added.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa

from xinyong.derived.batch.query import literal
from xinyong.derived.lab.groups import NONE
from xinyong.rules.schemes import Scheme

TOO_FEW = 30
FOUR_FIFTHS = 0.8
RESAMPLES = 1000
SEED = 20140614  # the Planning Outline's day: any fixed number makes a report reproducible


@dataclass(frozen=True)
class Item:
    """A list or a measure: its id, whether being on it is the favourable side, and its column."""

    id: str
    favourable_on: bool
    column: str


def _items(scheme: Scheme) -> tuple[list[Item], list[Item]]:
    lists = [Item(x.id, x.kind == "red", "lists") for x in scheme.lists]
    measures = [Item(m.id, m.kind == "reward", "measures") for m in scheme.measures]
    return lists, measures


def _scored(scheme: Scheme) -> bool:
    """Whether the scheme scores at all: a list scheme (no grades, every behaviour 0 points) has
    no score, so no mean score (DESIGN.md, "List schemes")."""
    return bool(scheme.grades) or any(b.points for b in scheme.behaviours)


def _tally(scheme: Scheme, state: pa.Table, groups: pa.Table) -> dict[str, dict[str, Any]]:
    """Per group: n, the score's sum, and counts per grade, list and measure."""
    import duckdb

    lists, measures = _items(scheme)
    counted = [
        f"COUNT(*) FILTER (WHERE list_contains(s.{item.column}, {literal(item.id)}))" for item in (*lists, *measures)
    ]
    grades = [g.grade for g in scheme.grades]
    counted += [f"COUNT(*) FILTER (WHERE s.grade = {literal(g)})" for g in grades]
    con = duckdb.connect()
    try:
        con.register("state", state)
        con.register("groups", groups)
        rows = con.sql(
            f"SELECT COALESCE(g.grp, '{NONE}'), COUNT(*), AVG(s.score), {', '.join(counted) or '0'} "
            "FROM state AS s LEFT JOIN groups AS g ON g.subject_id = s.subject_id GROUP BY 1 ORDER BY 1"
        ).fetchall()
    finally:
        con.close()
    tallies: dict[str, dict[str, Any]] = {}
    for row in rows:
        rest = iter(row[3:])
        tallies[row[0]] = {
            "n": row[1],
            "mean": row[2] if _scored(scheme) else None,
            "items": {(item.column, item.id): next(rest) for item in (*lists, *measures)},
            "grades": {g: next(rest) for g in grades},
        }
    return tallies


def _draws(n: int, share: float, key: str) -> Any:
    """RESAMPLES bootstrap shares of a group of n with this share, from the seed for `key`."""
    rng = np.random.default_rng([SEED, zlib.crc32(key.encode())])
    return rng.binomial(n, share, RESAMPLES) / n


def _judge(item: Item, tallies: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Each group's rate, ratio, interval and flag for one list or measure."""
    shares: dict[str, tuple[int, int, float, float]] = {}
    for grp, tally in tallies.items():
        n, on = tally["n"], tally["items"][(item.column, item.id)]
        rate = on / n
        shares[grp] = (n, on, rate, rate if item.favourable_on else 1 - rate)
    eligible = [g for g, (n, *_rest) in shares.items() if n >= TOO_FEW]
    best = max(eligible, key=lambda g: (shares[g][3], g), default=None)
    judged: dict[str, dict[str, Any]] = {}
    for grp, (n, on, rate, favourable) in shares.items():
        entry: dict[str, Any] = {"on": on, "rate": round(rate, 4), "ratio": None, "ci": None, "flag": False}
        if best is not None and shares[best][3] > 0:
            best_n, _on, _rate, best_favourable = shares[best]
            ratio = favourable / best_favourable
            base = _draws(best_n, best_favourable, f"{item.column}/{item.id}/{best}")
            mine = base if grp == best else _draws(n, favourable, f"{item.column}/{item.id}/{grp}")
            with np.errstate(divide="ignore", invalid="ignore"):
                ratios = np.where(base > 0, mine / np.where(base > 0, base, 1), np.nan)
            lo, hi = (float(x) for x in np.nanpercentile(ratios, [2.5, 97.5]))
            entry |= {"ratio": round(ratio, 4), "ci": [round(lo, 4), round(hi, 4)]}
            entry["flag"] = n >= TOO_FEW and ratio < FOUR_FIFTHS
        judged[grp] = entry
    return judged


def fairness(scheme: Scheme, state: pa.Table, groups: pa.Table) -> dict[str, Any]:
    """Per group of `groups` (subject_id, grp): n, too_few, mean score, grade shares, and every list's
    and measure's rate, ratio to the most favoured group, 95% interval and flag."""
    tallies = _tally(scheme, state, groups)
    lists, measures = _items(scheme)
    judged = {(item.column, item.id): _judge(item, tallies) for item in (*lists, *measures)}
    report: dict[str, Any] = {}
    for grp, tally in tallies.items():
        n = tally["n"]
        report[grp] = {
            "n": n,
            "too_few": n < TOO_FEW,
            "mean_score": None if tally["mean"] is None else round(float(tally["mean"]), 2),
            "grades": {g: round(c / n, 4) for g, c in tally["grades"].items()},
            "grade_counts": tally["grades"],
            "lists": {item.id: judged[(item.column, item.id)][grp] for item in lists},
            "measures": {item.id: judged[(item.column, item.id)][grp] for item in measures},
        }
    return report


def _published_group(group: dict[str, Any], min_cell: int) -> dict[str, Any]:
    n = group["n"]
    if n < min_cell:
        empty = {"rate": None, "ratio": None, "ci": None, "flag": False}
        return {
            "n": None,
            "too_few": True,
            "mean_score": None,
            "grades": dict.fromkeys(group["grades"]),
            "lists": {k: dict(empty) for k in group["lists"]},
            "measures": {k: dict(empty) for k in group["measures"]},
        }

    def item(entry: dict[str, Any]) -> dict[str, Any]:
        small = entry["on"] < min_cell or n - entry["on"] < min_cell
        shown = {k: v for k, v in entry.items() if k != "on"}
        return shown | {"rate": None, "ratio": None, "ci": None} if small else shown

    return {
        "n": n,
        "too_few": group["too_few"],
        "mean_score": group["mean_score"],
        "grades": {g: s if group["grade_counts"][g] >= min_cell else None for g, s in group["grades"].items()},
        "lists": {k: item(v) for k, v in group["lists"].items()},
        "measures": {k: item(v) for k, v in group["measures"].items()},
    }


def published(groups: dict[str, dict[str, Any]], min_cell: int | None) -> dict[str, dict[str, Any]]:
    """The groups as the report shows them: exact for the operator (`min_cell` None), else with
    every share or rate resting on fewer than `min_cell` subjects (on either side) withheld."""
    if min_cell is None:
        return {
            grp: {k: v for k, v in g.items() if k != "grade_counts"}
            | {
                kind: {i: {k: x for k, x in e.items() if k != "on"} for i, e in g[kind].items()}
                for kind in ("lists", "measures")
            }
            for grp, g in groups.items()
        }
    return {grp: _published_group(g, min_cell) for grp, g in groups.items()}
