"""Who is at the browser: a signed session cookie holding a server-side session's secret, and a
CSRF token.

The cookie (``xy_session``) is signed with itsdangerous (HMAC-SHA1 over the JSON, with a
timestamp), HttpOnly, SameSite=Strict, Secure when the request came over HTTPS (`client.is_https`),
and holds only ``{"s": session secret or null, "c": csrf token}``. The session itself is on the
server (`security.sessions`, through `service.credentials`): a log-in makes one, log-out deletes
it, so a copy of the cookie taken before log-out opens nothing afterwards. On every request the
session and its credential are looked up again (two primary-key reads in one transaction), so
log-out, revoking a token or a password, or setting a new password ends the session at once.
Forms carry the CSRF token in a hidden field and every POST compares it with the cookie's (the
double-submit pattern); together with SameSite=Strict a form posted from another site is refused
twice over. A log-in and a log-out each start a fresh CSRF token.

The signing key is ``XINYONG_WEB_SECRET``; without it one is made when the server starts and handed
to all its workers in their environment (``interfaces.hosting``), so sessions do not outlive a
restart — acceptable for a demo, and the setting is there for a real deployment. An application
built in-process without the setting (tests) signs with a key made for the process's lifetime.
Neither is ever written to the database or to a file.
"""

from __future__ import annotations

import dataclasses
import functools
import hmac
import secrets
from dataclasses import dataclass
from typing import Any

from itsdangerous import BadSignature, URLSafeTimedSerializer
from starlette.requests import Request
from starlette.responses import Response

from xinyong import settings
from xinyong.errors import XinyongError
from xinyong.i18n import LANGUAGES, language
from xinyong.interfaces.web.client import is_https
from xinyong.security.access import PUBLIC, Principal, Unauthenticated
from xinyong.service import Service
from xinyong.service.credentials import SESSION_LIFETIME

COOKIE = "xy_session"
LANG_COOKIE = "xy_lang"
MAX_AGE = int(SESSION_LIFETIME.total_seconds())


def secret_key() -> str:
    """XINYONG_WEB_SECRET, else a key made once for this process."""
    return settings.current().web_secret or _process_key()


@functools.cache
def _process_key() -> str:
    return secrets.token_urlsafe(32)


def new_csrf() -> str:
    return secrets.token_urlsafe(24)


def set_cookie(request: Request, response: Response, name: str, value: str, max_age: int) -> None:
    """Every cookie of the site: HttpOnly, SameSite=Strict, Secure when the request came over HTTPS."""
    response.set_cookie(
        name, value, max_age=max_age, httponly=True, samesite="strict", secure=is_https(request), path="/"
    )


@dataclass(frozen=True)
class Session:
    principal: Principal
    credential: str | None  # the credential's id, when logged in
    secret: str | None  # the server-side session's secret, when logged in
    csrf: str
    lang: str
    fresh: bool  # the cookie must be (re)written

    @property
    def role(self) -> str:
        return self.principal.role.value


class Sessions:
    def __init__(self, service: Service, key: str | None = None) -> None:
        self.service = service
        self.serializer = URLSafeTimedSerializer(key or secret_key(), salt="xinyong-web-session")

    def _load(self, request: Request) -> dict[str, Any] | None:
        raw = request.cookies.get(COOKIE)
        if not raw:
            return None
        try:
            data = self.serializer.loads(raw, max_age=MAX_AGE)
        except BadSignature:
            return None
        return data if isinstance(data, dict) else None

    def of(self, request: Request) -> Session:
        """The request's session; cached on the request so one request looks it up once."""
        cached: Session | None = getattr(request.state, "web_session", None)
        if cached is not None:
            return cached
        data = self._load(request)
        fresh = data is None
        csrf = str(data.get("c")) if data and data.get("c") else new_csrf()
        secret = data.get("s") if data else None
        principal, credential = PUBLIC, None
        if isinstance(secret, str):
            try:
                info = self.service.credentials.session(secret)
                principal, credential = dataclasses.replace(info.principal(), channel="web"), info.id
            except XinyongError:
                secret, fresh = None, True  # logged out, expired or revoked: the public again
        else:
            secret = None
        session = Session(principal, credential, secret, csrf, _language_of(request), fresh)
        request.state.web_session = session
        return session

    def write(self, request: Request, response: Response, secret: str | None, csrf: str) -> None:
        """Set the session cookie: the session's secret (None for the public) and the CSRF token."""
        set_cookie(request, response, COOKIE, self.serializer.dumps({"s": secret, "c": csrf}), MAX_AGE)

    def check_csrf(self, request: Request, given: str | None) -> None:
        session = self.of(request)
        if session.fresh or not given or not hmac.compare_digest(given, session.csrf):
            raise Unauthenticated("the form has expired or did not come from this site; reload the page and try again")


def _language_of(request: Request) -> str:
    for value in (request.query_params.get("lang"), request.cookies.get(LANG_COOKIE)):
        if value:
            try:
                return language(value)
            except XinyongError:
                continue
    header = request.headers.get("accept-language", "")
    for part in header.split(","):
        tag = part.split(";")[0].strip()
        if tag.lower().startswith("en"):
            return "en"
        if tag.lower().startswith("zh"):
            return "zh_Hans"
    return language(None) if language(None) in LANGUAGES else LANGUAGES[0]
