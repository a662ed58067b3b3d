"""The policy lab over HTTP and on the command line: the same service, the same figures.

/v1/lab/simulations and /v1/lab/fairness/{scheme} answer an analyst (small cells withheld) and the
administrator (exact), refuse the public and other roles, and say what is wrong with a bad draft;
`xinyong simulate` and `xinyong fairness` print the same JSON objects and exit 2 on bad input.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from helpers import DEMO_CITY, World, at, person_id, run_cli
from xinyong.interfaces.site import create_app
from xinyong.rules.clock import FixedClock
from xinyong.security.access import Principal, Role
from xinyong.service import Service
from xinyong.storage.store import Store

NOW = at("2026-06-01")
NO_CONSENT = DEMO_CITY.replace("consent: required\n", "")
RAISED = NO_CONSENT.replace('"2026.1"', '"2026.2"').replace("points: 5, cap: 20", "points: 30, cap: 40")
ADMIN = Principal(Role.ADMIN, "setup", channel="test")


@pytest.fixture
def city(tmp_path: Path) -> Iterator[tuple[Store, TestClient, dict[str, str]]]:
    store = Store(f"sqlite:///{tmp_path / 'lab.db'}")
    store.migrate()
    world = World(store)
    world.load(NO_CONSENT)
    world.source("civil-affairs", ["CHARITY.BLOOD"])
    people = [person_id(n) for n in range(24)]
    world.subjects([(p, "person", "测试") for p in people])
    for p in people[:12]:
        world.record(p, "CHARITY.BLOOD", "2026-03-01", at("2026-03-01"))
    service = Service(store, FixedClock(NOW))
    tokens = {
        role.value: service.credentials.create_token(ADMIN, role, **extra)[0]
        for role, extra in ((Role.ANALYST, {}), (Role.ADMIN, {}), (Role.OFFICER, {}))
    }
    with TestClient(create_app(store, clock=FixedClock(NOW)), raise_server_exceptions=False) as client:
        yield store, client, tokens
    store.dispose()


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_simulate_over_http_exact_for_the_administrator_withheld_for_an_analyst(
    city: tuple[Store, TestClient, dict[str, str]],
) -> None:
    _store, client, tokens = city
    body = {"draft": RAISED, "as_of": "2026-06-01", "by": ["sex"]}
    exact = client.post("/v1/lab/simulations", json=body, headers=bearer(tokens["admin"]))
    assert exact.status_code == 200, exact.text
    found = exact.json()
    # Twelve donors at 1005 (A) reach 1030 (AA); the other twelve stay at 1000.
    assert (found["subjects"], found["changed"], found["grades"]) == (24, 12, {"A→AA": 12})
    assert found["measures"]["fast-track"] == {"before": 0, "after": 12, "enter": 12, "leave": 0}
    assert {g: v["changed"] for g, v in found["groups"].items()} == {"male": 6, "female": 6}
    shown = client.post("/v1/lab/simulations", json=body, headers=bearer(tokens["analyst"])).json()
    assert (shown["subjects"], shown["changed"], shown["grades"], shown["min_cell"]) == (24, 12, {"A→AA": 12}, 10)
    assert {g: v["changed"] for g, v in shown["groups"].items()} == {"male": None, "female": None}
    assert client.post("/v1/lab/simulations", json=body).status_code == 401
    assert client.post("/v1/lab/simulations", json=body, headers=bearer(tokens["officer"])).status_code == 403


def test_a_bad_draft_over_http_is_a_problem_naming_it(city: tuple[Store, TestClient, dict[str, str]]) -> None:
    _store, client, tokens = city
    answer = client.post("/v1/lab/simulations", json={"draft": "scheme: [unclosed"}, headers=bearer(tokens["admin"]))
    assert answer.status_code == 422
    assert answer.headers["content-type"].startswith("application/problem+json")
    assert "draft" in answer.json()["detail"]


def test_fairness_over_http(city: tuple[Store, TestClient, dict[str, str]]) -> None:
    _store, client, tokens = city
    answer = client.get("/v1/lab/fairness/demo-city?by=sex&as_of=2026-06-01", headers=bearer(tokens["analyst"]))
    assert answer.status_code == 200, answer.text
    found = answer.json()
    assert (found["by"], found["resamples"], set(found["groups"])) == ("sex", 1000, {"male", "female"})
    assert all(g["too_few"] for g in found["groups"].values())  # 12 each: reported, never flagged
    assert not any(e["flag"] for g in found["groups"].values() for e in g["lists"].values())
    assert client.get("/v1/lab/fairness/demo-city?by=religion", headers=bearer(tokens["analyst"])).status_code == 422
    doc = client.get("/openapi.json").json()
    assert {"/v1/lab/simulations", "/v1/lab/fairness/{scheme}"} <= set(doc["paths"])


def test_the_commands_print_the_service_s_json_and_exit_2_on_bad_input(
    city: tuple[Store, TestClient, dict[str, str]], tmp_path: Path
) -> None:
    store, _client, _tokens = city
    draft = tmp_path / "draft.yaml"
    draft.write_text(RAISED, encoding="utf-8")
    db, now = store.url, "2026-06-01T12:00:00+08:00"
    code, out, err = run_cli(db, "simulate", str(draft), "--by", "sex", "--json", now=now)
    assert code == 0, err
    assert json.loads(out)["grades"] == {"A→AA": 12}
    code, out, err = run_cli(db, "fairness", "--scheme", "demo-city", "--by", "age_band", "--json", now=now)
    assert code == 0, err
    assert json.loads(out)["groups"]["35–44"]["n"] == 24
    code, out, _err = run_cli(db, "simulate", str(draft), "--by", "religion", "--json", now=now)
    assert code == 2
    assert "--by: 'religion' is not a field" in json.loads(out)["error"]["message"]
    code, _out, err = run_cli(db, "simulate", str(tmp_path / "missing.yaml"), now=now)
    assert code == 2
    assert "missing.yaml" in err
