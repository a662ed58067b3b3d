"""Populations at scale: the vectorised generator writing Parquet.

The tables of the row-wise city (`vocabulary.py`, `behaviours.py`), drawn with NumPy a column at
a time, so that ten million subjects and fifty million records take minutes rather than hours.
The distributions are those of the row-wise city, simplified where a per-subject story (court
cases with follow-on findings, "bad" and "model" subjects) would need a Python loop: one
gamma-distributed propensity per subject spreads records unevenly, and each record's behaviour is
drawn from its subject kind's everyday, rare and court weights. Identifiers are valid and unique
(GB 11643, GB 32100; `identifiers.py`).
"""

from __future__ import annotations

import datetime
import pathlib
from collections.abc import Iterator, Sequence
from typing import Any

from xinyong.demo.synth.behaviours import (
    COURT_FOLLOW_ONS,
    FIXED_AMOUNTS,
    NOTES,
    ORG_COURT,
    ORG_NEGATIVE,
    ORG_POSITIVE,
    ORG_RARE,
    PERSON_COURT,
    PERSON_NEGATIVE,
    PERSON_POSITIVE,
    PERSON_RARE,
    SCALED_AMOUNTS,
)
from xinyong.demo.synth.dates import record_window
from xinyong.demo.synth.documents import SERIES_BY_SOURCE, fill_column
from xinyong.demo.synth.identifiers import org_ids, person_ids
from xinyong.demo.synth.vocabulary import (
    BRANDS,
    DIVISION_POOL,
    FEMALE_CHARS,
    INDUSTRIES,
    INSTITUTIONS,
    MALE_CHARS,
    NEUTRAL_CHARS,
    NONPROFITS,
    ORG_TYPE_POOL,
    PLACES,
    SOURCE_OF,
    SOURCES,
    SURNAMES,
)

# Each record's behaviour is drawn with these weights: the court follow-ons fold into one weight
# each, and food safety and pollution get one rate for all organisations where the row-wise city
# singles out its food and polluting industries.
_PERSON_WEIGHTS: tuple[tuple[str, float], ...] = (
    *PERSON_NEGATIVE,
    *PERSON_POSITIVE,
    *PERSON_RARE,
    ("COURT.DEFAULT", PERSON_COURT),
    *((code, PERSON_COURT * p) for code, p in COURT_FOLLOW_ONS),
)
_ORG_WEIGHTS: tuple[tuple[str, float], ...] = (
    *ORG_NEGATIVE,
    *ORG_POSITIVE,
    *ORG_RARE,
    ("MARKET.FOOD_SAFETY", 0.025),
    ("ENV.POLLUTION", 0.03),
    ("COURT.DEFAULT", ORG_COURT),
    *((code, ORG_COURT * p) for code, p in COURT_FOLLOW_ONS),
)
_CODES: tuple[str, ...] = tuple(sorted({code for code, _ in _PERSON_WEIGHTS + _ORG_WEIGHTS}))
_PARQUET_SOURCES: tuple[str, ...] = tuple(SOURCES)
# One distribution per behaviour for persons and organisations together, where the row-wise city
# has one per kind (SCALED_AMOUNTS_BY_KIND): judgments and tax arrears between the two.
_AMOUNTS: dict[str, tuple[float, float, float, float]] = {
    **SCALED_AMOUNTS,
    "COURT": (200_000, 1.2, 3_000, 80_000_000),
    "TAX.ARREARS": (40_000, 1.0, 200, 10_000_000),
}


def _strings(matrix: Any) -> Any:
    import numpy as np
    import pyarrow as pa

    fixed = np.ascontiguousarray(matrix).view(f"S{matrix.shape[1]}").ravel()
    return pa.array(fixed, pa.binary(matrix.shape[1])).cast(pa.string())


def _pick(rng: Any, options: Sequence[str], n: int) -> Any:
    import pyarrow as pa

    return pa.array(list(options), pa.string()).take(pa.array(rng.integers(0, len(options), n)))


def _flat(values: Any) -> Any:
    """One contiguous Arrow array (large inputs may come back chunked)."""
    import pyarrow as pa

    return values.combine_chunks() if isinstance(values, pa.ChunkedArray) else values


def _concat(*parts: Any) -> Any:
    import pyarrow as pa

    return pa.concat_arrays([_flat(p) for p in parts])


def _join(*parts: Any) -> Any:
    import pyarrow.compute as pc

    return pc.binary_join_element_wise(*parts, "")


def generate_subjects_table(persons: int, organisations: int, *, today: datetime.date, seed: int = 2014) -> Any:
    """Persons then organisations as an Arrow table (subject_id, kind, name, legal_representative,
    division), drawn column-wise from the same tables as `generate_city`."""
    import numpy as np
    import pyarrow as pa

    rng = np.random.default_rng([seed, 1])
    pool = np.array([int(d) for d in DIVISION_POOL])
    p_div = pool[rng.integers(0, len(pool), persons)]
    p_ids, male = person_ids(rng, p_div, today, persons)
    chars_m = list(MALE_CHARS + NEUTRAL_CHARS)
    chars_f = list(FEMALE_CHARS + NEUTRAL_CHARS)
    first = pa.array(np.where(male, _pick(rng, chars_m, persons), _pick(rng, chars_f, persons)), pa.string())
    second = np.where(male, _pick(rng, chars_m, persons), _pick(rng, chars_f, persons))
    second = pa.array(np.where(rng.random(persons) < 0.65, second, ""), pa.string())
    names = _join(_pick(rng, SURNAMES, persons), first, second)

    o_div = pool[rng.integers(0, len(pool), organisations)]
    types = np.array([prefix for _kind, prefix in ORG_TYPE_POOL])
    kinds_of = np.array([kind for kind, _prefix in ORG_TYPE_POOL])
    chosen = rng.integers(0, len(types), organisations)
    taken = {bytes(x) for x in p_ids.view("S18").ravel()} if organisations else set()
    o_ids = org_ids(rng, o_div, types[chosen], organisations, taken)
    o_kind = kinds_of[chosen]
    # A place word of the organisation's own division: one flat list, offsets per division.
    order = sorted(PLACES)
    flat = [place for division in order for place in PLACES[division]]
    offsets = np.cumsum([0] + [len(PLACES[d]) for d in order])
    slot = np.searchsorted([int(d) for d in order], o_div)
    within = (rng.random(organisations) * (offsets[slot + 1] - offsets[slot])).astype(np.int64)
    place = pa.array(flat, pa.string()).take(pa.array(offsets[slot] + within))
    industry = _pick(rng, [i for i, _f, _p in INDUSTRIES], organisations)
    suffix = pa.array(np.where(rng.random(organisations) < 0.1, "有限责任公司", "有限公司"), pa.string())
    enterprise_name = _join(place, _pick(rng, BRANDS, organisations), industry, suffix)
    other_name = _join(place, _pick(rng, BRANDS, organisations), _pick(rng, NONPROFITS + INSTITUTIONS, organisations))
    o_names = pa.array(
        np.where(np.isin(o_kind, ["enterprise", "cooperative"]), enterprise_name, other_name), pa.string()
    )
    reps = names.take(pa.array(rng.integers(0, max(persons, 1), organisations))) if persons else o_names
    return pa.table(
        {
            "subject_id": _concat(_strings(p_ids), _strings(o_ids)),
            "kind": pa.array(["person"] * persons + ["organisation"] * organisations, pa.string()),
            "name": _concat(names, o_names),
            "legal_representative": _concat(pa.nulls(persons, pa.string()), reps),
            "division": _concat(pa.array(p_div.astype(str), pa.string()), pa.array(o_div.astype(str), pa.string())),
        }
    )


def _amount_cents(rng: Any, codes: Any) -> tuple[Any, Any]:
    """(amount in cents, valid mask) per record, by behaviour, as the row-wise city draws sums."""
    import numpy as np

    n = len(codes)
    cents = np.zeros(n, dtype=np.int64)
    valid = np.zeros(n, dtype=bool)
    normal = rng.standard_normal(n)
    pick = rng.random(n)
    for index, code in enumerate(_CODES):
        mine = codes == index
        if not mine.any():
            continue
        if code in FIXED_AMOUNTS:
            options = np.array(FIXED_AMOUNTS[code]) * 100
            cents[mine] = options[(pick[mine] * len(options)).astype(np.int64)]
            valid[mine] = True
            continue
        scale = _AMOUNTS.get(code) or _AMOUNTS.get(code.split(".", 1)[0])
        if scale is None:
            continue  # praise and the abnormal-operations list carry no sum
        median, sigma, lo, hi = scale
        value = np.clip(np.exp(np.log(median) + sigma * normal[mine]), lo, hi)
        cents[mine] = np.round(value * 100).astype(np.int64)
        valid[mine] = True
    return cents, valid


def generate_records_tables(
    subjects: Any,
    records: int,
    *,
    today: datetime.date,
    years: int = 3,
    seed: int = 2014,
    chunk: int = 5_000_000,
) -> Iterator[tuple[str, Any]]:
    """Records as (source, Arrow table) chunks with the import columns; document_ref is unique per
    source across all chunks (a running number in each source's document series)."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    rng = np.random.default_rng([seed, 2])
    n = subjects.num_rows
    if n == 0 or records <= 0:
        return
    is_person = pc.equal(subjects.column("kind"), "person").to_numpy(zero_copy_only=False)
    division = pc.cast(subjects.column("division"), pa.int64()).to_numpy()
    propensity = rng.gamma(0.45, 1 / 0.45, n)
    cumulative = np.cumsum(propensity)
    cumulative /= cumulative[-1]
    code_index = {code: i for i, code in enumerate(_CODES)}
    tables = {}
    for kind, weights in (("person", _PERSON_WEIGHTS), ("organisation", _ORG_WEIGHTS)):
        p = np.zeros(len(_CODES))
        for code, w in weights:
            p[code_index[code]] += w
        tables[kind] = np.cumsum(p / p.sum())
    source_of = np.array([_PARQUET_SOURCES.index(SOURCE_OF[c]) for c in _CODES])
    start, span = record_window(today, years)
    base = np.datetime64(start.isoformat(), "D")
    numbers = dict.fromkeys(_PARQUET_SOURCES, 0)
    codes_arr = pa.array(list(_CODES), pa.string())
    note_codes, note_texts = [], []
    for code in _CODES:
        for text in NOTES.get(code, ()):
            note_codes.append(code_index[code])
            note_texts.append(text)
    note_codes_np = np.array(note_codes)
    note_first = np.searchsorted(note_codes_np, np.arange(len(_CODES)))
    note_count = np.bincount(note_codes_np, minlength=len(_CODES))
    notes_arr = pa.array(note_texts, pa.string())
    done = 0
    while done < records:
        k = min(chunk, records - done)
        done += k
        who = np.searchsorted(cumulative, rng.random(k), side="right").clip(0, n - 1)
        person = is_person[who]
        u = rng.random(k)
        drawn = np.where(
            person,
            np.searchsorted(tables["person"], u, side="right"),
            np.searchsorted(tables["organisation"], u, side="right"),
        ).clip(0, len(_CODES) - 1)
        day = base + rng.integers(0, span, k).astype("timedelta64[D]")
        cents, has_amount = _amount_cents(rng, drawn)
        note_pick = note_first[drawn] + (rng.random(k) * np.maximum(note_count[drawn], 1)).astype(np.int64)
        has_note = (rng.random(k) >= 0.25) & (note_count[drawn] > 0)
        src = source_of[drawn]
        year = day.astype("datetime64[Y]").astype(np.int64) + 1970
        for s_index, source in enumerate(_PARQUET_SOURCES):
            mine = np.flatnonzero(src == s_index)
            if len(mine) == 0:
                continue
            count = len(mine)
            serial = np.arange(numbers[source] + 1, numbers[source] + count + 1)
            numbers[source] += count
            ref = fill_column(
                SERIES_BY_SOURCE[source],
                year=pa.array(year[mine].astype(str), pa.string()),
                division=pa.array(division[who[mine]].astype(str), pa.string()),
                number=serial,
            )
            amounts = pa.array(cents[mine], pa.int64()).cast(pa.decimal128(20, 0))
            amounts = pc.divide(amounts.cast(pa.decimal128(20, 2)), pa.scalar(100, pa.decimal128(5, 0)))
            amounts = pc.if_else(pa.array(has_amount[mine]), amounts.cast(pa.decimal128(18, 2)), None)
            picked = notes_arr.take(pa.array(note_pick[mine] % max(len(note_texts), 1)))
            notes = pc.if_else(pa.array(has_note[mine]), picked, None)
            yield (
                source,
                pa.table(
                    {
                        "subject_id": subjects.column("subject_id").take(pa.array(who[mine])),
                        "behaviour": codes_arr.take(pa.array(drawn[mine])),
                        "occurred_on": pa.array(day[mine], pa.date32()),
                        "document_ref": ref,
                        "amount": amounts,
                        "note": notes,
                    }
                ),
            )


def write_parquet(
    out_dir: pathlib.Path,
    *,
    persons: int,
    organisations: int,
    records: int,
    today: datetime.date,
    seed: int = 2014,
    years: int = 3,
    chunk: int = 5_000_000,
) -> dict[str, pathlib.Path]:
    """Write subjects.parquet and one records-SOURCE.parquet per source (the import columns).

    Returns the written paths keyed by file name, like `write_files`.
    """
    import pyarrow.parquet as pq

    out_dir.mkdir(parents=True, exist_ok=True)
    subjects = generate_subjects_table(persons, organisations, today=today, seed=seed)
    paths = {"subjects.parquet": out_dir / "subjects.parquet"}
    pq.write_table(subjects, paths["subjects.parquet"])
    writers: dict[str, Any] = {}
    try:
        for source, table in generate_records_tables(
            subjects.select(["subject_id", "kind", "division"]),
            records,
            today=today,
            years=years,
            seed=seed,
            chunk=chunk,
        ):
            if source not in writers:
                path = out_dir / f"records-{source}.parquet"
                paths[path.name] = path
                writers[source] = pq.ParquetWriter(path, table.schema)
            writers[source].write_table(table)
    finally:
        for writer in writers.values():
            writer.close()
    return paths
