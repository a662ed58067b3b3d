"""What a notice says, as language-neutral facts: the record, its event, the schemes it feeds, the
points, lists and measures, the day it takes effect and until when to object.

Facts are JSON; the text is rendered in the reader's language when it is read or sent
(`notices.text`), so a subject who switches to English reads old notices in English too.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

from xinyong.rules.clock import local_day
from xinyong.rules.effects import active_window
from xinyong.rules.records import (
    CORRECTED,
    DECIDED,
    DISPUTED,
    ENDED,
    REPAIR_APPLIED,
    REPAIR_DECIDED,
    REVOKED,
    Record,
    RecordEvent,
    RecordView,
    view_as_known,
)
from xinyong.rules.schemes import Scheme, SchemeVersion, version_in_force

if TYPE_CHECKING:
    pass


_T = TypeVar("_T")


RECORDED = "recorded"


# The events a subject is told about. Declining a positive record and consent are the subject's
# own acts and are not adverse, so they need no notice.
NOTIFIED = (RECORDED, CORRECTED, REVOKED, ENDED, DISPUTED, DECIDED, REPAIR_APPLIED, REPAIR_DECIDED)


# The one channel with outbox rows. The portal needs none: its inbox is the notices table, so a
# notice is in it from the moment it commits, which is when `deliveries` says it was delivered.
EMAIL = "email"


PORTAL = "portal"


def iso(value: dt.date | dt.datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def _feeds(scheme: Scheme, code: str) -> list[str]:
    """The lists of a scheme whose rules name the behaviour (any_of or count)."""
    found = []
    for item in scheme.lists:
        codes = {c for rule in item.rule.walk() for c in (rule.any_of or []) + (rule.count.codes if rule.count else [])}
        if code in codes:
            found.append(item.id)
    return found


def _measures_following(in_force: dict[str, Scheme], scheme_id: str, list_ids: list[str]) -> list[dict[str, Any]]:
    """Measures of any scheme in force that follow from one of these lists."""
    wanted = {f"{scheme_id}/{x}" for x in list_ids}
    found = []
    for other_id, other in in_force.items():
        for measure in other.measures:
            names = {r.on_list for r in measure.applies_when.walk() if r.on_list}
            local = {n if "/" in n else f"{other_id}/{n}" for n in names}
            if local & wanted:
                found.append(
                    {
                        "scheme": other_id,
                        "id": measure.id,
                        "title": measure.title,
                        "title_zh": measure.title_zh,
                        "implemented_by": measure.implemented_by,
                        "legal_basis": measure.legal_basis,
                        "legal_basis_zh": measure.legal_basis_zh,
                    }
                )
    return found


def schemes_in_force(versions: Sequence[SchemeVersion], day: dt.date, now: dt.datetime) -> dict[str, Scheme]:
    by_scheme: dict[str, list[SchemeVersion]] = {}
    for version in versions:
        by_scheme.setdefault(version.id, []).append(version)
    # Every published version counts, even one loaded "after" a replayed clock's now: a notice
    # describes the rules that are published for the day, not what an earlier instant knew.
    known = max([now, *(v.loaded_at for v in versions)])
    found = {}
    for scheme_id, listed in sorted(by_scheme.items()):
        chosen = version_in_force(listed, day, known)
        if chosen is not None:
            found[scheme_id] = chosen.scheme
    return found


def facts_for(
    record: Record,
    events: Sequence[RecordEvent],
    event: RecordEvent | None,
    subject_kind: str,
    in_force: dict[str, Scheme],
    now: dt.datetime,
    cache: dict[Any, Any] | None = None,
) -> dict[str, Any] | None:
    """What a notice about `event` (None: the record itself) says; None when nothing is adverse.

    A record is adverse when its behaviour, as recorded or as corrected, is negative under some
    scheme in force that applies to the subject's kind. Good news about an adverse record (revoked,
    ended, repaired) is still news the subject is owed.

    `cache` (new records only, no events) shares the per-scheme part between records with the same
    behaviour, dates and subject kind: a bulk import of a million records has a few thousand.
    """
    view = view_as_known(record, events, None)
    key = (view.behaviour, view.occurred_on, local_day(record.recorded_at), subject_kind)
    if cache is not None and not events and key in cache:
        adverse, schemes, holding_until = cache[key]
    else:
        adverse, schemes, holding_until = _scheme_facts(record, view, subject_kind, in_force, cache)
        if cache is not None and not events:
            cache[key] = (adverse, schemes, holding_until)
    if not adverse:
        return None
    return _record_facts(record, view, event, in_force, now, schemes, holding_until)


def _scheme_facts(
    record: Record,
    view: RecordView,
    subject_kind: str,
    in_force: dict[str, Scheme],
    cache: dict[Any, Any] | None = None,
) -> tuple[bool, list[dict[str, Any]], list[dt.date]]:
    applying = {scheme_id: s for scheme_id, s in in_force.items() if s.applies_to_kind(subject_kind)}
    codes = {record.behaviour, view.behaviour}
    if not any(c in s.behaviour_by_code and s.behaviour_by_code[c].negative for s in applying.values() for c in codes):
        return False, [], []  # no notice is owed, so there is nothing to work out
    schemes: list[dict[str, Any]] = []
    holding_until: list[dt.date] = []
    recorded_on = local_day(record.recorded_at)
    for scheme_id, scheme in applying.items():
        behaviour = scheme.behaviour_by_code.get(view.behaviour)
        if behaviour is None:
            continue
        window = active_window(view, scheme)
        notice = behaviour.notice_in(scheme)
        notice_ends = max(view.occurred_on, _cached(cache, ("after", notice, recorded_on), notice.after, recorded_on))
        if behaviour.negative:
            holding_until.append(notice_ends)
        key = ("lists and measures", scheme_id, behaviour.code)
        lists, measures = _cached(cache, key, _lists_and_measures, in_force, scheme_id, behaviour.code)
        schemes.append(
            {
                "scheme": scheme_id,
                "version": scheme.version,
                "title": scheme.title,
                "title_zh": scheme.title_zh,
                "points": behaviour.points,
                "negative": behaviour.negative,
                "lists": lists,
                "measures": measures,
                "takes_effect_on": iso(window.start) if window else None,
                "until": iso(window.until) if window else iso(behaviour.validity.after(view.occurred_on)),
                "notice_ends_on": iso(notice_ends),
                "held": window is None and view.disputed and not view.void,
                "objection_deadline": scheme.objection_deadline,
                "repair_possible_from": iso(behaviour.effective_repair_after.after(view.occurred_on))
                if behaviour.negative
                else None,
            }
        )
    return True, schemes, holding_until


def _cached(cache: dict[Any, Any] | None, key: tuple[Any, ...], compute: Callable[..., _T], *args: Any) -> _T:
    """`compute(*args)`, kept in `cache` under `key` when there is a cache."""
    if cache is None:
        return compute(*args)
    if key not in cache:
        cache[key] = compute(*args)
    found: _T = cache[key]
    return found


def _lists_and_measures(
    in_force: dict[str, Scheme], scheme_id: str, code: str
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The lists a behaviour feeds and the measures that follow; they depend on neither the record
    nor its dates, so `facts_for`'s cache keeps them per behaviour (walking the rules costs most)."""
    scheme = in_force[scheme_id]
    ids = _feeds(scheme, code)
    lists = [
        {
            "id": x,
            "kind": scheme.list_by_id[x].kind,
            "title": scheme.list_by_id[x].title,
            "title_zh": scheme.list_by_id[x].title_zh,
        }
        for x in ids
    ]
    return lists, _measures_following(in_force, scheme_id, ids)


def _record_facts(
    record: Record,
    view: RecordView,
    event: RecordEvent | None,
    in_force: dict[str, Scheme],
    now: dt.datetime,
    schemes: list[dict[str, Any]],
    holding_until: list[dt.date],
) -> dict[str, Any]:
    definition = next(
        (s.behaviour_by_code[view.behaviour] for s in in_force.values() if view.behaviour in s.behaviour_by_code), None
    )
    today = local_day(now)
    # The last day on which an objection still holds the record (filed before it takes effect).
    object_by = min(holding_until) - dt.timedelta(days=1) if holding_until else None
    return {
        "kind": event.kind if event is not None else RECORDED,
        "record": {
            "id": record.id,
            "ref": f"{record.source_id}:{record.document_ref}",
            "source": record.source_id,
            "document_ref": record.document_ref,
            "behaviour": view.behaviour,
            "recorded_behaviour": record.behaviour,
            "title": definition.title if definition else view.behaviour,
            "title_zh": definition.title_zh if definition else None,
            "legal_basis": definition.legal_basis if definition else None,
            "legal_basis_zh": definition.legal_basis_zh if definition else None,
            "data_class": definition.data_class if definition else None,
            "occurred_on": iso(view.occurred_on),
            "amount": str(view.amount) if view.amount is not None else None,
            "recorded_at": iso(record.recorded_at),
            "recorded_by": record.recorded_by,
            "status": _status(view),
        },
        "event": _event_facts(event),
        "schemes": schemes,
        "object_by": iso(object_by) if object_by is not None and object_by >= today else None,
        "objection_deadline": min((s["objection_deadline"] for s in schemes), default=5),
    }


def _status(view: RecordView) -> str:
    if view.void:
        return "revoked"
    if view.disputed:
        return "disputed"
    return "ended" if view.ended_on else "recorded"


def _event_facts(event: RecordEvent | None) -> dict[str, Any] | None:
    if event is None:
        return None
    values = {
        "id": event.id,
        "kind": event.kind,
        "at": iso(event.recorded_at),
        "actor": event.actor,
        "reason": event.reason,
        "behaviour": event.behaviour,
        "occurred_on": iso(event.occurred_on),
        "amount": str(event.amount) if event.amount is not None else None,
        "effective_on": iso(event.effective_on),
        "due_on": iso(event.due_on),
        "outcome": event.outcome,
        "refers_to": event.refers_to,
        "evidence": event.evidence,
    }
    return {k: v for k, v in values.items() if v is not None}


def facts_json(facts: dict[str, Any]) -> str:
    return json.dumps(facts, ensure_ascii=False, sort_keys=True)


def takes_effect_day(facts: dict[str, Any]) -> dt.date | None:
    """The first day the record counts under any scheme (a column, so the inbox can sort on it)."""
    days = [dt.date.fromisoformat(s["takes_effect_on"]) for s in facts["schemes"] if s["takes_effect_on"]]
    return min(days, default=None)


def object_by_day(facts: dict[str, Any]) -> dt.date | None:
    return dt.date.fromisoformat(facts["object_by"]) if facts["object_by"] else None
