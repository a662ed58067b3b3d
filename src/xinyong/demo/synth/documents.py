"""Document numbers: the reference an agency gives the decision behind a record.

A series is a template over the year, the subject's division and a running number; the row-wise
city fills one in per record (`DocumentNumbers`), the vectorised population fills a whole column
at once (`fill_column`). One template language serves both, so a series is written once.

Template fields: ``{year}``, ``{division}`` (six digits), ``{county}`` (the division without its
province, as courts number cases: 鲁1082), ``{abbr}`` (the county's one-character abbreviation)
and ``{number}``, optionally zero-padded (``{number:06d}``).
"""

from __future__ import annotations

import random
import re
import string
from dataclasses import dataclass
from typing import Any

# One-character abbreviations agencies use in document numbers (荣税罚〔2024〕12号).
ABBR: dict[str, str] = {"371002": "环", "371003": "文", "371082": "荣", "371083": "乳"}


# A family is one numbering series: a template and whether each county keeps its own series
# (courts, district bureaus) or the city keeps one (environment, civil affairs). Numbers rise
# within a series, and the series of one source differ in their fixed text, so document_ref is
# unique per source by construction.
@dataclass(frozen=True, slots=True)
class Family:
    name: str
    template: str
    per_county: bool
    first: int  # the year's first number is drawn from 1..first
    step: int  # consecutive numbers differ by 1..step (other cases, not in the city's data)


def _court(name: str, kind: str, first: int, step: int) -> Family:
    return Family(name, f"({{year}})鲁{{county}}{kind}{{number}}号", True, first, step)


def _county(name: str, word: str, first: int, step: int) -> Family:
    return Family(name, f"{{abbr}}{word}〔{{year}}〕{{number}}号", True, first, step)


def _citywide(name: str, word: str, first: int, step: int) -> Family:
    return Family(name, f"威{word}〔{{year}}〕{{number}}号", False, first, step)


_ENFORCEMENT = _court("court-enforcement", "执", 300, 6)
_RESUMED = _court("court-resumed", "执恢", 20, 3)
_SANCTION = _court("court-sanction", "司惩", 10, 3)
_TAX_SIMPLE = _county("tax-simple", "税简罚", 100, 4)
_TAX_PENALTY = _county("tax-penalty", "税罚", 20, 3)
_MARKET_PENALTY = _county("market-penalty", "市监罚", 30, 4)
# Traffic decisions carry a 16-digit number: division, year, sequence.
_TRAFFIC = Family("traffic", "{division}{year}{number:06d}", True, 5000, 9)
_ENV = _citywide("environment", "环罚", 10, 3)

FAMILIES: dict[str, Family] = {
    "COURT.DEFAULT": _ENFORCEMENT,
    "COURT.EVADE_ENFORCEMENT": _ENFORCEMENT,
    "COURT.BREACH_SPENDING_BAN": _ENFORCEMENT,
    "COURT.BREACH_SETTLEMENT": _RESUMED,
    "COURT.FALSE_ASSET_REPORT": _SANCTION,
    "COURT.OBSTRUCT_ENFORCEMENT": _SANCTION,
    "TAX.LATE_FILING": _TAX_SIMPLE,
    "TAX.LATE_PAYMENT": _TAX_SIMPLE,
    "TAX.ARREARS": _county("tax-notice", "税通", 50, 4),
    "TAX.INVOICE_MISUSE": _TAX_PENALTY,
    "TAX.EVASION": _TAX_PENALTY,
    "TAX.FALSE_INVOICE": _TAX_PENALTY,
    "TAX.REFUSED_INSPECTION": _TAX_PENALTY,
    "MARKET.FALSE_ADVERTISING": _MARKET_PENALTY,
    "MARKET.FOOD_SAFETY": _MARKET_PENALTY,
    "MARKET.UNLICENSED": _MARKET_PENALTY,
    "MARKET.ABNORMAL_OPERATION": _county("market-abnormal", "市监异", 30, 4),
    "TRAFFIC.MINOR": _TRAFFIC,
    "TRAFFIC.DRUNK_DRIVING": _TRAFFIC,
    "TRANSPORT.FARE_EVASION": _citywide("transport-penalty", "交执罚", 10, 3),
    "ENV.POLLUTION": _ENV,
    "ENV.ILLEGAL_DUMPING": _ENV,
    "CIVIL.VOLUNTEER": _citywide("civil-volunteer", "民志", 500, 5),
    "CIVIL.BLOOD_DONATION": _citywide("civil-blood", "献血", 500, 5),
    "CIVIL.CHARITY_DONATION": _citywide("civil-charity", "民慈", 100, 4),
    "CIVIL.HONOUR": _citywide("civil-honour", "民表", 5, 2),
}

# At scale each source keeps one series, numbered from 1 through the whole run: records are drawn
# in chunks that are not sorted by day, so per-year series that rise with the date would need a
# sort of all records first. Traffic numbers get eight digits for populations of millions.
SERIES_BY_SOURCE: dict[str, str] = {
    "court": _ENFORCEMENT.template,
    "tax": _TAX_PENALTY.template,
    "market": _MARKET_PENALTY.template,
    "transport": "{division}{year}{number:08d}",
    "environment": _ENV.template,
    "civil-affairs": _citywide("civil", "民", 1, 1).template,
}


def _fill(template: str, year: int, division: str, number: int) -> str:
    return template.format(year=year, division=division, county=division[2:], abbr=ABBR[division], number=number)


class DocumentNumbers:
    """Hands out rising numbers per series and year, starting at a random offset."""

    def __init__(self, rng: random.Random) -> None:
        self._rng = rng
        self._next: dict[tuple[str, str, int], int] = {}

    def next(self, code: str, division: str, year: int) -> str:
        family = FAMILIES[code]
        key = (family.name, division if family.per_county else "", year)
        n = self._next.get(key)
        if n is None:
            n = self._rng.randint(1, family.first)
        self._next[key] = n + self._rng.randint(1, family.step)
        return _fill(family.template, year, division, n)


def fill_column(template: str, *, year: Any, division: Any, number: Any) -> Any:
    """The template filled in row by row, as an Arrow string array, from Arrow string arrays of
    years and six-digit divisions and an array of non-negative numbers."""
    import pyarrow as pa
    import pyarrow.compute as pc

    numbers = pa.array(number, pa.int64()).cast(pa.string())
    parts: list[Any] = []
    for literal, field, spec, _conversion in string.Formatter().parse(template):
        if literal:
            parts.append(literal)
        if field is None:
            continue
        if field == "year":
            parts.append(year)
        elif field == "division":
            parts.append(division)
        elif field == "county":
            parts.append(pc.utf8_slice_codeunits(division, 2))
        elif field == "abbr":
            keys = pa.array(list(ABBR), pa.string())
            parts.append(pa.array(list(ABBR.values()), pa.string()).take(pc.index_in(division, value_set=keys)))
        elif field == "number" and not spec:
            parts.append(numbers)
        elif field == "number" and (padded := re.fullmatch(r"0(\d+)d", spec or "")):
            parts.append(pc.utf8_lpad(numbers, int(padded[1]), "0"))
        else:
            raise ValueError(f"unknown field {{{field}:{spec}}} in document template {template!r}")
    return pc.binary_join_element_wise(*parts, "")
