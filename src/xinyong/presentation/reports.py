"""The credit report: everything about a subject, explained, with how to contest it.

A subject's own report holds every record; the public report of an organisation holds only its
public-class records that have not expired. Which is which is decided here, in one place, from the
behaviours' data classes — not by each interface.
"""

from __future__ import annotations

import datetime as dt
from typing import Any, Literal

from sqlalchemy import Connection

from xinyong.derived.state import StateReader
from xinyong.due_process import objections, repairs
from xinyong.errors import Refused
from xinyong.ledger import records as ledger
from xinyong.ledger.registry import scheme_ids
from xinyong.presentation import outputs
from xinyong.rules.effects import active_window
from xinyong.rules.engine import State
from xinyong.rules.identifiers import mask
from xinyong.rules.records import RecordEvent
from xinyong.rules.schemes import DATA_CLASS_RANK, Behaviour, how_to_contest, version_in_force

Audience = Literal["subject", "public"]


def build_report(
    conn: Connection,
    subject_id: str,
    *,
    as_of: dt.date,
    known_at: dt.datetime,
    audience: Audience = "subject",
) -> dict[str, Any]:
    reader = StateReader.open(conn, subject_id, known_at)
    subject = reader.subject
    if audience == "public" and subject.kind != "organisation":
        raise Refused("public reports exist for organisations only; a person's report is theirs alone")
    in_force = {}
    for scheme_id in scheme_ids(conn):
        version = version_in_force(reader.versions(scheme_id), as_of, known_at)
        if version is not None:
            in_force[scheme_id] = version.scheme
    states = {scheme_id: reader.state(scheme_id, as_of) for scheme_id in in_force}
    records = []
    for found in ledger.subject_histories(conn, subject_id):
        view = found.view(known_at)
        if found.record.recorded_at > known_at:
            continue
        behaviour = _definition(in_force.values(), view.behaviour)
        data_class = behaviour.data_class if behaviour else "restricted"
        windows = {
            scheme_id: window
            for scheme_id, scheme in in_force.items()
            if (window := active_window(view, scheme)) is not None
        }
        expires_on = max((w.until for w in windows.values()), default=None)
        if audience == "public" and (
            DATA_CLASS_RANK[data_class] > 0 or view.void or expires_on is None or expires_on <= as_of
        ):
            continue
        entry = outputs.history(found, known_at)
        entry.update(
            title=behaviour.title if behaviour else view.behaviour,
            title_zh=behaviour.title_zh if behaviour else None,
            legal_basis=behaviour.legal_basis if behaviour else None,
            legal_basis_zh=behaviour.legal_basis_zh if behaviour else None,
            data_class=data_class,
            windows={
                scheme_id: {
                    "points": w.points,
                    "start": w.start.isoformat(),
                    "until": w.until.isoformat(),
                    "active": w.active_on(as_of),
                }
                for scheme_id, w in windows.items()
            },
            expires_on=outputs.plain(expires_on),
            object_by=outputs.plain(_object_by(windows.values(), as_of, view.void or view.disputed)),
            repair_possible_from=outputs.plain(repairs.possible_from(conn, view)),
            expired=expires_on is not None and expires_on <= as_of,
        )
        if audience == "public":
            entry = {
                k: entry[k]
                for k in (
                    "ref",
                    "source",
                    "behaviour",
                    "title",
                    "title_zh",
                    "occurred_on",
                    "legal_basis",
                    "legal_basis_zh",
                    "status",
                    "expires_on",
                )
            }
        records.append(entry)
    schemes_out = []
    for scheme_id, result in states.items():
        item = outputs.state(result)
        item["title"] = in_force[scheme_id].title
        item["title_zh"] = in_force[scheme_id].title_zh
        if isinstance(result, State):
            item["key_factors"] = _key_factors(result, in_force[scheme_id])
            item["restore"] = _restore(result, records)
            item["list_details"] = [_list_detail(in_force[scheme_id], x, result) for x in result.lists]
            item["measure_details"] = [_measure_detail(in_force[scheme_id], x, result) for x in result.measures]
            if result.kind == "list":
                item["key_factors"], item["restore"] = [], None
                item["list_status"] = [
                    _list_status(in_force[scheme_id], x.id, result) for x in in_force[scheme_id].lists
                ]
        if audience == "public":
            kept = (
                "scheme",
                "scheme_version",
                "kind",
                "title",
                "title_zh",
                "grade",
                "lists",
                "measures",
                "list_details",
            )
            item = {k: item[k] for k in (*kept, "list_status") if k in item}
            item["lists"] = [x for x in item.get("lists", []) if in_force[scheme_id].list_is_public(x)]
            item["list_details"] = [
                {k: v for k, v in x.items() if k != "records"}
                for x in item.get("list_details", [])
                if x["id"] in item["lists"]
            ]
            if "list_status" in item:
                public = in_force[scheme_id].list_is_public
                item["list_status"] = [{**x, "records": []} for x in item["list_status"] if public(x["id"])]
        schemes_out.append(item)
    report: dict[str, Any] = {
        "audience": audience,
        "subject": {
            "id": subject.id
            if audience == "subject" or subject.kind == "organisation"
            else mask(subject.id, subject.kind),
            "kind": subject.kind,
            "name": subject.name,
            "legal_representative": subject.legal_representative,
            "division": subject.division,
        },
        "as_of": as_of.isoformat(),
        "known_at": known_at.isoformat(),
        "timezone": next((s.timezone for s in in_force.values()), "Asia/Shanghai"),
        "schemes": schemes_out,
        "records": records,
        "how_to_contest": how_to_contest(),
        "contest_link": outputs.contest_link([r["id"] for r in records if "id" in r and r["status"] == "recorded"]),
        "objection_deadline": min((s.objection_deadline for s in in_force.values()), default=5),
    }
    if audience == "subject":
        report["objections"] = [
            outputs.objection(o, as_of)
            for o in objections.listing(conn, subject_id=subject_id)
            if o.filed_at <= known_at
        ]
        report["repairs"] = [
            r.as_dict(as_of) for r in repairs.listing(conn, subject_id=subject_id) if r.applied_at <= known_at
        ]
    return report


def _object_by(windows: Any, as_of: dt.date, settled: bool) -> dt.date | None:
    """The last day an objection still holds the record's effect (the day before it first takes
    effect), or None once it has taken effect or is revoked or already disputed."""
    starts = [w.start for w in windows if w.start > as_of]
    return None if settled or not starts else min(starts) - dt.timedelta(days=1)


def _definition(schemes: Any, code: str) -> Behaviour | None:
    return next((s.behaviour_by_code[code] for s in schemes if code in s.behaviour_by_code), None)


def _key_factors(state: State, scheme: Any) -> list[dict[str, Any]]:
    """Up to four behaviours that lower the score most, with their net points after caps."""
    totals: dict[str, int] = {}
    records: dict[str, list[int]] = {}
    for line in state.contributions:
        if line.behaviour is not None:
            totals[line.behaviour] = totals.get(line.behaviour, 0) + line.points
            if line.record is not None:
                records.setdefault(line.behaviour, []).append(line.record)
    worst = sorted((points, code) for code, points in totals.items() if points < 0)[:4]
    factors = []
    for points, code in worst:
        behaviour = scheme.behaviour_by_code.get(code)
        factors.append(
            {
                "behaviour": code,
                "title": behaviour.title if behaviour else code,
                "title_zh": behaviour.title_zh if behaviour else None,
                "points": points,
                "records": records.get(code, []),
            }
        )
    return factors


def _restore(state: State, records: list[dict[str, Any]]) -> dict[str, Any] | None:
    """What would restore the next grade up, and when: the points needed, the day expiries alone
    reach it, and the negative records that may be repaired earlier (with the day they may be)."""
    if state.next_grade is None:
        return None
    by_id = {r["id"]: r for r in records if "id" in r}
    repairable = [
        {
            "record": line.record,
            "behaviour": line.behaviour,
            "points": line.points,
            "until": outputs.plain(line.until),
            "repair_possible_from": by_id[line.record].get("repair_possible_from"),
        }
        for line in state.contributions
        if line.kind == "record" and line.points < 0 and line.record in by_id
    ]
    return {
        "grade": state.next_grade.grade,
        "min": state.next_grade.min,
        "points_needed": state.next_grade.points_needed,
        "by_expiry_on": outputs.plain(state.next_grade.reachable_on),
        "repairable": repairable,
    }


def _list_detail(scheme: Any, list_id: str, state: State) -> dict[str, Any]:
    item = scheme.list_by_id[list_id]
    verdict = state.list_basis[list_id]
    return {
        "id": list_id,
        "kind": item.kind,
        "title": item.title,
        "title_zh": item.title_zh,
        "records": sorted(verdict.records),
        "grade": verdict.grade,
    }


def _list_status(scheme: Any, list_id: str, state: State) -> dict[str, Any]:
    """One list of a list scheme, on or not on: what such a scheme says instead of a score."""
    item = scheme.list_by_id[list_id]
    verdict = state.list_basis.get(list_id)
    return {
        "id": list_id,
        "kind": item.kind,
        "title": item.title,
        "title_zh": item.title_zh,
        "on": verdict is not None,
        "records": sorted(verdict.records) if verdict else [],
    }


def _measure_detail(scheme: Any, measure_id: str, state: State) -> dict[str, Any]:
    measure = scheme.measure_by_id[measure_id]
    verdict = state.measure_basis[measure_id]
    return {
        "id": measure_id,
        "kind": measure.kind,
        "title": measure.title,
        "title_zh": measure.title_zh,
        "implemented_by": measure.implemented_by,
        "legal_basis": measure.legal_basis,
        "legal_basis_zh": measure.legal_basis_zh,
        "lists": list(verdict.lists),
        "records": sorted(verdict.records),
        "grade": verdict.grade,
    }


# What a later event does to a report that showed its record: the kinds of change the public
# verification page may name (DESIGN.md, "reports anyone can verify").
CHANGE_KINDS = ("revoked", "corrected", "ended")


def change_kind(event: RecordEvent) -> str | None:
    """`revoked`, `corrected` or `ended` for an event that changes what a report said of its record
    (an objection decided as revoked or corrected counts as that), None for any other."""
    if event.kind == "decided":
        return event.outcome if event.outcome in ("revoked", "corrected") else None
    return event.kind if event.kind in CHANGE_KINDS else None


def changes_since(
    conn: Connection, subject_id: str, *, as_of: dt.date, known_at: dt.datetime, audience: Audience, now: dt.datetime
) -> list[dict[str, str]]:
    """What today's knowledge changes in the records a report (this question, for this audience)
    showed: each record revoked, corrected or ended by an event recorded after `known_at`, named
    as the report names it, in the report's order. The report is asked again as it was — the
    ledger is append-only, so the same records — rather than kept."""
    shown = [
        r["ref"] for r in build_report(conn, subject_id, as_of=as_of, known_at=known_at, audience=audience)["records"]
    ]
    histories = {f"{h.record.source_id}:{h.record.document_ref}": h for h in ledger.subject_histories(conn, subject_id)}
    changes: list[dict[str, str]] = []
    for ref in shown:
        kinds = {
            kind
            for event in histories[ref].events
            if known_at < event.recorded_at <= now and (kind := change_kind(event)) is not None
        }
        changes.extend({"record": ref, "kind": kind} for kind in sorted(kinds))
    return changes
