"""Domain results as plain JSON-ready data, shaped once for the command line and the API alike."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import asdict, is_dataclass
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from xinyong.derived.state import NoState
from xinyong.errors import XinyongError
from xinyong.rules.engine import Contribution, State

if TYPE_CHECKING:  # shaped here, made elsewhere: a check need not load due process to print
    from xinyong.derived.checks import CheckAnswer
    from xinyong.due_process.objections import ObjectionStatus
    from xinyong.ledger.records import History


# Where a client files an objection: the machine-readable link beside every human "how to contest".
OBJECTIONS_PATH = "/v1/objections"


def contest_link(records: Sequence[int]) -> dict[str, Any]:
    """How a client contests, as data: the endpoint, its method and the records it would name."""
    return {"method": "POST", "href": OBJECTIONS_PATH, "records": list(records)}


def plain(value: Any) -> Any:
    """Dates as ISO text, decimals as strings (exact), dataclasses and tuples as dicts and lists."""
    if isinstance(value, dt.datetime):
        return value.isoformat()
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    if is_dataclass(value) and not isinstance(value, type):
        return {k: plain(v) for k, v in asdict(value).items()}
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [plain(v) for v in value]
    return value


def contribution(line: Contribution) -> dict[str, Any]:
    return {
        "kind": line.kind,
        "record": line.record,
        "behaviour": line.behaviour,
        "points": line.points,
        "start": plain(line.start),
        "until": plain(line.until),
    }


def state(result: State | NoState) -> dict[str, Any]:
    """The score JSON of DESIGN.md: contributions' points sum exactly to score − initial."""
    base = {
        "subject": result.subject,
        "scheme": result.scheme,
        "scheme_version": result.scheme_version,
        "as_of": plain(result.as_of),
        "known_at": plain(result.known_at),
    }
    if isinstance(result, NoState):
        return {
            **base,
            "kind": None,
            "score": None,
            "grade": None,
            "initial": None,
            "contributions": [],
            "lists": [],
            "measures": [],
            "next_grade": None,
            "no_state_reason": result.reason,
        }
    listed = result.kind == "list"
    return {
        **base,
        "kind": result.kind,
        "score": result.shown_score,
        "grade": None if listed else result.grade,
        "initial": None if listed else result.initial,
        "contributions": [contribution(line) for line in result.contributions],
        "lists": list(result.lists),
        "measures": list(result.measures),
        "list_basis": {k: sorted(v.records) for k, v in result.list_basis.items()},
        "next_grade": plain(result.next_grade),
    }


def check(answer: CheckAnswer) -> dict[str, Any]:
    return {
        "subject": answer.subject,
        "measure": answer.measure,
        "title": answer.title,
        "implemented_by": answer.implemented_by,
        "as_of": plain(answer.as_of),
        "known_at": plain(answer.known_at),
        "applies": answer.applies,
        "since": plain(answer.since),
        "basis": {
            "lists": list(answer.lists),
            "grade": answer.grade,
            "records": list(answer.records),
        },
        "legal_basis": answer.legal_basis,
        "contest": answer.contest,
        "contest_link": contest_link(answer.records),
    }


def batch_answers(
    measure: str, day: dt.date, sent: Sequence[str], answers: Sequence[dict[str, Any] | XinyongError]
) -> dict[str, Any]:
    """A batch check's answers in the order sent, each as a single check's with the id as sent
    (`subject`), or that id's own `error` (`code`, `message`)."""
    shown: list[dict[str, Any]] = []
    for subject, answer in zip(sent, answers, strict=True):
        if isinstance(answer, XinyongError):
            shown.append({"subject": subject, "error": {"code": answer.code, "message": answer.message}})
        else:
            shown.append({**answer, "subject": subject})
    return {"measure": measure, "as_of": plain(day), "answers": shown}


def history(found: History, known_at: dt.datetime | None = None) -> dict[str, Any]:
    record, view = found.record, found.view(known_at)
    return {
        "id": record.id,
        "ref": f"{record.source_id}:{record.document_ref}",
        "source": record.source_id,
        "document_ref": record.document_ref,
        "subject": record.subject_id,
        "behaviour": view.behaviour,
        "occurred_on": plain(view.occurred_on),
        "amount": plain(view.amount),
        "note": record.note,
        "recorded_at": plain(record.recorded_at),
        "recorded_by": record.recorded_by,
        "status": "revoked" if view.void else "disputed" if view.disputed else "ended" if view.ended_on else "recorded",
        "disputed": view.disputed,
        "declined": view.declined,
        "ended_on": plain(view.ended_on),
        "events": [
            {
                "id": None,
                "kind": "recorded",
                "at": plain(record.recorded_at),
                "actor": record.recorded_by,
            }
        ]
        + [
            {
                k: v
                for k, v in {
                    "id": e.id,
                    "kind": e.kind,
                    "at": plain(e.recorded_at),
                    "actor": e.actor,
                    "reason": e.reason,
                    "behaviour": e.behaviour,
                    "occurred_on": plain(e.occurred_on),
                    "amount": plain(e.amount),
                    "effective_on": plain(e.effective_on),
                    "due_on": plain(e.due_on),
                    "outcome": e.outcome,
                    "refers_to": e.refers_to,
                    "evidence": e.evidence,
                }.items()
                if v is not None
            }
            for e in found.events
        ],
    }


def objection(status: ObjectionStatus, today: dt.date) -> dict[str, Any]:
    return {
        "id": status.id,
        "record": status.record_id,
        "subject": status.subject_id,
        "filed_at": plain(status.filed_at),
        "filed_by": status.filed_by,
        "filed_as": status.filed_as,
        "reason": status.reason,
        "deadline": plain(status.due_on),
        "decided_at": plain(status.decided_at),
        "outcome": status.outcome,
        "decision_reason": status.decision_reason,
        "decided_by": status.decided_by,
        "overdue": status.overdue(today),
    }
