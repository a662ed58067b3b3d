"""The who-looked index: the audit entries about each subject, in sorted runs, and their compaction.

The log itself is ordered by time; "who looked at me" needs it by subject. Appenders index the
log in runs of `audit.INDEX_EVERY` entries sorted by subject (`audit.append_driver`), so a
look-up is one seek per run, and `compact` merges runs so that their number stays small. Kept
apart from the chain (`security.audit`): the chain proves the log whole, this only finds in it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sqlalchemy import func, literal, select

from xinyong.storage import tables as t
from xinyong.storage.backend import backend_of

if TYPE_CHECKING:
    from xinyong.storage.store import Store


def runs_query() -> Any:
    """The subject index's runs, found by one B-tree seek each rather than a scan of the index.

    SQLite and PostgreSQL both read `SELECT DISTINCT run` by scanning every row; this recursive
    query asks for the next run after the last one found, as many times as there are runs.
    """
    index = t.audit_subjects
    runs = select(func.min(index.c.run).label("run")).cte("runs", recursive=True)
    following = select(func.min(index.c.run)).where(index.c.run > runs.c.run).scalar_subquery()
    return runs.union_all(select(following).where(runs.c.run.is_not(None)))


def about(subject_id: str) -> Any:
    """The entries about a subject: those in the subject index's runs, and the log's unindexed tail."""
    index = t.audit_subjects
    indexed = select(func.coalesce(func.max(t.audit_head.c.indexed), 0)).scalar_subquery()
    listed = select(index.c.seq).where(index.c.run.in_(select(runs_query().c.run)), index.c.subject_id == subject_id)
    tail = select(t.audit_log.c.seq).where(t.audit_log.c.seq > indexed, t.audit_log.c.subject_id == subject_id)
    return t.audit_log.c.seq.in_(listed.union_all(tail))


@dataclass(frozen=True)
class Compaction:
    runs_before: int
    runs_after: int
    merged: int  # runs merged into one (0: nothing to do)
    moved: int  # index rows rewritten


def _merge_from(runs: list[int], end: int) -> int:
    """How many of the newest runs to merge: the newest, and each older one at most twice as big as
    all the runs after it together (a run's size is its span of sequence numbers, `end` closing
    the last). Runs of one size differ by a few entries (an index batch waits for a whole commit),
    so "no bigger than" alone would leave equal runs unmerged.

    So a merged run is rewritten again only once at least half as much has been indexed after it,
    and grows by half each time: every entry is rewritten at most about log1.5(entries / INDEX_EVERY)
    times in all, and a log keeps about that many runs, plus those since the last compaction.
    """
    spans = [following - run for run, following in zip(runs, [*runs[1:], end], strict=True)]
    count, total = 0, 0
    while count < len(runs) and (count == 0 or spans[-1 - count] <= 2 * total):
        total += spans[-1 - count]
        count += 1
    return count


# Index rows moved per transaction by `compact`: on SQLite each step holds the audit log's write
# lock, which every check needs for its entry, so a step must stay short.
COMPACT_STEP = 20_000


def compact(store: Store, *, step: int = COMPACT_STEP) -> Compaction:
    """Merge the subject index's newest runs (see `_merge_from`), so that "who looked" stays a few
    seeks however long the log: each run costs a lookup one seek, and a busy server makes a run
    every 4,096 entries (a city at a million checks a day, 244 a day).

    The rows move into the oldest merged run, sorted by subject, `step` rows per transaction of
    their own (`_merge`): between two steps appenders go on, so checks never wait for a whole
    compaction (on SQLite each step holds the log's write lock). Nothing else changes, and
    `verify` checks the result like any other index.
    """
    with store.audit_read() as conn:
        runs = [int(run) for run in conn.execute(select(runs_query().c.run)).scalars() if run is not None]
        indexed = conn.execute(select(func.coalesce(func.max(t.audit_head.c.indexed), 0))).scalar_one()
    count = _merge_from(runs, int(indexed) + 1) if runs else 0
    if count < 2:
        return Compaction(len(runs), len(runs), 0, 0)
    moved = _merge(store, runs[-count], runs[-count + 1 :], step)
    return Compaction(len(runs), len(runs) - count + 1, count, moved)


def _merge(store: Store, into: int, runs: list[int], step: int = COMPACT_STEP) -> int:
    """Move the rows of `runs` into run `into`, in steps; returns how many moved.

    Each step moves one run's rows for a range of subjects (a subject's rows of a run are never
    split), inserting and deleting them in one transaction, under the index's turn
    (`Backend.take_table_turn`): two compactions at once never copy a row twice, the second
    finds the first's rows gone. Only the runs the compaction read: on PostgreSQL an appender may
    commit a newer run meanwhile, which stays as it is.
    """
    index = t.audit_subjects
    moved = 0
    for run in runs:
        start: str | None = ""
        while start is not None:
            with store.audit_write() as conn:
                backend_of(conn).take_table_turn(conn, index.name)
                of_run = (index.c.run == run, index.c.subject_id >= start)
                after = select(index.c.subject_id).where(*of_run).order_by(index.c.subject_id)
                bound = conn.execute(after.offset(step).limit(1)).scalar()
                if bound == start:  # one subject with more rows than a step: all of them at once
                    bound = conn.execute(
                        select(func.min(index.c.subject_id)).where(*of_run[:1], index.c.subject_id > start)
                    ).scalar()
                chosen = (*of_run, index.c.subject_id < bound) if bound is not None else of_run
                rows = select(literal(into, index.c.run.type), index.c.subject_id, index.c.seq).where(*chosen)
                conn.execute(
                    index.insert().from_select(
                        ["run", "subject_id", "seq"], rows.order_by(index.c.subject_id, index.c.seq)
                    )
                )
                moved += int(conn.execute(index.delete().where(*chosen)).rowcount)  # the insert's is -1 on psycopg
            start = bound
    return moved
