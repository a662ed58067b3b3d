"""The staff console: dashboards, the objections and repairs queues with their deadlines, imports
with their line-level problems, and list changes."""

from __future__ import annotations

import datetime as dt
from typing import Annotated
from urllib.parse import urlencode

from fastapi import APIRouter, File, Form, Path, Request, UploadFile
from starlette.responses import HTMLResponse, Response

from xinyong.errors import BadInput
from xinyong.i18n import N_, Text
from xinyong.interfaces.web import charts
from xinyong.interfaces.web.common import (
    STAFF_ROLES,
    Csrf,
    WebRoute,
    csrf,
    latest_versions,
    redirect,
    render,
    require,
    service,
    session,
)
from xinyong.rules import values
from xinyong.rules.clock import local_day
from xinyong.rules.workdays import working_days_between

router = APIRouter(route_class=WebRoute, include_in_schema=False)


# Month-ends back from today in the list-size chart: each is one pass over the population.
DASHBOARD_MONTHS = 3


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
    counts = svc.aggregates.population_counts(principal, month_ends(today, DASHBOARD_MONTHS))
    grade_rows = [{**g, "grade": g["grade"] or "—", "subjects": g["subjects"] or 0} for g in counts["grades"]]
    per_source = svc.aggregates.records_per_source(principal)
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
        overdue=len(svc.objections.overdue(principal)),
        pending=len(svc.objections.listing(principal, undecided=True)),
        pending_repairs=len(svc.repairs.listing(principal, undecided=True)),
        delisting=svc.feeds.delays(principal),
    )


@router.get("/staff/objections", response_class=HTMLResponse)
def objection_queue(request: Request, all: str | None = None) -> Response:
    principal = require(request, *STAFF_ROLES)
    svc = service(request)
    today = local_day(svc.clock.now())
    found = svc.objections.listing(principal, undecided=not all)
    rows = []
    for o in sorted(found, key=lambda o: (o.decided_at is not None, o.due_on, o.id)):
        record = svc.records.show(principal, str(o.record_id), purpose="objection queue (web)")
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
    objection_id: Annotated[int, Path(ge=1, le=2**62)],
    token: Csrf,
    outcome: Annotated[str, Form()],
    reason: Annotated[str, Form()],
    behaviour: Annotated[str, Form()] = "",
    occurred_on: Annotated[str, Form()] = "",
    amount: Annotated[str, Form()] = "",
) -> Response:
    """Every outcome the command line has; a correction's values are read by the same validators."""
    csrf(request, token)
    principal = require(request, *STAFF_ROLES)
    if outcome not in {"upheld", "corrected", "revoked"}:
        raise BadInput(N_("outcome: choose uphold, correct or revoke"))
    corrected = outcome == "corrected"
    if not corrected and (behaviour.strip() or occurred_on.strip() or amount.strip()):
        raise BadInput(N_("corrected values are given only with the outcome “correct”"))
    service(request).objections.decide(
        principal,
        objection_id,
        outcome=outcome,
        reason=reason,
        behaviour=behaviour.strip() or None,
        occurred_on=values.day(occurred_on.strip(), where="occurred_on") if occurred_on.strip() else None,
        amount=values.amount(amount.strip() or None, where="amount"),
    )
    return redirect("/staff/objections?done=decided")


@router.get("/staff/repairs", response_class=HTMLResponse)
def repair_queue(request: Request, all: str | None = None) -> Response:
    principal = require(request, *STAFF_ROLES)
    svc = service(request)
    today = local_day(svc.clock.now())
    found = svc.repairs.listing(principal, undecided=not all)
    rows = [{"r": r, "overdue": r.overdue(today)} for r in found]
    return render(request, "repairs.html", rows=rows, show_all=bool(all))


@router.post("/staff/repairs/{repair_id}")
def repair_decision(
    request: Request,
    repair_id: Annotated[int, Path(ge=1, le=2**62)],
    token: Csrf,
    outcome: Annotated[str, Form()],
    reason: Annotated[str, Form()],
) -> Response:
    csrf(request, token)
    principal = require(request, *STAFF_ROLES)
    service(request).repairs.decide(principal, repair_id, outcome=outcome, reason=reason)
    return redirect("/staff/repairs?done=decided")


@router.get("/staff/imports", response_class=HTMLResponse)
def imports_page(request: Request) -> Response:
    principal = require(request, *STAFF_ROLES)
    jobs = service(request).imports.newest(principal)
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
        svc.imports.submit, principal, kind, file.filename or "upload.csv", data, source.strip() or None
    )
    return redirect(f"/staff/imports/{job}")


@router.get("/staff/imports/{job_id}", response_class=HTMLResponse)
def import_job(request: Request, job_id: Annotated[int, Path(ge=1, le=2**62)]) -> Response:
    principal = require(request, *STAFF_ROLES)
    svc = service(request)
    return render(request, "imports.html", jobs=svc.imports.newest(principal), job=svc.imports.get(principal, job_id))


@router.get("/staff/lists", response_class=HTMLResponse)
def list_changes(request: Request, which: str | None = None, since: str | None = None) -> Response:
    principal = require(request, *STAFF_ROLES)
    scheme, _, list_id = (which or "").partition("/")
    svc = service(request)
    versions = latest_versions(svc.schemes.versions(principal))
    choices = [(v.id, x.id, Text(session(request).lang).title(x)) for v in versions for x in v.scheme.lists]
    today = local_day(svc.clock.now())
    start = values.day(since, where="since") if since else today - dt.timedelta(days=30)
    changes = None
    if scheme and list_id:
        before = svc.questions.list_members(principal, scheme, list_id, as_of=start)
        after = svc.questions.list_members(principal, scheme, list_id, as_of=today)
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
