"""The whole population's state under a scheme's version in force and under a draft, on the batch
engine, from the one generated query (`derived.batch.query`).

The draft is never loaded: its effects are derived from the same snapshot of the ledger by the
same function loading would run (`derivation.effects_of_version`) and join the exported effects
file; the "after" query is the batch query of a store where the draft is the scheme's only
version, loaded before K and in force from the beginning. So "after" is, by construction, what the
batch would say of a store where the draft had been loaded in force on D, and the agreement test
(tests/test_lab_simulate.py) holds it to that subject by subject.
"""

from __future__ import annotations

import datetime as dt
import shutil
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa

from xinyong.derived.batch import EPOCH, BatchEngine, build_query, export_inputs
from xinyong.errors import BadInput
from xinyong.ledger import registry
from xinyong.rules.schemes import Scheme, SchemeVersion, version_in_force
from xinyong.storage.store import Store


@dataclass(frozen=True)
class Population:
    """Every subject's state (`engines.STATE_SCHEMA`) under the baseline and under the draft."""

    baseline: Scheme
    draft: Scheme
    before: pa.Table
    after: pa.Table


@contextmanager
def workdir() -> Iterator[Path]:
    """A folder for the engine's inputs, removed afterwards."""
    path = Path(tempfile.mkdtemp(prefix="xinyong-lab-"))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def as_draft(scheme: Scheme) -> SchemeVersion:
    """A draft as a version in force from the beginning, loaded before any knowledge time."""
    return SchemeVersion(scheme.model_copy(update={"effective_from": None}), EPOCH, scheme.digest())


def check_draft(store: Store, draft: Scheme, where: str) -> None:
    """A draft must be a new version of a loaded scheme: refused (naming the file) otherwise."""
    with store.read() as conn:
        loaded = registry.scheme_versions(conn, draft.scheme)
    if not loaded:
        raise BadInput(f"{where}: scheme {draft.scheme} is not loaded; a draft is a new version of a loaded scheme")
    if draft.version in {v.version for v in loaded}:
        raise BadInput(
            f"{where}: version {draft.version} of {draft.scheme} is already published; "
            "give the draft a version of its own"
        )


def in_force(versions: list[SchemeVersion], scheme: str, as_of: dt.date, known_at: dt.datetime) -> Scheme:
    """The version of `scheme` in force on D as known at K, or a clear error."""
    chosen = version_in_force([v for v in versions if v.id == scheme], as_of, known_at)
    if chosen is None:
        raise BadInput(f"--as-of: no version of scheme {scheme} is in force on {as_of} as known at {known_at}")
    return chosen.scheme


def evaluate(
    store: Store, engine: BatchEngine, draft: Scheme, *, as_of: dt.date, known_at: dt.datetime, where: str
) -> Population:
    """The scheme's population on D as known at K, under its version in force and under the draft."""
    check_draft(store, draft, where)
    drafted = as_draft(draft)
    with workdir() as folder:
        inputs = export_inputs(store, folder / "inputs", drafts=[drafted])
        versions = inputs.versions()
        baseline = in_force(versions, draft.scheme, as_of, known_at)
        before = engine.table(build_query(versions, as_of, known_at, [draft.scheme]), inputs)
        others = [v for v in versions if v.id != draft.scheme]
        after = engine.table(build_query([*others, drafted], as_of, known_at, [draft.scheme]), inputs)
    return Population(baseline, draft, before, after)


def evaluate_versions(
    store: Store, engine: BatchEngine, schemes: Sequence[str], *, as_of: dt.date, known_at: dt.datetime
) -> tuple[dict[str, Scheme], pa.Table]:
    """Loaded schemes' versions in force on D as known at K, and their populations' state (one
    query: `STATE_SCHEMA` rows of every wanted scheme)."""
    with workdir() as folder:
        inputs = export_inputs(store, folder / "inputs")
        versions = inputs.versions()
        for scheme in schemes:
            if not any(v.id == scheme for v in versions):
                raise BadInput(f"scheme {scheme} is not loaded")
        chosen = {scheme: in_force(versions, scheme, as_of, known_at) for scheme in schemes}
        return chosen, engine.table(build_query(versions, as_of, known_at, list(schemes)), inputs)


def evaluate_version(
    store: Store, engine: BatchEngine, scheme: str, *, as_of: dt.date, known_at: dt.datetime
) -> tuple[Scheme, pa.Table]:
    """One loaded scheme's version in force on D as known at K, and its population's state."""
    chosen, state = evaluate_versions(store, engine, [scheme], as_of=as_of, known_at=known_at)
    return chosen[scheme], state
