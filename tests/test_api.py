"""The HTTP API, called in-process: every role × every endpoint, the check, errors, limits, audit.

One store per module (SQLite) with DESIGN.md's example scheme, a person on the defaulter list, an
organisation with a public record, and a token for every role plus an expired and a revoked one.
Writes in the matrix each get a resource of their own per role, so the order of calls does not
matter. A few tests at the end run on both backends (the `store` fixture).
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from helpers import DEMO_CITY, World, at, org_id, person_id, serving
from xinyong.interfaces.site import create_app
from xinyong.ledger import records as ledger
from xinyong.rules.clock import Clock, FixedClock
from xinyong.security import audit
from xinyong.security.access import Principal, Role
from xinyong.service import ENFORCER_FIELDS, Service
from xinyong.storage.store import Store

NOW = at("2026-03-01")
P1, P2 = person_id(1), person_id(2)
O1 = org_id(1)
ADMIN = Principal(Role.ADMIN, "setup", channel="test")

ROLES = (
    "admin",
    "officer",
    "source_court",
    "source_transport",
    "enforcer_aviation",
    "enforcer_tax",
    "subject_self",
    "subject_other",
    "analyst",
    "public",
    "expired",
    "revoked",
)


@dataclass
class City:
    store: Store
    client: TestClient
    tokens: dict[str, str]
    records: dict[tuple[str, str], str] = field(default_factory=dict)
    objections: dict[str, int] = field(default_factory=dict)
    throwaway: dict[str, str] = field(default_factory=dict)
    job: int = 0

    def headers(self, role: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[role]}"} if role in self.tokens else {}

    def call(self, role: str, method: str, path: str, **kwargs: Any) -> Any:
        headers = {**self.headers(role), **kwargs.pop("headers", {})}
        return self.client.request(method, path, headers=headers, **kwargs)


OTHER_CITY = """\
scheme: other-city
version: "2026.1"
title: Other City credit points
jurisdiction: "321300"
applies_to: [person]
initial: 1000
grades: [{grade: GOOD, min: 1000}, {grade: POOR, min: 0}]
behaviours:
  - {code: TRAFFIC.MINOR, title: Minor traffic violation, points: -20, validity: P2Y,
     severity: minor, data_class: market, legal_basis: "Road Traffic Safety Law art. 90"}
"""


def build(store: Store) -> World:
    world = World(store)
    person, org = world.standard()
    assert (person, org) == (P1, O1)
    world.subjects([(P2, "person", "李四")])
    world.consent(P2, True, "2020-01-02")
    world.record(P1, "COURT.DEFAULT", "2026-01-05", at("2026-01-06"))
    world.record(O1, "COURT.DEFAULT", "2026-01-05", at("2026-01-06"))
    world.record(P2, "TRAFFIC.MINOR", "2026-01-05", at("2026-01-06"))
    return world


@pytest.fixture(scope="module")
def city(tmp_path_factory: pytest.TempPathFactory) -> Iterator[City]:
    folder = tmp_path_factory.mktemp("api")
    store = Store(f"sqlite:///{folder / 'api.db'}")
    store.migrate()
    world = build(store)
    world.load(OTHER_CITY)  # a second scheme, for /v1/lab/comparisons
    records = {}
    rows = ["subject_id,behaviour,occurred_on,document_ref"]
    for role in ROLES:
        for use in ("correct", "revoke", "end", "object", "decide", "show"):
            rows.append(f"{P1},TRAFFIC.MINOR,2026-01-10,{use}-{role}")
            records[(use, role)] = f"transport:{use}-{role}"
    earlier = Service(store, FixedClock(at("2026-01-20")))
    earlier.records.import_file(ADMIN, "matrix.csv", "\n".join(rows).encode(), "transport")
    service = Service(store, FixedClock(at("2026-01-21")))
    service.keys.ensure()  # as `xinyong init` makes them, beside the store's file
    service.feeds.make_key(ADMIN, "civil-aviation")
    service.feeds.publish(ADMIN)  # version 1 of civil-aviation's feed
    objections = {role: service.objections.file(ADMIN, records[("decide", role)], reason="wrong").id for role in ROLES}
    tokens = {}
    for name, role, bound in (
        ("admin", Role.ADMIN, {}),
        ("officer", Role.OFFICER, {}),
        ("source_court", Role.SOURCE, {"agency": "court"}),
        ("source_transport", Role.SOURCE, {"agency": "transport"}),
        ("enforcer_aviation", Role.ENFORCER, {"agency": "civil-aviation"}),
        ("enforcer_tax", Role.ENFORCER, {"agency": "tax"}),
        ("subject_self", Role.SUBJECT, {"subject": P1}),
        ("subject_other", Role.SUBJECT, {"subject": P2}),
        ("analyst", Role.ANALYST, {}),
        ("revoked", Role.OFFICER, {}),
    ):
        tokens[name], _ = service.credentials.create_token(ADMIN, role, label=name, **bound)  # type: ignore[arg-type]
    tokens["expired"], _ = service.credentials.create_token(ADMIN, Role.ADMIN, expires_at=at("2026-02-01"))
    service.credentials.revoke_token(ADMIN, tokens["revoked"].split("_")[1])
    throwaway = {role: service.credentials.create_token(ADMIN, Role.ANALYST)[1].id for role in ROLES}
    app = create_app(store, clock=FixedClock(NOW), token_cache_seconds=0, max_body=64 * 1024, max_upload=256 * 1024)
    with TestClient(app, raise_server_exceptions=False) as client:
        c = City(store, client, tokens, records, objections, throwaway)
        upload = c.call(
            "admin",
            "POST",
            "/v1/imports",
            params={"source": "court"},
            files={
                "file": (
                    "court.csv",
                    f"subject_id,behaviour,occurred_on,document_ref\n{P2},COURT.DEFAULT,2026-02-01,J-1\n",
                )
            },
        )
        assert upload.status_code == 202, upload.text
        c.job = upload.json()["id"]
        assert world
        yield c
    store.dispose()


def record_body(role: str) -> dict[str, Any]:
    return {
        "source": "court",
        "subject_id": P2,
        "behaviour": "COURT.DEFAULT",
        "occurred_on": "2026-02-02",
        "document_ref": f"new-{role}",
    }


# (name, method, path or path(role), keyword arguments, roles allowed). Everyone else is refused.
EVERYONE = {r for r in ROLES if r not in {"expired", "revoked"}}
OFFICE = {"admin", "officer"}
SELF = {"admin", "officer", "subject_self"}
ENDPOINTS: list[tuple[str, str, Any, Any, set[str]]] = [
    ("schemes", "GET", "/v1/schemes", {}, EVERYONE),
    ("scheme", "GET", "/v1/schemes/demo-city", {}, EVERYONE),
    ("scheme source", "GET", "/v1/schemes/demo-city/versions/2026.1/source", {}, EVERYONE),
    ("load scheme", "POST", "/v1/schemes", {"json": {"yaml": DEMO_CITY}}, {"admin"}),
    ("add source", "POST", "/v1/sources", {"json": {"agency": "court", "behaviours": ["COURT.DEFAULT"]}}, {"admin"}),
    ("search", "GET", "/v1/subjects", {"params": {"q": "测试"}}, EVERYONE),
    ("organisation profile", "GET", f"/v1/subjects/{O1}", {}, EVERYONE),
    ("person profile", "GET", f"/v1/subjects/{P1}", {}, SELF),
    ("state", "GET", f"/v1/subjects/{P1}/state", {}, SELF),
    (
        "consent",
        "POST",
        f"/v1/subjects/{P1}/consent",
        {"json": {"scheme": "demo-city", "grant": True}},
        {"admin", "subject_self"},
    ),
    ("subject objections", "GET", f"/v1/subjects/{P1}/objections", {}, SELF),
    ("who looked", "GET", f"/v1/subjects/{P1}/audit", {}, {"admin", "subject_self"}),
    ("submit record", "POST", "/v1/records", lambda c, r: {"json": record_body(r)}, {"admin", "source_court"}),
    ("show record", "GET", lambda c, r: f"/v1/records/{c.records[('show', r)]}", {}, SELF),
    (
        "correct record",
        "POST",
        lambda c, r: f"/v1/records/{c.records[('correct', r)]}/corrections",
        {"json": {"reason": "typo", "occurred_on": "2026-01-09"}},
        OFFICE,
    ),
    (
        "revoke record",
        "POST",
        lambda c, r: f"/v1/records/{c.records[('revoke', r)]}/revocation",
        {"json": {"reason": "wrong person"}},
        OFFICE,
    ),
    (
        "end record",
        "POST",
        lambda c, r: f"/v1/records/{c.records[('end', r)]}/end",
        {"json": {"on": "2026-02-01", "reason": "fulfilled"}},
        OFFICE,
    ),
    (
        "import",
        "POST",
        "/v1/imports",
        lambda c, r: {
            "params": {"source": "court"},
            "files": {
                "file": (
                    "c.csv",
                    f"subject_id,behaviour,occurred_on,document_ref\n{P2},COURT.DEFAULT,2026-02-03,I-{r}\n",
                )
            },
        },
        {"admin", "source_court"},
    ),
    ("import job", "GET", lambda c, r: f"/v1/imports/{c.job}", {}, {"admin", "officer", "source_court"}),
    ("check", "GET", f"/v1/checks/{P1}/demo-city/no-flights", {}, {*SELF, "enforcer_aviation"}),
    (
        "batch check",
        "POST",
        "/v1/checks/demo-city/no-flights",
        {"json": {"subjects": [P1]}},
        {*SELF, "enforcer_aviation"},
    ),
    ("person report", "GET", f"/v1/reports/{P1}", {}, SELF),
    ("organisation report", "GET", f"/v1/reports/{O1}", {}, EVERYONE),
    ("public list", "GET", "/v1/lists/demo-city/defaulters", {}, EVERYONE),
    ("non-public list", "GET", "/v1/lists/demo-city/repeat-traffic", {}, OFFICE),
    ("aggregates", "GET", "/v1/aggregates/demo-city", {}, {"admin", "officer", "analyst"}),
    (
        "simulate",
        "POST",
        "/v1/lab/simulations",
        {"json": {"draft": DEMO_CITY.replace('"2026.1"', '"2026.9"'), "as_of": "2026-03-01", "by": ["sex"]}},
        {"admin", "analyst"},
    ),
    ("compare", "GET", "/v1/lab/comparisons/demo-city/other-city", {}, {"admin", "analyst"}),
    ("fairness", "GET", "/v1/lab/fairness/demo-city", {"params": {"by": "age_band"}}, {"admin", "analyst"}),
    (
        "file objection",
        "POST",
        "/v1/objections",
        lambda c, r: {"json": {"record": c.records[("object", r)], "reason": "not me"}},
        SELF,
    ),
    ("objections", "GET", "/v1/objections", {}, {*SELF, "subject_other"}),
    ("objection", "GET", lambda c, r: f"/v1/objections/{c.objections[r]}", {}, SELF),
    (
        "decide objection",
        "POST",
        lambda c, r: f"/v1/objections/{c.objections[r]}/decision",
        {"json": {"outcome": "upheld", "reason": "checked"}},
        OFFICE,
    ),
    ("create token", "POST", "/v1/tokens", {"json": {"role": "analyst"}}, {"admin"}),
    ("tokens", "GET", "/v1/tokens", {}, {"admin"}),
    ("revoke token", "DELETE", lambda c, r: f"/v1/tokens/{c.throwaway[r]}", {}, {"admin"}),
    ("audit verify", "GET", "/v1/audit/verify", {}, {"admin"}),
    ("audit compact", "POST", "/v1/audit/compact", {}, {"admin"}),
    ("audit checkpoints", "GET", "/v1/audit/checkpoints", {}, EVERYONE),
    ("signing keys", "GET", "/v1/keys", {}, EVERYONE),
    (
        "verify a report",
        "GET",
        lambda c, r: f"/v1/verify/{c.call('admin', 'GET', f'/v1/reports/{O1}').json()['report_id']}",
        {},
        EVERYONE,
    ),
    ("audit checkpoint", "POST", "/v1/audit/checkpoints", {}, {"admin"}),
    ("audit export", "GET", "/v1/audit/export", {"params": {"from": "2026-01-01", "to": "2026-12-31"}}, {"admin"}),
    ("feed", "GET", "/v1/feeds/civil-aviation", {}, {"admin", "enforcer_aviation"}),
    (
        "acknowledge a feed version",
        "POST",
        "/v1/feeds/civil-aviation/versions/1/acknowledgement",
        {},
        {"admin", "enforcer_aviation"},
    ),
    ("delisting statistics", "GET", "/v1/statistics/delisting", {}, EVERYONE),
]
# Under the public's rule a person's profile and report answer "no public profile" (404), the same
# answer as for an id that does not exist: the public learns nothing about persons.
PUBLIC_404 = {"person profile", "person report"}


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize(("name", "method", "path", "kwargs", "allowed"), ENDPOINTS, ids=[e[0] for e in ENDPOINTS])
def test_authorisation_matrix(
    city: City, role: str, name: str, method: str, path: Any, kwargs: Any, allowed: set[str]
) -> None:
    url = path(city, role) if callable(path) else path
    arguments = kwargs(city, role) if callable(kwargs) else dict(kwargs)
    response = city.call(role, method, url, **arguments)
    if role in allowed:
        assert response.status_code < 300, f"{role} {name}: {response.status_code} {response.text}"
        return
    expected = {401} if role in {"public", "expired", "revoked"} else {403}
    if name in PUBLIC_404 and role not in {"expired", "revoked"}:
        expected = {404}
    assert response.status_code in expected, f"{role} {name}: {response.status_code} {response.text}"
    assert response.headers["content-type"] == "application/problem+json"
    if response.status_code == 401:
        assert response.headers["www-authenticate"].startswith("Bearer")


def test_every_route_is_in_the_matrix(city: City) -> None:
    """A new route must be added to ENDPOINTS (and so to the matrix) before this passes."""
    documented = {
        (method.upper(), path)
        for path, item in city.client.get("/openapi.json").json()["paths"].items()
        for method in item
        if path.startswith("/v1/")
    }
    covered = set()
    for _, method, path, _, _ in ENDPOINTS:
        url = path(city, "admin") if callable(path) else path
        for template_method, template in documented:
            parts, target = template.split("/"), url.split("/")
            same = template_method == method and len(parts) == len(target)
            if same and all(p == t or p.startswith("{") for p, t in zip(parts, target, strict=True)):
                covered.add((template_method, template))
    assert documented - covered == set()


# --- the check -------------------------------------------------------------------------------------


def test_a_defaulter_check_says_yes_to_civil_aviation_and_403_to_tax(city: City) -> None:
    url = f"/v1/checks/{P1}/demo-city/no-flights"
    yes = city.call("enforcer_aviation", "GET", url, headers={"X-Purpose": "ticket sale"})
    assert yes.status_code == 200, yes.text
    body = yes.json()
    assert set(body) == set(ENFORCER_FIELDS)
    assert body["applies"] is True
    assert body["since"] == "2026-01-16"  # recorded 2026-01-06 + P10D notice
    assert body["legal_basis"] == "Joint punishment memorandum 2016 item 1"
    assert "objection" in body["contest"]
    assert body["subject"] == "110105********" + P1[-4:]
    assert "score" not in yes.text
    assert "records" not in body
    assert "basis" not in body
    no = city.call("enforcer_tax", "GET", url)
    assert no.status_code == 403
    assert no.json()["status"] == 403


def test_the_office_sees_the_basis_of_a_check(city: City) -> None:
    body = city.call("admin", "GET", f"/v1/checks/{P1}/demo-city/no-flights").json()
    assert body["basis"]["lists"] == ["defaulters"]
    assert body["basis"]["records"]
    no = city.call("admin", "GET", f"/v1/checks/{P2}/demo-city/no-flights", params={"as_of": "2026-01-02"}).json()
    assert no["applies"] is False
    assert no["since"] is None


def test_check_parameters_are_validated_with_pointers(city: City) -> None:
    bad_day = city.call("admin", "GET", f"/v1/checks/{P1}/demo-city/no-flights", params={"as_of": "2026-13-01"})
    assert bad_day.status_code == 422
    assert bad_day.json()["errors"][0]["parameter"] == "as_of"
    unknown = city.call("admin", "GET", f"/v1/checks/{person_id(99)}/demo-city/no-flights")
    assert unknown.status_code == 404
    invalid = city.call("admin", "GET", "/v1/checks/110105199001019999/demo-city/no-flights")
    assert invalid.status_code == 422
    assert "check character" in invalid.json()["detail"]
    no_measure = city.call("admin", "GET", f"/v1/checks/{P1}/demo-city/no-such-measure")
    assert no_measure.status_code == 404
    assert city.call("enforcer_aviation", "GET", f"/v1/checks/{P1}/demo-city/no-such-measure").status_code == 403


def test_every_check_is_audited_and_the_subject_sees_who_looked(city: City) -> None:
    city.call("enforcer_aviation", "GET", f"/v1/checks/{P1}/demo-city/no-flights", headers={"X-Purpose": "boarding"})
    city.call("enforcer_tax", "GET", f"/v1/checks/{P1}/demo-city/no-flights")
    seen = city.call("subject_self", "GET", f"/v1/subjects/{P1}/audit").json()["entries"]
    checks_ = [e for e in seen if e["action"] == "checks.ask"]
    done = next(e for e in checks_ if e["purpose"] == "boarding")
    assert done["role"] == "enforcer:civil-aviation"
    assert done["actor"] == "api:enforcer_aviation"
    assert done["outcome"] == "done"
    assert done["detail"]["applies"] is True
    assert any(e["role"] == "enforcer:tax" and e["outcome"] == "denied" for e in checks_)
    assert city.call("subject_other", "GET", f"/v1/subjects/{P1}/audit").status_code == 403
    with city.store.audit_read() as conn:
        assert audit.verify(conn).ok


def test_a_manifest_is_checked_in_one_request_each_subject_as_a_single_check(city: City) -> None:
    """A batch: answers in the order sent, each as the single check's with the id as sent, an
    unknown or invalid id its own error, every subject's look logged; the measure's agency only."""
    sent = [P2, P1.lower() if P1.endswith("X") else P1, person_id(99), "11010519900101001", P1]
    url = "/v1/checks/demo-city/no-flights"
    answer = city.call("enforcer_aviation", "POST", url, json={"subjects": sent}, headers={"X-Purpose": "flight 7"})
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["measure"] == "demo-city/no-flights"
    assert [a["subject"] for a in body["answers"]] == sent
    single = city.call("enforcer_aviation", "GET", f"/v1/checks/{P1}/demo-city/no-flights").json()
    assert body["answers"][1] == {**single, "subject": sent[1]}
    assert body["answers"][0]["applies"] is False
    assert body["answers"][1]["applies"] is True
    assert body["answers"][2]["error"]["code"] == "not_found"
    assert body["answers"][3]["error"]["code"] == "invalid"
    assert "basis" not in body["answers"][1]  # an enforcer hears what a single check tells it
    seen = city.call("subject_self", "GET", f"/v1/subjects/{P1}/audit").json()["entries"]
    assert [e["purpose"] for e in seen if e["action"] == "checks.ask"].count("flight 7") == 2
    # Another agency's measure: refused per subject, nothing learnt; an empty or oversized list: 422.
    assert city.call("enforcer_tax", "POST", url, json={"subjects": [P1, person_id(99)]}).status_code == 403
    # A subject may ask about itself; in a batch with others, each other's answer is a refusal.
    mine = city.call("subject_self", "POST", url, json={"subjects": [P1, P2]}).json()["answers"]
    assert mine[0]["applies"] is True
    assert mine[1]["error"]["code"] == "denied"
    assert city.call("admin", "POST", url, json={"subjects": []}).status_code == 422
    too_many = city.call("admin", "POST", url, json={"subjects": [P1] * 1001})
    assert too_many.status_code == 422
    assert city.call("admin", "POST", url, json={"subjects": [P1], "as_of": "2026-02-30"}).status_code == 422


# --- what each role sees --------------------------------------------------------------------------------


def test_the_public_sees_public_things_only(city: City) -> None:
    search = city.call("public", "GET", "/v1/subjects", params={"q": "张三"}).json()
    assert search == []  # persons are not in the public look-up
    assert city.call("officer", "GET", "/v1/subjects", params={"q": "张三"}).json()[0]["id"] == P1
    listed = city.call("public", "GET", "/v1/lists/demo-city/defaulters").json()
    ids = {m["subject"] for m in listed["members"]}
    assert O1 in ids
    assert P1 not in ids
    assert "110105********" + P1[-4:] in ids
    assert all(m["name"] is None for m in listed["members"] if m["kind"] == "person")
    report = city.call("public", "GET", f"/v1/reports/{O1}").json()
    assert report["audience"] == "public"
    assert {r["behaviour"] for r in report["records"]} == {"COURT.DEFAULT"}
    scheme = city.call("public", "GET", "/v1/schemes/demo-city").json()
    behaviours = scheme["versions"][0]["document"]["behaviours"]
    assert {b["code"] for b in behaviours} == {"TRAFFIC.MINOR", "COURT.DEFAULT", "CHARITY.BLOOD"}
    assert all(b["legal_basis"] for b in behaviours)


def test_the_subject_sees_its_own_everything(city: City) -> None:
    report = city.call("subject_self", "GET", f"/v1/reports/{P1}").json()
    assert report["audience"] == "subject"
    assert report["subject"]["id"] == P1
    state = city.call("subject_self", "GET", f"/v1/subjects/{P1}/state", params={"scheme": "demo-city"}).json()
    assert state[0]["score"] is not None
    assert state[0]["contributions"]
    mine = city.call("subject_other", "GET", "/v1/objections").json()
    assert all(o["subject"] == P2 for o in mine)


def test_analysts_get_no_cell_under_ten(city: City) -> None:
    body = city.call("analyst", "GET", "/v1/aggregates/demo-city", params={"as_of": "2026-03-01"}).json()
    assert body["min_cell"] == 10
    assert body["grades"]
    assert all(row["subjects"] is None for row in body["grades"])
    assert all(row["subjects"] is None for row in body["lists"])


def test_grades_come_in_the_schemes_order_not_the_alphabets(city: City) -> None:
    """A, AA, AAA sort alphabetically; dashboards read highest first, as the scheme lists them."""
    from helpers import DEMO_CITY
    from xinyong.rules.schemes import parse_scheme

    body = city.call("admin", "GET", "/v1/aggregates/demo-city", params={"as_of": "2026-03-01"}).json()
    order = [g.grade for g in parse_scheme(DEMO_CITY).grades]
    shown = [row["grade"] for row in body["grades"]]
    assert shown
    assert shown == sorted(shown, key=lambda g: order.index(g) if g in order else len(order))


def test_a_source_submits_only_what_it_is_authorised_for(city: City) -> None:
    ok = city.call("source_court", "POST", "/v1/records", json={**record_body("own"), "source": None})
    assert ok.status_code == 201, ok.text
    assert ok.json()["record"]["source"] == "court"
    again = city.call("source_court", "POST", "/v1/records", json={**record_body("own"), "source": None})
    assert again.status_code == 200
    assert again.json()["created"] is False
    foreign = city.call(
        "source_transport", "POST", "/v1/records", json={**record_body("foreign"), "source": "transport"}
    )
    assert foreign.status_code == 403
    assert "authorised" in foreign.json()["detail"]


# --- errors ---------------------------------------------------------------------------------------


def test_problems_point_at_the_field(city: City) -> None:
    missing = city.call("admin", "POST", "/v1/objections", json={"record": "court:x"})
    assert missing.status_code == 422
    assert missing.headers["content-type"] == "application/problem+json"
    assert missing.json()["errors"] == [{"detail": "Field required", "pointer": "#/reason"}]
    blank = city.call(
        "admin", "POST", f"/v1/records/{city.records[('correct', 'admin')]}/corrections", json={"reason": "x"}
    )
    assert blank.status_code == 422
    assert blank.json()["detail"].startswith("records correct:")
    bad_line = city.call(
        "admin",
        "POST",
        "/v1/records",
        json={**record_body("bad"), "subject_id": "110105199001010011"},
    )
    assert bad_line.status_code == 422
    errors = bad_line.json()["errors"]
    assert errors[0]["pointer"] == "#/subject_id"
    assert errors[0]["line"] == 1
    conflict = city.call(
        "admin",
        "POST",
        f"/v1/objections/{city.objections['admin']}/decision",
        json={"outcome": "upheld", "reason": "x"},
    )
    if conflict.status_code == 200:  # the matrix may not have run first
        conflict = city.call(
            "admin",
            "POST",
            f"/v1/objections/{city.objections['admin']}/decision",
            json={"outcome": "upheld", "reason": "x"},
        )
    assert conflict.status_code == 409


def test_an_import_job_keeps_its_line_level_problems(city: City) -> None:
    text = "subject_id,behaviour,occurred_on,document_ref\nnobody,COURT.DEFAULT,2026-02-01,B-1\n" + (
        f"{P2},COURT.DEFAULT,not-a-day,B-2\n"
    )
    response = city.call("source_court", "POST", "/v1/imports", files={"file": ("bad.csv", text)})
    assert response.status_code == 202
    job = response.json()
    assert job["status"] == "failed"
    assert job["imported"] is None
    assert {(p["line"], p["column"]) for p in job["problems"]} >= {(2, "subject_id"), (3, "occurred_on")}
    again = city.call("source_court", "GET", f"/v1/imports/{job['id']}").json()
    assert again == job
    assert city.call("source_transport", "GET", f"/v1/imports/{job['id']}").status_code == 403


def test_bodies_and_uploads_have_size_limits(city: City) -> None:
    big = city.call("admin", "POST", "/v1/objections", json={"record": "x", "reason": "y" * 70_000})
    assert big.status_code == 413
    assert big.headers["content-type"] == "application/problem+json"
    chunked = city.call(
        "admin",
        "POST",
        "/v1/objections",
        content=iter([b'{"record": "x", "reason": "', b"y" * 70_000, b'"}']),
        headers={"Content-Type": "application/json"},
    )
    assert chunked.status_code == 413
    upload = city.call(
        "admin", "POST", "/v1/imports", params={"source": "court"}, files={"file": ("x.csv", "a" * 300_000)}
    )
    assert upload.status_code == 413
    # Uploads get the larger limit: a file over the body limit but under the upload limit is read.
    fine = city.call(
        "admin", "POST", "/v1/imports", params={"source": "court"}, files={"file": ("x.csv", "a" * 100_000)}
    )
    assert fine.status_code == 202


def test_no_stack_trace_reaches_a_caller(city: City, monkeypatch: pytest.MonkeyPatch) -> None:
    def explode(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("secret internals at /srv/xinyong/service.py line 42")

    service = city.client.app.state.service  # type: ignore[attr-defined]
    monkeypatch.setattr(service.schemes, "versions", explode)
    monkeypatch.setattr(service.questions, "check_many", explode)
    for url in ("/v1/schemes", f"/v1/checks/{P1}/demo-city/no-flights"):
        response = city.call("admin", "GET", url)
        assert response.status_code == 500
        assert response.headers["content-type"] == "application/problem+json"
        assert "secret" not in response.text
        assert "Traceback" not in response.text


def test_health_and_readiness(city: City, tmp_path: Path) -> None:
    assert city.client.get("/healthz").json() == {"status": "ok"}
    ready = city.client.get("/readyz")
    assert ready.status_code == 200
    assert ready.json()["migrated"] is True
    empty = Store(f"sqlite:///{tmp_path / 'empty.db'}")
    with TestClient(create_app(empty), raise_server_exceptions=False) as client:
        assert client.get("/readyz").status_code == 503
        assert client.get("/healthz").status_code == 200


def test_openapi_documents_the_api(city: City) -> None:
    doc = city.client.get("/openapi.json").json()
    assert "/v1/checks/{subject}/{scheme}/{measure}" in doc["paths"]
    assert doc["components"]["securitySchemes"]["HTTPBearer"]["scheme"] == "bearer"
    assert city.client.get("/docs").status_code == 200


# --- tokens ---------------------------------------------------------------------------------------


def test_tokens_are_stored_hashed_and_expire_and_revoke(tmp_path: Path) -> None:
    store = Store(f"sqlite:///{tmp_path / 't.db'}")
    store.migrate()
    World(store).standard()
    clock = FixedClock(NOW)
    service = Service(store, clock)
    bearer, info = service.credentials.create_token(ADMIN, Role.OFFICER, expires_at=NOW + dt.timedelta(hours=1))
    with store.read() as conn:
        stored = conn.exec_driver_sql("SELECT secret_sha256 FROM tokens").scalar_one()
    assert bearer.split("_", 2)[2] not in stored
    app = create_app(store, clock=clock, token_cache_seconds=60)
    with TestClient(app, raise_server_exceptions=False) as client:
        headers = {"Authorization": f"Bearer {bearer}"}
        assert client.get("/v1/objections", headers=headers).status_code == 200
        assert client.get("/v1/objections", headers={"Authorization": bearer[:-2] + "xx"}).status_code == 401
        assert client.get("/v1/objections", headers={"Authorization": "Basic abc"}).status_code == 401
        service.credentials.revoke_token(ADMIN, info.id)
        app.state.tokens.forget()
        assert client.get("/v1/objections", headers=headers).status_code == 401
    later = create_app(store, clock=FixedClock(NOW + dt.timedelta(hours=2)), token_cache_seconds=0)
    other, _ = service.credentials.create_token(ADMIN, Role.OFFICER, expires_at=NOW + dt.timedelta(hours=1))
    with TestClient(later, raise_server_exceptions=False) as client:
        refused = client.get("/v1/objections", headers={"Authorization": f"Bearer {other}"})
        assert refused.status_code == 401
        assert "expired" in refused.json()["detail"]


def test_token_roles_must_be_bound_properly(tmp_path: Path) -> None:
    store = Store(f"sqlite:///{tmp_path / 't.db'}")
    store.migrate()
    World(store).standard()
    service = Service(store, FixedClock(NOW))
    from xinyong.errors import BadInput, NotFound

    with pytest.raises(BadInput, match="--agency"):
        service.credentials.create_token(ADMIN, Role.ENFORCER)
    with pytest.raises(BadInput, match="--subject"):
        service.credentials.create_token(ADMIN, Role.SUBJECT)
    with pytest.raises(NotFound):
        service.credentials.create_token(ADMIN, Role.SUBJECT, subject=person_id(99))
    with pytest.raises(BadInput, match="wrong check character"):
        service.credentials.create_token(ADMIN, Role.SUBJECT, subject="110105199001019999")
    with pytest.raises(BadInput, match="--agency"):
        service.credentials.create_token(ADMIN, Role.OFFICER, agency="court")


# --- on both backends -------------------------------------------------------------------------------


def test_checks_writes_and_audit_on_each_backend(store: Store) -> None:
    build(store)
    service = Service(store, FixedClock(NOW))
    aviation, _ = service.credentials.create_token(ADMIN, Role.ENFORCER, agency="civil-aviation")
    officer, _ = service.credentials.create_token(ADMIN, Role.OFFICER)
    with TestClient(create_app(store, clock=FixedClock(NOW)), raise_server_exceptions=False) as client:
        for _ in range(3):
            answer = client.get(
                f"/v1/checks/{P1}/demo-city/no-flights", headers={"Authorization": f"Bearer {aviation}"}
            )
            assert answer.status_code == 200
            assert answer.json()["applies"] is True
        revoked = client.post(
            "/v1/records/court:DOC-1/revocation",
            json={"reason": "wrong person"},
            headers={"Authorization": f"Bearer {officer}"},
        )
        assert revoked.status_code == 200, revoked.text
        again = client.post(
            "/v1/records/court:DOC-1/revocation",
            json={"reason": "wrong person"},
            headers={"Authorization": f"Bearer {officer}"},
        )
        assert again.status_code == 409
        after = client.get(f"/v1/checks/{P1}/demo-city/no-flights", headers={"Authorization": f"Bearer {aviation}"})
        assert after.json()["applies"] is False  # the answer cache saw the ledger change
    with store.audit_read() as conn:
        result = audit.verify(conn)
        rows = list(audit.entries(conn))
    assert result.ok, result
    outcomes = [(r.action, r.outcome) for r in rows]
    assert outcomes.count(("checks.ask", "done")) == 4
    assert ("records.revoke", "done") in outcomes
    assert ("records.revoke", "refused") in outcomes


def test_concurrent_checks_share_batched_audit_appends(tmp_path: Path) -> None:
    import asyncio

    import httpx

    store = Store(f"sqlite:///{tmp_path / 'c.db'}")
    store.migrate()
    build(store)
    service = Service(store, FixedClock(NOW))
    aviation, _ = service.credentials.create_token(ADMIN, Role.ENFORCER, agency="civil-aviation")
    app = create_app(store, clock=FixedClock(NOW))

    async def run() -> list[int]:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            calls = [
                client.get(f"/v1/checks/{P1}/demo-city/no-flights", headers={"Authorization": f"Bearer {aviation}"})
                for _ in range(50)
            ]
            return [r.status_code for r in await asyncio.gather(*calls)]

    assert asyncio.run(run()) == [200] * 50
    with store.audit_read() as conn:
        assert audit.verify(conn).entries == 50 + 1  # the token's creation


def test_audit_export_over_http_is_csv(city: City) -> None:
    response = city.call("admin", "GET", "/v1/audit/export")
    assert response.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(response.text)))
    assert rows
    assert rows[0]["seq"] == "1"
    assert len(rows[0]["hash"]) == 64


def test_absurd_ids_are_not_found(city: City) -> None:
    assert city.call("admin", "GET", "/v1/records/" + "9" * 40).status_code == 404
    assert city.call("admin", "GET", "/v1/objections/" + "9" * 40).status_code == 422
    too_long = city.call("admin", "GET", "/v1/checks/" + "1" * 40 + "/demo-city/no-flights")
    assert too_long.status_code == 422


@pytest.mark.parametrize("server", ["granian", "uvicorn"])
def test_xinyong_serve_runs_a_real_server(tmp_path: Path, server: str) -> None:
    """`xinyong serve` on loopback: ready, answers a check, and stops on SIGINT."""

    import httpx

    store = Store(f"sqlite:///{tmp_path / 'serve.db'}")
    store.migrate()
    build(store)
    bearer, _ = Service(store, FixedClock(NOW)).credentials.create_token(ADMIN, Role.ENFORCER, agency="civil-aviation")
    store.dispose()
    with serving(store.url, "--server", server, ready_within=30) as base:
        answer = httpx.get(
            f"{base}/v1/checks/{P1}/demo-city/no-flights",
            params={"as_of": "2026-03-01"},
            headers={"Authorization": f"Bearer {bearer}"},
            timeout=5,
        )
        assert answer.status_code == 200
        assert answer.json()["applies"] is True


def test_cached_answers_follow_every_kind_of_ledger_change(tmp_path: Path) -> None:
    store = Store(f"sqlite:///{tmp_path / 'cache.db'}")
    store.migrate()
    build(store)
    service = Service(store, FixedClock(NOW))
    url = f"/v1/checks/{P1}/demo-city/no-flights"
    with TestClient(create_app(store, clock=FixedClock(NOW)), raise_server_exceptions=False) as client:
        admin = {"Authorization": f"Bearer {service.credentials.create_token(ADMIN, Role.ADMIN)[0]}"}
        assert client.get(url, headers=admin).json()["applies"] is True
        assert client.get(url, headers=admin).json()["applies"] is True  # from the cache
        withdrawn = client.post(
            f"/v1/subjects/{P1}/consent", json={"scheme": "demo-city", "grant": False}, headers=admin
        )
        assert withdrawn.json()["changed"] is True
        assert client.get(url, headers=admin).json()["applies"] is False  # consent is a ledger change too
        granted = client.post(f"/v1/subjects/{P1}/consent", json={"scheme": "demo-city", "grant": True}, headers=admin)
        assert granted.json()["changed"] is True
        assert client.get(url, headers=admin).json()["applies"] is True
        with store.read() as conn:
            record = ledger.resolve_record_id(conn, "court:DOC-1")
        World(store).revoke(record, at("2026-02-15"))  # a write through another door (the library)
        assert client.get(url, headers=admin).json()["applies"] is False


def _a_real_lock_error(folder: Path) -> sqlite3.OperationalError:
    """The error SQLite raises when another connection holds the write lock past the busy timeout."""
    path = folder / "locked.db"
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    try:
        sqlite3.connect(path, timeout=0, isolation_level=None).execute("BEGIN IMMEDIATE")
    except sqlite3.OperationalError as exc:
        return exc
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    raise AssertionError("the second writer was let in")


def test_a_failed_audit_commit_means_no_answer(city: City, monkeypatch: pytest.MonkeyPatch) -> None:
    """The audit entry's transaction cannot begin (the write lock held past the busy timeout):
    the driver's error reaches the caller as 503 with Retry-After, never as an answer or a 500."""
    backend = city.client.app.state.service.store.audit_backend  # type: ignore[attr-defined]
    busy = _a_real_lock_error(city.store.backend.database_files()[0].parent)

    def locked(driver: Any) -> None:
        raise busy

    monkeypatch.setattr(backend, "begin_driver", locked)
    response = city.call("enforcer_aviation", "GET", f"/v1/checks/{P1}/demo-city/no-flights")
    assert response.status_code == 503
    assert response.headers["retry-after"] == "1"
    assert "applies" not in response.text
    assert "locked" not in response.text


def test_on_an_event_loop_the_ledger_fingerprint_is_read_once_per_iteration(tmp_path: Path) -> None:
    """Checks handled in one loop iteration share one fingerprint; the next iteration sees new writes."""
    import asyncio

    store = Store(f"sqlite:///{tmp_path / 'tick.db'}")
    store.migrate()
    build(store)
    cache = Service(store, FixedClock(NOW)).answers
    reads: list[tuple[Any, ...]] = []
    read = cache._read_tag

    def counted() -> tuple[Any, ...]:
        reads.append(read())
        return reads[-1]

    cache._read_tag = counted  # type: ignore[method-assign]

    async def scenario() -> tuple[tuple[Any, ...], ...]:
        first = cache.tag()
        with store.read() as conn:
            record = ledger.resolve_record_id(conn, "court:DOC-1")
        World(store).revoke(record, at("2026-02-15"))  # committed by another connection
        same_iteration = cache.tag()  # requests handled now arrived before the write
        await asyncio.sleep(0)
        next_iteration = cache.tag()
        return first, same_iteration, next_iteration

    first, same_iteration, next_iteration = asyncio.run(scenario())
    assert same_iteration == first
    assert len(reads) == 2
    assert next_iteration != first
    assert cache.tag() == next_iteration  # off the loop: read on every call
    assert len(reads) == 3


class TickingClock(Clock):
    """A clock one second further on at every reading, so each audit entry has a time of its own."""

    def __init__(self, start: dt.datetime) -> None:
        self.start, self.ticks = start, 0

    def now(self) -> dt.datetime:
        self.ticks += 1
        return self.start + dt.timedelta(seconds=self.ticks)


def test_a_repeated_check_is_answered_again_but_logged_each_time(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Identical checks reuse the finished answer; every one still gets an entry with its own time,
    and a token looked up again (after a revocation elsewhere) is authorised afresh."""
    store = Store(f"sqlite:///{tmp_path / 'repeat.db'}")
    store.migrate()
    build(store)
    bearer, _ = Service(store, FixedClock(NOW)).credentials.create_token(ADMIN, Role.ENFORCER, agency="civil-aviation")
    app = create_app(store, clock=TickingClock(NOW))
    service = app.state.service  # type: ignore[attr-defined]
    computed: list[str] = []
    check_many = service.questions.check_many

    def counted(*args: Any, **kwargs: Any) -> list[Any]:
        computed.extend(args[1])
        return check_many(*args, **kwargs)  # type: ignore[no-any-return]

    monkeypatch.setattr(service.questions, "check_many", counted)
    url = f"/v1/checks/{P1}/demo-city/no-flights"
    headers = {"Authorization": f"Bearer {bearer}"}
    with TestClient(app) as client:
        answers = [client.get(url, headers=headers).json() for _ in range(3)]
        assert len(computed) == 1
        assert answers[0] == answers[1] == answers[2]
        assert answers[0]["applies"] is True
        client.get(url, headers={**headers, "X-Purpose": "boarding gate 7"})
        assert len(computed) == 2  # another purpose: another entry's text, computed once too
        app.state.tokens.forget()  # type: ignore[attr-defined]
        client.get(url, headers=headers)
        assert len(computed) == 3  # the token was looked up again: the service decides again
    with store.audit_read() as conn:
        looks = [e for e in audit.who_looked(conn, P1) if e["action"] == "checks.ask"]
    assert len(looks) == 5
    assert len({e["at"] for e in looks}) == 5
    assert [e["purpose"] for e in looks].count("boarding gate 7") == 1
    assert all(e["detail"]["applies"] is True for e in looks)


@pytest.mark.parametrize(
    ("subject", "reason"),
    [(P1[:-1], "18 characters"), (P1[:-1] + ("0" if P1[-1] != "0" else "1"), "wrong check character")],
)
def test_an_id_that_cannot_be_one_is_422_with_its_reason_not_404(city: City, subject: str, reason: str) -> None:
    answer = city.call("enforcer_aviation", "GET", f"/v1/checks/{subject}/demo-city/no-flights")
    assert answer.status_code == 422, answer.text
    assert reason in answer.text
    assert city.call("admin", "GET", f"/v1/subjects/{subject}/state").status_code == 422
