"""The batch's inputs: the store's tables as four Parquet files, and time as microseconds.

Every engine reads the same four files, exported in one read transaction (one snapshot):

- ``effects``: the effects table (known_from/known_until as microseconds since the epoch, UTC),
- ``subjects``: subject_id and kind,
- ``consent``: subject events (id, subject_id, scheme, kind, recorded_at in microseconds),
- ``scheme_versions``: every loaded version's document, from which the version in force is chosen.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
from sqlalchemy import Connection

from xinyong.derived import derivation
from xinyong.rules.effects import Effect
from xinyong.rules.schemes import Scheme, SchemeVersion
from xinyong.storage.store import Store

EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
INPUT_TABLES = ("effects", "subjects", "consent", "scheme_versions")

EFFECTS_SCHEMA = pa.schema(
    [
        ("scheme", pa.string()),
        ("version", pa.string()),
        ("record_id", pa.int64()),
        ("subject_id", pa.string()),
        ("behaviour", pa.string()),
        ("points", pa.int64()),
        ("occurred_on", pa.date32()),
        ("valid_from", pa.date32()),
        ("valid_until", pa.date32()),
        ("known_from", pa.int64()),
        ("known_until", pa.int64()),
    ]
)
SUBJECTS_SCHEMA = pa.schema([("subject_id", pa.string()), ("kind", pa.string())])
CONSENT_SCHEMA = pa.schema(
    [
        ("id", pa.int64()),
        ("subject_id", pa.string()),
        ("scheme", pa.string()),
        ("kind", pa.string()),
        ("recorded_at", pa.int64()),
    ]
)
VERSIONS_SCHEMA = pa.schema(
    [
        ("scheme", pa.string()),
        ("version", pa.string()),
        ("loaded_at", pa.int64()),
        ("digest", pa.string()),
        ("document", pa.string()),
    ]
)


def micros(instant: dt.datetime) -> int:
    """An aware instant as integer microseconds since the epoch: the one time form every engine
    compares the same way (no session time zones, no TIMESTAMP vs TIMESTAMP_NTZ)."""
    delta = instant.astimezone(dt.UTC) - EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def from_micros(value: int) -> dt.datetime:
    return EPOCH + dt.timedelta(microseconds=value)


@dataclass(frozen=True)
class Inputs:
    """A folder of Parquet files, one per input table; what every engine reads."""

    folder: Path

    def path(self, table: str) -> Path:
        return self.folder / f"{table}.parquet"

    def tables(self) -> dict[str, Path]:
        return {name: self.path(name) for name in INPUT_TABLES}

    def versions(self) -> list[SchemeVersion]:
        rows = pq.read_table(self.path("scheme_versions")).to_pylist()
        found = [
            SchemeVersion(Scheme.model_validate_json(r["document"]), from_micros(r["loaded_at"]), r["digest"])
            for r in rows
        ]
        return sorted(found, key=lambda v: (v.id, v.loaded_at))


# What each input file holds: the store's table and its columns, in the schema's order, and which
# of them are timestamps (exported as microseconds since the epoch).
_EXPORTS: dict[str, tuple[str, tuple[str, ...], pa.Schema, tuple[str, ...]]] = {
    "effects": (
        "effects",
        (
            "scheme",
            "version",
            "record_id",
            "subject_id",
            "behaviour",
            "points",
            "occurred_on",
            "valid_from",
            "valid_until",
            "known_from",
            "known_until",
        ),
        EFFECTS_SCHEMA,
        ("known_from", "known_until"),
    ),
    "subjects": ("subjects", ("id", "kind"), SUBJECTS_SCHEMA, ()),
    "consent": (
        "subject_events",
        ("id", "subject_id", "scheme", "kind", "recorded_at"),
        CONSENT_SCHEMA,
        ("recorded_at",),
    ),
    "scheme_versions": (
        "scheme_versions",
        ("scheme", "version", "loaded_at", "digest", "document"),
        VERSIONS_SCHEMA,
        ("loaded_at",),
    ),
}


def export_inputs(store: Store, folder: Path, *, drafts: Sequence[SchemeVersion] = ()) -> Inputs:
    """Write the store's effects, subjects, consent events and scheme versions as Parquet, each
    the fastest way the store's backend has (`Backend.export_parquet`: batches of driver rows on
    SQLite, `COPY (SELECT …) TO STDOUT` as CSV typed by Arrow on PostgreSQL; never SQLAlchemy rows).

    One read transaction: the four files are one consistent snapshot of the store. `drafts` are
    scheme versions that are not loaded (the policy lab's): their effects, derived from the same
    snapshot of the ledger by the same code that loading would run, join the effects file.
    """
    folder.mkdir(parents=True, exist_ok=True)
    inputs = Inputs(folder)
    with store.read() as conn:
        for name, (table, columns, schema, timestamps) in _EXPORTS.items():
            store.backend.export_parquet(conn, table, columns, schema, inputs.path(name), micros=timestamps)
        if drafts:
            _add_draft_effects(conn, drafts, inputs.path("effects"))
    return inputs


def _effect_batch(rows: Sequence[Effect]) -> pa.RecordBatch:
    columns: dict[str, list[object]] = {name: [] for name in EFFECTS_SCHEMA.names}
    for e in rows:
        for name in EFFECTS_SCHEMA.names:
            value = getattr(e, name)
            if name in ("known_from", "known_until") and value is not None:
                value = micros(value)
            columns[name].append(value)
    return pa.RecordBatch.from_pydict(columns, schema=EFFECTS_SCHEMA)


def _add_draft_effects(conn: Connection, drafts: Sequence[SchemeVersion], path: Path) -> None:
    """The effects file again, with the drafts' effects after the store's rows."""
    merged = path.with_suffix(".merged")
    with pq.ParquetWriter(merged, EFFECTS_SCHEMA) as writer:
        for batch in pq.ParquetFile(path).iter_batches():
            writer.write_batch(batch.cast(EFFECTS_SCHEMA) if batch.schema != EFFECTS_SCHEMA else batch)
        for draft in drafts:
            for rows in derivation.effects_of_version(conn, draft):
                if rows:
                    writer.write_batch(_effect_batch(rows))
    merged.replace(path)
