"""The routes under /v1: each validates its input, names the caller, and delegates to the service.

No route decides anything: authorisation, the views each role gets and the audit entries are the
service's. Handlers are plain functions (FastAPI runs them in its thread pool) except the check,
the hot path, which is in `api/checks.py`.
"""

from __future__ import annotations

import datetime as dt
import io
from typing import Annotated, Any
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Depends, File, Header, Path, Query, Request, Response, UploadFile, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import AfterValidator, BeforeValidator

from xinyong.errors import BadInput
from xinyong.presentation import outputs
from xinyong.rules.clock import DEFAULT_TIMEZONE, local_day
from xinyong.rules.schemes import SchemeVersion
from xinyong.security.access import Principal, Role
from xinyong.service import Service, TokenInfo

from . import auth, models

bearer = HTTPBearer(auto_error=False, description="A token from `xinyong tokens create`; none for public reads.")


def service_of(request: Request) -> Service:
    svc: Service = request.app.state.service
    return svc


def caller(
    request: Request,
    _credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)] = None,
) -> Principal:
    principal: Principal = request.app.state.tokens.principal(auth.authorization(request))
    return principal


Caller = Annotated[Principal, Depends(caller)]
Id = Annotated[int, Path(ge=1, le=2**62, description="A numeric id.")]
# Path parameters, bounded like the columns they are looked up in: a longer value could name
# nothing, and PostgreSQL would refuse to log it (a NUL is refused before routing: `problems.Guard`).
SubjectId = Annotated[
    str, Path(min_length=1, max_length=32, description="The subject's id (resident number or unified code).")
]
SchemeId = Annotated[str, Path(min_length=1, max_length=64, description="A scheme's id.")]
VersionId = Annotated[str, Path(min_length=1, max_length=32, description="A scheme version.")]
ListId = Annotated[str, Path(min_length=1, max_length=64, description="A list of the scheme.")]
RecordRef = Annotated[
    str,
    Path(
        min_length=1,
        max_length=200,
        pattern=models.RECORD_PATTERN,
        description="A record's id or SOURCE:DOCUMENT_REF.",
    ),
]
TokenId = Annotated[str, Path(min_length=1, max_length=32, description="A token's id.")]
Svc = Annotated[Service, Depends(service_of)]
AsOf = Annotated[
    dt.date | None,
    Query(description="The day asked about (YYYY-MM-DD); default today.", json_schema_extra=models.DAY_SCHEMA),
    BeforeValidator(models.read_day),
]
KnownAt = Annotated[
    dt.datetime | None,
    Query(
        description="Knowledge time: ignore every event recorded after it; default now (local time if no offset).",
        json_schema_extra=models.INSTANT_SCHEMA,
    ),
    AfterValidator(models.instant_in_range),
]
Purpose = Annotated[
    str | None,
    Header(alias="X-Purpose", max_length=200, description="Why the data is read; written into the audit log."),
]


def known(value: dt.datetime | None) -> dt.datetime | None:
    if value is None:
        return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=ZoneInfo(DEFAULT_TIMEZONE))
    return value.astimezone(dt.UTC)


def scheme_version(v: SchemeVersion, *, document: bool) -> dict[str, Any]:
    import orjson

    return {
        "scheme": v.id,
        "version": v.version,
        "title": v.scheme.title,
        "effective_from": outputs.plain(v.scheme.effective_from),
        "loaded_at": outputs.plain(v.loaded_at),
        "digest": v.digest,
        "applies_to": list(v.scheme.applies_to),
        **({"document": orjson.loads(v.scheme.canonical_json())} if document else {}),
    }


def token(info: TokenInfo, now: dt.datetime) -> dict[str, Any]:
    return {
        "id": info.id,
        "role": info.role.value,
        "agency": info.agency,
        "subject": info.subject,
        "label": info.label,
        "created_at": outputs.plain(info.created_at),
        "created_by": info.created_by,
        "expires_at": outputs.plain(info.expires_at),
        "revoked_at": outputs.plain(info.revoked_at),
        "status": info.status(now),
    }


router = APIRouter(prefix="/v1", responses=models.PROBLEMS)
# Operations the public may call: a token is optional (it may widen what the caller sees).
OPEN: dict[str, Any] = {"security": [{}, {"HTTPBearer": []}]}

# --- schemes and sources ----------------------------------------------------------------------------


@router.get("/schemes", tags=["schemes"], openapi_extra=OPEN, response_model=list[models.SchemeOut])
def list_schemes(principal: Caller, svc: Svc) -> list[dict[str, Any]]:
    """Every published scheme with all its versions (summaries). Public."""
    grouped: dict[str, list[dict[str, Any]]] = {}
    for v in svc.schemes.versions(principal):
        grouped.setdefault(v.id, []).append(scheme_version(v, document=False))
    return [{"scheme": k, "versions": vs} for k, vs in sorted(grouped.items())]


@router.get("/schemes/{scheme}", tags=["schemes"], openapi_extra=OPEN, response_model=models.SchemeOut)
def get_scheme(scheme: SchemeId, principal: Caller, svc: Svc) -> dict[str, Any]:
    """A scheme's every version in full: behaviours, points, validity, lists, measures, legal basis. Public."""
    versions = [scheme_version(v, document=True) for v in svc.schemes.versions(principal) if v.id == scheme]
    if not versions:
        from xinyong.errors import NotFound

        raise NotFound(f"scheme {scheme} is not loaded")
    return {"scheme": scheme, "versions": versions}


@router.get(
    "/schemes/{scheme}/versions/{version}/source",
    tags=["schemes"],
    openapi_extra=OPEN,
    response_class=Response,
    # text/plain too: the same bytes for clients that read text but know no YAML type (a client
    # generated by openapi-python-client left this operation out when YAML was all it was offered).
    responses={200: {"content": {"application/yaml": {"schema": {"type": "string"}}, "text/plain": {}}}},
)
def get_scheme_source(scheme: SchemeId, version: VersionId, principal: Caller, svc: Svc, request: Request) -> Response:
    """A scheme version's YAML exactly as it was published. Public."""
    text = svc.schemes.source_text(principal, scheme, version)
    accept = request.headers.get("accept", "")
    plain = "text/plain" in accept and "yaml" not in accept
    return Response(text, media_type="text/plain; charset=utf-8" if plain else "application/yaml")


@router.post("/schemes", tags=["schemes"], response_model=models.SchemeLoaded, status_code=status.HTTP_201_CREATED)
def load_scheme(body: models.SchemeIn, principal: Caller, svc: Svc) -> dict[str, Any]:
    """Publish a scheme version (admin). The same version with the same text again is a no-op."""
    version, added = svc.schemes.load(principal, body.yaml, where="yaml")
    return {"scheme": version.id, "version": version.version, "loaded": added, "digest": version.digest}


@router.post("/sources", tags=["schemes"], response_model=models.SourceOut, status_code=status.HTTP_201_CREATED)
def add_source(body: models.SourceIn, principal: Caller, svc: Svc) -> dict[str, Any]:
    """Register a source agency and authorise it for behaviour codes (admin)."""
    added, have = svc.schemes.add_source(principal, body.agency, body.behaviours, body.title)
    return {"source": body.agency, "added": added, "behaviours": have}


# --- subjects ---------------------------------------------------------------------------------------


@router.get("/subjects", tags=["subjects"], openapi_extra=OPEN, response_model=list[models.SubjectHit])
def search_subjects(
    principal: Caller,
    svc: Svc,
    q: Annotated[
        str, Query(min_length=1, max_length=100, description="A name, a unified code or id, or a legal representative.")
    ],
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> list[dict[str, Any]]:
    """Find subjects. The public finds organisations; the office finds persons too (logged)."""
    return svc.subjects.search(principal, q, limit=limit)


@router.get("/subjects/{subject}", tags=["subjects"], openapi_extra=OPEN, response_model=dict[str, Any])
def subject_profile(
    subject: SubjectId, principal: Caller, svc: Svc, as_of: AsOf = None, purpose: Purpose = None
) -> Any:
    """A subject's profile: for the public, an organisation's public view; in full for the subject
    itself and the office (logged)."""
    return outputs.plain(svc.questions.profile(principal, subject, as_of=as_of, purpose=purpose))


@router.get("/subjects/{subject}/state", tags=["state"], response_model=list[dict[str, Any]])
def subject_state(
    subject: SubjectId,
    principal: Caller,
    svc: Svc,
    scheme: Annotated[str | None, Query(max_length=64, description="One scheme; default every scheme.")] = None,
    as_of: AsOf = None,
    known_at: KnownAt = None,
    purpose: Purpose = None,
) -> Any:
    """Score, grade, explanation, lists and measures per scheme as of a day, as known at a time."""
    results = svc.questions.states(
        principal, subject, scheme=scheme, as_of=as_of, known_at=known(known_at), purpose=purpose
    )
    return [outputs.plain(outputs.state(r)) for r in results]


@router.post("/subjects/{subject}/consent", tags=["subjects"], response_model=models.ConsentOut)
def change_consent(subject: SubjectId, body: models.ConsentIn, principal: Caller, svc: Svc) -> dict[str, Any]:
    """A person grants or withdraws consent to being scored by a scheme (the subject, or admin)."""
    changed = svc.subjects.change_consent(principal, subject, body.scheme, body.grant)
    return {
        "subject": subject,
        "scheme": body.scheme,
        "consent": "granted" if body.grant else "withdrawn",
        "changed": changed,
    }


@router.get("/subjects/{subject}/objections", tags=["objections"], response_model=list[models.ObjectionOut])
def subject_objections(subject: SubjectId, principal: Caller, svc: Svc) -> list[dict[str, Any]]:
    """A subject's objections, newest first."""
    today = local_day(svc.clock.now())
    return [outputs.objection(o, today) for o in svc.objections.listing(principal, subject_id=subject)]


@router.get("/subjects/{subject}/audit", tags=["audit"], response_model=models.WhoLooked)
def who_looked(subject: SubjectId, principal: Caller, svc: Svc) -> dict[str, Any]:
    """Who looked at this subject's data, every other logged act about it, and the feed versions that
    carried it to enforcer agencies (the subject, or admin)."""
    return {"subject": subject, **svc.audit.looked(principal, subject)}


# --- records ----------------------------------------------------------------------------------------


@router.post("/records", tags=["records"], response_model=models.RecordSubmitted, status_code=status.HTTP_201_CREATED)
def submit_record(body: models.RecordIn, principal: Caller, svc: Svc, response: Response) -> dict[str, Any]:
    """Submit one record, checked exactly like a line of an import file. A source submits only the
    behaviours it is authorised for; the same document_ref again changes nothing (200)."""
    source = body.source or principal.agency
    if not source:
        raise BadInput("source: name the submitting agency")
    values = body.model_dump(exclude={"source"}, exclude_none=True)
    values["occurred_on"] = body.occurred_on.isoformat()
    found, created = svc.records.submit(principal, source, values)
    if not created:
        response.status_code = status.HTTP_200_OK
    return {"record": outputs.history(found), "created": created}


@router.get("/records/{record}", tags=["records"], response_model=models.RecordOut)
def get_record(
    record: RecordRef, principal: Caller, svc: Svc, known_at: KnownAt = None, purpose: Purpose = None
) -> Any:
    """A record with every event that happened to it (the subject, or the office; logged)."""
    found = svc.records.show(principal, record, purpose=purpose)
    return outputs.plain(outputs.history(found, known(known_at)))


@router.post("/records/{record}/corrections", tags=["records"], response_model=models.EventOut)
def correct_record(record: RecordRef, body: models.CorrectionIn, principal: Caller, svc: Svc) -> dict[str, Any]:
    """Correct a record's behaviour, date or amount (officer): an appended event, nothing overwritten."""
    event = svc.records.correct(
        principal,
        record,
        reason=body.reason,
        behaviour=body.behaviour,
        occurred_on=body.occurred_on,
        amount=body.amount,
    )
    return {"record": record, "event": event, "kind": "corrected"}


@router.post("/records/{record}/revocation", tags=["records"], response_model=models.EventOut)
def revoke_record(record: RecordRef, body: models.RevocationIn, principal: Caller, svc: Svc) -> dict[str, Any]:
    """Revoke a record (officer): it never had any effect."""
    event = svc.records.revoke(principal, record, reason=body.reason)
    return {"record": record, "event": event, "kind": "revoked"}


@router.post("/records/{record}/end", tags=["records"], response_model=models.EventOut)
def end_record(record: RecordRef, body: models.EndIn, principal: Caller, svc: Svc) -> dict[str, Any]:
    """End a record's effect from a day (officer): the obligation was fulfilled or a repair approved."""
    event = svc.records.end(principal, record, on=body.on, reason=body.reason, note=body.note)
    return {"record": record, "event": event, "kind": "ended"}


@router.post("/imports", tags=["records"], response_model=models.ImportJobOut, status_code=status.HTTP_202_ACCEPTED)
async def submit_import(
    principal: Caller,
    svc: Svc,
    file: Annotated[UploadFile, File(description="A .csv or .jsonl file.")],
    kind: Annotated[str, Query(pattern="^(records|subjects)$")] = "records",
    source: Annotated[str | None, Query(max_length=64, description="The submitting agency (records).")] = None,
) -> dict[str, Any]:
    """Import a whole file as a job: all of it or nothing. Read its status and line-level problems
    from the answer or later from GET /v1/imports/{id}."""
    from starlette.concurrency import run_in_threadpool

    data = await file.read()
    name = file.filename or "upload.csv"
    source = source or principal.agency if kind == "records" else source
    job_id = await run_in_threadpool(svc.imports.submit, principal, kind, name, data, source)
    return await run_in_threadpool(svc.imports.get, principal, job_id)


@router.get("/imports/{job}", tags=["records"], response_model=models.ImportJobOut)
def get_import(job: Id, principal: Caller, svc: Svc) -> dict[str, Any]:
    """An import job: its status, counts and every bad line (line, column, reason)."""
    return svc.imports.get(principal, job)


# --- reports, lists, aggregates -------------------------------------------------------------------


@router.get("/reports/{subject}", tags=["state"], openapi_extra=OPEN, response_model=dict[str, Any])
def get_report(
    subject: SubjectId,
    principal: Caller,
    svc: Svc,
    as_of: AsOf = None,
    known_at: KnownAt = None,
    purpose: Purpose = None,
) -> Any:
    """The credit report, issued and sealed (`report_id`, `digest`, `key`, `signature`; docs/verifying.md):
    in full for the subject and the office, an organisation's public report for everyone else;
    logged either way, since its number, question and digest are kept."""
    return svc.reports.issue(principal, subject, as_of=as_of, known_at=known(known_at), purpose=purpose)


ReportId = Annotated[str, Path(pattern=r"^[0-9a-f]{32}$", description="A report's number: 32 characters 0–9 and a–f.")]


@router.get("/verify/{report_id}", tags=["state"], openapi_extra=OPEN, response_model=models.VerificationOut)
def verify_report(
    report_id: ReportId,
    principal: Caller,
    svc: Svc,
    digest: Annotated[
        str | None,
        Query(pattern=r"^[0-9a-f]{64}$", description="The report's digest: `invalid` unless it is the one issued."),
    ] = None,
) -> dict[str, Any]:
    """Whether an issued report still holds, asked again with today's knowledge: `valid`, or
    `superseded` with each record it showed that was since revoked, corrected or ended. Public;
    nothing of the report's content is revealed."""
    return svc.reports.status(principal, report_id, digest=digest)


@router.get("/keys", tags=["state"], openapi_extra=OPEN, response_model=models.KeysOut)
def signing_keys(principal: Caller, svc: Svc) -> dict[str, Any]:
    """The platform's public signing keys (reports, feed versions, audit checkpoints), retired ones
    too; also at /.well-known/xinyong-keys.json. A token, if given, must be valid, as everywhere."""
    del principal  # the keys are public; a caller is named only to refuse a bad token
    return svc.reports.published()


@router.get("/lists/{scheme}/{list_id}", tags=["state"], openapi_extra=OPEN, response_model=dict[str, Any])
def get_list(scheme: SchemeId, list_id: ListId, principal: Caller, svc: Svc, as_of: AsOf = None) -> Any:
    """A list's members on a day. Public lists (built only from public-class behaviours) are open to
    all with persons' ids masked; the office sees any list."""
    return svc.questions.list_members(principal, scheme, list_id, as_of=as_of)


@router.get("/aggregates/{scheme}", tags=["state"], response_model=dict[str, Any])
def get_aggregates(
    scheme: SchemeId,
    principal: Caller,
    svc: Svc,
    as_of: AsOf = None,
    by: Annotated[str | None, Query(pattern="^(division|kind)$")] = None,
) -> Any:
    """Subjects per grade (optionally per division or kind) and per list; no cell under 10 subjects."""
    return svc.aggregates.by_grade(principal, scheme, as_of=as_of, by=by)


# --- objections -----------------------------------------------------------------------------------


@router.post(
    "/objections", tags=["objections"], response_model=models.ObjectionOut, status_code=status.HTTP_201_CREATED
)
def file_objection(body: models.ObjectionIn, principal: Caller, svc: Svc) -> dict[str, Any]:
    """Object to a record (the subject, or the office): disputed at once, decided within the deadline."""
    found = svc.objections.file(principal, body.record, reason=body.reason)
    return outputs.objection(found, local_day(svc.clock.now()))


@router.get("/objections", tags=["objections"], response_model=list[models.ObjectionOut])
def list_objections(
    principal: Caller,
    svc: Svc,
    subject: Annotated[str | None, Query(max_length=32)] = None,
    undecided: bool = False,
) -> list[dict[str, Any]]:
    """Objections, newest first (a subject sees its own)."""
    today = local_day(svc.clock.now())
    return [
        outputs.objection(o, today) for o in svc.objections.listing(principal, subject_id=subject, undecided=undecided)
    ]


@router.get("/objections/{objection}", tags=["objections"], response_model=models.ObjectionOut)
def get_objection(objection: Id, principal: Caller, svc: Svc) -> dict[str, Any]:
    return outputs.objection(svc.objections.get(principal, objection), local_day(svc.clock.now()))


@router.post("/objections/{objection}/decision", tags=["objections"], response_model=models.ObjectionOut)
def decide_objection(objection: Id, body: models.DecisionIn, principal: Caller, svc: Svc) -> dict[str, Any]:
    """Decide an objection with written reasons (officer)."""
    found = svc.objections.decide(
        principal,
        objection,
        outcome=body.outcome,
        reason=body.reason,
        behaviour=body.behaviour,
        occurred_on=body.occurred_on,
        amount=body.amount,
    )
    return outputs.objection(found, local_day(svc.clock.now()))


# --- tokens and the audit log ---------------------------------------------------------------------


@router.post("/tokens", tags=["admin"], response_model=models.TokenCreated, status_code=status.HTTP_201_CREATED)
def create_token(body: models.TokenIn, principal: Caller, svc: Svc) -> dict[str, Any]:
    """Create a token (admin); the bearer string is in this answer only."""
    bearer_, info = svc.credentials.create_token(
        principal,
        Role(body.role),
        agency=body.agency,
        subject=body.subject,
        label=body.label,
        expires_at=known(body.expires_at),
    )
    return {**token(info, svc.clock.now()), "token": bearer_}


@router.get("/tokens", tags=["admin"], response_model=list[models.TokenOut])
def list_tokens(principal: Caller, svc: Svc) -> list[dict[str, Any]]:
    now = svc.clock.now()
    return [token(info, now) for info in svc.credentials.tokens(principal)]


@router.delete("/tokens/{token_id}", tags=["admin"], response_model=models.TokenOut)
def revoke_token(token_id: TokenId, principal: Caller, svc: Svc, request: Request) -> dict[str, Any]:
    info = svc.credentials.revoke_token(principal, token_id)
    request.app.state.tokens.forget()
    return token(info, svc.clock.now())


@router.get("/audit/verify", tags=["audit"], response_model=models.AuditVerifyOut)
def verify_audit(principal: Caller, svc: Svc) -> dict[str, Any]:
    """Recompute the audit log's hash chain (admin) and name the first entry where it breaks."""
    result = svc.audit.verify(principal)
    return outputs.plain(result)  # type: ignore[no-any-return]


@router.get("/audit/checkpoints", tags=["audit"], openapi_extra=OPEN, response_model=models.CheckpointsOut)
def list_checkpoints(principal: Caller, svc: Svc) -> dict[str, Any]:
    """Every signed checkpoint of the audit log and the public keys that verify them. Public: keep
    a copy, and `xinyong audit verify --checkpoints FILE` checks the log against it."""
    return svc.audit.checkpoints(principal)


@router.post(
    "/audit/checkpoints", tags=["audit"], response_model=models.CheckpointOut, status_code=status.HTTP_201_CREATED
)
def make_checkpoint(principal: Caller, svc: Svc) -> dict[str, Any]:
    """Sign the audit log's head with the platform's key and publish it (admin; a server does it hourly)."""
    made = svc.audit.checkpoint(principal)
    assert made is not None  # only a server's hourly checkpoint may be skipped
    return made.as_dict()


@router.post("/audit/compact", tags=["audit"], response_model=models.AuditCompactOut)
def compact_audit(principal: Caller, svc: Svc) -> dict[str, Any]:
    """Merge the who-looked index's newest runs (admin), so that lookups stay a few seeks; off-peak."""
    return outputs.plain(svc.audit.compact(principal))  # type: ignore[no-any-return]


@router.get(
    "/audit/export",
    tags=["audit"],
    response_class=Response,
    responses={200: {"content": {"text/csv": {"schema": {"type": "string"}}}}},
)
def export_audit(
    principal: Caller,
    svc: Svc,
    first: Annotated[
        dt.date | None,
        Query(alias="from", description="First day (inclusive).", json_schema_extra=models.DAY_SCHEMA),
        BeforeValidator(models.read_day),
    ] = None,
    last: Annotated[
        dt.date | None,
        Query(alias="to", description="Last day (inclusive).", json_schema_extra=models.DAY_SCHEMA),
        BeforeValidator(models.read_day),
    ] = None,
) -> Response:
    """The audit log of a period as CSV, with each entry's hashes (admin)."""
    out = io.StringIO()
    svc.audit.export(principal, out, first=first, last=last)
    return Response(out.getvalue(), media_type="text/csv")
