"""Subject look-up: by part of a name in Chinese characters or pinyin, by code, by legal representative.

Credit China's look-up is what people know: type a few characters of a company's name, or its
pinyin (``changcheng``, or the initials ``cc``), or its unified code. A SQL ``LIKE`` finds only
exact substrings of the characters, so the look-up runs over an in-memory index instead: every
subject's name and legal representative with their pinyin (full, without tones) and initials,
built once per store from the subjects table with pypinyin and scored with rapidfuzz.

Ranking, best first: the exact code; names (or representatives) containing the query's characters
(a shorter name is a closer match); names whose pinyin or initials contain the query's letters;
then fuzzy matches (rapidfuzz's partial ratio, at least ``FUZZY_CUTOFF``) to forgive a mistyped
syllable. Substring hits always rank above fuzzy ones, so everything a ``LIKE`` would find is
found.

The index is refreshed when the subjects table changes: each look-up compares a cheap fingerprint
(the number of subjects and the newest registration time) with the one the index was built from.
Building it for the 22,000 subjects of the demo city takes 2.8 s (measured, docs/web.md; pypinyin's
word segmentation dominates), so the server builds it in the background when it starts; a look-up
over it takes 15-30 ms.
"""

from __future__ import annotations

import re
import threading
import time
import weakref
from dataclasses import dataclass, field
from typing import Any

from pypinyin import lazy_pinyin
from rapidfuzz import fuzz, process
from sqlalchemy import Connection, Engine, func, select

from xinyong.storage import tables as t

FUZZY_CUTOFF = 80  # for pinyin: two wrong letters in ten
FUZZY_CUTOFF_HAN = 70  # for characters: one wrong character in four
_LATIN = re.compile(r"[^a-z0-9]+")
_HAN = re.compile(r"[\u3400-\u9fff]")


@dataclass(frozen=True)
class Entry:
    id: str
    kind: str
    name: str
    legal_representative: str | None
    division: str | None
    pinyin: str  # full pinyin of the name, no tones, no spaces: "changchengjianshe"
    initials: str  # "ccjs"
    rep_pinyin: str

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "kind": self.kind,
            "name": self.name,
            "legal_representative": self.legal_representative,
            "division": self.division,
        }


def pinyin(text: str) -> tuple[str, str]:
    """Full pinyin (lower case, no tones, no separators) and initials of a text; letters and digits
    already in it pass through whole, in both ("ABC科技" → "abckeji", "abckj")."""
    full, initials = [], []
    for syllable in lazy_pinyin(text, errors="default"):
        letters = _LATIN.sub("", syllable.lower())
        if not letters:
            continue
        full.append(letters)
        initials.append(letters if syllable in text else letters[0])
    return "".join(full), "".join(initials)


def _entry(row: Any) -> Entry:
    full, initials = pinyin(row.name)
    rep = pinyin(row.legal_representative)[0] if row.legal_representative else ""
    return Entry(row.id, row.kind, row.name, row.legal_representative, row.division, full, initials, rep)


def fingerprint(conn: Connection) -> tuple[int, str]:
    row = conn.execute(select(func.count(), func.max(t.subjects.c.registered_at)).select_from(t.subjects)).one()
    return int(row[0]), str(row[1])


@dataclass
class SearchIndex:
    entries: list[Entry] = field(default_factory=list)
    built_from: tuple[int, str] | None = None
    build_seconds: float = 0.0

    @classmethod
    def build(cls, conn: Connection) -> SearchIndex:
        started = time.perf_counter()
        tag = fingerprint(conn)
        rows = conn.execute(select(t.subjects).order_by(t.subjects.c.name, t.subjects.c.id))
        entries = [_entry(row) for row in rows]
        return cls(entries, tag, time.perf_counter() - started)

    def search(self, query: str, *, organisations_only: bool, limit: int = 50) -> list[Entry]:
        text = query.strip()
        if not text:
            return []
        pool = [e for e in self.entries if e.kind == "organisation"] if organisations_only else self.entries
        ranked: dict[str, tuple[float, Entry]] = {}

        def hit(entry: Entry, rank: float) -> None:
            best = ranked.get(entry.id)
            if best is None or rank < best[0]:
                ranked[entry.id] = (rank, entry)

        code = text.upper()
        han = bool(_HAN.search(text))
        letters = _LATIN.sub("", text.lower())
        for entry in pool:
            if entry.id == code:
                hit(entry, 0)
            elif text in entry.name:
                hit(entry, 1 + len(entry.name) / 1000)
            elif entry.legal_representative and text in entry.legal_representative:
                hit(entry, 2 + len(entry.name) / 1000)
            elif letters and not han and len(letters) >= 2:
                if letters in entry.pinyin:
                    hit(entry, 3 + len(entry.pinyin) / 1000)
                elif letters in entry.initials:
                    hit(entry, 3.5 + len(entry.initials) / 1000)
                elif entry.rep_pinyin and letters == entry.rep_pinyin:
                    hit(entry, 4)
        if len(ranked) < 5 and ((han and len(text) >= 2) or (not han and len(letters) >= 4)):
            # Forgive a wrong character or syllable: fuzzy partial matching over names or pinyin.
            choices = [e.name for e in pool] if han else [e.pinyin for e in pool]
            needle = text if han else letters
            for _, score, index in process.extract(
                needle,
                choices,
                scorer=fuzz.partial_ratio,
                score_cutoff=FUZZY_CUTOFF_HAN if han else FUZZY_CUTOFF,
                limit=limit * 2,
            ):
                hit(pool[index], 5 + (100 - score) / 100)
        ordered = sorted(ranked.values(), key=lambda pair: (pair[0], pair[1].name, pair[1].id))
        return [entry for _, entry in ordered[:limit]]


class Indexes:
    """One index per database engine (so per store), rebuilt when the subjects table has changed."""

    def __init__(self) -> None:
        self._by_engine: weakref.WeakKeyDictionary[Engine, SearchIndex] = weakref.WeakKeyDictionary()
        self._lock = threading.Lock()

    def current(self, conn: Connection) -> SearchIndex:
        engine = conn.engine
        tag = fingerprint(conn)
        found = self._by_engine.get(engine)
        if found is not None and found.built_from == tag:
            return found
        with self._lock:
            found = self._by_engine.get(engine)
            if found is None or found.built_from != tag:
                found = SearchIndex.build(conn)
                self._by_engine[engine] = found
            return found

    def forget(self) -> None:
        self._by_engine.clear()


INDEXES = Indexes()


def search(conn: Connection, query: str, *, organisations_only: bool, limit: int = 50) -> list[dict[str, Any]]:
    """Subjects matching a query, best first, as plain dicts (id, kind, name, legal_representative, division)."""
    index = INDEXES.current(conn)
    return [e.as_dict() for e in index.search(query, organisations_only=organisations_only, limit=limit)]
