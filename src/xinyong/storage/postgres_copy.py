"""PostgreSQL's binary COPY format, encoded column-wise from Arrow and NumPy.

The server then parses nothing: it inserts the fields as they come (1 M records: 9.1 → 8.5 s of
server CPU against CSV, docs/scale.md). Each column becomes one Arrow binary array of whole fields
(length and bytes, big-endian), and a row is the fields joined, with no Python object per value:
about 0.3 s of this process's CPU for a million records, where psycopg's `write_row` (a Python
call per row) cost 2.8 s, more than the server saved. Used by `PostgresBackend.load_arrow` for
every table whose column types it can encode (`encodable`): every table the bulk import writes.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

# PostgreSQL's binary COPY: a signature, flags and header-extension length, then per row the
# number of fields (int16) and per field its length (int32, -1 for NULL) and its bytes, big-endian.
SIGNATURE = b"PGCOPY\n\xff\r\n\x00" + b"\x00\x00\x00\x00" + b"\x00\x00\x00\x00"
_PG_EPOCH = dt.date(2000, 1, 1)
_NULL_FIELD = pa.scalar(b"\xff\xff\xff\xff", pa.binary())


def _fixed_fields(values: np.ndarray, width: str, nulls: pa.Array | None) -> pa.Array:
    """Fields of a fixed-width type: the length, then the value, big-endian; -1 for NULL."""
    record = np.empty(len(values), dtype=[("length", ">i4"), ("value", width)])
    record["length"] = np.dtype(width).itemsize
    record["value"] = values
    fields = pa.FixedSizeBinaryArray.from_buffers(
        pa.binary(record.itemsize), len(values), [None, pa.py_buffer(record.tobytes())]
    ).cast(pa.binary())
    return fields if nulls is None else pc.if_else(nulls, _NULL_FIELD, fields)


def _numeric_scale(kind: pa.DataType) -> int | None:
    """The scale of a decimal column whose values the binary numeric encoding here can carry."""
    if pa.types.is_decimal128(kind) and kind.precision <= 18 and 0 <= kind.scale <= 4:
        return int(kind.scale)
    return None


def encodable(kind: pa.DataType, pg_type: str) -> bool:
    if pg_type == "numeric":
        return _numeric_scale(kind) is not None
    return pg_type in _BINARY_FIELD


_NUMERIC = np.dtype(
    [("length", ">i4"), ("ndigits", ">i2"), ("weight", ">i2"), ("sign", ">u2"), ("dscale", ">i2"), ("digits", ">i2", 6)]
)


def _numeric_fields(column: pa.Array) -> pa.Array:
    """NUMERIC in PostgreSQL's binary form from a decimal column of at most 18 digits: a fixed
    layout of five base-10000 groups before the point and one after (the server strips the zero
    groups), display scale that of the column."""
    scale = int(column.type.scale)
    nulls = column.is_null() if column.null_count else None
    # A decimal128 is a 16-byte little-endian integer; at most 18 digits fit its low 8 bytes.
    words = np.frombuffer(column.buffers()[1], dtype="<i8")[2 * column.offset : 2 * (column.offset + len(column))]
    unscaled = np.where(column.is_valid().to_numpy(zero_copy_only=False), words[0::2], 0)
    magnitude = np.abs(unscaled)
    whole, fraction = np.divmod(magnitude, 10**scale)
    record = np.empty(len(column), dtype=_NUMERIC)
    record["length"] = record.itemsize - 4
    record["ndigits"], record["weight"], record["dscale"] = 6, 4, scale
    record["sign"] = np.where(unscaled < 0, 0x4000, 0)
    for group in range(5):
        record["digits"][:, group] = (whole // 10 ** (4 * (4 - group))) % 10_000
    record["digits"][:, 5] = fraction * 10 ** (4 - scale)
    fields = pa.FixedSizeBinaryArray.from_buffers(
        pa.binary(record.itemsize), len(column), [None, pa.py_buffer(record.tobytes())]
    ).cast(pa.binary())
    return fields if nulls is None else pc.if_else(nulls, _NULL_FIELD, fields)


def _text_fields(column: pa.Array) -> pa.Array:
    """Text fields: the UTF-8 length (-1 for NULL), then the bytes."""
    text = column if pa.types.is_string(column.type) else pc.cast(column, pa.string())
    lengths = pc.binary_length(text).fill_null(-1).to_numpy().astype(">i4")
    prefixes = pa.FixedSizeBinaryArray.from_buffers(pa.binary(4), len(text), [None, pa.py_buffer(lengths.tobytes())])
    return pc.binary_join_element_wise(
        prefixes.cast(pa.binary()), pc.cast(text, pa.binary()), b"", null_handling="replace", null_replacement=b""
    )


def _epoch_offset(column: pa.Array, unit: pa.DataType, shift: int) -> tuple[np.ndarray, pa.Array | None]:
    """Days (dates) or microseconds (timestamps) since PostgreSQL's epoch, and where the NULLs are."""
    values = pc.cast(column, unit).cast(pa.int64() if pa.types.is_timestamp(unit) else pa.int32())
    nulls = values.is_null() if values.null_count else None
    return values.fill_null(0).to_numpy() - shift, nulls


def _date_fields(column: pa.Array) -> pa.Array:
    days, nulls = _epoch_offset(column, pa.date32(), (_PG_EPOCH - dt.date(1970, 1, 1)).days)
    return _fixed_fields(days, ">i4", nulls)


def _timestamp_fields(column: pa.Array) -> pa.Array:
    shift = (_PG_EPOCH - dt.date(1970, 1, 1)).days * 86_400_000_000
    micros, nulls = _epoch_offset(column, pa.timestamp("us"), shift)
    return _fixed_fields(micros, ">i8", nulls)


def _integer_fields(kind: pa.DataType, width: str) -> Callable[[pa.Array], pa.Array]:
    def encode(column: pa.Array) -> pa.Array:
        nulls = column.is_null() if column.null_count else None
        # A safe cast: a value too large for the column fails here, as the server would refuse it.
        return _fixed_fields(pc.cast(column, kind).fill_null(0).to_numpy(), width, nulls)

    return encode


_BINARY_FIELD: dict[str, Callable[[pa.Array], pa.Array]] = {
    "bigint": _integer_fields(pa.int64(), ">i8"),
    "integer": _integer_fields(pa.int32(), ">i4"),
    "text": _text_fields,
    "character varying": _text_fields,
    "date": _date_fields,
    "timestamp without time zone": _timestamp_fields,
    "numeric": _numeric_fields,
}


def binary_rows(batch: pa.RecordBatch, types: Sequence[str]) -> memoryview:
    """The rows of a batch in PostgreSQL's binary COPY format, built column by column."""
    fields = [_BINARY_FIELD[kind](column) for column, kind in zip(batch.columns, types, strict=True)]
    count = pa.scalar(len(fields).to_bytes(2, "big"), pa.binary())
    rows = pc.binary_join_element_wise(count, *fields, b"")
    offsets = np.frombuffer(rows.buffers()[1], dtype=np.int32)[rows.offset : rows.offset + len(rows) + 1]
    return memoryview(rows.buffers()[2])[offsets[0] : offsets[-1]]
