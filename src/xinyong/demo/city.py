"""`xinyong demo`: a synthetic city, three years of its records replayed month by month.

The demo goes through the same door as real use — the service, with each act authorised and
audited: scheme files, source authorisations, CSV imports by each source, objections, decisions,
consent — with the clock set to each moment of the replay, so that notice periods, holds and
expiries play out as they would have. Nothing is shortcut into the tables.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import random
import time
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from rich.console import Console
from rich.progress import Progress

from xinyong.demo import objections
from xinyong.demo.synth import SOURCES, City, RecordRow, generate_city
from xinyong.demo.synth.city import RECORD_HEADER
from xinyong.errors import Refused
from xinyong.ledger import records as ledger
from xinyong.ledger.files import SUBJECT_COLUMNS, SUBJECT_OPTIONAL
from xinyong.ledger.registry import Subject
from xinyong.presentation import outputs
from xinyong.rules.clock import DEFAULT_TIMEZONE, Clock
from xinyong.rules.engine import State
from xinyong.rules.schemes import load_scheme_file
from xinyong.security.access import Principal, Role
from xinyong.security.checkpoints import COPY
from xinyong.service import Service
from xinyong.storage.store import Store

SCHEMES_DIR = Path(__file__).parent / "schemes"
SHIPPED_SCHEMES = ("court-defaulters.yaml", "city-points.yaml", "tax-credit.yaml")
SOURCE_TITLES = {
    "court": "Intermediate People's Court",
    "tax": "Municipal Tax Bureau",
    "market": "Market Regulation Administration",
    "transport": "Traffic Police and Transport Bureau",
    "environment": "Ecology and Environment Bureau",
    "civil-affairs": "Civil Affairs Bureau",
}
ZONE = ZoneInfo(DEFAULT_TIMEZONE)
NEGATIVE_SOURCES = frozenset({"court", "tax", "market", "environment"})


@dataclass(frozen=True)
class Step:
    """One moment of the replay: what happened then, in the order it happened."""

    at: dt.datetime
    order: int
    kind: str
    payload: Any


def schemes_dir() -> Path:
    """The shipped schemes, package data of `xinyong.demo`."""
    if not SCHEMES_DIR.is_dir():
        raise FileNotFoundError(f"the shipped schemes are not at {SCHEMES_DIR}")
    return SCHEMES_DIR


def _moment(day: dt.date, hour: int = 17) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(hour), ZONE).astimezone(dt.UTC)


def _csv_bytes(rows: list[RecordRow]) -> bytes:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(RECORD_HEADER)
    writer.writerows(r.csv_fields() for r in rows)
    return buffer.getvalue().encode()


def plan(city: City, now: dt.datetime, seed: int) -> list[Step]:
    """The timeline: monthly imports per source, consent, objections and their decisions, ends."""
    rng = random.Random(seed)
    today = now.astimezone(ZONE).date()
    first = min((r.occurred_on for r in city.records), default=today)
    steps = [Step(_moment(first - dt.timedelta(days=1), 9), 0, "consent", None)]
    batches: dict[tuple[str, dt.date], list[RecordRow]] = defaultdict(list)
    objected: list[tuple[dt.datetime, RecordRow]] = []
    for record in city.records:
        month_end = (record.occurred_on.replace(day=1) + dt.timedelta(days=32)).replace(day=1) - dt.timedelta(days=1)
        batches[(record.source, month_end)].append(record)
    for order, ((source, month_end), rows) in enumerate(sorted(batches.items())):
        at = min(_moment(month_end + dt.timedelta(days=3)), now - dt.timedelta(minutes=30))
        steps.append(Step(at, order, "import", (source, month_end, rows)))
        for row in rows:
            negative = row.source in NEGATIVE_SOURCES or row.behaviour.startswith("TRAFFIC")
            if negative and rng.random() < 0.01:
                filed = at + dt.timedelta(days=2, hours=rng.randint(0, 6))
                if filed < now:
                    objected.append((filed, row))
            if row.behaviour == "COURT.DEFAULT" and rng.random() < 0.3:
                fulfilled = row.occurred_on + dt.timedelta(days=rng.randint(60, 400))
                if fulfilled < today:
                    steps.append(Step(_moment(fulfilled, 11), 0, "end", row))
    # Objectable this week: negative records imported at least a few days ago and still recent.
    objectable = [r for r in city.records if r.source in NEGATIVE_SOURCES and 40 <= (today - r.occurred_on).days <= 120]
    steps += [Step(at, 0, kind, payload) for at, kind, payload in objections.events(objected, objectable, now, seed)]
    steps += _feed_steps(today)
    # Two judgments fulfilled while the feed runs: the airline hears of them in the next version.
    court = [r for r in city.records if r.behaviour == "COURT.DEFAULT"]
    once = Counter(r.subject_id for r in court)
    recent = (today - dt.timedelta(days=600), today - dt.timedelta(days=120))  # in force, not expired
    # Neither ended already nor objected to (a revoked judgment would leave the list otherwise).
    touched = {id(s.payload) for s in steps if s.kind == "end"} | {id(s.payload) for s in steps if s.kind == "object"}
    defaults = [
        r for r in court if once[r.subject_id] == 1 and recent[0] < r.occurred_on < recent[1] and id(r) not in touched
    ]
    for row in rng.sample(defaults, min(2, len(defaults))):
        steps.append(Step(_moment(today - dt.timedelta(days=UNACKNOWLEDGED + 1), 11), 0, "end", row))
    return sorted(steps, key=lambda s: (s.at, s.order))


# The days before today for which the civil-aviation feed has a version; the one the airline does
# not acknowledge that morning (the next morning's acknowledgement covers it, a day late).
FEED_DAYS = 5
UNACKNOWLEDGED = 3


def _feed_steps(today: dt.date) -> list[Step]:
    """Civil aviation receives a feed: its key made, a version cut at 03:00 on each of the last days
    and acknowledged by the airline that morning but once, so the public statistics page shows a
    delisting delay."""
    steps = [Step(_moment(today - dt.timedelta(days=FEED_DAYS + 1), 12), 0, "feed-key", "civil-aviation")]
    for number, back in enumerate(range(FEED_DAYS, 0, -1), start=1):
        day = today - dt.timedelta(days=back)
        steps.append(Step(_moment(day, 3), 0, "feed-cut", day))
        if back != UNACKNOWLEDGED:
            steps.append(Step(_moment(day, 9), 0, "feed-ack", number))
    return steps


@dataclass
class ReplayClock(Clock):
    """The clock of the replay: set to each step's moment before the step acts."""

    instant: dt.datetime

    def now(self) -> dt.datetime:
        return self.instant


# Who acts in the replay: the office's administrator sets the city up, each source submits its own
# records, residents object and consent, an officer decides.
OFFICE = Principal(Role.ADMIN, "office", channel="demo")
OFFICER = Principal(Role.OFFICER, "officer", channel="demo")


def _source(agency: str) -> Principal:
    return Principal(Role.SOURCE, f"source:{agency}", agency=agency, channel="demo")


def _resident(subject: str) -> Principal:
    return Principal(Role.SUBJECT, "resident", subject=subject, channel="demo")


def _apply(service: Service, step: Step, city: City, rng: random.Random, counts: Counter[str]) -> None:
    if step.kind == "consent":
        persons = [s.subject_id for s in city.subjects if s.kind == "person" and rng.random() < 0.85]
        counts["consents"] += service.subjects.change_consents(OFFICE, persons, "city-points", True)
    elif step.kind == "import":
        source, month_end, rows = step.payload
        result = service.records.import_file(
            _source(source), f"records-{source}-{month_end:%Y-%m}.csv", _csv_bytes(rows), source
        )
        counts["records"] += result.imported
    elif step.kind == "object":
        row = step.payload
        service.objections.file(
            _resident(row.subject_id),
            f"{row.source}:{row.document_ref}",
            reason="The facts are wrong: the decision was appealed.",
        )
        counts["objections"] += 1
    elif step.kind == "decide":
        row, outcome = step.payload
        ref = f"{row.source}:{row.document_ref}"
        record_id = service.records.show(OFFICER, ref, purpose="objection decision").record.id
        pending = [
            o
            for o in service.objections.listing(OFFICER, subject_id=row.subject_id, undecided=True)
            if o.record_id == record_id
        ]
        if pending:
            extra: dict[str, Any] = (
                {"occurred_on": row.occurred_on - dt.timedelta(days=1)} if outcome == "corrected" else {}
            )
            service.objections.decide(
                OFFICER, pending[0].id, outcome=outcome, reason="Checked against the source file.", **extra
            )
            counts[f"decided_{outcome}"] += 1
    elif step.kind == "feed-key":
        service.feeds.make_key(OFFICE, step.payload)
    elif step.kind == "feed-cut":
        service.feeds.publish(OFFICE, day=step.payload)
    elif step.kind == "feed-ack":
        airline = Principal(Role.ENFORCER, "civil-aviation", agency="civil-aviation", channel="demo")
        service.feeds.acknowledge(airline, "civil-aviation", step.payload)
    elif step.kind == "end":
        row = step.payload
        ref = f"{row.source}:{row.document_ref}"
        # The court reports the judgment fulfilled; the office records the end.
        view = service.records.show(OFFICER, ref, purpose="judgment fulfilled").view()
        if not view.void and view.ended_on is None:
            service.records.end(OFFICER, ref, on=step.at.astimezone(ZONE).date(), reason="fulfilled")
            counts["ended"] += 1


def _subjects_csv(city: City) -> bytes:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(SUBJECT_COLUMNS + SUBJECT_OPTIONAL)
    for s in city.subjects:
        writer.writerow([s.subject_id, s.kind, s.name, s.legal_representative or "", s.division])
    return buffer.getvalue().encode()


def _fresh_store(db: str, say: Callable[[str], None]) -> tuple[Store, bool]:
    """The demo builds its city from nothing: it replaces an embedded demo store (True), and
    refuses to touch any other store that already holds records."""
    store = Store(db)
    replaced = False
    if store.is_initialised():
        with store.read() as conn:
            has_records = ledger.record_count(conn) > 0
        files = store.database_files()  # an embedded store's files (its audit log's too), logs and shared memory
        if has_records and not (files and files[0].name.startswith("xinyong-demo")):
            raise Refused(f"{db} already holds records; the demo needs an empty store or its own xinyong-demo*.db")
        store.dispose()
        if has_records:
            names = ", ".join(file.name for file in files if file.exists())
            say(f"{db} holds an earlier demo city: replacing it (deleting {names}; the keys stay)")
            for file in files:
                file.unlink(missing_ok=True)
            replaced = True
        else:
            say(f"{db} is initialised but holds no records: building the demo city in it")
        store = Store(db)
    else:
        say(f"building the demo city in a new store, {db}")
    store.migrate()
    return store, replaced


def run(
    db: str,
    clock: Clock,
    *,
    persons: int,
    organisations: int,
    seed: int,
    console: Console | None,
    say: Callable[[str], None] = lambda _: None,
) -> dict[str, Any]:
    """Build the city in `db` and summarise it; `say` hears, before anything is changed, what is
    done to the store (made, reused, or an earlier demo city replaced)."""
    started = time.perf_counter()
    now = clock.now()
    today = now.astimezone(ZONE).date()
    store, replaced = _fresh_store(db, say)
    city = generate_city(persons=persons, organisations=organisations, today=today, seed=seed)
    steps = plan(city, now, seed)
    replay = ReplayClock(steps[0].at - dt.timedelta(hours=1))
    service = Service(store, replay, cache_answers=False)
    if replaced and service.keys.folder.name.startswith("xinyong-demo"):
        # The old city's checkpoints were of its log, which is gone; its keys may stay.
        (service.keys.folder / COPY).unlink(missing_ok=True)
    service.keys.ensure()
    for name in SHIPPED_SCHEMES:
        path = schemes_dir() / name
        text = path.read_text(encoding="utf-8")
        service.schemes.load(OFFICE, text, scheme=load_scheme_file(path))
    for source, codes in SOURCES.items():
        service.schemes.add_source(OFFICE, source, codes, SOURCE_TITLES.get(source))
    service.subjects.import_file(OFFICE, "subjects.csv", _subjects_csv(city))
    rng = random.Random(seed)
    counts: Counter[str] = Counter()
    progress = Progress(console=console, transient=True) if console is not None else None
    if progress is not None:
        progress.start()
        task = progress.add_task("replaying three years of the city", total=len(steps))
    try:
        for step in steps:
            replay.instant = step.at
            _apply(service, step, city, rng, counts)
            if progress is not None:
                progress.advance(task)
    finally:
        if progress is not None:
            progress.stop()
    replay.instant = now
    service.audit.checkpoint(OFFICE)  # the log's head signed and published, as a server does hourly
    summary = summarise(service, today)
    summary.update(
        db=db,
        persons=persons,
        organisations=organisations,
        seed=seed,
        replaced=replaced,
        events=dict(sorted(counts.items())),
        seconds=round(time.perf_counter() - started, 1),
    )
    store.dispose()
    return summary


def summarise(service: Service, today: dt.date) -> dict[str, Any]:
    """Subjects per grade per scheme, list sizes, measures in force, and two explained subjects."""
    grades: dict[str, Counter[str]] = defaultdict(Counter)
    lists: Counter[str] = Counter()
    measures: Counter[str] = Counter()
    candidates: dict[str, tuple[int, State, Subject]] = {}
    for subject, states in service.questions.population(OFFICE, as_of=today):
        for scheme_id, state in states.items():
            if not isinstance(state, State):
                grades[scheme_id]["(no state)"] += 1
                continue
            grades[scheme_id][state.grade or "(ungraded)"] += 1
            lists.update(f"{scheme_id}/{x}" for x in state.lists)
            measures.update(f"{scheme_id}/{m}" for m in state.measures)
            interest = len(state.contributions) + 5 * len(state.lists) + (3 if state.next_grade else 0)
            key = f"{subject.kind}:{scheme_id}"
            if scheme_id in {"city-points", "tax-credit"} and interest > candidates.get(key, (0,))[0]:
                candidates[key] = (interest, state, subject)
    examples = [candidates[k] for k in ("person:city-points", "organisation:tax-credit") if k in candidates]
    return {
        "as_of": today.isoformat(),
        "records_in_ledger": service.operations.ready()["records"],
        "grades": {k: dict(sorted(v.items())) for k, v in sorted(grades.items())},
        "lists": dict(sorted(lists.items())),
        "measures": dict(sorted(measures.items())),
        "examples": [
            {"name": subject.name, "kind": subject.kind, **outputs.state(state)} for _, state, subject in examples
        ],
    }
