"""A scheme's rules in sentences: what puts a subject on a list or under a measure, as a person
reads it ("an active record of Drunk driving, or grade D"), not as the file writes it
({"grade_in": ["D"]}). The file stays the authority; this is its reading, in either language."""

from __future__ import annotations

from xinyong.i18n import N_, Text
from xinyong.rules.schemes import Rule, Scheme

# What each data class means for who may see a record: the scheme page's legend.
DATA_CLASS_HELP = {
    "public": N_(
        "Public: shown to anyone on the public pages while it counts; a list built only from public "
        "records is published."
    ),
    "market": N_(
        "Market: information for market supervision, never published; the subject and the credit office "
        "see it, and it counts in scores, lists and measures."
    ),
    "restricted": N_(
        "Restricted: the most protected class, never published; only the subject and the credit office see it."
    ),
}


def rule(t: Text, found: Rule, scheme: Scheme) -> str:
    """The rule as one sentence in the reader's language; nested groups are bracketed."""
    return _clause(t, found, scheme, nested=False)


def _titles(t: Text, codes: list[str], scheme: Scheme) -> str:
    known = scheme.behaviour_by_code
    return t(", ").join(t.title(known[c]) if c in known else c for c in codes)


def _list_title(t: Text, name: str, scheme: Scheme) -> str:
    other, _, list_id = name.rpartition("/")
    if other and other != scheme.scheme:
        return t("the list %(list)s of scheme %(scheme)s", list=list_id, scheme=other)
    item = scheme.list_by_id.get(list_id)
    return t("the list %(list)s", list=t.title(item) if item else list_id)


def _clause(t: Text, found: Rule, scheme: Scheme, *, nested: bool) -> str:
    if found.any_of is not None:
        return t("an active record of %(behaviours)s", behaviours=_titles(t, found.any_of, scheme))
    if found.count is not None:
        return t(
            "at least %(n)s active records of %(behaviours)s that occurred within the last %(period)s",
            n=found.count.at_least,
            behaviours=_titles(t, found.count.codes, scheme),
            period=t.period(found.count.within),
        )
    if found.grade_in is not None:
        return t("grade %(grades)s", grades=t(" or ").join(found.grade_in))
    if found.on_list is not None:
        return t("on %(list)s", list=_list_title(t, found.on_list, scheme))
    parts = [_clause(t, child, scheme, nested=True) for child in (found.all or found.any or [])]
    joined = (t("; and ") if found.all else t("; or ")).join(parts)
    return t("(%(clause)s)", clause=joined) if nested and len(parts) > 1 else joined
