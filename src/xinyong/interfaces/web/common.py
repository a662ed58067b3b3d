"""What every page does: render a template in the session's language, turn library errors into
HTML pages, know who is asking, and guard forms against cross-site requests.

Nothing here decides who may see what: the service does, exactly as for the API (same rules, same
audit entries; the actor is ``web:<name>``). A library error becomes an HTML page with the right
status (an anonymous visitor asked to log in is sent to the log-in page instead). Every page reads
without JavaScript; htmx only makes the search answer as you type, and vega-embed draws the charts
whose numbers are also in a table.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable, Coroutine
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote

import jinja2
from fastapi import Form, Request
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from starlette.responses import HTMLResponse, RedirectResponse, Response

from xinyong.errors import BadInput, XinyongError
from xinyong.i18n import N_, Text, translations
from xinyong.interfaces.web.session import Session, Sessions
from xinyong.presentation import looked, rendering
from xinyong.security.access import Forbidden, Principal, Role, Unauthenticated
from xinyong.service import Service

TEMPLATES = Path(__file__).parent / "templates"
log = logging.getLogger("xinyong.interfaces.web")


STAFF_ROLES = frozenset({Role.ADMIN, Role.OFFICER})


DONE = {
    "objection": N_("Your objection was filed. The record shows as disputed until it is decided."),
    "repair": N_("Your repair application was filed."),
    "consent": N_("Your consent setting was saved."),
    "decided": N_("The decision was recorded and the subject notified."),
    "logout": N_("You have logged out."),
}


ERROR_TITLES = {
    400: N_("The request could not be carried out"),
    401: N_("Please log in"),
    403: N_("Not allowed"),
    404: N_("Not found"),
    409: N_("Refused by a rule"),
    503: N_("Busy: please try again in a moment"),
}


# What an error means, in the reader's language, when its own message (which names the value and
# where it was) exists only in English: shown above it, so no reader is left with a foreign line.
ERROR_MEANINGS = {
    400: N_("Something in what was sent is not right, and nothing was changed. The details follow."),
    403: N_("Your role may not do this here, and nothing was changed."),
    404: N_("What you asked for does not exist, or is not public."),
    409: N_("A rule of the platform refused this, and nothing was changed."),
}


OUTCOME_LABELS = {
    "upheld": N_("upheld"),
    "corrected": N_("corrected"),
    "revoked": N_("revoked"),
    "approved": N_("approved"),
    "refused": N_("refused"),
}


# What an officer chooses on a decision form: the action, in the imperative (the outcome labels
# above are what the decision then is: "撤销" to choose, "已撤销" once done).
DECISION_LABELS = {
    "upheld": N_("Uphold: the record stands"),
    "corrected": N_("Correct: replace the behaviour, date or amount"),
    "revoked": N_("Revoke: the record never had any effect"),
    "approved": N_("Approve: end the record's effect"),
    "refused": N_("Refuse: the record keeps its effect"),
}


SEVERITIES = {"minor": N_("minor"), "general": N_("general"), "serious": N_("serious")}


MEASURE_KINDS = {"punishment": N_("punishment"), "reward": N_("reward")}


CONSENT_LABELS = {"required": N_("required"), "not_required": N_("not required")}


@lru_cache(maxsize=4)
def environment(lang: str) -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES),
        autoescape=True,
        extensions=["jinja2.ext.i18n"],
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.install_gettext_translations(translations(lang), newstyle=True)  # type: ignore[attr-defined]
    return env


class WebError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status, self.message = status, message


def status_of(exc: XinyongError) -> int:
    """The error's HTTP status (`XinyongError.http_status`), but a form's bad input is a 400 page:
    a person filled it in, not a client that reads 422."""
    return 400 if exc.http_status == BadInput.http_status else exc.http_status


class WebRoute(APIRoute):
    """A route whose library errors (and malformed forms) become HTML pages, not problem+json."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        original = super().get_route_handler()

        async def handler(request: Request) -> Response:
            try:
                return await original(request)
            except XinyongError as exc:
                return error_page(request, status_of(exc), exc.message, exc)
            except RequestValidationError as exc:
                fields = ", ".join(str(e.get("loc", ["?"])[-1]) for e in exc.errors())
                return error_page(request, 400, f"missing or invalid: {fields}", None)
            except WebError as exc:
                return error_page(request, exc.status, exc.message, None)

        return handler


def service(request: Request) -> Service:
    svc: Service = request.app.state.service
    return svc


def sessions(request: Request) -> Sessions:
    found: Sessions = request.app.state.web_sessions
    return found


def session(request: Request) -> Session:
    return sessions(request).of(request)


def render(request: Request, template: str, status: int = 200, **context: Any) -> HTMLResponse:
    current = session(request)
    t = Text(current.lang)
    here = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    other = "en" if current.lang == "zh_Hans" else "zh_Hans"
    done = request.query_params.get("done")
    body = (
        environment(current.lang)
        .get_template(template)
        .render(
            request=request,
            session=current,
            principal=current.principal,
            lang=current.lang,
            html_lang="zh-Hans" if current.lang == "zh_Hans" else "en",
            other_lang=other,
            switch_url=f"/lang/{other}?next={quote(here, safe='')}",
            here=here,
            t=t,
            done=t(DONE[done]) if done in DONE else None,
            role_label=t(looked.ROLES[current.principal.role.value]),
            is_staff=current.principal.role in STAFF_ROLES,
            is_subject=current.principal.role is Role.SUBJECT,
            outcomes={k: t(v) for k, v in OUTCOME_LABELS.items()},
            decisions={k: t(v) for k, v in DECISION_LABELS.items()},
            kinds={k: t(v) for k, v in rendering.KINDS.items()},
            list_kinds={k: t(v) for k, v in rendering.LIST_KINDS.items()},
            statuses={k: t(v) for k, v in rendering.STATUSES.items()},
            data_classes={k: t(v) for k, v in rendering.DATA_CLASSES.items()},
            severities={k: t(v) for k, v in SEVERITIES.items()},
            measure_kinds={k: t(v) for k, v in MEASURE_KINDS.items()},
            consent_labels={k: t(v) for k, v in CONSENT_LABELS.items()},
            why_no_state=lambda reason: rendering.why_no_state(t, reason),
            **context,
        )
    )
    response = HTMLResponse(body, status_code=status)
    if current.fresh:
        sessions(request).write(request, response, current.secret, current.csrf)
    return response


def error_page(request: Request, status: int, message: str, exc: XinyongError | None) -> Response:
    current = session(request)
    if status == 401 and request.method == "GET" and current.credential is None:
        return RedirectResponse(f"/login?next={quote(request.url.path, safe='')}", status_code=303)
    t = Text(current.lang)
    if status == 503:  # the platform's state, not the visitor's doing: its detail is for the log
        log.error("unavailable on %s: %s", request.url.path, message)
        message, exc = t("Nothing was changed. Please try again in a moment."), None
    # A single problem is the message itself (a value refused by its rule): shown once.
    problems = [p for p in exc.problems if str(p) != message] if exc is not None else []
    return render(
        request,
        "error.html",
        status=status,
        title=t(ERROR_TITLES.get(status, ERROR_TITLES[400])),
        message=t(message),  # a message the catalogue knows (a fixed one) is shown in the reader's language
        explained=t(ERROR_MEANINGS[status])
        if status in ERROR_MEANINGS and t(message) == message != "" and t.lang != "en"
        else None,
        problems=problems,
    )


def redirect(url: str) -> RedirectResponse:
    return RedirectResponse(url, status_code=303)


def _safe_next(value: str | None, default: str) -> str:
    if value and value.startswith("/") and not value.startswith("//") and "\\" not in value:
        return value
    return default


def require(request: Request, *roles: Role) -> Principal:
    principal = session(request).principal
    if principal.role is Role.PUBLIC:
        raise Unauthenticated("log in to see this page")
    if principal.role not in roles:
        raise Forbidden(
            f"this page is for {', '.join(r.value for r in roles)}; you are logged in as {principal.role.value}"
        )
    return principal


def csrf(request: Request, token: str | None) -> None:
    sessions(request).check_csrf(request, token)


Csrf = Annotated[str | None, Form(alias="csrf")]


def latest_versions(versions: list[Any]) -> list[Any]:
    latest: dict[str, Any] = {}
    for v in versions:
        current = latest.get(v.id)
        if current is None or (v.scheme.effective_from or dt.date.min, v.loaded_at) >= (
            current.scheme.effective_from or dt.date.min,
            current.loaded_at,
        ):
            latest[v.id] = v
    return sorted(latest.values(), key=lambda v: v.id)


def scheme_titles(lang: str, report: dict[str, Any]) -> dict[str, str]:
    t = Text(lang)
    titles: dict[str, str] = {}
    for record in report.get("records", []):
        titles.setdefault(record["behaviour"], t.title(record))
    for item in report.get("schemes", []):
        for factor in item.get("key_factors", []):
            titles.setdefault(factor["behaviour"], t.title(factor))
    return titles
