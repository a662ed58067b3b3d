"""The public portal: look-up by name, code or legal representative; organisations' profiles;
every scheme in full; public lists; log-in and log-out."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Form, Path, Request
from starlette.responses import HTMLResponse, JSONResponse, Response

from xinyong.errors import NotFound
from xinyong.i18n import Text
from xinyong.interfaces.web.client import client_address
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
from xinyong.interfaces.web.session import LANG_COOKIE, new_csrf, set_cookie
from xinyong.presentation import wording
from xinyong.security.access import Action, Role, Unauthenticated
from xinyong.service.credentials import LockedOut

router = APIRouter(route_class=WebRoute, include_in_schema=False)


@router.get("/lang/{lang}")
def switch_language(request: Request, lang: str, next: str | None = None) -> Response:
    from xinyong.i18n import language

    chosen = language(lang)
    response = redirect(_safe_next(next, "/"))
    set_cookie(request, response, LANG_COOKIE, chosen, 365 * 86400)
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
def profile(request: Request, subject_id: Annotated[str, Path(max_length=32)]) -> Response:
    principal = session(request).principal
    report = service(request).questions.report(principal, subject_id, action=Action.SUBJECTS_READ)
    return render(request, "profile.html", report=report, titles=scheme_titles(session(request).lang, report))


@router.get("/schemes", response_class=HTMLResponse)
def schemes(request: Request) -> Response:
    versions = service(request).schemes.versions(session(request).principal)
    return render(request, "schemes.html", schemes=latest_versions(versions), versions=versions)


@router.get("/schemes/{scheme_id}", response_class=HTMLResponse)
def scheme(request: Request, scheme_id: Annotated[str, Path(max_length=64)], version: str | None = None) -> Response:
    versions = [v for v in service(request).schemes.versions(session(request).principal) if v.id == scheme_id]
    if not versions:
        raise NotFound(f"scheme {scheme_id} is not published")
    chosen = next((v for v in versions if v.version == version), None) if version else latest_versions(versions)[0]
    if chosen is None:
        raise NotFound(f"scheme {scheme_id} has no version {version}")
    public_lists = {x.id for x in chosen.scheme.lists if chosen.scheme.list_is_public(x.id)}
    t = Text(session(request).lang)
    return render(
        request,
        "scheme.html",
        v=chosen,
        s=chosen.scheme,
        versions=versions,
        public_lists=public_lists,
        rule_words=lambda found: wording.rule(t, found, chosen.scheme),
        data_class_help={k: t(v) for k, v in wording.DATA_CLASS_HELP.items()},
    )


@router.get("/lists/{scheme_id}/{list_id}", response_class=HTMLResponse)
def list_page(
    request: Request, scheme_id: Annotated[str, Path(max_length=64)], list_id: Annotated[str, Path(max_length=64)]
) -> Response:
    found = service(request).questions.list_members(session(request).principal, scheme_id, list_id)
    return render(request, "list.html", found=found)


@router.get("/audit", response_class=HTMLResponse)
def audit_seals(request: Request) -> Response:
    published = service(request).audit.checkpoints(session(request).principal)
    newest_first = list(reversed(published["checkpoints"]))
    return render(request, "audit.html", checkpoints=newest_first, keys=published["keys"])


@router.get("/audit/checkpoints.json")
def audit_seals_download(request: Request) -> Response:
    """The same list as a file to keep: the very document the API answers, so that a copy saved
    from either verifies alike."""
    published = service(request).audit.checkpoints(session(request).principal)
    return JSONResponse(
        published, headers={"Content-Disposition": 'attachment; filename="xinyong-audit-checkpoints.json"'}
    )


@router.get("/verify/{report_id}", response_class=HTMLResponse)
def verify_report(request: Request, report_id: Annotated[str, Path(max_length=64)]) -> Response:
    """Whether a credit report still holds, for whoever scanned its code: valid, or superseded with
    the kinds of change to its records; nothing of its content (docs/verifying.md)."""
    try:
        found: dict[str, Any] | None = service(request).reports.status(session(request).principal, report_id)
    except NotFound:
        found = None  # said in the reader's language, with the same answer for a malformed number
    return render(request, "verify.html", 404 if found is None else 200, found=found, report_id=report_id)


@router.get("/statistics", response_class=HTMLResponse)
def statistics(request: Request) -> Response:
    """Public statistics: each enforcing agency's delisting delay."""
    found = service(request).feeds.delays(session(request).principal)
    return render(request, "statistics.html", found=found)


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
    """Log in by name and password, or by pasting a token. After 5 failures for a name or 20 from
    an address in 15 minutes it answers 429 at once, with Retry-After, checking no password
    (`service.credentials`, `security.lockouts`); a success starts a server-side session."""
    csrf(request, token)
    svc = service(request)
    t = Text(session(request).lang)
    address = client_address(request)
    try:
        if bearer.strip():
            info = svc.credentials.log_in_with_token(bearer.strip(), address=address)
        else:
            info = svc.credentials.log_in(login, password, address=address)
    except LockedOut as exc:
        wait = max(1, -(-exc.retry_after // 60))  # whole minutes, rounded up
        page = render(
            request,
            "login.html",
            status=429,
            next=_safe_next(next, ""),
            error=t("Too many failed log-ins: log-in is locked for now. Try again in %(minutes)s min.", minutes=wait),
            login=login,
        )
        page.headers["Retry-After"] = str(exc.retry_after)
        return page
    except Unauthenticated:
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
    sessions(request).write(request, response, svc.credentials.start_session(info), new_csrf())
    return response


@router.post("/logout")
def logout(request: Request, token: Csrf) -> Response:
    """Log out: the session ends on the server (a copy of the cookie opens nothing afterwards)."""
    csrf(request, token)
    current = session(request)
    if current.secret is not None:
        service(request).credentials.end_session(current.secret)
    response = redirect("/?done=logout")
    sessions(request).write(request, response, None, new_csrf())
    return response
