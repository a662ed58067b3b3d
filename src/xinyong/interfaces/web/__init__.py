"""The web pages: a public portal, a subject portal and a staff console.

`install(app, service)` adds the pages' routes (HTML, server-rendered with Jinja2, autoescaped:
`public`, `portal`, `staff`, over `common`) and the vendored static files to an application
(`interfaces.site` puts them beside the API's routes). The pages call
the same `Service` as the API, as the principal of the browser's session (see `session.py`), so
the same rules decide and the same audit entries are written. See docs/web.md.
"""

from __future__ import annotations

import gc
import threading
from pathlib import Path

from fastapi import FastAPI
from starlette.staticfiles import StaticFiles

from xinyong.interfaces.web import portal, public, staff
from xinyong.interfaces.web.session import Sessions
from xinyong.interfaces.web.staff import DASHBOARD_MONTHS, month_ends
from xinyong.rules.clock import local_day
from xinyong.security.access import Principal, Role
from xinyong.service import Service

STATIC = Path(__file__).parent / "static"
# Who computes the dashboard's counts ahead of the first visit (counts only: nothing is audited).
WARM_UP = Principal(Role.ADMIN, "web-warm-up", channel="web")


def install(app: FastAPI, service: Service, *, secret: str | None = None, warm_index: bool = True) -> None:
    app.state.web_sessions = Sessions(service, secret)
    for pages in (public, portal, staff):
        app.include_router(pages.router)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    if warm_index:
        # Load the look-up's pinyin tables and count the dashboard in the background, so that the
        # first visitors do not wait for them.
        def warm() -> None:
            try:
                service.subjects.prepare_search()
                if service.answers.enabled:  # the counts are kept only where answers are cached (SQLite)
                    today = local_day(service.clock.now())
                    service.aggregates.population_counts(WARM_UP, month_ends(today, DASHBOARD_MONTHS))
            except Exception:  # a store that is not ready yet is counted on the first visit instead
                return
            # What was loaded lives as long as the worker, like what the worker froze as it started
            # (`interfaces.site`): out of the collector's sight too. (When the look-up's index was
            # in memory, each full collection walked its 100,000 organisations' entries at 1 M
            # subjects: 0.5 s stalls of every check, p99 545 ms against p50 12 ms.)
            gc.collect()
            gc.freeze()

        threading.Thread(target=warm, name="xinyong-warm-up", daemon=True).start()
