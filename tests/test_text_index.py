"""The look-up's index on each backend: phrases of consecutive tokens, a last token's beginning,
every phrase required, organisations before persons and shorter before longer, the limit kept."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from helpers import World, org_id, person_id
from xinyong.storage.store import Store
from xinyong.storage.text_index import (
    PERSONS_FROM,
    Entry,
    Phrase,
    search_position,
    text_index,
)

A, B, C, P = org_id(1), org_id(2), org_id(3), person_id(1)


def entry(position: int, subject_id: str, kind: str, chars: str, syllables: str) -> Entry:
    columns = {"chars": chars, "syllables": syllables, "initials": "", "rep": ""}
    return Entry(position, subject_id, kind, "", columns)


@pytest.fixture
def indexed(store: Store) -> Store:
    World(store).subjects(
        [(A, "organisation", "甲"), (B, "organisation", "乙"), (C, "organisation", "丙"), (P, "person", "丁")]
    )
    with store.write() as conn:
        index = text_index(conn)
        index.clear(conn)
        index.add(
            conn,
            [
                entry(
                    search_position("organisation", 8, 0), A, "organisation", "长城 城建 建设", "chang cheng jian she"
                ),
                entry(search_position("organisation", 4, 1), B, "organisation", "城建 建设", "cheng jian she"),
                entry(
                    search_position("organisation", 6, 2), C, "organisation", "建设 设长 长城", "jian she chang cheng"
                ),
                entry(search_position("person", 3, 3), P, "person", "长城", "chang cheng"),
            ],
        )
    return store


def found(store: Store, column: str, *phrases: Phrase, organisations_only: bool = False, limit: int = 10) -> list[str]:
    with store.read() as conn:
        rows = text_index(conn).find(conn, column, phrases, organisations_only=organisations_only, limit=limit)
    return [row.id for row in rows]


def test_a_phrase_is_tokens_in_order_best_position_first(indexed: Store) -> None:
    assert found(indexed, "chars", Phrase(("长城",))) == [C, A, P]  # 6, then 8 characters, then the person
    assert found(indexed, "chars", Phrase(("城建", "建设"))) == [B, A]
    assert found(indexed, "chars", Phrase(("建设", "城建"))) == []  # out of order
    assert found(indexed, "syllables", Phrase(("chang", "cheng"))) == [C, A, P]
    assert found(indexed, "chars", Phrase(("长城",)), organisations_only=True) == [C, A]
    assert found(indexed, "chars", Phrase(("长城",)), limit=1) == [C]


def test_a_beginning_and_every_phrase(indexed: Store) -> None:
    assert found(indexed, "syllables", Phrase(("jian", "sh"), open_end=True)) == [B, C, A]
    assert found(indexed, "syllables", Phrase(("jian", "sh"))) == []
    assert found(indexed, "syllables", Phrase(("chang",)), Phrase(("jian",))) == [C, A]
    assert found(indexed, "chars", Phrase(("长城",)), Phrase(("设长",))) == [C]


def test_a_column_is_searched_alone_and_an_empty_phrase_finds_nothing(indexed: Store) -> None:
    assert found(indexed, "chars", Phrase(("chang",))) == []
    assert found(indexed, "syllables", Phrase(())) == []
    with pytest.raises(ValueError, match="no such indexed column: name"):
        found(indexed, "name", Phrase(("长城",)))


def test_clear_forgets_everything(indexed: Store) -> None:
    with indexed.write() as conn:
        text_index(conn).clear(conn)
    assert found(indexed, "chars", Phrase(("长城",))) == []
    with indexed.write() as conn:
        assert text_index(conn).next_serial(conn) == 0


@given(
    a=st.tuples(st.sampled_from(["organisation", "person"]), st.integers(1, 300), st.integers(0, 10**9)),
    b=st.tuples(st.sampled_from(["organisation", "person"]), st.integers(1, 300), st.integers(0, 10**9)),
)
def test_positions_put_organisations_first_then_shorter_names(a: tuple[str, int, int], b: tuple[str, int, int]) -> None:
    def key(kind: str, length: int, serial: int) -> tuple[bool, int, int]:
        return (kind == "person", length, serial)

    assert (search_position(*a) < search_position(*b)) == (key(*a) < key(*b)) or a == b
    assert (search_position(*a) >= PERSONS_FROM) == (a[0] == "person")
