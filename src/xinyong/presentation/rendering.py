"""The credit report as HTML (Jinja2, autoescaped) and PDF (WeasyPrint), in Chinese or English.

`reports.build_report` decides what a report holds and for whom; this module only lays it out, so
the JSON, the HTML page and the PDF always say the same thing. WeasyPrint is imported only when a
PDF is asked for: it needs Pango from the system, and nothing else in xinyong does.
"""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path
from typing import Any

import jinja2
from markupsafe import Markup

from xinyong.errors import BadInput
from xinyong.i18n import N_, Text, language, translations

TEMPLATES = Path(__file__).parent / "templates"

KINDS = {"person": N_("natural person"), "organisation": N_("organisation")}
LIST_KINDS = {"black": N_("black list"), "red": N_("red list"), "watch": N_("watch list")}
STATUSES = {
    "recorded": N_("recorded"),
    "disputed": N_("disputed"),
    "revoked": N_("revoked"),
    "ended": N_("ended"),
}
DATA_CLASSES = {"public": N_("public"), "market": N_("market"), "restricted": N_("restricted")}
OUTCOMES = {
    "upheld": N_("upheld"),
    "corrected": N_("corrected"),
    "revoked": N_("revoked"),
    "approved": N_("approved"),
    "refused": N_("refused"),
}
HOW_TO_OBJECT = N_(
    "You may object to any record yourself: in the credit portal (sign in, open “My credit report” "
    "and choose “Object” beside the record) or at the credit office, giving the record's reference "
    "shown below. The record shows as disputed at once and the office must decide within %(days)s "
    "working days; an objection filed before a record takes effect holds it until the decision. "
    "From a record's repair day (shown beside it) you may also apply, in the portal or at the office, "
    "to end its effect early."
)


NO_CONSENT = N_("No score under this scheme: it scores persons only with their consent, and none is on record.")
NOT_APPLICABLE = N_("No score under this scheme: it does not apply to this kind of subject.")


def why_no_state(t: Text, reason: str | None) -> str:
    """The engine's reason for having no state, in the reader's language (the engine's own words
    are English and name the scheme's fields)."""
    return t(NO_CONSENT) if "consent" in (reason or "") else t(NOT_APPLICABLE)


@lru_cache(maxsize=4)
def environment(lang: str) -> jinja2.Environment:
    """One environment per language, with that language's gettext installed (newstyle: `_()`
    takes keyword values and escapes them)."""
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES),
        autoescape=True,
        extensions=["jinja2.ext.i18n"],
        undefined=jinja2.ChainableUndefined,
    )
    env.install_gettext_translations(translations(lang), newstyle=True)  # type: ignore[attr-defined]
    return env


def html(report: dict[str, Any], lang: str | None = None) -> str:
    """The report as one self-contained HTML page."""
    chosen = language(lang)
    t = Text(chosen)
    titles: dict[str, str] = {}
    for record in report.get("records", []):
        titles.setdefault(record["behaviour"], t.title(record))
    for scheme in report.get("schemes", []):
        for factor in scheme.get("key_factors", []):
            titles.setdefault(factor["behaviour"], t.title(factor))
    return (
        environment(chosen)
        .get_template("report.html")
        .render(
            report=report,
            lang=chosen,
            t=t,
            titles=titles,
            kinds={k: t(v) for k, v in KINDS.items()},
            list_kinds={k: t(v) for k, v in LIST_KINDS.items()},
            statuses={k: t(v) for k, v in STATUSES.items()},
            data_classes={k: t(v) for k, v in DATA_CLASSES.items()},
            outcomes={k: t(v) for k, v in OUTCOMES.items()},
            how_to_object=t(HOW_TO_OBJECT, days=report.get("objection_deadline", 5)),
            why_no_state=lambda reason: why_no_state(t, reason),
            **_seal_parts(report),
        )
    )


def _seal_parts(report: dict[str, Any]) -> dict[str, Markup]:
    """The QR code to the verification page and the report's data for verifiers, for an issued
    report (one with a seal); segno is imported only then."""
    if "report_id" not in report:
        return {}
    import segno

    from xinyong.presentation import sealing

    code = segno.make(report["verify_url"], error="m")
    # segno's SVG is numbers and paths only, with no text of the report in it: safe as markup.
    return {"qr": Markup(code.svg_inline(scale=2)), "embedded": Markup(sealing.embedded(report))}


def pdf(report: dict[str, Any], lang: str | None = None) -> bytes:
    """The report as a PDF (A4), laid out by WeasyPrint from the same HTML; an issued report also
    carries its sealed JSON as an attachment, for a reader to open and a verifier to read."""
    try:
        from weasyprint import HTML, Attachment
    except ImportError as exc:  # an optional part: `pip install 'xinyong[pdf]'`
        raise BadInput("the PDF report needs the pdf extra: pip install 'xinyong[pdf]'") from exc

    attachments = []
    if "report_id" in report:
        data = json.dumps(report, ensure_ascii=False, indent=2)
        name = f"xinyong-report-{report['report_id']}.json"
        attachments.append(Attachment(string=data, name=name, description="the report's data, sealed"))
    document: bytes = HTML(string=html(report, lang), base_url=str(TEMPLATES)).write_pdf(attachments=attachments)
    return document
