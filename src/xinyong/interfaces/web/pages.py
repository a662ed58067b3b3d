"""The web pages' routes: parse the form or query, call the service as the session's principal, render.

Nothing here decides who may see what: the service does, exactly as for the API (same rules, same
audit entries; the actor is ``web:<name>``). A library error becomes an HTML page with the right
status (an anonymous visitor asked to log in is sent to the log-in page instead). Every page reads
without JavaScript; htmx only makes the search answer as you type, and vega-embed draws the charts
whose numbers are also in a table.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Coroutine
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote, urlencode

import jinja2
from fastapi import APIRouter, File, Form, Request, UploadFile
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from starlette.responses import HTMLResponse, RedirectResponse, Response

from xinyong.errors import BadInput, NotFound, Refused, XinyongError
from xinyong.i18n import N_, Text, translations
from xinyong.interfaces.web import charts
from xinyong.interfaces.web.session import LANG_COOKIE, Session, Sessions
from xinyong.presentation import rendering
from xinyong.rules.clock import local_day
from xinyong.rules.workdays import working_days_between
from xinyong.security.access import Action, Forbidden, Principal, Role, Unauthenticated
from xinyong.service.core import Service

TEMPLATES = Path(__file__).parent / "templates"
STAFF_ROLES = frozenset({Role.ADMIN, Role.OFFICER})
# Month-ends back from today in the list-size chart: each is one pass over the population.
DASHBOARD_MONTHS = 3

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
}
OUTCOME_LABELS = {
    "upheld": N_("upheld"),
    "corrected": N_("corrected"),
    "revoked": N_("revoked"),
    "approved": N_("approved"),
    "refused": N_("refused"),
}
ROLE_LABELS = {
    "admin": N_("administrator"),
    "officer": N_("officer"),
    "subject": N_("data subject"),
    "source": N_("source agency"),
    "enforcer": N_("enforcer"),
    "analyst": N_("analyst"),
    "public": N_("the public"),
}
SEVERITIES = {"minor": N_("minor"), "general": N_("general"), "serious": N_("serious")}
MEASURE_KINDS = {"punishment": N_("punishment"), "reward": N_("reward")}
CONSENT_LABELS = {"required": N_("required"), "not_required": N_("not required")}
NO_CONSENT = N_("No score under this scheme: it scores persons only with their consent, and none is on record.")
NOT_APPLICABLE = N_("No score under this scheme: it does not apply to this kind of subject.")


def why_no_state(t: Text, reason: str | None) -> str:
    """The engine's reason for having no state, in the reader's language."""
    text = reason or ""
    return t(NO_CONSENT) if "consent" in text else t(NOT_APPLICABLE)


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
    if isinstance(exc, Unauthenticated):
        return 401
    if isinstance(exc, Forbidden):
        return 403
    if isinstance(exc, NotFound):
        return 404
    if isinstance(exc, Refused):
        return 409
    return 400


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


router = APIRouter(route_class=WebRoute, include_in_schema=False)


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
            role_label=t(ROLE_LABELS[current.principal.role.value]),
            is_staff=current.principal.role in STAFF_ROLES,
            is_subject=current.principal.role is Role.SUBJECT,
            outcomes={k: t(v) for k, v in OUTCOME_LABELS.items()},
            kinds={k: t(v) for k, v in rendering.KINDS.items()},
            list_kinds={k: t(v) for k, v in rendering.LIST_KINDS.items()},
            statuses={k: t(v) for k, v in rendering.STATUSES.items()},
            data_classes={k: t(v) for k, v in rendering.DATA_CLASSES.items()},
            severities={k: t(v) for k, v in SEVERITIES.items()},
            measure_kinds={k: t(v) for k, v in MEASURE_KINDS.items()},
            consent_labels={k: t(v) for k, v in CONSENT_LABELS.items()},
            why_no_state=lambda reason: why_no_state(t, reason),
            **context,
        )
    )
    response = HTMLResponse(body, status_code=status)
    if current.fresh:
        sessions(request).write(response, current.credential, current.csrf)
    return response


def error_page(request: Request, status: int, message: str, exc: XinyongError | None) -> Response:
    current = session(request)
    if status == 401 and request.method == "GET" and current.credential is None:
        return RedirectResponse(f"/login?next={quote(request.url.path, safe='')}", status_code=303)
    t = Text(current.lang)
    problems = list(exc.problems) if exc is not None else []
    return render(
        request,
        "error.html",
        status=status,
        title=t(ERROR_TITLES.get(status, ERROR_TITLES[400])),
        message=message,
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

# --- general --------------------------------------------------------------------------------------


@router.get("/lang/{lang}")
def switch_language(lang: str, next: str | None = None) -> Response:
    from xinyong.i18n import language

    chosen = language(lang)
    response = redirect(_safe_next(next, "/"))
    response.set_cookie(LANG_COOKIE, chosen, max_age=365 * 86400, samesite="lax", path="/")
    return response


@router.get("/", response_class=HTMLResponse)
def home(request: Request) -> Response:
    versions = service(request).schemes(session(request).principal)
    latest = _latest(versions)
    return render(request, "home.html", schemes=latest)


@router.get("/search", response_class=HTMLResponse)
def search(request: Request, q: str = "") -> Response:
    results: list[dict[str, Any]] = []
    if q.strip():
        results = service(request).search(session(request).principal, q, limit=50)
    return render(request, "search.html", q=q, results=results)


@router.get("/subjects/{subject_id}", response_class=HTMLResponse)
def profile(request: Request, subject_id: str) -> Response:
    principal = session(request).principal
    report = service(request).report(principal, subject_id, action=Action.SUBJECTS_READ)
    return render(request, "profile.html", report=report, titles=_titles(session(request).lang, report))


def _latest(versions: list[Any]) -> list[Any]:
    latest: dict[str, Any] = {}
    for v in versions:
        current = latest.get(v.id)
        if current is None or (v.scheme.effective_from or dt.date.min, v.loaded_at) >= (
            current.scheme.effective_from or dt.date.min,
            current.loaded_at,
        ):
            latest[v.id] = v
    return sorted(latest.values(), key=lambda v: v.id)


@router.get("/schemes", response_class=HTMLResponse)
def schemes(request: Request) -> Response:
    versions = service(request).schemes(session(request).principal)
    return render(request, "schemes.html", schemes=_latest(versions), versions=versions)


@router.get("/schemes/{scheme_id}", response_class=HTMLResponse)
def scheme(request: Request, scheme_id: str, version: str | None = None) -> Response:
    versions = [v for v in service(request).schemes(session(request).principal) if v.id == scheme_id]
    if not versions:
        raise NotFound(f"scheme {scheme_id} is not published")
    chosen = next((v for v in versions if v.version == version), None) if version else _latest(versions)[0]
    if chosen is None:
        raise NotFound(f"scheme {scheme_id} has no version {version}")
    public_lists = {x.id for x in chosen.scheme.lists if _public(chosen.scheme, x.id)}
    return render(request, "scheme.html", v=chosen, s=chosen.scheme, versions=versions, public_lists=public_lists)


def _public(scheme: Any, list_id: str) -> bool:
    from xinyong.presentation.reports import _public_list

    return _public_list(scheme, list_id)


@router.get("/lists/{scheme_id}/{list_id}", response_class=HTMLResponse)
def list_page(request: Request, scheme_id: str, list_id: str) -> Response:
    found = service(request).list_members(session(request).principal, scheme_id, list_id)
    return render(request, "list.html", found=found)


# --- logging in -----------------------------------------------------------------------------------


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
        info = svc.credential(svc.authenticate(bearer.strip()).token_id or "") if bearer.strip() else None
        if info is None:
            info = svc.log_in(login, password)
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


# --- the subject portal ---------------------------------------------------------------------------


def _titles(lang: str, report: dict[str, Any]) -> dict[str, str]:
    t = Text(lang)
    titles: dict[str, str] = {}
    for record in report.get("records", []):
        titles.setdefault(record["behaviour"], t.title(record))
    for item in report.get("schemes", []):
        for factor in item.get("key_factors", []):
            titles.setdefault(factor["behaviour"], t.title(factor))
    return titles


def _my_charts(lang: str, report: dict[str, Any], today: dt.date) -> list[dict[str, Any]]:
    t = Text(lang)
    titles = _titles(lang, report)
    by_id = {r["id"]: r for r in report["records"]}
    found = []
    for item in report["schemes"]:
        if item.get("score") is None:
            continue
        bars = []
        for line in item["contributions"]:
            if line["kind"] != "record" or line["record"] not in by_id:
                continue
            record = by_id[line["record"]]
            bars.append(
                {
                    "label": f"{titles.get(record['behaviour'], record['behaviour'])} ({record['ref']})",
                    "start": line["start"],
                    "until": line["until"],
                    "points": line["points"],
                }
            )
        labels = {"record": t("Record"), "from": t("Counts from"), "until": t("Expires on"), "points": t("Points")}
        recovery = charts.recovery_points(item["score"], item["contributions"], today)
        found.append(
            {
                "scheme": item["scheme"],
                "title": t.title(item),
                "bars": bars,
                "recovery": recovery,
                "timeline": charts.expiry_timeline(bars, labels, t("When each record stops counting"), today)
                if bars
                else None,
                "score_chart": charts.score_recovery(
                    recovery, {"day": t("Day"), "score": t("Score")}, t("How the score recovers as records expire")
                )
                if len(recovery) > 1
                else None,
            }
        )
    return found


@router.get("/me", response_class=HTMLResponse)
def my_report(request: Request) -> Response:
    principal = require(request, Role.SUBJECT)
    svc = service(request)
    assert principal.subject is not None
    report = svc.report(principal, principal.subject, purpose="own report (web)")
    today = local_day(svc.clock.now())
    lang = session(request).lang
    inbox = svc.notices_inbox(principal, principal.subject, lang=lang)
    return render(
        request,
        "me.html",
        report=report,
        titles=_titles(lang, report),
        charts=_my_charts(lang, report, today),
        unread=sum(1 for n in inbox if n["read_at"] is None),
        notices=len(inbox),
        today=today.isoformat(),
        how_to_object=Text(lang)(rendering.HOW_TO_OBJECT, days=report.get("objection_deadline", 5)),
    )


@router.get("/me/notices", response_class=HTMLResponse)
def my_notices(request: Request) -> Response:
    principal = require(request, Role.SUBJECT)
    assert principal.subject is not None
    inbox = service(request).notices_inbox(principal, principal.subject, lang=session(request).lang)
    return render(request, "notices.html", notices=inbox)


@router.post("/me/notices/read")
def my_notices_read(request: Request, token: Csrf) -> Response:
    csrf(request, token)
    principal = require(request, Role.SUBJECT)
    assert principal.subject is not None
    service(request).mark_notices_read(principal, principal.subject)
    return redirect("/me/notices")


@router.post("/me/objections")
def my_objection(
    request: Request, token: Csrf, record: Annotated[str, Form()], reason: Annotated[str, Form()]
) -> Response:
    csrf(request, token)
    principal = require(request, Role.SUBJECT)
    if not reason.strip():
        raise BadInput("reason: say why the record is wrong")
    service(request).file_objection(principal, record, reason=reason.strip())
    return redirect("/me?done=objection#objections")


@router.post("/me/repairs")
def my_repair(
    request: Request, token: Csrf, record: Annotated[str, Form()], evidence: Annotated[str, Form()]
) -> Response:
    csrf(request, token)
    principal = require(request, Role.SUBJECT)
    service(request).apply_repair(principal, record, evidence=evidence)
    return redirect("/me?done=repair#repairs")


@router.get("/me/consent", response_class=HTMLResponse)
def my_consent(request: Request) -> Response:
    principal = require(request, Role.SUBJECT)
    assert principal.subject is not None
    svc = service(request)
    report = svc.report(principal, principal.subject, purpose="consent settings (web)")
    versions = _latest(svc.schemes(principal))
    needs = [v for v in versions if v.scheme.consent == "required" and report["subject"]["kind"] in v.scheme.applies_to]
    states = {s["scheme"]: s for s in report["schemes"]}
    rows = [
        {"scheme": v.id, "title": Text(session(request).lang).title(v.scheme), "granted": _granted(states.get(v.id))}
        for v in needs
    ]
    return render(request, "consent.html", rows=rows)


def _granted(state: dict[str, Any] | None) -> bool:
    return state is not None and "consent" not in (state.get("no_state_reason") or "")


@router.post("/me/consent")
def my_consent_change(
    request: Request, token: Csrf, scheme: Annotated[str, Form()], grant: Annotated[str, Form()]
) -> Response:
    csrf(request, token)
    principal = require(request, Role.SUBJECT)
    assert principal.subject is not None
    service(request).change_consent(principal, principal.subject, scheme, grant == "yes")
    return redirect("/me/consent?done=consent")


@router.get("/me/report.pdf")
def my_pdf(request: Request) -> Response:
    principal = require(request, Role.SUBJECT)
    assert principal.subject is not None
    report = service(request).report(principal, principal.subject, purpose="PDF report (web)")
    body = rendering.pdf(report, session(request).lang)
    name = f"xinyong-report-{report['as_of']}.pdf"
    return Response(
        body, media_type="application/pdf", headers={"Content-Disposition": f'attachment; filename="{name}"'}
    )


@router.get("/me/who-looked", response_class=HTMLResponse)
def my_readers(request: Request) -> Response:
    principal = require(request, Role.SUBJECT)
    assert principal.subject is not None
    entries = service(request).who_looked(principal, principal.subject)
    return render(request, "who_looked.html", entries=entries)


# --- the staff console ----------------------------------------------------------------------------


def month_ends(today: dt.date, count: int) -> list[dt.date]:
    days = []
    first = today.replace(day=1)
    for _ in range(count):
        days.append(first - dt.timedelta(days=1))
        first = (first - dt.timedelta(days=1)).replace(day=1)
    return sorted([*days, today])


@router.get("/staff", response_class=HTMLResponse)
def dashboard(request: Request) -> Response:
    principal = require(request, *STAFF_ROLES)
    svc = service(request)
    t = Text(session(request).lang)
    today = local_day(svc.clock.now())
    counts = svc.population_counts(principal, month_ends(today, DASHBOARD_MONTHS))
    grade_rows = [{**g, "grade": g["grade"] or "—", "subjects": g["subjects"] or 0} for g in counts["grades"]]
    per_source = svc.records_per_source(principal)
    sizes = [{**x, "list": f"{x['scheme']}/{x['list']}"} for x in counts["lists"]]
    scheme_l, grade_l, subjects_l = t("Scheme"), t("Grade"), t("Subjects")
    source_l, month_l, records_l, day_l, list_l = t("Source"), t("Month"), t("Records"), t("Day"), t("List")
    grade_chart = charts.grouped_bars(
        [{scheme_l: r["scheme"], grade_l: r["grade"], subjects_l: r["subjects"]} for r in grade_rows],
        grade_l,
        subjects_l,
        grade_l,
        t("Subjects per grade per scheme"),
        facet=scheme_l,
    )
    source_chart = charts.lines(
        [{source_l: r["source"], month_l: r["month"], records_l: r["records"] or 0} for r in per_source],
        month_l,
        records_l,
        source_l,
        t("Records per source over time"),
    )
    size_chart = charts.lines(
        [{list_l: r["list"], day_l: r["day"], subjects_l: r["subjects"]} for r in sizes],
        day_l,
        subjects_l,
        list_l,
        t("List sizes over time"),
    )
    return render(
        request,
        "dashboard.html",
        grade_rows=grade_rows,
        per_source=per_source,
        sizes=sizes,
        grade_chart=grade_chart,
        source_chart=source_chart,
        size_chart=size_chart,
        overdue=len(svc.overdue(principal)),
        pending=len(svc.objections(principal, undecided=True)),
        pending_repairs=len(svc.repair_applications(principal, undecided=True)),
    )


@router.get("/staff/objections", response_class=HTMLResponse)
def objection_queue(request: Request, all: str | None = None) -> Response:
    principal = require(request, *STAFF_ROLES)
    svc = service(request)
    today = local_day(svc.clock.now())
    found = svc.objections(principal, undecided=not all)
    rows = []
    for o in sorted(found, key=lambda o: (o.decided_at is not None, o.due_on, o.id)):
        record = svc.record(principal, str(o.record_id), purpose="objection queue (web)")
        view = record.view()
        rows.append(
            {
                "o": o,
                "ref": f"{record.record.source_id}:{record.record.document_ref}",
                "behaviour": view.behaviour,
                "occurred_on": view.occurred_on.isoformat(),
                "overdue": o.overdue(today),
                "working_days_left": _working_days_left(today, o.due_on),
            }
        )
    return render(request, "objections.html", rows=rows, show_all=bool(all), today=today.isoformat())


def _working_days_left(today: dt.date, due: dt.date) -> int:
    """Working days from today to the deadline (negative once it has passed)."""
    if due < today:
        return -working_days_between(due, today)
    return working_days_between(today, due)


@router.post("/staff/objections/{objection_id}")
def objection_decision(
    request: Request,
    objection_id: int,
    token: Csrf,
    outcome: Annotated[str, Form()],
    reason: Annotated[str, Form()],
) -> Response:
    csrf(request, token)
    principal = require(request, *STAFF_ROLES)
    if outcome not in {"upheld", "revoked"}:
        raise BadInput("outcome: decide upheld or revoked here; a correction needs the API or the command line")
    service(request).decide_objection(principal, objection_id, outcome=outcome, reason=reason)
    return redirect("/staff/objections?done=decided")


@router.get("/staff/repairs", response_class=HTMLResponse)
def repair_queue(request: Request, all: str | None = None) -> Response:
    principal = require(request, *STAFF_ROLES)
    svc = service(request)
    today = local_day(svc.clock.now())
    found = svc.repair_applications(principal, undecided=not all)
    rows = [{"r": r, "overdue": r.overdue(today)} for r in found]
    return render(request, "repairs.html", rows=rows, show_all=bool(all))


@router.post("/staff/repairs/{repair_id}")
def repair_decision(
    request: Request,
    repair_id: int,
    token: Csrf,
    outcome: Annotated[str, Form()],
    reason: Annotated[str, Form()],
) -> Response:
    csrf(request, token)
    principal = require(request, *STAFF_ROLES)
    service(request).decide_repair(principal, repair_id, outcome=outcome, reason=reason)
    return redirect("/staff/repairs?done=decided")


@router.get("/staff/imports", response_class=HTMLResponse)
def imports_page(request: Request) -> Response:
    principal = require(request, *STAFF_ROLES)
    jobs = service(request).import_jobs(principal)
    return render(request, "imports.html", jobs=jobs, job=None)


@router.post("/staff/imports")
async def import_upload(
    request: Request,
    file: Annotated[UploadFile, File()],
    token: Csrf,
    kind: Annotated[str, Form()] = "records",
    source: Annotated[str, Form()] = "",
) -> Response:
    csrf(request, token)
    principal = require(request, *STAFF_ROLES)
    data = await file.read()
    svc = service(request)
    from starlette.concurrency import run_in_threadpool

    job = await run_in_threadpool(
        svc.submit_import_job, principal, kind, file.filename or "upload.csv", data, source.strip() or None
    )
    return redirect(f"/staff/imports/{job}")


@router.get("/staff/imports/{job_id}", response_class=HTMLResponse)
def import_job(request: Request, job_id: int) -> Response:
    principal = require(request, *STAFF_ROLES)
    svc = service(request)
    return render(request, "imports.html", jobs=svc.import_jobs(principal), job=svc.import_job(principal, job_id))


@router.get("/staff/lists", response_class=HTMLResponse)
def list_changes(request: Request, which: str | None = None, since: str | None = None) -> Response:
    principal = require(request, *STAFF_ROLES)
    scheme, _, list_id = (which or "").partition("/")
    svc = service(request)
    versions = _latest(svc.schemes(principal))
    choices = [(v.id, x.id, Text(session(request).lang).title(x)) for v in versions for x in v.scheme.lists]
    today = local_day(svc.clock.now())
    try:
        start = dt.date.fromisoformat(since) if since else today - dt.timedelta(days=30)
    except ValueError:
        raise BadInput(f"since: {since!r} is not a day (YYYY-MM-DD)") from None
    changes = None
    if scheme and list_id:
        before = svc.list_members(principal, scheme, list_id, as_of=start)
        after = svc.list_members(principal, scheme, list_id, as_of=today)
        old = {m["subject"]: m for m in before["members"]}
        new = {m["subject"]: m for m in after["members"]}
        changes = {
            "scheme": scheme,
            "list": list_id,
            "title": after["title"],
            "joined": [new[k] for k in sorted(new.keys() - old.keys())],
            "left": [old[k] for k in sorted(old.keys() - new.keys())],
            "before": len(old),
            "after": len(new),
        }
    query = urlencode({"since": start.isoformat()})
    return render(
        request,
        "list_changes.html",
        choices=choices,
        changes=changes,
        since=start.isoformat(),
        today=today.isoformat(),
        query=query,
        scheme=scheme,
        list_id=list_id,
    )
