"""Notices: nobody is affected by a record they were not told about.

When a record with an adverse effect under any scheme is recorded, corrected, revoked, disputed,
decided, ended or repaired, its subject gets a notice: what was recorded, by whom, under which
legal basis, the points, lists and measures it feeds, the day it takes effect, and how and until
when to object. Notices are written in the same transaction as the ledger event that caused them
(so a committed event always has its notice). The portal inbox is the notices table itself, so a
committed notice is in the subject's portal at once; when the subject has an e-mail address, an
outbox row is written in the same transaction too (so a committed notice always has its e-mail
queued; `outbox.py` sends it).

A notice keeps language-neutral facts (JSON); the text is rendered in the reader's language when
it is read or sent, so a subject who switches to English reads old notices in English too.

Generation is keyed by (record, event): running it twice for the same event writes nothing twice.
Imports call `for_new_records` once per chunk, so a file costs two bulk inserts, not a query per
record. The bulk import goes further (`write_fresh`): it renders one facts text per behaviour,
occurrence day and subject kind, stores it once as a template (`notice_templates`), and each
notice keeps only the record's own values that go into it; reading puts the text together
(`facts_text`), byte for byte what the row-wise path stores.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import uuid
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from decimal import Decimal
from email.utils import parseaddr
from typing import TYPE_CHECKING, Any, TypeVar

from sqlalchemy import (
    Column,
    ColumnElement,
    Connection,
    Date,
    DateTime,
    MetaData,
    Select,
    String,
    Table,
    and_,
    cast,
    func,
    literal,
    select,
    update,
)

from xinyong import settings
from xinyong.derived import derivation
from xinyong.errors import BadInput, NotFound
from xinyong.i18n import N_, Text, language
from xinyong.ledger.registry import SchemeVersion, existing_subjects, scheme_versions, version_in_force
from xinyong.rules.clock import from_storage, local_day, to_storage
from xinyong.rules.effects import (
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
    active_window,
    view_as_known,
)
from xinyong.rules.schemes import Scheme
from xinyong.storage import store as t

if TYPE_CHECKING:
    import pyarrow as pa

_T = TypeVar("_T")
RECORDED = "recorded"
# The events a subject is told about. Declining a positive record and consent are the subject's
# own acts and are not adverse, so they need no notice.
NOTIFIED = (RECORDED, CORRECTED, REVOKED, ENDED, DISPUTED, DECIDED, REPAIR_APPLIED, REPAIR_DECIDED)
# The one channel with outbox rows. The portal needs none: its inbox is the notices table, so a
# notice is in it from the moment it commits, which is when `deliveries` says it was delivered.
EMAIL = "email"
PORTAL = "portal"
# Between the values of a templated notice's `fill`: they are JSON text, which never holds it raw.
FILL_SEPARATOR = "\x1f"


@dataclass(frozen=True)
class Contact:
    subject_id: str
    email: str | None
    language: str


@dataclass(frozen=True)
class Notice:
    id: int
    subject_id: str
    record_id: int
    event_id: int | None
    kind: str
    created_at: dt.datetime
    takes_effect_on: dt.date | None
    object_by: dt.date | None
    facts: dict[str, Any]
    read_at: dt.datetime | None


@dataclass(frozen=True)
class Rendered:
    """A notice as text in one language: a subject line and a plain-text body."""

    language: str
    subject: str
    body: str


# --- facts ------------------------------------------------------------------------------------


def _iso(value: dt.date | dt.datetime | None) -> str | None:
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
                    }
                )
    return found


def _in_force(versions: Sequence[SchemeVersion], day: dt.date, now: dt.datetime) -> dict[str, Scheme]:
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
                "takes_effect_on": _iso(window.start) if window else None,
                "until": _iso(window.until) if window else _iso(behaviour.validity.after(view.occurred_on)),
                "notice_ends_on": _iso(notice_ends),
                "held": window is None and view.disputed and not view.void,
                "objection_deadline": scheme.objection_deadline,
                "repair_possible_from": _iso(behaviour.effective_repair_after.after(view.occurred_on))
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
            "data_class": definition.data_class if definition else None,
            "occurred_on": _iso(view.occurred_on),
            "amount": str(view.amount) if view.amount is not None else None,
            "recorded_at": _iso(record.recorded_at),
            "recorded_by": record.recorded_by,
            "status": _status(view),
        },
        "event": _event_facts(event),
        "schemes": schemes,
        "object_by": _iso(object_by) if object_by is not None and object_by >= today else None,
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
        "at": _iso(event.recorded_at),
        "actor": event.actor,
        "reason": event.reason,
        "behaviour": event.behaviour,
        "occurred_on": _iso(event.occurred_on),
        "amount": str(event.amount) if event.amount is not None else None,
        "effective_on": _iso(event.effective_on),
        "due_on": _iso(event.due_on),
        "outcome": event.outcome,
        "refers_to": event.refers_to,
        "evidence": event.evidence,
    }
    return {k: v for k, v in values.items() if v is not None}


# --- writing ----------------------------------------------------------------------------------


def contacts_of(conn: Connection, subject_ids: Iterable[str]) -> dict[str, Contact]:
    wanted = list(dict.fromkeys(subject_ids))
    found: dict[str, Contact] = {}
    for start in range(0, len(wanted), 500):
        query = select(t.contacts).where(t.contacts.c.subject_id.in_(wanted[start : start + 500]))
        for row in conn.execute(query):
            found[row.subject_id] = Contact(row.subject_id, row.email, row.language)
    return found


def contact_of(conn: Connection, subject_id: str) -> Contact:
    """The subject's contact, or the default (portal only, the default language)."""
    return contacts_of(conn, [subject_id]).get(subject_id) or Contact(subject_id, None, language(None))


def set_contact(conn: Connection, subject_id: str, *, email: str | None, lang: str | None, now: dt.datetime) -> Contact:
    """Record how to reach a subject; notices already queued keep the address they were queued with."""
    if not existing_subjects(conn, [subject_id]):
        raise NotFound(f"subject {subject_id} is not registered")
    if email is not None:
        email = email.strip() or None
    if email is not None and ("@" not in parseaddr(email)[1] or parseaddr(email)[1] != email):
        raise BadInput(f"--email: {email!r} is not an e-mail address")
    previous = contacts_of(conn, [subject_id]).get(subject_id)
    chosen = language(lang) if lang else previous.language if previous else language(None)
    values = {"email": email, "language": chosen, "updated_at": to_storage(now)}
    if previous is None:
        conn.execute(t.contacts.insert().values(subject_id=subject_id, **values))
    else:
        conn.execute(update(t.contacts).where(t.contacts.c.subject_id == subject_id).values(**values))
    return Contact(subject_id, email, chosen)


def _text(facts: dict[str, Any]) -> str:
    return json.dumps(facts, ensure_ascii=False, sort_keys=True)


def _takes_effect_on(facts: dict[str, Any]) -> dt.date | None:
    """The first day the record counts under any scheme (a column, so the inbox can sort on it)."""
    days = [dt.date.fromisoformat(s["takes_effect_on"]) for s in facts["schemes"] if s["takes_effect_on"]]
    return min(days, default=None)


def _object_by(facts: dict[str, Any]) -> dt.date | None:
    return dt.date.fromisoformat(facts["object_by"]) if facts["object_by"] else None


def _domain() -> str:
    address = parseaddr(settings.SMTP_FROM.value() or "")[1]
    return address.rsplit("@", 1)[1] if "@" in address else "xinyong.invalid"


def _written(conn: Connection, rows: Sequence[dict[str, Any]]) -> dict[str, int]:
    """The ids of the notices already written under these rows' keys, by key: looked up with their
    records' ids, which lead the one index that holds the keys."""
    found: dict[str, int] = {}
    for start in range(0, len(rows), 500):
        part = rows[start : start + 500]
        query = select(t.notices.c.id, t.notices.c.key).where(
            t.notices.c.record_id.in_(sorted({r["record_id"] for r in part})),
            t.notices.c.key.in_([r["key"] for r in part]),
        )
        found.update((row.key, int(row.id)) for row in conn.execute(query))
    return found


def _write(
    conn: Connection,
    items: Sequence[tuple[Record, RecordEvent | None, dict[str, Any]]],
    now: dt.datetime,
    *,
    fresh: bool = False,
) -> list[int]:
    """Insert notices and their e-mail outbox rows (for subjects with an address).

    `fresh`: the records were written in this transaction, so no notice can exist for them yet."""
    if not items:
        return []
    stamp = to_storage(now)
    rows = [
        {
            "key": f"{record.id}:{event.id if event is not None else RECORDED}",
            "subject_id": record.subject_id,
            "record_id": record.id,
            "event_id": event.id if event is not None else None,
            "kind": facts["kind"],
            "created_at": stamp,
            "takes_effect_on": _takes_effect_on(facts),
            "object_by": _object_by(facts),
            "facts": _text(facts),
        }
        for record, event, facts in items
    ]
    if not fresh:
        existing = _written(conn, rows)
        rows = [r for r in rows if r["key"] not in existing]
    if not rows:
        return []
    # A plain executemany, then the ids by key: RETURNING in parameter order makes SQLite insert
    # row by row, which would double the cost of a bulk import.
    conn.execute(t.notices.insert(), rows)
    by_key = _written(conn, rows)
    ids = [by_key[r["key"]] for r in rows]
    contacts = contacts_of(conn, {r["subject_id"] for r in rows})
    domain = _domain()
    deliveries = []
    for notice_id, row in zip(ids, rows, strict=True):
        contact = contacts.get(row["subject_id"])
        if contact is None or not contact.email:
            continue
        deliveries.append(
            {
                "notice_id": notice_id,
                "channel": EMAIL,
                "address": contact.email,
                "message_id": f"<notice-{notice_id}.{EMAIL}.{uuid.uuid4().hex[:16]}@{domain}>",
                "state": "pending",
                "attempts": 0,
                "next_attempt_at": stamp,
            }
        )
    if deliveries:
        conn.execute(t.outbox.insert(), deliveries)
    return ids


def for_new_records(
    conn: Connection,
    records: Sequence[Record],
    now: dt.datetime,
    versions: Sequence[SchemeVersion] | None = None,
    *,
    fresh: bool = True,
) -> list[int]:
    """Notices for records just recorded (an import chunk): one query for kinds, two bulk inserts.

    `fresh=False` first skips records that already have their notice (for callers that may retry)."""
    if not records:
        return []
    in_force = _in_force(versions if versions is not None else scheme_versions(conn), local_day(now), now)
    kinds = {s.id: s.kind for s in existing_subjects(conn, (r.subject_id for r in records)).values()}
    items = []
    cache: dict[Any, Any] = {}
    for record in records:
        facts = facts_for(record, (), None, kinds.get(record.subject_id, "person"), in_force, now, cache)
        if facts is not None:
            items.append((record, None, facts))
    return _write(conn, items, now, fresh=fresh)


def for_record_ids(conn: Connection, ids: Sequence[int], now: dt.datetime, *, chunk: int = 5000) -> int:
    """Notices for records just written by another path (the bulk importer), read back in chunks;
    call it in the writing transaction. Idempotent; returns how many notices were written."""
    versions = scheme_versions(conn)
    written = 0
    for start in range(0, len(ids), chunk):
        part = list(ids[start : start + chunk])
        query = (
            select(t.records).where(t.records.c.id.in_(part))
            if len(part) < 1000
            else (select(t.records).where(t.records.c.id >= min(part), t.records.c.id <= max(part)))
        )
        wanted = set(part)
        found = [derivation.record_from_row(row) for row in conn.execute(query) if row.id in wanted]
        written += len(for_new_records(conn, found, now, versions, fresh=False))
    return written


# --- notices of a bulk import, set-based --------------------------------------------------------

# The notice of a fresh record differs from that of another record of the same import with the same
# behaviour, occurrence day and subject kind only in the record's own fields. So the bulk path
# renders one facts text per such key, for a record made of stand-ins, cuts it where they stand, and
# has the database paste each record's values in: a million records cost a few thousand renderings
# by `facts_for` (the very code of the row-wise path) and a handful of set-based statements. Text
# stand-ins hold NUL, which no stored value can (imports refuse it), so a cut never lands in real
# text, and a NUL left in a template is a record field the bulk path would not fill in: refused.
_STAND_IN_ID = -731_906_428_175_553
_STAND_IN_AMOUNT = Decimal("8461937205518273.64")


def _stand_in(field: str) -> str:
    return f"\x00{field}\x00"


# Each stand-in as it appears in the JSON text, and the record field that replaces it.
_PASTED = {
    str(_STAND_IN_ID): "id",
    json.dumps(str(_STAND_IN_AMOUNT)): "amount",
    json.dumps(_stand_in("source")): "source",
    json.dumps(_stand_in("document_ref")): "document_ref",
    json.dumps(f"{_stand_in('source')}:{_stand_in('document_ref')}"): "ref",
    json.dumps(_stand_in("recorded_by")): "recorded_by",
}
# With the import's source known, "ref" is that source's text followed by the reference's JSON
# text without its opening quote: JSON escapes character by character, so the template keeps
# `"court:` and the database pastes only what follows.
_REF_TAIL = {json.dumps(_stand_in("document_ref"))[1:]: "ref_tail"}
_NUL = json.dumps("\x00")[1:-1]


def _cutter(markers: Iterable[str]) -> re.Pattern[str]:
    # Longest first: where two markers could match, the one that starts earlier and is longer wins.
    return re.compile("(" + "|".join(re.escape(marker) for marker in sorted(markers, key=len, reverse=True)) + ")")


_CUT = _cutter(_PASTED)
_CUT_KNOWN_SOURCE = _cutter(_PASTED | _REF_TAIL)


@dataclass(frozen=True)
class Template:
    """The notice of every fresh record with this behaviour, occurrence day and subject kind."""

    behaviour: str
    occurred_on: dt.date
    subject_kind: str
    takes_effect_on: dt.date | None
    object_by: dt.date | None
    parts: tuple[str, ...]  # the facts text around the record's own fields
    fields: tuple[str, ...]  # the field that goes between parts[i] and parts[i + 1]


def fresh_templates(
    keys: Iterable[tuple[str, dt.date, str]],
    now: dt.datetime,
    versions: Sequence[SchemeVersion],
    *,
    source: str | None = None,
    recorded_by: str | None = None,
) -> list[Template]:
    """Templates for the adverse ones of these (behaviour, occurred_on, subject kind) keys, for
    records recorded at `now`; a key that is not adverse gets no template, as its records no notice.

    `source` and `recorded_by`, when given (one import's), are rendered into the templates, which
    leaves the database fewer fields to paste into every notice."""
    in_force = _in_force(versions, local_day(now), now)
    cache: dict[Any, Any] = {}
    if source is None or recorded_by is None:
        source, recorded_by = _stand_in("source"), _stand_in("recorded_by")
        markers, cut = _PASTED, _CUT
    else:
        markers, cut = _PASTED | _REF_TAIL, _CUT_KNOWN_SOURCE
    found = []
    for behaviour, occurred_on, kind in keys:
        record = Record(
            id=_STAND_IN_ID,
            source_id=source,
            document_ref=_stand_in("document_ref"),
            subject_id=_stand_in("subject_id"),
            behaviour=behaviour,
            occurred_on=occurred_on,
            recorded_at=now,
            recorded_by=recorded_by,
            amount=_STAND_IN_AMOUNT,
            note=_stand_in("note"),
        )
        facts = facts_for(record, (), None, kind, in_force, now, cache)
        if facts is None:
            continue
        text = _text(facts)
        pieces = cut.split(text)  # text, marker, text, …, text
        parts = tuple(pieces[0::2])
        if any(_NUL in part for part in parts):
            raise RuntimeError(f"a notice shows a record field that the bulk path does not fill in: {text}")
        fields = tuple(markers[marker] for marker in pieces[1::2])
        found.append(Template(behaviour, occurred_on, kind, _takes_effect_on(facts), _object_by(facts), parts, fields))
    return found


Load = Callable[[Connection, str, "pa.Table"], None]


def write_fresh(
    conn: Connection,
    fresh: pa.Table,
    now: dt.datetime,
    versions: Sequence[SchemeVersion],
    load: Load,
    *,
    source: str | None = None,
    recorded_by: str | None = None,
    templates: Sequence[Template] | None = None,
) -> int:
    """Notices and e-mail outbox rows for records just written in this transaction, all recorded at
    `now`, reading exactly as what `for_new_records` writes for them (each template is stored once,
    each notice keeps its id and the record's values); returns how many notices were written.

    `fresh` has the records' id, behaviour, occurred_on and subject_kind; `source` and
    `recorded_by`, when the caller knows them to be the same for every record, go into the
    templates. `templates`: those of `fresh_templates_of` with the same arguments, if the caller
    rendered them already. `load(conn, name, table)` fills a table from Arrow (the caller knows the
    fastest way on its backend). SQLite writes each notice from its record and the template of its
    key in one INSERT … SELECT, which its one writer makes exact. On PostgreSQL, where other imports
    write beside this one, `fresh` must also have the records' subject_id, document_ref, amount and
    subject_email, and the templates must know the source: Arrow composes the notices and their
    e-mail rows here and `load` copies them in (see `_write_composed`)."""
    if templates is None:
        templates = fresh_templates_of(fresh, now, versions, source=source, recorded_by=recorded_by)
    if not templates:
        return 0
    fields = templates[0].fields
    if any(template.fields != fields for template in templates):
        raise RuntimeError("notice templates of one import cut their facts differently")
    postgres = conn.dialect.name == "postgresql"
    if postgres and not _composable(fresh, fields):
        raise RuntimeError(
            "on PostgreSQL, fresh notices need the records' subject_id, document_ref, amount and "
            "subject_email, and templates that know the source and who recorded"
        )
    template_ids = t.new_ids(conn, t.notice_templates, len(templates))
    stored, texts, plan = _fresh_tables(fresh, templates, template_ids, _COMPOSED_FROM[1:] if postgres else _EMAILED)
    load(conn, t.notice_templates.name, stored)
    ids = t.new_ids(conn, t.notices, plan.num_rows)  # in the records' order, as on the row-wise path
    if postgres:
        return _write_composed(conn, texts, plan, ids, fields, now, load)
    metadata = MetaData()
    templates_table = Table(
        "fresh_notice_templates",
        metadata,
        Column("template", t.Id, primary_key=True, autoincrement=False),
        Column("id", t.Id, nullable=False),
        Column("takes_effect_on", Date),
        Column("object_by", Date),
        prefixes=["TEMPORARY"],
    )
    plan_table = Table(
        "fresh_notice_plan",
        metadata,
        Column("record_id", t.Id, primary_key=True, autoincrement=False),
        Column("template", t.Id, nullable=False),
        Column("id", t.Id, nullable=False),
        prefixes=["TEMPORARY"],
    )
    metadata.create_all(conn)
    load(conn, templates_table.name, texts)
    load(conn, plan_table.name, plan.select(["record_id", "template"]).append_column("id", ids))
    first, last = (int(plan.column("record_id")[i].as_py()) for i in (0, -1))
    names, rows = _fresh_notices(templates_table, plan_table, fields, (first, last), now)
    conn.execute(t.notices.insert().from_select(names, rows))
    emails = _emails(plan, ids, _stamp(now))
    if emails.num_rows:
        load(conn, t.outbox.name, emails)
    metadata.drop_all(conn)
    return int(plan.num_rows)


def fresh_templates_of(
    fresh: pa.Table,
    now: dt.datetime,
    versions: Sequence[SchemeVersion],
    *,
    source: str | None = None,
    recorded_by: str | None = None,
) -> list[Template]:
    """`fresh_templates` for the keys of these fresh records (their behaviour, occurred_on and
    subject_kind columns); it touches no database, so it may run beside the import's writes."""
    keys = fresh.group_by(["behaviour", "occurred_on", "subject_kind"]).aggregate([])
    key_columns = (keys.column(name).to_pylist() for name in ("behaviour", "occurred_on", "subject_kind"))
    return fresh_templates(zip(*key_columns, strict=True), now, versions, source=source, recorded_by=recorded_by)


# What Arrow needs to compose a notice without the database: the record's own fields, and
# templates that leave only these to paste (the source and who recorded are rendered into them).
_COMPOSED_FROM = ("id", "subject_id", "document_ref", "amount", "subject_email")
# What SQLite's path needs beside the records it reads back: each subject's e-mail address, if any.
_EMAILED = ("subject_email",)
_COMPOSED_FIELDS = {"id", "amount", "document_ref", "ref_tail"}


def _composable(fresh: pa.Table, fields: Sequence[str]) -> bool:
    return set(_COMPOSED_FROM) <= set(fresh.column_names) and set(fields) <= _COMPOSED_FIELDS


def _write_composed(
    conn: Connection,
    texts: pa.Table,
    plan: pa.Table,
    ids: pa.Array,
    fields: Sequence[str],
    now: dt.datetime,
    load: Load,
) -> int:
    """Notices and their e-mail deliveries composed by Arrow and copied in, on PostgreSQL.

    Exact while other imports write beside this one: the deliveries are those of the notice ids
    this import drew, for the addresses read with its subjects. The server's one backend is the
    bottleneck of an import: composing the values there and inserting them with INSERT … SELECT
    (a row at a time) cost it more than copying finished rows in binary form, which it inserts in
    batches without parsing. The texts read back are those of the SQLite path byte for byte: Arrow
    pastes the same values, and values that JSON must escape (quote, backslash, control
    characters) are escaped by `json.dumps` itself."""

    stamp = _stamp(now)
    starts = range(0, plan.num_rows, _COMPOSE_BATCH)

    def compose(start: int) -> tuple[pa.Table, pa.Table]:
        part, numbers = plan.slice(start, _COMPOSE_BATCH), ids.slice(start, _COMPOSE_BATCH)
        return _composed(part, numbers, texts, fields, stamp), _emails(part, numbers, stamp)

    # Arrow composes the next batch (in C++, without the GIL) while the server copies this one in.
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="notices") as pool:
        pending: Future[tuple[pa.Table, pa.Table]] | None = None
        for start in [*starts, None]:
            following = pool.submit(compose, start) if start is not None else None
            if pending is not None:
                composed, emails = pending.result()
                load(conn, t.notices.name, composed)
                if emails.num_rows:
                    load(conn, t.outbox.name, emails)
            pending = following
    return int(plan.num_rows)


def _composed(part: pa.Table, ids: pa.Array, texts: pa.Table, fields: Sequence[str], stamp: pa.Scalar) -> pa.Table:
    """The notices of these plan rows (record_id, template, subject_id, document_ref, amount)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    template = part.column("template")
    record_id = pc.cast(part.column("record_id"), pa.string())
    quoted_ref = _json_strings(part.column("document_ref"))
    amount = part.column("amount")
    values = {
        "id": record_id,
        "amount": pc.if_else(
            pc.is_null(amount), "null", pc.binary_join_element_wise('"', pc.cast(amount, pa.string()), '"', "")
        ),
        "document_ref": quoted_ref,
        "ref_tail": pc.utf8_slice_codeunits(quoted_ref, 1),
    }
    return pa.table(
        {
            "id": ids,
            "key": pc.binary_join_element_wise(record_id, f":{RECORDED}", ""),
            "subject_id": part.column("subject_id"),
            "record_id": part.column("record_id"),
            "kind": pa.repeat(pa.scalar(RECORDED), part.num_rows),
            "created_at": pa.repeat(stamp, part.num_rows),
            "takes_effect_on": pc.take(texts.column("takes_effect_on"), template),
            "object_by": pc.take(texts.column("object_by"), template),
            "template_id": pc.take(texts.column("id"), template),
            "fill": pc.binary_join_element_wise(*(values[field] for field in fields), FILL_SEPARATOR)
            if fields
            else pa.repeat(pa.scalar(""), part.num_rows),
        }
    )


def _stamp(when: dt.datetime) -> pa.Scalar:
    """`when` as the store keeps it (naive UTC), for Arrow columns written to the store."""
    import pyarrow as pa

    return pa.scalar(to_storage(when), pa.timestamp("us"))


def _emails(part: pa.Table, notice_ids: pa.Array, stamp: pa.Scalar) -> pa.Table:
    """The e-mail outbox rows of `_write` for these notices whose subjects have an address (a
    random Message-ID part each)."""
    import os

    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    addressed = pc.is_valid(part.column("subject_email"))
    notice_ids = notice_ids.filter(addressed)
    n = len(notice_ids)
    random = np.frombuffer(os.urandom(8 * n), dtype=np.uint8)
    digits = np.frombuffer(b"0123456789abcdef", dtype=np.uint8)[np.stack([random >> 4, random & 15], axis=1)]
    hexed = pa.FixedSizeBinaryArray.from_buffers(pa.binary(16), n, [None, pa.py_buffer(digits.tobytes())])
    message_id = pc.binary_join_element_wise(
        "<notice-", pc.cast(notice_ids, pa.string()), f".{EMAIL}.", hexed.cast(pa.string()), f"@{_domain()}>", ""
    )
    return pa.table(
        {
            "notice_id": notice_ids,
            "channel": pa.repeat(pa.scalar(EMAIL), n),
            "address": part.column("subject_email").filter(addressed),
            "message_id": message_id,
            "state": pa.repeat(pa.scalar("pending"), n),
            "attempts": pa.repeat(pa.scalar(0, pa.int32()), n),
            "next_attempt_at": pa.repeat(stamp, n),
        }
    )


_COMPOSE_BATCH = 200_000  # notices composed and copied at a time: bounded memory


def _json_strings(values: pa.ChunkedArray | pa.Array) -> pa.Array:
    """Each text as `json.dumps(…, ensure_ascii=False)` writes it: quotes around it, and the few
    texts with a character JSON escapes (quote, backslash, U+0000–U+001F) escaped by json itself."""
    import pyarrow as pa
    import pyarrow.compute as pc

    values = values.combine_chunks() if isinstance(values, pa.ChunkedArray) else values
    quoted = pc.binary_join_element_wise('"', values, '"', "")
    escaped = pc.match_substring_regex(values, r'["\\\x00-\x1f]')
    if not pc.any(escaped).as_py():
        return quoted
    dumped = [json.dumps(value, ensure_ascii=False) for value in values.filter(escaped).to_pylist()]
    return pc.replace_with_mask(quoted, escaped, pa.array(dumped, pa.string()))


def _fresh_tables(
    fresh: pa.Table, templates: Sequence[Template], ids: pa.Array, extra: Sequence[str] = ()
) -> tuple[pa.Table, pa.Table, pa.Table]:
    """The templates as stored (with these `ids`); their ids and notice dates by number; and the
    plan: each adverse record and its template's number (and the `extra` columns of `fresh`), in
    the records' order."""
    import pyarrow as pa

    numbers = pa.array(range(len(templates)), pa.int64())
    keys = pa.table(
        {
            "template": numbers,
            "behaviour": pa.array([x.behaviour for x in templates], pa.string()),
            "occurred_on": pa.array([x.occurred_on for x in templates], fresh.schema.field("occurred_on").type),
            "subject_kind": pa.array([x.subject_kind for x in templates], pa.string()),
        }
    )
    plan = (
        fresh.select(["id", "behaviour", "occurred_on", "subject_kind", *extra])
        .join(keys, ["behaviour", "occurred_on", "subject_kind"], join_type="inner")
        .select(["id", "template", *extra])
        .rename_columns(["record_id", "template", *extra])
        .sort_by("record_id")
    )
    stored = pa.table(
        {
            "id": ids,
            "parts": pa.array([json.dumps(x.parts, ensure_ascii=False) for x in templates], pa.string()),
            "fields": pa.array([json.dumps(x.fields) for x in templates], pa.string()),
        }
    )
    texts = pa.table(
        {
            "template": numbers,
            "id": ids,
            "takes_effect_on": pa.array([x.takes_effect_on for x in templates], pa.date32()),
            "object_by": pa.array([x.object_by for x in templates], pa.date32()),
        }
    )
    return stored, texts, plan


def _fresh_notices(
    templates: Table, plan: Table, fields: Sequence[str], span: tuple[int, int], now: dt.datetime
) -> tuple[list[str], Select[Any]]:
    """The notices' columns and the SELECT that writes them from the records and their templates
    (SQLite: `json_quote` escapes as `json.dumps` does; tests/test_bulk.py compares the texts of
    both import paths byte for byte)."""
    records = t.records
    values: dict[str, ColumnElement[Any]] = {
        "id": cast(records.c.id, String),
        "amount": func.coalesce(literal('"') + cast(records.c.amount, String) + literal('"'), literal("null")),
        "source": func.json_quote(records.c.source_id),
        "document_ref": func.json_quote(records.c.document_ref),
        "ref": func.json_quote(records.c.source_id + literal(":") + records.c.document_ref),
        "ref_tail": func.substr(func.json_quote(records.c.document_ref), 2),
        "recorded_by": func.json_quote(records.c.recorded_by),
    }
    pasted = [values[field] for field in fields]
    # One call that writes the text once (chained `||` copies the growing text at every step).
    fill = func.printf(FILL_SEPARATOR.join(["%s"] * len(pasted)), *pasted) if pasted else literal("")
    # In the plan's order, which is its ids' (rows appended, not inserted in between).
    joined = plan.join(records, and_(records.c.id == plan.c.record_id, records.c.id.between(*span))).join(
        templates, templates.c.template == plan.c.template
    )
    columns = {
        "id": plan.c.id,
        "key": cast(records.c.id, String) + literal(f":{RECORDED}"),
        "subject_id": records.c.subject_id,
        "record_id": records.c.id,
        "kind": literal(RECORDED),
        "created_at": literal(to_storage(now), DateTime),
        "takes_effect_on": templates.c.takes_effect_on,
        "object_by": templates.c.object_by,
        "template_id": templates.c.id,
        "fill": fill,
    }
    rows = select(*(value.label(name) for name, value in columns.items())).select_from(joined)
    return list(columns), rows.order_by(plan.c.record_id)


def for_event(conn: Connection, record_id: int, event_id: int, now: dt.datetime) -> int | None:
    """The notice about one event of a record, written in the event's transaction; its id or None."""
    record, events = derivation.load_records(conn, [record_id])[record_id]
    event = next(e for e in events if e.id == event_id)
    if event.kind not in NOTIFIED:
        return None
    subject = existing_subjects(conn, [record.subject_id])[record.subject_id]
    in_force = _in_force(scheme_versions(conn), local_day(now), now)
    facts = facts_for(record, events, event, subject.kind, in_force, now)
    if facts is None:
        return None
    ids = _write(conn, [(record, event, facts)], now)
    return ids[0] if ids else None


# --- the inbox --------------------------------------------------------------------------------


def facts_text(facts: str | None, parts: str | None, fill: str | None) -> str:
    """A notice's facts text as stored: whole, or its template's parts with the record's values
    (`fill`) between them, which gives the very text the row-wise path stores."""
    if facts is not None:
        return facts
    if parts is None or fill is None:
        raise RuntimeError("a notice has neither facts nor a template and its values")
    texts: list[str] = json.loads(parts)
    values = fill.split(FILL_SEPARATOR) if len(texts) > 1 else []
    if len(values) != len(texts) - 1:
        raise RuntimeError(f"a notice's values do not fit its template: {len(values)} for {len(texts) - 1} places")
    return "".join(piece for pair in zip(texts, [*values, ""], strict=True) for piece in pair)


# Every notice with its template's parts, if it has one.
NOTICE_ROWS = select(t.notices, t.notice_templates.c.parts).select_from(
    t.notices.outerjoin(t.notice_templates, t.notice_templates.c.id == t.notices.c.template_id)
)


def _notice(row: Any) -> Notice:
    return Notice(
        id=int(row.id),
        subject_id=row.subject_id,
        record_id=int(row.record_id),
        event_id=int(row.event_id) if row.event_id is not None else None,
        kind=row.kind,
        created_at=from_storage(row.created_at),
        takes_effect_on=row.takes_effect_on,
        object_by=row.object_by,
        facts=json.loads(facts_text(row.facts, row.parts, row.fill)),
        read_at=from_storage(row.read_at) if row.read_at is not None else None,
    )


def inbox(
    conn: Connection,
    subject_id: str | None = None,
    *,
    record_id: int | None = None,
    unread_only: bool = False,
    limit: int | None = None,
) -> list[Notice]:
    """A subject's notices, newest first (every subject's when `subject_id` is None)."""
    query = NOTICE_ROWS.order_by(t.notices.c.id.desc())
    if subject_id is not None:
        query = query.where(t.of_subject(t.notices, subject_id))
    if record_id is not None:
        query = query.where(t.notices.c.record_id == record_id)
    if unread_only:
        query = query.where(t.notices.c.read_at.is_(None))
    if limit is not None:
        query = query.limit(limit)
    return [_notice(row) for row in conn.execute(query)]


def get(conn: Connection, notice_id: int) -> Notice:
    row = conn.execute(NOTICE_ROWS.where(t.notices.c.id == notice_id)).first()
    if row is None:
        raise NotFound(f"notice {notice_id} does not exist")
    return _notice(row)


def mark_read(conn: Connection, notice_id: int, now: dt.datetime) -> Notice:
    """The subject has read the notice in the portal (the first reading is kept)."""
    get(conn, notice_id)
    conn.execute(
        update(t.notices)
        .where(t.notices.c.id == notice_id, t.notices.c.read_at.is_(None))
        .values(read_at=to_storage(now))
    )
    return get(conn, notice_id)


def count(conn: Connection, subject_id: str | None = None) -> int:
    query = select(func.count()).select_from(t.notices)
    if subject_id is not None:
        query = query.where(t.of_subject(t.notices, subject_id))
    return int(conn.execute(query).scalar_one())


def deliveries(conn: Connection, notice: Notice) -> list[dict[str, Any]]:
    """The notice's deliveries: the portal's, done when it was written, then its outbox rows."""
    portal = {
        "channel": PORTAL,
        "address": None,
        "state": "delivered",
        "attempts": 0,
        "delivered_at": _iso(notice.created_at),
        "last_error": None,
    }
    query = select(t.outbox).where(t.outbox.c.notice_id == notice.id).order_by(t.outbox.c.id)
    return [portal] + [
        {
            "channel": row.channel,
            "address": row.address,
            "state": row.state,
            "attempts": row.attempts,
            "delivered_at": _iso(from_storage(row.delivered_at)) if row.delivered_at else None,
            "last_error": row.last_error,
        }
        for row in conn.execute(query)
    ]


def to_dict(notice: Notice, lang: str, delivered: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """The notice as JSON for the command line and the API: facts plus its text in `lang`."""
    text = render(notice, lang)
    data: dict[str, Any] = {
        "id": notice.id,
        "subject": notice.subject_id,
        "record": notice.record_id,
        "event": notice.event_id,
        "kind": notice.kind,
        "created_at": _iso(notice.created_at),
        "takes_effect_on": _iso(notice.takes_effect_on),
        "object_by": _iso(notice.object_by),
        "read_at": _iso(notice.read_at),
        "language": text.language,
        "title": text.subject,
        "text": text.body,
        "facts": notice.facts,
    }
    if delivered is not None:
        data["deliveries"] = delivered
    return data


# --- text -------------------------------------------------------------------------------------

HEADLINES = {
    RECORDED: N_("A record about you was recorded: %(title)s"),
    CORRECTED: N_("A record about you was corrected: %(title)s"),
    REVOKED: N_("A record about you was revoked: %(title)s"),
    ENDED: N_("A record about you no longer counts: %(title)s"),
    DISPUTED: N_("Your objection was received: %(title)s"),
    DECIDED: N_("Your objection was decided: %(title)s"),
    REPAIR_APPLIED: N_("Your repair application was received: %(title)s"),
    REPAIR_DECIDED: N_("Your repair application was decided: %(title)s"),
}
OUTCOMES = {
    "upheld": N_("upheld: the record stands"),
    "corrected": N_("corrected: the record was changed"),
    "revoked": N_("revoked: the record never had any effect"),
    "approved": N_("approved: the record's effect ends"),
    "refused": N_("refused: the record keeps its effect"),
    "fulfilled": N_("the obligation was fulfilled"),
    "repaired": N_("a repair was approved"),
}
LIST_KINDS = {"black": N_("black list"), "red": N_("red list"), "watch": N_("watch list")}


def render(notice: Notice | dict[str, Any], lang: str | None = None) -> Rendered:
    """The notice's subject line and body in a language (default: XINYONG_LANGUAGE)."""
    facts = notice.facts if isinstance(notice, Notice) else notice
    _ = Text(language(lang))
    record = facts["record"]
    event = facts.get("event") or {}
    title = _.title(record)
    kind = facts["kind"]
    headline = _(HEADLINES[kind], title=title)
    lines = [headline, ""]
    lines.append(
        _(
            "Record %(ref)s from %(source)s: %(title)s (%(code)s), occurred on %(occurred)s.",
            ref=record["ref"],
            source=record["source"],
            title=title,
            code=record["behaviour"],
            occurred=_.day(record["occurred_on"]),
        )
    )
    lines.append(
        _(
            "Recorded on %(day)s by %(actor)s for %(source)s.",
            day=_.day(record["recorded_at"]),
            actor=record["recorded_by"],
            source=record["source"],
        )
    )
    if record.get("legal_basis"):
        lines.append(_("Legal basis: %(basis)s", basis=record["legal_basis"]))
    lines.extend(_event_lines(_, facts["kind"], event))
    lines.append("")
    for scheme in facts["schemes"]:
        lines.extend(_scheme_lines(_, scheme, record["status"]))
    lines.append("")
    lines.extend(_objection_lines(_, facts))
    return Rendered(_.lang, headline, "\n".join(lines).strip() + "\n")


def _event_lines(_: Text, kind: str, event: dict[str, Any]) -> list[str]:
    lines = []
    if kind == CORRECTED or (kind == DECIDED and event.get("outcome") == "corrected"):
        changes = []
        if event.get("behaviour"):
            changes.append(_("behaviour %(code)s", code=event["behaviour"]))
        if event.get("occurred_on"):
            changes.append(_("occurred on %(day)s", day=_.day(event["occurred_on"])))
        if event.get("amount"):
            changes.append(_("amount %(amount)s", amount=event["amount"]))
        lines.append(_("Corrected to: %(changes)s.", changes=", ".join(changes)))
    if kind == ENDED:
        outcome = _.label(OUTCOMES, event.get("outcome"))
        lines.append(_("Its effect ends on %(day)s: %(why)s.", day=_.day(event.get("effective_on")), why=outcome))
    if kind == DISPUTED:
        lines.append(
            _(
                "Objection %(id)s was filed by %(actor)s; it must be decided by %(day)s.",
                id=event["id"],
                actor=event.get("actor", ""),
                day=_.day(event.get("due_on")),
            )
        )
    if kind == REPAIR_APPLIED:
        lines.append(
            _(
                "Repair application %(id)s was filed by %(actor)s; it must be decided by %(day)s.",
                id=event["id"],
                actor=event.get("actor", ""),
                day=_.day(event.get("due_on")),
            )
        )
    if kind in (DECIDED, REPAIR_DECIDED):
        outcome = _.label(OUTCOMES, event.get("outcome"))
        lines.append(_("Decision by %(actor)s: %(outcome)s.", actor=event.get("actor", ""), outcome=outcome))
    if kind in (CORRECTED, REVOKED, DECIDED, REPAIR_DECIDED) and event.get("reason"):
        lines.append(_("Reasons: %(reason)s", reason=event["reason"]))
    return lines


def _scheme_lines(_: Text, scheme: dict[str, Any], status: str) -> list[str]:
    lines = [
        _(
            "Under %(scheme)s: %(points)s points.",
            scheme=_.title(scheme),
            points=_.points(scheme["points"]),
        )
    ]
    for item in scheme["lists"]:
        lines.append(
            "  " + _("It feeds the %(kind)s %(title)s.", kind=_.label(LIST_KINDS, item["kind"]), title=_.title(item))
        )
    for measure in scheme["measures"]:
        lines.append(
            "  "
            + _(
                "Measure that follows: %(title)s (applied by %(agency)s; %(basis)s).",
                title=_.title(measure),
                agency=measure["implemented_by"],
                basis=measure["legal_basis"],
            )
        )
    if status == "revoked":
        lines.append("  " + _("It has no effect: the record is revoked."))
    elif scheme["held"]:
        lines.append("  " + _("It has no effect while the objection is undecided."))
    elif scheme["takes_effect_on"]:
        lines.append(
            "  "
            + _(
                "It takes effect on %(start)s and counts until %(until)s.",
                start=_.day(scheme["takes_effect_on"]),
                until=_.day(scheme["until"]),
            )
        )
    else:
        lines.append("  " + _("It has no effect under this scheme."))
    if scheme.get("repair_possible_from") and status != "revoked":
        lines.append("  " + _("You may apply for repair from %(day)s.", day=_.day(scheme["repair_possible_from"])))
    return lines


def _objection_lines(_: Text, facts: dict[str, Any]) -> list[str]:
    ref = facts["record"]["ref"]
    lines = []
    if facts.get("object_by"):
        lines.append(
            _(
                "How to object: file an objection by %(day)s and the record has no effect until it is decided.",
                day=_.day(facts["object_by"]),
            )
        )
    else:
        lines.append(_("How to object: you may object to this record at any time."))
    lines.append(
        _(
            "The credit office must decide within %(days)s working days. In the portal, or: "
            "xinyong objections file %(ref)s --reason …",
            days=facts["objection_deadline"],
            ref=ref,
        )
    )
    return lines
