"""The security headers every response carries: API, pages, static files, errors, the check's fast path.

`SecurityHeaders` is a pure ASGI middleware (no per-request task, no buffering: it appends header
tuples made once to the `http.response.start` message). `interfaces.site` puts it outside
everything the application serves through Starlette, the server-error handler included, so a 500
carries them too; the check endpoint's fast path (`api.checks.FastPath`), which answers before
Starlette sees the request, appends the same tuples (`HEADERS`) itself.

The policy (docs/web.md, "Hardened"):

- ``Content-Security-Policy``: everything from the site itself and nothing else — no inline script
  or style, no ``eval``, no plugin, no frame, no ``<base>``, forms posted to the site only. The pages
  keep their scripts and styles in files under ``/static`` (vendored, see its VENDORED.md) and
  their chart specifications in ``<script type="application/json">`` blocks, which are data, not
  script. The API documentation (/docs) is the one page with an inline script — the few lines
  FastAPI's ``get_swagger_ui_html`` writes to start swagger-ui — and its response sets its own
  policy, the same one with that script's SHA-256 added (`policy(script_hashes=…)`); a header the
  response already has is never replaced.
- ``X-Frame-Options: DENY`` (and ``frame-ancestors 'none'``): no page can be framed (click-jacking).
- ``X-Content-Type-Options: nosniff``: a response is only ever what its Content-Type says.
- ``Referrer-Policy: no-referrer``: a page's address (``/subjects/ID``) never leaves in a Referer.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Iterable

from starlette.types import ASGIApp, Message, Receive, Scope, Send

# Each directive that does not fall back to default-src is named: frame-ancestors, form-action and
# base-uri do not, and object-src is named as the usual belt and braces.
DIRECTIVES: dict[str, tuple[str, ...]] = {
    "default-src": ("'self'",),
    "script-src": ("'self'",),
    "style-src": ("'self'",),
    "img-src": ("'self'",),
    "connect-src": ("'self'",),
    "font-src": ("'self'",),
    "object-src": ("'none'",),
    "base-uri": ("'none'",),
    "frame-ancestors": ("'none'",),
    "form-action": ("'self'",),
}


def policy(*, script_hashes: Iterable[str] = (), images: Iterable[str] = ()) -> str:
    """The Content-Security-Policy: `DIRECTIVES`, with inline scripts allowed by their digest
    (``'sha256-…'`` values, see `script_hash`) and more image sources (``data:``) where one page
    needs them."""
    directives = {name: list(values) for name, values in DIRECTIVES.items()}
    directives["script-src"] += list(script_hashes)
    directives["img-src"] += list(images)
    return "; ".join(f"{name} {' '.join(values)}" for name, values in directives.items())


def script_hash(script: str) -> str:
    """The CSP source that allows exactly this inline script: ``'sha256-<base64 digest>'``."""
    digest = base64.b64encode(hashlib.sha256(script.encode()).digest()).decode()
    return f"'sha256-{digest}'"


CONTENT_SECURITY_POLICY = policy()
REFERRER_POLICY = "no-referrer"

# As ASGI wants them, made once: lower-case names, bytes.
HEADERS: tuple[tuple[bytes, bytes], ...] = (
    (b"content-security-policy", CONTENT_SECURITY_POLICY.encode()),
    (b"x-frame-options", b"DENY"),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", REFERRER_POLICY.encode()),
)
NAMES = frozenset(name for name, _ in HEADERS)


def with_security_headers(headers: Iterable[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]]:
    """The response's headers and, after them, each security header it does not have already."""
    given = list(headers)
    present = {name.lower() for name, _ in given}
    if present.isdisjoint(NAMES):
        given.extend(HEADERS)
    else:
        given.extend(header for header in HEADERS if header[0] not in present)
    return given


class SecurityHeaders:
    """Adds `HEADERS` to every HTTP response of the application it wraps."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def sending(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = with_security_headers(message.get("headers", ()))
            await send(message)

        await self.app(scope, receive, sending)
