"""Request bodies and response shapes at the HTTP edge; the OpenAPI document is built from these.

Kept in one module past ~500 lines: they are the API's published vocabulary, read side by side
with the OpenAPI document, and share validators (identifiers, amounts, days) that one place keeps
alike for every route.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable
from decimal import Decimal
from typing import Annotated, Any, Literal, TypeVar

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainValidator,
    WithJsonSchema,
    field_validator,
)
from pydantic_core import PydanticCustomError

from xinyong.errors import BadInput
from xinyong.rules import values
from xinyong.rules.values import FIRST_DAY, LAST_DAY

__all__ = ["FIRST_DAY", "LAST_DAY"]

# The days the platform counts with (`rules.values.day`), said in the OpenAPI document (JSON Schema
# has no minimum for dates).
DAY_PATTERN = r"^(19[0-9]{2}|2[01][0-9]{2})-[0-9]{2}-[0-9]{2}"
DAY_SCHEMA: dict[str, Any] = {"pattern": DAY_PATTERN + "$"}
INSTANT_SCHEMA: dict[str, Any] = {"pattern": DAY_PATTERN + "T"}

# A record as a caller names it: its id (digits 0-9 only: `str.isdigit` would also take "²", which
# is no number) or SOURCE:DOCUMENT_REF.
RECORD_PATTERN = r"^(?:[0-9]+|[^:]*:[\s\S]*)$"

_T = TypeVar("_T")


def by_rule(read: Callable[..., _T], value: Any, field: str) -> _T:
    """A value read by its one rule (`rules.values`), a refusal becoming pydantic's error for the
    field, so that the answer is the usual 422 problem+json pointing at it, with the rule's reason
    (the very words the command line and the file import give)."""
    try:
        return read(value, where=field)
    except BadInput as exc:
        why = exc.problems[0].why if exc.problems else exc.message
        raise PydanticCustomError("value_error", why) from None


def day_in_range(value: dt.date | None) -> dt.date | None:
    """A day already read (by pydantic) held to the platform's range of days."""
    return None if value is None else by_rule(values.day, value, "day")


def instant_in_range(value: dt.datetime | None) -> dt.datetime | None:
    if value is not None:
        day_in_range(value.date())
    return value


def read_day(value: Any) -> Any:
    """A day in a body or a query: YYYY-MM-DD only, as everywhere (`rules.values.day`); pydantic
    alone would also take 2026-03-01T00:00:00. Days already read pass through (responses)."""
    if value is None:
        return None
    return by_rule(values.day, value, "day")


def read_amount(value: Any) -> Decimal | None:
    """An amount as a JSON string ("12000.50"): `rules.values.amount`. A JSON number is refused,
    because a binary float is not the decimal the sender wrote (0.1 is not one tenth)."""
    if value is None:
        return None
    if not isinstance(value, str):
        raise PydanticCustomError("value_error", 'give the amount as a string, e.g. "12000.50"')
    return by_rule(values.amount, value, "amount")


Day = Annotated[dt.date, BeforeValidator(read_day), Field(json_schema_extra=DAY_SCHEMA)]
OptionalDay = Annotated[dt.date | None, BeforeValidator(read_day), Field(json_schema_extra=DAY_SCHEMA)]
Amount = Annotated[
    Decimal | None,
    PlainValidator(read_amount),
    WithJsonSchema(
        {
            "anyOf": [{"type": "string"}, {"type": "null"}],
            "description": "A decimal amount as a string, e.g. 12000.50: 0 ≤ x < 10^16, at most two decimals.",
        }
    ),
]


# What no text field may hold: a NUL (PostgreSQL cannot store one in text) or half of a UTF-16
# surrogate pair (pydantic refuses one already; kept here so that the rule reads whole).
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")


def _storable(value: Any) -> bool:
    if isinstance(value, str):
        return _UNSTORABLE.search(value) is None
    if isinstance(value, list):
        return all(_storable(v) for v in value)
    return True


class Body(BaseModel):
    model_config = ConfigDict(extra="forbid")

    @field_validator("*", mode="after")
    @classmethod
    def _no_unstorable_text(cls, value: Any) -> Any:
        if not _storable(value):
            raise PydanticCustomError("value_error", "text must not contain a NUL byte or a lone surrogate")
        return value


class SchemeIn(Body):
    yaml: str = Field(min_length=1, description="The scheme file's YAML text, as it would be given to `scheme load`.")


class SourceIn(Body):
    agency: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_-]+$")
    behaviours: list[str] = Field(min_length=1, description="Behaviour codes the agency may submit.")
    title: str | None = None


class RecordIn(Body):
    source: str | None = Field(
        None, max_length=64, description="The submitting agency; a source token's own agency when omitted."
    )
    subject_id: str = Field(min_length=1, max_length=32)
    behaviour: str = Field(min_length=1, max_length=64)
    occurred_on: Day
    document_ref: str = Field(min_length=1, max_length=128)
    amount: str | None = Field(
        None,
        max_length=32,
        description="A decimal amount, e.g. 12000.50: 0 ≤ x < 10^16, at most two decimals. Checked, like "
        "every field here, exactly as a line of an import file is.",
    )
    note: str | None = Field(None, max_length=2000)


class CorrectionIn(Body):
    reason: str = Field(min_length=1, max_length=2000)
    behaviour: str | None = Field(None, max_length=64)
    occurred_on: OptionalDay = None
    amount: Amount = None


class RevocationIn(Body):
    reason: str = Field(min_length=1, max_length=2000)


class EndIn(Body):
    on: Day = Field(description="The day the record's effect ends.")
    reason: Literal["fulfilled", "repaired"]
    note: str | None = Field(None, max_length=2000)


class ObjectionIn(Body):
    record: str = Field(
        min_length=1, max_length=200, pattern=RECORD_PATTERN, description="A record id or SOURCE:DOCUMENT_REF."
    )
    reason: str = Field(min_length=1, max_length=2000)


class DecisionIn(Body):
    outcome: Literal["upheld", "corrected", "revoked"]
    reason: str = Field(min_length=1, max_length=2000)
    behaviour: str | None = Field(None, max_length=64)
    occurred_on: OptionalDay = None
    amount: Amount = None


class ConsentIn(Body):
    scheme: str = Field(min_length=1, max_length=64)
    grant: bool


class TokenIn(Body):
    role: Literal["admin", "officer", "source", "enforcer", "subject", "analyst"]
    agency: str | None = Field(None, max_length=64)
    subject: str | None = Field(None, max_length=32)
    label: str | None = Field(None, max_length=128)
    expires_at: Annotated[
        dt.datetime | None, AfterValidator(instant_in_range), Field(json_schema_extra=INSTANT_SCHEMA)
    ] = None


# --- responses ----------------------------------------------------------------------------------


class ProblemDetail(BaseModel):
    detail: str
    pointer: str | None = Field(None, description="A JSON pointer into the request body (RFC 6901).")
    parameter: str | None = Field(None, description="The query or path parameter at fault.")
    header: str | None = None
    line: int | None = Field(None, description="The line of an uploaded file.")
    column: str | None = Field(None, description="The column of an uploaded file.")
    where: str | None = None


class Problem(BaseModel):
    """RFC 9457 problem details."""

    type: str
    title: str
    status: int
    detail: str
    instance: str | None = None
    errors: list[ProblemDetail] | None = None


def _problem(description: str) -> dict[str, Any]:
    return {
        "model": Problem,
        "description": description,
        "content": {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}},
    }


# Every route may answer with these; each is problem+json.
PROBLEMS: dict[int | str, dict[str, Any]] = {
    400: _problem("The request could not be parsed (malformed JSON, a broken upload)"),
    401: _problem("No token where one is needed, or an invalid, expired or revoked one"),
    403: _problem("The caller's role does not allow this here"),
    404: _problem("No such thing (or none the caller may know of)"),
    409: _problem("Refused by a rule (already decided, already revoked, a deadline, …)"),
    413: _problem("The request body or upload is larger than the limit"),
    422: _problem("Invalid input; each error points at its field"),
    500: _problem("An internal error (details are in the server's log, never in the answer)"),
    503: _problem("The store is unavailable"),
}


class Health(BaseModel):
    status: str


class Ready(BaseModel):
    status: str
    migrated: bool
    revision: list[str]
    expected: list[str]


class SchemeVersionOut(BaseModel):
    scheme: str
    version: str
    title: str
    effective_from: dt.date | None
    loaded_at: dt.datetime
    digest: str
    applies_to: list[str]
    document: dict[str, Any] | None = None


class SchemeOut(BaseModel):
    scheme: str
    versions: list[SchemeVersionOut]


class SchemeLoaded(BaseModel):
    scheme: str
    version: str
    loaded: bool
    digest: str


class SourceOut(BaseModel):
    source: str
    added: list[str]
    behaviours: list[str]


class SubjectHit(BaseModel):
    id: str
    kind: str
    name: str
    legal_representative: str | None
    division: str | None


class CheckBasis(BaseModel):
    lists: list[str]
    grade: str | None
    records: list[int]


class ContestLink(BaseModel):
    """How a client files an objection: beside the words of `contest`, as data."""

    method: str
    href: str
    records: list[int] = Field(description="The records an objection would name (empty when nothing applies).")


class CheckOut(BaseModel):
    """A check's answer. An enforcer's has only subject, measure, as_of, applies, since,
    legal_basis, contest and contest_link; the other fields are for the office and the subject."""

    subject: str
    measure: str
    as_of: dt.date
    applies: bool
    since: dt.date | None
    legal_basis: str
    contest: str
    contest_link: ContestLink | None = None
    title: str | None = None
    implemented_by: str | None = None
    known_at: dt.datetime | None = None
    basis: CheckBasis | None = None


BATCH_CHECK_MAX = 1000


class BatchCheckIn(Body):
    """One measure asked about up to 1,000 subjects at once (a flight manifest)."""

    subjects: list[Annotated[str, Field(max_length=32)]] = Field(
        min_length=1, max_length=BATCH_CHECK_MAX, description="The subjects' ids, as the enforcer holds them."
    )
    as_of: OptionalDay = None


class AnswerError(BaseModel):
    code: str = Field(description="not_found, invalid or denied")
    message: str


class BatchAnswer(BaseModel):
    """One subject's answer, as a single check's, with the id as sent; or that id's error."""

    model_config = ConfigDict(extra="allow")
    subject: str
    applies: bool | None = None
    since: dt.date | None = None
    legal_basis: str | None = None
    contest: str | None = None
    contest_link: ContestLink | None = None
    error: AnswerError | None = None


class BatchCheckOut(BaseModel):
    measure: str
    as_of: dt.date
    answers: list[BatchAnswer]


class EventOut(BaseModel):
    record: str
    event: int
    kind: str


class RecordOut(BaseModel):
    model_config = ConfigDict(extra="allow")
    id: int
    ref: str
    source: str
    subject: str
    behaviour: str
    occurred_on: Day
    status: str
    events: list[dict[str, Any]]


class RecordSubmitted(BaseModel):
    record: RecordOut
    created: bool


class ImportJobOut(BaseModel):
    id: int
    kind: str
    source: str | None
    file_name: str
    submitted_at: dt.datetime
    submitted_by: str
    status: Literal["succeeded", "failed"]
    imported: int | None
    already_present: int | None
    message: str | None
    problems: list[dict[str, Any]]


class ObjectionOut(BaseModel):
    id: int
    record: int
    subject: str
    filed_at: dt.datetime
    filed_by: str
    reason: str | None
    deadline: dt.date
    decided_at: dt.datetime | None
    outcome: str | None
    decision_reason: str | None
    overdue: bool


class ConsentOut(BaseModel):
    subject: str
    scheme: str
    consent: Literal["granted", "withdrawn"]
    changed: bool


class TokenOut(BaseModel):
    id: str
    role: str
    agency: str | None
    subject: str | None
    label: str | None
    created_at: dt.datetime
    created_by: str
    expires_at: dt.datetime | None
    revoked_at: dt.datetime | None
    status: str


class TokenCreated(TokenOut):
    token: str = Field(description="The bearer token; shown this once and never again.")


class AuditEntryOut(BaseModel):
    seq: int
    at: dt.datetime
    actor: str
    role: str
    action: str
    subject_id: str | None
    purpose: str | None
    outcome: str
    detail: dict[str, Any] | None


class FeedCarried(BaseModel):
    """A feed version that carried the subject's keyed hash: into an agency's set, or out of it."""

    agency: str
    version: int
    day: str
    cut_at: str
    change: Literal["add", "del"]
    rekeyed: bool = Field(description="Carried because the agency's key changed, not because a measure did.")
    acknowledged_at: str | None


class WhoLooked(BaseModel):
    subject: str
    entries: list[AuditEntryOut]
    feeds: list[FeedCarried] = Field(default_factory=list, description="The feed versions that carried the subject.")


class AuditCompactOut(BaseModel):
    runs_before: int
    runs_after: int
    merged: int
    moved: int


class AuditVerifyOut(BaseModel):
    ok: bool
    entries: int
    head_seq: int
    head_hash: str
    broken_at: int | None
    reason: str | None
    checkpoints: int = Field(description="How many signed checkpoints the log matches.")
    checkpoint: int | None = Field(description="The first checkpoint the log no longer matches.")


class CheckpointOut(BaseModel):
    """A signed head of the audit log (`xinyong audit checkpoint`)."""

    n: int
    at: str
    seq: int = Field(description="The entry it pins: the log's head, its own entry included.")
    hash: str = Field(description="That entry's hash.")
    previous: str = Field(description="The digest of the checkpoint before it (64 zeros for the first).")
    key: str = Field(description="The id of the Ed25519 key that signed it.")
    signature: str = Field(description="Ed25519, base64, over the other fields as canonical JSON.")


class CheckpointsOut(BaseModel):
    checkpoints: list[CheckpointOut]
    keys: dict[str, str] = Field(description="Key id → the Ed25519 public key, base64 (retired keys too).")


class ReportChange(BaseModel):
    record: str = Field(description="The record as the report names it (SOURCE:DOCUMENT_REF).")
    kind: Literal["revoked", "corrected", "ended"]


class VerificationOut(BaseModel):
    report_id: str
    status: Literal["valid", "superseded", "invalid"]
    changes: list[ReportChange]


class KeysOut(BaseModel):
    algorithm: Literal["Ed25519"]
    current: str | None = Field(description="The key that signs now; null before `xinyong init` made one.")
    keys: dict[str, str] = Field(description="Key id → the Ed25519 public key, base64 (retired keys too).")


# --- feeds for enforcer agencies (docs/enforcers.md) ---------------------------------------------


class FeedChange(BaseModel):
    model_config = ConfigDict(populate_by_name=True)

    add: list[str] = Field(description="Keyed hashes (lowercase hex HMAC-SHA-256) that enter the set.")
    removed: list[str] = Field(alias="del", description="Keyed hashes that leave the set.")


class FeedVersionOut(BaseModel):
    """A feed version exactly as signed: the signature (Ed25519, base64, by the key `key`, whose
    public half is published at /v1/audit/checkpoints) covers every other member as canonical JSON."""

    model_config = ConfigDict(populate_by_name=True)

    agency: str
    version: int = Field(description="1, 2, … per agency.")
    day: str = Field(description="The day whose measures it reflects (YYYY-MM-DD).")
    cut_at: str = Field(description="When it was cut: what was known then.")
    feed_key: int = Field(description="Which of the agency's feed keys made its hashes (1, 2, … per rotation).")
    previous: str = Field(description="SHA-256 of the version before it as signed (64 zeros for the first).")
    add: list[str] = Field(description="Hashes of subjects now under at least one of the agency's measures.")
    removed: list[str] = Field(alias="del", description="Hashes of subjects under none of them any more.")
    measures: dict[str, FeedChange] = Field(description="SCHEME/MEASURE → what entered and left that measure.")
    key: str = Field(description="The id of the platform's Ed25519 key that signed it.")
    signature: str


class FeedOut(BaseModel):
    agency: str
    versions: list[FeedVersionOut]


class FeedAcknowledged(BaseModel):
    agency: str
    version: int
    acknowledged_at: dt.datetime = Field(description="When the version was first acknowledged.")
    acknowledged: int = Field(description="Versions this acknowledgement covered that were not acknowledged before.")


class AgencyDelays(BaseModel):
    agency: str
    removals: int = Field(description="Subjects its feed removed (measures ended), ever.")
    acknowledged: int
    p50_seconds: float | None = Field(description="Median time from a measure ending to the acknowledgement.")
    p90_seconds: float | None
    max_seconds: float | None
    unacknowledged: int
    late: int = Field(description="Unacknowledged removals older than the threshold (`late_after_seconds`).")
    oldest_unacknowledged_seconds: float | None
    versions: int
    newest_day: str | None
    newest_acknowledged: int | None


class DelistingOut(BaseModel):
    as_of: dt.datetime
    late_after_seconds: float
    agencies: list[AgencyDelays]
