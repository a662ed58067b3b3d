"""Feeds through the three interfaces: the HTTP API (with its OpenAPI document), the command line
(exit 2 and nothing changed on bad input) and the web pages (the public statistics, the staff
console, the subject's who-looked)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from helpers import at, run_cli
from test_feeds import ADMIN, O1, P1, Bench, city, verified
from xinyong.interfaces.site import create_app
from xinyong.rules import feeds as rules
from xinyong.rules.clock import FixedClock
from xinyong.security.access import Role
from xinyong.storage import tables as t
from xinyong.storage.store import Store

NOW = at("2026-03-20", 12)


@dataclass
class Site:
    bench: Bench
    client: TestClient
    tokens: dict[str, str]

    def get(self, path: str, as_: str | None = None) -> Any:
        headers = {"Authorization": f"Bearer {self.tokens[as_]}"} if as_ else {}
        return self.client.get(path, headers=headers)

    def post(self, path: str, as_: str) -> Any:
        return self.client.post(path, headers={"Authorization": f"Bearer {self.tokens[as_]}"})


@pytest.fixture
def site(store: Store, tmp_path: Path) -> Iterator[Site]:
    bench = city(store, tmp_path)
    record = bench.world.record(P1, "COURT.DEFAULT", "2026-03-01", at("2026-03-02"))
    bench.key("civil-aviation")
    bench.key("railway")
    bench.publish("2026-03-12")
    bench.world.end(record, "2026-03-20", at("2026-03-20", 10))
    bench.publish("2026-03-20", hour=11)
    service = bench.service(at("2026-03-01"))
    tokens = {}
    for name, role, agency in (
        ("admin", Role.ADMIN, None),
        ("airline", Role.ENFORCER, "civil-aviation"),
        ("officer", Role.OFFICER, None),
    ):
        tokens[name], _ = service.credentials.create_token(ADMIN, role, agency=agency, label=name)
    tokens["p1"], _ = service.credentials.create_token(ADMIN, Role.SUBJECT, subject=P1, label="p1")
    app = create_app(store, clock=FixedClock(NOW), keys=bench.ring, token_cache_seconds=0)
    with TestClient(app, raise_server_exceptions=True) as client:
        yield Site(bench, client, tokens)


# --- the HTTP API ---------------------------------------------------------------------------------


def test_an_enforcer_reads_its_feed_over_http_exactly_as_signed(site: Site) -> None:
    answer = site.get("/v1/feeds/civil-aviation", "airline")
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body == site.bench.service(NOW).feeds.show(ADMIN, "civil-aviation")
    keys = site.get("/v1/audit/checkpoints").json()["keys"]
    assert all(verified(v, keys) for v in body["versions"])
    assert [v["version"] for v in site.get("/v1/feeds/civil-aviation?since=1", "airline").json()["versions"]] == [2]


def test_http_refusals_are_problems(site: Site) -> None:
    for path, who, status in (
        ("/v1/feeds/railway", "airline", 403),
        ("/v1/feeds/civil-aviation", None, 401),
        ("/v1/feeds/finance", "admin", 404),
        ("/v1/feeds/civil-aviation?since=-1", "airline", 422),
        ("/v1/feeds/..%2Fkeys", "admin", 404),
        ("/v1/feeds/" + "a" * 65, "admin", 422),
        ("/v1/feeds/civil-aviation", "officer", 403),
    ):
        answer = site.get(path, who)
        assert answer.status_code == status, (path, answer.text)
        assert answer.headers["content-type"] == "application/problem+json"
    missing = site.post("/v1/feeds/civil-aviation/versions/9/acknowledgement", "airline")
    assert missing.status_code == 404
    assert "no version 9" in missing.json()["detail"]
    other = site.post("/v1/feeds/railway/versions/1/acknowledgement", "airline")
    assert other.status_code == 403


def test_acknowledging_over_http_and_the_published_delays(site: Site) -> None:
    answer = site.post("/v1/feeds/civil-aviation/versions/2/acknowledgement", "airline")
    assert answer.status_code == 200, answer.text
    assert answer.json()["acknowledged"] == 2
    delays = site.get("/v1/statistics/delisting")
    assert delays.status_code == 200
    found = {a["agency"]: a for a in delays.json()["agencies"]}
    # Ended at 10:00 (the repair recorded), acknowledged at noon.
    assert found["civil-aviation"]["p50_seconds"] == 2 * 3600
    assert (found["railway"]["unacknowledged"], found["railway"]["late"]) == (1, 0)


def test_the_openapi_document_describes_the_feed_endpoints(site: Site) -> None:
    document = site.get("/openapi.json").json()
    paths = document["paths"]
    assert "get" in paths["/v1/feeds/{agency}"]
    assert "post" in paths["/v1/feeds/{agency}/versions/{version}/acknowledgement"]
    assert "get" in paths["/v1/statistics/delisting"]
    version = document["components"]["schemas"]["FeedVersionOut"]
    assert {"add", "del", "measures", "signature", "previous", "feed_key"} <= set(version["properties"])


def test_who_looked_shows_the_feed_versions_that_carried_the_subject(site: Site) -> None:
    answer = site.get(f"/v1/subjects/{P1}/audit", "p1")
    assert answer.status_code == 200, answer.text
    carried = [(f["agency"], f["version"], f["day"], f["change"]) for f in answer.json()["feeds"]]
    assert carried == [
        ("civil-aviation", 2, "2026-03-20", "del"),
        ("railway", 2, "2026-03-20", "del"),
        ("civil-aviation", 1, "2026-03-12", "add"),
        ("railway", 1, "2026-03-12", "add"),
    ]
    assert site.get(f"/v1/subjects/{O1}/audit", "admin").json()["feeds"] == []


# --- the web pages ---------------------------------------------------------------------------------


def test_the_public_statistics_page_in_both_languages(site: Site) -> None:
    site.post("/v1/feeds/civil-aviation/versions/2/acknowledgement", "airline")
    site.client.get("/lang/en")
    page = site.client.get("/statistics")
    assert page.status_code == 200
    assert "How fast restrictions are lifted" in page.text
    assert "civil-aviation" in page.text
    assert "2 h" in page.text
    assert "/v1/" not in page.text
    assert "xinyong feeds" not in page.text
    site.client.get("/lang/zh_Hans")
    page = site.client.get("/statistics")
    assert "限制措施解除的速度" in page.text
    assert "2 小时" in page.text


def test_the_staff_console_and_the_subject_s_who_looked_page(site: Site) -> None:
    from xinyong.security.access import Principal

    service = site.bench.service(at("2026-03-01"))
    service.credentials.set_password(ADMIN, "officer1", "a long enough password", Role.OFFICER)
    service.credentials.set_password(ADMIN, P1, "a long enough password", Role.SUBJECT, subject=P1)

    def log_in(login: str) -> None:
        import re

        site.client.cookies.clear()
        form = site.client.get("/login").text
        token = re.search(r'name="csrf" value="([^"]+)"', form)
        assert token
        answer = site.client.post(
            "/login",
            data={"csrf": token.group(1), "login": login, "password": "a long enough password"},
            follow_redirects=False,
        )
        assert answer.status_code == 303, answer.text
        site.client.get("/lang/en")

    log_in("officer1")
    dashboard = site.client.get("/staff")
    assert dashboard.status_code == 200
    assert "Feeds: how fast agencies lift ended measures" in dashboard.text
    log_in(P1)
    mine = site.client.get("/me/who-looked")
    assert mine.status_code == 200
    assert "Removed: no measure of the agency applies any more" in mine.text
    assert "railway" in mine.text
    assert Principal  # the page and the API answer from the same service call


# --- the command line -------------------------------------------------------------------------------


@pytest.fixture
def cli_store(tmp_path: Path) -> Iterator[tuple[str, dict[str, str], Bench]]:
    store = Store(f"sqlite:///{tmp_path / 'cli.db'}")
    store.migrate()
    bench = city(store, tmp_path)
    bench.world.record(P1, "COURT.DEFAULT", "2026-03-01", at("2026-03-02"))
    yield f"sqlite:///{tmp_path / 'cli.db'}", {"XINYONG_KEYS": str(bench.ring.folder)}, bench
    store.dispose()


def test_the_command_line_makes_keys_publishes_shows_and_acknowledges(
    cli_store: tuple[str, dict[str, str], Bench],
) -> None:
    db, env, _bench = cli_store

    def ok(*args: str, now: str = "2026-03-12T09:00:00+08:00") -> Any:
        code, out, err = run_cli(db, *args, "--json", now=now, env=env)
        assert code == 0, err
        return json.loads(out)

    made = ok("feeds", "key", "civil-aviation")
    assert set(made) == {"agency", "key", "generation"}
    assert rules.KEY_PATTERN.fullmatch(made["key"])
    assert ok("feeds", "webhook", "civil-aviation", "https://airline.example/xinyong") == {
        "agency": "civil-aviation",
        "url": "https://airline.example/xinyong",
    }
    published = ok("feeds", "publish", "--day", "2026-03-12")
    assert [(v["agency"], v["version"], v["add"]) for v in published["versions"]] == [("civil-aviation", 1, 1)]
    shown = ok("feeds", "show", "civil-aviation")
    assert shown["versions"][0]["add"] == [rules.hashed(P1, made["key"])]
    assert ok("feeds", "show", "civil-aviation", "--since", "1")["versions"] == []
    acknowledged = ok("feeds", "ack", "civil-aviation", "1")
    assert (acknowledged["version"], acknowledged["acknowledged"]) == (1, 1)
    delays = ok("feeds", "delays")
    assert [a["agency"] for a in delays["agencies"]] == ["civil-aviation"]
    # The human forms print too.
    for args in (("feeds", "show", "civil-aviation"), ("feeds", "delays"), ("feeds", "publish")):
        code, _, err = run_cli(db, *args, now="2026-03-12T10:00:00+08:00", env=env)
        assert code == 0, err


@pytest.mark.parametrize(
    ("args", "why"),
    [
        (("feeds", "key", "nobody"), "implements no measure"),
        (("feeds", "key", "a/b"), "cannot have a feed"),
        (("feeds", "webhook", "civil-aviation", "not a url"), "no spaces"),
        (("feeds", "webhook", "civil-aviation", "gopher://x.example/"), "not an http or https URL"),
        (("feeds", "publish", "--day", "2026-02-30"), "--day"),
        (("feeds", "publish", "--day", "2026-03-13"), "after today"),
        (("feeds", "show", "railway"), "has no feed"),
        (("feeds", "ack", "civil-aviation", "7"), "no version 7"),
        (("feeds", "show", "civil-aviation", "--since", "-1"), "--since"),
    ],
)
def test_bad_input_exits_2_and_changes_nothing(
    cli_store: tuple[str, dict[str, str], Bench], args: tuple[str, ...], why: str
) -> None:
    db, env, bench = cli_store
    assert run_cli(db, "feeds", "key", "civil-aviation", now="2026-03-12T09:00:00+08:00", env=env)[0] == 0
    assert run_cli(db, "feeds", "publish", now="2026-03-12T09:00:00+08:00", env=env)[0] == 0

    def snapshot() -> tuple[Any, ...]:
        with bench.store.read() as conn:
            return (
                conn.execute(select(t.feed_agencies)).all(),
                conn.execute(select(func.count()).select_from(t.feed_versions)).scalar(),
                conn.execute(select(t.feed_versions.c.acknowledged_at)).all(),
                sorted(p.name for p in bench.ring.feeds().folder.iterdir()),
            )

    before = snapshot()
    code, _out, err = run_cli(db, *args, now="2026-03-12T10:00:00+08:00", env=env)
    assert code == 2, err
    assert why in err
    assert snapshot() == before
