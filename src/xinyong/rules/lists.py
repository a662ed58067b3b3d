"""List and measure rules: whether a subject is on a list, or a measure applies, and why.

A rule's answer carries its basis (the records and grade that made it true), because an enforcer
is owed the legal basis and a subject is owed the reason; both come from this one evaluation.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from xinyong.rules.effects import Effect
from xinyong.rules.schemes import Rule


@dataclass(frozen=True)
class Verdict:
    holds: bool
    records: frozenset[int] = frozenset()
    lists: tuple[str, ...] = ()
    grade: str | None = None


FALSE = Verdict(False)


@dataclass(frozen=True)
class RuleContext:
    """What a rule may look at: the active effects on the day, the grade, and other lists."""

    day: dt.date
    active: Sequence[Effect]
    grade: str | None
    on_list: Callable[[str], Verdict] = field(default=lambda _list: FALSE)


def evaluate(rule: Rule, ctx: RuleContext) -> Verdict:
    """Evaluate one rule; `all` and `any` combine their children's bases."""
    if rule.any_of is not None:
        codes = set(rule.any_of)
        hits = frozenset(e.record_id for e in ctx.active if e.behaviour in codes)
        return Verdict(bool(hits), hits)
    if rule.count is not None:
        codes = set(rule.count.codes)
        earliest = rule.count.within.before(ctx.day)
        hits = frozenset(
            e.record_id for e in ctx.active if e.behaviour in codes and earliest < e.occurred_on <= ctx.day
        )
        return Verdict(
            len(hits) >= rule.count.at_least,
            hits if len(hits) >= rule.count.at_least else frozenset(),
        )
    if rule.grade_in is not None:
        holds = ctx.grade is not None and ctx.grade in rule.grade_in
        return Verdict(holds, grade=ctx.grade if holds else None)
    if rule.on_list is not None:
        return ctx.on_list(rule.on_list)
    if rule.all is not None:
        verdicts = [evaluate(child, ctx) for child in rule.all]
        if not all(v.holds for v in verdicts):
            return FALSE
        return _combine(verdicts)
    children = [evaluate(child, ctx) for child in rule.any or []]
    holding = [v for v in children if v.holds]
    return _combine(holding) if holding else FALSE


def _combine(verdicts: Sequence[Verdict]) -> Verdict:
    records: frozenset[int] = frozenset().union(*(v.records for v in verdicts))
    lists = tuple(dict.fromkeys(name for v in verdicts for name in v.lists))
    grade = next((v.grade for v in verdicts if v.grade), None)
    return Verdict(True, records, lists, grade)
