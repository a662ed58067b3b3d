"""The synthetic city must be valid input for every importer and stay the same for a given seed."""

from __future__ import annotations

import collections
import csv
import datetime
import pathlib
import re
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from stdnum.cn import ric, uscc

from xinyong.demo.synth import City, RecordRow, SubjectRow, generate_city, write_files

TODAY = datetime.date(2026, 5, 1)
CATALOGUE = pathlib.Path(__file__).resolve().parents[1] / "docs" / "catalogue.md"


def _catalogue() -> tuple[dict[str, set[str]], dict[str, list[str]]]:
    """Read the codes per source and the patterns per subject kind from docs/catalogue.md.

    The test reads the document rather than synth's own tables, so a catalogue change that the
    generator does not follow fails here.
    """
    text = CATALOGUE.read_text(encoding="utf-8")
    by_source: dict[str, set[str]] = {}
    for line in text.splitlines():
        m = re.match(r"\|\s*([a-z-]+)\s*\|\s*([A-Z_.,\s]+?)\s*\|\s*$", line)
        if m and "." in m.group(2):
            by_source[m.group(1)] = {c.strip() for c in m.group(2).split(",")}
    m = re.search(r"Persons\s+receive\s+(.+?);\s+organisations\s+receive\s+(.+?)\.\s*$", text, re.S)
    assert m, "catalogue's last paragraph changed shape"
    kinds = {
        "person": [c.strip() for c in m.group(1).split(",")],
        "organisation": [c.strip() for c in m.group(2).split(",")],
    }
    return by_source, kinds


def _allowed(code: str, patterns: list[str]) -> bool:
    return any(code == p or (p.endswith(".*") and code.startswith(p[:-1])) for p in patterns)


@pytest.fixture(scope="module")
def city() -> City:
    return generate_city(persons=6000, organisations=1500, today=TODAY)


def _check_ids(subjects: list[SubjectRow]) -> None:
    for s in subjects:
        if s.kind == "person":
            assert ric.validate(s.subject_id) == s.subject_id
            assert s.legal_representative is None
        else:
            assert s.kind == "organisation"
            assert uscc.validate(s.subject_id) == s.subject_id
            assert s.subject_id[2:8] == s.division
            assert s.legal_representative
        assert s.name
    assert len({s.subject_id for s in subjects}) == len(subjects)


def _check_records(city: City, today: datetime.date, years: int) -> None:
    by_source, kinds = _catalogue()
    kind_of = {s.subject_id: s.kind for s in city.subjects}
    first = _years_back(today, years)
    refs: dict[str, set[str]] = collections.defaultdict(set)
    for r in city.records:
        assert r.behaviour in by_source[r.source], r
        assert _allowed(r.behaviour, kinds[kind_of[r.subject_id]]), r
        assert first <= r.occurred_on < today, r
        assert r.document_ref not in refs[r.source], r
        refs[r.source].add(r.document_ref)
        if r.behaviour.startswith("CIVIL."):
            assert r.amount is None
        if r.amount is not None:
            assert r.amount > 0


def _years_back(day: datetime.date, years: int) -> datetime.date:
    """DESIGN.md's calendar arithmetic: 29 February minus a year is 28 February."""
    if (day.month, day.day) == (2, 29):
        return day.replace(year=day.year - years, day=28)
    return day.replace(year=day.year - years)


def test_ids_valid_and_unique(city: City) -> None:
    _check_ids(city.subjects)
    assert sum(s.kind == "person" for s in city.subjects) == 6000
    assert sum(s.kind == "organisation" for s in city.subjects) == 1500


def test_persons_are_adults_up_to_eighty(city: City) -> None:
    for s in city.subjects:
        if s.kind == "person":
            born = ric.get_birth_date(s.subject_id)
            age = TODAY.year - born.year - ((TODAY.month, TODAY.day) < (born.month, born.day))
            assert 18 <= age <= 80


def test_records_follow_catalogue_window_and_unique_refs(city: City) -> None:
    _check_records(city, TODAY, 3)


def test_catalogue_parsed() -> None:
    by_source, kinds = _catalogue()
    assert set(by_source) == {"court", "tax", "market", "transport", "environment", "civil-affairs"}
    assert "TAX.ARREARS" in kinds["person"]


@settings(max_examples=25, deadline=None)
@given(
    persons=st.integers(0, 60),
    organisations=st.integers(0, 30),
    today=st.dates(datetime.date(2020, 1, 1), datetime.date(2040, 12, 31)),
    years=st.integers(1, 5),
    seed=st.integers(0, 2**32),
    rate=st.floats(0.0, 6.0),
)
def test_any_arguments_give_valid_city(
    persons: int, organisations: int, today: datetime.date, years: int, seed: int, rate: float
) -> None:
    city = generate_city(
        persons=persons,
        organisations=organisations,
        today=today,
        years=years,
        seed=seed,
        records_per_subject=rate,
    )
    assert len(city.subjects) == persons + organisations
    _check_ids(city.subjects)
    _check_records(city, today, years)


def test_leap_day_window() -> None:
    today = datetime.date(2028, 2, 29)
    city = generate_city(persons=300, organisations=50, today=today, years=1)
    _check_records(city, today, 1)
    assert min(r.occurred_on for r in city.records) >= datetime.date(2027, 2, 28)


def test_deterministic() -> None:
    a = generate_city(persons=500, organisations=80, today=TODAY, seed=7)
    b = generate_city(persons=500, organisations=80, today=TODAY, seed=7)
    c = generate_city(persons=500, organisations=80, today=TODAY, seed=8)
    assert a == b
    assert a != c


def test_distribution(city: City) -> None:
    persons = [s.subject_id for s in city.subjects if s.kind == "person"]
    orgs = [s.subject_id for s in city.subjects if s.kind == "organisation"]
    per_subject = collections.Counter(r.subject_id for r in city.records)
    by_behaviour: dict[str, set[str]] = collections.defaultdict(set)
    for r in city.records:
        by_behaviour[r.behaviour].add(r.subject_id)
    court = set().union(*(v for k, v in by_behaviour.items() if k.startswith("COURT.")))

    assert 2.2 <= len(city.records) / len(city.subjects) <= 2.8
    assert 0.01 <= len(court.intersection(persons)) / len(persons) <= 0.04
    assert 0.02 <= len(court.intersection(orgs)) / len(orgs) <= 0.07
    # Most persons have at most three records, and a tail has many.
    assert sum(per_subject[p] <= 3 for p in persons) / len(persons) >= 0.65
    assert sum(per_subject[p] >= 8 for p in persons) > 0
    # Everyday behaviours dominate.
    counts = collections.Counter(r.behaviour for r in city.records)
    assert counts.most_common(2)[0][0] in {"TRAFFIC.MINOR", "CIVIL.VOLUNTEER"}
    # Tax credit grades spread: repeat late filers and a few evaders.
    late = collections.Counter(
        r.subject_id for r in city.records if r.behaviour in {"TAX.LATE_FILING", "TAX.LATE_PAYMENT"}
    )
    assert sum(n >= 3 for n in late.values()) >= 20
    assert 1 <= len(by_behaviour["TAX.EVASION"]) <= 0.03 * len(orgs)
    # Some model citizens: several positive records and no negative one.
    positive = {"CIVIL.VOLUNTEER", "CIVIL.BLOOD_DONATION", "CIVIL.CHARITY_DONATION", "CIVIL.HONOUR"}
    pos = collections.Counter(r.subject_id for r in city.records if r.behaviour in positive)
    neg = collections.Counter(r.subject_id for r in city.records if r.behaviour not in positive)
    assert sum(pos[p] >= 5 and neg[p] == 0 for p in persons) >= 30
    assert sum(neg[p] >= 5 for p in persons) >= 30


def test_record_rate_scales() -> None:
    city = generate_city(persons=2000, organisations=200, today=TODAY, records_per_subject=5.0)
    assert 4.5 <= len(city.records) / len(city.subjects) <= 5.5
    none = generate_city(persons=200, organisations=20, today=TODAY, records_per_subject=0.0)
    assert len(none.records) < 0.5 * len(none.subjects)  # only the rare events remain


def test_write_files_round_trip(city: City, tmp_path: pathlib.Path) -> None:
    paths = write_files(city, tmp_path)
    assert set(paths) == {"subjects.csv"} | {
        f"records-{s}.csv" for s in ("court", "tax", "market", "transport", "environment", "civil-affairs")
    }

    with paths["subjects.csv"].open(encoding="utf-8", newline="") as fh:
        reader = csv.DictReader(fh)
        assert reader.fieldnames == [
            "subject_id",
            "kind",
            "name",
            "legal_representative",
            "division",
        ]
        subjects = [
            SubjectRow(
                row["subject_id"],
                row["kind"],
                row["name"],
                row["legal_representative"] or None,
                row["division"],
            )
            for row in reader
        ]
    assert subjects == city.subjects

    records: list[RecordRow] = []
    for name, path in paths.items():
        if name == "subjects.csv":
            continue
        source = name.removeprefix("records-").removesuffix(".csv")
        with path.open(encoding="utf-8", newline="") as fh:
            reader = csv.DictReader(fh)
            assert reader.fieldnames == [
                "subject_id",
                "behaviour",
                "occurred_on",
                "document_ref",
                "amount",
                "note",
            ]
            records.extend(
                RecordRow(
                    source,
                    row["subject_id"],
                    row["behaviour"],
                    datetime.date.fromisoformat(row["occurred_on"]),
                    row["document_ref"],
                    Decimal(row["amount"]) if row["amount"] else None,
                    row["note"] or None,
                )
                for row in reader
            )

    def key(r: RecordRow) -> tuple[str, str]:
        return (r.source, r.document_ref)

    assert sorted(records, key=key) == sorted(city.records, key=key)


def test_rejects_bad_arguments() -> None:
    with pytest.raises(ValueError, match="negative"):
        generate_city(persons=-1, organisations=0, today=TODAY)
    with pytest.raises(ValueError, match="years"):
        generate_city(persons=1, organisations=0, today=TODAY, years=0)
