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


def render(notice: Notice | dict[str, Any], lang: str | None = None) -> Rendered:
    """The notice's subject line and body in a language (default: XINYONG_LANGUAGE)."""
    facts = notice if isinstance(notice, dict) else notice.facts
    _ = Text(language(lang))
    record = facts["record"]
    event = facts.get("event") or {}
    title = _.title(record)
    kind = facts["kind"]
    headline = _(HEADLINES[kind], title=title)
    lines = [headline, ""]
    lines.append(
        _(
            "Record %(ref)s from %(source)s: %(title)s (%(code)s), occurred on %(occurred)s.",
            ref=record["ref"],
            source=record["source"],
            title=title,
            code=record["behaviour"],
            occurred=_.day(record["occurred_on"]),
        )
    )
    lines.append(
        _(
            "Recorded on %(day)s by %(actor)s for %(source)s.",
            day=_.day(record["recorded_at"]),
            actor=record["recorded_by"],
            source=record["source"],
        )
    )
    if record.get("legal_basis"):
        lines.append(_("Legal basis: %(basis)s", basis=record["legal_basis"]))
    lines.extend(_event_lines(_, facts["kind"], event))
    lines.append("")
    for scheme in facts["schemes"]:
        lines.extend(_scheme_lines(_, scheme, record["status"]))
    lines.append("")
    lines.extend(_objection_lines(_, facts))
    return Rendered(_.lang, headline, "\n".join(lines).strip() + "\n")


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
        lines.append(_("Corrected to: %(changes)s.", changes=", ".join(changes)))
    if kind == ENDED:
        outcome = _.label(OUTCOMES, event.get("outcome"))
        lines.append(_("Its effect ends on %(day)s: %(why)s.", day=_.day(event.get("effective_on")), why=outcome))
    if kind == DISPUTED:
        lines.append(
            _(
                "Objection %(id)s was filed by %(actor)s; it must be decided by %(day)s.",
                id=event["id"],
                actor=event.get("actor", ""),
                day=_.day(event.get("due_on")),
            )
        )
    if kind == REPAIR_APPLIED:
        lines.append(
            _(
                "Repair application %(id)s was filed by %(actor)s; it must be decided by %(day)s.",
                id=event["id"],
                actor=event.get("actor", ""),
                day=_.day(event.get("due_on")),
            )
        )
    if kind in (DECIDED, REPAIR_DECIDED):
        outcome = _.label(OUTCOMES, event.get("outcome"))
        lines.append(_("Decision by %(actor)s: %(outcome)s.", actor=event.get("actor", ""), outcome=outcome))
    if kind in (CORRECTED, REVOKED, DECIDED, REPAIR_DECIDED) and event.get("reason"):
        lines.append(_("Reasons: %(reason)s", reason=event["reason"]))
    return lines


def _scheme_lines(_: Text, scheme: dict[str, Any], status: str) -> list[str]:
    lines = [
        _(
            "Under %(scheme)s: %(points)s points.",
            scheme=_.title(scheme),
            points=_.points(scheme["points"]),
        )
    ]
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
                basis=measure["legal_basis"],
            )
        )
    if status == "revoked":
        lines.append("  " + _("It has no effect: the record is revoked."))
    elif scheme["held"]:
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
    if scheme.get("repair_possible_from") and status != "revoked":
        lines.append("  " + _("You may apply for repair from %(day)s.", day=_.day(scheme["repair_possible_from"])))
    return lines


def _objection_lines(_: Text, facts: dict[str, Any]) -> list[str]:
    ref = facts["record"]["ref"]
    lines = []
    if facts.get("object_by"):
        lines.append(
            _(
                "How to object: file an objection by %(day)s and the record has no effect until it is decided.",
                day=_.day(facts["object_by"]),
            )
        )
    else:
        lines.append(_("How to object: you may object to this record at any time."))
    lines.append(
        _(
            "The credit office must decide within %(days)s working days. In the portal, or: "
            "xinyong objections file %(ref)s --reason …",
            days=facts["objection_deadline"],
            ref=ref,
        )
    )
    return lines
