"""The policy lab: what a draft scheme would change, two places' schemes side by side, and how
fairly a scheme treats groups.

Analysts get the figures with every cell under the minimum cell size withheld; the operator
(administrator) gets them exact, and alone may write the per-subject before/after file
(`Action.LAB_SUBJECTS`). Each run is one audit entry, naming the scheme, the day and the groups.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from xinyong import settings
from xinyong.errors import BadInput
from xinyong.rules.schemes import parse_scheme
from xinyong.security.access import Action, Principal, Scope, decide
from xinyong.service.door import Area


def _engine(name: str, spark_master: str | None) -> Any:
    from xinyong.derived import batch

    return batch.engine_named(name, spark_master)


class Lab(Area):
    def simulate(
        self,
        principal: Principal,
        text: str,
        *,
        where: str = "draft",
        as_of: dt.date | None = None,
        known_at: dt.datetime | None = None,
        by: Sequence[str] = (),
        engine: str = "duckdb",
        spark_master: str | None = None,
        out: Path | None = None,
        lang: str | None = None,
    ) -> dict[str, Any]:
        """The whole population on D as known at K under the scheme's version in force and under
        the draft (`text`, validated like any scheme, never loaded), and what changes."""
        from xinyong.derived.lab import groups, impact, populations

        day, known = self.door.day(as_of), self.door.known(known_at)
        with self.door.auditing(principal, Action.LAB_AGGREGATES, "policy simulation") as act:
            scope = decide(principal, Action.LAB_AGGREGATES)
            if out is not None:
                decide(principal, Action.LAB_SUBJECTS)
            fields = groups.check_fields(by)
            draft = parse_scheme(text, where=where)
            act.detail.update(scheme=draft.scheme, draft=draft.version, as_of=day.isoformat(), by=fields)
            population = populations.evaluate(
                self.store, _engine(engine, spark_master), draft, as_of=day, known_at=known, where=where
            )
            table = groups.group_table(self.store, fields, day) if fields else None
            report = {
                **impact.impact(population, table),
                "as_of": day.isoformat(),
                "known_at": known.isoformat(),
                "engine": engine,
                "by": fields,
            }
            if out is not None:
                report["out"] = self._write(out, population, table, report, lang)
                act.detail.update(out=str(out))
        return report if scope is Scope.ANY else impact.published(report, settings.current().min_cell)

    @staticmethod
    def _write(out: Path, population: Any, table: Any, report: dict[str, Any], lang: str | None) -> dict[str, str]:
        """Per-subject before/after as Parquet and the HTML report with its charts, in `out`."""
        import pyarrow.parquet as pq

        from xinyong.derived.lab import impact
        from xinyong.presentation import lab as pages

        if out.exists() and not out.is_dir():
            raise BadInput(f"--out: {out} is a file; give a folder")
        out.mkdir(parents=True, exist_ok=True)
        rows = impact.joined(population, table)
        subjects = out / "subjects.parquet"
        pq.write_table(rows, subjects)
        page = pages.simulation_html(report, impact.score_histogram(rows), lang)
        return {"subjects": str(subjects), "report": str(pages.write_report(out, page))}

    def fairness(
        self,
        principal: Principal,
        scheme: str,
        *,
        by: str,
        as_of: dt.date | None = None,
        known_at: dt.datetime | None = None,
        engine: str = "duckdb",
        spark_master: str | None = None,
    ) -> dict[str, Any]:
        """Per group of `by`: rates of every list and measure against the most favoured group's,
        with 95% bootstrap intervals and the four-fifths flag."""
        from xinyong.derived.lab import fairness, groups, populations

        day, known = self.door.day(as_of), self.door.known(known_at)
        with self.door.auditing(principal, Action.LAB_AGGREGATES, "fairness audit") as act:
            scope = decide(principal, Action.LAB_AGGREGATES)
            (field,) = groups.check_fields([by])
            act.detail.update(scheme=scheme, as_of=day.isoformat(), by=field)
            version, state = populations.evaluate_version(
                self.store, _engine(engine, spark_master), scheme, as_of=day, known_at=known
            )
            found = fairness.fairness(version, state, groups.group_table(self.store, [field], day))
        least = None if scope is Scope.ANY else settings.current().min_cell
        report: dict[str, Any] = {
            "scheme": scheme,
            "version": version.version,
            "as_of": day.isoformat(),
            "known_at": known.isoformat(),
            "by": field,
            "too_few_below": fairness.TOO_FEW,
            "flag_below": fairness.FOUR_FIFTHS,
            "resamples": fairness.RESAMPLES,
            "seed": fairness.SEED,
            "groups": fairness.published(found, least),
        }
        if least is not None:
            report["min_cell"] = least
        return report

    def compare(
        self,
        principal: Principal,
        scheme_a: str,
        scheme_b: str,
        *,
        as_of: dt.date | None = None,
        known_at: dt.datetime | None = None,
        engine: str = "duckdb",
        spark_master: str | None = None,
    ) -> dict[str, Any]:
        """Two schemes rule by rule (behaviours matched by code) and population by population (the
        subjects with state under both: grade against grade, lists of one kind in one place only)."""
        from xinyong.derived.lab import compare, populations

        day, known = self.door.day(as_of), self.door.known(known_at)
        with self.door.auditing(principal, Action.LAB_AGGREGATES, "scheme comparison") as act:
            scope = decide(principal, Action.LAB_AGGREGATES)
            if scheme_a == scheme_b:
                raise BadInput(f"compare: give two different schemes, not {scheme_a} twice")
            act.detail.update(schemes=[scheme_a, scheme_b], as_of=day.isoformat())
            versions, state = populations.evaluate_versions(
                self.store, _engine(engine, spark_master), [scheme_a, scheme_b], as_of=day, known_at=known
            )
            a, b = versions[scheme_a], versions[scheme_b]
            found = compare.populations(a, b, state)
        report: dict[str, Any] = {
            "a": {"scheme": a.scheme, "version": a.version},
            "b": {"scheme": b.scheme, "version": b.version},
            "as_of": day.isoformat(),
            "known_at": known.isoformat(),
            "rules": compare.rules(a, b),
            **found,
        }
        return report if scope is Scope.ANY else compare.published(report, settings.current().min_cell)
