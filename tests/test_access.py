"""The access rules as data: every role × every action, and how far each scope reaches."""

from __future__ import annotations

import pytest

from xinyong.security.access import (
    RULES,
    Action,
    Forbidden,
    Principal,
    Role,
    Scope,
    Unauthenticated,
    decide,
    gate,
    parse_role,
)

PRINCIPALS = {
    Role.ADMIN: Principal(Role.ADMIN, "a"),
    Role.OFFICER: Principal(Role.OFFICER, "o"),
    Role.SOURCE: Principal(Role.SOURCE, "s", agency="court"),
    Role.ENFORCER: Principal(Role.ENFORCER, "e", agency="civil-aviation"),
    Role.SUBJECT: Principal(Role.SUBJECT, "p", subject="P1"),
    Role.ANALYST: Principal(Role.ANALYST, "n"),
    Role.PUBLIC: Principal(Role.PUBLIC, "anonymous"),
}
WRITES = {
    Action.SCHEMES_LOAD,
    Action.SOURCES_MANAGE,
    Action.SUBJECTS_IMPORT,
    Action.RECORDS_SUBMIT,
    Action.RECORDS_CORRECT,
    Action.RECORDS_REVOKE,
    Action.RECORDS_END,
    Action.OBJECTIONS_FILE,
    Action.OBJECTIONS_DECIDE,
    Action.CONSENT_CHANGE,
    Action.TOKENS_MANAGE,
    Action.KEYS_ROTATE,
}
# What each role may do at all (its own rules plus the public's); everything else is denied.
PUBLIC = {
    Action.SCHEMES_READ,
    Action.SUBJECTS_SEARCH,
    Action.SUBJECTS_READ,
    Action.REPORTS_READ,
    Action.LISTS_READ,
    Action.AUDIT_CHECKPOINTS,
    Action.FEEDS_DELAYS,
    Action.REPORTS_VERIFY,
}
EXPECTED = {
    Role.ADMIN: set(Action),
    Role.OFFICER: PUBLIC
    | {
        Action.RECORDS_READ,
        Action.IMPORTS_READ,
        Action.RECORDS_CORRECT,
        Action.RECORDS_REVOKE,
        Action.RECORDS_END,
        Action.STATE_READ,
        Action.CHECKS_ASK,
        Action.OBJECTIONS_FILE,
        Action.OBJECTIONS_DECIDE,
        Action.OBJECTIONS_READ,
        Action.AGGREGATES_READ,
    },
    Role.SOURCE: PUBLIC | {Action.RECORDS_SUBMIT, Action.IMPORTS_READ},
    Role.ENFORCER: PUBLIC | {Action.CHECKS_ASK, Action.FEEDS_READ, Action.FEEDS_ACK},
    Role.SUBJECT: PUBLIC
    | {
        Action.RECORDS_READ,
        Action.STATE_READ,
        Action.CHECKS_ASK,
        Action.OBJECTIONS_FILE,
        Action.OBJECTIONS_READ,
        Action.CONSENT_CHANGE,
        Action.AUDIT_WHO_LOOKED,
    },
    Role.ANALYST: PUBLIC | {Action.AGGREGATES_READ, Action.LAB_AGGREGATES},
    Role.PUBLIC: PUBLIC,
}


@pytest.mark.parametrize("role", list(Role))
@pytest.mark.parametrize("action", list(Action))
def test_every_role_and_action(role: Role, action: Action) -> None:
    principal = PRINCIPALS[role]
    if action in EXPECTED[role]:
        gate(principal, action)
        return
    error = Unauthenticated if role is Role.PUBLIC else Forbidden
    with pytest.raises(error):
        gate(principal, action)
    with pytest.raises(error):
        decide(principal, action, subject="P1", agency="court")


def test_the_public_never_writes() -> None:
    assert not {action for (role, action) in RULES if role is Role.PUBLIC} & WRITES


def test_own_subject_reaches_only_the_own_subject() -> None:
    me = PRINCIPALS[Role.SUBJECT]
    assert decide(me, Action.STATE_READ, subject="P1") is Scope.OWN_SUBJECT
    with pytest.raises(Forbidden, match="only its own subject"):
        decide(me, Action.STATE_READ, subject="P2")
    # where the public may look, another subject gets the public view rather than a refusal
    assert decide(me, Action.REPORTS_READ, subject="P2") is Scope.PUBLIC
    assert decide(me, Action.REPORTS_READ, subject="P1") is Scope.OWN_SUBJECT


def test_an_enforcer_asks_only_about_its_agency_s_measures() -> None:
    aviation = PRINCIPALS[Role.ENFORCER]
    assert decide(aviation, Action.CHECKS_ASK, subject="P1", agency="civil-aviation") is Scope.OWN_AGENCY
    with pytest.raises(Forbidden):
        decide(aviation, Action.CHECKS_ASK, subject="P1", agency="railway")
    with pytest.raises(Forbidden):
        decide(aviation, Action.CHECKS_ASK, subject="P1", agency=None)


def test_a_source_submits_only_its_own_authorised_behaviours() -> None:
    court = PRINCIPALS[Role.SOURCE]
    codes = frozenset({"COURT.DEFAULT"})
    allowed = frozenset({"COURT.DEFAULT", "COURT.EVADE_ENFORCEMENT"})
    scope = decide(court, Action.RECORDS_SUBMIT, agency="court", behaviours=codes, authorised=allowed)
    assert scope is Scope.AUTHORISED_BEHAVIOURS
    with pytest.raises(Forbidden):
        decide(court, Action.RECORDS_SUBMIT, agency="tax", behaviours=codes, authorised=allowed)
    with pytest.raises(Forbidden):
        decide(
            court,
            Action.RECORDS_SUBMIT,
            agency="court",
            behaviours=frozenset({"TAX.EVASION"}),
            authorised=allowed,
        )


def test_admin_reaches_everything_and_analysts_only_aggregates() -> None:
    assert all(RULES[(Role.ADMIN, action)] is Scope.ANY for action in Action)
    assert {a for (r, a) in RULES if r is Role.ANALYST} == {Action.AGGREGATES_READ, Action.LAB_AGGREGATES}
    assert RULES[(Role.ANALYST, Action.AGGREGATES_READ)] is Scope.AGGREGATE
    assert RULES[(Role.ANALYST, Action.LAB_AGGREGATES)] is Scope.AGGREGATE


def test_roles_are_parsed_with_their_binding() -> None:
    assert parse_role("source:court") == (Role.SOURCE, "court")
    assert parse_role("officer") == (Role.OFFICER, None)
    with pytest.raises(ValueError, match="not a role"):
        parse_role("king")
    with pytest.raises(ValueError, match="no token"):
        parse_role("public")


def test_audit_names() -> None:
    assert PRINCIPALS[Role.ENFORCER].audit_role == "enforcer:civil-aviation"
    assert Principal(Role.ADMIN, "wang", channel="cli").audit_actor == "cli:wang"
