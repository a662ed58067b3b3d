"""The HTTP API: a FastAPI application under /v1 over the service layer.

`create_api(service)` builds the application with the API's routes, its problem+json errors and
the check endpoint's fast path. `interfaces.site` puts the web pages on the same application and
`interfaces.hosting` serves it; this package knows neither.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse, Response
from fastapi.routing import APIRoute
from starlette.staticfiles import StaticFiles
from starlette.types import Receive, Scope, Send

from xinyong import settings
from xinyong.interfaces import headers
from xinyong.interfaces.api import checks, feeds, lab, problems, routes
from xinyong.interfaces.api.auditwriter import AuditWriter
from xinyong.interfaces.api.auth import TokenCache
from xinyong.service import Service

# swagger-ui, vendored and pinned (static/VENDORED.md), served under DOCS_STATIC.
STATIC = Path(__file__).parent / "static"
DOCS_STATIC = "/docs/static"
UPLOAD_PATHS = ("/v1/imports", "/v1/schemes")
DESCRIPTION = """\
xinyong's HTTP API. Every caller sees exactly what its role allows; everything else is denied.
Send `Authorization: Bearer <token>` (tokens come from `xinyong tokens create`); without a token
you are the public: published schemes, organisations' public records, public lists with persons'
ids masked. Every write, every check and every read of non-public personal data is recorded in a
hash-chained audit log. Errors are RFC 9457 problem+json with a pointer to the offending field.
"""


class XinyongAPI(FastAPI):
    """FastAPI, with the check endpoint's fast path in front (see `api.checks.FastPath`)."""

    fast_path: checks.FastPath | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.fast_path is not None and (found := self.fast_path.match(scope)) is not None:
            await self.fast_path(found, scope, receive, send)
            return
        await super().__call__(scope, receive, send)


def create_api(
    service: Service,
    *,
    max_body: int | None = None,
    max_upload: int | None = None,
    token_cache_seconds: float | None = None,
) -> XinyongAPI:
    """The API's application over one service (settings for what is not given)."""
    app = XinyongAPI(
        title="xinyong",
        version="1",
        summary="An accountable credit-information platform.",
        description=DESCRIPTION,
        docs_url=None,  # /docs is `docs_page`: swagger-ui from this site, not a CDN
        redoc_url=None,
        generate_unique_id_function=operation_id,
    )
    app.state.service = service
    chosen = settings.current()
    ttl = token_cache_seconds if token_cache_seconds is not None else chosen.token_cache_seconds
    app.state.tokens = TokenCache(service, ttl)
    app.state.audit_writer = AuditWriter(service)
    app.state.answers = checks.Answers(service, app.state.tokens, app.state.audit_writer)
    problems.install(app)
    app.add_middleware(
        problems.SizeLimit,
        max_body=max_body if max_body is not None else chosen.max_body,
        max_upload=max_upload if max_upload is not None else chosen.max_upload,
        upload_paths=UPLOAD_PATHS,
    )

    from xinyong.interfaces.api import models

    @app.get("/healthz", tags=["health"], response_model=models.Health)
    def healthz() -> dict[str, str]:
        """The process is up."""
        return {"status": "ok"}

    @app.get("/.well-known/xinyong-keys.json", tags=["state"], response_model=models.KeysOut)
    def published_keys() -> dict[str, Any]:
        """The platform's public signing keys, where verifiers look for them (docs/verifying.md)."""
        return service.reports.published()

    @app.get(
        "/readyz",
        tags=["health"],
        response_model=models.Ready,
        responses={503: {"model": models.Ready, "description": "Not ready"}},
    )
    def readyz() -> Response:
        """The store answers and is migrated to the newest revision."""
        import orjson

        try:
            found = service.operations.ready()
        except Exception:
            logging.getLogger("xinyong.interfaces.api").exception("readiness check failed")
            found = {"migrated": False, "revision": [], "expected": []}
            body = {"status": "unavailable", **{k: found[k] for k in ("migrated", "revision", "expected")}}
            return Response(orjson.dumps(body), status_code=503, media_type="application/json")
        ready = bool(found["migrated"])
        body = {
            "status": "ready" if ready else "not migrated",
            **{k: found[k] for k in ("migrated", "revision", "expected")},
        }
        return Response(orjson.dumps(body), status_code=200 if ready else 503, media_type="application/json")

    app.include_router(checks.router)
    app.include_router(routes.router)
    app.include_router(feeds.router)
    app.include_router(lab.router)
    install_docs(app)
    app.fast_path = checks.FastPath(app.state.answers)
    return app


def operation_id(route: APIRoute) -> str:
    """An operation's id in /openapi.json is its function's name (`check`, `check_batch`,
    `file_objection`): what a generated client calls it. FastAPI's default appends the path and
    method (`check_v1_checks__subject___scheme___measure__get`), which reads badly and changes
    whenever a path does; a test holds the names unique and stable."""
    return route.name


def docs_page(openapi_url: str = "/openapi.json") -> HTMLResponse:
    """/docs: FastAPI's swagger-ui page over the vendored files, with the Content-Security-Policy
    that page needs — the site's, plus the digest of the one inline script the page starts
    swagger-ui with, and `data:` images (swagger-ui.css draws its icons so)."""
    page = get_swagger_ui_html(
        openapi_url=openapi_url,
        title="xinyong API",
        swagger_js_url=f"{DOCS_STATIC}/swagger-ui-bundle.js",
        swagger_css_url=f"{DOCS_STATIC}/swagger-ui.css",
        swagger_favicon_url=f"{DOCS_STATIC}/favicon-32x32.png",
        oauth2_redirect_url=None,  # bearer tokens only: no OAuth2 flow to come back from
        swagger_ui_parameters={"validatorUrl": None},  # the online validator's badge is fetched from elsewhere
    )
    html = bytes(page.body).decode()
    inline = re.findall(r"<script>(.*?)</script>", html, flags=re.DOTALL)
    policy = headers.policy(script_hashes=[headers.script_hash(script) for script in inline], images=["data:"])
    return HTMLResponse(html, headers={"Content-Security-Policy": policy})


def install_docs(app: FastAPI) -> None:
    """The API's documentation at /docs, over swagger-ui's files served from this site."""
    page = docs_page(app.openapi_url or "/openapi.json")
    body, docs_headers = page.body, {"Content-Security-Policy": page.headers["content-security-policy"]}

    @app.get("/docs", include_in_schema=False)
    def docs() -> HTMLResponse:
        return HTMLResponse(body, headers=docs_headers)

    app.mount(DOCS_STATIC, StaticFiles(directory=STATIC), name="docs-static")
