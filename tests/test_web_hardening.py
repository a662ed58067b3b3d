"""The web is hardened (DESIGN.md, "Trust under load, faults and attack"): log-in lock-outs kept in
the store, log-out that ends the session on the server, cookie flags, the security headers on every
kind of response, and the API documentation served without anything from elsewhere.

Each of these failed before the hardening: 50 wrong passwords in 2.7 s and then the right one
accepted; a cookie copied before log-out still valid for 8 hours; no Secure flag; none of the
headers anywhere; /docs loading swagger-ui from a CDN. The browser half (the pages and /docs work
under the Content-Security-Policy, nothing is fetched from elsewhere) is in tests/e2e/test_browser.py.
"""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import io
import re
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from argon2 import PasswordHasher
from fastapi.testclient import TestClient
from sqlalchemy import inspect, text

from helpers import World, at, person_id
from xinyong import settings
from xinyong.interfaces import headers
from xinyong.interfaces.site import create_app
from xinyong.rules.clock import Clock
from xinyong.security import lockouts, passwords
from xinyong.security.access import Principal, Role
from xinyong.service import Service
from xinyong.storage.store import MIGRATIONS, Store

ROOT = Path(__file__).resolve().parents[1]
API_STATIC = ROOT / "src" / "xinyong" / "interfaces" / "api" / "static"
TEMPLATES = ROOT / "src" / "xinyong" / "interfaces" / "web" / "templates"
WEB_STATIC = ROOT / "src" / "xinyong" / "interfaces" / "web" / "static"
ADMIN = Principal(Role.ADMIN, "setup", channel="test")
PASSWORD = "correct horse battery"
P1 = person_id(1)
SECURITY = ("content-security-policy", "x-frame-options", "x-content-type-options", "referrer-policy")


@dataclass
class MovingClock(Clock):
    """A clock the test moves forward."""

    instant: dt.datetime = field(default_factory=lambda: at("2026-03-01"))

    def now(self) -> dt.datetime:
        return self.instant

    def advance(self, seconds: float) -> None:
        self.instant += dt.timedelta(seconds=seconds)


@dataclass
class Site:
    store: Store
    service: Service
    clock: MovingClock
    app: Any
    client: TestClient
    hashes: list[str]  # every password hash verified (argon2), to see that none was while locked

    def csrf(self, client: TestClient | None = None) -> str:
        page = (client or self.client).get("/login")
        found = re.search(r'name="csrf" value="([^"]+)"', page.text)
        assert found, page.text
        return found.group(1)

    def attempt(
        self, login: str, password: str, *, address: str | None = None, client: TestClient | None = None
    ) -> httpx.Response:
        client = client or self.client
        headers = {"X-Forwarded-For": f"198.51.100.250, {address}"} if address else {}
        return client.post(
            "/login",
            data={"csrf": self.csrf(client), "login": login, "password": password},
            headers=headers,
            follow_redirects=False,
        )

    def audit_rows(self) -> list[dict[str, str]]:
        out = io.StringIO()
        self.service.audit.export(ADMIN, out)
        return list(csv.DictReader(io.StringIO(out.getvalue())))

    def lockout_entries(self) -> list[dict[str, str]]:
        return [row for row in self.audit_rows() if row["action"] == lockouts.ACTION]


def fast_hasher(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Cheap argon2id parameters for the test's passwords (the real ones take 0.1 s a hash), and a
    list that records every hash verified."""
    monkeypatch.setattr(passwords, "HASHER", PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1))
    verified: list[str] = []
    original = passwords._matches

    def counted(encoded: str, password: str) -> bool:
        verified.append(encoded)
        return original(encoded, password)

    monkeypatch.setattr(passwords, "_matches", counted)
    return verified


def make_site(store: Store, monkeypatch: pytest.MonkeyPatch, **client: Any) -> Iterator[Site]:
    verified = fast_hasher(monkeypatch)
    World(store).standard()
    clock = MovingClock()
    service = Service(store, clock)
    service.credentials.set_password(ADMIN, P1, PASSWORD, Role.SUBJECT, subject=P1)
    for login in ("officer", "mallory", "alice", "bob", "carol", "dave"):
        service.credentials.set_password(ADMIN, login, PASSWORD, Role.OFFICER)
    app = create_app(store, clock=clock, token_cache_seconds=0)
    with TestClient(app, **client) as test_client:
        yield Site(store, service, clock, app, test_client, verified)


@pytest.fixture
def site(sqlite_store: Store, monkeypatch: pytest.MonkeyPatch) -> Iterator[Site]:
    yield from make_site(sqlite_store, monkeypatch)


@pytest.fixture
def proxied(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """One trusted proxy in front: the client's address is the last X-Forwarded-For value."""
    with settings.using(settings.load({"XINYONG_PROXY_HOPS": "1"})):
        yield


# --- log-in lock-outs ------------------------------------------------------------------------------


def test_after_5_failures_for_a_name_log_in_answers_429_at_once_and_checks_no_password(site: Site) -> None:
    answers = [site.attempt("officer", f"guess {n}") for n in range(5)]
    assert [a.status_code for a in answers] == [401, 401, 401, 401, 429]
    assert answers[-1].headers["retry-after"] == "60"
    checked = len(site.hashes)
    assert checked == 5
    # Locked: the right password is refused too, at once, and no password is even looked at.
    started = time.perf_counter()
    for password in ("guess 6", PASSWORD):
        answer = site.attempt("officer", password)
        assert answer.status_code == 429
        assert answer.headers["retry-after"] == "60"
        assert "请 1 分钟后再试" in answer.text  # the default language: Chinese
    assert time.perf_counter() - started < 2
    assert len(site.hashes) == checked
    assert site.client.get("/staff", follow_redirects=False).status_code == 303  # not logged in
    # Another name from the same address is not locked by the name's failures.
    assert site.attempt("alice", PASSWORD).status_code == 303


def test_retry_after_grows_with_each_lock_out_in_a_row(site: Site) -> None:
    for n in range(5):
        site.attempt("officer", f"guess {n}")
    waits = [int(site.attempt("officer", PASSWORD).headers["retry-after"])]
    site.clock.advance(30)
    assert int(site.attempt("officer", PASSWORD).headers["retry-after"]) == 30  # it counts down
    for _ in range(4):
        site.clock.advance(waits[-1])
        # The lock-out is over: one attempt, whose failure starts the next one, twice as long.
        failed = site.attempt("officer", "one more guess")
        assert failed.status_code == 429
        waits.append(int(failed.headers["retry-after"]))
        assert int(site.attempt("officer", PASSWORD).headers["retry-after"]) == waits[-1]
    assert waits == [60, 120, 240, 480, 960]
    # After the lock-out, the right password logs in, and the name's count starts again.
    site.clock.advance(960)
    assert site.attempt("officer", PASSWORD).status_code == 303
    assert [site.attempt("officer", f"typo {n}").status_code for n in range(5)] == [401] * 4 + [429]
    assert site.attempt("officer", PASSWORD).headers["retry-after"] == "60"  # the series ended at the success


def test_the_longest_lock_out_is_an_hour_and_a_day_forgets_the_series() -> None:
    assert [lockouts.duration(n).total_seconds() for n in range(1, 9)] == [
        60,
        120,
        240,
        480,
        960,
        1920,
        3600,
        3600,
    ]
    assert lockouts.duration(10_000) == lockouts.LONGEST_LOCKOUT


def test_failures_in_15_minutes_count_and_older_ones_do_not(site: Site) -> None:
    for n in range(4):
        assert site.attempt("officer", f"guess {n}").status_code == 401
        site.clock.advance(60)
    site.clock.advance(15 * 60 - 4 * 60 + 1)  # the first failure is now older than 15 minutes
    assert site.attempt("officer", "guess 5").status_code == 401
    assert site.attempt("officer", "guess 6").status_code == 429


def test_20_failures_from_one_address_lock_it_for_every_name(site: Site, proxied: None) -> None:
    names = ["alice", "bob", "carol", "dave", "mallory"]
    statuses = [site.attempt(names[n % 5], f"guess {n}", address="203.0.113.7").status_code for n in range(20)]
    assert statuses == [401] * 19 + [429]  # 4 per name: no name is locked, the address is
    assert site.attempt("officer", PASSWORD, address="203.0.113.7").status_code == 429
    # The names themselves are not locked: from elsewhere they log in.
    assert site.attempt("officer", PASSWORD, address="192.0.2.1").status_code == 303
    assert site.attempt("alice", PASSWORD, address="192.0.2.1").status_code == 303
    [entry] = site.lockout_entries()
    assert entry["actor"] == "address:203.0.113.7"


def test_a_success_does_not_reset_the_address_count_of_failures_against_other_names(site: Site, proxied: None) -> None:
    """A guesser with an account of its own cannot log in to it to wipe the address's failures."""
    names = ["alice", "bob", "carol", "dave"]
    for n in range(16):
        assert site.attempt(names[n % 4], f"guess {n}", address="203.0.113.8").status_code == 401
    for n in range(3):
        assert site.attempt("mallory", f"own typo {n}", address="203.0.113.8").status_code == 401
    assert site.attempt("mallory", PASSWORD, address="203.0.113.8").status_code == 303
    answer = site.attempt("carol", "guess 20", address="203.0.113.8")
    assert answer.status_code == 429, "the 20th failure from the address locks it"


def test_x_forwarded_for_is_not_trusted_unless_a_setting_says_so(site: Site) -> None:
    """Without XINYONG_PROXY_HOPS, a client that names a fresh address per guess is still one address."""
    names = ["alice", "bob", "carol", "dave", "mallory"]
    statuses = [site.attempt(names[n % 5], f"guess {n}", address=f"203.0.113.{n}").status_code for n in range(20)]
    assert statuses[-1] == 429
    [entry] = site.lockout_entries()
    assert entry["actor"] == "address:testclient"


def test_with_a_trusted_proxy_the_client_is_the_address_it_forwarded(site: Site, proxied: None) -> None:
    """What a client puts in X-Forwarded-For itself is left of what the proxy appends: never read."""
    names = ["alice", "bob", "carol", "dave", "mallory"]
    for n in range(20):
        spoofed = {"X-Forwarded-For": f"10.0.0.{n}, 203.0.113.9"}
        site.client.post(
            "/login", data={"csrf": site.csrf(), "login": names[n % 5], "password": "x" * 9}, headers=spoofed
        )
    assert [e["actor"] for e in site.lockout_entries()] == ["address:203.0.113.9"]


def test_ipv6_clients_are_counted_by_their_64_block() -> None:
    assert lockouts.address_key("2001:db8:1:2:aaaa::1") == lockouts.address_key("2001:db8:1:2:ffff::9")
    assert lockouts.address_key("2001:db8:1:2::1") == "2001:db8:1:2::/64"
    assert lockouts.address_key("2001:db8:1:3::1") != lockouts.address_key("2001:db8:1:2::1")
    assert lockouts.address_key("::ffff:203.0.113.5") == "203.0.113.5"
    assert lockouts.address_key("203.0.113.5") == "203.0.113.5"
    assert lockouts.address_key("testclient") == "testclient"
    assert lockouts.address_key("") is None
    assert lockouts.login_key(" officer ") == "OFFICER"
    assert lockouts.login_key("x" * 500) == "X" * 64


def test_each_lock_out_is_audited_once_naming_the_name_and_never_a_password(site: Site) -> None:
    for n in range(5):
        site.attempt("officer", f"secret guess {n}")
    for _ in range(3):
        site.attempt("officer", PASSWORD)  # refused while locked: no second entry
    [entry] = site.lockout_entries()
    assert entry["actor"] == "login:OFFICER"
    assert entry["role"] == "public"
    assert entry["outcome"] == lockouts.OUTCOME
    assert '"failures":5' in entry["detail"].replace(" ", "")
    assert '"seconds":60' in entry["detail"].replace(" ", "")
    every = "\n".join(",".join(row.values()) for row in site.audit_rows())
    assert "secret guess" not in every
    assert PASSWORD not in every
    site.clock.advance(61)
    site.attempt("officer", "secret guess 6")  # the next lock-out: a second entry
    assert [e["detail"].count('"seconds":120') for e in site.lockout_entries()] == [0, 1]
    assert site.service.audit.verify(ADMIN).ok


def test_counts_hold_across_workers(site: Site) -> None:
    """Two applications on one store stand for two server workers: the count is the store's."""
    other = create_app(site.store, clock=site.clock, token_cache_seconds=0)
    with TestClient(other) as second:
        statuses = [
            site.attempt("officer", f"guess {n}", client=second if n % 2 else site.client).status_code for n in range(5)
        ]
        assert statuses == [401, 401, 401, 401, 429]
        assert site.attempt("officer", PASSWORD, client=second).status_code == 429
        assert site.attempt("officer", PASSWORD).status_code == 429


def test_attempts_at_the_same_moment_are_counted_before_their_passwords_are_checked(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Guesses sent all at once, on both backends: at most 5 passwords are checked, not one per
    thread or worker, and the lock-out begins once (each failure locks the name's row first)."""
    verified = fast_hasher(monkeypatch)
    World(store).standard()
    service = Service(store, MovingClock())
    service.credentials.set_password(ADMIN, "officer", PASSWORD, Role.OFFICER)
    outcomes: list[str] = []
    barrier = threading.Barrier(12)

    def guess(n: int) -> None:
        barrier.wait()
        try:
            service.credentials.log_in("officer", f"guess {n}", address=f"203.0.113.{n}")
        except lockouts.LockedOut:
            outcomes.append("locked")
        except Exception as exc:  # Unauthenticated: a password was checked and was wrong
            outcomes.append(type(exc).__name__)

    threads = [threading.Thread(target=guess, args=(n,)) for n in range(12)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(verified) <= lockouts.NAME_LIMIT
    assert outcomes.count("locked") >= 12 - lockouts.NAME_LIMIT
    assert set(outcomes) <= {"locked", "Unauthenticated"}
    with pytest.raises(lockouts.LockedOut):
        service.credentials.log_in("officer", PASSWORD, address="203.0.113.99")
    out = io.StringIO()
    service.audit.export(ADMIN, out)
    assert sum(row["action"] == lockouts.ACTION for row in csv.DictReader(io.StringIO(out.getvalue()))) == 1


def test_a_pasted_token_is_refused_from_a_locked_address(site: Site) -> None:
    bearer, _ = site.service.credentials.create_token(ADMIN, Role.OFFICER, label="officer-token")
    names = ["alice", "bob", "carol", "dave", "mallory"]
    for n in range(20):
        site.attempt(names[n % 5], f"guess {n}")
    answer = site.client.post("/login", data={"csrf": site.csrf(), "bearer": bearer}, follow_redirects=False)
    assert answer.status_code == 429


# --- sessions and cookies ----------------------------------------------------------------------------


def test_log_out_ends_the_session_on_the_server(site: Site) -> None:
    assert site.attempt("officer", PASSWORD).status_code == 303
    copied = site.client.cookies.get("xy_session")
    assert copied
    assert site.client.get("/staff").status_code == 200
    page = site.client.get("/staff")
    token = re.search(r'name="csrf" value="([^"]+)"', page.text)
    assert token
    assert site.client.post("/logout", data={"csrf": token.group(1)}, follow_redirects=False).status_code == 303
    # The cookie copied before log-out opens nothing any more, from any client.
    with TestClient(site.app) as thief:
        thief.cookies.set("xy_session", copied)
        assert thief.get("/staff", follow_redirects=False).status_code == 303
        assert thief.get("/me", follow_redirects=False).headers["location"].startswith("/login")
    with site.store.read() as conn:
        assert conn.execute(text("SELECT count(*) FROM web_sessions")).scalar() == 0


def test_the_session_cookie_holds_no_credential_and_a_new_password_ends_its_sessions(site: Site) -> None:
    site.attempt("officer", PASSWORD)
    assert site.client.get("/staff").status_code == 200
    with site.store.read() as conn:
        [stored] = conn.execute(text("SELECT secret_sha256, credential FROM web_sessions")).all()
    assert stored.credential == "pw-OFFICER"
    cookie = site.client.cookies.get("xy_session") or ""
    assert "OFFICER" not in cookie.upper()
    assert stored.secret_sha256 not in cookie
    site.service.credentials.set_password(ADMIN, "officer", "another good password", Role.OFFICER)
    assert site.client.get("/staff", follow_redirects=False).status_code == 303


def test_a_session_ends_after_8_hours_on_the_server_too(site: Site) -> None:
    site.attempt("officer", PASSWORD)
    site.clock.advance(8 * 3600 + 1)
    assert site.client.get("/staff", follow_redirects=False).status_code == 303


def cookie_flags(response: httpx.Response, name: str) -> set[str]:
    """The attributes of the cookie a response sets, lower case (`httponly`, `samesite=strict`, …)."""
    for value in response.headers.get_list("set-cookie"):
        if value.startswith(f"{name}="):
            return {part.strip().lower() for part in value.split(";")[1:]}
    raise AssertionError(f"no {name} cookie set")


def test_cookies_are_httponly_strict_and_secure_over_https(
    sqlite_store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    for secure in make_site(sqlite_store, monkeypatch, base_url="https://testserver"):
        answer = secure.attempt("officer", PASSWORD)
        assert answer.status_code == 303
        flags = cookie_flags(answer, "xy_session")
        assert {"httponly", "secure", "samesite=strict"} <= flags
        assert {"httponly", "secure", "samesite=strict"} <= cookie_flags(
            secure.client.get("/lang/en", follow_redirects=False), "xy_lang"
        )
        assert secure.client.get("/staff").status_code == 200  # the Secure cookie goes back over https


def test_cookies_are_not_secure_over_plain_http_unless_a_trusted_proxy_says_https(site: Site) -> None:
    answer = site.attempt("officer", PASSWORD)
    flags = cookie_flags(answer, "xy_session")
    assert "secure" not in flags
    assert {"httponly", "samesite=strict"} <= flags
    assert {"httponly", "samesite=strict"} <= cookie_flags(
        site.client.get("/lang/en", follow_redirects=False), "xy_lang"
    )
    said = {"X-Forwarded-Proto": "https"}
    assert "secure" not in cookie_flags(site.client.get("/lang/en", headers=said, follow_redirects=False), "xy_lang")
    with settings.using(settings.load({"XINYONG_PROXY_HOPS": "1"})):
        assert "secure" in cookie_flags(site.client.get("/lang/en", headers=said, follow_redirects=False), "xy_lang")


# --- the security headers --------------------------------------------------------------------------


def assert_hardened(response: httpx.Response, what: str) -> None:
    for name in SECURITY:
        assert name in response.headers, f"{what}: no {name}"
        assert len(response.headers.get_list(name)) == 1, f"{what}: {name} twice"
    assert response.headers["x-frame-options"] == "DENY", what
    assert response.headers["x-content-type-options"] == "nosniff", what
    assert response.headers["referrer-policy"] in {"no-referrer", "same-origin"}, what
    policy = {part.split()[0]: part.split()[1:] for part in response.headers["content-security-policy"].split(";")}
    assert policy["default-src"] == ["'self'"], what
    assert policy["frame-ancestors"] == ["'none'"], what
    assert policy["object-src"] == ["'none'"], what
    for directive in ("script-src", "style-src"):
        assert "'unsafe-inline'" not in policy[directive], what
        assert "'unsafe-eval'" not in policy[directive], what
        assert not any(v.startswith(("http", "*")) or v.endswith(":") for v in policy[directive]), what


def test_every_kind_of_response_carries_the_security_headers(site: Site) -> None:
    bearer, _ = site.service.credentials.create_token(ADMIN, Role.ENFORCER, agency="civil-aviation")
    check = f"/v1/checks/{P1}/demo-city/no-flights"
    assert site.app.fast_path.match({"type": "http", "method": "GET", "path": check}) is not None
    auth = {"Authorization": f"Bearer {bearer}"}
    answers = {
        "a page": site.client.get("/"),
        "the log-in page": site.client.get("/login"),
        "a redirect": site.client.get("/me", follow_redirects=False),
        "a static file": site.client.get("/static/site.css"),
        "a vendored script": site.client.get("/static/vendor/htmx.min.js"),
        "an API route": site.client.get("/v1/schemes"),
        "the check's fast path": site.client.get(check, headers=auth),
        "the check's fast path, repeated": site.client.get(check, headers=auth),
        "the check's fast path, refused": site.client.get(check),
        "the check's fast path, a bad day": site.client.get(check, params={"as_of": "2026-13-01"}, headers=auth),
        "a 404": site.client.get("/no/such/page"),
        "a problem+json error": site.client.get("/v1/objections"),
        "a validation problem": site.client.post("/v1/records/1/correct", json={}),
        "a 405": site.client.delete("/v1/schemes"),
        "a web error page": site.client.get("/subjects/110105199001019999"),
        "/docs": site.client.get("/docs"),
        "swagger-ui": site.client.get("/docs/static/swagger-ui-bundle.js"),
        "/openapi.json": site.client.get("/openapi.json"),
        "/healthz": site.client.get("/healthz"),
        "a HEAD request": site.client.head("/"),
    }
    assert answers["the check's fast path"].status_code == 200
    assert answers["the check's fast path, refused"].status_code == 401
    assert answers["the check's fast path, a bad day"].status_code == 422
    assert answers["a problem+json error"].headers["content-type"] == "application/problem+json"
    assert answers["a 404"].status_code == 404
    for what, response in answers.items():
        assert_hardened(response, what)
    # The pages' policy is the strictest: nothing but the site's own files.
    assert answers["a page"].headers["content-security-policy"] == headers.CONTENT_SECURITY_POLICY
    assert "'sha256-" not in answers["a page"].headers["content-security-policy"]


def test_an_internal_error_carries_them_too(site: Site, monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("boom")

    monkeypatch.setattr(type(site.service.schemes), "versions", broken)
    with TestClient(site.app, raise_server_exceptions=False) as client:
        for path in ("/v1/schemes", "/"):
            answer = client.get(path)
            assert answer.status_code == 500, path
            assert_hardened(answer, f"a 500 at {path}")


def test_the_check_path_adds_them_from_tuples_made_once() -> None:
    from xinyong.interfaces.api import checks

    assert checks.SECURITY_HEADERS is headers.HEADERS
    assert all(isinstance(name, bytes) and name == name.lower() for name, _ in headers.HEADERS)


def test_a_header_the_response_set_itself_is_kept_and_never_doubled() -> None:
    given = [(b"content-type", b"text/html"), (b"content-security-policy", b"default-src 'self' x")]
    merged = headers.with_security_headers(given)
    assert [v for k, v in merged if k == b"content-security-policy"] == [b"default-src 'self' x"]
    assert {k for k, _ in merged} == {b"content-type", *headers.NAMES}


# --- the pages have no inline script or style; /docs loads nothing from elsewhere ------------------


def test_the_templates_have_no_inline_script_style_or_handler() -> None:
    for template in sorted(TEMPLATES.glob("*.html")):
        source = re.sub(r"\{#.*?#\}", "", template.read_text(encoding="utf-8"), flags=re.DOTALL)  # comments
        for tag in re.findall(r"<script\b[^>]*>", source):
            assert 'src="/static/' in tag or 'type="application/json"' in tag, (template.name, tag)
        assert "<style" not in source, template.name
        assert not re.search(r"\sstyle=", source), template.name
        assert not re.search(r"\son[a-z]+=", source), template.name
        assert "javascript:" not in source, template.name


def test_the_pages_as_served_have_no_inline_script(site: Site) -> None:
    site.attempt(P1, PASSWORD)
    for path in ("/", "/login", "/schemes", "/me", "/me/notices"):
        html = site.client.get(path).text
        for tag, body in re.findall(r"(<script\b[^>]*>)(.*?)</script>", html, flags=re.DOTALL):
            assert ('src="/static/' in tag and not body.strip()) or 'type="application/json"' in tag, (path, tag)
        assert not re.search(r'(?:src|href)="(?:https?:)?//', html), path


def test_docs_load_nothing_from_elsewhere(site: Site) -> None:
    page = site.client.get("/docs")
    assert page.status_code == 200
    html = page.text
    assert not re.search(r"https?://|//cdn", html), "the docs page names another site"
    assets = re.findall(r'(?:src|href)="([^"]+)"', html)
    assert sorted(assets) == [
        "/docs/static/favicon-32x32.png",
        "/docs/static/swagger-ui-bundle.js",
        "/docs/static/swagger-ui.css",
    ]
    for asset in assets:
        served = site.client.get(asset)
        assert served.status_code == 200, asset
        assert served.content == (API_STATIC / asset.rsplit("/", 1)[1]).read_bytes()
    assert site.client.get("/docs/static/swagger-ui-bundle.js").headers["content-type"].startswith("text/javascript")
    # The one inline script (swagger-ui's start) is allowed by its digest, and nothing else is.
    [script] = re.findall(r"<script>(.*?)</script>", html, flags=re.DOTALL)
    assert '"validatorUrl": null' in script  # no badge fetched from the online validator
    policy = page.headers["content-security-policy"]
    assert headers.script_hash(script) in policy
    assert policy == headers.policy(script_hashes=[headers.script_hash(script)], images=["data:"])
    assert site.client.get("/docs/oauth2-redirect").status_code == 404


def test_the_vendored_swagger_ui_is_listed_with_its_digest() -> None:
    listed = (API_STATIC / "VENDORED.md").read_text(encoding="utf-8")
    files = [p for p in sorted(API_STATIC.rglob("*")) if p.is_file() and p.name != "VENDORED.md"]
    assert len(files) == 6
    for path in files:
        name = path.relative_to(API_STATIC).as_posix()
        assert f"`{name}`" in listed, name
        assert hashlib.sha256(path.read_bytes()).hexdigest() in listed, name
    assert "5.36.0" in listed


def test_the_vendored_vega_interpreter_differs_from_its_tarball_in_its_import_alone() -> None:
    listed = (WEB_STATIC / "VENDORED.md").read_text(encoding="utf-8")
    source = (WEB_STATIC / "vendor" / "vega-interpreter.js").read_text(encoding="utf-8")
    first, rest = source.split("\n", 1)
    assert first == "import { ascending, isString, DisallowedObjectProperties } from '../vega-util.js';"
    original = "import { ascending, isString, DisallowedObjectProperties } from 'vega-util';\n" + rest
    assert hashlib.sha256(original.encode()).hexdigest() in listed
    assert "Function(" not in source
    assert "eval(" not in source


# --- the store's tables ----------------------------------------------------------------------------


def test_the_migration_goes_down_and_up(store: Store) -> None:
    from alembic import command
    from alembic.config import Config

    service = Service(store, MovingClock())
    World(store).standard()
    service.credentials.set_password(ADMIN, "officer", PASSWORD, Role.OFFICER)
    for n in range(5):
        with pytest.raises(lockouts.LockedOut if n == 4 else Exception):
            service.credentials.log_in("officer", f"guess {n}", address="203.0.113.30")
    tables = {"login_attempts", "login_locks", "web_sessions"}
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    with store.migrating() as conn:
        config.attributes["connection"] = conn
        assert tables <= set(inspect(conn).get_table_names())
        command.downgrade(config, "0007")
        assert not tables & set(inspect(conn).get_table_names())
        command.upgrade(config, "head")
        assert tables <= set(inspect(conn).get_table_names())
    # Counted from nothing again (what the tables held lives minutes), and working.
    assert service.credentials.log_in("officer", PASSWORD, address="203.0.113.30").id == "pw-OFFICER"


def test_lock_outs_work_alike_on_both_backends(store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    verified = fast_hasher(monkeypatch)
    World(store).standard()
    clock = MovingClock()
    service = Service(store, clock)
    service.credentials.set_password(ADMIN, "officer", PASSWORD, Role.OFFICER)
    outcomes = []
    for n in range(7):
        try:
            service.credentials.log_in("officer", f"guess {n}", address="203.0.113.40")
            outcomes.append("in")
        except lockouts.LockedOut as exc:
            outcomes.append(f"429 {exc.retry_after}")
        except Exception:
            outcomes.append("401")
    assert outcomes == ["401"] * 4 + ["429 60"] * 3
    assert len(verified) == 5
    clock.advance(60)
    with pytest.raises(lockouts.LockedOut, match="120"):
        service.credentials.log_in("officer", "guess 8", address="203.0.113.40")
    clock.advance(120)
    assert service.credentials.log_in("officer", PASSWORD, address="203.0.113.40").id == "pw-OFFICER"
    secret = service.credentials.start_session(service.credentials.credential("pw-OFFICER"))
    assert service.credentials.session(secret).id == "pw-OFFICER"
    service.credentials.end_session(secret)
    with pytest.raises(Exception, match="ended"):
        service.credentials.session(secret)
    # Attempts older than the window are swept at the next failure.
    clock.advance(16 * 60)
    with pytest.raises(Exception, match="wrong"):
        service.credentials.log_in("officer", "late guess", address="203.0.113.40")
    with store.read() as conn:
        assert conn.execute(text("SELECT count(*) FROM login_attempts")).scalar() == 1


def test_the_refusals_of_log_in_are_in_the_visitors_language(site: Site) -> None:
    """Both refusals were English on the Chinese page: their words were not extracted into the
    catalogues (`t("…")` calls), so a translator never saw them."""
    site.client.get("/lang/zh_Hans")
    wrong = site.attempt("carol", "not it")
    assert wrong.status_code == 401
    assert "登录名、密码或令牌有误" in wrong.text
    answers = [site.attempt("carol", f"guess {n}") for n in range(4)]
    assert answers[-1].status_code == 429
    assert "登录失败次数过多" in answers[-1].text
    assert "Too many" not in answers[-1].text
    site.client.get("/lang/en")
