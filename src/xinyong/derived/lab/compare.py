"""Two places' schemes side by side: rule by rule, and population by population.

Rule by rule, behaviours are matched by code (the shared catalogue of codes, docs/catalogue.md):
for each, its points, cap, validity, notice, severity and the lists (and kinds of list) its records
can put a subject on, in each scheme, or its absence from one. Population by population, every subject with state
under both schemes on D as known at K (both apply to its kind; consent where either needs it) is
evaluated under both by the one batch query, and cross-tabulated: grade under A against grade under
B, and per list, the subjects on it who are on no list of the same kind under the other scheme.
"""

from __future__ import annotations

from typing import Any

import pyarrow as pa

from xinyong.derived.batch.query import literal
from xinyong.derived.lab.groups import NONE
from xinyong.rules.schemes import Behaviour, Scheme

# What a behaviour's treatment is compared on, in this order. Lists are compared by kind: two places
# name their lists differently, and what matters is whether the conduct can blacklist, redlist or
# watch-list a subject at all.
ASPECTS = ("points", "cap", "validity", "notice", "severity", "list_kinds")


def _lists_using(scheme: Scheme, code: str) -> list[str]:
    """The lists whose rule counts records of `code`."""
    found = []
    for item in scheme.lists:
        for rule in item.rule.walk():
            if code in (rule.any_of or []) or (rule.count is not None and code in rule.count.codes):
                found.append(item.id)
                break
    return found


def _treatment(scheme: Scheme, behaviour: Behaviour | None) -> dict[str, Any] | None:
    if behaviour is None:
        return None
    lists = _lists_using(scheme, behaviour.code)
    return {
        "title": behaviour.title,
        "points": behaviour.points,
        "cap": behaviour.cap,
        "validity": str(behaviour.validity),
        "notice": str(behaviour.notice_in(scheme)),
        "severity": behaviour.severity,
        "lists": lists,
        "list_kinds": sorted({scheme.list_by_id[i].kind for i in lists}),
    }


def rules(a: Scheme, b: Scheme) -> dict[str, dict[str, Any]]:
    """Per behaviour code of either scheme: its treatment in each (null where absent), which one
    it is present in only, and the aspects in which the two differ."""
    codes = list(dict.fromkeys([*a.behaviour_by_code, *b.behaviour_by_code]))
    compared: dict[str, dict[str, Any]] = {}
    for code in codes:
        left = _treatment(a, a.behaviour_by_code.get(code))
        right = _treatment(b, b.behaviour_by_code.get(code))
        only = "a" if right is None else "b" if left is None else None
        differs = [k for k in ASPECTS if left and right and left[k] != right[k]]
        compared[code] = {"a": left, "b": right, "only_in": only, "differs": differs}
    return compared


def _kind_of(scheme: Scheme) -> dict[str, str]:
    return {item.id: item.kind for item in scheme.lists}


def _not_under(this: str, other: Scheme, kind: str) -> str:
    """SQL: the subject is on no list of `kind` under the other scheme (column `this`'s partner)."""
    same = [item.id for item in other.lists if item.kind == kind]
    if not same:
        return "TRUE"
    return f"NOT list_has_any({this}, [{', '.join(literal(i) for i in same)}])"


def populations(a: Scheme, b: Scheme, state: pa.Table) -> dict[str, Any]:
    """Subjects with state under both; the grade cross-tabulation; per list, the subjects on it and
    those of them on no list of the same kind under the other scheme."""
    import duckdb

    con = duckdb.connect()
    try:
        con.register("state", state)
        con.execute(
            "CREATE TEMP VIEW pairs AS SELECT x.subject_id, x.grade AS grade_a, y.grade AS grade_b, "
            "x.score AS score_a, y.score AS score_b, x.lists AS lists_a, y.lists AS lists_b "
            f"FROM state AS x JOIN state AS y ON x.subject_id = y.subject_id "
            f"WHERE x.scheme = {literal(a.scheme)} AND y.scheme = {literal(b.scheme)}"
        )
        subjects = con.execute("SELECT COUNT(*) FROM pairs").fetchone()
        grades = con.execute(
            f"SELECT COALESCE(grade_a, '{NONE}'), COALESCE(grade_b, '{NONE}'), COUNT(*) FROM pairs "
            "GROUP BY 1, 2 ORDER BY 1, 2"
        ).fetchall()
        lists: dict[str, dict[str, dict[str, Any]]] = {"a": {}, "b": {}}
        for side, mine, other, column, partner in (
            ("a", a, b, "lists_a", "lists_b"),
            ("b", b, a, "lists_b", "lists_a"),
        ):
            for list_id, kind in _kind_of(mine).items():
                on = f"list_contains({column}, {literal(list_id)})"
                alone = f"{on} AND {_not_under(partner, other, kind)}"
                row = con.execute(
                    f"SELECT COUNT(*) FILTER (WHERE {on}), COUNT(*) FILTER (WHERE {alone}) FROM pairs"
                ).fetchone()
                assert row is not None
                lists[side][list_id] = {"kind": kind, "subjects": row[0], "not_under_other": row[1]}
    finally:
        con.close()
    return {
        "subjects": subjects[0] if subjects else 0,
        "grades": {f"{ga}→{gb}": n for ga, gb, n in grades},
        "lists": lists,
    }


def _cell(n: int, min_cell: int) -> int | None:
    return n if n >= min_cell else None


def published(report: dict[str, Any], min_cell: int) -> dict[str, Any]:
    """The population figures as an analyst may see them: no count under `min_cell`."""
    lists = {
        side: {
            i: {
                **v,
                "subjects": _cell(v["subjects"], min_cell),
                "not_under_other": _cell(v["not_under_other"], min_cell),
            }
            for i, v in found.items()
        }
        for side, found in report["lists"].items()
    }
    return {
        **report,
        "subjects": _cell(report["subjects"], min_cell),
        "grades": {k: _cell(n, min_cell) for k, n in report["grades"].items()},
        "lists": lists,
        "min_cell": min_cell,
    }
