"""Issuing sealed credit reports through the service, and verifying them: each format round trips,
the platform keeps only the id, the question and the digest, issuing is audited, a revocation (or
correction, or ending) since makes a report superseded naming the record, a rotated key still
verifies old reports, and the issued_reports migration goes down and up. Every test runs on SQLite
and on PostgreSQL."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest
from sqlalchemy import inspect, select

from helpers import World, at
from xinyong.errors import NotFound
from xinyong.rules.clock import FixedClock
from xinyong.security import audit, keys
from xinyong.security.access import Principal, Role
from xinyong.service import Service
from xinyong.storage import tables as t
from xinyong.storage.store import Store

ADMIN = Principal(Role.ADMIN, "office", channel="test")
PUBLIC = Principal(Role.PUBLIC, "anonymous", channel="test")


@pytest.fixture
def ring(tmp_path: Path) -> keys.KeyRing:
    made = keys.KeyRing(tmp_path / "keys")
    made.ensure()
    return made


def service_at(store: Store, ring: keys.KeyRing, when: str) -> Service:
    return Service(store, FixedClock(at(when)), keys=ring)


@pytest.fixture
def city(world: World) -> tuple[World, str, str, int]:
    person, org = world.standard()
    court = world.record(person, "COURT.DEFAULT", "2026-03-01", at("2026-03-02"), source="court")
    world.record(person, "TRAFFIC.MINOR", "2026-03-01", at("2026-03-02"), source="transport")
    world.record(org, "COURT.DEFAULT", "2026-03-01", at("2026-03-02"), source="court")
    return world, person, org, court


def ref_of(world: World, record: int) -> str:
    with world.store.read() as conn:
        row = conn.execute(select(t.records).where(t.records.c.id == record)).one()
    return f"{row.source_id}:{row.document_ref}"


@pytest.mark.parametrize("fmt", ["json", "html"])
def test_a_report_round_trips_and_the_platform_keeps_only_its_question_and_digest(
    city: tuple[World, str, str, int], ring: keys.KeyRing, fmt: str
) -> None:
    world, person, _org, _court = city
    svc = service_at(world.store, ring, "2026-04-01")
    sealed = svc.reports.issue(ADMIN, person, as_of=dt.date(2026, 4, 1))
    assert len(sealed["report_id"]) == 32
    assert sealed["as_of"] == "2026-04-01"
    assert sealed["verify_url"].endswith(f"/verify/{sealed['report_id']}")
    data = svc.reports.document(sealed, fmt, "en")  # type: ignore[arg-type]
    found = svc.reports.verify_file(PUBLIC, data)
    assert found["problems"] == []
    assert found["signature_valid"] is True
    assert (found["report_id"], found["status"], found["changes"]) == (sealed["report_id"], "valid", [])
    assert (found["as_of"], found["known_at"], found["digest"]) == (
        sealed["as_of"],
        sealed["known_at"],
        sealed["digest"],
    )
    with world.store.read() as conn:
        [row] = conn.execute(select(t.issued_reports)).all()
    # Of the content, nothing: the id, the question and the digest.
    assert set(row._mapping.keys()) == {
        "report_id",
        "subject_id",
        "audience",
        "as_of",
        "known_at",
        "digest",
        "issued_at",
    }
    assert (row.report_id, row.subject_id, row.audience, row.digest) == (
        sealed["report_id"],
        person,
        "subject",
        sealed["digest"],
    )


def test_issuing_is_audited_and_the_public_gets_the_public_report(
    city: tuple[World, str, str, int], ring: keys.KeyRing
) -> None:
    world, person, org, _court = city
    svc = service_at(world.store, ring, "2026-04-01")
    mine = svc.reports.issue(ADMIN, person, purpose="tenancy application")
    public = svc.reports.issue(PUBLIC, org)
    assert public["audience"] == "public"
    with pytest.raises(NotFound):
        svc.reports.issue(PUBLIC, person)  # a person's report is theirs alone
    with world.store.audit_read() as conn:
        entries = [e for e in audit.who_looked(conn, person) if e["action"] == "reports.read"]
    assert [(e["outcome"], e["purpose"], e["detail"]["report"]) for e in entries] == [
        ("done", "tenancy application", mine["report_id"])
    ]
    with world.store.read() as conn:
        audiences = dict(conn.execute(select(t.issued_reports.c.report_id, t.issued_reports.c.audience)).all())
    assert audiences == {mine["report_id"]: "subject", public["report_id"]: "public"}


def test_after_a_revocation_the_report_is_superseded_naming_the_record(
    city: tuple[World, str, str, int], ring: keys.KeyRing
) -> None:
    world, person, _org, court = city
    sealed = service_at(world.store, ring, "2026-04-01").reports.issue(ADMIN, person, as_of=dt.date(2026, 4, 1))
    data = service_at(world.store, ring, "2026-04-01").reports.document(sealed, "json")
    world.revoke(court, at("2026-04-05"))
    later = service_at(world.store, ring, "2026-04-06")
    assert later.reports.status(PUBLIC, sealed["report_id"]) == {
        "report_id": sealed["report_id"],
        "status": "superseded",
        "changes": [{"record": ref_of(world, court), "kind": "revoked"}],
    }
    online = later.reports.verify_file(PUBLIC, data)
    assert (online["signature_valid"], online["status"]) == (True, "superseded")
    offline = later.reports.verify_file(PUBLIC, data, offline=True)
    assert (offline["status"], offline["changes"]) == ("valid", [])
    # A report issued after the revocation asks a question that already knows it.
    again = later.reports.issue(ADMIN, person, as_of=dt.date(2026, 4, 1))
    assert later.reports.status(PUBLIC, again["report_id"])["status"] == "valid"


def test_corrections_and_endings_are_named_with_their_kind(
    city: tuple[World, str, str, int], ring: keys.KeyRing
) -> None:
    world, person, _org, court = city
    sealed = service_at(world.store, ring, "2026-04-01").reports.issue(ADMIN, person)
    with world.store.read() as conn:
        traffic = conn.execute(
            select(t.records.c.id).where(t.records.c.behaviour == "TRAFFIC.MINOR", t.records.c.subject_id == person)
        ).scalar_one()
    world.correct(traffic, at("2026-04-03"), occurred_on=dt.date(2026, 2, 27))
    world.end(court, "2026-04-04", at("2026-04-04"))
    status = service_at(world.store, ring, "2026-04-10").reports.status(PUBLIC, sealed["report_id"])
    assert status["status"] == "superseded"
    assert sorted((c["record"], c["kind"]) for c in status["changes"]) == sorted(
        [(ref_of(world, court), "ended"), (ref_of(world, traffic), "corrected")]
    )


def test_a_public_report_is_not_superseded_by_what_it_did_not_show(
    city: tuple[World, str, str, int], ring: keys.KeyRing
) -> None:
    """The organisation's public report shows only public-class records; a change to another
    record of its own is not the public's to learn."""
    world, _person, org, _court = city
    market = world.record(org, "TRAFFIC.MINOR", "2026-03-01", at("2026-03-02"), source="transport")  # market class
    sealed = service_at(world.store, ring, "2026-04-01").reports.issue(PUBLIC, org)
    assert ref_of(world, market) not in [r["ref"] for r in sealed["records"]]
    world.revoke(market, at("2026-04-02"))
    assert service_at(world.store, ring, "2026-04-03").reports.status(PUBLIC, sealed["report_id"])["status"] == "valid"


def test_a_rotated_key_still_verifies_old_reports(city: tuple[World, str, str, int], ring: keys.KeyRing) -> None:
    world, person, _org, _court = city
    svc = service_at(world.store, ring, "2026-04-01")
    old = svc.reports.issue(ADMIN, person)
    first = ring.current_id()
    second = svc.reports.rotate_key(ADMIN)
    assert second != first
    assert ring.current_id() == second
    new = svc.reports.issue(ADMIN, person)
    assert (old["key"], new["key"]) == (first, second)
    for sealed in (old, new):
        assert svc.reports.verify_file(PUBLIC, svc.reports.document(sealed, "json"))["status"] == "valid"
    assert svc.reports.published() == {"algorithm": "Ed25519", "current": second, "keys": ring.public_keys()}
    assert set(ring.public_keys()) == {first, second}


def test_a_report_the_platform_did_not_issue_is_invalid_online(
    city: tuple[World, str, str, int], ring: keys.KeyRing, tmp_path: Path
) -> None:
    """A file sealed with the platform's key whose number the store never recorded (issued by
    another store sharing the key, say) is invalid online, valid offline; a number nobody issued
    is not found; a digest other than the one issued is invalid."""
    world, person, _org, _court = city
    svc = service_at(world.store, ring, "2026-04-01")
    sealed = svc.reports.issue(ADMIN, person)
    forged = dict(sealed, report_id="0" * 32)
    from xinyong.presentation import sealing

    resealed = sealing.seal(sealing.content_of(forged), ring.sign)
    data = json.dumps(resealed).encode()
    assert svc.reports.verify_file(PUBLIC, data, offline=True)["status"] == "valid"
    online = svc.reports.verify_file(PUBLIC, data)
    assert online["status"] == "invalid"
    assert "no record of issuing it" in online["problems"][0]
    with pytest.raises(NotFound):
        svc.reports.status(PUBLIC, "not-a-number")
    assert svc.reports.status(PUBLIC, sealed["report_id"], digest="0" * 64)["status"] == "invalid"


def test_the_migration_goes_down_and_up(store: Store) -> None:
    from alembic import command
    from alembic.config import Config

    from xinyong.storage.store import MIGRATIONS

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    with store.migrating() as conn:
        config.attributes["connection"] = conn
        command.downgrade(config, "0012")
        assert not inspect(conn).has_table("issued_reports")
        command.upgrade(config, "head")
        assert conn.execute(select(t.issued_reports)).all() == []
