"""Subject look-up: by part of a name in Chinese characters or pinyin, by code, by legal representative.

Credit China's look-up is what people know: type a few characters of a company's name, or its
pinyin (``changcheng``, or the initials ``cc``), or its unified code. The look-up reads an index on
disk (`storage.text_index`), derived from the subjects table like effects from the ledger: a
subject is indexed in the transaction that registers it (`index_subjects`, from the after-append
step), and `rebuild` derives the whole index again. Nothing is built when a server starts.

Ranking, best first, as the linear scan this replaced ranked: the exact code; names containing
the query's characters (a shorter name is a closer match); representatives containing them; names
whose pinyin (read as words, `search_terms`) or initials contain the query's letters; a
representative's pinyin; then, when fewer than ``FEW`` were found, names with one character or
syllable mistyped. Each class is one index look-up that stops at the limit, because the index
hands subjects out in the order of the ranking within the class (`text_index.search_position`).
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from rapidfuzz import fuzz
from sqlalchemy import Connection, select

from xinyong.derived import search_terms as terms
from xinyong.rules.identifiers import normalise
from xinyong.storage import tables as t
from xinyong.storage.text_index import Entry, Phrase, search_position, text_index

FEW = 5  # fewer hits than this and mistyped forms are tried too
FUZZY_CUTOFF = 80  # for pinyin: two wrong letters in ten
TYPO_CANDIDATES = 200  # subjects read per mistyped form before the exact comparison
REBUILD_BATCH = 50_000  # subjects read, read as pinyin and written at a time by `rebuild`


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


def entries(subjects: Iterable[Any], first_serial: int) -> list[Entry]:
    """Index entries of subjects (rows or mappings with id, kind, name, legal_representative),
    numbered from `first_serial`."""
    made = []
    for serial, row in enumerate(subjects, start=first_serial):
        doc = terms.document(row["name"], row["legal_representative"])
        columns = {"chars": doc.chars, "syllables": doc.syllables, "initials": doc.initials, "rep": doc.rep}
        position = search_position(row["kind"], len(terms.normal(row["name"])), serial)
        made.append(Entry(position, row["id"], row["kind"], doc.pinyin, columns))
    return made


def index_subjects(conn: Connection, subjects: Sequence[Any]) -> None:
    """Index newly registered subjects, in the caller's transaction."""
    if not subjects:
        return
    index = text_index(conn)
    index.add(conn, entries(subjects, index.next_serial(conn)))


@dataclass(frozen=True)
class Rebuilt:
    subjects: int
    seconds: float


def rebuild(conn: Connection) -> Rebuilt:
    """Derive the whole index again from the subjects table, in one transaction."""
    started = time.perf_counter()
    index = text_index(conn)
    index.next_serial(conn)  # takes the index's turn
    index.clear(conn)
    done = 0
    for batch in _batches(conn):
        index.add(conn, entries(batch, done))
        done += len(batch)
    return Rebuilt(done, time.perf_counter() - started)


def _batches(conn: Connection) -> Iterator[list[Any]]:
    s = t.subjects
    query = select(s.c.id, s.c.kind, s.c.name, s.c.legal_representative).order_by(s.c.id)
    rows = conn.execute(query.execution_options(yield_per=REBUILD_BATCH))
    for part in rows.mappings().partitions(REBUILD_BATCH):
        yield list(part)


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
    text = query.strip()
    q = terms.normal(text)
    if not q:
        return []
    index = text_index(conn)
    ranked = _Ranked(limit)

    def find(column: str, *phrases: Phrase, n: int = limit) -> list[Any]:
        return index.find(conn, column, phrases, organisations_only=organisations_only, limit=n)

    code = conn.execute(select(t.subjects).where(t.subjects.c.id == normalise(text))).first()
    if code is not None and not (organisations_only and code.kind != "organisation"):
        ranked.take([code])
    if terms.has_han(q):
        chars = Phrase(tuple(terms.pairs(q)), open_end=len(q) == 1)
        for column in ("chars", "rep"):
            if not ranked.full:
                ranked.take(find(column, chars))
        if len(ranked.hits) < FEW and not ranked.full:
            ranked.take(_mistyped_characters(q, find))
    else:
        syllables = terms.segment(q)
        said = Phrase(tuple(syllables), open_end=True) if syllables else Phrase((q,), open_end=True)
        plans = [("syllables", said)]
        if len(q) >= 2:
            plans.append(("initials", Phrase(tuple(terms.pairs(q)))))
        plans.append(("rep", said))
        for column, phrase in plans:
            if not ranked.full:
                ranked.take(find(column, phrase))
        if len(ranked.hits) < FEW and not ranked.full and len(q) >= 4:
            ranked.take(_mistyped_pinyin(q, syllables, find))
    return [hit.as_dict() for hit in ranked.hits.values()]


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
    pieces = syllables or _around_one_unknown(q)
    if pieces is None or len(pieces) < 3:
        return []
    scored: dict[str, tuple[float, Any]] = {}
    # A mistyped syllable can be cut as another (cheng typed cehng reads ce hng): one piece or two
    # beside each other are let go in turn.
    gaps = [(i, i + width) for width in (1, 2) for i in range(len(pieces) - width + 1)]
    for start, end in gaps:
        sides = [s for s in (pieces[:start], pieces[end:]) if s and all(p in terms.SYLLABLES for p in s)]
        if sum(map(len, sides)) < 2:  # one syllable left is in too many names to be a clue
            continue
        for row in find("syllables", *(Phrase(tuple(side)) for side in sides), n=TYPO_CANDIDATES):
            score = fuzz.partial_ratio(q, row.pinyin)
            if score >= FUZZY_CUTOFF and row.id not in scored:
                scored[row.id] = (score, row)
    return [row for _, row in sorted(scored.values(), key=lambda pair: (-pair[0], pair[1].position))]


def _around_one_unknown(q: str) -> list[str] | None:
    """Letters that are not pinyin as typed (changchengjainshe), cut into syllables around one
    piece that is not one, in the fewest pieces (chang cheng jain she): the syllables on its sides
    are what the index is asked."""
    cuts = []
    for start in range(len(q)):
        left = terms.whole_syllables(q[:start])
        if left is None:
            continue
        for end in range(start + 1, min(len(q), start + 6) + 1):
            right = terms.whole_syllables(q[end:])
            if right is not None:
                cuts.append((len(left) + 1 + len(right), end - start, [*left, q[start:end], *right]))
    return min(cuts)[2] if cuts else None
