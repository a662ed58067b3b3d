"""What a draft changes: before/after counts over the population, overall and per group.

The engine's two state tables are joined subject by subject in DuckDB (whichever engine computed
them: this is counting, not the semantics), so the figures come from one pass of plain SQL rather
than a Python loop over millions of rows.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pyarrow as pa

from xinyong.derived.batch.query import literal
from xinyong.derived.lab.groups import NONE
from xinyong.derived.lab.populations import Population

_JOINED = f"""
SELECT COALESCE(b.subject_id, a.subject_id) AS subject_id, COALESCE(g.grp, '{NONE}') AS grp,
  b.score AS score_b, a.score AS score_a,
  COALESCE(b.grade, '{NONE}') AS grade_b, COALESCE(a.grade, '{NONE}') AS grade_a,
  COALESCE(b.lists, []) AS lists_b, COALESCE(a.lists, []) AS lists_a,
  COALESCE(b.measures, []) AS measures_b, COALESCE(a.measures, []) AS measures_a,
  (b.subject_id IS NULL OR a.subject_id IS NULL OR b.score IS DISTINCT FROM a.score
   OR b.grade IS DISTINCT FROM a.grade OR list_sort(b.lists) <> list_sort(a.lists)
   OR list_sort(b.measures) <> list_sort(a.measures)) AS changed
FROM before AS b FULL JOIN after AS a ON a.subject_id = b.subject_id
LEFT JOIN groups AS g ON g.subject_id = COALESCE(b.subject_id, a.subject_id)
"""


def _ids(first: Sequence[str], second: Sequence[str]) -> list[str]:
    return list(dict.fromkeys([*first, *second]))


def _membership(kind: str, ids: Sequence[str]) -> list[str]:
    """before, after, enter and leave of every list (or measure) id, as count columns."""
    columns = []
    for i, item in enumerate(ids):
        b, a = f"list_contains({kind}_b, {literal(item)})", f"list_contains({kind}_a, {literal(item)})"
        columns += [
            f"COUNT(*) FILTER (WHERE {b}) AS {kind}{i}_before",
            f"COUNT(*) FILTER (WHERE {a}) AS {kind}{i}_after",
            f"COUNT(*) FILTER (WHERE {a} AND NOT {b}) AS {kind}{i}_enter",
            f"COUNT(*) FILTER (WHERE {b} AND NOT {a}) AS {kind}{i}_leave",
        ]
    return columns


def _mean(value: Any) -> float | None:
    return None if value is None else round(float(value), 2)


def _counts(con: Any, key: str, lists: Sequence[str], measures: Sequence[str]) -> dict[str, dict[str, Any]]:
    """Per value of `key`: subjects, changed, grade transitions, list and measure moves, mean scores."""
    columns = [
        "COUNT(*) AS subjects",
        "COUNT(*) FILTER (WHERE changed) AS changed",
        "AVG(score_b) AS mean_before",
        "AVG(score_a) AS mean_after",
        *_membership("lists", lists),
        *_membership("measures", measures),
    ]
    result: dict[str, dict[str, Any]] = {}
    for row in con.sql(f"SELECT {key} AS k, {', '.join(columns)} FROM joined GROUP BY 1 ORDER BY 1").fetchall():
        named = dict(zip(["k", "subjects", "changed", "mean_before", "mean_after"], row[:5], strict=True))
        rest = iter(row[5:])
        result[named["k"]] = {
            "subjects": named["subjects"],
            "changed": named["changed"],
            "grades": {},
            "lists": {
                i: dict(zip(("before", "after", "enter", "leave"), (next(rest) for _ in range(4)), strict=True))
                for i in lists
            },
            "measures": {
                i: dict(zip(("before", "after", "enter", "leave"), (next(rest) for _ in range(4)), strict=True))
                for i in measures
            },
            "score": {"mean_before": _mean(named["mean_before"]), "mean_after": _mean(named["mean_after"])},
        }
    moves = con.sql(
        f"SELECT {key}, grade_b, grade_a, COUNT(*) FROM joined WHERE grade_b <> grade_a "
        "GROUP BY 1, 2, 3 ORDER BY 1, 2, 3"
    ).fetchall()
    for k, before, after, n in moves:
        result[k]["grades"][f"{before}→{after}"] = n
    return result


def _empty(lists: Sequence[str], measures: Sequence[str]) -> dict[str, Any]:
    zero = {"before": 0, "after": 0, "enter": 0, "leave": 0}
    return {
        "subjects": 0,
        "changed": 0,
        "grades": {},
        "lists": {i: dict(zero) for i in lists},
        "measures": {i: dict(zero) for i in measures},
        "score": {"mean_before": None, "mean_after": None},
    }


def joined(population: Population, groups: pa.Table | None) -> pa.Table:
    """One row per subject with state on either side: before and after side by side, its group."""
    import duckdb

    con = duckdb.connect()
    try:
        con.register("before", population.before)
        con.register("after", population.after)
        con.register(
            "groups",
            groups
            if groups is not None
            else pa.table({"subject_id": pa.array([], pa.string()), "grp": pa.array([], pa.string())}),
        )
        return con.sql(_JOINED).to_arrow_table()
    finally:
        con.close()


def impact(population: Population, groups: pa.Table | None = None) -> dict[str, Any]:
    """The simulation's figures: overall, and per group when `groups` (subject_id, grp) is given."""
    import duckdb

    lists = _ids([x.id for x in population.baseline.lists], [x.id for x in population.draft.lists])
    measures = _ids([m.id for m in population.baseline.measures], [m.id for m in population.draft.measures])
    con = duckdb.connect()
    try:
        con.register("joined_rows", joined(population, groups))
        con.execute("CREATE TEMP VIEW joined AS SELECT * FROM joined_rows")
        overall = _counts(con, "'all'", lists, measures).get("all") or _empty(lists, measures)
        report: dict[str, Any] = {
            "scheme": population.draft.scheme,
            "baseline_version": population.baseline.version,
            "draft_version": population.draft.version,
            **overall,
        }
        if groups is not None:
            report["groups"] = _counts(con, "grp", lists, measures)
        return report
    finally:
        con.close()


def _cell(n: int | None, min_cell: int) -> int | None:
    return n if n is not None and n >= min_cell else None


def _published_counts(counts: dict[str, Any], min_cell: int) -> dict[str, Any]:
    small = counts["subjects"] < min_cell
    return {
        "subjects": _cell(counts["subjects"], min_cell),
        "changed": _cell(counts["changed"], min_cell),
        "grades": {k: _cell(n, min_cell) for k, n in counts["grades"].items()},
        **{
            kind: {i: {k: _cell(n, min_cell) for k, n in moves.items()} for i, moves in counts[kind].items()}
            for kind in ("lists", "measures")
        },
        "score": {k: None if small else v for k, v in counts["score"].items()},
    }


def published(report: dict[str, Any], min_cell: int) -> dict[str, Any]:
    """The report as an analyst may see it: every count under `min_cell` subjects is null, and so
    are the mean scores of a group that small."""
    shown = {**report, **_published_counts(report, min_cell), "min_cell": min_cell}
    if "groups" in report:
        shown["groups"] = {k: _published_counts(v, min_cell) for k, v in report["groups"].items()}
    return shown


def score_histogram(rows: pa.Table, bins: int = 20) -> list[dict[str, Any]]:
    """Subjects per score bin before and after, on one set of bins spanning both sides."""
    import duckdb

    con = duckdb.connect()
    try:
        con.register("joined", rows)
        low, high = con.execute(
            "SELECT LEAST(MIN(score_b), MIN(score_a)), GREATEST(MAX(score_b), MAX(score_a)) FROM joined"
        ).fetchone() or (None, None)
        if low is None or high is None:
            return []
        width = max(1, -(-(int(high) - int(low) + 1) // bins))
        found = con.execute(
            f"SELECT side, {int(low)} + FLOOR((score - {int(low)}) / {width}) * {width} AS start, COUNT(*) FROM "
            "(SELECT 'before' AS side, score_b AS score FROM joined UNION ALL SELECT 'after', score_a FROM joined) "
            "WHERE score IS NOT NULL GROUP BY 1, 2 ORDER BY 2, 1"
        ).fetchall()
    finally:
        con.close()
    return [{"side": side, "from": int(start), "until": int(start) + width, "subjects": n} for side, start, n in found]
