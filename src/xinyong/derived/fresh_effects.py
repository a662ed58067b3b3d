"""Effects of fresh records, derived column-wise (the bulk import's after-append step).

A record with no events yet is the simplest case of DESIGN.md's semantics: start =
max(occurred_on, recorded_on + notice), until = occurred_on + validity. Every record of one import
has the same recorded_on, so `recorded_on + notice` is one date per behaviour, computed here with
`Period.after` exactly as `effects.active_window` does; only `occurred_on + validity` varies per
row, and DuckDB's `date + INTERVAL` clips to the month's last day like dateutil (2024-02-29 + P1Y =
2025-02-28; months before days). tests/test_bulk.py checks this derivation against
`effects.derive_effects` on random records with Hypothesis.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

import pyarrow as pa

from xinyong.rules.clock import local_day
from xinyong.rules.schemes import SchemeVersion


def behaviour_parameters(versions: Sequence[SchemeVersion], recorded_at: dt.datetime) -> pa.Table:
    """One row per (scheme version, behaviour): points, the earliest start its notice allows for
    records recorded at `recorded_at`, and its validity in months and days."""
    rows: dict[str, list[Any]] = {k: [] for k in ("scheme", "version", "behaviour", "points", "notice_from")}
    rows |= {"months": [], "days": []}
    for version in versions:
        scheme = version.scheme
        recorded_on = local_day(recorded_at, scheme.timezone)
        for b in scheme.behaviours:
            rows["scheme"].append(scheme.scheme)
            rows["version"].append(scheme.version)
            rows["behaviour"].append(b.code)
            rows["points"].append(b.points)
            rows["notice_from"].append(b.notice_in(scheme).after(recorded_on))
            rows["months"].append(b.validity.years * 12 + b.validity.months)
            rows["days"].append(b.validity.days)
    types = {
        "scheme": pa.string(),
        "version": pa.string(),
        "behaviour": pa.string(),
        "points": pa.int64(),
        "notice_from": pa.date32(),
        "months": pa.int32(),
        "days": pa.int32(),
    }
    return pa.table({k: pa.array(v, types[k]) for k, v in rows.items()})


FRESH_EFFECTS = """
SELECT p.scheme, p.version, r.id AS record_id, r.subject_id, r.behaviour, p.points, r.occurred_on,
       greatest(r.occurred_on, p.notice_from) AS valid_from,
       CAST(r.occurred_on + to_months(p.months) + to_days(p.days) AS DATE) AS valid_until
FROM fresh AS r JOIN parameters AS p ON p.behaviour = r.behaviour
WHERE greatest(r.occurred_on, p.notice_from) < CAST(r.occurred_on + to_months(p.months) + to_days(p.days) AS DATE)
ORDER BY r.id, p.scheme, p.version
"""


def fresh_effects(con: Any, records: str, parameters: pa.Table) -> pa.Table:
    """Effects rows (without knowledge times) of records that have no events yet.

    `records` names a DuckDB relation with id, subject_id, behaviour and occurred_on (DATE).
    """
    con.register("parameters", parameters)
    con.execute(f"CREATE OR REPLACE TEMP VIEW fresh AS SELECT * FROM {records}")
    table: pa.Table = con.sql(FRESH_EFFECTS).to_arrow_table()
    return table


def derive_fresh_effects(records: pa.Table, versions: Sequence[SchemeVersion], recorded_at: dt.datetime) -> pa.Table:
    """`fresh_effects` on an Arrow table, for callers without a DuckDB connection of their own."""
    import duckdb

    con = duckdb.connect()
    try:
        con.register("input_records", records)
        return fresh_effects(con, "input_records", behaviour_parameters(versions, recorded_at))
    finally:
        con.close()
