"""Who looked, as a person reads it: the subject's own visits gathered into one line a day, the
rest one line each, with actions, roles, purposes and outcomes in words rather than the audit
log's codes. The log keeps every entry; this only decides how they are shown."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any
from zoneinfo import ZoneInfo

from xinyong.i18n import N_, Text

# The audit log's actions in words (security.access.Action's values).
ACTIONS = {
    "subjects.search": N_("searched for subjects"),
    "subjects.read": N_("read the profile"),
    "records.submit": N_("submitted a record"),
    "records.read": N_("read a record"),
    "records.correct": N_("corrected a record"),
    "records.revoke": N_("revoked a record"),
    "records.end": N_("ended a record"),
    "state.read": N_("read the score and lists"),
    "checks.ask": N_("checked whether a measure applies"),
    "reports.read": N_("read the credit report"),
    "objections.file": N_("filed an objection"),
    "objections.decide": N_("decided an objection"),
    "objections.read": N_("read objections"),
    "consent.change": N_("changed consent"),
    "audit.who_looked": N_("read who looked"),
    "contacts.change": N_("changed contact details"),
    "notices.deliver": N_("delivered notices"),
    "feeds.read": N_("read an agency feed"),
}
ROLES = {
    "admin": N_("administrator"),
    "officer": N_("officer"),
    "subject": N_("data subject"),
    "source": N_("source agency"),
    "enforcer": N_("enforcer"),
    "analyst": N_("analyst"),
    "public": N_("the public"),
}
OUTCOMES = {
    "done": N_("done"),
    "denied": N_("refused: not allowed"),
    "refused": N_("refused"),
    "invalid": N_("refused: invalid request"),
    "not_found": N_("not found"),
    "failed": N_("failed"),
}
# The purposes the platform itself gives; a caller's own words are shown as written.
PURPOSES = {
    "enforcement check": N_("enforcement check"),
    "state inquiry": N_("state inquiry"),
    "credit report": N_("credit report"),
    "profile": N_("profile"),
    "record inquiry": N_("record inquiry"),
    "own report (web)": N_("own report (web)"),
    "consent settings (web)": N_("consent settings (web)"),
    "PDF report (web)": N_("PDF report (web)"),
    "objection queue (web)": N_("objection queue (web)"),
    "command line": N_("command line"),
    "notices inbox": N_("notices inbox"),
    "notice": N_("notice"),
    "who looked": N_("who looked"),
    "objection decision": N_("objection decision"),
    "judgment fulfilled": N_("judgment fulfilled"),
    "demo log-in": N_("demo log-in"),
}


def rows(t: Text, entries: Sequence[dict[str, Any]], subject_id: str, timezone: str) -> list[dict[str, Any]]:
    """The entries newest first, as rows to show: the subject's own reads of a day gathered into
    one row (a visit to /me reads the report and the inbox: two entries a visit, dozens a week),
    every act by anyone else, and the subject's own writes, one row each."""
    zone = ZoneInfo(timezone)
    own_role = f"subject:{subject_id}"
    shown: list[dict[str, Any]] = []
    gathered: dict[dt.date, dict[str, Any]] = {}
    for entry in entries:
        at = dt.datetime.fromisoformat(entry["at"])
        own_read = entry.get("role") == own_role and entry.get("outcome") == "done" and _reads(entry["action"])
        if own_read:
            day = at.astimezone(zone).date()
            if day in gathered:
                gathered[day]["count"] += 1
                gathered[day]["first"] = t.moment(at, timezone)
                continue
            gathered[day] = row = {"own": True, "count": 1, "when": t.moment(at, timezone), "first": None}
            row["who"] = t("you")
            row["what"] = t("you looked at your own data")
            shown.append(row)
            continue
        role, _, bound = str(entry.get("role") or "").partition(":")
        shown.append(
            {
                "own": False,
                "when": t.moment(at, timezone),
                "who": t("you") if entry.get("role") == own_role else entry.get("actor"),
                "role": t.label(ROLES, role) + (f" · {bound}" if bound and bound != subject_id else ""),
                "what": t.label(ACTIONS, entry.get("action")),
                "purpose": t.label(PURPOSES, entry.get("purpose")) if entry.get("purpose") else "—",
                "outcome": t.label(OUTCOMES, entry.get("outcome")),
            }
        )
    return shown


def _reads(action: str) -> bool:
    return action.endswith((".read", ".who_looked", ".search"))
