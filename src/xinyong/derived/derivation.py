"""Keeping the effects table equal to what the ledger implies, incrementally or by a full rebuild.

Incremental maintenance re-derives every scheme version's rows for the records an event touched;
a rebuild does the same for all records. Both call `effects.derive_effects`, so "incremental equals
rebuild" holds by construction and is checked by a property test rather than hoped for.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

from sqlalchemy import Connection, bindparam, delete, select

from xinyong.ledger.records import load_records
from xinyong.ledger.registry import scheme_versions
from xinyong.rules.clock import from_storage, to_storage
from xinyong.rules.effects import Effect, derive_effects
from xinyong.rules.records import Record, RecordEvent
from xinyong.rules.schemes import Scheme, SchemeVersion
from xinyong.storage import tables as t
from xinyong.storage.driver_query import DriverQuery

_CHUNK = 500


def _effect_values(effect: Effect) -> dict[str, object]:
    return {
        "scheme": effect.scheme,
        "version": effect.version,
        "record_id": effect.record_id,
        "subject_id": effect.subject_id,
        "behaviour": effect.behaviour,
        "points": effect.points,
        "occurred_on": effect.occurred_on,
        "valid_from": effect.valid_from,
        "valid_until": effect.valid_until,
        "known_from": to_storage(effect.known_from),
        "known_until": to_storage(effect.known_until) if effect.known_until else None,
    }


def _relevant(scheme: Scheme, record: Record, events: Iterable[RecordEvent]) -> bool:
    """Skip derivation for records whose behaviours (original or corrected) the scheme does not know."""
    codes = scheme.behaviour_by_code
    return record.behaviour in codes or any(e.behaviour in codes for e in events if e.behaviour)


def derive_for(records: dict[int, tuple[Record, list[RecordEvent]]], versions: Sequence[SchemeVersion]) -> list[Effect]:
    rows: list[Effect] = []
    for record, events in records.values():
        for version in versions:
            if _relevant(version.scheme, record, events):
                rows.extend(derive_effects(record, events, version.scheme))
    return rows


def insert_effects(conn: Connection, rows: Sequence[Effect]) -> None:
    for start in range(0, len(rows), 5000):
        conn.execute(t.effects.insert(), [_effect_values(e) for e in rows[start : start + 5000]])


def refresh_records(conn: Connection, ids: Sequence[int]) -> None:
    """Re-derive the effects of some records under every loaded scheme version."""
    if not ids:
        return
    for start in range(0, len(ids), _CHUNK):
        conn.execute(delete(t.effects).where(t.effects.c.record_id.in_(list(ids[start : start + _CHUNK]))))
    insert_effects(conn, derive_for(load_records(conn, ids), scheme_versions(conn)))


def effects_of_version(conn: Connection, version: SchemeVersion) -> Iterator[list[Effect]]:
    """Effects of every record under a scheme version, in chunks: what loading it writes, and what
    the policy lab evaluates a draft with without loading it (`derived.lab`)."""
    codes = list(version.scheme.behaviour_by_code)
    corrected = select(t.record_events.c.record_id).where(t.record_events.c.behaviour.in_(codes))
    ids = [
        row.id
        for row in conn.execute(
            select(t.records.c.id).where(t.records.c.behaviour.in_(codes) | t.records.c.id.in_(corrected))
        )
    ]
    for start in range(0, len(ids), 5000):
        yield derive_for(load_records(conn, ids[start : start + 5000]), [version])


def derive_version(conn: Connection, version: SchemeVersion) -> int:
    """Effects of every record under a newly loaded scheme version; returns the rows written."""
    written = 0
    for rows in effects_of_version(conn, version):
        insert_effects(conn, rows)
        written += len(rows)
    return written


def rebuild(conn: Connection) -> int:
    """Drop every derived row and derive them again from the ledger alone."""
    conn.execute(delete(t.effects))
    written = 0
    for version in scheme_versions(conn):
        written += derive_version(conn, version)
    return written


def _effect_from_row(row: Any) -> Effect:
    values = dict(row._mapping)
    values["known_from"] = from_storage(values["known_from"])
    values["known_until"] = from_storage(values["known_until"]) if values["known_until"] else None
    return Effect(**values)


# Run on the driver: this is read for every state computed online (see registry._SUBJECT for why).
_EFFECTS = select(t.effects).where(t.of_subject(t.effects, bindparam("subject")))
_EFFECTS_OF = DriverQuery(_EFFECTS)
_EFFECTS_OF_IN = DriverQuery(_EFFECTS.where(t.effects.c.scheme == bindparam("scheme")))


def effects_for_subject(conn: Connection, subject_id: str, scheme: str | None = None) -> list[Effect]:
    if scheme is None:
        rows = _EFFECTS_OF.all(conn, subject=subject_id)
    else:
        rows = _EFFECTS_OF_IN.all(conn, subject=subject_id, scheme=scheme)
    return [_effect_from_row(row) for row in rows]


def all_effects(conn: Connection) -> list[Effect]:
    """Every effects row, in a canonical order: what tests compare between incremental and rebuild."""
    rows = [_effect_from_row(row) for row in conn.execute(select(t.effects))]
    return sorted(rows, key=lambda e: (e.scheme, e.version, e.record_id, e.known_from, e.valid_from))


def by_subject(rows: Iterable[Effect]) -> dict[str, list[Effect]]:
    grouped: dict[str, list[Effect]] = defaultdict(list)
    for row in rows:
        grouped[row.subject_id].append(row)
    return grouped
