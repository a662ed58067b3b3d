"""Notices of a bulk import, set-based: one facts text per (behaviour, occurrence day, subject kind).

The notice of a fresh record differs from that of another record of the same import with the same
behaviour, occurrence day and subject kind only in the record's own fields. So the bulk path
renders one facts text per such key, stores it once as a template (`notice_templates`), and each
notice keeps only the record's own values that go into it; reading puts the text together
(`tables.facts_text`), byte for byte what the row-wise path stores.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Iterable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING, Any

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
)

from xinyong.due_process.notices.facts import (
    EMAIL,
    RECORDED,
    facts_for,
    facts_json,
    object_by_day,
    schemes_in_force,
    takes_effect_day,
)
from xinyong.due_process.notices.writing import mail_domain
from xinyong.ledger.appended import Load
from xinyong.rules.clock import local_day, to_storage
from xinyong.rules.records import (
    Record,
)
from xinyong.rules.schemes import SchemeVersion
from xinyong.storage import tables as t
from xinyong.storage.backend import backend_of
from xinyong.storage.tables import FILL_SEPARATOR

if TYPE_CHECKING:
    import pyarrow as pa


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
    in_force = schemes_in_force(versions, local_day(now), now)
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
        text = facts_json(facts)
        pieces = cut.split(text)  # text, marker, text, …, text
        parts = tuple(pieces[0::2])
        if any(_NUL in part for part in parts):
            raise RuntimeError(f"a notice shows a record field that the bulk path does not fill in: {text}")
        fields = tuple(markers[marker] for marker in pieces[1::2])
        found.append(
            Template(behaviour, occurred_on, kind, takes_effect_day(facts), object_by_day(facts), parts, fields)
        )
    return found


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
    backend = backend_of(conn)
    # Where imports write side by side, Arrow composes the notices and `load` copies them in;
    # a single writer makes the INSERT … SELECT below exact (see the docstring).
    composed = not backend.single_writer
    if composed and not _composable(fresh, fields):
        raise RuntimeError(
            "where imports write side by side (PostgreSQL), fresh notices need the records' subject_id, "
            "document_ref, amount and subject_email, and templates that know the source and who recorded"
        )
    template_ids = backend.new_ids(conn, t.notice_templates, len(templates))
    stored, texts, plan = _fresh_tables(fresh, templates, template_ids, _COMPOSED_FROM[1:] if composed else _EMAILED)
    load(conn, t.notice_templates.name, stored)
    ids = backend.new_ids(conn, t.notices, plan.num_rows)  # in the records' order, as on the row-wise path
    if composed:
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
        "<notice-", pc.cast(notice_ids, pa.string()), f".{EMAIL}.", hexed.cast(pa.string()), f"@{mail_domain()}>", ""
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
