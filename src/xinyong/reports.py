"""The credit report: everything about a subject, explained, with how to contest it.

A subject's own report holds every record; the public report of an organisation holds only its
public-class records that have not expired. Which is which is decided here, in one place, from the
behaviours' data classes — not by each interface.
"""

from __future__ import annotations

import datetime as dt
from typing import Any, Literal

from sqlalchemy import Connection

from xinyong import ledger, objections, outputs
from xinyong.effects import active_window
from xinyong.engine import State
from xinyong.errors import Refused
from xinyong.identifiers import mask
from xinyong.registry import scheme_ids, version_in_force
from xinyong.schemes import DATA_CLASS_RANK, Behaviour
from xinyong.state import StateReader

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
            repair_possible_from=outputs.plain(behaviour.effective_repair_after.after(view.occurred_on))
            if behaviour and behaviour.negative
            else None,
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
                    "status",
                    "expires_on",
                )
            }
        records.append(entry)
    schemes_out = []
    for scheme_id, result in states.items():
        item = outputs.state(result)
        if isinstance(result, State):
            item["key_factors"] = _key_factors(result)
            item["title"] = in_force[scheme_id].title
        if audience == "public":
            item = {k: item[k] for k in ("scheme", "scheme_version", "grade", "lists", "measures") if k in item}
            item["lists"] = [x for x in item["lists"] if _public_list(in_force[scheme_id], x)]
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
        "schemes": schemes_out,
        "records": records,
        "how_to_contest": objections.how_to_contest(),
    }
    if audience == "subject":
        report["objections"] = [outputs.objection(o, as_of) for o in objections.listing(conn, subject_id=subject_id)]
    return report


def _definition(schemes: Any, code: str) -> Behaviour | None:
    return next((s.behaviour_by_code[code] for s in schemes if code in s.behaviour_by_code), None)


def _public_list(scheme: Any, list_id: str) -> bool:
    """A list is public when every behaviour that can put a subject on it is public-class."""
    item = scheme.list_by_id[list_id]
    codes = {c for rule in item.rule.walk() for c in (rule.any_of or []) + (rule.count.codes if rule.count else [])}
    return bool(codes) and all(scheme.behaviour_by_code[c].data_class == "public" for c in codes)


def _key_factors(state: State) -> list[dict[str, Any]]:
    """Up to four behaviours that lower the score most, with their net points after caps."""
    totals: dict[str, int] = {}
    for line in state.contributions:
        if line.behaviour is not None:
            totals[line.behaviour] = totals.get(line.behaviour, 0) + line.points
    worst = sorted((points, code) for code, points in totals.items() if points < 0)[:4]
    return [{"behaviour": code, "points": points} for points, code in worst]
