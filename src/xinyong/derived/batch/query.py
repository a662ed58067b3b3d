"""The one SQL query per day and knowledge time, generated with SQLGlot from the schemes' rules.

The aggregation of `rules.engine` and `rules.lists` — caps, clamp, grade bands, `any_of` /
`count` / `grade_in` / `all` / `any` list rules, `on_list` / `grade_in` / `all` / `any` measure
rules including another scheme's list — as one query over the four inputs (`inputs.py`), written
in DuckDB's dialect and transpiled by SQLGlot for each engine (`BatchQuery.sql`).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from itertools import groupby
from typing import Any
from zoneinfo import ZoneInfo

import sqlglot

from xinyong.derived.batch.inputs import micros
from xinyong.errors import BadInput, did_you_mean
from xinyong.ledger.consent import GRANTED
from xinyong.rules.schemes import Rule, Scheme, SchemeVersion, version_in_force


def literal(value: str) -> str:
    """`value` as an SQL string literal."""
    return "'" + value.replace("'", "''") + "'"


def _in(column: str, values: Iterable[str]) -> str:
    return f"{column} IN ({', '.join(literal(v) for v in values)})"


def _date(day: dt.date) -> str:
    return f"CAST('{day.isoformat()}' AS DATE)"


@dataclass
class _Plan:
    """One scheme version's columns in the per-subject row, all named after its prefix."""

    prefix: str
    scheme: Scheme
    atoms: list[str] = field(default_factory=list)  # per-subject counts over the active records
    lists: dict[str, str] = field(default_factory=dict)  # list id -> its rule as a boolean

    def column(self, name: str) -> str:
        return f"{self.prefix}_{name}"

    @property
    def list_columns(self) -> dict[str, str]:
        """List id -> the boolean column that holds it."""
        return {list_id: self.column(f"l{i}") for i, list_id in enumerate(self.lists)}


def _plan(prefix: str, scheme: Scheme, day: dt.date) -> _Plan:
    plan = _Plan(prefix, scheme)
    plan.lists = {item.id: _list_rule(item.rule, plan, day) for item in scheme.lists}
    return plan


def _list_rule(rule: Rule, plan: _Plan, day: dt.date) -> str:
    """A list rule as a boolean over the scheme's per-subject columns (atoms, grade)."""
    if rule.any_of is not None:
        plan.atoms.append(f"COUNT(CASE WHEN {_in('behaviour', rule.any_of)} THEN 1 END)")
        return f"({plan.column(f'a{len(plan.atoms) - 1}')} > 0)"
    if rule.count is not None:
        earliest = rule.count.within.before(day)
        plan.atoms.append(
            f"COUNT(CASE WHEN {_in('behaviour', rule.count.codes)} AND occurred_on > {_date(earliest)} "
            f"AND occurred_on <= {_date(day)} THEN 1 END)"
        )
        return f"({plan.column(f'a{len(plan.atoms) - 1}')} >= {rule.count.at_least})"
    if rule.grade_in is not None:
        return f"COALESCE({_in(plan.column('grade'), rule.grade_in)}, FALSE)"
    if rule.all is not None:
        return "(" + " AND ".join(_list_rule(child, plan, day) for child in rule.all) + ")"
    if rule.any is not None:
        return "(" + " OR ".join(_list_rule(child, plan, day) for child in rule.any) + ")"
    raise BadInput(f"scheme {plan.scheme.scheme}: on_list is not allowed in a list rule")


def _effects_cte(plan: _Plan, day: dt.date, known: int) -> str:
    """Score points and list-rule counts per subject in one pass, as a bare score query would sum."""
    # One scan per scheme, as the bare query does: one scan shared by every scheme would need the
    # active rows materialised for each scheme's aggregation, which costs more than the scans saved,
    # and one scan grouped once with every scheme's sums side by side costs as much as three (every
    # row then updates every scheme's sums; 6.7 s against 6.5 s of CPU at 10 M subjects).
    scheme = plan.scheme
    # DuckDB sums BIGINT into a HUGEINT (Spark into a BIGINT): each sum cast back to BIGINT makes the
    # caps, the clamp and the score 64-bit arithmetic, and counts are COUNTs, BIGINT on both: about
    # 2% of the batch's CPU at 10 M subjects. A sum past 2^63 fails on DuckDB as it does on Spark.
    # Every point counts, then each capped behaviour gives back what its cap takes away.
    parts = ["CAST(SUM(points) AS BIGINT)"]
    for b in scheme.behaviours:
        if b.cap is not None:
            total = f"CAST(SUM(CASE WHEN behaviour = {literal(b.code)} THEN points ELSE 0 END) AS BIGINT)"
            parts.append(f"(GREATEST({-b.cap}, LEAST({b.cap}, {total})) - {total})")
    atoms = "".join(f", {expr} AS a{i}" for i, expr in enumerate(plan.atoms))
    return (
        f"SELECT subject_id, {' + '.join(parts)} AS delta{atoms} FROM effects "
        f"WHERE scheme = {literal(scheme.scheme)} AND version = {literal(scheme.version)} "
        f"AND known_from <= {known} AND (known_until IS NULL OR known_until > {known}) "
        f"AND valid_from <= {_date(day)} AND valid_until > {_date(day)} GROUP BY subject_id"
    )


# recorded_at and id as one number that orders as (recorded_at, id) does: recorded_at * 2^64 + id,
# exact for any id in [0, 2^64) (ids are positive) and, as DECIMAL(38, 0), for any recorded_at
# before the year 170000; Spark has no HUGEINT, and DuckDB stores DECIMAL(38, 0) as one.
_CONSENT_KEY = "CAST(recorded_at AS DECIMAL(38, 0)) * 18446744073709551616 + id"


def _consent_cte(plan: _Plan, known: int, before: int) -> str:
    """Whether each person's latest consent event (by recorded_at, then id, as consent.has_consent
    orders them) recorded by K and before `before` is a grant."""
    # The latest event is a grant when the latest of all events is the latest grant: two MAX of one
    # number rather than arg_max by a struct (recorded_at, id), a quarter cheaper on DuckDB (2.0 s
    # against 2.7 s of CPU for 7.6 M events); one MAX with the kind in the lowest bit would be
    # cheaper still but for the modulo that reads it back, slow on 128-bit numbers.
    return (
        f"SELECT subject_id, MAX({_CONSENT_KEY}) = MAX(CASE WHEN kind = {literal(GRANTED)} THEN {_CONSENT_KEY} END) "
        f"AS granted FROM consent WHERE scheme = {literal(plan.scheme.scheme)} AND recorded_at <= {known} "
        f"AND recorded_at < {before} GROUP BY subject_id"
    )


def _subject_columns(plan: _Plan) -> tuple[str, list[str]]:
    """The scheme's columns of the per-subject row (whether it has state, score, atoms), and the
    joins they need: its effects aggregate and, with consent required, its consent aggregate."""
    scheme, p = plan.scheme, plan.prefix
    has = _in("s.kind", scheme.applies_to)
    joins = f" LEFT JOIN {p}_effects AS {p}e ON {p}e.subject_id = s.subject_id"
    if scheme.consent == "required":
        has += f" AND (s.kind <> 'person' OR COALESCE({p}c.granted, FALSE))"
        joins += f" LEFT JOIN {p}_consent AS {p}c ON {p}c.subject_id = s.subject_id"
    raw = f"{scheme.initial} + COALESCE({p}e.delta, 0)"
    if scheme.floor is not None:
        raw = f"GREATEST({scheme.floor}, {raw})"
    if scheme.ceiling is not None:
        raw = f"LEAST({scheme.ceiling}, {raw})"
    columns = [f"{has} AS {plan.column('has')}", f"CAST({raw} AS BIGINT) AS {plan.column('score')}"]
    columns += [f"COALESCE({p}e.a{i}, 0) AS {plan.column(f'a{i}')}" for i in range(len(plan.atoms))]
    return joins, columns


def _grade(plan: _Plan) -> str:
    score = plan.column("score")
    bands = " ".join(f"WHEN {score} >= {g.min} THEN {literal(g.grade)}" for g in plan.scheme.grades)
    return f"CASE {bands} ELSE CAST(NULL AS VARCHAR) END" if bands else "CAST(NULL AS VARCHAR)"


# Past this many conditions, the 2^n values a list of ids can take are too many to spell out.
_MAX_CONDITIONS = 8


def _ids(items: Sequence[tuple[str, str]]) -> str:
    """The ids whose condition holds, in the scheme's order, comma-separated as serving_state keeps
    them ('' for none; ids cannot contain a comma, schemes.py)."""
    # A string rather than an array: written as a small dictionary-encoded column, since a scheme's
    # subjects share a handful of combinations.
    if not items:
        return "CAST('' AS VARCHAR)"
    # Neighbours with one condition (five measures on one list) are one condition, their ids joined.
    runs = [(cond, ",".join(name for name, _ in run)) for cond, run in groupby(items, key=lambda item: item[1])]
    if len(runs) == 1:
        return f"CASE WHEN {runs[0][0]} THEN {literal(runs[0][1])} ELSE '' END"
    if len(runs) > _MAX_CONDITIONS:
        return "CONCAT_WS(',', " + ", ".join(f"CASE WHEN {cond} THEN {literal(ids)} END" for cond, ids in runs) + ")"
    # The n-th of every combination, n having the bits of the conditions that hold: a constant
    # string per row rather than one concatenated per row, which halves what the lists and measures
    # cost to build and write (0.5 s against 1.2 s of CPU for city-points' 8.6 M rows).
    values = [",".join(ids for i, (_, ids) in enumerate(runs) if n >> i & 1) for n in range(1 << len(runs))]
    bits = " + ".join(f"CASE WHEN {cond} THEN {1 << i} ELSE 0 END" for i, (cond, _) in enumerate(runs))
    return f"[{', '.join(literal(v) for v in values)}][{bits} + 1]"


def _on_list(name: str, plan: _Plan, plans: dict[str, _Plan]) -> str:
    """`on_list: L` or `on_list: other/L` as a boolean over the per-subject row; another scheme's
    list counts only where the subject has state under that scheme, as state.py decides."""
    scheme = plan.scheme
    other, list_id = name.split("/", 1) if "/" in name else (scheme.scheme, name)
    if other == scheme.scheme:
        return plan.list_columns.get(list_id, "FALSE")
    if other not in plans or list_id not in plans[other].list_columns:
        return "FALSE"  # not loaded, or no version in force on D as known at K: no state there
    source = plans[other]
    return f"({source.column('has')} AND {source.list_columns[list_id]})"


def _measure_rule(rule: Rule, plan: _Plan, plans: dict[str, _Plan]) -> str:
    if rule.on_list is not None:
        return _on_list(rule.on_list, plan, plans)
    if rule.grade_in is not None:
        return f"COALESCE({_in(plan.column('grade'), rule.grade_in)}, FALSE)"
    if rule.all is not None:
        return "(" + " AND ".join(_measure_rule(c, plan, plans) for c in rule.all) + ")"
    if rule.any is not None:
        return "(" + " OR ".join(_measure_rule(c, plan, plans) for c in rule.any) + ")"
    raise BadInput(f"scheme {plan.scheme.scheme}: a measure rule uses on_list, grade_in, all or any")


def _branch(plan: _Plan, plans: dict[str, _Plan]) -> str:
    """A wanted scheme's rows: its columns of the per-subject row where the subject has state."""
    scheme = plan.scheme
    lists = _ids(list(plan.list_columns.items()))
    measures = _ids([(m.id, _measure_rule(m.applies_when, plan, plans)) for m in scheme.measures])
    return (
        f"SELECT {literal(scheme.scheme)} AS scheme, {literal(scheme.version)} AS version, subject_id, "
        f"{plan.column('score')} AS score, {plan.column('grade')} AS grade, {lists} AS lists, "
        f"{measures} AS measures FROM listed WHERE {plan.column('has')}"
    )


@dataclass(frozen=True)
class BatchQuery:
    """The generated query for one day D and knowledge time K, and the versions it uses."""

    as_of: dt.date
    known_at: dt.datetime
    versions: dict[str, str]  # scheme -> version in force, for the schemes that have state
    expression: Any  # a sqlglot expression tree
    labels: dict[str, list[str]] = field(default_factory=dict)  # column -> every value it can hold

    def sql(self, dialect: str = "duckdb") -> str:
        return str(self.expression.sql(dialect=dialect))


def _in_force(
    versions: Sequence[SchemeVersion], as_of: dt.date, known_at: dt.datetime, schemes: Sequence[str] | None
) -> tuple[list[str], dict[str, Scheme]]:
    """The wanted schemes, and the version in force on D as known at K of every loaded scheme."""
    by_scheme: dict[str, list[SchemeVersion]] = {}
    for version in versions:
        by_scheme.setdefault(version.id, []).append(version)
    wanted = list(schemes) if schemes else sorted(by_scheme)
    for scheme_id in wanted:
        if scheme_id not in by_scheme:
            raise BadInput(f"--scheme: scheme {scheme_id} is not loaded{did_you_mean(scheme_id, by_scheme)}")
    in_force: dict[str, Scheme] = {}
    for scheme_id, candidates in by_scheme.items():
        chosen = version_in_force(candidates, as_of, known_at)
        if chosen is not None:
            in_force[scheme_id] = chosen.scheme
    return wanted, in_force


def build_query(
    versions: Sequence[SchemeVersion], as_of: dt.date, known_at: dt.datetime, schemes: Sequence[str] | None = None
) -> BatchQuery:
    """The state of every subject under each wanted scheme on `as_of` as known at `known_at`."""
    # The subjects are read and joined once: one row per subject carries every needed scheme's
    # figures side by side (a cross-scheme measure is a column, not another join), and each wanted
    # scheme's rows are that row's columns where the subject has state. A subject without records
    # takes the same path with zero counts rather than a second, outer-joined branch.
    wanted, in_force = _in_force(versions, as_of, known_at, schemes)
    known = micros(known_at)
    needed = [s for s in wanted if s in in_force]
    for scheme_id in list(needed):
        for other, _list in sorted(in_force[scheme_id].cross_scheme_lists()):
            if other in in_force and other not in needed:
                needed.append(other)
    if not needed:
        body = (
            "SELECT CAST(NULL AS VARCHAR) AS scheme, CAST(NULL AS VARCHAR) AS version, "
            "CAST(NULL AS VARCHAR) AS subject_id, CAST(NULL AS BIGINT) AS score, CAST(NULL AS VARCHAR) AS grade, "
            f"{_ids([])} AS lists, {_ids([])} AS measures WHERE FALSE"
        )
        return BatchQuery(as_of, known_at, {}, sqlglot.parse_one(body, read="duckdb"))
    plans = {scheme_id: _plan(f"s{i}", in_force[scheme_id], as_of) for i, scheme_id in enumerate(needed)}
    ctes: list[str] = []
    joins, state, graded, listed = "", ["s.subject_id"], ["subject_id"], ["subject_id"]
    for plan in plans.values():
        ctes.append(f"{plan.prefix}_effects AS ({_effects_cte(plan, as_of, known)})")
        if plan.scheme.consent == "required":
            # Consent counts from events on or before D in the scheme's zone: before D+1's midnight.
            midnight = dt.datetime.combine(as_of + dt.timedelta(days=1), dt.time(), ZoneInfo(plan.scheme.timezone))
            ctes.append(f"{plan.prefix}_consent AS ({_consent_cte(plan, known, micros(midnight))})")
        scheme_joins, columns = _subject_columns(plan)
        joins += scheme_joins
        state += columns
        graded += [plan.column(c) for c in ("has", "score", *(f"a{i}" for i in range(len(plan.atoms))))]
        graded.append(f"{_grade(plan)} AS {plan.column('grade')}")
        listed += [plan.column(c) for c in ("has", "score", "grade")]
        listed += [f"{plan.lists[list_id]} AS {column}" for list_id, column in plan.list_columns.items()]
    # graded and listed are projections, which DuckDB inlines into each scheme's branch; the joined
    # rows of subject_state are then read once per branch, so DuckDB materialises them once.
    ctes.append(f"subject_state AS (SELECT {', '.join(state)} FROM subjects AS s{joins})")
    ctes.append(f"graded AS (SELECT {', '.join(graded)} FROM subject_state)")
    ctes.append(f"listed AS (SELECT {', '.join(listed)} FROM graded)")
    branches = [_branch(plans[scheme_id], plans) for scheme_id in wanted if scheme_id in in_force]
    sql = f"WITH {', '.join(ctes)} {' UNION ALL '.join(branches)}"
    versions_used = {s: in_force[s].version for s in wanted if s in in_force}
    labels = {
        "scheme": list(versions_used),
        "version": list(dict.fromkeys(versions_used.values())),
        "grade": list(dict.fromkeys(g.grade for s in versions_used for g in in_force[s].grades)),
    }
    return BatchQuery(as_of, known_at, versions_used, sqlglot.parse_one(sql, read="duckdb"), labels)
