"""The HTTP API: a FastAPI application under /v1 over the service layer, and how to serve it.

`create_app(store)` builds the application (tests call it in-process); `app_from_environment()` is
the factory the ASGI servers import in each worker (it reads XINYONG_DB); `serve(...)` runs it
under granian or uvicorn — the function `xinyong serve` and the demo call.
"""

from __future__ import annotations

import gc
import logging
import os

from fastapi import FastAPI
from fastapi.responses import Response
from starlette.types import Receive, Scope, Send

from xinyong import settings
from xinyong.errors import BadInput
from xinyong.interfaces.api import checks, nightly, problems, routes
from xinyong.interfaces.api.auditwriter import AuditWriter
from xinyong.interfaces.api.auth import TokenCache
from xinyong.rules.clock import Clock
from xinyong.service.core import Service
from xinyong.storage.store import Store

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


def _int_setting(setting: settings.Setting) -> int:
    text = setting.value() or "0"
    try:
        return int(text)
    except ValueError:
        raise BadInput(f"{setting.name}: {text!r} is not a whole number") from None


def create_app(
    store: Store,
    *,
    clock: Clock | None = None,
    max_body: int | None = None,
    max_upload: int | None = None,
    token_cache_seconds: float | None = None,
    cache_answers: bool | None = None,
) -> FastAPI:
    """The application for one store. The server's clock is the system clock (XINYONG_NOW is for
    the command line only); tests pass a fixed one."""
    if cache_answers is None:
        cache_answers = settings.CHECK_CACHE.value() != "0"
    service = Service(store, clock or Clock(), cache_answers=cache_answers)
    app = XinyongAPI(
        title="xinyong",
        version="1",
        summary="An accountable credit-information platform.",
        description=DESCRIPTION,
        docs_url="/docs",
        redoc_url=None,
    )
    app.state.service = service
    ttl = float(token_cache_seconds if token_cache_seconds is not None else _int_setting(settings.TOKEN_CACHE_SECONDS))
    app.state.tokens = TokenCache(service, ttl)
    app.state.audit_writer = AuditWriter(service)
    app.state.answers = checks.Answers(service, app.state.tokens, app.state.audit_writer)
    problems.install(app)
    app.add_middleware(
        problems.SizeLimit,
        max_body=max_body if max_body is not None else _int_setting(settings.MAX_BODY),
        max_upload=max_upload if max_upload is not None else _int_setting(settings.MAX_UPLOAD),
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
            found = service.ready()
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
    from xinyong.interfaces import web

    web.install(app, service)  # the web pages (/, /me, /staff): docs/web.md
    return app


def app_from_environment() -> FastAPI:
    """The ASGI factory each server worker calls: the store from XINYONG_DB."""
    url = settings.DB.value() or "sqlite:///xinyong.db"
    store = Store(url)
    store.require_initialised()
    store.checkpoint_in_background()  # a server answers after commits: keep checkpoints off them
    app = create_app(store)
    app.state.nightly = nightly.start(app.state.service)  # the who-looked index merged at night
    # What exists now (modules, schemes, the app: ~300k objects) lives as long as the worker.
    # Under load every young collection promotes the requests in flight to the oldest generation,
    # so a full collection came every few seconds and walked all of it: 75–85 ms of CPU each,
    # 100–250 ms of stall on the event loop, measured under the check benchmark. Frozen, those
    # objects are out of the collector's sight and full collections walk only what came later.
    gc.collect()
    gc.freeze()
    return app


def serve(
    db_url: str,
    *,
    host: str | None = None,
    port: int | None = None,
    workers: int | None = None,
    server: str | None = None,
) -> None:
    """Serve the API for a store until interrupted (the function `xinyong serve` and the demo call)."""
    Store(db_url).require_initialised()
    host = host or settings.HOST.value() or "127.0.0.1"
    port = port if port is not None else _int_setting(settings.PORT)
    workers = workers if workers is not None else _int_setting(settings.WORKERS)
    server = server or settings.SERVER.value() or "granian"
    nightly.parse_time(settings.AUDIT_COMPACT_AT.value())  # a bad setting stops here, not in each worker
    # Each worker process builds its own app (own connection pool, own token cache) from the URL.
    os.environ[settings.DB.name] = db_url
    # One signing key for the web sessions of every worker (web/session.py).
    from xinyong.interfaces.web.session import secret_key

    secret_key()
    target = "xinyong.interfaces.api:app_from_environment"
    if server == "granian":
        from granian.constants import Interfaces, Loops
        from granian.server import Server

        Server(
            target,
            address=host,
            port=port,
            interface=Interfaces.ASGI,
            workers=workers,
            loop=Loops.uvloop,
            factory=True,
        ).serve()
    elif server == "uvicorn":
        import uvicorn

        uvicorn.run(
            target,
            host=host,
            port=port,
            workers=workers,
            factory=True,
            loop="uvloop",
            http="httptools",
            access_log=False,
            log_level="warning",
        )
    else:
        raise BadInput(f"--server: {server!r} is not one of granian, uvicorn")
