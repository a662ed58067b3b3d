"""Feeds for enforcer agencies: keyed hashes of who enters and leaves an agency's measures, version by
version, signed, replayable, acknowledged, and the delisting delay they measure (docs/enforcers.md).

Every test drives the service as an interface would, on SQLite and on PostgreSQL, with the ledger
written through the library at explicit times (`helpers.World`). The truth a feed is held to is the
online path's answer for every subject (`derived.state.StateReader`), computed here independently.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import json
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from hypothesis import HealthCheck, example, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st
from sqlalchemy import func, select, text

from helpers import DEMO_CITY, World, at, d, org_id, person_id
from xinyong.derived import feed_versions, feeds
from xinyong.derived.state import StateReader
from xinyong.errors import BadInput, NotFound
from xinyong.rules import feeds as rules
from xinyong.rules.clock import FixedClock
from xinyong.rules.engine import State
from xinyong.security.access import Forbidden, Principal, Role, Unauthenticated
from xinyong.security.keys import KeyRing
from xinyong.service import Service
from xinyong.storage import tables as t
from xinyong.storage.store import Store

ADMIN = Principal(Role.ADMIN, "office", channel="test")
AVIATION = Principal(Role.ENFORCER, "airline", agency="civil-aviation", channel="test")
RAILWAY = Principal(Role.ENFORCER, "railway", agency="railway", channel="test")
PUBLIC = Principal(Role.PUBLIC, "anonymous")

# DESIGN.md's example scheme with a second agency enforcing the defaulters list.
FEED_CITY = DEMO_CITY.replace(
    "  - {id: fast-track,",
    "  - {id: no-trains, kind: punishment, title: No train tickets, implemented_by: railway,\n"
    '     applies_when: {on_list: defaulters}, legal_basis: "Joint punishment memorandum 2016 item 2"}\n'
    "  - {id: fast-track,",
)
P1, P2, O1 = person_id(1), person_id(2), org_id(1)


@dataclass
class Bench:
    store: Store
    ring: KeyRing
    world: World
    keys: dict[str, str] = field(default_factory=dict)

    def service(self, when: dt.datetime) -> Service:
        return Service(self.store, FixedClock(when), keys=self.ring)

    def key(self, agency: str, when: dt.datetime | None = None) -> str:
        made = self.service(when or at("2026-01-01")).feeds.make_key(ADMIN, agency)
        self.keys[agency] = made["key"]
        return str(made["key"])

    def publish(self, day: str, hour: int = 1, **options: Any) -> dict[str, Any]:
        return self.service(at(day, hour)).feeds.publish(ADMIN, **options)

    def versions(self, agency: str, since: int = 0) -> list[dict[str, Any]]:
        return list(self.service(at("2100-01-01")).feeds.show(ADMIN, agency, since=since)["versions"])

    def truth(self, agency: str, day: str, known_at: dt.datetime) -> dict[str, set[str]]:
        """Who is under each of the agency's measures, asked of the online path subject by subject."""
        with self.store.read() as conn:
            measures = feeds.measures_on(conn, d(day), known_at, {agency})
            ids = list(conn.execute(select(t.subjects.c.id)).scalars())
            found: dict[str, set[str]] = {m.id: set() for m in measures}
            for subject_id in ids:
                reader = StateReader.open(conn, subject_id, known_at)
                for m in measures:
                    state = reader.state(m.scheme, d(day))
                    if isinstance(state, State) and m.measure in state.measures:
                        found[m.id].add(subject_id)
        return found

    def hashed(self, agency: str, subjects: set[str]) -> set[str]:
        return {rules.hashed(s, self.keys[agency]) for s in subjects}


def city(store: Store, folder: Path) -> Bench:
    world = World(store)
    world.load(FEED_CITY)
    world.source("court", ["COURT.DEFAULT"])
    world.source("transport", ["TRAFFIC.MINOR"])
    world.source("civil-affairs", ["CHARITY.BLOOD"])
    world.subjects([(P1, "person", "张三"), (P2, "person", "李四"), (O1, "organisation", "测试有限公司")])
    world.consent(P1, True, "2020-01-02")
    world.consent(P2, True, "2020-01-02")
    ring = KeyRing(folder / "keys")
    ring.ensure()
    return Bench(store, ring, world)


@pytest.fixture
def bench(store: Store, tmp_path: Path) -> Bench:
    return city(store, tmp_path)


def independent_hmac(subject_id: str, key: str) -> str:
    return hmac.new(key.encode("ascii"), subject_id.encode("utf-8"), hashlib.sha256).hexdigest()


def verified(version: dict[str, Any], public_keys: dict[str, str]) -> bool:
    """An enforcer's check, written without xinyong: Ed25519 over the canonical JSON of the rest."""
    rest = {k: v for k, v in version.items() if k != "signature"}
    message = json.dumps(rest, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    public = Ed25519PublicKey.from_public_bytes(base64.b64decode(public_keys[version["key"]]))
    try:
        public.verify(base64.b64decode(version["signature"]), message)
    except Exception:
        return False
    return True


# --- the first version, hashing, signing ------------------------------------------------------------


def test_the_first_version_is_the_whole_set_hashed_and_signed(bench: Bench) -> None:
    bench.world.record(P1, "COURT.DEFAULT", "2026-03-01", at("2026-03-02"))
    bench.world.record(O1, "COURT.DEFAULT", "2026-03-01", at("2026-03-02"))
    key = bench.key("civil-aviation")
    assert rules.KEY_PATTERN.fullmatch(key)
    published = bench.publish("2026-03-12")
    assert [(v["agency"], v["version"], v["created"], v["add"], v["del"]) for v in published["versions"]] == [
        ("civil-aviation", 1, True, 2, 0)
    ]
    [first] = bench.versions("civil-aviation")
    expected = sorted(independent_hmac(s, key) for s in (P1, O1))
    assert first["add"] == expected
    assert first["del"] == []
    assert first["measures"] == {"demo-city/no-flights": {"add": expected, "del": []}}
    assert (first["version"], first["day"], first["feed_key"], first["previous"]) == (1, "2026-03-12", 1, "0" * 64)
    assert set(first) == {
        "agency", "version", "day", "cut_at", "feed_key", "previous", "add", "del", "measures", "key", "signature"
    }  # fmt: skip
    assert verified(first, bench.ring.public_keys())
    # No identifier leaves: only hashes, 64 lowercase hex digits each.
    assert P1 not in json.dumps(first)
    assert all(rules.KEY_PATTERN.fullmatch(h) for h in first["add"])


def test_a_tampered_version_fails_verification_and_versions_chain(bench: Bench) -> None:
    bench.world.record(P1, "COURT.DEFAULT", "2026-03-01", at("2026-03-02"))
    bench.key("civil-aviation")
    bench.publish("2026-03-11")
    bench.publish("2026-03-12")
    first, second = bench.versions("civil-aviation")
    keys = bench.ring.public_keys()
    assert verified(first, keys)
    assert verified(second, keys)
    assert second["previous"] == rules.digest(first)
    for tampered in (
        {**second, "add": []},
        {**second, "day": "2026-03-13"},
        {**second, "previous": "1" * 64},
        {**second, "measures": {}},
        {**second, "signature": first["signature"]},
    ):
        assert not verified(tampered, keys)


def test_a_new_record_adds_revocation_and_expiry_remove(bench: Bench) -> None:
    old = bench.world.record(P2, "COURT.DEFAULT", "2024-03-01", at("2024-03-02"))  # until 2026-03-01
    key = bench.key("civil-aviation")
    bench.publish("2026-02-28")
    new = bench.world.record(P1, "COURT.DEFAULT", "2026-02-10", at("2026-02-11"))  # from 2026-02-21
    bench.publish("2026-03-01", hour=8)
    bench.world.revoke(new, at("2026-03-05", 9))
    bench.publish("2026-03-05", hour=10)
    first, second, third = bench.versions("civil-aviation")
    assert first["add"] == [rules.hashed(P2, key)]
    # On 2026-03-01 P1's new record adds them, and P2's expires.
    assert (second["add"], second["del"]) == ([rules.hashed(P1, key)], [rules.hashed(P2, key)])
    assert (third["add"], third["del"]) == ([], [rules.hashed(P1, key)])
    with bench.store.read() as conn:
        ended = dict(
            conn.execute(
                select(t.feed_entries.c.subject_id, t.feed_entries.c.ended_at).where(
                    t.feed_entries.c.op == "del", t.feed_entries.c.measure == ""
                )
            ).all()
        )
    # Expiry ends the measure at the start of the day; a revocation when it was recorded.
    assert ended[P2] == at("2026-03-01", 0).replace(tzinfo=None)
    assert ended[P1] == at("2026-03-05", 9).replace(tzinfo=None)
    assert old


def test_a_subject_repaired_on_d_leaves_in_d_s_version_and_the_delay_is_measured(bench: Bench) -> None:
    """The issue's acceptance check: repaired on D, removed in D's version; the agency that
    acknowledges is measured, the one that does not shows as late."""
    record = bench.world.record(P1, "COURT.DEFAULT", "2026-03-01", at("2026-03-02"))
    aviation, railway = bench.key("civil-aviation"), bench.key("railway")
    bench.publish("2026-03-12")
    bench.service(at("2026-03-12", 9)).feeds.acknowledge(AVIATION, "civil-aviation", 1)
    bench.world.end(record, "2026-03-20", at("2026-03-20", 10))  # repaired on D
    bench.publish("2026-03-20", hour=11)
    for agency, key in (("civil-aviation", aviation), ("railway", railway)):
        last = bench.versions(agency)[-1]
        assert (last["day"], last["add"], last["del"]) == ("2026-03-20", [], [rules.hashed(P1, key)])
    acknowledged = bench.service(at("2026-03-20", 13)).feeds.acknowledge(AVIATION, "civil-aviation", 2)
    assert acknowledged["acknowledged"] == 1
    found = {a["agency"]: a for a in bench.service(at("2026-03-22", 12)).feeds.delays(PUBLIC)["agencies"]}
    # From 10:00, when the repair was recorded (after the day began), to the acknowledgement at 13:00.
    assert found["civil-aviation"]["p50_seconds"] == found["civil-aviation"]["max_seconds"] == 3 * 3600
    assert (found["civil-aviation"]["unacknowledged"], found["civil-aviation"]["late"]) == (0, 0)
    assert (found["railway"]["removals"], found["railway"]["acknowledged"]) == (1, 0)
    assert (found["railway"]["unacknowledged"], found["railway"]["late"]) == (1, 1)
    assert found["railway"]["p50_seconds"] is None
    # Not late yet within the day after.
    early = {a["agency"]: a for a in bench.service(at("2026-03-20", 20)).feeds.delays(PUBLIC)["agencies"]}
    assert (early["railway"]["unacknowledged"], early["railway"]["late"]) == (1, 0)


def test_an_acknowledgement_covers_earlier_versions_and_is_kept(bench: Bench) -> None:
    bench.key("civil-aviation")
    for day in ("2026-03-01", "2026-03-02", "2026-03-03"):
        bench.publish(day)
    made = bench.service(at("2026-03-03", 9)).feeds.acknowledge(AVIATION, "civil-aviation", 2)
    assert made["acknowledged"] == 2
    again = bench.service(at("2026-03-04", 9)).feeds.acknowledge(AVIATION, "civil-aviation", 2)
    assert (again["acknowledged"], again["acknowledged_at"]) == (0, at("2026-03-03", 9))
    with bench.store.read() as conn:
        rows = conn.execute(select(t.feed_versions.c.version, t.feed_versions.c.acknowledged_by)).all()
    assert sorted(rows) == [(1, "test:airline"), (2, "test:airline"), (3, None)]


# --- versions go forward, once per change -----------------------------------------------------------


def test_publishing_again_makes_no_duplicate_and_a_later_change_the_same_day_a_new_version(bench: Bench) -> None:
    bench.key("civil-aviation")
    assert bench.publish("2026-03-12")["versions"][0]["created"]
    again = bench.publish("2026-03-12", hour=2)["versions"]
    assert [(v["version"], v["created"]) for v in again] == [(1, False)]
    bench.world.record(P1, "COURT.DEFAULT", "2026-03-01", at("2026-03-02"))  # applies from 2026-03-12
    later = bench.publish("2026-03-12", hour=3)["versions"]
    assert [(v["version"], v["day"], v["created"], v["add"]) for v in later] == [(2, "2026-03-12", True, 1)]
    # A new day always has its version, empty or not: the agency learns the feed is alive.
    assert bench.publish("2026-03-13")["versions"][0]["created"]
    assert [v["version"] for v in bench.versions("civil-aviation")] == [1, 2, 3]
    assert [v["version"] for v in bench.versions("civil-aviation", since=2)] == [3]
    assert bench.versions("civil-aviation", since=9) == []


def test_bad_input_is_refused_and_changes_nothing(bench: Bench) -> None:
    service = bench.service(at("2026-03-12"))
    with pytest.raises(NotFound, match="implements no measure"):
        service.feeds.make_key(ADMIN, "airline-of-nowhere")
    with pytest.raises(BadInput, match="cannot have a feed"):
        service.feeds.make_key(ADMIN, "../keys")
    with pytest.raises(NotFound, match="has no feed"):
        service.feeds.set_webhook(ADMIN, "civil-aviation", "https://example.org/hook")
    bench.key("civil-aviation")
    for url, why in (
        ("ftp://example.org/x", "not an http or https URL"),
        ("https://user:secret@example.org/x", "user name or password"),
        ("https:///nohost", "names no host"),
        ("https://example.org/a b", "no spaces"),
        ("https://example.org/" + "x" * 300, "at most 254"),
        ("", "give a URL"),
    ):
        with pytest.raises(BadInput, match=why):
            service.feeds.set_webhook(ADMIN, "civil-aviation", url)
    with pytest.raises(BadInput, match="after today"):
        service.feeds.publish(ADMIN, day=d("2026-03-13"))
    bench.publish("2026-03-12")
    with pytest.raises(BadInput, match="versions go forward in days"):
        bench.service(at("2026-03-13")).feeds.publish(ADMIN, day=d("2026-03-11"))
    with pytest.raises(NotFound, match="no version 5"):
        service.feeds.acknowledge(ADMIN, "civil-aviation", 5)
    with pytest.raises(BadInput, match="numbered from 1"):
        service.feeds.acknowledge(ADMIN, "civil-aviation", 0)
    with pytest.raises(NotFound, match="has no feed"):
        service.feeds.show(ADMIN, "railway")
    with pytest.raises(BadInput, match="0 or more"):
        service.feeds.show(ADMIN, "civil-aviation", since=-1)
    with bench.store.read() as conn:
        assert conn.execute(select(func.count()).select_from(t.feed_versions)).scalar() == 1
        row = conn.execute(select(t.feed_agencies)).one()
        assert (row.agency, row.webhook_url) == ("civil-aviation", None)
        assert conn.execute(select(t.feed_versions.c.acknowledged_at)).scalar() is None


# --- who may read and acknowledge -------------------------------------------------------------------


def test_an_enforcer_reads_and_acknowledges_only_its_own_agency_s_feed(bench: Bench) -> None:
    bench.key("civil-aviation")
    bench.key("railway")
    bench.publish("2026-03-12")
    service = bench.service(at("2026-03-12", 9))
    assert service.feeds.show(AVIATION, "civil-aviation")["versions"]
    with pytest.raises(Forbidden, match="only what agency civil-aviation"):
        service.feeds.show(AVIATION, "railway")
    with pytest.raises(Forbidden):
        service.feeds.acknowledge(AVIATION, "railway", 1)
    # An agency that has no feed: the same refusal, not a hint that it has none.
    with pytest.raises(Forbidden):
        service.feeds.show(AVIATION, "finance")
    with pytest.raises(Unauthenticated):
        service.feeds.show(PUBLIC, "civil-aviation")
    for action in (
        lambda: service.feeds.make_key(AVIATION, "civil-aviation"),
        lambda: service.feeds.publish(AVIATION),
        lambda: service.feeds.set_webhook(AVIATION, "civil-aviation", "https://example.org/x"),
    ):
        with pytest.raises(Forbidden):
            action()
    assert service.feeds.delays(PUBLIC)["agencies"]


def test_every_write_and_every_read_of_a_feed_is_audited(bench: Bench) -> None:
    key = bench.key("civil-aviation")
    bench.service(at("2026-03-01")).feeds.set_webhook(ADMIN, "civil-aviation", "https://example.org/hook")
    bench.publish("2026-03-12")
    bench.service(at("2026-03-12", 9)).feeds.show(AVIATION, "civil-aviation")
    bench.service(at("2026-03-12", 9)).feeds.acknowledge(AVIATION, "civil-aviation", 1)
    with pytest.raises(Forbidden):
        bench.service(at("2026-03-12", 9)).feeds.show(AVIATION, "railway")
    with bench.store.audit_read() as conn:
        rows = conn.execute(
            text("SELECT action, actor, outcome, detail FROM audit_log WHERE action LIKE 'feeds.%' ORDER BY seq")
        ).all()
    assert [(r.action, r.actor, r.outcome) for r in rows] == [
        ("feeds.key", "test:office", "done"),
        ("feeds.webhook", "test:office", "done"),
        ("feeds.publish", "test:office", "done"),
        ("feeds.read", "test:airline", "done"),
        ("feeds.ack", "test:airline", "done"),
        ("feeds.read", "test:airline", "denied"),
    ]
    assert key not in " ".join(r.detail or "" for r in rows)  # the key is in no log
    assert json.loads(rows[2].detail)["versions"] == {"civil-aviation": 1}


# --- rotation -------------------------------------------------------------------------------------


def test_a_rotated_key_rehashes_the_whole_set_and_is_no_delisting(bench: Bench) -> None:
    bench.world.record(P1, "COURT.DEFAULT", "2026-03-01", at("2026-03-02"))
    old = bench.key("civil-aviation")
    bench.publish("2026-03-12")
    folder = bench.ring.feeds().folder
    assert (folder / "civil-aviation.1.key").stat().st_mode & 0o777 == 0o600
    new = bench.key("civil-aviation", at("2026-03-12", 9))
    assert new != old
    assert not (folder / "civil-aviation.1.key").exists()
    assert (folder / "civil-aviation.2.key").exists()
    bench.world.record(O1, "COURT.DEFAULT", "2026-03-02", at("2026-03-03"))  # from 2026-03-13
    bench.publish("2026-03-13")
    first, second = bench.versions("civil-aviation")
    assert second["feed_key"] == 2
    assert second["del"] == [rules.hashed(P1, old)]
    assert second["add"] == sorted([rules.hashed(P1, new), rules.hashed(O1, new)])
    assert rules.replay([first, second]) == {rules.hashed(P1, new), rules.hashed(O1, new)}
    [delays] = bench.service(at("2026-03-14")).feeds.delays(PUBLIC)["agencies"]
    assert (delays["removals"], delays["unacknowledged"]) == (0, 0)


# --- the three ways to the set agree -----------------------------------------------------------------


def test_served_online_and_batch_give_the_same_set(bench: Bench, tmp_path: Path) -> None:
    world = bench.world
    world.subjects([(org_id(2), "organisation", "第二有限公司"), (person_id(3), "person", "王五")])
    world.consent(person_id(3), True, "2020-01-02")
    world.record(P1, "COURT.DEFAULT", "2026-03-01", at("2026-03-02"))
    world.record(O1, "COURT.DEFAULT", "2026-02-01", at("2026-02-02"))
    world.record(org_id(2), "COURT.DEFAULT", "2026-02-01", at("2026-02-02"))
    world.record(P2, "CHARITY.BLOOD", "2026-03-01", at("2026-03-02"))
    world.record(P2, "CHARITY.BLOOD", "2026-03-02", at("2026-03-03"))
    day = d("2026-03-20")
    service = bench.service(at("2026-03-20", 1))
    service.operations.batch_state(ADMIN, out=tmp_path / "state.parquet", as_of=day)
    # The day's changes after the batch: a revocation, a new record, a consent withdrawn.
    with bench.store.read() as conn:
        court = conn.execute(select(t.records.c.id).where(t.records.c.subject_id == O1)).scalar_one()
    world.revoke(court, at("2026-03-20", 2))
    world.record(P2, "COURT.DEFAULT", "2026-03-01", at("2026-03-20", 2))
    world.consent(P1, False, "2026-03-20")
    known = at("2026-03-20", 3)
    with bench.store.read() as conn:
        measures = feeds.measures_on(conn, day, known, {"civil-aviation", "city-services"})
    answers = {
        path: feeds.membership(bench.store, day, known, measures, path=path)  # type: ignore[arg-type]
        for path in ("auto", "online", "batch")
    }
    assert answers["auto"].paths == {"demo-city": "served"}
    assert answers["auto"].online < answers["online"].online
    assert answers["batch"].paths == {"demo-city": "batch"}
    truth = {**bench.truth("civil-aviation", "2026-03-20", known), **bench.truth("city-services", "2026-03-20", known)}
    for path, found in answers.items():
        assert found.measures == truth, path
    # With room for one subject online, the served path gives way to the batch.
    small = feeds.membership(bench.store, day, known, measures, online_limit=1)
    assert small.paths == {"demo-city": "batch"}
    assert small.measures == truth


# --- the store ----------------------------------------------------------------------------------


def test_the_migration_goes_down_and_up(bench: Bench) -> None:
    """Down to 0010 the feeds go with the webhook calls still owed; every notice's e-mail stays."""
    from alembic import command
    from alembic.config import Config

    from xinyong.due_process import notices
    from xinyong.storage.store import MIGRATIONS

    with bench.store.write() as conn:
        notices.set_contact(conn, P1, email="p1@example.invalid", lang="en", now=at("2026-03-01"))
    bench.world.record(P1, "COURT.DEFAULT", "2026-03-01", at("2026-03-02"))
    bench.key("civil-aviation")
    bench.service(at("2026-03-01")).feeds.set_webhook(ADMIN, "civil-aviation", "http://127.0.0.1:9/hook")
    bench.publish("2026-03-12")
    count = text("SELECT count(*) FROM outbox")
    with bench.store.read() as conn:
        assert conn.execute(count).scalar() == 2
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    with bench.store.migrating() as conn:
        config.attributes["connection"] = conn
        command.downgrade(config, "0010")
        assert conn.execute(count).scalar() == 1
        assert conn.execute(text("SELECT channel FROM outbox")).scalar() == "email"
        command.upgrade(config, "head")
        assert conn.execute(count).scalar() == 1
    bench.key("civil-aviation")  # the feeds start again from nothing
    bench.publish("2026-03-13")
    [again] = bench.versions("civil-aviation")
    assert again["version"] == 1
    assert again["add"]


# --- the property: whatever happens, the versions add up to the set -----------------------------

AGENCIES = ("civil-aviation", "railway", "city-services")
EVENTS = st.one_of(
    st.tuples(
        st.just("record"),
        st.sampled_from([P1, P2, O1]),
        st.sampled_from(["COURT.DEFAULT", "CHARITY.BLOOD"]),
        st.integers(0, 40),
    ),
    st.tuples(st.just("revoke"), st.integers(0, 30)),
    st.tuples(st.just("end"), st.integers(0, 30), st.integers(0, 5)),
    st.tuples(st.just("consent"), st.sampled_from([P1, P2]), st.booleans()),
    st.tuples(st.just("rotate"), st.sampled_from(AGENCIES)),
    st.tuples(st.just("acknowledge"), st.sampled_from(AGENCIES)),
)
STEPS = st.lists(st.tuples(st.integers(0, 12), st.lists(EVENTS, max_size=4)), min_size=1, max_size=7)


@hsettings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(steps=STEPS)
# Recorded, cut ten days on, then revoked after that day's cut: the revocation must reach a version.
@example(steps=[(0, [("record", P1, "COURT.DEFAULT", 0)]), (10, []), (0, [("revoke", 0)])])
def test_the_versions_always_add_up_to_the_set_under_the_agency_s_measures(steps: list[Any]) -> None:
    """Over random days of records, revocations, repairs, consent, key rotations and
    acknowledgements, replaying every version of each feed gives exactly the hashes of the subjects
    under at least one of the agency's measures on the version's day, as known when it was cut (and
    so for each measure); the kept set (`feed_members`) is that replay."""
    with tempfile.TemporaryDirectory() as folder:
        store = Store(f"sqlite:///{folder}/feeds.db")
        store.migrate()
        try:
            bench = city(store, Path(folder))
            for agency in AGENCIES:
                bench.key(agency)
            records: list[int] = []
            day = d("2026-03-01")
            last_cut: dt.datetime | None = None
            for gap, events in steps:
                day += dt.timedelta(days=gap)
                today = day.isoformat()
                # Time only goes forward, as the ledger's clock does: a second step on the same day
                # happens after that day's cut (at 20:00, then every half hour), not before it.
                again = last_cut is not None and gap == 0
                start = last_cut if again and last_cut is not None else at(today, 1)
                for n, event in enumerate(events, start=1):
                    when = start + dt.timedelta(minutes=5 * n)
                    try:
                        if event[0] == "record":
                            _, subject, behaviour, back = event
                            occurred = (day - dt.timedelta(days=back)).isoformat()
                            records.append(bench.world.record(subject, behaviour, occurred, when))
                        elif event[0] == "revoke" and records:
                            bench.world.revoke(records[event[1] % len(records)], when)
                        elif event[0] == "end" and records:
                            ended = (day - dt.timedelta(days=event[2])).isoformat()
                            bench.world.end(records[event[1] % len(records)], ended, when)
                        elif event[0] == "consent":
                            with store.write() as conn:
                                from xinyong.due_process.after_append import AFTER_APPEND
                                from xinyong.ledger import consent

                                consent.record_consent(
                                    conn, event[1], "demo-city", event[2], when, "test", after=AFTER_APPEND
                                )
                        elif event[0] == "rotate":
                            bench.key(event[1], when)
                        elif event[0] == "acknowledge":
                            newest = bench.versions(event[1])
                            if newest:
                                bench.service(when).feeds.acknowledge(ADMIN, event[1], newest[-1]["version"])
                    except BadInput:
                        pass  # an event the ledger refuses (ending a revoked record): nothing happened
                cut_at = last_cut + dt.timedelta(minutes=30) if again and last_cut is not None else at(today, 20)
                last_cut = cut_at
                bench.service(cut_at).feeds.publish(ADMIN)
                for agency in AGENCIES:
                    versions = bench.versions(agency)
                    truth = bench.truth(agency, today, cut_at)
                    whole = set().union(*truth.values())
                    assert rules.replay(versions) == bench.hashed(agency, whole), (agency, today)
                    for measure, subjects in truth.items():
                        changes = [v["measures"].get(measure, {"add": [], "del": []}) for v in versions]
                        assert rules.replay(changes) == bench.hashed(agency, subjects), (agency, measure, today)
                    with store.read() as conn:
                        kept = feed_versions.members(conn, agency)
                    assert set(kept.get("", {}).values()) == bench.hashed(agency, whole)
                    assert all(verified(v, bench.ring.public_keys()) for v in versions[-1:])
                    assert [v["previous"] for v in versions[1:]] == [rules.digest(v) for v in versions[:-1]]
        finally:
            store.dispose()
