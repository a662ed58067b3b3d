"""Test helpers: valid synthetic identifiers, instants in Asia/Shanghai, and a small `World` that
drives the library through its real doors (scheme load, source authorisation, CSV import, events)."""

from __future__ import annotations

import contextlib
import csv
import datetime as dt
import io
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from stdnum.cn import ric, uscc

from xinyong.derived import derivation
from xinyong.derived.state import NoState, StateReader
from xinyong.due_process import objections
from xinyong.due_process.after_append import AFTER_APPEND
from xinyong.ledger import consent, imports, registry
from xinyong.ledger import records as ledger
from xinyong.rules.engine import State
from xinyong.rules.schemes import parse_scheme
from xinyong.storage.store import Store

ZONE = ZoneInfo("Asia/Shanghai")

DEMO_CITY = """\
scheme: demo-city
version: "2026.1"
title: Demo City citizen credit scheme
jurisdiction: "371082"
applies_to: [person, organisation]
initial: 1000
floor: 0
default_notice: P10D
objection_deadline: 5
consent: required
grades: [{grade: AAA, min: 1050}, {grade: AA, min: 1030}, {grade: A, min: 960},
         {grade: B, min: 850}, {grade: C, min: 600}, {grade: D, min: 0}]
behaviours:
  - {code: TRAFFIC.MINOR, title: Minor traffic violation, points: -5, validity: P1Y,
     severity: minor, data_class: market, legal_basis: "Road Traffic Safety Law art. 90"}
  - {code: COURT.DEFAULT, title: Failure to perform an effective judgment, points: -100,
     validity: P2Y, notice: P10D, severity: serious, repair_after: P0D, data_class: public,
     legal_basis: "SPC provisions 2017 art. 1"}
  - {code: CHARITY.BLOOD, title: Voluntary blood donation, points: 5, cap: 20, validity: P1Y,
     data_class: restricted, legal_basis: "Blood Donation Law art. 16"}
lists:
  - {id: defaulters, kind: black, title: Dishonest judgment defaulters, rule: {any_of: [COURT.DEFAULT]}}
  - {id: repeat-traffic, kind: watch, title: Repeat traffic offenders,
     rule: {count: {codes: [TRAFFIC.MINOR], at_least: 3, within: P6M}}}
  - {id: model, kind: red, title: Model citizens, rule: {grade_in: [AAA]}}
measures:
  - {id: no-flights, kind: punishment, title: No air tickets, implemented_by: civil-aviation,
     applies_when: {on_list: defaulters}, legal_basis: "Joint punishment memorandum 2016 item 1"}
  - {id: fast-track, kind: reward, title: Fast-track approvals, implemented_by: city-services,
     applies_when: {any: [{grade_in: [AAA, AA]}, {on_list: model}]}, legal_basis: "City measures 2026 art. 4"}
"""


def person_id(n: int, birth: str = "19900101", division: str = "110105") -> str:
    first17 = f"{division}{birth}{n % 1000:03d}"
    # python-stdnum's calc_check_digit ignores the last character it is given.
    return first17 + ric.calc_check_digit(first17 + "0")


def org_id(n: int) -> str:
    body = f"91371082{n:08d}"
    org_code = body[8:16]
    weights = (3, 7, 9, 10, 5, 8, 4, 2)
    check = (11 - sum(int(c) * w for c, w in zip(org_code, weights, strict=True)) % 11) % 11
    first17 = body + ("X" if check == 10 else str(check))
    return first17 + uscc.calc_check_digit(first17 + "0")


def at(day: str, hour: int = 12) -> dt.datetime:
    """An instant on a Shanghai calendar day, in UTC as the ledger keeps it."""
    return dt.datetime.combine(dt.date.fromisoformat(day), dt.time(hour), ZONE).astimezone(dt.UTC)


def d(day: str) -> dt.date:
    return dt.date.fromisoformat(day)


class World:
    """A store plus helpers that call the library as the command line would, with explicit times."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self._refs = 0

    def load(self, text: str = DEMO_CITY, when: str = "2020-01-01") -> None:
        with self.store.write() as conn:
            registry.publish_scheme(conn, parse_scheme(text), text, at(when, 0), after=AFTER_APPEND)

    def source(self, name: str, codes: list[str], when: str = "2020-01-01") -> None:
        with self.store.write() as conn:
            registry.add_source(conn, name, codes, at(when, 0))

    def subjects(self, rows: list[tuple[str, str, str]], when: str = "2020-01-01") -> None:
        buffer = io.StringIO()
        writer = csv.writer(buffer)
        writer.writerow(["subject_id", "kind", "name"])
        writer.writerows(rows)
        with self.store.write() as conn:
            imports.import_subjects(
                conn, "subjects.csv", buffer.getvalue().encode(), now=at(when, 0), actor="test", after=AFTER_APPEND
            )

    def standard(self) -> tuple[str, str]:
        """DESIGN.md's example scheme, sources court/transport/civil-affairs, a person with consent
        and an organisation."""
        self.load()
        self.source("court", ["COURT.DEFAULT"])
        self.source("transport", ["TRAFFIC.MINOR"])
        self.source("civil-affairs", ["CHARITY.BLOOD"])
        person, org = person_id(1), org_id(1)
        self.subjects([(person, "person", "张三"), (org, "organisation", "测试有限公司")])
        self.consent(person, True, "2020-01-02")
        return person, org

    def record(
        self,
        subject: str,
        behaviour: str,
        occurred_on: str,
        recorded: dt.datetime,
        source: str | None = None,
        amount: Decimal | None = None,
    ) -> int:
        self._refs += 1
        source = (
            source or {"COURT": "court", "TRAFFIC": "transport", "CHARITY": "civil-affairs"}[behaviour.split(".")[0]]
        )
        ref = f"DOC-{self._refs}"
        header = "subject_id,behaviour,occurred_on,document_ref,amount"
        body = f"{header}\n{subject},{behaviour},{occurred_on},{ref},{amount or ''}\n"
        with self.store.write() as conn:
            imports.import_records(
                conn, "r.csv", body.encode(), source=source, now=recorded, actor="test", after=AFTER_APPEND
            )
            return ledger.resolve_record_id(conn, f"{source}:{ref}")

    def consent(self, subject: str, grant: bool, when: str, scheme: str = "demo-city") -> None:
        with self.store.write() as conn:
            consent.record_consent(conn, subject, scheme, grant, at(when, 0), "test", after=AFTER_APPEND)

    def object(self, record: int, when: dt.datetime) -> int:
        with self.store.write() as conn:
            return objections.file(conn, record, reason="wrong", now=when, actor="test").id

    def decide(self, objection: int, outcome: str, when: dt.datetime, **fields: object) -> None:
        with self.store.write() as conn:
            objections.decide(conn, objection, outcome=outcome, reason="checked", now=when, actor="test", **fields)  # type: ignore[arg-type]

    def revoke(self, record: int, when: dt.datetime) -> None:
        with self.store.write() as conn:
            ledger.revoke(conn, record, now=when, actor="test", reason="wrong person", after=AFTER_APPEND)

    def correct(self, record: int, when: dt.datetime, **fields: object) -> None:
        with self.store.write() as conn:
            ledger.correct(conn, record, now=when, actor="test", reason="typo", **fields, after=AFTER_APPEND)  # type: ignore[arg-type]

    def end(self, record: int, on: str, when: dt.datetime) -> None:
        with self.store.write() as conn:
            ledger.end(conn, record, on=d(on), reason="fulfilled", now=when, actor="test", after=AFTER_APPEND)

    def decline(self, record: int, when: dt.datetime) -> None:
        with self.store.write() as conn:
            ledger.decline(conn, record, now=when, actor="test", after=AFTER_APPEND)

    def state(
        self,
        subject: str,
        as_of: str,
        known_at: dt.datetime | None = None,
        scheme: str = "demo-city",
    ) -> State | NoState:
        with self.store.read() as conn:
            return StateReader.open(conn, subject, known_at or at("2100-01-01")).state(scheme, d(as_of))

    def score(
        self,
        subject: str,
        as_of: str,
        known_at: dt.datetime | None = None,
        scheme: str = "demo-city",
    ) -> int | None:
        result = self.state(subject, as_of, known_at, scheme)
        return result.score if isinstance(result, State) else None

    def effects(self) -> list[object]:
        with self.store.read() as conn:
            return list(derivation.all_effects(conn))

    def rebuilt_effects(self) -> list[object]:
        with self.store.write() as conn:
            derivation.rebuild(conn)
            return list(derivation.all_effects(conn))


def bulk_import(store: Store, path: Any, **options: Any) -> Any:
    """The bulk import in a transaction of its own, as the service runs it (foreign-key checks off)."""
    from xinyong.ledger import bulk

    with store.write(foreign_keys=False) as conn:
        return bulk.import_records(store, conn, path, after=AFTER_APPEND, **options)


def run_cli(
    db: str,
    *args: str,
    now: str = "2026-03-02T10:00:00+08:00",
    env: dict[str, str] | None = None,
    cwd: Path | None = None,
) -> tuple[int, str, str]:
    """`xinyong ARGS` in this process on the store `db` at `now`, with no other XINYONG_* variable
    set than `env`'s, in the folder `cwd` if given: its exit status, stdout and stderr."""
    import contextlib
    import os
    import sys

    import pytest

    from xinyong.interfaces import cli

    out, err = io.StringIO(), io.StringIO()
    with pytest.MonkeyPatch.context() as mp:
        for name in [k for k in os.environ if k.startswith("XINYONG_")]:
            mp.delenv(name)
        mp.setenv("XINYONG_DB", db)
        mp.setenv("XINYONG_NOW", now)
        for name, value in (env or {}).items():
            mp.setenv(name, value)
        mp.setattr(sys, "argv", ["xinyong", *args])
        if cwd is not None:
            mp.chdir(cwd)
        code = 0
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                cli.main()
            except SystemExit as exc:
                code = exc.code if isinstance(exc.code, int) else 1
    return code, out.getvalue(), err.getvalue()


@contextlib.contextmanager
def serving(db: str, *options: str, ready_within: float = 60) -> Iterator[str]:
    """`xinyong serve` on the store `db` at a free port, as its own process group with no other
    XINYONG_* variable set, once it answers /readyz: its base URL. Stopped as Ctrl-C would."""
    import httpx

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {k: v for k, v in os.environ.items() if not k.startswith("XINYONG_")}
    env["XINYONG_DB"] = db
    process = subprocess.Popen(
        [sys.executable, "-m", "xinyong.interfaces.cli", "serve", "--port", str(port), *options],
        env=env,
        start_new_session=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + ready_within
        while True:
            try:
                if httpx.get(f"{base}/readyz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert process.poll() is None, process.stderr.read().decode() if process.stderr else ""
            assert time.monotonic() < deadline, "the server did not become ready"
            time.sleep(0.2)
        yield base
    finally:
        os.killpg(process.pid, signal.SIGINT)
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
