"""A batch run: export the store, compute every subject's state on one engine, refresh serving."""

from __future__ import annotations

import datetime as dt
import shutil
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa

from xinyong.derived import serving
from xinyong.derived.batch.engines import BatchEngine, read_state
from xinyong.derived.batch.inputs import export_inputs
from xinyong.derived.batch.query import build_query
from xinyong.storage.store import Store


@dataclass(frozen=True)
class BatchResult:
    out: Path
    engine: str
    as_of: dt.date
    known_at: dt.datetime
    versions: dict[str, str]
    rows: int
    served: int
    # The state itself, for a caller that refreshes the serving state in a transaction of its own.
    state: pa.Table = field(repr=False, compare=False)


@contextmanager
def _workdir(folder: Path | None) -> Iterator[Path]:
    if folder is not None:
        folder.mkdir(parents=True, exist_ok=True)
        yield folder
        return
    path = Path(tempfile.mkdtemp(prefix="xinyong-batch-"))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def run(
    store: Store,
    engine: BatchEngine,
    *,
    as_of: dt.date,
    known_at: dt.datetime,
    out: Path,
    schemes: Sequence[str] | None = None,
    workdir: Path | None = None,
    refresh_serving: bool = True,
    now: dt.datetime | None = None,
) -> BatchResult:
    """Export the store, compute every subject's state on one engine, write it, refresh serving."""
    with _workdir(workdir) as folder:
        inputs = export_inputs(store, folder / "inputs")
        query = build_query(inputs.versions(), as_of, known_at, schemes)
        out.parent.mkdir(parents=True, exist_ok=True)
        engine.write(query, inputs, out)
    table = read_state(out)
    served = 0
    if refresh_serving:
        with store.write() as conn:
            served = serving.replace_from_batch(conn, table, as_of, known_at, now or known_at)
    return BatchResult(out, engine.name, as_of, known_at, query.versions, table.num_rows, served, table)
