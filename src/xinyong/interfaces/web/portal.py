"""The subject portal: my report with its explanation and timeline, my notices, objecting and
applying for repair, consent, the PDF report and who looked at my data."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

from fastapi import APIRouter, Form, Request
from starlette.responses import HTMLResponse, Response

from xinyong.errors import BadInput
from xinyong.i18n import Text
from xinyong.interfaces.web import charts
from xinyong.interfaces.web.common import (
    Csrf,
    WebRoute,
    csrf,
    latest_versions,
    redirect,
    render,
    require,
    scheme_titles,
    service,
    session,
)
from xinyong.presentation import rendering
from xinyong.presentation.looked import rows as looked_rows
from xinyong.rules.clock import DEFAULT_TIMEZONE, local_day
from xinyong.security.access import Role

router = APIRouter(route_class=WebRoute, include_in_schema=False)


def _my_charts(lang: str, report: dict[str, Any], today: dt.date) -> list[dict[str, Any]]:
    t = Text(lang)
    titles = scheme_titles(lang, report)
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
    report = svc.questions.report(principal, principal.subject, purpose="own report (web)")
    today = local_day(svc.clock.now())
    lang = session(request).lang
    inbox = svc.notices.inbox(principal, principal.subject, lang=lang)["notices"]
    return render(
        request,
        "me.html",
        report=report,
        titles=scheme_titles(lang, report),
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
    inbox = service(request).notices.inbox(principal, principal.subject, lang=session(request).lang)["notices"]
    return render(request, "notices.html", notices=inbox)


@router.post("/me/notices/read")
def my_notices_read(request: Request, token: Csrf) -> Response:
    csrf(request, token)
    principal = require(request, Role.SUBJECT)
    assert principal.subject is not None
    service(request).notices.mark_all_read(principal, principal.subject)
    return redirect("/me/notices")


@router.post("/me/objections")
def my_objection(
    request: Request, token: Csrf, record: Annotated[str, Form()], reason: Annotated[str, Form()]
) -> Response:
    csrf(request, token)
    principal = require(request, Role.SUBJECT)
    if not reason.strip():
        raise BadInput("reason: say why the record is wrong")
    service(request).objections.file(principal, record, reason=reason.strip())
    return redirect("/me?done=objection#objections")


@router.post("/me/repairs")
def my_repair(
    request: Request, token: Csrf, record: Annotated[str, Form()], evidence: Annotated[str, Form()]
) -> Response:
    csrf(request, token)
    principal = require(request, Role.SUBJECT)
    service(request).repairs.apply(principal, record, evidence=evidence)
    return redirect("/me?done=repair#repairs")


@router.get("/me/consent", response_class=HTMLResponse)
def my_consent(request: Request) -> Response:
    principal = require(request, Role.SUBJECT)
    assert principal.subject is not None
    svc = service(request)
    report = svc.questions.report(principal, principal.subject, purpose="consent settings (web)")
    versions = latest_versions(svc.schemes.versions(principal))
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
    service(request).subjects.change_consent(principal, principal.subject, scheme, grant == "yes")
    return redirect("/me/consent?done=consent")


@router.get("/me/report.pdf")
def my_pdf(request: Request) -> Response:
    principal = require(request, Role.SUBJECT)
    assert principal.subject is not None
    svc = service(request)
    sealed = svc.reports.issue(principal, principal.subject, purpose="PDF report (web)")
    body = svc.reports.document(sealed, "pdf", session(request).lang)
    name = f"xinyong-report-{sealed['as_of']}-{sealed['report_id'][:8]}.pdf"
    return Response(
        body, media_type="application/pdf", headers={"Content-Disposition": f'attachment; filename="{name}"'}
    )


@router.get("/me/who-looked", response_class=HTMLResponse)
def my_readers(request: Request) -> Response:
    principal = require(request, Role.SUBJECT)
    assert principal.subject is not None
    looked = service(request).audit.looked(principal, principal.subject)
    shown = looked_rows(Text(session(request).lang), looked["entries"], principal.subject, DEFAULT_TIMEZONE)
    return render(request, "who_looked.html", entries=shown, feeds=looked["feeds"])
