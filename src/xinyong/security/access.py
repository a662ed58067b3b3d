"""Access control: who may do what, as data, and nothing allowed unless a rule says so.

A caller is a `Principal`: a role, plus the agency (for sources and enforcers) or the subject (for
a data subject) its token is bound to. `RULES` maps (role, action) to a `Scope` that says how far
the permission reaches: any resource, the caller's own subject, its own agency's measures, its
source's authorised behaviours, the public view, or aggregates only. Every role also has what
the public has, so a rule for "public" reaches every caller.

Deciding is pure: `decide` needs the principal, the action and the facts about the resource
(whose subject, which agency implements the measure), which the service layer looks up. The
authorisation-matrix test iterates every role × every action through the same function.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from functools import cached_property

from xinyong.errors import XinyongError


class Role(StrEnum):
    ADMIN = "admin"
    OFFICER = "officer"
    SOURCE = "source"
    ENFORCER = "enforcer"
    SUBJECT = "subject"
    ANALYST = "analyst"
    PUBLIC = "public"


class Action(StrEnum):
    SCHEMES_READ = "schemes.read"
    SCHEMES_LOAD = "schemes.load"
    SOURCES_MANAGE = "sources.manage"
    SUBJECTS_SEARCH = "subjects.search"
    SUBJECTS_READ = "subjects.read"
    SUBJECTS_IMPORT = "subjects.import"
    RECORDS_SUBMIT = "records.submit"
    RECORDS_READ = "records.read"
    IMPORTS_READ = "imports.read"
    RECORDS_CORRECT = "records.correct"
    RECORDS_REVOKE = "records.revoke"
    RECORDS_END = "records.end"
    STATE_READ = "state.read"
    CHECKS_ASK = "checks.ask"
    REPORTS_READ = "reports.read"
    REPORTS_VERIFY = "reports.verify"
    LISTS_READ = "lists.read"
    OBJECTIONS_FILE = "objections.file"
    OBJECTIONS_DECIDE = "objections.decide"
    OBJECTIONS_READ = "objections.read"
    CONSENT_CHANGE = "consent.change"
    AGGREGATES_READ = "aggregates.read"
    AUDIT_READ = "audit.read"
    AUDIT_WHO_LOOKED = "audit.who_looked"
    AUDIT_COMPACT = "audit.compact"
    AUDIT_CHECKPOINT = "audit.checkpoint"
    AUDIT_CHECKPOINTS = "audit.checkpoints"
    TOKENS_MANAGE = "tokens.manage"
    CONTACTS_CHANGE = "contacts.change"
    NOTICES_DELIVER = "notices.deliver"
    EFFECTS_REBUILD = "effects.rebuild"
    SEARCH_REBUILD = "search.rebuild"
    STATE_BATCH = "state.batch"
    FEEDS_KEY = "feeds.key"
    FEEDS_WEBHOOK = "feeds.webhook"
    FEEDS_PUBLISH = "feeds.publish"
    FEEDS_READ = "feeds.read"
    FEEDS_ACK = "feeds.ack"
    FEEDS_DELAYS = "feeds.delays"
    LAB_AGGREGATES = "lab.aggregates"  # the policy lab's figures: simulate, fairness
    LAB_SUBJECTS = "lab.subjects"  # its per-subject before/after files (`simulate --out`)
    KEYS_ROTATE = "keys.rotate"


class Scope(StrEnum):
    ANY = "any"  # every resource, full view
    OWN_SUBJECT = "own_subject"  # only the subject the token is bound to, full view
    OWN_AGENCY = "own_agency"  # only measures (or imports) of the token's agency
    AUTHORISED_BEHAVIOURS = "authorised_behaviours"  # a source's own records, of behaviours it may submit
    PUBLIC = "public"  # the public view: published schemes, organisations' public records, masked ids
    AGGREGATE = "aggregate"  # counts only, no cell under XINYONG_MIN_CELL subjects


# The rules. A pair that is absent is denied. Read it as "ROLE may ACTION within SCOPE".
A, R, S = Action, Role, Scope
RULES: dict[tuple[Role, Action], Scope] = {
    # the public (and so every caller)
    (R.PUBLIC, A.SCHEMES_READ): S.ANY,
    (R.PUBLIC, A.SUBJECTS_SEARCH): S.PUBLIC,
    (R.PUBLIC, A.SUBJECTS_READ): S.PUBLIC,
    (R.PUBLIC, A.REPORTS_READ): S.PUBLIC,
    (R.PUBLIC, A.LISTS_READ): S.PUBLIC,
    (R.PUBLIC, A.AUDIT_CHECKPOINTS): S.ANY,  # signed heads of the log: published for anyone to keep
    (R.PUBLIC, A.FEEDS_DELAYS): S.ANY,  # how fast each agency lifts ended measures: published
    (R.PUBLIC, A.REPORTS_VERIFY): S.ANY,  # valid or superseded, and the kinds of change: nothing more
    # the credit office's administrator: everything
    **{(R.ADMIN, action): S.ANY for action in Action},
    # officers: due process and reading everything it needs, but no tokens, schemes or sources
    **{
        (R.OFFICER, action): S.ANY
        for action in (
            A.SUBJECTS_SEARCH,
            A.SUBJECTS_READ,
            A.RECORDS_READ,
            A.IMPORTS_READ,
            A.RECORDS_CORRECT,
            A.RECORDS_REVOKE,
            A.RECORDS_END,
            A.STATE_READ,
            A.CHECKS_ASK,
            A.REPORTS_READ,
            A.LISTS_READ,
            A.OBJECTIONS_FILE,
            A.OBJECTIONS_DECIDE,
            A.OBJECTIONS_READ,
            A.AGGREGATES_READ,
        )
    },
    # source agencies: submit what they are authorised for, read back their own submissions
    (R.SOURCE, A.RECORDS_SUBMIT): S.AUTHORISED_BEHAVIOURS,
    (R.SOURCE, A.IMPORTS_READ): S.OWN_AGENCY,
    # enforcers: the one question, for the measures their agency implements, and their feed
    (R.ENFORCER, A.CHECKS_ASK): S.OWN_AGENCY,
    (R.ENFORCER, A.FEEDS_READ): S.OWN_AGENCY,
    (R.ENFORCER, A.FEEDS_ACK): S.OWN_AGENCY,
    # data subjects: everything about themselves, and contesting it
    **{
        (R.SUBJECT, action): S.OWN_SUBJECT
        for action in (
            A.SUBJECTS_READ,
            A.RECORDS_READ,
            A.STATE_READ,
            A.CHECKS_ASK,
            A.REPORTS_READ,
            A.OBJECTIONS_FILE,
            A.OBJECTIONS_READ,
            A.CONSENT_CHANGE,
            A.AUDIT_WHO_LOOKED,
        )
    },
    # analysts: aggregates only, the policy lab's included (never its per-subject files)
    (R.ANALYST, A.AGGREGATES_READ): S.AGGREGATE,
    (R.ANALYST, A.LAB_AGGREGATES): S.AGGREGATE,
}
del A, R, S

# Roles whose tokens must name an agency, or a subject.
AGENCY_ROLES = frozenset({Role.SOURCE, Role.ENFORCER})
SUBJECT_ROLES = frozenset({Role.SUBJECT})
# The longest actor an audit entry (and every ledger row's `actor`) holds: `storage.tables`' columns.
ACTOR_LENGTH = 128


class Unauthenticated(XinyongError):
    """No valid credentials where the rules need some (HTTP 401)."""

    http_status = 401
    code = "denied"


class Forbidden(XinyongError):
    """Valid credentials, but no rule allows this (HTTP 403)."""

    http_status = 403
    code = "denied"


@dataclass(frozen=True)
class Principal:
    """Who is asking: a role, the agency or subject the token is bound to, and a name for the logs."""

    role: Role
    name: str
    agency: str | None = None
    subject: str | None = None
    token_id: str | None = None
    channel: str = "api"

    # Cached: a principal lives in the token cache and is asked for these on every check.
    @cached_property
    def audit_actor(self) -> str:
        """`channel:name`, at most `ACTOR_LENGTH` characters (the actor columns' size): a longer
        name (a token's label may be 128 characters, and the command line takes any) is cut short
        and ends with its token's id, so that the entry still names who it was."""
        actor = f"{self.channel}:{self.name}"
        if len(actor) <= ACTOR_LENGTH:
            return actor
        tail = f"…[{self.token_id}]" if self.token_id else "…"
        return actor[: ACTOR_LENGTH - len(tail)] + tail

    @cached_property
    def audit_role(self) -> str:
        bound = self.agency or self.subject
        return f"{self.role.value}:{bound}" if bound else self.role.value


PUBLIC = Principal(Role.PUBLIC, "anonymous")


def parse_role(text: str) -> tuple[Role, str | None]:
    """A role as written on the command line: `officer`, or `source:court` with its agency."""
    name, _, bound = text.partition(":")
    try:
        role = Role(name)
    except ValueError:
        known = ", ".join(r.value for r in Role if r is not Role.PUBLIC)
        raise ValueError(f"{name!r} is not a role; use one of {known}") from None
    if role is Role.PUBLIC:
        raise ValueError("the public needs no token")
    return role, bound or None


def scope_for(principal: Principal, action: Action) -> Scope | None:
    """The scope a rule gives this caller for this action, or None (denied)."""
    return RULES.get((principal.role, action))


def public_scope(action: Action) -> Scope | None:
    return RULES.get((Role.PUBLIC, action))


def refusal(principal: Principal, message: str) -> XinyongError:
    """Not allowed: "authenticate" to the public (a token might allow it), "forbidden" to others."""
    return Unauthenticated(message) if principal.role is Role.PUBLIC else Forbidden(message)


def gate(principal: Principal, action: Action) -> None:
    """Refuse at once when no rule (the role's own or the public's) mentions the action at all, so
    that an unauthorised caller learns nothing about the resource (not even whether it exists)."""
    if scope_for(principal, action) is not None or public_scope(action) is not None:
        return
    if principal.role is Role.PUBLIC:
        raise Unauthenticated(f"{action.value} needs a bearer token")
    raise Forbidden(f"role {principal.role.value} may not {action.value}")


def decide(
    principal: Principal,
    action: Action,
    *,
    subject: str | None = None,
    agency: str | None = None,
    behaviours: frozenset[str] | None = None,
    authorised: frozenset[str] | None = None,
) -> Scope:
    """The scope under which the caller may act on this resource, or Forbidden/Unauthenticated.

    `subject` is the data subject the resource belongs to; `agency` the agency a measure is
    implemented by (or an import was submitted by); `behaviours` the codes a submission carries
    and `authorised` those the caller's source may submit. The role's own rule is tried first;
    when it does not reach the resource, the public's rule still may (a subject reading another
    organisation's profile gets the public view).
    """
    own = scope_for(principal, action)
    if own is not None and _reaches(principal, own, subject, agency, behaviours, authorised):
        return own
    public = public_scope(action)
    if public is not None:
        return public
    if principal.role is Role.PUBLIC:
        raise Unauthenticated(f"{action.value} needs a bearer token")
    if own is None:
        raise Forbidden(f"role {principal.role.value} may not {action.value}")
    raise Forbidden(f"{principal.audit_role} may not {action.value} here: {_why_not(principal, own)}")


def _reaches(
    principal: Principal,
    scope: Scope,
    subject: str | None,
    agency: str | None,
    behaviours: frozenset[str] | None,
    authorised: frozenset[str] | None,
) -> bool:
    if scope in (Scope.ANY, Scope.PUBLIC, Scope.AGGREGATE):
        return True
    if scope is Scope.OWN_SUBJECT:
        return principal.subject is not None and subject == principal.subject
    if scope is Scope.OWN_AGENCY:
        return principal.agency is not None and agency == principal.agency
    if scope is Scope.AUTHORISED_BEHAVIOURS:
        return (
            principal.agency is not None
            and agency == principal.agency
            and behaviours is not None
            and authorised is not None
            and behaviours <= authorised
        )
    return False  # pragma: no cover - every Scope is handled above


def _why_not(principal: Principal, scope: Scope) -> str:
    if scope is Scope.OWN_SUBJECT:
        return "a subject's token reaches only its own subject"
    if scope is Scope.OWN_AGENCY:
        return f"only what agency {principal.agency} implements or submitted"
    if scope is Scope.AUTHORISED_BEHAVIOURS:
        return f"source {principal.agency} may submit only its own records of the behaviours it is authorised for"
    return "no rule allows it"
