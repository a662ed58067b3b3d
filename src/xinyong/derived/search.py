"""Subject look-up: by part of a name in Chinese characters or pinyin, by code, by legal representative.

Credit China's look-up is what people know: type a few characters of a company's name, or its
pinyin (``changcheng``, or the initials ``cc``), or its unified code. The look-up reads an index on
disk (`storage.text_index`), derived from the subjects table like effects from the ledger: a
subject is indexed in the transaction that registers it (`index_subjects`, from the after-append
step), and `rebuild` derives the whole index again. Nothing is built when a server starts.

Ranking, best first, as the linear scan this replaced ranked: the exact code; names containing
the query's characters (a shorter name is a closer match); representatives containing them; names
whose pinyin (read as words, `search_terms`) or initials contain the query's letters; a
representative's pinyin; then, when nothing was found, names with one character or syllable
mistyped. A code names one subject: when it is found, it is the answer. Each class is one index
look-up that stops at the limit, because the index hands subjects out in the order of the ranking
within the class (`text_index.search_position`).
"""

from __future__ import annotations

import os
import time
from collections import deque
from collections.abc import Iterable, Iterator, Mapping, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from contextlib import ExitStack
from dataclasses import dataclass
from multiprocessing import get_context
from typing import Any

from rapidfuzz import fuzz
from sqlalchemy import Connection, bindparam, func, select

from xinyong.derived import search_terms as terms
from xinyong.rules.identifiers import normalise
from xinyong.storage import tables as t
from xinyong.storage.text_index import COLUMNS, Entry, Phrase, search_position, text_index

FUZZY_CUTOFF = 80  # for pinyin: two wrong letters in ten
TYPO_CANDIDATES = 200  # subjects read per mistyped form before the exact comparison
REBUILD_BATCH = 50_000  # subjects read, read as pinyin and written at a time by `rebuild`
_BY_CODE = select(t.subjects).where(t.subjects.c.id == bindparam("id"))


@dataclass(frozen=True)
class Hit:
    id: str
    kind: str
    name: str
    legal_representative: str | None
    division: str | None

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "kind": self.kind,
            "name": self.name,
            "legal_representative": self.legal_representative,
            "division": self.division,
        }


Read = tuple[str, str, str, int, str, str, str, str]  # kind, id, pinyin, length, then the columns


def read_subjects(subjects: Sequence[tuple[str, str, str, str | None]]) -> list[Read]:
    """What the index keeps of subjects given as (id, kind, name, legal_representative): the
    pinyin work, apart from the store so that `rebuild` can hand it to other processes."""
    made = []
    for subject_id, kind, name, representative in subjects:
        doc = terms.document(name, representative)
        made.append((kind, subject_id, doc.pinyin, doc.length, doc.chars, doc.syllables, doc.initials, doc.rep))
    return made


def _entries(read: Sequence[Read], first_serial: int) -> list[Entry]:
    return [
        Entry(search_position(kind, length, serial), subject_id, kind, pinyin, dict(zip(COLUMNS, columns, strict=True)))
        for serial, (kind, subject_id, pinyin, length, *columns) in enumerate(read, start=first_serial)
    ]


def index_subjects(conn: Connection, subjects: Sequence[Mapping[str, Any]]) -> None:
    """Index newly registered subjects (mappings with id, kind, name, legal_representative), in
    the caller's transaction."""
    if not subjects:
        return
    index = text_index(conn)
    given = [(s["id"], s["kind"], s["name"], s["legal_representative"]) for s in subjects]
    index.add(conn, _entries(read_subjects(given), index.next_serial(conn)))


def behind(conn: Connection) -> bool:
    """Whether some subject has no entry in the look-up: a store migrated from before the index
    (revision 0013 creates it empty, since reading pinyin needs the application), or one whose
    index was cleared. Subjects are only ever added, so fewer entries than subjects means behind."""
    entries = conn.execute(select(func.count()).select_from(t.search_entries)).scalar_one()
    return bool(conn.execute(select(func.count()).select_from(t.subjects)).scalar_one() > entries)


@dataclass(frozen=True)
class Rebuilt:
    subjects: int
    seconds: float


def rebuild(conn: Connection, *, readers: int | None = None) -> Rebuilt:
    """Derive the whole index again from the subjects table, in one transaction.

    Reading names as pinyin is Python and takes most of the time; the writing is the database's
    and runs without the GIL. Past `REBUILD_BATCH` subjects the reading is spread over `readers`
    processes (default: one per core), a few batches ahead of the writing, so that every core
    reads or writes (benchmarks/search.py measures the rate)."""
    started = time.perf_counter()
    index = text_index(conn)
    index.next_serial(conn)  # takes the index's turn
    index.clear(conn)
    total = conn.execute(select(func.count()).select_from(t.subjects)).scalar_one()
    workers = readers if readers is not None else (os.cpu_count() or 1)
    done = 0
    with ExitStack() as stack:
        if total > REBUILD_BATCH and workers > 1:
            # Forked, not spawned: a spawned reader would run the caller's main module again. The
            # readers never touch the store's connection they inherit, and leave by os._exit.
            pool = stack.enter_context(ProcessPoolExecutor(workers, mp_context=get_context("fork")))
            read: Iterable[list[Read]] = _ahead(pool, _batches(conn), 2 * workers)
        else:
            read = map(read_subjects, _batches(conn))
        for batch in read:
            index.add(conn, _entries(batch, done))
            done += len(batch)
    index.finish(conn)
    return Rebuilt(done, time.perf_counter() - started)


def _ahead(pool: ProcessPoolExecutor, batches: Iterator[list[Any]], depth: int) -> Iterator[list[Read]]:
    """`read_subjects` of each batch, in order, with at most `depth` batches in the pool at once
    (the subjects table is not held in memory whole)."""
    waiting: deque[Future[list[Read]]] = deque()
    for batch in batches:
        waiting.append(pool.submit(read_subjects, batch))
        if len(waiting) >= depth:
            yield waiting.popleft().result()
    while waiting:
        yield waiting.popleft().result()


def _batches(conn: Connection) -> Iterator[list[Any]]:
    s = t.subjects
    query = select(s.c.id, s.c.kind, s.c.name, s.c.legal_representative)
    rows = conn.execute(query.execution_options(yield_per=REBUILD_BATCH))
    for part in rows.partitions(REBUILD_BATCH):
        yield [tuple(row) for row in part]


class _Ranked:
    """Hits gathered class by class, each subject once, in the order first found."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.hits: dict[str, Hit] = {}

    @property
    def full(self) -> bool:
        return len(self.hits) >= self.limit

    def take(self, rows: Iterable[Any]) -> None:
        for row in rows:
            if self.full:
                return
            if row.id not in self.hits:
                self.hits[row.id] = Hit(row.id, row.kind, row.name, row.legal_representative, row.division)


def search(conn: Connection, query: str, *, organisations_only: bool, limit: int = 50) -> list[dict[str, Any]]:
    """Subjects matching a query, best first, as plain dicts (id, kind, name, legal_representative, division)."""
    typed = query.strip()
    q = terms.normal(typed)
    if not q:
        return []
    index = text_index(conn)
    ranked = _Ranked(limit)

    def find(column: str, *phrases: Phrase, n: int = limit) -> list[Any]:
        return index.find(conn, column, phrases, organisations_only=organisations_only, limit=n)

    code = conn.execute(_BY_CODE, {"id": normalise(typed)}).first()
    if code is not None and not (organisations_only and code.kind != "organisation"):
        return [Hit(code.id, code.kind, code.name, code.legal_representative, code.division).as_dict()]
    if terms.has_han(q):
        pairs = terms.pairs(q)
        ranked.take(find("chars", Phrase(tuple(pairs), open_end=len(q) == 1)))
        if not ranked.full:
            ranked.take(find("rep", Phrase(terms.marked(terms.REP, pairs), open_end=len(q) == 1)))
        if not ranked.hits:
            ranked.take(_mistyped_characters(q, find))
    else:
        # Letters that are not all pinyin may hold a word in Latin script (abckeji: abc ke ji).
        cuts = terms.segmentations(q) or (_around_one_unknown(q) if q.isalpha() else [])
        cut = cuts[0] if cuts else None
        for column, phrase in _letter_plans(q, cuts):
            if not ranked.full:
                ranked.take(find(column, phrase))
        if not ranked.hits and len(q) >= 4 and q.isalpha():
            ranked.take(_mistyped_pinyin(q, cut, find))
    return [hit.as_dict() for hit in ranked.hits.values()]


def _letter_plans(q: str, cuts: list[list[str]]) -> list[tuple[str, Phrase]]:
    """Where letters are looked for, best class first: as pinyin of names (cut into the fewest
    syllables, then the other ways, luan → lu an), as initials, as a representative's pinyin.

    A last syllable still being typed (changch) is a beginning of a token, which the engine
    answers by merging the lists of every token it begins (ch: chang, cheng, chi, …); a whole
    syllable is matched whole. Letters that read as two or more whole syllables are not initials
    (no name's initials hold a vowel after a consonant that often), which spares a phrase of many
    common pairs."""
    said = tuple(cuts[0]) if cuts else (q,)
    open_end = said[-1] not in terms.SYLLABLES
    plans = [("syllables", _syllables(cut, cut[-1] not in terms.SYLLABLES)) for cut in cuts or [list(said)]]
    whole = len(said) >= 2 and all(p in terms.SYLLABLES for p in said)
    if len(q) >= 2 and not whole:
        plans.append(("initials", Phrase(terms.marked(terms.INITIALS, terms.pairs(q)))))
    plans.append(("rep", Phrase(terms.marked(terms.REP, said), open_end)))
    return plans


def _syllables(said: Sequence[str], open_end: bool) -> Phrase:
    """Syllables as the index keeps them, in pairs (`search_terms.syllable_pairs`); one syllable
    alone is the beginning of a pair."""
    if len(said) < 2:
        return Phrase(tuple(said), open_end=True)
    return Phrase(tuple(terms.syllable_pairs(said, last_alone=False)), open_end)


def _mistyped_characters(q: str, find: Any) -> list[Any]:
    """Names with one character of the query replaced: each character in turn is let go, the pairs
    on either side of it must be there, and the name must hold the query with one character
    different."""
    if len(q) < 3:
        return []
    found: dict[str, Any] = {}
    for i in range(len(q)):
        sides = [side for side in (q[:i], q[i + 1 :]) if len(side) >= 2]
        if not sides:
            continue
        for row in find("chars", *(Phrase(tuple(terms.pairs(side))) for side in sides), n=TYPO_CANDIDATES):
            if row.id not in found and _one_different(q, terms.normal(row.name)):
                found[row.id] = row
    return sorted(found.values(), key=lambda row: row.position)


def _one_different(q: str, name: str) -> bool:
    k = len(q)
    return any(sum(a != b for a, b in zip(q, name[i : i + k], strict=True)) <= 1 for i in range(len(name) - k + 1))


def _mistyped_pinyin(q: str, syllables: list[str] | None, find: Any) -> list[Any]:
    """Names whose pinyin holds the query with a syllable mistyped: the syllables on either side
    of the mistyped one must be there, and the pinyin must come close (rapidfuzz's partial ratio,
    at least ``FUZZY_CUTOFF``)."""
    pieces = syllables or next(iter(_around_one_unknown(q)), None)
    if pieces is None or len(pieces) < 3:
        return []
    scored: dict[str, tuple[float, Any]] = {}
    # A mistyped syllable can be cut as another (cheng typed cehng reads ce hng): one piece or two
    # beside each other are let go in turn.
    gaps = [(i, i + width) for width in (1, 2) for i in range(len(pieces) - width + 1)]
    for start, end in gaps:
        # One syllable alone is in too many names to be a clue.
        sides = [s for s in (pieces[:start], pieces[end:]) if len(s) >= 2 and all(p in terms.SYLLABLES for p in s)]
        if not sides:
            continue
        for row in find("syllables", *(_syllables(side, False) for side in sides), n=TYPO_CANDIDATES):
            score = fuzz.partial_ratio(q, row.pinyin)
            if score >= FUZZY_CUTOFF and row.id not in scored:
                scored[row.id] = (score, row)
    return [row for _, row in sorted(scored.values(), key=lambda pair: (-pair[0], pair[1].position))]


def _around_one_unknown(q: str, most: int = 3) -> list[list[str]]:
    """Letters that are not pinyin as typed (changchengjainshe, abckeji), cut into syllables
    around one piece that is not one, fewest pieces and shortest piece first (chang cheng jain
    she; abc ke ji): the syllables on its sides are what the index is asked."""
    cuts = []
    for start in range(len(q)):
        left = terms.whole_syllables(q[:start])
        if left is None:
            continue
        for end in range(start + 1, min(len(q), start + 6) + 1):
            right = terms.whole_syllables(q[end:])
            if right is not None:
                cuts.append((len(left) + 1 + len(right), end - start, [*left, q[start:end], *right]))
    return [cut for _, _, cut in sorted(cuts)[:most]]
