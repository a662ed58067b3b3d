"""The demo city, row by row: persons and organisations of Weihai (威海, prefecture 3710) and
the records six agencies hold about them, as the import files (CSV) DESIGN.md describes.

Generation is pure Python over one seeded stream per concern. Each subject has a story: most
have a few everyday records, some a court case with later findings in the same case, a few are
"bad" (several negatives at once, so that the lowest grades are populated) or "model" (several
positives and nothing else). The everyday counts are calibrated so that the mean number of
records per subject meets the target while the rare events keep their shares.
"""

from __future__ import annotations

import csv
import datetime
import math
import pathlib
import random
from dataclasses import dataclass
from decimal import Decimal
from operator import itemgetter

from xinyong.demo.synth.behaviours import (
    COURT_FOLLOW_ONS,
    FIXED_AMOUNTS,
    NOTES,
    ORG_COURT,
    ORG_HONOURS,
    ORG_NEGATIVE,
    ORG_POSITIVE,
    ORG_RARE,
    PERSON_COURT,
    PERSON_NEGATIVE,
    PERSON_POSITIVE,
    PERSON_RARE,
    SCALED_AMOUNTS,
    SCALED_AMOUNTS_BY_KIND,
)
from xinyong.demo.synth.dates import adult_birth_dates, record_window
from xinyong.demo.synth.documents import DocumentNumbers
from xinyong.demo.synth.identifiers import draw_resident_id, draw_uscc
from xinyong.demo.synth.vocabulary import (
    ASSOCIATION_TRADES,
    BRANDS,
    CHAMBER_ORIGINS,
    COOP_PRODUCTS,
    COUNTY_NAMES,
    DIVISION_POOL,
    FEMALE_CHARS,
    INDUSTRIES,
    INSTITUTIONS,
    MALE_CHARS,
    NEUTRAL_CHARS,
    NONPROFITS,
    ORG_TYPE_POOL,
    PLACES,
    SOURCE_OF,
    SOURCES,
    SURNAMES,
    TOWNS,
)
from xinyong.ledger.files import RECORD_COLUMNS, RECORD_OPTIONAL


@dataclass(frozen=True, slots=True)
class SubjectRow:
    """One person or organisation, as a subjects file lists it."""

    subject_id: str
    kind: str
    name: str
    legal_representative: str | None
    division: str


@dataclass(frozen=True, slots=True)
class RecordRow:
    """One fact a source agency submits about a subject."""

    source: str
    subject_id: str
    behaviour: str
    occurred_on: datetime.date
    document_ref: str
    amount: Decimal | None
    note: str | None

    def csv_fields(self) -> list[str]:
        """The row as a records file writes it, in `RECORD_HEADER`'s order."""
        amount = "" if self.amount is None else str(self.amount)
        return [
            self.subject_id,
            self.behaviour,
            self.occurred_on.isoformat(),
            self.document_ref,
            amount,
            self.note or "",
        ]


# A records file's columns: those the import reads, required then optional.
RECORD_HEADER = [*RECORD_COLUMNS, *RECORD_OPTIONAL]


@dataclass(frozen=True, slots=True)
class City:
    """The generated population and its records, ordered by occurred_on."""

    subjects: list[SubjectRow]
    records: list[RecordRow]


# --- generation ----------------------------------------------------------------------------


def generate_city(
    *,
    persons: int,
    organisations: int,
    today: datetime.date,
    years: int = 3,
    seed: int = 2014,
    records_per_subject: float = 2.5,
) -> City:
    """Generate a city whose records occurred in the `years` years before `today`.

    The same arguments always give the same city; the mean number of records per subject is
    close to `records_per_subject`, rare events (court defaults, tax evasion) keep their shares.
    """
    if persons < 0 or organisations < 0:
        raise ValueError("persons and organisations must not be negative")
    if years < 1:
        raise ValueError("years must be at least 1")
    if records_per_subject < 0:
        raise ValueError("records_per_subject must not be negative")

    # Separate streams keep the persons unchanged when only the organisation count changes.
    person_rng = random.Random(f"{seed}:persons")
    org_rng = random.Random(f"{seed}:organisations")
    record_rng = random.Random(f"{seed}:records")

    used_ids: set[str] = set()
    people = [_person(person_rng, used_ids, today) for _ in range(persons)]
    used_names: set[str] = set()
    orgs = [_organisation(org_rng, used_ids, used_names, people) for _ in range(organisations)]

    start, days = record_window(today, years)
    window = [start + datetime.timedelta(days=d) for d in range(days)]
    records = _records(record_rng, people, orgs, window, records_per_subject)
    subjects = [p.row for p in people] + [o.row for o in orgs]
    return City(subjects=subjects, records=records)


def write_files(city: City, out_dir: pathlib.Path) -> dict[str, pathlib.Path]:
    """Write the city as the import files DESIGN.md describes, one records file per source.

    Returns the written paths keyed by file name (``subjects.csv``, ``records-court.csv``, ...).
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    paths: dict[str, pathlib.Path] = {}

    subjects_path = out_dir / "subjects.csv"
    with subjects_path.open("w", encoding="utf-8", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["subject_id", "kind", "name", "legal_representative", "division"])
        for s in city.subjects:
            writer.writerow([s.subject_id, s.kind, s.name, s.legal_representative or "", s.division])
    paths[subjects_path.name] = subjects_path

    by_source: dict[str, list[RecordRow]] = {src: [] for src in SOURCES}
    for r in city.records:
        by_source[r.source].append(r)
    for src, rows in by_source.items():
        path = out_dir / f"records-{src}.csv"
        with path.open("w", encoding="utf-8", newline="") as fh:
            writer = csv.writer(fh)
            writer.writerow(RECORD_HEADER)
            writer.writerows(r.csv_fields() for r in rows)
        paths[path.name] = path
    return paths


# --- subjects -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Person:
    row: SubjectRow
    male: bool


@dataclass(frozen=True, slots=True)
class _Org:
    row: SubjectRow
    enterprise: bool
    food: bool
    polluting: bool


def _person_name(rng: random.Random, male: bool) -> str:
    chars = (MALE_CHARS if male else FEMALE_CHARS) + NEUTRAL_CHARS
    given = rng.choice(chars)
    # About a third of given names have one character, which keeps 王伟-style namesakes common.
    if rng.random() < 0.65:
        given += rng.choice(chars)
    return rng.choice(SURNAMES) + given


def _person(rng: random.Random, used_ids: set[str], today: datetime.date) -> _Person:
    division = rng.choice(DIVISION_POOL)
    male = rng.random() < 0.5
    oldest, span = adult_birth_dates(today)
    subject_id = draw_resident_id(rng, division, male, oldest, span, used_ids)
    row = SubjectRow(subject_id, "person", _person_name(rng, male), None, division)
    return _Person(row, male)


def _org_name(rng: random.Random, division: str, kind: str) -> tuple[str, bool, bool]:
    """A plausible name for the organisation type, with its food and pollution exposure."""
    place = rng.choice(PLACES[division])
    county = COUNTY_NAMES[division]
    if kind == "enterprise":
        industry, food, polluting = rng.choice(INDUSTRIES)
        brand = rng.choice(BRANDS)
        r = rng.random()
        if r < 0.08:
            return f"山东{brand}{industry}股份有限公司", food, polluting
        suffix = "有限责任公司" if r < 0.18 else "有限公司"
        return f"{place}{brand}{industry}{suffix}", food, polluting
    if kind == "cooperative":
        product = rng.choice(COOP_PRODUCTS)
        return f"{county}{rng.choice(TOWNS[division])}{product}专业合作社", False, False
    if kind == "association":
        if rng.random() < 0.3:
            return f"{county}{rng.choice(CHAMBER_ORIGINS)}商会", False, False
        return f"{rng.choice(('威海市', county))}{rng.choice(ASSOCIATION_TRADES)}", False, False
    if kind == "nonprofit":
        return f"{county}{rng.choice(BRANDS)}{rng.choice(NONPROFITS)}", False, False
    town = rng.choice(TOWNS[division])
    if rng.random() < 0.25:
        return f"{county}{town}中心小学", False, False
    return f"{county}{rng.choice(INSTITUTIONS)}", False, False


def _organisation(rng: random.Random, used_ids: set[str], used_names: set[str], people: list[_Person]) -> _Org:
    division = rng.choice(DIVISION_POOL)
    kind, prefix = rng.choice(ORG_TYPE_POOL)
    # Names should be unique in one city; after some clashes a two-word brand makes room, and a
    # rare duplicate among millions of synthetic organisations is accepted rather than looping.
    for attempt in range(20):
        if attempt < 10:
            name, food, polluting = _org_name(rng, division, kind)
        else:
            kind, prefix = "enterprise", "91"
            industry, food, polluting = rng.choice(INDUSTRIES)
            brand = rng.choice(BRANDS) + rng.choice(BRANDS)
            name = f"{rng.choice(PLACES[division])}{brand}{industry}有限公司"
        if name not in used_names:
            break
    used_names.add(name)
    subject_id = draw_uscc(rng, prefix, division, used_ids)
    # Legal representatives are residents of the city, which lets the public search by them.
    rep = rng.choice(people).row.name if people else _person_name(rng, rng.random() < 0.7)
    row = SubjectRow(subject_id, "organisation", name, rep, division)
    return _Org(row, kind in ("enterprise", "cooperative"), food, polluting)


# --- records --------------------------------------------------------------------------------

# A draft is (day index in the window, behaviour, subject id, division, amount, note); document
# numbers are assigned after sorting by day so that they rise through each year like real ones.
_Draft = tuple[int, str, str, str, Decimal | None, str | None]

# Shares of "bad" subjects (several negatives at once) and "model" ones (several positives).
_BAD_SHARE = 0.02
_MODEL_SHARE = 0.02
_BAD_ORG_SHARE = 0.04
_MODEL_ORG_SHARE = 0.03


def _poisson(rng: random.Random, mu: float) -> int:
    """Knuth's method; the mean is small except in the far tail, where a normal will do."""
    if mu <= 0.0:
        return 0
    if mu > 30.0:
        return max(0, round(rng.gauss(mu, math.sqrt(mu))))
    limit = math.exp(-mu)
    k = 0
    p = rng.random()
    while p > limit:
        k += 1
        p *= rng.random()
    return k


def _yuan(rng: random.Random, median: float, sigma: float, lo: float, hi: float, cents: bool = False) -> Decimal:
    value = min(hi, max(lo, rng.lognormvariate(math.log(median), sigma)))
    return Decimal(f"{value:.2f}") if cents else Decimal(round(value))


def _amount(rng: random.Random, code: str, person: bool) -> Decimal | None:
    """The sum at stake (behaviours.py): unpaid judgment (COURT.*), tax concerned (TAX.*), else
    the fine; judgments and tax to the fen, fines in whole yuan."""
    if code in FIXED_AMOUNTS:
        return Decimal(rng.choice(FIXED_AMOUNTS[code]))
    family = code.split(".", 1)[0]
    by_kind = SCALED_AMOUNTS_BY_KIND["person" if person else "organisation"]
    scale = by_kind.get(family) or by_kind.get(code) or SCALED_AMOUNTS.get(code)
    if scale is None:
        return None  # praise and the abnormal-operations list carry no sum
    median, sigma, lo, hi = scale
    return _yuan(rng, median, sigma, lo, hi, cents=family in ("COURT", "TAX"))


def _note(rng: random.Random, code: str, person: bool) -> str | None:
    if code == "CIVIL.BLOOD_DONATION":
        return None  # restricted data: nothing beyond the fact itself
    if code == "CIVIL.VOLUNTEER":
        return f"社区志愿服务{rng.choice((2, 4, 4, 6, 8, 8, 12, 20))}小时"
    if rng.random() < 0.25:
        return None
    if code == "CIVIL.HONOUR" and not person:
        return rng.choice(ORG_HONOURS)
    return rng.choice(NOTES[code])


class _Sink:
    """Collects drafts for one run, so that all subjects draw from one stream and one window."""

    def __init__(self, rng: random.Random, days: int) -> None:
        self.rng = rng
        self.days = days
        self.drafts: list[_Draft] = []

    def add(self, code: str, row: SubjectRow) -> None:
        rng = self.rng
        person = row.kind == "person"
        self.drafts.append(
            (
                rng.randrange(self.days),
                code,
                row.subject_id,
                row.division,
                _amount(rng, code, person),
                _note(rng, code, person),
            )
        )

    def add_many(self, code: str, row: SubjectRow, count: int) -> None:
        for _ in range(count):
            self.add(code, row)

    def court_case(self, row: SubjectRow, follow_on_scale: float = 1.0) -> None:
        """A default and, sometimes, later findings in the same case with the same sum."""
        rng = self.rng
        person = row.kind == "person"
        start = rng.randrange(self.days)
        amount = _amount(rng, "COURT.DEFAULT", person)
        cases = [("COURT.DEFAULT", start)]
        for code, p in COURT_FOLLOW_ONS:
            if rng.random() < p * follow_on_scale:
                cases.append((code, min(self.days - 1, start + rng.randint(20, 300))))
        for code, day in cases:
            self.drafts.append((day, code, row.subject_id, row.division, amount, _note(rng, code, person)))


def _rare(sink: _Sink, row: SubjectRow, table: tuple[tuple[str, float], ...]) -> None:
    rng = sink.rng
    for code, p in table:
        if rng.random() < p:
            sink.add(code, row)


def _fixed_person(sink: _Sink, person: _Person) -> None:
    rng, row = sink.rng, person.row
    if rng.random() < PERSON_COURT:
        sink.court_case(row)
    _rare(sink, row, PERSON_RARE)
    r = rng.random()
    if r < _BAD_SHARE:
        # Several negatives at once, so that some persons fall into the lowest grades.
        if rng.random() < 0.5:
            sink.court_case(row, follow_on_scale=2.0)
        sink.add_many("TRAFFIC.MINOR", row, rng.randint(3, 8))
        sink.add_many("TRANSPORT.FARE_EVASION", row, rng.randint(0, 3))
        if rng.random() < 0.3:
            sink.add("TRAFFIC.DRUNK_DRIVING", row)
        if rng.random() < 0.2:
            sink.add("TAX.ARREARS", row)
    elif r < _BAD_SHARE + _MODEL_SHARE:
        sink.add_many("CIVIL.VOLUNTEER", row, rng.randint(4, 10))
        sink.add_many("CIVIL.BLOOD_DONATION", row, rng.randint(1, 3))
        sink.add_many("CIVIL.CHARITY_DONATION", row, rng.randint(1, 3))
        if rng.random() < 0.6:
            sink.add("CIVIL.HONOUR", row)


def _fixed_org(sink: _Sink, org: _Org) -> None:
    rng, row = sink.rng, org.row
    # Associations and public institutions rarely trade, so their negative risks are damped
    # and market regulation does not concern them.
    scale = 1.0 if org.enterprise else 0.3
    if rng.random() < ORG_COURT * scale:
        sink.court_case(row)
    for code, p in ORG_RARE:
        damped = p * (1.0 if code.startswith("CIVIL.") else scale)
        if (org.enterprise or not code.startswith("MARKET.")) and rng.random() < damped:
            sink.add(code, row)
    if org.food and rng.random() < 0.08:
        sink.add("MARKET.FOOD_SAFETY", row)
    if rng.random() < (0.08 if org.polluting else 0.005):
        sink.add("ENV.POLLUTION", row)
    r = rng.random()
    if org.enterprise and r < _BAD_ORG_SHARE:
        # Repeated late filing and payment spread the tax-credit grades down to C and D.
        sink.add_many("TAX.LATE_FILING", row, rng.randint(2, 6))
        sink.add_many("TAX.LATE_PAYMENT", row, rng.randint(1, 4))
        for code, p in (
            ("TAX.ARREARS", 0.5),
            ("MARKET.ABNORMAL_OPERATION", 0.5),
            ("MARKET.FALSE_ADVERTISING", 0.3),
            ("ENV.POLLUTION", 0.3 if org.polluting else 0.05),
            ("TAX.EVASION", 0.25),
        ):
            if rng.random() < p:
                sink.add(code, row)
        if rng.random() < 0.3:
            sink.court_case(row)
    elif r < _BAD_ORG_SHARE + _MODEL_ORG_SHARE:
        sink.add_many("CIVIL.HONOUR", row, rng.randint(1, 2))
        sink.add_many("CIVIL.CHARITY_DONATION", row, rng.randint(2, 5))


def _common(
    sink: _Sink,
    row: SubjectRow,
    negative: tuple[tuple[str, float], ...],
    positive: tuple[tuple[str, float], ...],
    scale: float,
    neg_damp: float = 1.0,
) -> None:
    rng = sink.rng
    # One propensity per subject and polarity: a careless driver also dodges fares more often.
    for table, shape, damp in ((negative, 0.45, neg_damp), (positive, 0.4, 1.0)):
        g = rng.gammavariate(shape, 1.0 / shape)
        for code, mean in table:
            sink.add_many(code, row, _poisson(rng, mean * scale * damp * g))


def _records(
    rng: random.Random,
    people: list[_Person],
    orgs: list[_Org],
    window: list[datetime.date],
    records_per_subject: float,
) -> list[RecordRow]:
    sink = _Sink(rng, len(window))
    for person in people:
        _fixed_person(sink, person)
    for org in orgs:
        _fixed_org(sink, org)

    # Calibrate the everyday behaviours so that the total meets records_per_subject; the rare
    # ones already drawn keep their shares whatever the target.
    def base(table: tuple[tuple[str, float], ...]) -> float:
        return sum(mean for _, mean in table)

    org_neg_damps = [1.0 if o.enterprise else 0.3 for o in orgs]
    expected = len(people) * (base(PERSON_NEGATIVE) + base(PERSON_POSITIVE)) + sum(
        d * base(ORG_NEGATIVE) + base(ORG_POSITIVE) for d in org_neg_damps
    )
    target = records_per_subject * (len(people) + len(orgs))
    scale = max(0.0, target - len(sink.drafts)) / expected if expected else 0.0

    for person in people:
        _common(sink, person.row, PERSON_NEGATIVE, PERSON_POSITIVE, scale)
    for org, damp in zip(orgs, org_neg_damps, strict=True):
        _common(sink, org.row, ORG_NEGATIVE, ORG_POSITIVE, scale, damp)

    sink.drafts.sort(key=itemgetter(0))  # stable: ties keep generation order
    numbers = DocumentNumbers(rng)
    return [
        RecordRow(
            source=SOURCE_OF[code],
            subject_id=subject_id,
            behaviour=code,
            occurred_on=window[day],
            document_ref=numbers.next(code, division, window[day].year),
            amount=amount,
            note=note,
        )
        for day, code, subject_id, division, amount, note in sink.drafts
    ]
