"""The look-up's text index, one per backend: SQLite FTS5, PostgreSQL text search.

Both keep the same thing: per subject, four columns of space-separated tokens
(`derived.search_terms.Document`), and answer the same question: the subjects whose column holds
each of some phrases (consecutive tokens, the last one perhaps only its beginning), in the order of
their `position`. The position (`search_position`) puts organisations before persons and shorter
names before longer ones, so the first rows in that order are the best: SQLite reads an FTS5
match in rowid order and stops at the limit, whatever the number of matches.

- SQLite: a contentless FTS5 table (`search_text`, tokenizer ``ascii``: every byte above 127 is a
  token character, so CJK pairs stay whole) with the position as rowid; `search_entries` keeps the
  position, subject and pinyin, not the texts (the index alone answers).
- PostgreSQL: the texts in `search_entries` with a GIN index on ``to_tsvector('simple', column)``
  per column; a phrase is ``'a' <-> 'b'`` and a beginning ``'b':*``.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, text

from xinyong.storage.backend import backend_of

COLUMNS = ("chars", "syllables", "initials", "rep")
ORGANISATION, PERSON = 0, 1
_KIND_SHIFT, _LENGTH_SHIFT = 60, 40
PERSONS_FROM = PERSON << _KIND_SHIFT  # positions at or above this are persons'
_MOST_LENGTH = (1 << (_KIND_SHIFT - _LENGTH_SHIFT)) - 1


def search_position(kind: str, name_length: int, serial: int) -> int:
    """Where a subject sorts in every answer: organisations first, then shorter names, then the
    order they were indexed in."""
    person = PERSON if kind == "person" else ORGANISATION
    return (person << _KIND_SHIFT) | (min(name_length, _MOST_LENGTH) << _LENGTH_SHIFT) | serial


@dataclass(frozen=True)
class Phrase:
    """Tokens that follow one another in a column; `open_end`: the last may be only a beginning."""

    tokens: tuple[str, ...]
    open_end: bool = False


@dataclass(frozen=True)
class Entry:
    """One subject of the index, as written: its position, who it is and its columns' texts."""

    position: int
    subject_id: str
    kind: str
    pinyin: str
    columns: dict[str, str]


_FOUND = (
    "SELECT s.id, s.kind, s.name, s.legal_representative, s.division, e.pinyin, e.position "
    "FROM ({matches}) AS m JOIN search_entries AS e ON e.position = m.position "
    "JOIN subjects AS s ON s.id = e.subject_id ORDER BY e.position"
)


class TextIndex(ABC):
    """Writes and reads the look-up's index on one backend."""

    def add(self, conn: Connection, entries: Sequence[Entry]) -> None:
        """Index these subjects (same transaction as the caller's)."""
        if not entries:
            return
        self._add(conn, entries)

    @abstractmethod
    def _add(self, conn: Connection, entries: Sequence[Entry]) -> None: ...

    @abstractmethod
    def clear(self, conn: Connection) -> None:
        """Forget every subject (before a rebuild)."""

    @abstractmethod
    def finish(self, conn: Connection) -> None:
        """After a rebuild: leave the index in its best shape for reading."""

    def next_serial(self, conn: Connection) -> int:
        """The serial of the next subject to be indexed, after taking the index's turn: two
        imports at once on PostgreSQL would otherwise hand out the same one."""
        backend_of(conn).take_table_turn(conn, "search_entries")
        return int(conn.exec_driver_sql("SELECT count(*) FROM search_entries").scalar_one())

    def find(
        self, conn: Connection, column: str, phrases: Sequence[Phrase], *, organisations_only: bool, limit: int
    ) -> list[Any]:
        """Subjects whose `column` holds every phrase, best position first: rows of (id, kind,
        name, legal_representative, division, pinyin, position)."""
        if column not in COLUMNS:
            raise ValueError(f"no such indexed column: {column}")
        if not phrases or not all(p.tokens for p in phrases):
            return []
        matches, params = self._matches(column, phrases)
        bound = PERSONS_FROM if organisations_only else 1 << 62
        query = _FOUND.format(matches=matches)
        return list(conn.execute(text(query), {**params, "bound": bound, "limit": limit}))

    @abstractmethod
    def _matches(self, column: str, phrases: Sequence[Phrase]) -> tuple[str, dict[str, Any]]:
        """A SELECT of the matching positions below :bound, at most :limit, in position order."""


class SqliteTextIndex(TextIndex):
    def _add(self, conn: Connection, entries: Sequence[Entry]) -> None:
        raw = conn.connection.driver_connection
        assert raw is not None
        raw.executemany(
            "INSERT INTO search_entries (position, subject_id, kind, pinyin) VALUES (?, ?, ?, ?)",
            [(e.position, e.subject_id, e.kind, e.pinyin) for e in entries],
        )
        raw.executemany(
            "INSERT INTO search_text (rowid, chars, syllables, initials, rep) VALUES (?, ?, ?, ?, ?)",
            [(e.position, *(e.columns[c] for c in COLUMNS)) for e in entries],
        )

    def clear(self, conn: Connection) -> None:
        conn.exec_driver_sql("DELETE FROM search_entries")
        conn.exec_driver_sql("INSERT INTO search_text (search_text) VALUES ('delete-all')")

    def finish(self, conn: Connection) -> None:
        """FTS5 writes an index in segments as it goes; merged into one, a phrase is one seek per
        token instead of one per segment."""
        conn.exec_driver_sql("INSERT INTO search_text (search_text) VALUES ('optimize')")

    def _matches(self, column: str, phrases: Sequence[Phrase]) -> tuple[str, dict[str, Any]]:
        # Tokens are letters and digits only (`search_terms.normal`), so quoting cannot be broken.
        said = " AND ".join('"' + " ".join(p.tokens) + '"' + (" *" if p.open_end else "") for p in phrases)
        return (
            "SELECT rowid AS position FROM search_text WHERE search_text MATCH :match AND rowid < :bound "
            "ORDER BY rowid LIMIT :limit",
            {"match": f"{column} : ({said})"},
        )


class PostgresTextIndex(TextIndex):
    def _add(self, conn: Connection, entries: Sequence[Entry]) -> None:
        raw = conn.connection.driver_connection
        assert raw is not None
        with raw.cursor() as cursor:
            cursor.executemany(
                "INSERT INTO search_entries (position, subject_id, kind, pinyin, chars, syllables, initials, rep) "
                "VALUES (%s, %s, %s, %s, %s, %s, %s, %s)",
                [(e.position, e.subject_id, e.kind, e.pinyin, *(e.columns[c] for c in COLUMNS)) for e in entries],
            )

    def clear(self, conn: Connection) -> None:
        conn.exec_driver_sql("DELETE FROM search_entries")

    def finish(self, conn: Connection) -> None:
        conn.exec_driver_sql("ANALYZE search_entries")

    def _matches(self, column: str, phrases: Sequence[Phrase]) -> tuple[str, dict[str, Any]]:
        said = " & ".join(
            "(" + " <-> ".join(f"'{t}'" for t in p.tokens) + (":*" if p.open_end else "") + ")" for p in phrases
        )
        return (
            f"SELECT position FROM search_entries WHERE to_tsvector('simple', {column}) "
            "@@ to_tsquery('simple', :match) AND position < :bound ORDER BY position LIMIT :limit",
            {"match": said},
        )


def text_index(conn: Connection) -> TextIndex:
    """The index of the backend `conn` is on."""
    return SqliteTextIndex() if conn.dialect.name == "sqlite" else PostgresTextIndex()
