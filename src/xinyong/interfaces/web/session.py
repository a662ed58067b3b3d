"""Who is at the browser: a signed session cookie holding a credential's id, and a CSRF token.

The cookie (``xy_session``) is signed with itsdangerous (HMAC-SHA1 over the JSON, with a
timestamp), HttpOnly and SameSite=Strict, and holds only ``{"t": credential id or null, "c":
csrf token}``: never a secret. On every request the credential is looked up again (one primary-key
read), so revoking a token or a password ends its sessions at once. Forms carry the CSRF token in
a hidden field and every POST compares it with the cookie's (the double-submit pattern); together
with SameSite=Strict a form posted from another site is refused twice over.

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
from xinyong.security.access import PUBLIC, Principal, Unauthenticated
from xinyong.service import Service

COOKIE = "xy_session"
LANG_COOKIE = "xy_lang"
MAX_AGE = 8 * 3600


def secret_key() -> str:
    """XINYONG_WEB_SECRET, else a key made once for this process."""
    return settings.current().web_secret or _process_key()


@functools.cache
def _process_key() -> str:
    return secrets.token_urlsafe(32)


@dataclass(frozen=True)
class Session:
    principal: Principal
    credential: str | None
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
        csrf = str(data.get("c")) if data and data.get("c") else secrets.token_urlsafe(24)
        credential = data.get("t") if data else None
        principal = PUBLIC
        if isinstance(credential, str):
            try:
                info = self.service.credentials.credential(credential)
                principal = dataclasses.replace(info.principal(), channel="web")
            except XinyongError:
                credential, fresh = None, True
        else:
            credential = None
        session = Session(principal, credential, csrf, _language_of(request), fresh)
        request.state.web_session = session
        return session

    def write(self, response: Response, credential: str | None, csrf: str) -> None:
        value = self.serializer.dumps({"t": credential, "c": csrf})
        response.set_cookie(COOKIE, value, max_age=MAX_AGE, httponly=True, samesite="strict", path="/")

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
