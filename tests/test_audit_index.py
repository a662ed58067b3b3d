"""The who-looked index: a subject's entries found through the runs and the unindexed tail, and
compaction merging runs without changing any answer, a step at a time, safely at once."""

from __future__ import annotations

import contextlib
import json
import math
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import text

from helpers import run_cli
from test_audit import ADMIN, looks, verify
from xinyong.security import audit, audit_index
from xinyong.service import Service
from xinyong.storage.store import Store


def test_who_looked_finds_indexed_and_newest_entries(store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    """Entries reach the subject index in sorted batches; who_looked sees every entry, indexed or not."""
    monkeypatch.setattr(audit, "INDEX_EVERY", 4)
    subjects = ["110105199001010010", "91110000100000000A", "110105199001010029"]
    looks(store, subjects, 11)
    with store.audit_read() as conn:
        indexed = conn.execute(text("SELECT indexed FROM audit_head")).scalar()
        listed = conn.execute(text("SELECT count(*) FROM audit_subjects")).scalar()
        runs = conn.execute(text("SELECT run, min(seq), max(seq) FROM audit_subjects GROUP BY run ORDER BY run")).all()
        found = {s: [e["seq"] for e in audit.who_looked(conn, s)] for s in subjects}
        via_entries = [r.seq for r in audit.entries(conn, subject_id=subjects[1])]
    assert indexed == 8  # two batches of four; entries 9 to 11 are the unindexed tail
    assert listed == 8
    assert [tuple(r) for r in runs] == [(1, 1, 4), (5, 5, 8)]  # each run keyed by its first entry
    assert found == {
        subjects[0]: [10, 7, 4, 1],
        subjects[1]: [11, 8, 5, 2],
        subjects[2]: [9, 6, 3],
    }
    assert via_entries == [2, 5, 8, 11]
    assert verify(store).ok


def _runs(store: Store) -> list[tuple[int, int]]:
    """The subject index's runs: (run, rows)."""
    with store.audit_read() as conn:
        query = "SELECT run, count(*) FROM audit_subjects GROUP BY run ORDER BY run"
        return [(int(r[0]), int(r[1])) for r in conn.execute(text(query))]


def test_compaction_merges_the_newest_runs_and_changes_no_answer(store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(audit, "INDEX_EVERY", 4)
    subjects = ["110105199001010010", "91110000100000000A", "110105199001010029"]
    looks(store, subjects, 33)  # eight runs of four (1, 5, … 29) and entry 33 in the tail

    def answers() -> dict[str, list[int]]:
        with store.audit_read() as conn:
            return {s: [e["seq"] for e in audit.who_looked(conn, s)] for s in subjects}

    before = answers()
    assert _runs(store) == [(run, 4) for run in range(1, 30, 4)]
    code, out, _ = run_cli(store.url, "audit", "compact", "--json")
    assert code == 0
    assert json.loads(out) == {"runs_before": 8, "runs_after": 1, "merged": 8, "moved": 28}
    assert _runs(store) == [(1, 32)]
    assert answers() == before
    assert verify(store).ok
    with store.audit_read() as conn:  # the act is logged like any other write
        assert [e.action for e in audit.entries(conn)][-1] == "audit.compact"
    # Nothing younger to merge with: the one run stays as it is.
    assert Service(store).audit.compact(ADMIN).merged == 0
    # Two new runs of four entries (33 to 40: the two compactions' own, about no subject, among
    # the checks): merged with each other, not with the run of 32, bigger than both together.
    looks(store, subjects, 7)
    assert _runs(store)[1:] == [(33, 2), (37, 4)]
    result = Service(store).audit.compact(ADMIN)
    assert (result.runs_before, result.runs_after, result.moved) == (3, 2, 4)
    assert _runs(store) == [(1, 32), (33, 6)]
    assert verify(store).ok


def test_a_run_made_while_compacting_is_left_alone(store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    """The merge moves the runs the compaction read, not one an appender committed since."""
    monkeypatch.setattr(audit, "INDEX_EVERY", 4)
    looks(store, ["110105199001010010", "91110000100000000A"], 12)  # runs 1, 5, 9
    looks(store, ["110105199001010029"], 4)  # run 13, "committed meanwhile"
    assert audit_index._merge(store, 1, [5, 9]) == 8
    assert _runs(store) == [(1, 12), (13, 4)]
    assert verify(store).ok


def test_compactions_at_once_move_each_row_once(store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    """Two compactions of the same runs, step by step side by side: each row moves once, none is
    copied twice or lost, whichever gets each step first."""
    monkeypatch.setattr(audit, "INDEX_EVERY", 4)
    subjects = [f"11010519900101{n:03d}X" for n in range(9)]
    looks(store, subjects, 36)  # runs 1, 5, … 33
    with store.audit_read() as conn:
        before = sorted(conn.execute(text("SELECT subject_id, seq FROM audit_subjects")).all())
    moved: list[int] = []
    workers = [threading.Thread(target=lambda: moved.append(audit_index._merge(store, 1, list(range(5, 34, 4)), 1)))]
    workers.append(
        threading.Thread(target=lambda: moved.append(audit_index._merge(store, 1, list(range(5, 34, 4)), 2)))
    )
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(30)
    assert sum(moved) == 32
    assert _runs(store) == [(1, 36)]
    with store.audit_read() as conn:
        assert sorted(conn.execute(text("SELECT subject_id, seq FROM audit_subjects")).all()) == before
    assert verify(store).ok


def test_a_compaction_holds_the_log_a_step_at_a_time(store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    """Each transaction moves at most a step's rows (a subject's rows of a run stay together), so an
    appender (every check) waits for one step, never for the whole merge."""
    monkeypatch.setattr(audit, "INDEX_EVERY", 8)
    subjects = ["110105199001010010", "91110000100000000A", "110105199001010029", "110105199001010037"]
    looks(store, subjects, 48)  # six runs of eight
    steps: list[int] = []
    real = store.audit_write

    @contextlib.contextmanager
    def counted() -> Iterator[Any]:
        with real() as conn:
            yield conn
            steps.append(conn.execute(text("SELECT count(*) FROM audit_subjects WHERE run = 1")).scalar_one())

    monkeypatch.setattr(store, "audit_write", counted)
    result = audit_index.compact(store, step=3)
    monkeypatch.undo()
    assert result.merged == 6
    grown = [after - before for before, after in zip([8, *steps], steps, strict=False)]
    # Runs of eight hold each subject twice: a step of three rows takes one subject's two.
    assert grown == [2] * 20
    assert _runs(store) == [(1, 48)]
    assert verify(store).ok


def test_compaction_keeps_few_runs_and_rewrites_each_entry_a_few_times() -> None:
    """Compacting after every new run (the worst case), 2,000 runs of slightly different sizes."""
    runs: list[int] = []
    end, rewrites, most_runs = 1, 0, 0
    for made in range(2000):
        runs.append(end)
        end += 4096 + made * 7919 % 61  # as index batches end wherever a commit ends
        count = audit_index._merge_from(runs, end)
        if count >= 2:
            rewrites += end - runs[-count + 1]  # every run but the oldest merged one moves
            runs = runs[: len(runs) - count + 1]
        most_runs = max(most_runs, len(runs))
    entries = end - 1
    bound = math.log(entries / 4096, 1.5) + 1
    assert most_runs <= bound  # about 16 for these 8 M entries
    assert rewrites <= entries * bound
