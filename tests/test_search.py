"""Subject look-up: Chinese characters, full pinyin and initials, fuzzy, codes, representatives.

The index is built from the subjects table and refreshed when subjects are added; the public finds
organisations only. The build time for the demo city's 22,000 subjects is measured in docs/web.md;
here a smaller city keeps the suite quick, with a generous bound.
"""

from __future__ import annotations

import time

import pytest

from helpers import World, at, org_id, person_id
from xinyong.derived import search
from xinyong.rules.clock import FixedClock
from xinyong.security.access import PUBLIC, Principal, Role
from xinyong.service import Service
from xinyong.storage.store import Store

OFFICER = Principal(Role.OFFICER, "officer", channel="test")
O1, O2, O3, O4 = org_id(1), org_id(2), org_id(3), org_id(4)
P1 = person_id(1)


@pytest.fixture
def world(sqlite_store: Store) -> World:
    world = World(sqlite_store)
    world.load()
    world.subjects(
        [
            (O1, "organisation", "重庆长城建设有限公司"),
            (O2, "organisation", "威海远洋水产有限公司"),
            (O3, "organisation", "荣成鼎盛餐饮管理有限公司"),
            (P1, "person", "张长城"),
        ]
    )
    with sqlite_store.write() as conn:
        from xinyong.storage import tables as t

        conn.execute(t.subjects.update().where(t.subjects.c.id == O2).values(legal_representative="武欣德"))
    return world


def ids(found: list[dict[str, object]]) -> list[object]:
    return [f["id"] for f in found]


def test_pinyin_keeps_polyphones_of_place_names() -> None:
    assert search.pinyin("重庆长城") == ("chongqingchangcheng", "cqcc")
    assert search.pinyin("ABC科技") == ("abckeji", "abckj")


def test_finds_by_characters_pinyin_initials_code_and_representative(world: World) -> None:
    service = Service(world.store, FixedClock(at("2026-03-01")))
    assert ids(service.subjects.search(PUBLIC, "长城")) == [O1]
    assert ids(service.subjects.search(PUBLIC, "changcheng")) == [O1]
    assert ids(service.subjects.search(PUBLIC, "ChangCheng")) == [O1]
    assert ids(service.subjects.search(PUBLIC, "cqcc")) == [O1]
    assert ids(service.subjects.search(PUBLIC, O2.lower())) == [O2]
    assert ids(service.subjects.search(PUBLIC, "武欣德")) == [O2]
    found = ids(service.subjects.search(PUBLIC, "有限公司"))
    assert sorted(found[:2]) == sorted([O1, O2])
    assert found[2] == O3  # a longer name is a less close match


def test_forgives_a_mistyped_syllable_or_character(world: World) -> None:
    service = Service(world.store, FixedClock(at("2026-03-01")))
    assert ids(service.subjects.search(PUBLIC, "yuanyangshuicang")) == [O2]  # shuichan, one letter wrong
    assert O3 in ids(service.subjects.search(PUBLIC, "鼎胜餐饮"))  # 盛 typed as 胜


def test_persons_are_never_returned_to_the_public(world: World) -> None:
    service = Service(world.store, FixedClock(at("2026-03-01")))
    for query in ("张长城", "zhangchangcheng", P1, "长城"):
        assert P1 not in ids(service.subjects.search(PUBLIC, query)), query
    assert P1 in ids(service.subjects.search(OFFICER, "张长城"))
    assert P1 in ids(service.subjects.search(OFFICER, "zhangchangcheng"))


def test_the_index_is_refreshed_when_subjects_are_added(world: World) -> None:
    service = Service(world.store, FixedClock(at("2026-03-01")))
    assert service.subjects.search(PUBLIC, "xinyuan") == []
    world.subjects([(O4, "organisation", "文登新元橡胶制品有限公司")], when="2021-01-01")
    assert ids(service.subjects.search(PUBLIC, "xinyuan")) == [O4]


def test_building_the_index_is_quick() -> None:
    # pypinyin segments each name into words (so 重庆 reads chongqing): ~0.15 ms a name. The demo
    # city's 22,000 subjects take about 3 s (docs/web.md); 2,000 names here must take well under 2 s.
    from xinyong.demo.synth import generate_city

    city = generate_city(persons=1800, organisations=200, today=at("2026-03-01").date(), seed=3)

    class Row:
        def __init__(self, subject: object) -> None:
            self.id = subject.subject_id  # type: ignore[attr-defined]
            self.kind = subject.kind  # type: ignore[attr-defined]
            self.name = subject.name  # type: ignore[attr-defined]
            self.legal_representative = subject.legal_representative  # type: ignore[attr-defined]
            self.division = subject.division  # type: ignore[attr-defined]

    started = time.perf_counter()
    entries = [search._entry(Row(s)) for s in city.subjects]
    elapsed = time.perf_counter() - started
    assert len(entries) == 2000
    assert elapsed < 2.0, elapsed
    index = search.SearchIndex(entries, (0, ""), elapsed)
    org = next(e for e in entries if e.kind == "organisation")
    assert org.id in [e.id for e in index.search(org.pinyin[:12], organisations_only=True)]
