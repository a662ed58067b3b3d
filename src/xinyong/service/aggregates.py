"""Aggregates: counts over the population for analysts and dashboards, small cells suppressed."""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Callable, Sequence
from typing import Any

from sqlalchemy import Connection, String, func, select

from xinyong import settings
from xinyong.derived.state import population
from xinyong.errors import BadInput, NotFound, did_you_mean
from xinyong.ledger import registry
from xinyong.rules.engine import State
from xinyong.security.access import Action, Principal, Scope, decide
from xinyong.service.answers import AnswerCache
from xinyong.service.door import Area, Door
from xinyong.storage import tables as t


def min_cell() -> int:
    """The smallest cell a published aggregate shows (XINYONG_MIN_CELL, docs/settings.md)."""
    return settings.current().min_cell


def _cell(n: int) -> int | None:
    return n if n >= min_cell() else None


def _rank(conn: Connection, scheme_id: str) -> Callable[[str], int]:
    """A grade's rank in the newest loaded version of the scheme, so dashboards read highest first
    (alphabetical order put A before AAA and D after the empty grade)."""
    versions = registry.scheme_versions(conn, scheme_id)
    scheme = versions[-1].scheme if versions else None
    return lambda grade: scheme.grade_rank(grade or None) if scheme else 0


class Aggregates(Area):
    def __init__(self, door: Door, answers: AnswerCache) -> None:
        super().__init__(door)
        self.answers = answers

    def by_grade(
        self,
        principal: Principal,
        scheme_id: str,
        *,
        as_of: dt.date | None = None,
        by: str | None = None,
    ) -> dict[str, Any]:
        """Subjects per grade (optionally per division too) and per list; small cells suppressed."""
        if by not in (None, "division", "kind"):
            raise BadInput("by: use division or kind")
        day, known = self.door.day(as_of), self.clock.now()
        decide(principal, Action.AGGREGATES_READ)
        with self.door.reading(principal, Action.AGGREGATES_READ) as (conn, act):
            act.audited = False
            if not registry.scheme_versions(conn, scheme_id):
                names = registry.scheme_ids(conn)
                raise NotFound(f"scheme {scheme_id} is not loaded{did_you_mean(scheme_id, names)}")
            grades: Counter[tuple[str, str]] = Counter()
            lists: Counter[str] = Counter()
            for reader in population(conn, day, known):
                result = reader.state(scheme_id, day)
                if not isinstance(result, State):
                    continue
                group = getattr(reader.subject, by) or "" if by else ""
                if result.kind != "list":
                    grades[(group, result.grade or "")] += 1
                lists.update(result.lists)
            rank = _rank(conn, scheme_id)
        return {
            "scheme": scheme_id,
            "as_of": day.isoformat(),
            "by": by,
            "min_cell": min_cell(),
            "grades": [
                {"group": group if by else None, "grade": grade or None, "subjects": _cell(n)}
                for (group, grade), n in sorted(grades.items(), key=lambda item: (item[0][0], rank(item[0][1])))
            ],
            "lists": [{"list": name, "subjects": _cell(n)} for name, n in sorted(lists.items())],
        }

    def records_per_source(self, principal: Principal) -> list[dict[str, Any]]:
        """Records per source and month of recording (counts only; cells under the minimum cell size suppressed
        for an analyst)."""
        scope = decide(principal, Action.AGGREGATES_READ)
        with self.store.read() as conn:
            month = func.substr(func.cast(t.records.c.recorded_at, String), 1, 7)
            rows = conn.execute(
                select(t.records.c.source_id, month.label("month"), func.count())
                .group_by(t.records.c.source_id, month)
                .order_by(month, t.records.c.source_id)
            ).all()
        return [
            {"source": row[0], "month": row[1], "records": row[2] if scope is Scope.ANY else _cell(row[2])}
            for row in rows
        ]

    def population_counts(self, principal: Principal, days: Sequence[dt.date]) -> dict[str, Any]:
        """Subjects per grade per scheme on the last of `days`, and every list's size on each day, as
        known now: one pass over the population per day, for all schemes at once.

        A pass costs about half a millisecond per subject, so the answer is kept against the
        ledger's fingerprint (as check answers are) and computed again only after a change.
        """
        scope = decide(principal, Action.AGGREGATES_READ)
        ordered = sorted(set(days))
        tag = self.answers.tag() if self.answers.enabled else None
        key = ("", "population_counts", ordered[-1])
        cached = self.answers.get(key, tag)
        if cached is None or cached.get("days") != [d.isoformat() for d in ordered]:
            cached = self._count(ordered)
            self.answers.put(key, tag, cached)
        if scope is Scope.ANY:
            return cached
        small, least = {"subjects": None}, min_cell()
        return {
            **cached,
            "grades": [g if g["subjects"] >= least else {**g, **small} for g in cached["grades"]],
            "lists": [x if x["subjects"] >= least else {**x, **small} for x in cached["lists"]],
        }

    def _count(self, ordered: list[dt.date]) -> dict[str, Any]:
        known = self.clock.now()
        grades: Counter[tuple[str, str]] = Counter()
        sizes: list[dict[str, Any]] = []
        with self.store.read() as conn:
            scheme_ids = registry.scheme_ids(conn)
            ranks = {scheme_id: _rank(conn, scheme_id) for scheme_id in scheme_ids}
            for day in ordered:
                counted: Counter[tuple[str, str]] = Counter()
                for reader in population(conn, day, known):
                    for scheme_id in scheme_ids:
                        result = reader.state(scheme_id, day)
                        if not isinstance(result, State):
                            continue
                        counted.update((scheme_id, x) for x in result.lists)
                        if day == ordered[-1] and result.kind != "list":
                            grades[(scheme_id, result.grade or "")] += 1
                sizes.extend(
                    {"day": day.isoformat(), "scheme": k[0], "list": k[1], "subjects": n}
                    for k, n in sorted(counted.items())
                )
        return {
            "days": [d.isoformat() for d in ordered],
            "grades": [
                {"scheme": k[0], "grade": k[1] or None, "subjects": n}
                for k, n in sorted(grades.items(), key=lambda item: (item[0][0], ranks[item[0][0]](item[0][1])))
            ],
            "lists": sizes,
        }
