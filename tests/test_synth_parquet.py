"""The vectorised synthetic population: valid and unique identifiers, the import columns, document
references unique per source, plausible shares, the same files for the same seed, and files the
bulk import takes whole."""

from __future__ import annotations

import datetime as dt
import json
from collections import Counter
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from stdnum.cn import ric, uscc
from typer.testing import CliRunner

from helpers import bulk_import
from xinyong.demo import city as demo
from xinyong.demo.synth import BEHAVIOURS_BY_KIND, SOURCES, write_parquet
from xinyong.due_process.after_append import AFTER_APPEND
from xinyong.interfaces.cli import app
from xinyong.ledger import registry
from xinyong.rules.schemes import load_scheme_file
from xinyong.storage import tables as t
from xinyong.storage.store import Store

TODAY = dt.date(2026, 5, 1)


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    out = tmp_path_factory.mktemp("synth")
    return write_parquet(out, persons=3000, organisations=400, records=12000, today=TODAY, seed=5)


def records(files: dict[str, Path]) -> dict[str, pa.Table]:
    return {name[8:-8]: pq.read_table(path) for name, path in files.items() if name.startswith("records-")}


def test_subjects_are_valid_unique_and_complete(files: dict[str, Path]) -> None:
    subjects = pq.read_table(files["subjects.parquet"])
    assert subjects.column_names == ["subject_id", "kind", "name", "legal_representative", "division"]
    rows = subjects.to_pylist()
    assert Counter(r["kind"] for r in rows) == {"person": 3000, "organisation": 400}
    ids = [r["subject_id"] for r in rows]
    assert len(set(ids)) == len(ids)
    for r in rows:
        if r["kind"] == "person":
            assert ric.is_valid(r["subject_id"]), r
            assert r["legal_representative"] is None
        else:
            assert uscc.is_valid(r["subject_id"]), r
            assert r["legal_representative"]
        assert r["division"] in {"371002", "371003", "371082", "371083"}
        assert len(r["name"]) >= 2
        assert all("\u4e00" <= c <= "\u9fff" for c in r["name"])


def test_records_follow_the_catalogue(files: dict[str, Path]) -> None:
    subjects = {r["subject_id"]: r["kind"] for r in pq.read_table(files["subjects.parquet"]).to_pylist()}
    tables = records(files)
    assert sum(t.num_rows for t in tables.values()) == 12000
    behaviours: Counter[str] = Counter()
    for source, table in tables.items():
        assert table.column_names == ["subject_id", "behaviour", "occurred_on", "document_ref", "amount", "note"]
        refs = table.column("document_ref").to_pylist()
        assert len(set(refs)) == len(refs), source
        for r in table.to_pylist():
            assert r["behaviour"] in SOURCES[source]
            assert r["behaviour"] in BEHAVIOURS_BY_KIND[subjects[r["subject_id"]]]
            assert dt.date(2023, 5, 1) <= r["occurred_on"] < TODAY
            behaviours[r["behaviour"]] += 1
    # Everyday behaviours dominate; rare ones exist but stay rare.
    assert behaviours.most_common(1)[0][0] == "TRAFFIC.MINOR"
    assert 0 < behaviours["COURT.DEFAULT"] < 0.05 * 12000
    assert behaviours["CIVIL.VOLUNTEER"] > behaviours["CIVIL.HONOUR"]


def test_same_seed_same_files(files: dict[str, Path], tmp_path: Path) -> None:
    again = write_parquet(tmp_path, persons=3000, organisations=400, records=12000, today=TODAY, seed=5)
    assert sorted(again) == sorted(files)
    for name in files:
        assert pq.read_table(again[name]).equals(pq.read_table(files[name])), name


def test_the_files_import_whole(files: dict[str, Path], tmp_path: Path) -> None:
    store = Store(f"sqlite:///{tmp_path / 'x.db'}")
    store.migrate()
    now = dt.datetime(2026, 5, 1, 4, tzinfo=dt.UTC)
    subjects = pq.read_table(files["subjects.parquet"])
    with store.write() as conn:
        for name in demo.SHIPPED_SCHEMES:
            path = demo.schemes_dir() / name
            registry.publish_scheme(
                conn, load_scheme_file(path), path.read_text(encoding="utf-8"), now, after=AFTER_APPEND
            )
        for source, codes in SOURCES.items():
            registry.add_source(conn, source, codes, now)
        rows = [
            {
                "id": r["subject_id"],
                "kind": r["kind"],
                "name": r["name"],
                "legal_representative": r["legal_representative"],
                "division": r["division"],
                "registered_at": now.replace(tzinfo=None),
            }
            for r in subjects.to_pylist()
        ]
        conn.execute(t.subjects.insert(), rows)
    total = 0
    for name, path in files.items():
        if name.startswith("records-"):
            total += bulk_import(store, path, source=name[8:-8], now=now, actor="test").imported
    assert total == 12000
    store.dispose()


def test_the_synth_command(tmp_path: Path) -> None:
    args = ["synth", "--persons", "50", "--organisations", "5", "--records", "200", "--out", str(tmp_path), "--json"]
    result = CliRunner().invoke(app, args, env={"XINYONG_NOW": "2026-05-01T12:00:00+08:00"})
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["records"] == 200
    assert "subjects.parquet" in data["files"]
    assert pq.read_table(tmp_path / "subjects.parquet").num_rows == 55
