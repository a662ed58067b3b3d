"""The site: the HTTP API and the web pages on one application, for one store.

The composition root of the interfaces that serve HTTP: it makes the service, has the API build
its application and the web pages install themselves on it. `create_app(store)` is what tests
call in-process; `app_from_environment()` is the factory each server worker imports (see
`interfaces.hosting`), reading the store and the rest from the settings.
"""

from __future__ import annotations

import gc

from fastapi import FastAPI
from starlette.types import ASGIApp

from xinyong import settings
from xinyong.interfaces import api, upkeep, web
from xinyong.interfaces.headers import SecurityHeaders
from xinyong.rules.clock import Clock
from xinyong.security.keys import KeyRing
from xinyong.service import Service
from xinyong.storage.store import Store


def create_app(
    store: Store,
    *,
    clock: Clock | None = None,
    max_body: int | None = None,
    max_upload: int | None = None,
    token_cache_seconds: float | None = None,
    cache_answers: bool | None = None,
    keys: KeyRing | None = None,
) -> FastAPI:
    """The application for one store. The server's clock is the system clock (XINYONG_NOW is for
    the command line only); tests pass a fixed one, and signing keys of their own (the server's
    are where XINYONG_KEYS says)."""
    if cache_answers is None:
        cache_answers = settings.current().check_cache
    service = Service(store, clock or Clock(), cache_answers=cache_answers, keys=keys)
    app = api.create_api(service, max_body=max_body, max_upload=max_upload, token_cache_seconds=token_cache_seconds)
    web.install(app, service)  # the web pages (/, /me, /staff): docs/web.md
    harden(app)
    return app


def harden(app: FastAPI) -> None:
    """Every response of the application carries the security headers (`interfaces.headers`).

    The middleware goes outside Starlette's whole stack, the server-error handler included, so
    that a 500 carries them too (`add_middleware` would put it inside that handler). The check
    endpoint's fast path answers before this stack and adds the same headers itself."""
    build = app.build_middleware_stack

    def hardened() -> ASGIApp:
        return SecurityHeaders(build())

    app.build_middleware_stack = hardened  # type: ignore[method-assign]
    app.middleware_stack = None


def app_from_environment() -> FastAPI:
    """The ASGI factory each server worker calls: the settings of the worker's environment, read
    and checked again (a bad value stops the worker before it serves), and the store they name.
    `xinyong serve` gave that environment the store, the session key and every other setting
    (`interfaces.hosting`)."""
    chosen = settings.use(settings.load())
    store = Store(chosen.db)
    store.require_initialised()
    store.checkpoint_in_background()  # a server answers after commits: keep checkpoints off them
    app = create_app(store)
    app.state.upkeep = upkeep.start(app.state.service)  # nightly compaction, hourly checkpoints
    # What exists now (modules, schemes, the app: ~300k objects) lives as long as the worker.
    # Under load every young collection promotes the requests in flight to the oldest generation,
    # so a full collection came every few seconds and walked all of it: 75–85 ms of CPU each,
    # 100–250 ms of stall on the event loop, measured under the check benchmark. Frozen, those
    # objects are out of the collector's sight and full collections walk only what came later.
    gc.collect()
    gc.freeze()
    return app
