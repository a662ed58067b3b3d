"""A path fuzz: every route of the API and the pages, each path parameter in turn replaced by a
hostile value, on both backends, as the public and as an administrator.

The routes are enumerated from the application (`create_app`'s `app.routes`), so a new route is
fuzzed without anyone adding it here (its parameters need a valid default in `VALID`, and a POST its
body in `BODIES`; the test says so when one is missing). The values: a NUL byte, over-long ids (33,
65 and 1,000 characters; digits too, which overflow an integer id), non-ASCII (中文, an emoji, a
superscript digit), percent-encoded slashes, "..", and the empty string. For every request: no 5xx;
every 4xx a problem+json body (or, for a page, an HTML error page); nothing logged at ERROR level
(an unexpected error logs its stack trace there).
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient
from starlette.routing import Mount

from helpers import World, at, org_id, person_id
from xinyong.interfaces.site import create_app
from xinyong.rules.clock import FixedClock
from xinyong.security.access import Principal, Role
from xinyong.service import Service
from xinyong.storage.store import Store

NOW = at("2026-03-01")
P1, O1 = person_id(1), org_id(1)
ADMIN = Principal(Role.ADMIN, "setup", channel="test")
PROBLEM = "application/problem+json"

# Each value as it goes on the wire (percent-encoded where it must be).
VALUES = {
    "nul": "X%00",
    "nul alone": "%00",
    "33 digits": "1" * 33,
    "65 letters": "A" * 65,
    "1,000 characters": "x" * 1000,
    "1,000 digits": "9" * 1000,
    "中文": "%E4%B8%AD%E6%96%87",
    "33 × 中": "%E4%B8%AD" * 33,
    "emoji": "%F0%9F%98%80",
    "superscript two": "%C2%B2",
    "encoded slash": "a%2Fb",
    "encoded slash alone": "%2F",
    "..": "..",
    "encoded ..": "%2E%2E",
    "empty": "",
}

# A valid value for every path parameter, so that each request fuzzes one and reaches the code
# behind the others. The value fuzzed is always the resource a write would act on, so no write
# reaches a real resource.
VALID = {
    "subject": P1,
    "subject_id": P1,
    "scheme": "demo-city",
    "scheme_id": "demo-city",
    "measure": "no-flights",
    "list_id": "defaulters",
    "version": "2026.1",
    "record": "court:DOC-1",
    "job": "1",
    "job_id": "1",
    "objection": "1",
    "objection_id": "1",
    "repair_id": "1",
    "token_id": "0123456789ab",
    "lang": "en",
    "path": "app.css",
    "agency": "civil-aviation",
    "report_id": "0123456789abcdef0123456789abcdef",
    "scheme_a": "demo-city",
    "scheme_b": "demo-city",  # compared with itself: refused (422), which the fuzz accepts as an answer
}

# Bodies of the routes that take one: valid, so that only the path is at fault.
BODIES: dict[tuple[str, str], dict[str, Any]] = {
    ("POST", "/v1/subjects/{subject}/consent"): {"json": {"scheme": "demo-city", "grant": True}},
    ("POST", "/v1/records/{record}/corrections"): {"json": {"reason": "fuzz", "behaviour": "COURT.DEFAULT"}},
    ("POST", "/v1/records/{record}/revocation"): {"json": {"reason": "fuzz"}},
    ("POST", "/v1/records/{record}/end"): {"json": {"on": "2026-02-01", "reason": "fulfilled"}},
    ("POST", "/v1/objections/{objection}/decision"): {"json": {"outcome": "upheld", "reason": "fuzz"}},
    ("POST", "/staff/objections/{objection_id}"): {"data": {"outcome": "upheld", "reason": "fuzz"}},
    ("POST", "/staff/repairs/{repair_id}"): {"data": {"outcome": "approved", "reason": "fuzz"}},
    ("DELETE", "/v1/tokens/{token_id}"): {},
    ("POST", "/v1/feeds/{agency}/versions/{version}/acknowledgement"): {},
    ("POST", "/v1/checks/{scheme}/{measure}"): {"json": {"subjects": ["110105199001010010"]}},
}
PARAMETER = re.compile(r"{([a-z_]+)(?::[a-z]+)?}")


def flat(routes: list[Any], prefix: str = "") -> Iterator[tuple[str, Any]]:
    """Every route with its full path, through included routers (FastAPI keeps them as such)."""
    for route in routes:
        if hasattr(route, "original_router"):
            yield from flat(route.original_router.routes, prefix + route.include_context.prefix)
        else:
            yield prefix + route.path, route


def routes(app: Any) -> list[tuple[str, str, list[str], bool]]:
    """(method, path template, its parameters, whether it is a page) for every route with a path
    parameter; a mount (static files) as the path it serves."""
    found = []
    for path, route in flat(app.routes):
        if isinstance(route, Mount):
            found.append(("GET", f"{path}/{{path}}", ["path"], True))
            continue
        names = PARAMETER.findall(path)
        if not names:
            continue
        page = not isinstance(route, APIRoute) or not path.startswith("/v1/")
        for method in sorted(getattr(route, "methods", None) or {"GET"}):
            if method != "HEAD":
                found.append((method, path, names, page))
    return found


def requests(app: Any) -> Iterator[tuple[str, str, str, bool]]:
    """(method, template, the path with one parameter fuzzed, page) for every route × parameter × value."""
    for method, template, names, page in routes(app):
        assert all(name in VALID for name in names), f"{template}: give its parameters a valid value in VALID"
        if method != "GET":
            assert (method, template) in BODIES, f"{method} {template}: give it a valid body in BODIES"
        for fuzzed in names:
            for value in VALUES.values():
                path = template
                for name in names:
                    path = re.sub(r"{" + name + r"(?::[a-z]+)?}", value if name == fuzzed else VALID[name], path)
                yield method, template, path, page


@pytest.fixture
def city(store: Store) -> Store:
    world = World(store)
    person, org = world.standard()
    assert (person, org) == (P1, O1)
    world.record(P1, "COURT.DEFAULT", "2026-01-05", at("2026-01-06"))
    return store


def log_in(client: TestClient, bearer: str) -> str:
    """A page session as the token's holder; its CSRF token."""
    form = client.get("/login").text
    token = re.search(r'name="csrf" value="([^"]+)"', form)
    assert token, "the log-in form has no CSRF token"
    answer = client.post("/login", data={"csrf": token.group(1), "bearer": bearer}, follow_redirects=False)
    assert answer.status_code == 303, answer.text
    return token.group(1)


@pytest.mark.parametrize("role", ["public", "admin"])
def test_no_path_parameter_makes_a_5xx_or_an_error_in_the_log(
    city: Store, role: str, caplog: pytest.LogCaptureFixture
) -> None:
    bearer, _ = Service(city, FixedClock(at("2026-02-01"))).credentials.create_token(ADMIN, Role.ADMIN, label="fuzz")
    app = create_app(city, clock=FixedClock(NOW), token_cache_seconds=60)
    wrong: list[str] = []
    count = 0
    started = time.monotonic()
    with TestClient(app, raise_server_exceptions=False) as client:
        headers: dict[str, str] = {}
        csrf = "none"
        if role == "admin":
            headers = {"Authorization": f"Bearer {bearer}"}
            csrf = log_in(client, bearer)
        for method, template, path, page in requests(app):
            body = dict(BODIES.get((method, template), {}))
            if "data" in body:
                body["data"] = {**body["data"], "csrf": csrf}
            answer = client.request(method, path, headers=headers, follow_redirects=False, **body)
            count += 1
            status, kind = answer.status_code, answer.headers.get("content-type", "")
            if status >= 500:
                wrong.append(f"{method} {path[:120]}: {status} {answer.text[:200]}")
            elif status >= 400 and not (kind == PROBLEM or (page and kind.startswith("text/html"))):
                wrong.append(f"{method} {path[:120]}: {status} as {kind!r}: {answer.text[:200]}")
    errors = [f"{r.name}: {r.getMessage()[:300]}" for r in caplog.records if r.levelno >= logging.ERROR]
    print(f"\npath fuzz ({role}): {count} requests in {time.monotonic() - started:.1f} s")
    assert count >= 400
    assert not wrong, f"{len(wrong)} of {count} requests:\n" + "\n".join(wrong[:40])
    assert not errors, "\n".join(errors[:20])
