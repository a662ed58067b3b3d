"""The HTTP API: a FastAPI application under /v1 over the service layer.

`create_api(service)` builds the application with the API's routes, its problem+json errors and
the check endpoint's fast path. `interfaces.site` puts the web pages on the same application and
`interfaces.hosting` serves it; this package knows neither.
"""

from __future__ import annotations

import logging

from fastapi import FastAPI
from fastapi.responses import Response
from starlette.types import Receive, Scope, Send

from xinyong import settings
from xinyong.interfaces.api import checks, problems, routes
from xinyong.interfaces.api.auditwriter import AuditWriter
from xinyong.interfaces.api.auth import TokenCache
from xinyong.service import Service

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
        docs_url="/docs",
        redoc_url=None,
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
    app.fast_path = checks.FastPath(app.state.answers)
    return app
