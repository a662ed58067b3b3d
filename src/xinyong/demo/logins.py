"""The demo's log-ins: a data subject, an officer and an enforcer, made through the service.

`xinyong demo` ends by serving the site; a new user needs someone to log in as. The subject is a
person of the synthetic city who has consented to the points scheme and has a negative record that
counts today and can still be objected to, so that the whole due-process path can be clicked
through. Passwords are made fresh for every demo (and printed once); tokens too.
"""

from __future__ import annotations

import secrets
from typing import Any

from xinyong.errors import XinyongError
from xinyong.rules.clock import Clock
from xinyong.rules.engine import State
from xinyong.security.access import Principal, Role
from xinyong.service import Service
from xinyong.storage.store import Store

DEMO_ADMIN = Principal(Role.ADMIN, "demo", channel="cli")
POINTS_SCHEME = "city-points"
ENFORCER_AGENCY = "civil-aviation"


def choose_subject(service: Service, scheme: str = POINTS_SCHEME) -> str | None:
    """A person with a score under `scheme` and at least one counting, undisputed negative record."""
    best: tuple[int, str] | None = None
    for subject, states in service.questions.population(DEMO_ADMIN):
        state = states.get(scheme)
        if subject.kind != "person" or not isinstance(state, State):
            continue
        negative = [c.record for c in state.contributions if c.kind == "record" and c.points < 0 and c.record]
        # Several records make the explanation and the timeline worth reading.
        interest = len(state.contributions)
        if not negative or (best is not None and interest <= best[0]):
            continue
        if all(service.records.show(DEMO_ADMIN, str(r), purpose="demo log-in").view().disputed for r in negative):
            continue
        best = (interest, subject.id)
        if interest >= 4:
            break
    return best[1] if best else None


def create(store: Store, clock: Clock, *, subject: str | None = None) -> dict[str, Any]:
    """Make the demo's credentials; returns what to print (passwords and tokens are shown once)."""
    service = Service(store, clock, cache_answers=False)
    chosen = subject or choose_subject(service)
    logins: dict[str, Any] = {}
    officer_password = secrets.token_urlsafe(9)
    service.credentials.set_password(DEMO_ADMIN, "officer", officer_password, Role.OFFICER, label="officer")
    officer_token, _ = service.credentials.create_token(DEMO_ADMIN, Role.OFFICER, label="officer-token")
    logins["officer"] = {"login": "officer", "password": officer_password, "token": officer_token}
    if chosen is not None:
        subject_password = secrets.token_urlsafe(9)
        service.credentials.set_password(
            DEMO_ADMIN, chosen, subject_password, Role.SUBJECT, subject=chosen, label="subject"
        )
        subject_token, _ = service.credentials.create_token(
            DEMO_ADMIN, Role.SUBJECT, subject=chosen, label="subject-token"
        )
        logins["subject"] = {"login": chosen, "password": subject_password, "token": subject_token}
    try:
        enforcer_token, _ = service.credentials.create_token(
            DEMO_ADMIN, Role.ENFORCER, agency=ENFORCER_AGENCY, label=f"enforcer-{ENFORCER_AGENCY}"
        )
        logins["enforcer"] = {"agency": ENFORCER_AGENCY, "token": enforcer_token}
    except XinyongError:  # pragma: no cover - the agency is named by the shipped schemes
        pass
    return logins
