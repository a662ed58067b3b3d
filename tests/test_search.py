"""Subject look-up over the index on disk: characters, full pinyin and initials, codes,
representatives, mistyped forms; organisations only for the public; a subject is found from the
transaction that registers it; a rebuild gives the same answers. Every test runs on SQLite (FTS5)
and PostgreSQL (text search)."""

from __future__ import annotations

import csv
import io

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import text

from helpers import World, at, org_id, person_id, run_cli
from xinyong.derived import search, search_terms
from xinyong.due_process.after_append import AFTER_APPEND
from xinyong.ledger import imports
from xinyong.rules.clock import FixedClock
from xinyong.security.access import PUBLIC, Principal, Role
from xinyong.service import Service
from xinyong.storage.store import Store

OFFICER = Principal(Role.OFFICER, "officer", channel="test")
ADMIN = Principal(Role.ADMIN, "admin", channel="test")
O1, O2, O3, O4, O5 = (org_id(n) for n in range(1, 6))
P1 = person_id(1)
SUBJECTS = [
    (O1, "organisation", "重庆长城建设有限公司", "李明"),
    (O2, "organisation", "威海远洋水产有限公司", "武欣德"),
    (O3, "organisation", "荣成鼎盛餐饮管理有限公司", ""),
    (O5, "organisation", "ABC科技有限公司", ""),
    (P1, "person", "张长城", ""),
]


def register(store: Store, rows: list[tuple[str, str, str, str]], when: str = "2026-01-01") -> None:
    """Subjects with their legal representatives, through the import's one path."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(["subject_id", "kind", "name", "legal_representative"])
    writer.writerows(rows)
    with store.write() as conn:
        imports.import_subjects(
            conn, "subjects.csv", buffer.getvalue().encode(), now=at(when, 0), actor="test", after=AFTER_APPEND
        )


@pytest.fixture
def service(store: Store) -> Service:
    World(store).load()
    register(store, SUBJECTS)
    return Service(store, FixedClock(at("2026-03-01")))


def ids(found: list[dict[str, object]]) -> list[object]:
    return [f["id"] for f in found]


def test_finds_by_characters_pinyin_initials_code_and_representative(service: Service) -> None:
    look = service.subjects.search
    assert ids(look(PUBLIC, "长城")) == [O1]
    assert ids(look(PUBLIC, "changcheng")) == [O1]
    assert ids(look(PUBLIC, "ChangCheng")) == [O1]
    assert ids(look(PUBLIC, "changch")) == [O1]  # still typing
    assert ids(look(PUBLIC, "cqcc")) == [O1]
    assert ids(look(PUBLIC, O2.lower())) == [O2]
    assert ids(look(PUBLIC, "武欣德")) == [O2]
    assert ids(look(PUBLIC, "wuxinde")) == [O2]
    assert ids(look(PUBLIC, "abc")) == [O5]
    assert ids(look(PUBLIC, "ＡＢＣ科技")) == [O5]  # full-width letters fold
    assert look(PUBLIC, "海南") == []


def test_exact_code_first_then_shorter_names(service: Service) -> None:
    found = ids(service.subjects.search(PUBLIC, "有限公司"))
    assert found == [O5, O1, O2, O3]  # by length of name: 9, 10, 10, 12 characters
    # A code that is also inside no name still comes first, before any name hit.
    assert ids(service.subjects.search(PUBLIC, O3))[0] == O3


def test_the_limit_is_kept(service: Service) -> None:
    assert ids(service.subjects.search(PUBLIC, "有限公司", limit=2)) == [O5, O1]


def test_forgives_a_mistyped_syllable_or_character(service: Service) -> None:
    look = service.subjects.search
    assert ids(look(PUBLIC, "yuanyangshuicang")) == [O2]  # shuichan, one letter wrong
    assert ids(look(PUBLIC, "changchengjainshe")) == [O1]  # jian typed jain: not pinyin at all
    assert ids(look(PUBLIC, "chongqingchangcehng")) == [O1]
    assert O3 in ids(look(PUBLIC, "鼎胜餐饮"))  # 盛 typed as 胜
    assert ids(look(PUBLIC, "远样水产")) == [O2]  # 洋 typed as 样


def test_persons_are_never_returned_to_the_public(service: Service) -> None:
    for query in ("张长城", "zhangchangcheng", "zcc", P1, "长城", "changcheng"):
        assert P1 not in ids(service.subjects.search(PUBLIC, query)), query
    assert P1 in ids(service.subjects.search(OFFICER, "张长城"))
    assert P1 in ids(service.subjects.search(OFFICER, "zhangchangcheng"))
    assert P1 in ids(service.subjects.search(OFFICER, P1))
    # Organisations still come before persons in the office's view.
    assert ids(service.subjects.search(OFFICER, "长城")) == [O1, P1]


def test_a_subject_is_found_from_the_transaction_that_registers_it(store: Store, service: Service) -> None:
    assert service.subjects.search(PUBLIC, "xinyuan") == []
    name = "文登新元橡胶制品有限公司"
    buffer = f"subject_id,kind,name\n{O4},organisation,{name}\n".encode()
    with store.write() as conn:
        imports.import_subjects(conn, "s.csv", buffer, now=at("2026-02-01"), actor="test", after=AFTER_APPEND)
        inside = search.search(conn, "xinyuan", organisations_only=True)
        assert [f["id"] for f in inside] == [O4]
    assert ids(service.subjects.search(PUBLIC, "xinyuan")) == [O4]
    assert ids(service.subjects.search(PUBLIC, "新元橡胶")) == [O4]


def test_a_failed_import_indexes_nothing(store: Store, service: Service) -> None:
    from xinyong.errors import BadInput

    bad = f"subject_id,kind,name\n{O4},organisation,文登新元橡胶\n{O4},organisation,twice\n".encode()
    with pytest.raises(BadInput), store.write() as conn:
        imports.import_subjects(conn, "s.csv", bad, now=at("2026-02-01"), actor="test", after=AFTER_APPEND)
    assert service.subjects.search(PUBLIC, "橡胶") == []


def test_a_rebuild_gives_the_same_answers_and_is_audited(store: Store, service: Service) -> None:
    queries = ("长城", "changcheng", "cqcc", "有限公司", "wuxinde", "远样水产", "zhangchangcheng")
    before = {q: service.subjects.search(OFFICER, q) for q in queries}
    with store.write() as conn:
        conn.execute(text("DELETE FROM search_entries"))
    assert service.subjects.search(OFFICER, "长城") == []
    subjects, seconds = service.subjects.rebuild_search(ADMIN)
    assert subjects == len(SUBJECTS)
    assert seconds >= 0
    # SQLite's FTS5 table was cleared by the rebuild (its 'delete-all'), not left beside new rows.
    assert {q: service.subjects.search(OFFICER, q) for q in queries} == before
    with store.audit_read() as conn:
        done = conn.execute(text("SELECT actor, outcome FROM audit_log WHERE action = 'search.rebuild'")).all()
    assert [tuple(row) for row in done] == [("test:admin", "done")]


def test_init_after_an_upgrade_fills_the_look_up(store: Store, service: Service, tmp_path: object) -> None:
    """A store that had subjects before the index existed (revision 0013 creates it empty) finds
    them again once `init` has upgraded it: the portal never says "nothing found" meanwhile."""
    from alembic import command
    from alembic.config import Config

    from xinyong.storage.store import MIGRATIONS

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    with store.migrating() as conn:
        config.attributes["connection"] = conn
        command.downgrade(config, "0012")
        command.upgrade(config, "head")
    assert service.subjects.search(PUBLIC, "长城") == []
    code, out, _ = run_cli(store.url, "init", env={"XINYONG_KEYS": str(tmp_path)})
    assert code == 0
    assert f"{len(SUBJECTS)} subjects indexed again" in out
    assert ids(service.subjects.search(PUBLIC, "长城")) == [O1]
    code, out, _ = run_cli(store.url, "init", env={"XINYONG_KEYS": str(tmp_path)})
    assert "indexed again" not in out  # complete: nothing to do


def test_only_the_administrator_rebuilds(service: Service) -> None:
    from xinyong.security.access import Forbidden

    with pytest.raises(Forbidden):
        service.subjects.rebuild_search(OFFICER)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_every_run_of_characters_or_syllables_of_a_name_finds_it(service: Service, data: st.DataObject) -> None:
    """What a LIKE would find, the index finds: any run of two or more characters of a name, and
    any run of whole syllables of its reading (two or more letters)."""
    subject_id, _, name, _ = data.draw(st.sampled_from([s for s in SUBJECTS if s[1] == "organisation"]))
    chars = search_terms.normal(name)
    start = data.draw(st.integers(0, len(chars) - 2))
    end = data.draw(st.integers(start + 2, len(chars)))
    assert subject_id in ids(service.subjects.search(PUBLIC, chars[start:end])), chars[start:end]
    said = search_terms.read(name).syllables
    first = data.draw(st.integers(0, len(said) - 1))
    last = data.draw(st.integers(first + 1, len(said)))
    typed = "".join(said[first:last])
    if len(typed) >= 2:
        assert subject_id in ids(service.subjects.search(PUBLIC, typed)), typed
