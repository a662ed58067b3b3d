"""The engine: a subject's state under one scheme version on day D, from its effects as known at K.

This is DESIGN.md's aggregation, written once: score with per-behaviour caps and clamping, the
grade, the explanation (whose lines sum exactly to score − initial), lists and measures with their
basis, and the next grade up with the earliest day expiries alone would reach it. It is pure: the
callers fetch effects (from the store, DuckDB or Spark) and hand them in.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from xinyong.rules.effects import Effect
from xinyong.rules.lists import FALSE, RuleContext, Verdict, evaluate
from xinyong.rules.schemes import Scheme


@dataclass(frozen=True)
class Contribution:
    """One explanation line: a record's points, or a cap or clamp adjustment (record None)."""

    kind: str  # "record" | "cap" | "clamp"
    points: int
    record: int | None = None
    behaviour: str | None = None
    start: dt.date | None = None
    until: dt.date | None = None
    occurred_on: dt.date | None = None


@dataclass(frozen=True)
class NextGrade:
    grade: str
    min: int
    points_needed: int
    reachable_on: dt.date | None  # the earliest day expiries alone reach it; None if they never do


@dataclass(frozen=True)
class State:
    subject: str
    scheme: str
    scheme_version: str
    as_of: dt.date
    known_at: dt.datetime
    initial: int
    score: int
    grade: str | None
    contributions: tuple[Contribution, ...]
    lists: tuple[str, ...]
    measures: tuple[str, ...]
    list_basis: dict[str, Verdict] = field(default_factory=dict)
    measure_basis: dict[str, Verdict] = field(default_factory=dict)
    next_grade: NextGrade | None = None
    kind: str = "points"  # "points" | "list": a list scheme's score and grade mean nothing

    @property
    def shown_score(self) -> int | None:
        """The score as people and clients see it: none under a list scheme (DESIGN.md)."""
        return None if self.kind == "list" else self.score


def score_of(scheme: Scheme, active: Sequence[Effect]) -> tuple[int, list[Contribution]]:
    """Score and explanation lines for the effects active on one day."""
    lines: list[Contribution] = []
    totals: dict[str, int] = defaultdict(int)
    for effect in sorted(active, key=lambda e: (e.valid_from, e.record_id)):
        totals[effect.behaviour] += effect.points
        lines.append(
            Contribution(
                kind="record",
                points=effect.points,
                record=effect.record_id,
                behaviour=effect.behaviour,
                start=effect.valid_from,
                until=effect.valid_until,
                occurred_on=effect.occurred_on,
            )
        )
    capped_total = 0
    for code, total in sorted(totals.items()):
        cap = scheme.behaviour_by_code[code].cap if code in scheme.behaviour_by_code else None
        capped = total if cap is None else max(-cap, min(cap, total))
        if capped != total:
            lines.append(Contribution(kind="cap", points=capped - total, behaviour=code))
        capped_total += capped
    raw = scheme.initial + capped_total
    clamped = raw
    if scheme.floor is not None:
        clamped = max(scheme.floor, clamped)
    if scheme.ceiling is not None:
        clamped = min(scheme.ceiling, clamped)
    if clamped != raw:
        lines.append(Contribution(kind="clamp", points=clamped - raw))
    return clamped, lines


def _next_grade(
    scheme: Scheme, grade: str | None, score: int, active: Sequence[Effect], day: dt.date
) -> NextGrade | None:
    target = scheme.grade_above(grade)
    if target is None or target.min <= score:
        return None
    reachable_on = None
    for candidate in sorted({e.valid_until for e in active if e.valid_until > day}):
        remaining = [e for e in active if e.valid_until > candidate]
        if score_of(scheme, remaining)[0] >= target.min:
            reachable_on = candidate
            break
    return NextGrade(target.grade, target.min, target.min - score, reachable_on)


def evaluate_state(
    scheme: Scheme,
    subject: str,
    effects: Sequence[Effect],
    as_of: dt.date,
    known_at: dt.datetime,
    other_list: Callable[[str, str], Verdict] = lambda _scheme, _list: FALSE,
) -> State:
    """The state on `as_of` as known at `known_at`, from any superset of the subject's effects.

    `other_list(scheme, list)` answers cross-scheme conditions (`on_list: court-defaulters/defaulters`);
    the caller resolves it with the other scheme's own version and effects.
    """
    active = [
        e
        for e in effects
        if e.subject_id == subject and e.scheme == scheme.scheme and e.known_at(known_at) and e.active_on(as_of)
    ]
    score, lines = score_of(scheme, active)
    grade = scheme.grade_for(score)
    ctx = RuleContext(day=as_of, active=active, grade=grade)
    list_basis = {item.id: evaluate(item.rule, ctx) for item in scheme.lists}

    def on_list(name: str) -> Verdict:
        if "/" in name:
            other, list_id = name.split("/", 1)
            verdict = list_basis.get(list_id, FALSE) if other == scheme.scheme else other_list(other, list_id)
        else:
            verdict = list_basis.get(name, FALSE)
        return Verdict(verdict.holds, verdict.records, (name,), verdict.grade) if verdict.holds else FALSE

    measure_ctx = RuleContext(day=as_of, active=active, grade=grade, on_list=on_list)
    measure_basis = {m.id: evaluate(m.applies_when, measure_ctx) for m in scheme.measures}
    return State(
        subject=subject,
        scheme=scheme.scheme,
        scheme_version=scheme.version,
        as_of=as_of,
        known_at=known_at,
        initial=scheme.initial,
        score=score,
        grade=grade,
        contributions=tuple(lines),
        lists=tuple(name for name, v in list_basis.items() if v.holds),
        measures=tuple(name for name, v in measure_basis.items() if v.holds),
        list_basis={k: v for k, v in list_basis.items() if v.holds},
        measure_basis={k: v for k, v in measure_basis.items() if v.holds},
        next_grade=_next_grade(scheme, grade, score, active, as_of) if scheme.grades else None,
        kind="list" if scheme.is_list else "points",
    )


def change_days(effects: Sequence[Effect], scheme: Scheme) -> set[dt.date]:
    """Days on which a subject's lists or measures can change: window edges and count-rule edges."""
    days: set[dt.date] = set()
    windows = [rule.count.within for item in scheme.lists for rule in item.rule.walk() if rule.count]
    for effect in effects:
        days.update((effect.valid_from, effect.valid_until))
        days.update(within.after(effect.occurred_on) for within in windows)
    return days
