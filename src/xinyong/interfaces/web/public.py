"""The public portal: look-up by name, code or legal representative; organisations' profiles;
every scheme in full; public lists; log-in and log-out."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Form, Request
from starlette.responses import HTMLResponse, Response

from xinyong.errors import NotFound
from xinyong.i18n import Text
from xinyong.interfaces.web.common import (
    STAFF_ROLES,
    Csrf,
    WebRoute,
    _safe_next,
    csrf,
    latest_versions,
    redirect,
    render,
    scheme_titles,
    service,
    session,
    sessions,
)
from xinyong.interfaces.web.session import LANG_COOKIE
from xinyong.security.access import Action, Role, Unauthenticated

router = APIRouter(route_class=WebRoute, include_in_schema=False)


@router.get("/lang/{lang}")
def switch_language(lang: str, next: str | None = None) -> Response:
    from xinyong.i18n import language

    chosen = language(lang)
    response = redirect(_safe_next(next, "/"))
    response.set_cookie(LANG_COOKIE, chosen, max_age=365 * 86400, samesite="lax", path="/")
    return response


@router.get("/", response_class=HTMLResponse)
def home(request: Request) -> Response:
    versions = service(request).schemes.versions(session(request).principal)
    latest = latest_versions(versions)
    return render(request, "home.html", schemes=latest)


@router.get("/search", response_class=HTMLResponse)
def search(request: Request, q: str = "") -> Response:
    results: list[dict[str, Any]] = []
    if q.strip():
        results = service(request).subjects.search(session(request).principal, q, limit=50)
    return render(request, "search.html", q=q, results=results)


@router.get("/subjects/{subject_id}", response_class=HTMLResponse)
def profile(request: Request, subject_id: str) -> Response:
    principal = session(request).principal
    report = service(request).questions.report(principal, subject_id, action=Action.SUBJECTS_READ)
    return render(request, "profile.html", report=report, titles=scheme_titles(session(request).lang, report))


@router.get("/schemes", response_class=HTMLResponse)
def schemes(request: Request) -> Response:
    versions = service(request).schemes.versions(session(request).principal)
    return render(request, "schemes.html", schemes=latest_versions(versions), versions=versions)


@router.get("/schemes/{scheme_id}", response_class=HTMLResponse)
def scheme(request: Request, scheme_id: str, version: str | None = None) -> Response:
    versions = [v for v in service(request).schemes.versions(session(request).principal) if v.id == scheme_id]
    if not versions:
        raise NotFound(f"scheme {scheme_id} is not published")
    chosen = next((v for v in versions if v.version == version), None) if version else latest_versions(versions)[0]
    if chosen is None:
        raise NotFound(f"scheme {scheme_id} has no version {version}")
    public_lists = {x.id for x in chosen.scheme.lists if chosen.scheme.list_is_public(x.id)}
    return render(request, "scheme.html", v=chosen, s=chosen.scheme, versions=versions, public_lists=public_lists)


@router.get("/lists/{scheme_id}/{list_id}", response_class=HTMLResponse)
def list_page(request: Request, scheme_id: str, list_id: str) -> Response:
    found = service(request).questions.list_members(session(request).principal, scheme_id, list_id)
    return render(request, "list.html", found=found)


@router.get("/login", response_class=HTMLResponse)
def login_form(request: Request, next: str | None = None) -> Response:
    return render(request, "login.html", next=_safe_next(next, ""), error=None, login="")


@router.post("/login", response_class=HTMLResponse)
def login(
    request: Request,
    token: Csrf,
    login: Annotated[str, Form()] = "",
    password: Annotated[str, Form()] = "",
    bearer: Annotated[str, Form()] = "",
    next: Annotated[str, Form()] = "",
) -> Response:
    csrf(request, token)
    svc = service(request)
    try:
        info = svc.credentials.authenticate(bearer.strip()) if bearer.strip() else None
        if info is None:
            info = svc.credentials.log_in(login, password)
    except Unauthenticated:
        t = Text(session(request).lang)
        return render(
            request,
            "login.html",
            status=401,
            next=_safe_next(next, ""),
            error=t("The log-in name, password or token is wrong, expired or revoked."),
            login=login,
        )
    default = "/staff" if info.role in STAFF_ROLES else "/me" if info.role is Role.SUBJECT else "/"
    response = redirect(_safe_next(next, default))
    sessions(request).write(response, info.id, session(request).csrf)
    return response


@router.post("/logout")
def logout(request: Request, token: Csrf) -> Response:
    csrf(request, token)
    response = redirect("/?done=logout")
    sessions(request).write(response, None, session(request).csrf)
    return response
