"""Who is calling: the bearer token of a request, looked up once and trusted for a few seconds.

A token is checked against the store (hash, expiry, revocation) the first time a worker sees it,
then cached in-process for `XINYONG_TOKEN_CACHE_SECONDS` (never past the token's own expiry).
The trade-off is stated in docs/api.md: a revoked token may still work for those few seconds in a
worker that had just seen it, in exchange for no store round trip on the check endpoint's hot path.
The cache is keyed by the header as sent, so a hit costs one dictionary lookup: the tokens it holds
are those this process has just received in requests and checked against their stored hashes.

One rule for the header, on every route and the check's fast path: none means the public; one
that is empty (or blank) is refused (401), never taken for the public; two are a 400
(`problems.malformed`), whatever they say.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from starlette.requests import HTTPConnection

from xinyong.interfaces.api import problems
from xinyong.rules.clock import Clock
from xinyong.security.access import PUBLIC, Principal, Unauthenticated
from xinyong.service import Service

MAX_CACHED = 10_000


class TokenCache:
    def __init__(self, service: Service, ttl: float, monotonic: Callable[[], float] = time.monotonic) -> None:
        self.service, self.ttl, self.monotonic = service, ttl, monotonic
        self._cache: dict[str, tuple[Principal, float]] = {}

    def principal(self, authorization: str | None) -> Principal:
        """The caller: the public without a header (None), the token's principal with a valid one,
        else 401 (an empty header too)."""
        if authorization is None:
            return PUBLIC
        now = self.monotonic()
        hit = self._cache.get(authorization)
        if hit is not None and hit[1] > now:
            return hit[0]
        scheme, _, bearer = authorization.strip().partition(" ")
        if scheme.lower() != "bearer" or not bearer.strip():
            raise Unauthenticated("use an Authorization: Bearer <token> header, or none as the public")
        bearer = bearer.strip()
        clock: Clock = self.service.clock
        info = self.service.credentials.authenticate(bearer)
        until = now + self.ttl
        if info.expires_at is not None:
            until = min(until, now + (info.expires_at - clock.now()).total_seconds())
        if len(self._cache) >= MAX_CACHED:
            self._cache.clear()
        principal = info.principal()
        if self.ttl > 0:
            self._cache[authorization] = (principal, until)
        return principal

    def forget(self) -> None:
        self._cache.clear()


def authorization(conn: HTTPConnection) -> str | None:
    """The request's one Authorization header, None without one; two are refused (400)."""
    found = conn.headers.getlist("authorization")
    if len(found) > 1:
        raise problems.Malformed(problems.TWO_AUTHORIZATIONS)
    return found[0] if found else None
