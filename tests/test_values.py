"""One validator per concept (`rules.values`), and every door reading a value alike.

The first half holds each validator to its rule: amounts (finite, 0 ≤ x < 10^16, at most two
decimals), days (YYYY-MM-DD in the platform's range, not in the future where a fact's date is
meant), subject identifiers, document references and periods. The second half feeds the same
texts to each interface that reads an amount or a record's day — the command line (`records
correct --amount/--occurred-on`, in-process), the HTTP API (a correction) and a one-line file
import — and asserts that they accept and refuse alike and store the same value. No web form
carries an amount or a record's day (the staff console decides objections as upheld or revoked
only), so the web has no part in it.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import io
import json
import os
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, event, example, given, settings
from hypothesis import strategies as st

from helpers import World, org_id, person_id
from xinyong.errors import BadInput
from xinyong.interfaces import cli
from xinyong.interfaces.site import create_app
from xinyong.ledger import records as ledger
from xinyong.rules import values
from xinyong.rules.clock import FixedClock
from xinyong.rules.periods import Period
from xinyong.security.access import Principal, Role
from xinyong.service import Service
from xinyong.storage.store import Store

LIMIT = Decimal("1e16")
LARGEST = Decimal("9999999999999999.99")


def refusal(read: Any, *args: Any, **kwargs: Any) -> BadInput:
    with pytest.raises(BadInput) as caught:
        read(*args, **kwargs)
    return caught.value


# --- amounts --------------------------------------------------------------------------------------

good_amounts = st.decimals(min_value=0, max_value=LARGEST, places=2)


@given(good_amounts, st.sampled_from(["{}", " {} ", "{}0", "+{}"]))
def test_every_amount_of_the_contract_is_accepted_exactly(amount: Decimal, form: str) -> None:
    text = form.format(amount)
    read = values.amount(text, where="--amount")
    assert read == amount
    assert read is not None
    assert read.as_tuple().exponent == -2  # the stored form: two decimals
    assert values.amount(amount, where="amount") == amount


@given(st.decimals(min_value=0, max_value=LARGEST, places=2).map(lambda d: d.normalize()))
def test_exponent_notation_is_a_number(amount: Decimal) -> None:
    """JSON Lines numbers arrive as Python prints floats (1e+16, 1e-05)."""
    assert values.amount(f"{amount:E}", where="amount") == amount


@given(
    st.one_of(
        st.decimals(max_value=Decimal("-0.01"), allow_nan=False, allow_infinity=False, places=2),
        st.decimals(min_value=LIMIT, allow_nan=False, allow_infinity=False, places=2),
        st.sampled_from(["1e16", "1E+16", "-5", "-0.01", "1e999999999999999999"]),
    )
)
def test_negative_and_huge_amounts_are_refused(amount: Decimal | str) -> None:
    error = refusal(values.amount, str(amount), where="--amount")
    assert error.problems[0].why == f"{amount} is not a non-negative amount below 10^16"


@given(st.sampled_from(["NaN", "-NaN", "sNaN", "nan", "Infinity", "-Infinity", "inf", "+Inf"]))
def test_nan_and_infinity_are_not_numbers(text: str) -> None:
    """Decimal reads them; they are not amounts, and DuckDB's cast (the bulk path) agrees."""
    assert refusal(values.amount, text, where="amount").problems[0].why == f"{text!r} is not a number"
    as_decimal = Decimal(text)
    assert refusal(values.amount, as_decimal, where="amount").problems[0].why == f"{str(as_decimal)!r} is not a number"


@given(st.decimals(min_value=0, max_value=LARGEST, places=2), st.integers(1, 9), st.integers(1, 6))
def test_a_third_decimal_is_refused_never_rounded(amount: Decimal, digit: int, more: int) -> None:
    text = f"{amount}{'0' * (more - 1)}{digit}"
    error = refusal(values.amount, text, where="amount", line=7)
    assert error.problems[0].why == f"{text} has more than two decimals; amounts are kept to the cent, never rounded"


@given(
    st.text().filter(lambda t: t.strip() != "").filter(lambda t: not _plain_number(t.strip()))
    | st.sampled_from(["1,000.00", "1_000", "１２", "١٢", "0x10", "12 50", "1e", "e3", ".", "+", "--5", "5-"])
)
def test_anything_but_a_number_is_refused(text: str) -> None:
    error = refusal(values.amount, text, where="amount")
    assert error.problems[0].why == f"{text.strip()!r} is not a number"


def _plain_number(text: str) -> bool:
    return values._NUMBER.fullmatch(text) is not None


def test_no_amount_is_none() -> None:
    assert values.amount(None, where="--amount") is None
    assert values.amount("", where="amount") is None
    assert values.amount("   ", where="amount") is None


def test_minus_zero_is_zero() -> None:
    read = values.amount("-0.00", where="amount")
    assert read == 0
    assert str(read) == "0.00"


def test_a_refusal_names_where_the_value_was() -> None:
    option = refusal(values.amount, "-5", where="--amount")
    assert option.message == "--amount: -5 is not a non-negative amount below 10^16"
    assert [(p.where, p.line, p.column) for p in option.problems] == [("--amount", None, None)]
    line = refusal(values.amount, "NaN", where="amount", line=3)
    assert line.message == "line 3, column amount: 'NaN' is not a number"
    assert [(p.where, p.line, p.column) for p in line.problems] == [("line 3, column amount", 3, "amount")]


# --- days -----------------------------------------------------------------------------------------


@given(st.dates(values.FIRST_DAY, values.LAST_DAY))
def test_every_iso_day_in_range_is_read(day: dt.date) -> None:
    assert values.day(day.isoformat(), where="--as-of") == day
    assert values.day(f" {day.isoformat()} ", where="--as-of") == day
    assert values.day(day, where="--as-of") == day


@pytest.mark.parametrize(
    "text",
    [
        "20260301",
        "2026-W09-1",
        "2026-060",
        "2026-3-1",
        "2026-02-29",
        "2026-03-01T00:00:00",
        "01/03/2026",
        "",
        "２０２６-03-01",
    ],
)
def test_only_yyyy_mm_dd_is_a_day(text: str) -> None:
    error = refusal(values.day, text, where="occurred_on", line=2)
    assert error.problems[0].why == f"{text.strip()!r} is not a date (YYYY-MM-DD)"


@pytest.mark.parametrize("text", ["1899-12-31", "2200-01-01", "0001-01-01", "9999-12-31"])
def test_days_outside_the_range_are_refused(text: str) -> None:
    error = refusal(values.day, text, where="--on")
    assert "is not a day between 1900-01-01 and 2199-12-31" in error.message


def test_a_day_after_not_after_is_in_the_future() -> None:
    today = dt.date(2026, 3, 20)
    assert values.day("2026-03-20", where="occurred_on", not_after=today) == today
    error = refusal(values.day, "2026-03-21", where="--occurred-on", not_after=today)
    assert error.message == "--occurred-on: 2026-03-21 is in the future"


def test_a_time_is_not_a_day() -> None:
    assert "a time, not a date" in refusal(values.day, dt.datetime(2026, 3, 1), where="day").message


# --- identifiers, document references, periods ----------------------------------------------------

PERSON = person_id(7)
ORGANISATION = org_id(7)


def test_identifiers_are_read_in_their_canonical_form() -> None:
    x_person = "37108219950704103X"
    assert values.subject_id(x_person.lower(), where="subject_id") == x_person
    assert values.subject_id(f" {PERSON[:6]} {PERSON[6:14]}\u3000{PERSON[14:]} ", where="subject_id") == PERSON
    assert values.subject_id(ORGANISATION.lower(), kind="organisation", where="subject_id") == ORGANISATION


def test_bad_identifiers_are_refused_with_the_reason() -> None:
    wrong = PERSON[:-1] + ("0" if PERSON[-1] != "0" else "1")
    assert "check character" in refusal(values.subject_id, wrong, kind="person", where="subject_id").message
    both = refusal(values.subject_id, wrong, where="subject_id", line=4)
    assert both.problems[0].line == 4
    assert "neither a valid resident identity number" in both.problems[0].why
    assert "18 characters" in refusal(values.subject_id, PERSON[:-2], kind="person", where="id").message
    assert "valid" in refusal(values.subject_id, ORGANISATION, kind="person", where="id").message


def test_a_hyphen_is_not_part_of_a_code() -> None:
    """python-stdnum drops hyphens from a unified code; the ledger never matched them, so one id
    has one spelling."""
    hyphened = ORGANISATION[:8] + "-" + ORGANISATION[8:]
    assert "bad format" in refusal(values.subject_id, hyphened, kind="organisation", where="subject_id").message
    assert "bad format" in refusal(values.subject_id, hyphened, where="subject_id").message


@pytest.mark.parametrize(
    ("text", "read"), [("J-1", "J-1"), ("  (2026)鲁1082执1号 ", "(2026)鲁1082执1号"), ("R" * 128, "R" * 128)]
)
def test_document_references(text: str, read: str) -> None:
    assert values.document_ref(text, where="document_ref") == read


@pytest.mark.parametrize(
    ("text", "why"), [("", "1 to 128"), ("   ", "1 to 128"), ("R" * 129, "1 to 128"), ("A\x00B", "NUL")]
)
def test_bad_document_references(text: str, why: str) -> None:
    assert why in refusal(values.document_ref, text, where="document_ref").message


def test_periods() -> None:
    assert values.period(" P1Y2M3W4D ", where="validity") == Period(years=1, months=2, days=25)
    assert values.period("P1000Y", where="validity") == Period(years=1000)
    for bad in ["P１０D", "PT10H", "P1001Y", "P12001M", "P366001D", "P" + "9" * 12 + "D", ""]:
        assert "ISO 8601" in refusal(values.period, bad, where="validity").message, bad


# --- every door alike ------------------------------------------------------------------------------

IMPORTED = "2026-03-02T10:00:00+08:00"
NOW = "2026-03-20T12:00:00+08:00"
P1 = person_id(1)
ADMIN = Principal(Role.ADMIN, "setup", channel="test")


@dataclass
class Doors:
    folder: Path
    db: str
    store: Store
    service: Service
    client: TestClient
    bearer: str
    sent: int = 0

    def cli(self, *args: str) -> tuple[int, str]:
        """`xinyong ARGS` in this process; its exit status and standard error."""
        err = io.StringIO()
        with pytest.MonkeyPatch.context() as mp:
            for name in [k for k in os.environ if k.startswith("XINYONG_")]:
                mp.delenv(name)
            mp.setenv("XINYONG_DB", self.db)
            mp.setenv("XINYONG_NOW", NOW)
            mp.setattr(sys, "argv", ["xinyong", *args])
            mp.chdir(self.folder)
            code = 0
            with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(err):
                try:
                    cli.main()
                except SystemExit as exc:
                    code = exc.code if isinstance(exc.code, int) else 1
        return code, err.getvalue()

    def api_correct(self, record: str, **body: str) -> Any:
        return self.client.post(
            f"/v1/records/{record}/corrections",
            json={"reason": "property", **body},
            headers={"Authorization": f"Bearer {self.bearer}"},
        )

    def import_line(self, **fields: str) -> tuple[str, BadInput | None]:
        """A one-line JSON Lines file of one new record; its reference and the refusal, if any."""
        self.sent += 1
        ref = f"LINE-{self.sent}"
        line = {"subject_id": P1, "behaviour": "COURT.DEFAULT", "occurred_on": "2026-02-20", "document_ref": ref}
        data = (json.dumps({**line, **fields}) + "\n").encode()
        try:
            self.service.records.import_file(ADMIN, "one.jsonl", data, "court")
        except BadInput as exc:
            return ref, exc
        return ref, None

    def view(self, ref: str) -> Any:
        with self.store.read() as conn:
            return ledger.history(conn, f"court:{ref}").view()


@pytest.fixture(scope="module")
def doors(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Doors]:
    folder = tmp_path_factory.mktemp("doors")
    db = f"sqlite:///{folder / 'x.db'}"
    store = Store(db)
    service = Service(store, FixedClock(dt.datetime.fromisoformat(NOW)))
    doors = Doors(folder, db, store, service, None, "")  # type: ignore[arg-type]
    assert doors.cli("init")[0] == 0
    World(store).standard()
    header = "subject_id,behaviour,occurred_on,document_ref\n"
    body = header + "".join(f"{P1},COURT.DEFAULT,2026-02-20,{ref}\n" for ref in ("CLI", "API", "CLI-DAY", "API-DAY"))
    Service(store, FixedClock(dt.datetime.fromisoformat(IMPORTED))).records.import_file(
        ADMIN, "r.csv", body.encode(), "court"
    )
    doors.bearer, _ = service.credentials.create_token(ADMIN, Role.OFFICER, label="doors")
    app = create_app(store, clock=FixedClock(dt.datetime.fromisoformat(NOW)), token_cache_seconds=0)
    with TestClient(app, raise_server_exceptions=False) as client:
        doors.client = client
        yield doors
    store.dispose()


# A NUL is refused by the file reader in any column, before any value's rule, with its own reason
# (`ledger.files`); the command line and the API refuse it by the value's rule.
NO_NUL = st.characters(exclude_characters="\x00")

amount_texts = st.one_of(
    good_amounts.map(str),
    st.decimals(allow_nan=False, allow_infinity=False, places=3).map(str),
    st.from_regex(r"\A[+-]?[0-9]{0,18}(\.[0-9]{0,4})?([eE][+-]?[0-9]{1,2})?\Z"),
    st.sampled_from(["NaN", "Infinity", "-Infinity", "1_000", "１２", "12,50", "0x10", " 7.5 "]),
    st.text(NO_NUL, max_size=10),
).filter(lambda t: t.strip() != "")  # a blank amount is "none": no correction at all, a record without one


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(text=amount_texts)
@example(text="NaN")
@example(text="-5")
@example(text="1.005")
@example(text="1e16")
@example(text="9999999999999999.99")
@example(text="12.5")
@example(text="1.500")
def test_every_door_reads_an_amount_alike(doors: Doors, text: str) -> None:
    code, err = doors.cli("records", "correct", "court:CLI", f"--amount={text}", "--reason", "property")
    api = doors.api_correct("court:API", amount=text)
    ref, refused = doors.import_line(amount=text)
    assert code in {0, 2}, err
    assert api.status_code in {200, 422}, api.text
    verdicts = {"cli": code == 0, "api": api.status_code == 200, "file": refused is None}
    assert len(set(verdicts.values())) == 1, (text, verdicts, err, api.text, refused and refused.render())
    event("accepted" if refused is None else "refused")
    if refused is None:
        expected = values.amount(text, where="amount")
        assert doors.view("CLI").amount == doors.view("API").amount == doors.view(ref).amount == expected
    else:
        # The same reason through each door.
        why = refused.problems[0].why
        assert err.strip() == f"--amount: {why}"
        assert [e["detail"] for e in api.json()["errors"]] == [why]
        assert api.json()["errors"][0]["pointer"] == "#/amount"


day_texts = st.one_of(
    st.dates(dt.date(1890, 1, 1), dt.date(2210, 12, 31)).map(str),
    st.dates(dt.date(2026, 3, 10), dt.date(2026, 3, 30)).map(str),  # around today, 2026-03-20
    st.sampled_from(["20260301", "2026-W09-1", "2026-3-1", "2026-02-29", "2026-03-01T00:00:00", " 2026-03-01 "]),
    st.text(NO_NUL, max_size=10),
).filter(lambda t: t.strip() != "")


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(text=day_texts)
@example(text="2026-03-20")
@example(text="2026-03-21")
@example(text="1899-12-31")
@example(text="20260301")
def test_every_door_reads_the_day_a_record_occurred_alike(doors: Doors, text: str) -> None:
    code, err = doors.cli("records", "correct", "court:CLI-DAY", f"--occurred-on={text}", "--reason", "property")
    api = doors.api_correct("court:API-DAY", occurred_on=text)
    ref, refused = doors.import_line(occurred_on=text)
    assert code in {0, 2}, err
    assert api.status_code in {200, 422}, api.text
    verdicts = {"cli": code == 0, "api": api.status_code == 200, "file": refused is None}
    assert len(set(verdicts.values())) == 1, (text, verdicts, err, api.text, refused and refused.render())
    event("accepted" if refused is None else "refused")
    if refused is None:
        expected = values.day(text, where="occurred_on")
        assert doors.view("CLI-DAY").occurred_on == doors.view("API-DAY").occurred_on == expected
        assert doors.view(ref).occurred_on == expected
    else:
        why = refused.problems[0].why
        assert err.strip() == f"--occurred-on: {why}"
        assert [e["detail"] for e in api.json()["errors"]] == [why]


def test_an_api_amount_is_a_string(doors: Doors) -> None:
    answer = doors.api_correct("court:API", amount=12.5)  # type: ignore[arg-type]
    assert answer.status_code == 422
    assert answer.json()["errors"] == [
        {"detail": 'give the amount as a string, e.g. "12000.50"', "pointer": "#/amount"}
    ]


def test_an_objection_decided_as_corrected_reads_the_amount_alike(doors: Doors) -> None:
    """`objections decide --outcome corrected --amount` goes through the same function."""
    body = "subject_id,behaviour,occurred_on,document_ref\n" + f"{P1},COURT.DEFAULT,2026-02-20,DECIDE\n"
    doors.service.records.import_file(ADMIN, "d.csv", body.encode(), "court")
    objection = doors.service.objections.file(ADMIN, "court:DECIDE", reason="wrong amount").id
    code, err = doors.cli(
        "objections", "decide", str(objection), "--outcome", "corrected", "--amount=-5", "--reason", "checked"
    )
    assert (code, err.strip()) == (2, "--amount: -5 is not a non-negative amount below 10^16")
    with pytest.raises(BadInput, match="more than two decimals"):
        doors.service.objections.decide(
            ADMIN, objection, outcome="corrected", reason="checked", amount=Decimal("1.005")
        )
    decided = doors.service.objections.decide(
        ADMIN, objection, outcome="corrected", reason="checked", amount=Decimal("12.5")
    )
    assert decided.outcome == "corrected"
    assert doors.view("DECIDE").amount == Decimal("12.50")
