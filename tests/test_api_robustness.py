"""Bad paths and headers, on both backends (DESIGN.md, "Trust under load, faults and attack").

Each test reproduces a finding of issue 16 and failed before its fix:
- a NUL byte or an over-long id in a path (a NUL in a query, a header or a form too) is a 4xx
  problem, never a 500 with a stack trace in the log (PostgreSQL refuses NUL in text and ids over
  the columns' 32 characters);
- a token whose label fills the 128 characters of the audit's actor column works;
- a subject's who-looked never shows another person's full id (a refused subject's role, a log-in
  named by its id, the reason of a refusal);
- one rule for the Authorization header: two are a 400, an empty one a 401, on the check's fast
  path and every other route alike;
- SQLite store files are readable by their owner only; logged paths and stack traces carry no
  person's full id.
"""

from __future__ import annotations

import csv
import io
import logging
import os
import re
import stat
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from helpers import World, at, org_id, person_id
from xinyong.errors import Unavailable
from xinyong.interfaces.site import create_app
from xinyong.rules.clock import FixedClock
from xinyong.rules.identifiers import mask
from xinyong.security.access import Principal, Role
from xinyong.service import Service
from xinyong.storage.store import Store

NOW = at("2026-03-01")
P1, P2 = person_id(1), person_id(2)
O1 = org_id(1)
ADMIN = Principal(Role.ADMIN, "setup", channel="test")
PROBLEM = "application/problem+json"


@dataclass
class Site:
    store: Store
    client: TestClient
    tokens: dict[str, str]

    def get(self, path: str, role: str | None = None, **kwargs: Any) -> Any:
        headers = {"Authorization": f"Bearer {self.tokens[role]}"} if role else {}
        return self.client.get(path, headers={**headers, **kwargs.pop("headers", {})}, **kwargs)


@pytest.fixture
def site(store: Store) -> Iterator[Site]:
    world = World(store)
    world.standard()
    world.subjects([(P2, "person", "李四")])
    world.consent(P2, True, "2020-01-02")
    world.record(P1, "COURT.DEFAULT", "2026-01-05", at("2026-01-06"))
    world.record(O1, "COURT.DEFAULT", "2026-01-05", at("2026-01-06"))
    service = Service(store, FixedClock(at("2026-02-01")))
    tokens = {}
    for name, role, bound in (
        ("admin", Role.ADMIN, {}),
        ("aviation", Role.ENFORCER, {"agency": "civil-aviation"}),
        ("p1", Role.SUBJECT, {"subject": P1}),
        ("p2", Role.SUBJECT, {"subject": P2}),
    ):
        tokens[name], _ = service.credentials.create_token(ADMIN, role, label=name, **bound)  # type: ignore[arg-type]
    # A log-in named by the person's id, as the web pages' log-ins are (its label is the login).
    tokens["p1_login"], _ = service.credentials.create_token(ADMIN, Role.SUBJECT, subject=P1, label=P1)
    app = create_app(store, clock=FixedClock(NOW), token_cache_seconds=0)
    with TestClient(app, raise_server_exceptions=False) as client:
        yield Site(store, client, tokens)


def errors_logged(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [f"{r.name}: {r.getMessage()}" for r in caplog.records if r.levelno >= logging.ERROR]


# --- 5: a NUL byte, an over-long id ---------------------------------------------------------------

NUL_PATHS = [
    "/v1/subjects/X%00",
    f"/v1/subjects/{P1}%00/state",
    "/v1/reports/X%00",
    "/v1/lists/court%00/x",
    "/v1/records/court:X%00",
    "/v1/schemes/demo%00city",
    "/v1/checks/X%00/demo-city/no-flights",  # the check's fast path
    f"/v1/checks/{P1}/demo-city/no%00flights",
    "/v1/subjects?q=%00",
    "/subjects/X%00",  # a web page
    "/lists/demo-city/defaulters%00",
    "/search?q=a%00",
]


@pytest.mark.parametrize("role", [None, "admin"])
def test_a_nul_byte_in_a_path_or_query_is_a_400_problem(
    site: Site, role: str | None, caplog: pytest.LogCaptureFixture
) -> None:
    for path in NUL_PATHS:
        answer = site.get(path, role)
        assert answer.status_code == 400, (path, answer.status_code, answer.text)
        assert answer.headers["content-type"] == PROBLEM, path
        assert "NUL" in answer.json()["detail"]
    assert not errors_logged(caplog)


def test_a_nul_byte_in_a_form_is_a_400_problem(site: Site, caplog: pytest.LogCaptureFixture) -> None:
    form = site.client.get("/login").text
    csrf = re.search(r'name="csrf" value="([^"]+)"', form)
    assert csrf
    for data in ({"login": "a\x00", "password": "x"}, {"login": "a", "password": "x\x00y"}):
        answer = site.client.post("/login", data={"csrf": csrf.group(1), **data}, follow_redirects=False)
        assert answer.status_code == 400, (data, answer.status_code, answer.text)
        assert answer.headers["content-type"] == PROBLEM
        assert "NUL" in answer.json()["detail"]
    # A form without one reaches its page as it was sent; one past the size limit is still a 413.
    fine = {"csrf": csrf.group(1), "bearer": site.tokens["p1"]}
    assert site.client.post("/login", data=fine, follow_redirects=False).status_code == 303
    small = create_app(site.store, clock=FixedClock(NOW), max_body=1024)
    with TestClient(small, raise_server_exceptions=False) as client:
        big = client.post("/login", data={"csrf": "x", "login": "a" * 5000}, follow_redirects=False)
        assert big.status_code == 413, big.text
    assert not errors_logged(caplog)


TOO_LONG = [
    "/v1/subjects/{}",
    "/v1/subjects/{}/state",
    "/v1/subjects/{}/audit",
    "/v1/subjects/{}/objections",
    "/v1/reports/{}",
    "/v1/checks/{}/demo-city/no-flights",
    "/v1/lists/{}/defaulters",
    "/v1/lists/demo-city/{}",
    "/v1/schemes/{}",
    "/v1/records/{}",
    "/v1/aggregates/{}",
    "/subjects/{}",
    "/schemes/{}",
    "/lists/demo-city/{}",
]


@pytest.mark.parametrize("role", [None, "admin"])
def test_an_over_long_id_in_a_path_is_a_4xx_problem(
    site: Site, role: str | None, caplog: pytest.LogCaptureFixture
) -> None:
    for template in TOO_LONG:
        for value in ("1" * 33, "X" * 65, "中" * 300):
            path = template.format(value)
            answer = site.get(path, role)
            assert 400 <= answer.status_code < 500, (path, answer.status_code, answer.text)
            page = not path.startswith("/v1/")
            expected = "text/html" if page else PROBLEM
            assert answer.headers["content-type"].startswith(expected), (path, answer.headers["content-type"])
    assert not errors_logged(caplog)


def test_a_token_with_a_long_label_works_and_stays_attributable(site: Site, caplog: pytest.LogCaptureFixture) -> None:
    made = site.client.post(
        "/v1/tokens",
        json={"role": "officer", "label": "L" * 128},
        headers={"Authorization": f"Bearer {site.tokens['admin']}"},
    )
    assert made.status_code == 201, made.text
    bearer, token_id = made.json()["token"], made.json()["id"]
    # The command line takes any label: longer than the column, too.
    longer, info = Service(site.store, FixedClock(NOW)).credentials.create_token(ADMIN, Role.OFFICER, label="M" * 300)
    for token in (bearer, longer):
        headers = {"Authorization": f"Bearer {token}"}
        assert site.client.get(f"/v1/subjects/{P1}", headers=headers).status_code == 200
        assert site.client.get(f"/v1/checks/{P1}/demo-city/no-flights", headers=headers).status_code == 200
        assert site.client.get(f"/v1/subjects/{P2}/state", headers=headers).status_code == 200
    exported = site.get("/v1/audit/export", "admin")
    actors = {row["actor"] for row in csv.DictReader(io.StringIO(exported.text))}
    actors = {actor for actor in actors if actor.startswith("api:L") or "MMM" in actor}
    assert len(actors) == 2, actors
    assert all(len(actor) <= 128 for actor in actors), actors
    assert any(token_id in actor for actor in actors), actors  # cut short, still names its token
    assert any(info.id in actor for actor in actors), actors
    assert not errors_logged(caplog)


# --- 6: who looked --------------------------------------------------------------------------------


def test_who_looked_never_shows_another_persons_full_id(site: Site) -> None:
    # P1 asks about P2 and is refused; P1's log-in (named by P1's id) reads P2's profile.
    assert site.get(f"/v1/subjects/{P2}/state", "p1").status_code == 403
    assert site.get(f"/v1/subjects/{P2}/state", "p1_login").status_code == 403
    assert site.get(f"/v1/reports/{P2}", "p1", headers={"X-Purpose": f"for {P1}"}).status_code in (403, 404)
    mine = site.get(f"/v1/subjects/{P2}/audit", "p2")
    assert mine.status_code == 200, mine.text
    entries = mine.json()["entries"]
    assert len(entries) >= 3
    assert P1 not in mine.text
    assert mask(P1, "person") in mine.text  # masked, not dropped: P2 sees that a person looked
    assert mine.json()["subject"] == P2
    # The administrator's export keeps the full entry: nothing is rewritten in the log.
    assert f"subject:{P1}" in site.get("/v1/audit/export", "admin").text
    # P1's own who-looked shows P1's own id where it is P1's.
    own = site.get(f"/v1/subjects/{P1}/audit", "p1")
    assert own.status_code == 200
    assert P2 not in own.text


# --- 8: one rule for the Authorization header ------------------------------------------------------

ROUTES = [
    f"/v1/checks/{P1}/demo-city/no-flights",  # the fast path
    f"/v1/checks/{P1}/demo-city/no-flights?as_of=2026-03-01",
    f"/v1/subjects/{O1}",
    "/v1/schemes",
    f"/v1/subjects/{P1}/state",
]


def test_two_authorization_headers_are_a_400_problem(site: Site) -> None:
    good = f"Bearer {site.tokens['aviation']}"
    admin = f"Bearer {site.tokens['admin']}"
    for path in ROUTES:
        for pair in ((good, admin), (admin, good), (good, good), ("", admin), (admin, "")):
            answer = site.client.get(path, headers=[("Authorization", pair[0]), ("Authorization", pair[1])])
            assert answer.status_code == 400, (path, pair, answer.status_code, answer.text)
            assert answer.headers["content-type"] == PROBLEM
            assert "Authorization" in answer.json()["detail"]


def test_an_empty_authorization_header_is_a_401_problem(site: Site) -> None:
    for path in ROUTES:
        for value in ("", " ", "Bearer", "Bearer "):
            answer = site.client.get(path, headers={"Authorization": value})
            assert answer.status_code == 401, (path, repr(value), answer.status_code, answer.text)
            assert answer.headers["content-type"] == PROBLEM
            assert answer.headers["www-authenticate"].startswith("Bearer")
        assert site.client.get(path).status_code in (200, 401)  # no header: the public
    assert site.client.get(f"/v1/subjects/{O1}").status_code == 200


# --- 9: store files and logs ----------------------------------------------------------------------


def modes(folder: Path) -> dict[str, str]:
    """Every file in the folder (the store's, its WAL and shared memory, any it keeps beside them)."""
    return {p.name: oct(stat.S_IMODE(p.stat().st_mode)) for p in folder.iterdir() if p.is_file()}


def test_sqlite_store_files_are_readable_by_their_owner_only(tmp_path: Path) -> None:
    previous = os.umask(0o022)
    try:
        fresh = tmp_path / "fresh"
        fresh.mkdir()
        store = Store(f"sqlite:///{fresh / 'x.db'}")
        store.checkpoint_in_background(0.05)  # as a server does (it reopens the pool's connections)
        store.migrate()
        World(store).standard()
        Service(store, FixedClock(NOW)).credentials.create_token(ADMIN, Role.ADMIN)
        found = modes(fresh)
        assert {"x.db", "x.db-wal", "x.db-shm"} <= set(found), found
        assert set(found.values()) == {"0o600"}, found
        store.dispose()
        # A store made before this rule (0644, with its WAL): opened again, it is made owner-only.
        old = tmp_path / "old"
        old.mkdir()
        older = Store(f"sqlite:///{old / 'x.db'}")
        older.migrate()
        with older.write() as conn:  # the WAL and its index stay (no checkpoint at close: kept open)
            conn.exec_driver_sql("CREATE TABLE scratch (x INTEGER)")
        for name in modes(old):
            (old / name).chmod(0o644)
        again = Store(f"sqlite:///{old / 'x.db'}")
        World(again).standard()
        assert set(modes(old).values()) == {"0o600"}, modes(old)
        again.dispose()
        older.dispose()
    finally:
        os.umask(previous)


def test_logs_never_carry_a_persons_full_id(
    site: Site, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    service: Service = site.client.app.state.service  # type: ignore[attr-defined]

    def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError(f"broken while reading {P1} (and {P2})")

    def locked(*args: Any, **kwargs: Any) -> Any:
        raise Unavailable(f"the store cannot answer now: lock held on {P1}")

    caplog.set_level(logging.INFO)
    monkeypatch.setattr(service.questions, "profile", broken)
    monkeypatch.setattr(service.questions, "report", broken)
    monkeypatch.setattr(service.questions, "check_many", broken)
    monkeypatch.setattr(service.questions, "states", locked)
    assert site.get(f"/v1/subjects/{P1}", "admin").status_code == 500
    assert site.get(f"/v1/checks/{P1}/demo-city/no-flights", "admin").status_code == 500
    assert site.get(f"/v1/subjects/{P1}/state", "admin").status_code == 503
    assert site.get(f"/subjects/{P1}").status_code == 500  # a web page
    logged = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(logged) == 4, [r.getMessage() for r in logged]
    handler = logging.StreamHandler()
    for record in logged:
        text = handler.format(record)
        assert P1 not in text, text
        assert P2 not in text, text
        assert mask(P1, "person") in text, text
    assert any("Traceback" in handler.format(r) for r in logged)  # the stack trace is kept, masked
