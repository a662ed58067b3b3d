"""A notice as text in one language: a subject line and a plain-text body, from its facts."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from xinyong.due_process.notices.facts import RECORDED
from xinyong.i18n import N_, Text, language
from xinyong.rules.records import (
    CORRECTED,
    DECIDED,
    DISPUTED,
    ENDED,
    REPAIR_APPLIED,
    REPAIR_DECIDED,
    REVOKED,
)

if TYPE_CHECKING:
    from xinyong.due_process.notices.inbox import Notice


@dataclass(frozen=True)
class Rendered:
    """A notice as text in one language: a subject line and a plain-text body."""

    language: str
    subject: str
    body: str


HEADLINES = {
    RECORDED: N_("A record about you was recorded: %(title)s"),
    CORRECTED: N_("A record about you was corrected: %(title)s"),
    REVOKED: N_("A record about you was revoked: %(title)s"),
    ENDED: N_("A record about you no longer counts: %(title)s"),
    DISPUTED: N_("Your objection was received: %(title)s"),
    DECIDED: N_("Your objection was decided: %(title)s"),
    REPAIR_APPLIED: N_("Your repair application was received: %(title)s"),
    REPAIR_DECIDED: N_("Your repair application was decided: %(title)s"),
}


OUTCOMES = {
    "upheld": N_("upheld: the record stands"),
    "corrected": N_("corrected: the record was changed"),
    "revoked": N_("revoked: the record never had any effect"),
    "approved": N_("approved: the record's effect ends"),
    "refused": N_("refused: the record keeps its effect"),
    "fulfilled": N_("the obligation was fulfilled"),
    "repaired": N_("a repair was approved"),
}


LIST_KINDS = {"black": N_("black list"), "red": N_("red list"), "watch": N_("watch list")}


# After these the record's effect is settled for good: its notice neither claims an effect nor
# invites an objection (a revoked record never counted; an ended one no longer does).
SETTLED = ("revoked", "ended")
# Notices that answer the subject's own objection: they do not invite another one.
ANSWERS = (DISPUTED, DECIDED)


def render(notice: Notice | dict[str, Any], lang: str | None = None) -> Rendered:
    """The notice's subject line and body in a language (default: XINYONG_LANGUAGE). The subject
    line is the title; the body does not repeat it."""
    facts = notice if isinstance(notice, dict) else notice.facts
    _ = Text(language(lang))
    record = facts["record"]
    event = facts.get("event") or {}
    title = _.title(record)
    kind = facts["kind"]
    headline = _(HEADLINES[kind], title=title)
    lines = [
        _(
            "Record %(ref)s from %(source)s: %(title)s (%(code)s), occurred on %(occurred)s.",
            ref=record["ref"],
            source=record["source"],
            title=title,
            code=record["behaviour"],
            occurred=_.day(record["occurred_on"]),
        ),
        _recorded_line(_, record),
    ]
    if record.get("legal_basis"):
        lines.append(_("Legal basis: %(basis)s", basis=_.basis(record)))
    lines.extend(_event_lines(_, kind, event))
    lines.append("")
    settled = record["status"] in SETTLED
    for scheme in facts["schemes"]:
        lines.extend(_settled_lines(_, scheme, record["status"]) if settled else _scheme_lines(_, scheme))
    lines.append("")
    if settled:
        lines.append(_("Nothing more is needed from you."))
    elif kind not in ANSWERS:
        lines.extend(_objection_lines(_, facts))
    return Rendered(_.lang, headline, "\n".join(lines).strip() + "\n")


def _recorded_line(_: Text, record: dict[str, Any]) -> str:
    """Who put the record in: the source itself, or an officer on its behalf."""
    actor, source = record["recorded_by"], record["source"]
    if actor.startswith("source:"):
        return _("Recorded on %(day)s by %(source)s.", day=_.day(record["recorded_at"]), source=source)
    return _(
        "Recorded on %(day)s by %(actor)s for %(source)s.",
        day=_.day(record["recorded_at"]),
        actor=actor,
        source=source,
    )


def _event_lines(_: Text, kind: str, event: dict[str, Any]) -> list[str]:
    lines = []
    if kind == CORRECTED or (kind == DECIDED and event.get("outcome") == "corrected"):
        changes = []
        if event.get("behaviour"):
            changes.append(_("behaviour %(code)s", code=event["behaviour"]))
        if event.get("occurred_on"):
            changes.append(_("occurred on %(day)s", day=_.day(event["occurred_on"])))
        if event.get("amount"):
            changes.append(_("amount %(amount)s", amount=event["amount"]))
        lines.append(_("Corrected to: %(changes)s.", changes=_(", ").join(changes)))
    if kind == ENDED:
        outcome = _.label(OUTCOMES, event.get("outcome"))
        lines.append(_("Its effect ends on %(day)s: %(why)s.", day=_.day(event.get("effective_on")), why=outcome))
    if kind == DISPUTED:
        if event.get("outcome") == "officer":
            filed = _("Objection %(id)s was filed for you by %(actor)s of the credit office.", **event)
        else:
            filed = _("You filed objection %(id)s.", id=event["id"])
        lines.append(filed + " " + _("The credit office must decide it by %(day)s.", day=_.day(event.get("due_on"))))
    if kind == REPAIR_APPLIED:
        lines.append(
            _(
                "Repair application %(id)s was received; the credit office must decide it by %(day)s.",
                id=event["id"],
                day=_.day(event.get("due_on")),
            )
        )
    if kind in (DECIDED, REPAIR_DECIDED):
        outcome = _.label(OUTCOMES, event.get("outcome"))
        lines.append(_("Decision by %(actor)s: %(outcome)s.", actor=event.get("actor", ""), outcome=outcome))
    if kind in (CORRECTED, REVOKED, DECIDED, REPAIR_DECIDED) and event.get("reason"):
        lines.append(_("Reasons: %(reason)s", reason=event["reason"]))
    return lines


def _settled_lines(_: Text, scheme: dict[str, Any], status: str) -> list[str]:
    if status == "revoked":
        return [
            _("Under %(scheme)s it has no effect: the record is revoked and never counted.", scheme=_.title(scheme))
        ]
    return [_("Under %(scheme)s it no longer counts.", scheme=_.title(scheme))]


def _scheme_lines(_: Text, scheme: dict[str, Any]) -> list[str]:
    if scheme["points"]:
        lines = [_("Under %(scheme)s: %(points)s points.", scheme=_.title(scheme), points=_.points(scheme["points"]))]
    else:
        lines = [_("Under %(scheme)s:", scheme=_.title(scheme))]
    for item in scheme["lists"]:
        lines.append(
            "  " + _("It feeds the %(kind)s %(title)s.", kind=_.label(LIST_KINDS, item["kind"]), title=_.title(item))
        )
    for measure in scheme["measures"]:
        lines.append(
            "  "
            + _(
                "Measure that follows: %(title)s (applied by %(agency)s; %(basis)s).",
                title=_.title(measure),
                agency=measure["implemented_by"],
                basis=_.basis(measure),
            )
        )
    if scheme["held"]:
        lines.append("  " + _("It has no effect while the objection is undecided."))
    elif scheme["takes_effect_on"]:
        lines.append(
            "  "
            + _(
                "It takes effect on %(start)s and counts until %(until)s.",
                start=_.day(scheme["takes_effect_on"]),
                until=_.day(scheme["until"]),
            )
        )
    else:
        lines.append("  " + _("It has no effect under this scheme."))
    if scheme.get("repair_possible_from"):
        lines.append(
            "  "
            + _(
                "You may apply for repair from %(day)s, in the credit portal or at the credit office.",
                day=_.day(scheme["repair_possible_from"]),
            )
        )
    return lines


def _objection_lines(_: Text, facts: dict[str, Any]) -> list[str]:
    """How to object, in words a person can act on: where, which record and by when."""
    where = _(
        "In the credit portal, open “My credit report” and choose “Object” beside record %(ref)s; "
        "or go to the credit office with the reference %(ref)s.",
        ref=facts["record"]["ref"],
    )
    if facts.get("object_by"):
        when = _(
            "How to object: object by %(day)s and the record has no effect until the objection is decided.",
            day=_.day(facts["object_by"]),
        )
    else:
        when = _("How to object: you may object to this record at any time.")
    deadline = _("The credit office must decide within %(days)s working days.", days=facts["objection_deadline"])
    return [when, where, deadline]
